"""Notebook 02 exercises: references agree with measurement and theory; typical mistakes get their own message."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from exercise_helpers import body, fresh_exercises  # noqa: F401 - autouse fixture

import gradcourse as gc
from gradcourse.exercises import nb02 as ex

# ----------------------------------------------------------------------------- q1


def test_q1_reference_matches_a_wide_linear_net():
    depth, sigma_w = 20, 1.2
    model = gc.mlp(jax.random.PRNGKey(1), depth, 512, "linear", sigma_w**2)
    u = jax.random.normal(jax.random.PRNGKey(2), (16, 512))
    norms = gc.signal_norms(gc.vjp_chain(model, jnp.ones((16, 512)), u))
    assert float(norms[0] / norms[-1]) == pytest.approx(ex.q1.reference(depth, sigma_w), rel=0.1)


@pytest.mark.parametrize(
    "answer, phrase",
    [
        (lambda L, s: s ** (2 * L), "You squared"),
        (lambda L, s: s ** (L / 2), "square root too many"),
        (lambda L, s: s ** (L - 1), "all L weight matrices"),
        (lambda L, s: s ** (L + 1), "exactly L weight"),
        (lambda L, s: s ** (-L), "Inverted"),
        (lambda L, s: s * L, "multiply, they do not add"),
        (lambda L, s: 2 * s**L, "constant factor"),
        (lambda L: 1.0, "raised TypeError"),
    ],
)
def test_q1_mistakes(answer, phrase):
    assert phrase in body(ex.q1.check(answer))


# ----------------------------------------------------------------------------- q2


def test_q2_reference_is_where_a_float32_linear_net_overflows():
    """Mean square of a wide float32 linear net (σ_w² = 4): finite below the predicted depth, Inf a few layers above."""
    n = 256
    depth = ex.q2.reference(4.0, 1.0)
    keys = jax.random.split(jax.random.PRNGKey(0), int(depth) + 4)
    h = jax.random.normal(jax.random.PRNGKey(1), (n,))
    h = h / jnp.sqrt(jnp.mean(h**2))
    ms = []
    for k in keys:
        h = h @ (jax.random.normal(k, (n, n)) * (2.0 / n**0.5))
        ms.append(float(jnp.mean(h.astype(jnp.float64) ** 2)) if bool(jnp.all(jnp.isfinite(h))) else math.inf)
    first_inf = next(i + 1 for i, m in enumerate(ms) if not math.isfinite(m))
    assert abs(first_inf - depth) <= 4  # entries overflow within a few layers of q_l = max


@pytest.mark.parametrize(
    "answer, phrase",
    [
        (lambda w2, q0: math.log(3.4e38 / q0) / math.log(w2**0.5), "σ_w is the factor of the norm"),
        (lambda w2, q0: math.log(3.4e38) / math.log(w2), "input's mean square"),
        (lambda w2, q0: math.log(float(np.finfo(np.float64).max) / q0) / math.log(w2), "float64"),
        (lambda w2, q0: 10.0, "right value is"),
    ],
)
def test_q2_mistakes(answer, phrase):
    assert phrase in body(ex.q2.check(answer))



# ----------------------------------------------------------------------------- q3


def test_q3_reference_counts_a_decade():
    for chi in (0.5, 0.9, 1.3):
        k = ex.q3.reference(chi)
        assert math.sqrt(chi) ** k == pytest.approx(10.0 if chi > 1 else 0.1, rel=1e-9)


@pytest.mark.parametrize(
    "answer, phrase",
    [
        (lambda c: math.log(10) / abs(math.log(c)), "forgot the ½"),
        (lambda c: 2 * math.log(10) / math.log(c), "A number of layers is positive"),
        (lambda c: -2 * math.log(10) / math.log(c), "Right for χ₁ < 1 only"),
        (lambda c: 2 / abs(math.log(c)), "factor e"),
        (lambda c: 2 * math.log(10) / abs(1 - c), "χ₁ near 1 only"),
    ],
)
def test_q3_mistakes(answer, phrase):
    assert phrase in body(ex.q3.check(answer))


# ----------------------------------------------------------------------------- q4


def test_q4_reference_bounds_the_weight_gradients_of_a_relu_net():
    model = gc.mlp(jax.random.PRNGKey(3), 12, 64, "relu", 1.0, 0.0)
    x = jax.random.normal(jax.random.PRNGKey(4), (8, 64))
    y = jax.random.normal(jax.random.PRNGKey(5), (8, 64))

    def loss_of_output(h):
        return 0.5 * jnp.sum((h - y) ** 2)

    def loss(params):
        return loss_of_output(gc.forward(gc.Stacked(model.f, params), x)[-1])

    G = jax.grad(loss)(model.params)["W"]
    hL = gc.forward(model, x)[-1]
    s = float(jnp.vdot(hL, jax.grad(loss_of_output)(hL)))
    W_norms = gc.layer_norms(model.params, stacked=True)["W"]
    bound = ex.q4.reference(s, W_norms)
    G_norms = np.asarray(gc.layer_norms({"W": G}, stacked=True)["W"])
    assert np.all(G_norms >= bound * (1 - 1e-4))


@pytest.mark.parametrize(
    "answer, phrase",
    [
        (lambda s, w: s * w, "not multiplied"),
        (lambda s, w: s / w, "cannot be negative"),
        (lambda s, w: abs(s) / w**2, "One power"),
        (lambda s, w: np.full_like(w, abs(s)), "divide by ‖W_l‖"),
    ],
)
def test_q4_mistakes(answer, phrase):
    assert phrase in body(ex.q4.check(answer))
