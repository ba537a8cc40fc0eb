"""gc.plot.phase: the χ₁ = 1 boundary (theory) and the phase-diagram figure."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

import gradcourse as gc


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_boundary_values():
    crit = gc.plot.chi1_boundary("tanh", [0.0, 0.05, 0.25])
    assert crit[1] == pytest.approx(1.7610, abs=2e-3)  # Poole et al. (2016) / Schoenholz et al. (2017)
    assert crit[0] == pytest.approx(1.0, abs=5e-3)  # σ_b² = 0: tanh'(0)² σ_w² = 1
    assert crit[2] > crit[1]  # more bias variance pushes the edge of chaos to larger σ_w²
    np.testing.assert_allclose(gc.plot.chi1_boundary("relu", [0.0, 0.3]), 2.0, rtol=1e-4)  # χ₁ = σ_w²/2
    for s_w, s_b in zip(crit, [0.0, 0.05, 0.25]):
        assert float(gc.theory.chi1("tanh", s_w, s_b)) == pytest.approx(1.0, abs=2e-3)


def test_boundary_is_nan_without_a_crossing():
    """The sigmoid stays ordered (χ₁ < 1) for every σ_w² up to 20."""
    assert np.isnan(gc.plot.chi1_boundary("sigmoid", 0.05, hi=20.0)).all()


@pytest.mark.parametrize("bad", [[-0.1], [np.nan], [[0.1, 0.2]]])
def test_boundary_rejects_bad_sigma_b2(bad):
    with pytest.raises(ValueError, match="sigma_b2"):
        gc.plot.chi1_boundary("tanh", bad)


def test_phase_diagram_draws_theory_line_points_and_mark():
    sw = np.array([0.8, 1.5, 3.0])
    sb = np.array([0.05, 0.2, 0.4])
    values = np.array([-0.2, -0.05, 0.1])
    fig, ax = gc.plot.phase_diagram("tanh", sigma_w2=sw, sigma_b2=sb, values=values, mark=(1.76, 0.05), num=6)
    assert fig is ax.figure
    line = [l for l in ax.get_lines() if "edge of chaos" in l.get_label()][0]
    x, y = line.get_data()
    np.testing.assert_allclose(x, gc.plot.chi1_boundary("tanh", y, lo=0.1, hi=16.0), rtol=1e-3)
    pts = ax.collections[0]
    np.testing.assert_allclose(pts.get_offsets(), np.c_[sw, sb])
    np.testing.assert_allclose(pts.get_array(), values)
    assert len(fig.axes) == 2  # the colour bar
    star = [l for l in ax.get_lines() if l.get_marker() == "*"][0]
    assert star.get_xdata()[0] == pytest.approx(1.76)
    assert ax.get_xlabel().startswith("weight variance") and ax.get_ylabel().startswith("bias variance")


def test_phase_diagram_accepts_a_precomputed_boundary_and_an_axes():
    fig, ax = plt.subplots()
    grid = np.array([0.0, 0.1])
    out_fig, out_ax = gc.plot.phase_diagram("relu", boundary=(grid, np.array([2.0, 2.0])), ax=ax)
    assert out_ax is ax and out_fig is fig
    np.testing.assert_allclose(ax.get_lines()[0].get_xdata(), [2.0, 2.0])


def test_phase_diagram_says_when_there_is_no_transition():
    _, ax = gc.plot.phase_diagram("sigmoid", boundary=(np.array([0.0, 0.5]), np.array([np.nan, np.nan])))
    assert any("no $\\chi_1 = 1$ crossing" in t.get_text() for t in ax.texts)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"sigma_w2": [1.0], "sigma_b2": [0.1]}, "three arrays"),
        ({"sigma_w2": [1.0, 2.0], "sigma_b2": [0.1], "values": [0.0]}, "equal lengths"),
        ({"sigma_w2_range": (2.0, 1.0)}, "sigma_w2_range"),
        ({"sigma_b2_range": "wide"}, "sigma_b2_range"),
        ({"boundary": ([0.0, 0.1], [1.0])}, "differ in shape"),
    ],
)
def test_phase_diagram_validates(kwargs, match):
    kwargs.setdefault("boundary", (np.array([0.0]), np.array([1.0])))
    with pytest.raises((TypeError, ValueError), match=match):
        gc.plot.phase_diagram("tanh", **kwargs)
