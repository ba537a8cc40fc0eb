"""gc.widgets.phase: the phase-point figure and the explorer's update (the compute is tested in test_experiments.py)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

import gradcourse as gc
from gradcourse.widgets._display import figure_image
from gradcourse.widgets.phase import PhaseExplorer


def test_phase_point_figure_has_both_panels():
    p = gc.experiments.phase_point("tanh", 2.5, 0.1, depth=4, width=32)
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
    assert ex.fig is not first_fig and len(ex.handle.shown) == 1
    assert ex.handle.shown[0].format == "png" and ex.handle.shown[0].data == figure_image(ex.fig).data
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
