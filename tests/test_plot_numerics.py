"""gc.plot numerics figures draw what they are given."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import jax.numpy as jnp  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import gradcourse as gc  # noqa: E402
from gradcourse import precision  # noqa: E402


def test_format_bands_span_each_range():
    fmts = [precision.float_format(d) for d in (jnp.float32, jnp.float16)]
    fig, ax = gc.plot.format_bands(fmts)
    bars = ax.patches
    assert len(bars) == 4
    np.testing.assert_allclose(bars[2].get_x(), np.log10(2.0**-24))       # float16 subnormals start at 2^-24
    np.testing.assert_allclose(bars[3].get_x() + bars[3].get_width(), np.log10(65504.0))
    plt.close(fig)


def test_other_plots_draw_their_data():
    fig, ax = gc.plot.magnitude_histograms({"a": np.array([1e-3, 1e-5, 0.0])}, {"t": 1e-4})
    assert len(ax.lines) == 1 and ax.lines[0].get_xdata()[0] == pytest.approx(-4)
    plt.close(fig)
    fig, ax = gc.plot.layer_fraction_plot({"x": [0.1, 0.2, 0.3]})
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), [0.1, 0.2, 0.3])
    plt.close(fig)
    fig, ax = gc.plot.loss_scale_plot([4.0, 8.0, 4.0], [True, False, True])
    np.testing.assert_array_equal(ax.lines[1].get_ydata(), [3.0])           # the skipped step, at log2 S = 3
    plt.close(fig)
    fig, ax = gc.plot.swamping_plot([2.0**-9, 2.0**-8], [1.0, 0.0], [1.0, 0.0])
    np.testing.assert_array_equal(ax.lines[1].get_xdata(), [-9, -8])
    plt.close(fig)
    with pytest.raises(ValueError, match="scale"):
        gc.plot.loss_scale_plot([1.0, 2.0], [True])
