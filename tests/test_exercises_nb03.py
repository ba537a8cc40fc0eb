"""Notebook 03 exercises: every reference passes its own check, typical mistakes get their own message."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import pytest

import gradcourse as gc
from gradcourse.exercises import nb03 as ex
from gradcourse.exercises._core import CORRECT, NOT_ATTEMPTED
from exercise_helpers import body


@pytest.mark.parametrize("q", [ex.q1, ex.q2, ex.q3, ex.q4])
def test_reference_passes_and_placeholders_are_not_attempted(q):
    assert q.check(q.reference).status == CORRECT
    assert q.check(None).status == NOT_ATTEMPTED
    if callable(q.reference):
        def template(*args):
            raise NotImplementedError

        assert q.check(template).status == NOT_ATTEMPTED
        assert q.check(lambda *args: None).status == NOT_ATTEMPTED
    assert q.hint(1).body and q.solution().body


def test_q1_reference_is_the_max_of_sigmoid_prime():
    x = jnp.linspace(-10, 10, 20001)
    slope = jax.vmap(jax.grad(jax.nn.sigmoid))(x)
    assert float(slope.max()) == pytest.approx(ex.q1.reference, rel=1e-6)


@pytest.mark.parametrize(
    "answer, phrase",
    [(0.5, "σ(0)"), (1.0, "tanh'(0)"), (1 / 16, "squared slope"), (math.exp(-1) / (1 + math.exp(-1)) ** 2, "σ'(1)"), (0.3, "is not right")],
)
def test_q1_mistakes(answer, phrase):
    assert phrase in body(ex.q1.check(answer))


@pytest.mark.parametrize(
    "answer, phrase",
    [
        (lambda L, s: (s / 2) ** L, "1/2 as the slope bound"),
        (lambda L, s: s**L / 4, "at every layer"),
        (lambda L, s: s / 4**L, "s^L in all"),
        (lambda L, s: 4.0**-L, "unit weights"),
        (lambda L, s: (s / 4) ** (2 * L), "squared"),
        (lambda L, s: (s / 3) ** L, "right value is"),
        (lambda L: 1.0, "raised TypeError"),
        (0.25, "Expected a function"),
    ],
)
def test_q2_mistakes(answer, phrase):
    assert phrase in body(ex.q2.check(answer))


def test_q2_bound_holds_for_a_sigmoid_stack():
    """The reference bound is never beaten by a real sigmoid stack with orthogonal (spectral norm 1) weights."""
    L, n = 6, 32
    model = gc.mlp(jax.random.PRNGKey(0), L, n, "sigmoid", init=jax.nn.initializers.orthogonal())
    s = gc.jacobian_spectrum(model, jax.random.normal(jax.random.PRNGKey(1), (n,)))
    assert float(s[0]) <= ex.q2.reference(L, 1.0) * (1 + 1e-5)


@pytest.mark.parametrize(
    "answer, phrase",
    [
        (lambda a: 2 / (1 + a), "averaged the slope"),
        (lambda a: 2.0, "ReLU answer"),
        (lambda a: 1 / (1 + a * a), "Missing the factor 2"),
        (lambda a: (1 + a * a) / 2, "reciprocal"),
        (lambda a: 2 / (1 - a * a), "right value is"),
    ],
)
def test_q3_mistakes(answer, phrase):
    assert phrase in body(ex.q3.check(answer))


def test_q3_reference_matches_mean_field_theory():
    """jax.nn.leaky_relu (slope 0.01): gc.theory's critical σ_w² at σ_b² = 0 equals 2 / (1 + a²)."""
    crit = gc.theory.critical_sigma_w2("leaky_relu", 0.0)
    assert crit == pytest.approx(ex.q3.reference(0.01), rel=1e-4)


@pytest.mark.parametrize(
    "answer, phrase",
    [
        (lambda q, s: 0.5 * math.erfc(math.atanh(s) / math.sqrt(2 * q)), "Only one tail"),
        (lambda q, s: math.erfc(math.atanh(s) / (math.sqrt(2) * q)), "standard deviation"),
        (lambda q, s: math.erfc(s / math.sqrt(2 * q)), "atanh(s)"),
        (lambda q, s: math.erf(math.atanh(s) / math.sqrt(2 * q)), "not* saturated"),
    ],
)
def test_q4_mistakes(answer, phrase):
    assert phrase in body(ex.q4.check(answer))


def test_q4_reference_matches_activation_stats():
    """The saturated fraction of tanh(z), z ~ N(0, q), measured by gc.stats equals the reference."""
    q = 2.0
    z = jnp.sqrt(q) * jax.random.normal(jax.random.PRNGKey(0), (1, 400_000))
    stats = gc.stats.activation_stats([jnp.tanh(z)], "tanh")
    assert float(stats.frac_saturated[0]) == pytest.approx(ex.q4.reference(q, 0.99), abs=4e-3)


def test_summary_counts_correct_answers():
    for q in ex.sheet.exercises:
        q.check(None)
    assert "Still to do: q1, q2, q3, q4" in ex.sheet.summary().body
    for q in ex.sheet.exercises:
        q.check(q.reference)
    assert ex.sheet.summary().passed
