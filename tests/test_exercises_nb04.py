"""Notebook 04 exercises: every reference passes its own check, typical mistakes get their own message."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import pytest

import gradcourse as gc
from gradcourse.exercises import nb04 as ex
from gradcourse.exercises._core import CORRECT, NOT_ATTEMPTED
from exercise_helpers import body


@pytest.mark.parametrize("q", [ex.q1, ex.q2, ex.q3, ex.q4])
def test_reference_passes_and_placeholders_are_not_attempted(q):
    assert q.check(q.reference).status == CORRECT
    assert q.check(None).status == NOT_ATTEMPTED

    def template(*args):
        raise NotImplementedError

    assert q.check(template).status == NOT_ATTEMPTED
    assert q.hint(2).body and q.solution().body


@pytest.mark.parametrize(
    "initializer, reference", [(jax.nn.initializers.he_normal(), ex.q1.reference), (jax.nn.initializers.glorot_normal(), ex.q2.reference)]
)
def test_references_match_jax_initializers(initializer, reference):
    fan_in, fan_out = 300, 100
    W = initializer(jax.random.PRNGKey(0), (fan_in, fan_out))
    assert float(jnp.var(W)) == pytest.approx(reference(fan_in, fan_out), rel=0.03)  # 30 000 samples: ~1% noise


@pytest.mark.parametrize(
    "answer, phrase",
    [
        (lambda i, o: 2 / o, "fan_out"),
        (lambda i, o: 1 / i, "Missing the factor 2"),
        (lambda i, o: math.sqrt(2 / i), "standard deviation"),
        (lambda i, o: 4 / (i + o), "Glorot"),
        (lambda i, o: 3 / i, "right value is"),
    ],
)
def test_q1_mistakes(answer, phrase):
    assert phrase in body(ex.q1.check(answer))


@pytest.mark.parametrize(
    "answer, phrase",
    [
        (lambda i, o: 1 / (i + o), "factor 2"),
        (lambda i, o: 1 / i, "LeCun"),
        (lambda i, o: 2 / i, "He's ReLU rule"),
        (lambda i, o: 6 / (i + o), "uniform"),
        (lambda i, o: math.sqrt(2 / (i + o)), "standard deviation"),
    ],
)
def test_q2_mistakes(answer, phrase):
    assert phrase in body(ex.q2.check(answer))


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
    [(lambda L: float(L), "variance"), (lambda L: 1.0, "orthogonal"), (lambda L: 2.0**L, "add"), (lambda L: 2.0, "one layer"), (lambda L: L + 2.0, "right value is")],
)
def test_q4_mistakes(answer, phrase):
    assert phrase in body(ex.q4.check(answer))


def test_q4_reference_is_the_fuss_catalan_moment():
    for L in range(1, 12):
        assert gc.plot.fuss_catalan_moment(L, 2) == ex.q4.reference(L)


def test_summary():
    for q in ex.sheet.exercises:
        q.check(q.reference)
    assert ex.sheet.summary().passed
    assert len(ex.sheet.exercises) == 4
