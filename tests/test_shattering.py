"""gc.shattering against a NumPy reference, closed-form curves, and jax.jacfwd tangents."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import gradcourse as gc
from gradcourse import layers
from gradcourse import shattering as sh


def _np_lag1(G):
    G = np.asarray(G, np.float64)
    G = G - G.mean(0)
    var = (G**2).sum(0)
    live = var > 0
    return np.mean(((G[1:] * G[:-1]).sum(0))[live] / var[live])


def test_lag1_matches_numpy_and_skips_dead_units():
    G = np.random.default_rng(0).normal(size=(300, 20)).cumsum(0)
    G[:, 3] = 2.0                                        # a dead unit: constant curve
    np.testing.assert_allclose(float(sh.lag1_autocorrelation(jnp.asarray(G, jnp.float32))), _np_lag1(G), rtol=1e-4)


def test_lag1_of_a_cosine_and_of_white_noise():
    t = np.arange(2000)[:, None] * 0.01
    assert abs(float(sh.lag1_autocorrelation(jnp.cos(3.0 * t))) - np.cos(0.03)) < 2e-3
    noise = jax.random.normal(jax.random.PRNGKey(0), (4000, 50))
    assert abs(float(sh.lag1_autocorrelation(noise))) < 0.01     # sd ~ 1/sqrt(4000 * 50)


def test_profile_uses_the_true_input_gradient():
    n, depth = 16, 3
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(1), 3)
    w_in, b_in = jax.random.normal(k1, (n,)), jax.random.normal(k2, (n,))
    model = gc.Stacked(layers.dense("tanh"), layers.init_params(k3, depth, n, sigma_w2=1.5))
    xs = jnp.linspace(-2.0, 2.0, 64)
    prof = np.asarray(sh.shattering_profile(model, xs, w_in, b_in))
    last = jax.vmap(jax.jacfwd(lambda x: gc.forward(model, jax.nn.relu(x * w_in + b_in)[None])[-1][0]))(xs)  # (P, n)
    first = jax.vmap(jax.jacfwd(lambda x: jax.nn.relu(x * w_in + b_in)))(xs)
    np.testing.assert_allclose(prof[-1], _np_lag1(last), rtol=1e-4)
    np.testing.assert_allclose(prof[0], _np_lag1(first), rtol=1e-4)
    assert prof.shape == (depth + 1,)


def test_identity_stack_keeps_the_first_layers_smoothness():
    n, depth = 16, 5
    p = layers.init_params(jax.random.PRNGKey(2), depth, n, block="mlp", sigma_w2=2.0, alpha=True)
    model = gc.Stacked(layers.residual(layers.mlp_block("relu"), scale="alpha"), {**p, "alpha": jnp.zeros(depth)})
    k1, k2 = jax.random.split(jax.random.PRNGKey(3))
    prof = np.asarray(sh.shattering_profile(model, jnp.linspace(-2, 2, 100), jax.random.normal(k1, (n,)),
                                            jax.random.normal(k2, (n,))))
    np.testing.assert_allclose(prof, prof[0], rtol=1e-6)
