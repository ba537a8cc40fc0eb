"""gc.theory.edge_of_chaos and gc.theory.relu_dead_fraction against closed forms and sampling."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradcourse as gc


def test_relu_dead_fraction_closed_forms():
    got = gc.theory.relu_dead_fraction([0.0, 0.5, 1.0], 16)
    # c = 0: independent, 2^-B; c = 1/2: the equicorrelated orthant probability 1/(B+1); c = 1: 1/2
    np.testing.assert_allclose(got, [2.0**-16, 1 / 17, 0.5], rtol=1e-6)
    two = gc.theory.relu_dead_fraction([0.3], 2)[0]
    assert two == pytest.approx(0.25 + np.arcsin(0.3) / (2 * np.pi), rel=1e-6)  # Sheppard's formula


def test_relu_dead_fraction_matches_sampling():
    c, B = 0.8, 8
    g = jax.random.normal(jax.random.PRNGKey(0), (200_000, 1))
    e = jax.random.normal(jax.random.PRNGKey(1), (200_000, B))
    z = jnp.sqrt(c) * g + jnp.sqrt(1 - c) * e
    assert float(jnp.mean(jnp.all(z <= 0, axis=1))) == pytest.approx(gc.theory.relu_dead_fraction(c, B), abs=3e-3)


def test_relu_dead_fraction_validates():
    with pytest.raises(ValueError, match="batch"):
        gc.theory.relu_dead_fraction(0.5, 0)
    with pytest.raises(ValueError, match="c:"):
        gc.theory.relu_dead_fraction([1.5], 4)


def test_edge_of_chaos_values():
    crit = gc.theory.edge_of_chaos("tanh", [0.0, 0.05, 0.25])
    assert crit[1] == pytest.approx(1.7610, abs=2e-3)  # Poole et al. (2016) / Schoenholz et al. (2017)
    assert crit[0] == pytest.approx(1.0, abs=5e-3)  # σ_b² = 0: tanh'(0)² σ_w² = 1
    assert crit[2] > crit[1]  # more bias variance pushes the edge of chaos to larger σ_w²
    np.testing.assert_allclose(gc.theory.edge_of_chaos("relu", [0.0, 0.3]), 2.0, rtol=1e-4)  # χ₁ = σ_w²/2
    for s_w, s_b in zip(crit, [0.0, 0.05, 0.25], strict=True):
        assert float(gc.theory.chi1("tanh", s_w, s_b)) == pytest.approx(1.0, abs=2e-3)


def test_edge_of_chaos_is_nan_without_a_crossing():
    """The sigmoid stays ordered (χ₁ < 1) for every σ_w² up to 20."""
    assert np.isnan(gc.theory.edge_of_chaos("sigmoid", 0.05, hi=20.0)).all()


@pytest.mark.parametrize("bad", [[-0.1], [np.nan], [[0.1, 0.2]]])
def test_edge_of_chaos_rejects_bad_sigma_b2(bad):
    with pytest.raises(ValueError, match="sigma_b2"):
        gc.theory.edge_of_chaos("tanh", bad)
