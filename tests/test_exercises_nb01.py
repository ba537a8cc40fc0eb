"""Notebook 01 exercises: every reference passes its own check, typical mistakes get their own message."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from exercise_helpers import body, fresh_exercises  # noqa: F401 - autouse fixture

from gradcourse.exercises import nb01 as ex
from gradcourse.exercises._core import CORRECT

# ----------------------------------------------------------------------------- q1


def test_q1_reference_matches_jax_grad():
    W, b, h_prev, g_out = (jnp.asarray(a, jnp.float32) for a in ex._q1_data())

    def loss(W, b, h_prev):
        return jnp.sum(jnp.tanh(h_prev @ W.T + b) * g_out)  # ∂loss/∂h = g_out

    want = jax.grad(loss, argnums=(2, 0, 1))(W, b, h_prev)
    for got, w in zip(ex.q1.reference(W, b, h_prev, g_out), want, strict=False):
        np.testing.assert_allclose(got, w, rtol=1e-5, atol=1e-6)


def _layer(dW=None, d_hprev=None, db=None, deriv=lambda z, h: 1 - h**2):
    """A dense_tanh_backward with one piece replaceable, to build typical mistakes."""
    def fn(W, b, h_prev, g_out):
        z = h_prev @ W.T + b
        delta = g_out * deriv(z, np.tanh(z))
        return (
            d_hprev(delta, W, g_out) if d_hprev else delta @ W,
            dW(delta, h_prev) if dW else delta.T @ h_prev,
            db(delta) if db else delta.sum(0),
        )
    return fn


@pytest.mark.parametrize(
    "answer, phrase",
    [
        (_layer(dW=lambda d, h: h.T @ d), "its transpose"),
        (_layer(dW=lambda d, h: d.T @ h / h.shape[0]), "averaged over the batch"),
        (_layer(db=lambda d: d), "sum δ over axis 0"),
        (_layer(db=lambda d: d.mean(0)), "averaged over the batch"),
        (_layer(d_hprev=lambda d, W, g: d), "take one more step back"),
        (_layer(deriv=lambda z, h: 1.0), "forgot the derivative of tanh"),
        (_layer(deriv=lambda z, h: 1 - h), "with a square"),
        (_layer(deriv=lambda z, h: 1 - z**2), "not 1 - z²"),
        (_layer(deriv=lambda z, h: h * (1 - h)), "derivative of the sigmoid"),
        (_layer(d_hprev=lambda d, W, g: 2 * d @ W), "constant factor"),
        (lambda W, b, h_prev, g_out: (1, 2), "three arrays"),
        (lambda W, b, h_prev, g_out: (h_prev @ W, 0, 0), "raised"),
        (3.0, "Pass your function"),
    ],
)
def test_q1_mistakes(answer, phrase):
    assert phrase in body(ex.q1.check(answer))


# ----------------------------------------------------------------------------- q2


def test_q2_reference_counts_columns_and_rows():
    f = lambda x: jnp.stack([jnp.sum(x**2), jnp.prod(x)])  # noqa: E731  R^3 -> R^2
    x = jnp.array([1.0, 2.0, 3.0])
    n_jvp, n_vjp = ex.q2.reference(3, 2)
    cols = [jax.jvp(f, (x,), (e,))[1] for e in jnp.eye(n_jvp)]
    _, pull = jax.vjp(f, x)
    rows = [pull(u)[0] for u in jnp.eye(n_vjp)]
    np.testing.assert_allclose(jnp.stack(cols, 1), jax.jacfwd(f)(x), rtol=1e-6)
    np.testing.assert_allclose(jnp.stack(rows), jax.jacfwd(f)(x), rtol=1e-6)
    assert ex.q2.reference(1000, 1) == (1000, 1)


@pytest.mark.parametrize(
    "answer, phrase",
    [
        (lambda n, m: (m, n), "swapped"),
        (lambda n, m: (1, 1), "One pass is not enough"),
        (lambda n, m: (n * m, n * m), "not a single entry"),
        (lambda n, m: (n, n), "number of outputs m"),
        (lambda n, m: (m, m), "number of inputs n"),
        (lambda n, m: (n, 2 * m), "passes(1000, 1) returned (1000, 2)"),
        (lambda n, m: n, "Return a pair"),
        ((1000, 1), "Pass your function"),
    ],
)
def test_q2_mistakes(answer, phrase):
    assert phrase in body(ex.q2.check(answer))


# ----------------------------------------------------------------------------- q3


def test_q3_reference_is_jacrev_on_another_function():
    f = lambda x: jnp.sin(x[:2]) * x[2]  # noqa: E731  R^3 -> R^2
    x = jnp.array([0.1, 0.2, 0.3])
    np.testing.assert_allclose(ex.q3.reference(f, x), jax.jacrev(f)(x), rtol=1e-6)


@pytest.mark.parametrize(
    "answer, phrase",
    [
        (lambda f, x: jax.jacfwd(f)(x).T, "transposed"),
        (lambda f, x: -jax.jacfwd(f)(x), "wrong sign"),
        (lambda f, x: jax.jacfwd(f)(x)[:2], "should have shape (3, 4)"),
    ],
)
def test_q3_mistakes(answer, phrase):
    assert phrase in body(ex.q3.check(answer))


def test_q3_jacfwd_is_accepted_as_a_value():
    assert ex.q3.check(lambda f, x: jax.jacfwd(f)(x)).status == CORRECT


# ----------------------------------------------------------------------------- q4


def test_q4_reference_minimises_the_error_model():
    u = 2.0**-24
    eps = np.geomspace(1e-6, 1e-1, 20001)
    err = eps**2 / 6 + u / eps
    assert eps[np.argmin(err)] == pytest.approx(ex.q4.reference, rel=1e-3)


def test_q4_reference_is_near_the_measured_best_step_in_float32():
    eps = np.geomspace(1e-5, 1e-1, 41)
    x = np.float32(0.0)
    err = [abs((np.exp(x + np.float32(e)) - np.exp(x - np.float32(e))) / np.float32(2 * e) - 1.0) for e in eps]
    best = eps[int(np.argmin(err))]
    assert 1 / 10 < best / ex.q4.reference < 10


U32 = 2.0**-24


@pytest.mark.parametrize(
    "answer, phrase",
    [
        (math.sqrt(U32), "one-sided"),
        ((3 * 2.0**-53) ** (1 / 3), "float64"),
        (U32 ** (1 / 3), "dropped the factor 3"),
        ((1.5 * U32) ** (1 / 3), "derivative of the truncation term"),
        ((6 * U32) ** (1 / 3), "machine epsilon"),
        (0.3, "is not right"),
        ("small", "should be a number"),
        (-1e-3, "is not right"),
    ],
)
def test_q4_typical_wrong_steps_are_rejected_with_their_reason(answer, phrase):
    assert phrase in body(ex.q4.check(answer))


@pytest.mark.parametrize("answer", [(3 * U32) ** (1 / 3), np.float32((3 * U32) ** (1 / 3)), 5.6e-3, 5.9e-3])
def test_q4_accepts_the_optimum_to_a_few_percent(answer):
    assert ex.q4.check(answer).status == CORRECT
