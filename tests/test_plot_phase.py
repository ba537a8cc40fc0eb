"""gc.plot.phase: the phase-diagram figure draws the boundary it is given, measured points and a mark."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

import gradcourse as gc


def test_phase_diagram_draws_theory_line_points_and_mark():
    sw = np.array([0.8, 1.5, 3.0])
    sb = np.array([0.05, 0.2, 0.4])
    values = np.array([-0.2, -0.05, 0.1])
    grid, crit = np.array([0.0, 0.2, 0.5]), np.array([1.0, 2.2, 3.1])
    fig, ax = gc.plot.phase_diagram(
        "tanh", boundary=(grid, crit), sigma_w2=sw, sigma_b2=sb, values=values, mark=(1.76, 0.05)
    )
    assert fig is ax.figure
    line = [l for l in ax.get_lines() if "edge of chaos" in l.get_label()][0]
    np.testing.assert_array_equal(line.get_data(), (crit, grid))  # drawn as given: x = σ_w², y = σ_b²
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
        ({"boundary": None}, "boundary"),
    ],
)
def test_phase_diagram_validates(kwargs, match):
    kwargs.setdefault("boundary", (np.array([0.0]), np.array([1.0])))
    with pytest.raises((TypeError, ValueError), match=match):
        gc.plot.phase_diagram("tanh", **kwargs)
