"""gc.plot.stream_variance_plot and gc.plot.shattering_plot draw the arrays they are given."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402

import gradcourse as gc  # noqa: E402


def test_stream_variance_plot_log_and_linear_panels():
    l = np.arange(11)
    q = {"geometric": 2.0**l, "linear": 1.0 + l}
    theory = {"geometric": 2.0**l, "linear": 1.0 + l}
    fig, axes = gc.plot.stream_variance_plot(q, theory, linear_skip=("geometric",))
    assert axes[0].get_yscale() == "log"
    assert any(np.allclose(ln.get_ydata(), 2.0**l) and ln.get_marker() == "o" for ln in axes[0].lines)
    right = axes[1].lines
    assert len(right) == 2 and np.allclose(right[0].get_ydata(), 1.0 + l)     # only "linear" on the linear axis


def test_shattering_plot_medians_and_standardised_curves():
    rng = np.random.default_rng(0)
    acf = {"plain": rng.random((5, 8)), "residual": rng.random((5, 8))}
    curves = {"plain": rng.normal(size=30) * 7}
    fig, axes = gc.plot.shattering_plot(np.linspace(-2, 2, 30), curves, acf)
    assert np.isclose(np.std(axes[0].lines[0].get_ydata()), 1.0)
    meds = [ln for ln in axes[1].lines if ln.get_marker() == "o"]
    np.testing.assert_allclose(meds[1].get_ydata(), np.median(acf["residual"], axis=0))
    assert len(axes[1].collections) == 2
