"""gc.widgets.phase: the compute (spectra, backward-ratio grid) against theory, and the explorer's update."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradcourse as gc
from gradcourse.widgets.phase import PhaseExplorer


def spread(s):
    x = np.asarray(s, np.float64) ** 2
    return (x**2).mean(axis=-1) / x.mean(axis=-1) ** 2 - 1


def test_jacobian_spectra_shapes_and_seeds():
    s = gc.widgets.jacobian_spectra("tanh", 1.5, 0.1, depth=4, width=32, n_nets=3)
    assert s.shape == (3, 32) and np.all(np.diff(s, axis=1) <= 0)  # descending
    assert not np.allclose(s[0], s[1])  # independent networks
    np.testing.assert_array_equal(s, gc.widgets.jacobian_spectra("tanh", 1.5, 0.1, depth=4, width=32, n_nets=3))


def test_jacobian_spectra_match_a_direct_computation():
    """Same network as gc.mlp_params with the first key, same input: equal to gc.jacobian_spectrum."""
    s = gc.widgets.jacobian_spectra("relu", 2.0, 0.0, depth=3, width=16, n_nets=1, seed=5)[0]
    k_params, k_x = jax.random.split(jax.random.PRNGKey(5), 2)
    model = gc.Stacked(gc.dense_layer("relu"), gc.mlp_params(k_params, 3, 16, 2.0, 0.0))
    q = float(gc.theory.qstar("relu", 2.0, 0.0))
    x = jax.nn.relu(jnp.sqrt(q) * jax.random.normal(k_x, (16,)))
    np.testing.assert_allclose(s, gc.jacobian_spectrum(model, x), rtol=1e-4, atol=1e-6)


def test_orthogonal_linear_network_is_an_exact_isometry():
    s = gc.widgets.jacobian_spectra("linear", 2.0, 0.0, "orthogonal", depth=5, width=24)
    np.testing.assert_allclose(s, np.sqrt(2.0) ** 5, rtol=1e-4)  # every singular value σ_w^L


def test_spectrum_spread_matches_free_probability():
    """Width 128, depth 8, 4 nets: within 30% of Pennington et al. (2017) for Gaussian and orthogonal tanh."""
    sw = gc.theory.critical_sigma_w2("tanh", 0.05)
    for init in ("gaussian", "orthogonal"):
        s = gc.widgets.jacobian_spectra("tanh", sw, 0.05, init, depth=8, width=128, n_nets=4)
        theory = gc.plot.jacobian_moments("tanh", sw, 0.05, 8, init)
        assert spread(s).mean() == pytest.approx(theory.spread, rel=0.3)


def test_backward_ratio_grid_matches_half_log_chi1():
    sw = np.array([[0.8, 1.2], [2.5, 3.5]])
    sb = np.array([[0.0, 0.3], [0.05, 0.2]])
    got = gc.widgets.backward_ratio_grid("tanh", sw, sb, depth=12, width=256, batch=8)
    assert got.shape == sw.shape
    chi = np.vectorize(lambda a, b: float(gc.theory.chi1("tanh", a, b)))(sw, sb)
    np.testing.assert_allclose(got, 0.5 * np.log(chi), atol=0.03)


def test_backward_ratio_grid_validates():
    with pytest.raises(ValueError, match="equal shapes"):
        gc.widgets.backward_ratio_grid("tanh", [1.0, 2.0], [0.1])
    with pytest.raises(ValueError, match="sigma_w2 > 0"):
        gc.widgets.backward_ratio_grid("tanh", [0.0], [0.1])
    with pytest.raises(ValueError, match="activation"):
        gc.widgets.backward_ratio_grid("swish", [1.0], [0.1])


def test_phase_point_carries_theory():
    p = gc.widgets.phase_point("tanh", 1.76, 0.05, "orthogonal", depth=6, width=32)
    assert p.chi1 == pytest.approx(1.0, abs=2e-3)
    assert p.theory.spread == pytest.approx(gc.plot.jacobian_moments("tanh", 1.76, 0.05, 6, "orthogonal").spread)
    assert p.singular_values.shape == (32,) and p.spread >= 0
    far = gc.widgets.phase_point("relu", 3.0, 0.1, depth=4, width=16)  # q* infinite: no moments
    assert far.qstar == np.inf and far.theory is None


@pytest.mark.parametrize(
    "kwargs, match",
    [({"activation": "swish"}, "activation"), ({"init": "uniform"}, "init"), ({"sigma_w2": -1.0}, "sigma_w2"), ({"depth": 2.0}, "depth")],
)
def test_phase_point_validates(kwargs, match):
    with pytest.raises((TypeError, ValueError), match=match):
        gc.widgets.phase_point(**{"width": 16, **kwargs})


def test_phase_point_figure_has_both_panels():
    p = gc.widgets.phase_point("tanh", 2.5, 0.1, depth=4, width=32)
    fig, axes = gc.widgets.phase_point_figure(p)
    assert len(axes) == 2
    star = [l for l in axes[0].get_lines() if l.get_marker() == "*"][0]
    assert (star.get_xdata()[0], star.get_ydata()[0]) == pytest.approx((2.5, 0.1))
    assert "theory" in axes[1].get_title()


def _figure_state(ex: PhaseExplorer):
    star = [l for l in ex.fig.axes[0].get_lines() if l.get_marker() == "*"][0]
    points = ex.fig.axes[1].get_lines()[0].get_xydata()
    return (star.get_xdata()[0], star.get_ydata()[0]), points, ex.fig.axes[0].get_title(), ex.fig.axes[1].get_title()


class FakeHandle:
    def __init__(self):
        self.shown = []

    def update(self, obj):
        self.shown.append(obj)


def test_explorer_updates_the_figure_when_a_control_moves():
    ex = PhaseExplorer("tanh", sigma_w2=1.76, sigma_b2=0.05, init="gaussian", depth=4, width=32)
    ex.handle = FakeHandle()
    first_fig, (star, points, _, _) = ex.fig, _figure_state(ex)
    assert star == pytest.approx((1.76, 0.05))

    ex.controls["sigma_w2"].value = 3.0  # the observer calls ex.update
    star2, points2, _, title2 = _figure_state(ex)
    assert star2 == pytest.approx((3.0, 0.05))
    assert ex.fig is not first_fig and ex.handle.shown == [ex.fig]
    assert not np.array_equal(points, points2)

    ex.controls["init"].value = "orthogonal"
    assert ex.point.init == "orthogonal" and "orthogonal" in ex.fig.axes[1].get_legend().get_texts()[0].get_text()

    ex.controls["activation"].value = "relu"
    assert ex.point.activation == "relu" and "relu" in _figure_state(ex)[2]
    assert len(ex.handle.shown) == 3

    ex.controls["sigma_b2"].value = 0.3
    before = ex.fig
    assert ex.update() is ex.fig and ex.fig is not before  # calling the callback directly redraws too


def test_explorer_rejects_unknown_activation():
    with pytest.raises(ValueError, match="activation"):
        PhaseExplorer("swish")
