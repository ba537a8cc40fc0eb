"""The depth explorer: its compute matches mean-field theory; its controls redraw the figure."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import gradcourse as gc  # noqa: E402
from gradcourse.widgets.depth import backward_profile, depth_explorer  # noqa: E402
from gradcourse.widgets._display import figure_image  # noqa: E402


@pytest.mark.parametrize(
    "activation, sigma_w2, sigma_b2",
    [("tanh", 3.0, 0.05), ("tanh", 1.0, 0.05), ("relu", 1.0, 0.0), ("linear", 1.2, 0.0), ("erf", 2.0, 0.1)],
)
def test_backward_profile_follows_chi1_at_large_width(activation, sigma_w2, sigma_b2):
    p = backward_profile(20, sigma_w2, sigma_b2, activation, width=1024, key=jax.random.PRNGKey(1))
    chi = float(gc.theory.chi1(activation, sigma_w2, sigma_b2))
    assert p.chi1 == pytest.approx(chi)
    np.testing.assert_allclose(p.theory, chi ** ((20 - np.arange(21)) / 2), rtol=1e-6)
    assert p.measured[-1] == 1.0 and p.measured.shape == (21,)
    slope = np.polyfit(p.layers, np.log(p.measured), 1)[0]  # per-layer log gain, going up
    assert slope == pytest.approx(-0.5 * np.log(chi), abs=0.01)
    assert abs(np.log(p.measured[0] / p.theory[0])) < 0.15


def test_backward_profile_starts_inputs_at_qstar():
    p = backward_profile(3, 1.76, 0.05, "tanh", width=64)
    assert p.q_in == pytest.approx(float(gc.theory.qstar("tanh", 1.76, 0.05)))
    assert backward_profile(3, 2.0, 0.0, "linear", width=64).q_in == 1.0  # q* infinite: unit variance


def test_backward_profile_is_reproducible_and_validates():
    a = backward_profile(5, 1.5, 0.0, "tanh", width=32, key=jax.random.PRNGKey(3))
    b = backward_profile(5, 1.5, 0.0, "tanh", width=32, key=jax.random.PRNGKey(3))
    np.testing.assert_array_equal(a.measured, b.measured)
    with pytest.raises(ValueError, match="depth"):
        backward_profile(0, 1.0)
    with pytest.raises(ValueError, match="sigma_w2"):
        backward_profile(5, -1.0)
    with pytest.raises(TypeError, match="width"):
        backward_profile(5, 1.0, width=2.5)
    with pytest.raises(ValueError, match="activation"):
        backward_profile(5, 1.0, activation="nope")


def test_explorer_builds_controls_and_a_default_figure():
    ex = depth_explorer(depth=10, sigma_w2=1.5, width=64, show=False)
    assert set(ex.controls) == {"depth", "sigma_w2", "sigma_b2", "activation"}
    assert ex.values == {"depth": 10, "sigma_w2": 1.5, "sigma_b2": 0.0, "activation": "tanh"}
    points, line = ex.ax.get_lines()[:2]
    assert len(points.get_ydata()) == 11 and ex.ax.get_yscale() == "log"
    assert "chi_1" in line.get_label()


def _ydata(ex):
    return [np.asarray(l.get_ydata()).copy() for l in ex.ax.get_lines()]


@pytest.mark.parametrize(
    "name, value", [("depth", 15), ("sigma_w2", 3.0), ("sigma_b2", 0.2), ("activation", "relu")]
)
def test_moving_a_control_redraws_the_figure(name, value):
    ex = depth_explorer(depth=10, sigma_w2=1.5, width=64, show=False)
    before, title = _ydata(ex), ex.ax.get_title()
    ex.controls[name].value = value  # the observer calls ex.update()
    after = _ydata(ex)
    assert ex.values[name] == value
    assert len(after[0]) != len(before[0]) or not np.allclose(after[0], before[0]) or not np.allclose(after[1], before[1])
    assert ex.ax.get_title() != title
    assert len(ex.ax.get_lines()) == 2  # redrawn, not stacked on the old plot


def test_explorer_updates_its_display_handle():
    class Handle:
        shown = []

        def update(self, image, **kwargs):
            self.shown.append(image)

    ex = depth_explorer(depth=6, width=32, show=False)
    before = figure_image(ex.figure).data
    ex.handle = Handle()
    ex.controls["sigma_w2"].value = 2.0
    assert len(Handle.shown) == 1 and Handle.shown[0].format == "png"
    assert Handle.shown[0].data == figure_image(ex.figure).data != before  # the new figure, as PNG


def test_explorer_shows_a_callback_error_in_place_of_the_figure(monkeypatch):
    class Handle:
        shown = []

        def update(self, obj, **kwargs):
            self.shown.append(obj)

    ex = depth_explorer(depth=6, width=32, show=False)
    ex.handle = Handle()
    monkeypatch.setattr(gc.widgets.depth, "backward_profile", lambda *a, **k: 1 / 0)
    ex.controls["depth"].value = 7
    assert "ZeroDivisionError" in Handle.shown[-1]["text/plain"]


def test_explorer_without_finite_theory_shows_points_only(monkeypatch):
    monkeypatch.setattr(gc.theory, "chi1", lambda *args: float("nan"))  # no finite mean-field gain
    ex = depth_explorer(depth=6, sigma_w2=3.0, activation="gelu", width=32, show=False)
    assert not np.isfinite(ex.profile.chi1) and np.isnan(ex.profile.theory).all()
    assert len(ex.ax.get_lines()) == 1 and "no finite" in ex.ax.get_title()


def test_explorer_validates_activation():
    with pytest.raises(ValueError, match="activation"):
        depth_explorer(activation="relu", activations=("tanh",), show=False)


def test_backward_profile_measures_norms_whose_squares_underflow_float32():
    p = backward_profile(50, 1.0, 0.0, "sigmoid", width=128, key=jax.random.PRNGKey(2))
    assert np.all(p.measured > 0) and p.measured[0] < 1e-30  # ‖c‖² < 1e-60 is not representable in float32
    slope = np.polyfit(p.layers, np.log(p.measured), 1)[0]
    assert slope == pytest.approx(-0.5 * np.log(p.chi1), abs=0.03)
