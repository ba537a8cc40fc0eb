"""gc.plot.activations: φ/φ' curves, per-layer histograms and profiles."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import jax
import numpy as np
import pytest

import gradcourse as gc


def test_activation_derivatives_draws_the_given_curves():
    x = np.linspace(-3, 3, 61)
    curves = {"sigmoid": (x, np.tanh(x), 1 - np.tanh(x) ** 2), "line": (x, x, np.ones_like(x))}
    fig, axes = gc.plot.activation_derivatives(curves)
    np.testing.assert_array_equal(axes[0].get_lines()[0].get_ydata(), np.tanh(x))
    np.testing.assert_array_equal(axes[1].get_lines()[1].get_ydata(), np.ones_like(x))
    assert [t.get_text() for t in axes[1].get_legend().get_texts()] == ["sigmoid", "line"]
    with pytest.raises(TypeError, match="curves"):
        gc.plot.activation_derivatives(["tanh"])
    with pytest.raises(ValueError, match="equal 1-D shapes"):
        gc.plot.activation_derivatives({"bad": (x, x[:-1], x)})


def test_activation_histograms_and_comparison():
    net = gc.mlp(jax.random.PRNGKey(0), 3, 64, "tanh", 4.0, 0.0)
    hs = gc.forward(net, jax.random.normal(jax.random.PRNGKey(1), (8, 64)))
    fig, ax = gc.plot.activation_histograms(hs, [1, 3], bins=10, theory=(np.linspace(-0.9, 0.9, 5), np.ones(5), "flat"))
    assert len(ax.get_lines()) == 3 and ax.get_yscale() == "log"
    with pytest.raises(ValueError, match="layer index"):
        gc.plot.activation_histograms(hs, [7])
    fig, ax = gc.plot.activation_comparison(["a", "b"], [0.5, 1.2], [0.5, 1.1], ylabel="χ₁")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b"]
    with pytest.raises(ValueError, match="one value per name"):
        gc.plot.activation_comparison(["a"], [0.5, 1.0], [0.5], ylabel="χ₁")
