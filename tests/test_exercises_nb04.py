"""Notebook 04 exercises: every reference passes its own check, typical mistakes get their own message."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import pytest
from exercise_helpers import body, fresh_exercises  # noqa: F401 - autouse fixture

import gradcourse as gc
from gradcourse.exercises import nb04 as ex


def test_q1_reference_matches_a_measured_relu_layer():
    """E‖δ_in‖² / E‖δ_out‖² through a He-initialised ReLU layer, measured over 64 draws."""
    fan_in, fan_out = 300, 100
    keys = jax.random.split(jax.random.PRNGKey(0), 64)

    def gain(key):
        kw, kz, kg = jax.random.split(key, 3)
        W = jax.nn.initializers.he_normal()(kw, (fan_in, fan_out))
        z = jax.random.normal(kz, (fan_in,))
        g = jax.random.normal(kg, (fan_out,))
        _, pull = jax.vjp(lambda x: jax.nn.relu(x) @ W, z)
        return jnp.mean(pull(g)[0] ** 2) / jnp.mean(g**2)  # per-unit variance in / out

    assert float(jnp.mean(jax.vmap(gain)(keys))) == pytest.approx(ex.q1.reference(fan_in, fan_out), rel=0.05)


@pytest.mark.parametrize(
    "answer, phrase",
    [(lambda i, o: 1.0, "forward variance"), (lambda i, o: i / o, "Inverted"), (lambda i, o: 2 * o / i, "1/2"),
     (lambda i, o: 3 / i, "right value is")],
)
def test_q1_mistakes(answer, phrase):
    assert phrase in body(ex.q1.check(answer))


@pytest.mark.parametrize("phi", [jax.nn.relu, jnp.tanh, jax.nn.gelu])
def test_q2_reference_keeps_the_forward_second_moment(phi):
    z = jax.random.normal(jax.random.PRNGKey(1), (1_000_000,))
    assert ex.q2.reference(phi) * float(jnp.mean(phi(z) ** 2)) == pytest.approx(1.0, rel=5e-3)


@pytest.mark.parametrize(
    "answer, phrase",
    [
        (lambda w, b: b / (1 - w), "q/2"),
        (lambda w, b: b / (1 - w) if w < 2 else math.inf, "q/2"),
        (lambda w, b: b / (1 + w / 2), "Sign error"),
        (lambda w, b: b / (1 - w / 2), "return math.inf"),
        (lambda w, b: b / (1 - w / 2) if w < 2 else -math.inf, "not −inf"),
        (lambda w, b: b if w < 2 else math.inf, "Right for σ_w² ≥ 2"),
    ],
)
def test_q3_mistakes(answer, phrase):
    assert phrase in body(ex.q3.check(answer))


@pytest.mark.parametrize("sigma_w2, sigma_b2", [(1.0, 0.05), (1.5, 0.2), (2.5, 0.1)])
def test_q3_reference_matches_mean_field_theory(sigma_w2, sigma_b2):
    want = ex.q3.reference(sigma_w2, sigma_b2)
    got = float(gc.theory.qstar("relu", sigma_w2, sigma_b2))
    assert got == want if math.isinf(want) else got == pytest.approx(want, rel=1e-4)


@pytest.mark.parametrize(
    "answer, phrase",
    [
        (lambda L: float(L), "variance"), (lambda L: 1.0, "orthogonal"), (lambda L: 2.0**L, "add"),
        (lambda L: 2.0, "one layer"), (lambda L: L + 2.0, "right value is"),
    ],
)
def test_q4_mistakes(answer, phrase):
    assert phrase in body(ex.q4.check(answer))


def test_q4_reference_is_the_fuss_catalan_moment():
    for L in range(1, 12):
        assert gc.rmt.fuss_catalan_moment(L, 2) == ex.q4.reference(L)




def test_q5_reference_makes_a_measured_layer_hit_the_target():
    """Scale W by the reference on a random batch: Var[h W] equals the target (up to float32)."""
    kh, kw = jax.random.split(jax.random.PRNGKey(2))
    h, W = jax.random.normal(kh, (512, 64)), 3.0 * jax.random.normal(kw, (64, 64))
    var_z = float(jnp.var(h @ W))
    assert float(jnp.var(h @ (ex.q5.reference(var_z, 0.5) * W))) == pytest.approx(0.5, rel=1e-4)


@pytest.mark.parametrize(
    "answer, phrase",
    [(lambda v, t: t / v, "square root"), (lambda v, t: math.sqrt(v / t), "Inverted"),
     (lambda v, t: 1 / math.sqrt(v), "target 1")],
)
def test_q5_mistakes(answer, phrase):
    assert phrase in body(ex.q5.check(answer))
