"""gc.plot.activations: φ/φ' curves, per-layer histograms and profiles, and the dead-fraction theory."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import pytest

import gradcourse as gc


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_relu_dead_fraction_closed_forms():
    got = gc.plot.relu_dead_fraction([0.0, 0.5, 1.0], 16)
    # c = 0: independent, 2^-B; c = 1/2: the equicorrelated orthant probability 1/(B+1); c = 1: 1/2
    np.testing.assert_allclose(got, [2.0**-16, 1 / 17, 0.5], rtol=1e-6)
    two = gc.plot.relu_dead_fraction([0.3], 2)[0]
    assert two == pytest.approx(0.25 + np.arcsin(0.3) / (2 * np.pi), rel=1e-6)  # Sheppard's formula


def test_relu_dead_fraction_matches_sampling():
    c, B = 0.8, 8
    g = jax.random.normal(jax.random.PRNGKey(0), (200_000, 1))
    e = jax.random.normal(jax.random.PRNGKey(1), (200_000, B))
    z = jnp.sqrt(c) * g + jnp.sqrt(1 - c) * e
    assert float(jnp.mean(jnp.all(z <= 0, axis=1))) == pytest.approx(gc.plot.relu_dead_fraction(c, B), abs=3e-3)


def test_relu_dead_fraction_validates():
    with pytest.raises(ValueError, match="batch"):
        gc.plot.relu_dead_fraction(0.5, 0)
    with pytest.raises(ValueError, match="c:"):
        gc.plot.relu_dead_fraction([1.5], 4)


def test_layer_profile_colours_and_scales():
    fig, ax = gc.plot.layer_profile({"a": [1.0, 0.5, 0.25]}, {"a": [1.0, 0.5, 0.25], "bound": [1, 1, 1]}, ylabel="r", start=1)
    lines = {l.get_label(): l for l in ax.get_lines()}
    assert lines["a (theory)"].get_color() == lines["a (measured)"].get_color() != lines["bound (theory)"].get_color()
    assert list(lines["a (measured)"].get_xdata()) == [1, 2, 3] and ax.get_yscale() == "log"
    _, ax2 = gc.plot.layer_profile([0.0, 0.1], ylabel="f", log=False)
    assert ax2.get_yscale() == "linear" and len(ax2.get_lines()[0].get_xdata()) == 2  # zeros kept on a linear axis
    with pytest.raises(ValueError, match="1-D"):
        gc.plot.layer_profile({"a": [[1.0]]}, ylabel="r")


def test_activation_derivatives_uses_jax_grad():
    fig, axes = gc.plot.activation_derivatives(["sigmoid", "relu"], x=np.linspace(-3, 3, 61))
    d = axes[1].get_lines()[0].get_ydata()
    assert d.max() == pytest.approx(0.25, abs=1e-6)
    with pytest.raises(TypeError, match="activations"):
        gc.plot.activation_derivatives("tanh")


def test_activation_histograms_and_comparison():
    hs = gc.forward(gc.mlp(jax.random.PRNGKey(0), 3, 64, "tanh", 4.0, 0.0), jax.random.normal(jax.random.PRNGKey(1), (8, 64)))
    fig, ax = gc.plot.activation_histograms(hs, [1, 3], bins=10, theory=(np.linspace(-0.9, 0.9, 5), np.ones(5), "flat"))
    assert len(ax.get_lines()) == 3 and ax.get_yscale() == "log"
    with pytest.raises(ValueError, match="layer index"):
        gc.plot.activation_histograms(hs, [7])
    fig, ax = gc.plot.activation_comparison(["a", "b"], [0.5, 1.2], [0.5, 1.1], ylabel="χ₁")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b"]
    with pytest.raises(ValueError, match="one value per name"):
        gc.plot.activation_comparison(["a"], [0.5, 1.0], [0.5], ylabel="χ₁")
