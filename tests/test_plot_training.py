"""gc.plot.training: the drawn image and curves hold exactly what the History recorded."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import gradcourse as gc  # noqa: E402
from gradcourse.train import History  # noqa: E402


def make_history(n=6, depth=3, stopped_at=None):
    rng = np.random.default_rng(0)
    return History(
        loss=np.linspace(2.0, 1.0, n),
        grad_norm=rng.uniform(0.5, 2.0, n),
        update_norm=rng.uniform(0.01, 0.1, n),
        grad_norms={"blocks/W": rng.uniform(1e-3, 1.0, (n, depth)), "head": rng.uniform(0.1, 1.0, n)},
        update_ratios={
            "blocks/W": rng.uniform(1e-4, 1e-2, (n, depth)),
            "head": np.r_[np.inf, rng.uniform(1e-3, 1e-2, n - 1)],
        },
        stopped_at=stopped_at,
        stop_reason=None if stopped_at is None else f"loss is NaN at step {stopped_at}",
    )


def test_heatmap_image_is_the_history_matrix():
    h = make_history()
    fig, ax = gc.plot.history_heatmap(h)
    labels, values = h.matrix()
    (image,) = ax.images
    np.testing.assert_allclose(image.get_array().filled(np.nan), values)
    assert image.norm.__class__.__name__ == "LogNorm"
    expected = ["blocks/W[0]", "blocks/W[1]", "blocks/W[2]", "head"]
    assert [t.get_text() for t in ax.get_yticklabels()] == labels == expected
    assert ax.get_xlabel() == "step" and ax.get_ylabel()
    colorbar = image.colorbar
    assert colorbar is not None and "gradient norm" in colorbar.ax.get_ylabel()
    assert fig is ax.figure


def test_heatmap_of_update_ratios_masks_non_finite_entries():
    h = make_history()
    _, ax = gc.plot.history_heatmap(h, kind="update_ratios")
    data = ax.images[0].get_array()
    assert data.mask[3, 0] and not data.mask[3, 1:].any()  # the inf ratio at step 0 is blank
    np.testing.assert_allclose(data[:3].filled(np.nan), h.update_ratios["blocks/W"].T)
    assert "update ratio" in ax.images[0].colorbar.ax.get_ylabel()


def test_heatmap_on_a_given_axes_and_bad_inputs():
    fig, ax = plt.subplots()
    fig2, ax2 = gc.plot.history_heatmap(make_history(), ax=ax)
    assert ax2 is ax and fig2 is fig
    with pytest.raises(ValueError, match="kind"):
        gc.plot.history_heatmap(make_history(), kind="loss")
    with pytest.raises(TypeError, match="history"):
        gc.plot.history_heatmap({"loss": [1.0]})
    empty = History(np.ones(3), np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="record=False"):
        gc.plot.history_heatmap(empty)


def test_curves_hold_the_recorded_values():
    h = make_history()
    fig, ax = gc.plot.history_curves(h)
    loss, grad = ax.get_lines()
    np.testing.assert_allclose(loss.get_ydata(), h.loss)
    np.testing.assert_allclose(grad.get_ydata(), h.grad_norm)
    np.testing.assert_allclose(loss.get_xdata(), np.arange(6))
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "step"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["loss", "grad_norm"]
    # one layer's gradient norm; a stacked leaf gives its norm over all depths
    _, ax = gc.plot.history_curves(h, keys="blocks/W")
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), np.linalg.norm(h.grad_norms["blocks/W"], axis=1))
    with pytest.raises(ValueError, match="unknown key 'bogus'"):
        gc.plot.history_curves(h, keys="bogus")


def test_curves_of_several_runs_share_an_axes_and_mark_stops():
    runs = {"none": make_history(), "clipped": make_history(n=4, stopped_at=4)}
    _, ax = gc.plot.history_curves(runs, keys="update_norm")
    lines = ax.get_lines()
    assert len(lines) == 3  # two curves and the cross where "clipped" stopped
    np.testing.assert_allclose(lines[1].get_ydata(), runs["clipped"].update_norm)
    assert lines[2].get_marker() == "x" and lines[2].get_xdata()[0] == 3
    assert lines[0].get_color() != lines[1].get_color()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["none", "clipped"]


def test_curves_from_a_real_fit():
    import jax.numpy as jnp
    import optax

    h = gc.train.fit(lambda p, b: jnp.sum((p - b) ** 2), jnp.ones(3), optax.sgd(0.1), jnp.zeros(3), 5, progress=False)
    _, ax = gc.plot.history_curves(h, keys=("loss", "grad_norm", "update_norm"))
    np.testing.assert_allclose(ax.get_lines()[2].get_ydata(), h.update_norm, rtol=1e-6)
    _, ax = gc.plot.history_heatmap(h)
    np.testing.assert_allclose(ax.images[0].get_array().filled(np.nan), h.grad_norms["<root>"][None, :], rtol=1e-6)
