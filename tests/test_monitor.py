"""gc.monitor against NumPy histograms and sampled Gaussian logits; gc.plot.histogram_over_steps draws its input."""
import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import gradcourse as gc  # noqa: E402


def test_layer_log_histograms_match_numpy():
    rng = np.random.default_rng(1)
    xs = rng.normal(size=(3, 50)) * 10.0 ** rng.uniform(-4, 1, size=(3, 50))
    xs[1, :7] = 0.0
    edges = np.linspace(-3, 0.5, 8)
    hist, zero = (np.asarray(a) for a in jax.jit(gc.monitor.layer_log_histograms)(jnp.asarray(xs), edges))
    for l in range(3):
        nz = xs[l][xs[l] != 0]
        logs = np.clip(np.log10(np.abs(nz)), edges[0], edges[-1])       # out-of-range entries go to the end bins
        want, _ = np.histogram(logs, bins=edges)
        np.testing.assert_allclose(hist[l], want / xs.shape[1], atol=1e-7)
    np.testing.assert_allclose(zero, [0, 7 / 50, 0])
    np.testing.assert_allclose(hist.sum(axis=1) + zero, 1.0, atol=1e-6)


def test_initial_loss_matches_sampled_cross_entropy():
    rng = np.random.default_rng(2)
    for C, s in ((2, 0.3), (10, 0.1), (10, 0.3), (50, 0.2)):
        z = rng.normal(scale=s, size=(200_000, C))
        ce = np.mean(np.log(np.exp(z).sum(axis=1)) - z[:, 0])
        # second order in s, exact up to O(s^4) and the sampling error (~s / sqrt(200 000)); log C + s^2/2, which
        # leaves out the 1/C, is 0.0225 off at C = 2, s = 0.3 and 0.0045 at C = 10
        assert abs(ce - gc.monitor.initial_loss(C, s)) < 0.02 * s**2 + 1.5e-3
    assert gc.monitor.initial_loss(10, 0.0) == pytest.approx(np.log(10))
    with pytest.raises(ValueError, match="n_classes"):
        gc.monitor.initial_loss(0, 0.1)
    with pytest.raises(ValueError, match="logit_std"):
        gc.monitor.initial_loss(10, np.array([0.1, -1.0]))


def test_histogram_over_steps_draws_the_given_fractions():
    hist = np.zeros((5, 4))
    hist[:, 2] = 0.5
    hist[:, 1] = 0.25
    edges = np.array([-4.0, -3, -2, -1, 0])
    fig, ax = gc.plot.histogram_over_steps(hist, edges, reference=-3.0, reference_label="1e-3")
    image = ax.images[0]
    shown = image.get_array()
    np.testing.assert_allclose(np.ma.filled(shown, 0), hist.T)
    assert shown.mask[0].all() and not shown.mask[2].any()                 # empty bins left blank
    assert tuple(image.get_extent()) == (0, 5, -4.0, 0.0)
    assert ax.lines[0].get_ydata()[0] == -3.0 and ax.get_xlabel() == "training step"
    with pytest.raises(ValueError, match="bins"):
        gc.plot.histogram_over_steps(hist, edges[:-1])
