"""gc.scale_invariance against a simulation of the vector update with gradients orthogonal to W, and against
optax on a real LayerNorm layer."""
from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gradcourse import layers
from gradcourse import scale_invariance as si


def _simulate(w0, lr, wd, G, steps, n=400, seed=0):
    """W ← (1 − ηλ)W − ηg with g a random direction ⟂ W of norm sqrt(G)/‖W‖; returns ‖W_t‖ and the angles."""
    rng = np.random.default_rng(seed)
    W = rng.normal(size=n)
    W *= w0 / np.linalg.norm(W)
    norms, angles = [w0], []
    for _ in range(steps):
        r = rng.normal(size=n)
        r -= (r @ W) / (W @ W) * W
        g = r / np.linalg.norm(r) * np.sqrt(G) / np.linalg.norm(W)
        new = (1 - lr * wd) * W - lr * g
        angles.append(np.arccos(np.clip(new @ W / (np.linalg.norm(new) * np.linalg.norm(W)), -1, 1)))
        W = new
        norms.append(np.linalg.norm(W))
    return np.array(norms), np.array(angles)


@pytest.mark.parametrize("w0", [0.2, 5.0])
def test_trajectory_equals_simulated_update(w0):
    norms, _ = _simulate(w0, 0.5, 0.01, 0.3, 300)
    np.testing.assert_allclose(si.norm_trajectory(w0, 0.5, 0.01, 0.3, 300), norms, rtol=1e-9)


def test_equilibrium_is_the_limit_from_both_sides_and_angle_is_arccos():
    lr, wd, G = 0.5, 0.02, 0.3
    for w0 in (0.1, 10.0):
        norms, angles = _simulate(w0, lr, wd, G, 3000)
        assert abs(norms[-1] / si.equilibrium_norm(lr, wd, G) - 1) < 1e-6
        assert abs(angles[-1] / si.equilibrium_angle(lr, wd) - 1) < 1e-6
    # small-ηλ forms
    assert abs(si.equilibrium_norm(1e-3, 1e-3, 2.0) / (1e-3 * 2.0 / 2e-3) ** 0.25 - 1) < 1e-6
    assert abs(si.equilibrium_angle(1e-3, 1e-3) / np.sqrt(2e-6) - 1) < 1e-6


def test_without_decay_fourth_power_grows_linearly():
    t = si.norm_trajectory(3.0, 0.1, 0.0, 2.0, 5000)
    want = (3.0**4 + 2 * 0.1**2 * 2.0 * np.arange(5001)) ** 0.25
    assert np.max(np.abs(t / want - 1)) < 1e-3


def test_optax_step_on_a_layernorm_weight_obeys_the_recursion():
    """One optax step (add_decayed_weights + sgd) on a W feeding LayerNorm: ‖W'‖² = (1 − ηλ)²‖W‖² + η²‖g‖²."""
    kw, kx, ky = jax.random.split(jax.random.PRNGKey(0), 3)
    W = jax.random.normal(kw, (16, 16), jnp.float32)
    x, y = jax.random.normal(kx, (8, 16)), jax.random.normal(ky, (8, 16))
    g = jax.grad(lambda W: jnp.mean((layers.layer_normalize(x @ W, eps=0.0) - y) ** 2))(W)
    lr, wd = 0.3, 0.05
    opt = optax.chain(optax.add_decayed_weights(wd), optax.sgd(lr))
    upd, _ = opt.update(g, opt.init(W), W)
    new = np.asarray(optax.apply_updates(W, upd), np.float64)
    W64, g64 = np.asarray(W, np.float64), np.asarray(g, np.float64)
    x0 = np.sum(W64**2)
    G = np.sum(g64**2) * x0                               # gradient at the unit direction, squared
    pred = si.norm_trajectory(np.sqrt(x0), lr, wd, G, 1)[-1]
    assert abs(np.linalg.norm(new) / pred - 1) < 1e-5


@pytest.mark.parametrize("call, message", [
    (lambda: si.equilibrium_norm(0.1, 0.0, 1.0), "weight_decay"),
    (lambda: si.equilibrium_norm(-0.1, 0.1, 1.0), "lr"),
    (lambda: si.equilibrium_angle(10.0, 0.2), "lr * weight_decay"),
    (lambda: si.norm_trajectory(1.0, 0.1, 0.0, 1.0, 0), "steps"),
])
def test_bad_arguments_name_the_argument(call, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call()
