"""gc.plot.clipping: the figures hold exactly the data given, and bad input is refused with a named argument."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import gradcourse as gc  # noqa: E402
from gradcourse.train import History  # noqa: E402


def test_cliff_plot_draws_the_loss_and_the_gradient_magnitude_and_zooms_on_the_wall():
    w = np.linspace(0.0, 2.0, 201)
    loss, grad = np.tanh(50 * (w - 1.0)), -50 / np.cosh(50 * (w - 1.0)) ** 2
    fig, axes = gc.plot.cliff_plot(w, loss, grad, 1.0, zoom=0.05)
    np.testing.assert_allclose(axes[0].lines[0].get_ydata(), loss)
    np.testing.assert_allclose(axes[0].right.lines[0].get_ydata(), np.abs(grad))
    assert axes[0].right.get_yscale() == "log"
    np.testing.assert_allclose(axes[1].lines[0].get_xdata(), w[np.abs(w - 1.0) <= 0.05])
    with pytest.raises(ValueError, match="equal shapes"):
        gc.plot.cliff_plot(w, loss[:-1], grad, 1.0)


def test_seed_runs_plot_draws_the_median_curve_and_every_seed():
    rng = np.random.default_rng(0)
    curves = {"a": rng.uniform(1, 2, (5, 30)), "b": rng.uniform(0.1, 0.2, (5, 30))}
    finals = {"a": rng.uniform(1, 2, 5), "b": rng.uniform(0.1, 0.2, 5)}
    fig, axes = gc.plot.seed_runs_plot(curves, finals, smooth=1)
    np.testing.assert_allclose(axes[0].lines[0].get_ydata(), np.median(curves["a"], axis=0))
    fig, axes = gc.plot.seed_runs_plot(curves, finals, smooth=3)   # running median of 3 steps, then over seeds
    ref = np.median([[np.median(row[t:t + 3]) for t in range(28)] for row in curves["b"]], axis=0)
    np.testing.assert_allclose(axes[0].lines[1].get_ydata(), ref)
    points = [ln for ln in axes[1].lines if ln.get_marker() == "o"]
    np.testing.assert_allclose(points[1].get_ydata(), finals["b"])
    bars = [ln for ln in axes[1].lines if ln.get_marker() != "o"]
    assert bars[0].get_ydata()[0] == pytest.approx(np.median(finals["a"]))
    with pytest.raises(ValueError, match=r"curves\['a'\]"):
        gc.plot.seed_runs_plot({"a": np.ones(3)}, finals)


def test_influence_plot_marks_the_outlier_and_the_clip_level():
    norms = np.array([500.0, 2.0, 3.0, 4.0])
    shifts = {"no clipping": np.array([5.0, 4.0]), "per-example clipping": np.array([0.0, 0.1])}
    fig, axes = gc.plot.influence_plot(norms, 0, 1.0, shifts)
    np.testing.assert_allclose(axes[0].lines[0].get_ydata(), norms[1:])
    np.testing.assert_allclose(axes[0].lines[1].get_ydata(), [500.0])
    assert axes[0].lines[2].get_ydata()[0] == 1.0
    np.testing.assert_allclose([ln.get_ydata() for ln in axes[1].lines if ln.get_marker() == "o"][1], [0.0, 0.1])
    with pytest.raises(ValueError, match="outlier"):
        gc.plot.influence_plot(norms, 7, 1.0, shifts)


def history(scale):
    rng = np.random.default_rng(1)
    return History(loss=np.ones(4), grad_norm=np.ones(4), update_norm=np.ones(4),
                   grad_norms={"l1/W": scale * rng.uniform(0.1, 1.0, 4), "out/W": scale * rng.uniform(0.1, 1.0, 4)})


def test_shared_heatmaps_put_every_run_on_one_colour_scale():
    small, large = history(1.0), history(100.0)
    fig, axes = gc.plot.shared_heatmaps({"small": small, "large": large})
    limits = {ax.images[0].get_clim() for ax in axes}
    assert len(limits) == 1
    lo, hi = limits.pop()
    assert lo == pytest.approx(small.matrix()[1].min()) and hi == pytest.approx(large.matrix()[1].max())
    assert [ax.get_title() for ax in axes] == ["small", "large"]
    with pytest.raises(TypeError, match="histories"):
        gc.plot.shared_heatmaps({})
