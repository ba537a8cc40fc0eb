"""gc.plot.weight_decay_plot draws the medians, bands and theory lines it is given."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import gradcourse as gc  # noqa: E402


def test_weight_decay_plot_draws_median_markers_and_theory_lines():
    rng = np.random.default_rng(0)
    norms = {"no decay": 1 + rng.random((3, 50)), "decay": 2 + rng.random((3, 50))}
    angles = {"no decay": rng.random((3, 50)), "decay": rng.random((3, 50))}
    theory = np.linspace(1, 2, 50)
    fig, axes = gc.plot.weight_decay_plot(norms, angles, norm_theory={"no decay": theory, "decay": 2.5},
                                          angle_theory={"decay": 0.1}, every=10)
    markers = [ln for ln in axes[0].lines if ln.get_marker() == "o"]
    np.testing.assert_allclose(markers[0].get_ydata(), np.median(norms["no decay"], axis=0)[::10])
    np.testing.assert_allclose(markers[0].get_xdata(), np.arange(0, 50, 10))
    lines = [ln for ln in axes[0].lines if ln.get_linestyle() == "-" and ln.get_marker() in ("None", "", None)]
    np.testing.assert_allclose(lines[0].get_ydata(), theory)
    np.testing.assert_allclose(lines[1].get_ydata(), 2.5)
    assert len([ln for ln in axes[1].lines if ln.get_linestyle() == "-"]) == 1
    assert axes[0].get_yscale() == "log" and axes[1].get_xlabel() == "SGD step"
    assert len(axes[0].collections) == 2                 # one band per configuration


def test_weight_decay_plot_rejects_one_dimensional_runs():
    with pytest.raises(ValueError, match="seeds, steps"):
        gc.plot.weight_decay_plot({"a": np.ones(5)}, {"a": np.ones((2, 5))})
