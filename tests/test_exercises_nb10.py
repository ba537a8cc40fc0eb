"""Notebook 10 exercises: references agree with the model; typical mistakes get their own message."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from exercise_helpers import body, fresh_exercises  # noqa: F401 - autouse fixture

from gradcourse.exercises import nb10 as ex
from gradcourse.models import transformer as tf

attention_logits = jax.jit(tf.attention_logits, static_argnums=1)  # one compilation per config




# --------------------------------------------------------------------------- q1


def test_q1_reference_bounds_the_model_logits():
    """The bound holds for the package's QK-norm attention, with blown-up weights and non-trivial scales."""
    c = tf.Config(vocab=5, d_model=16, n_heads=2, n_layers=1, seq_len=6, d_ff=8, qk_norm=True)
    p = tf.init(jax.random.PRNGKey(0), c)
    p["blocks"]["Wq"] = 50.0 * p["blocks"]["Wq"]
    p["blocks"]["Wk"] = 50.0 * p["blocks"]["Wk"]
    p["blocks"]["q_scale"] = p["blocks"]["q_scale"].at[0, :, 3].set(-2.5)
    tokens = jax.random.randint(jax.random.PRNGKey(1), (4, 6), 0, 5)
    logits = attention_logits(p, c, tokens)  # (1, B, H, T, T)
    for h in range(2):
        bound = ex.q1.reference(8, p["blocks"]["q_scale"][0, h], p["blocks"]["k_scale"][0, h])
        assert float(tf.max_attention_logit(logits[:, :, h])) <= bound * (1 + 1e-5)
    assert ex.q1.reference(8, np.ones(8), np.ones(8)) == pytest.approx(math.sqrt(8))


@pytest.mark.parametrize(
    "answer, phrase",
    [
        (lambda d, gq, gk: d * np.max(np.abs(gq)) * np.max(np.abs(gk)), "forgot the 1/√d_head"),
        (lambda d, gq, gk: np.max(np.abs(gq)) * np.max(np.abs(gk)), "not a unit vector"),
        (lambda d, gq, gk: math.sqrt(d) * np.max(gq) * np.max(gk), "largest |γ|"),
        (lambda d, gq, gk: math.sqrt(d) * np.linalg.norm(gq) * np.linalg.norm(gk), "loosely"),
        (lambda d, gq, gk: math.sqrt(d) * np.max(np.abs(gq * gk)), "same feature"),
        (lambda d, gq, gk: 2 * math.sqrt(d), "right value is"),
    ],
)
def test_q1_mistakes(answer, phrase):
    assert phrase in body(ex.q1.check(answer))


# --------------------------------------------------------------------------- q2


def test_q2_reference_matches_the_package():
    s = np.random.default_rng(0).normal(size=(7, 7)) * 3
    np.testing.assert_allclose(ex.q2.reference(s), tf.attention_entropy(jnp.asarray(s)), rtol=1e-5, atol=1e-6)


def _no_mask(s):
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    return -(p * np.log(p)).sum(-1)


@pytest.mark.parametrize(
    "answer, phrase",
    [
        (_no_mask, "every query attend to every key"),
        (lambda s: ex.q2.reference(s) / np.log(2), "bits"),
        (lambda s: -ex.q2.reference(s), "Wrong sign"),
        (lambda s: ex.q2.reference(s)[:-1], "shape (T,)"),
        (lambda s: 2 * ex.q2.reference(s), "constant factor"),
        (lambda s: np.zeros(s.shape[0]), "differs"),
    ],
)
def test_q2_mistakes(answer, phrase):
    assert phrase in body(ex.q2.check(answer))


# --------------------------------------------------------------------------- q3


def test_q3_reference_limits():
    assert ex.q3.reference(1, 1.0, 1.0) == 1.0
    assert ex.q3.reference(10_000, 1.0, 1.0) * math.sqrt(10_000) == pytest.approx(math.sqrt(2), rel=1e-3)


@pytest.mark.parametrize(
    "answer, phrase",
    [
        (lambda L, v0, v: 1 / math.sqrt(L), "large-L limit"),
        (lambda L, v0, v: (v0 + v) / (v0 + L * v), "not 1/σ_L²"),
        (lambda L, v0, v: math.sqrt((v0 + L * v) / (v0 + v)), "Inverted"),
        (lambda L, v0, v: math.sqrt(v0 / (v0 + L * v)), "depth-1 model"),
        (lambda L, v0, v: math.sqrt((v0 + v) / (v0 + (L - 1) * v)), "Off by one"),
    ],
)
def test_q3_mistakes(answer, phrase):
    assert phrase in body(ex.q3.check(answer))


# --------------------------------------------------------------------------- q4


@pytest.mark.parametrize("T, p", [(2, 0.9), (128, 0.99), (1024, 0.5)])
def test_q4_reference_gives_the_softmax_weight(T, p):
    logits = jnp.zeros(T).at[0].set(ex.q4.reference(T, p))
    assert float(jax.nn.softmax(logits)[0]) == pytest.approx(p, rel=1e-5)


@pytest.mark.parametrize(
    "answer, phrase",
    [
        (lambda T, p: math.log(p / (1 - p)), "T = 2 only"),
        (lambda T, p: math.log(p * T / (1 - p)), "*other* keys"),
        (lambda T, p: p * (T - 1) / (1 - p), "its logarithm"),
        (lambda T, p: 1.0, "right value is"),
    ],
)
def test_q4_mistakes(answer, phrase):
    assert phrase in body(ex.q4.check(answer))
