"""The depth explorer: its controls redraw the figure (the compute is tested in test_experiments.py)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import gradcourse as gc  # noqa: E402
from gradcourse.widgets._display import figure_image  # noqa: E402
from gradcourse.widgets.depth import depth_explorer  # noqa: E402


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
    changed = len(after[0]) != len(before[0]) or not np.allclose(after[0], before[0])
    assert changed or not np.allclose(after[1], before[1])
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


