"""Notebook 06 exercises: references agree with gradcourse.layers, JAX and measurement; typical mistakes get their
own message."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from exercise_helpers import body, fresh_exercises  # noqa: F401 - autouse fixture

import gradcourse as gc
from gradcourse import layers
from gradcourse.exercises import nb06 as ex

# ----------------------------------------------------------------------------- q1


def test_q1_reference_matches_measured_streams():
    """The measured growth of a width-512 stream, fed back into layers_to_grow, gives back the depth."""
    depth, width = 20, 512
    kp, kx = jax.random.split(jax.random.PRNGKey(0))
    params = layers.init_params(kp, depth, width, block="mlp", sigma_w2=2.0, norm="layer", alpha=True)
    params["alpha"] = jnp.full(depth, 0.5)
    x = jax.random.normal(kx, (32, width))
    x = x / jnp.sqrt(jnp.mean(x**2))  # q_0 = 1 exactly
    for prenorm in (False, True):
        f = layers.residual(layers.mlp_block("relu", norm="layer" if prenorm else None), "alpha")
        q = np.asarray(gc.mean_square(gc.forward(gc.Stacked(f, params), x)))
        assert ex.q1.reference(float(q[-1] / q[0]), 0.5, 1.0, prenorm) == pytest.approx(depth, rel=0.15)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda f, s, c, p: ex.q1.reference(f, s, c, not p), "swapped"),
        (lambda f, s, c, p: ex.q1.reference(f, math.sqrt(s), c, p), "enters squared"),
        (lambda f, s, c, p: math.log(f) / (s**2 * c) if not p else ex.q1.reference(f, s, c, p), "ln(1 + s²c)"),
        (lambda f, s, c, p: f / (s**2 * c) if p else ex.q1.reference(f, s, c, p), "q_0 = 1"),
    ],
)
def test_q1_typical_mistakes(wrong, message):
    assert message in body(ex.q1.check(wrong))


# ----------------------------------------------------------------------------- q2


def test_q2_reference_solves_the_growth_equation():
    for L, g in [(1, 2.0), (37, 3.0), (1000, 2.0)]:
        s = ex.q2.reference(L, g)
        assert math.isclose((1 + s**2) ** L, g, rel_tol=1e-9)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda L, g: 1 / math.sqrt(L), "1/√L"),
        (lambda L, g: g ** (1 / L) - 1, "square root"),
        (lambda L, g: math.sqrt(math.log(g) / L), "large L"),
        (lambda L, g: math.sqrt((g - 1) / L), "first-order"),
    ],
)
def test_q2_typical_mistakes(wrong, message):
    assert message in body(ex.q2.check(wrong))


# ----------------------------------------------------------------------------- q3


def test_q3_accepts_a_float32_answer():
    """Issue: an rtol of 1e-8 rejected the right VJP computed in float32."""
    def vjp32(u, J, s):
        return jnp.asarray(u, jnp.float32) + s * jnp.asarray(u, jnp.float32) @ jnp.asarray(J, jnp.float32)

    fb = ex.q3.check(vjp32)
    assert fb.passed, fb


def test_q3_reference_equals_jax_vjp_of_a_residual_layer():
    p = jax.tree_util.tree_map(lambda a: a[0], layers.init_params(jax.random.PRNGKey(1), 1, 6, sigma_w2=2.0))
    f = layers.dense("tanh")
    h = jax.random.normal(jax.random.PRNGKey(2), (6,))
    u = np.asarray(jax.random.normal(jax.random.PRNGKey(3), (6,)))
    J = np.asarray(jax.jacfwd(lambda v: f(p, v))(h))
    _, pull = jax.vjp(lambda v: layers.residual(f, 0.3)(p, v), h)
    np.testing.assert_allclose(ex.q3.reference(u, J, 0.3), pull(jnp.asarray(u, jnp.float32))[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda u, J, s: s * u @ J, "skip path"),
        (lambda u, J, s: u + u @ J, "scaled by s"),
        (lambda u, J, s: u + s * u @ J.T, "Transposed"),
    ],
)
def test_q3_typical_mistakes(wrong, message):
    assert message in body(ex.q3.check(wrong))


# ----------------------------------------------------------------------------- q4


def test_q4_reference_meets_the_backward_budget_in_a_measured_prenorm_stack():
    depth, width, r = 30, 512, 4.0
    kp, kx, ku = jax.random.split(jax.random.PRNGKey(4), 3)
    x, u = jax.random.normal(kx, (32, width)), jax.random.normal(ku, (32, width))
    q0 = float(gc.mean_square(x[None])[0])
    params = layers.init_params(kp, depth, width, block="mlp", sigma_w2=2.0, norm="layer", alpha=True)
    params["alpha"] = jnp.full(depth, ex.q4.reference(depth, r, q0, 1.0))
    model = gc.Stacked(layers.residual(layers.mlp_block("relu", norm="layer"), "alpha"), params)
    g = np.asarray(gc.mean_square(gc.backward(model, x, lambda h: jnp.sum(h * u))))
    assert abs(math.log(g[0] / g[-1] / r)) < math.log(1.3)  # width 512: the notebook's scatter is about 10 %


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda L, r, q0, c: (r - 1) * q0 / (L * c), "square root"),
        (lambda L, r, q0, c: math.sqrt(r * q0 / (L * c)), "r − 1"),
        (lambda L, r, q0, c: math.sqrt((r - 1) / (L * c)), "dropped q0"),
    ],
)
def test_q4_typical_mistakes(wrong, message):
    assert message in body(ex.q4.check(wrong))
