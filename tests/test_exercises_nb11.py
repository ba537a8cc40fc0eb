"""Notebook 11 exercises: references agree with float16 itself; typical mistakes get their own message."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from exercise_helpers import body, fresh_exercises  # noqa: F401 - autouse fixture

from gradcourse import precision
from gradcourse.exercises import nb11 as ex
from gradcourse.exercises._core import CORRECT, NOT_ATTEMPTED


def test_float16_max_constant():
    assert ex._F16_MAX == precision.float_format(jnp.float16).max


def test_q1_reference_is_the_largest_safe_power_of_two():
    S, gmax, cap = ex.q1.reference, float(ex.q1_gradients.max()), 65504.0 / 8
    assert np.log2(S) == int(np.log2(S))
    assert S * gmax <= cap < 2 * S * gmax
    scaled = (ex.q1_gradients.astype(np.float32) * np.float32(S)).astype(np.float16)
    assert np.all(np.isfinite(scaled)) and float(np.abs(scaled).max()) <= cap   # no overflow in float16 itself
    assert ex.q1.check(S).status == CORRECT and ex.q1.check(np.float32(S)).status == CORRECT
    assert ex.q1.check(None).status == NOT_ATTEMPTED


@pytest.mark.parametrize(
    "answer, phrase",
    [
        (lambda S: 8 * S, "no headroom"),
        (lambda S: 65504 / 8 / float(ex.q1_gradients.max()), "not a power of two"),
        (lambda S: 2 * S, "Rounded up"),
        (lambda S: 2.0 ** np.floor(np.log2(65504 / 8 / np.median(ex.q1_gradients))), "median"),
        (lambda S: 2.0 ** np.floor(np.log2(65504 / 8 / np.mean(ex.q1_gradients))), "mean"),
        (lambda S: 2.0 ** np.ceil(np.log2(2.0**-24 / ex.q1_gradients.min())), "smallest entry"),
        (lambda S: S / 2, "not right"),
    ],
)
def test_q1_mistakes(answer, phrase):
    assert phrase in body(ex.q1.check(answer(ex.q1.reference)))


def test_q2_reference_values_and_gradient():
    f = ex.q2.reference
    xs = jnp.array([-1.0, 0.0, 0.25, 4.0])
    np.testing.assert_allclose(jax.vmap(f)(xs), jnp.sqrt(jnp.maximum(xs, 0)), rtol=1e-6)
    g = jax.vmap(jax.grad(f))(xs)
    np.testing.assert_allclose(g[2:], 0.5 / jnp.sqrt(xs[2:]), rtol=1e-6)     # closed form 1/(2√x)
    assert float(g[0]) == 0.0 and float(g[1]) == 0.0
    assert np.isnan(float(jax.grad(lambda x: jnp.where(x > 0, jnp.sqrt(x), 0.0))(0.0)))   # the trap is real
    assert ex.q2.check(f).status == CORRECT


def _template(x):
    return None


@pytest.mark.parametrize(
    "answer, phrase",
    [
        (lambda x: jnp.where(x > 0, jnp.sqrt(x), 0.0), "still NaN"),
        (lambda x: jnp.sqrt(jnp.maximum(x, 0.0)), "infinite"),
        (lambda x: jnp.sqrt(jnp.maximum(x, 0.0) + 1e-6), "keep the values"),
        (lambda x: jnp.nan_to_num(jnp.where(x > 0, jnp.sqrt(x), 0.0)), "still NaN"),
        (lambda x: jnp.where(x > 0, 2 * jnp.sqrt(jnp.where(x > 0, x, 1.0)), 0.0), "returns"),
        (lambda x: float(x) if x > 0 else 0.0, "Your code raised"),
        (3.0, "function"),
    ],
)
def test_q2_mistakes(answer, phrase):
    assert phrase in body(ex.q2.check(answer))


def test_q2_template_is_not_attempted():
    assert ex.q2.check(_template).status == NOT_ATTEMPTED


def test_q3_reference_against_gc_precision():
    for (g,) in ex._Q3_CASES:
        zero, _ = precision.underflow_fractions(g, jnp.float16)
        assert ex.q3.reference(g) == pytest.approx(float(zero), rel=1e-6)
        assert 0.05 < ex.q3.reference(g) < 0.5                     # the cases exercise the distinction
    assert ex.q3.check(ex.q3.reference).status == CORRECT


@pytest.mark.parametrize(
    "index, phrase", [(0, "already 0"), (1, "numerator"), (2, "round *up*"), (3, "smallest *normal*"), (4, "eps")]
)
def test_q3_mistakes(index, phrase):
    wrong, _ = ex.q3.mistakes[index]
    assert phrase in body(ex.q3.check(wrong))


def test_hints_solutions_summary():
    for q in ex.sheet.exercises:
        assert q.hint(1).body and q.hint(2).body and q.solution().body
    assert "0/3" in ex.sheet.summary().title
