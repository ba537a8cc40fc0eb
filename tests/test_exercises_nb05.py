"""Notebook 05 exercises: references agree with gradcourse.layers, JAX and measurement; typical mistakes get their
own message."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from exercise_helpers import body, fresh_exercises  # noqa: F401 - autouse fixture

import gradcourse as gc
from gradcourse import layers
from gradcourse.exercises import nb05 as ex
from gradcourse.exercises._core import CORRECT

# ----------------------------------------------------------------------------- q1


def test_q1_reference_equals_gc_layer_norm():
    h = np.random.default_rng(0).normal(2.0, 3.0, size=(3, 4, 9))
    want = layers.layer_normalize(jnp.asarray(h), eps=1e-5)
    np.testing.assert_allclose(ex.q1.reference(h, 1e-5), want, rtol=1e-5, atol=1e-5)


def test_q1_jax_answer_passes():
    def jax_ln(h, eps):
        mu = jnp.mean(h, -1, keepdims=True)
        return (h - mu) / jnp.sqrt(jnp.var(h, -1, keepdims=True) + eps)

    assert ex.q1.check(jax_ln).status == CORRECT


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda h, eps: (h - h.mean(0, keepdims=True)) / np.sqrt(h.var(0, keepdims=True) + eps), "BatchNorm"),
        (lambda h, eps: h / np.sqrt((h**2).mean(-1, keepdims=True) + eps), "RMSNorm"),
        (lambda h, eps: (h - h.mean(-1, keepdims=True)) / np.sqrt(h.var(-1, ddof=1, keepdims=True) + eps), "ddof=1"),
        (lambda h, eps: (h - h.mean(-1, keepdims=True)) / (h.std(-1, keepdims=True) + eps), "inside the square root"),
        (lambda h, eps: (h - h.mean()) / np.sqrt(h.var() + eps), "per example"),
        (lambda h, eps: (h - h.mean(-1)) / np.sqrt(h.var(-1) + eps), "raised"),  # no keepdims: broadcasting fails
        (lambda h, eps: h.mean(-1), "keepdims"),
        (lambda h, eps: h - h.mean(-1, keepdims=True), "did not divide"),
    ],
)
def test_q1_typical_mistakes(wrong, message):
    assert message in body(ex.q1.check(wrong))


# ----------------------------------------------------------------------------- q2


def test_q2_reference_matches_a_measured_angle():
    """Scale-invariant loss: one SGD step at cW with lr c^2 turns W by the same angle as lr at W."""
    key = jax.random.PRNGKey(0)
    kw, kx, ky = jax.random.split(key, 3)
    W = jax.random.normal(kw, (16, 16)) / 4
    x, y = jax.random.normal(kx, (8, 16)), jax.random.normal(ky, (8, 16))
    grad = jax.grad(lambda W: jnp.sum((layers.layer_normalize(x @ W, eps=0.0) - y) ** 2))

    def angle(W, lr):
        new = W - lr * grad(W)
        return float(jnp.arccos(jnp.vdot(new, W) / (jnp.linalg.norm(new) * jnp.linalg.norm(W))))

    c = 3.0
    np.testing.assert_allclose(angle(c * W, ex.q2.reference(0.01, c)), angle(W, 0.01), rtol=1e-3)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda lr, c: lr / c**2, "Inverted"),
        (lambda lr, c: lr * c, "Only one factor of c"),
        (lambda lr, c: lr / c, "must grow"),
        (lambda lr, c: lr, "plain SGD is not"),
    ],
)
def test_q2_typical_mistakes(wrong, message):
    assert message in body(ex.q2.check(wrong))


# ----------------------------------------------------------------------------- q3


def test_q3_reference_equals_jax_vjp():
    rng = np.random.default_rng(1)
    h, g = rng.normal(size=(6, 5)), rng.normal(size=(6, 5))
    _, pull = jax.vjp(lambda h: layers.batch_normalize(h, eps=0.0), jnp.asarray(h, jnp.float32))
    np.testing.assert_allclose(ex.q3.reference(h, g), pull(jnp.asarray(g, jnp.float32))[0], rtol=1e-4, atol=1e-5)


def test_q3_jax_vjp_answer_passes():
    def by_jax(h, g):
        _, pull = jax.vjp(lambda h: layers.batch_normalize(h, eps=0.0), jnp.asarray(h, jnp.float32))
        return pull(jnp.asarray(g, jnp.float32))[0]

    assert ex.q3.check(by_jax).status == CORRECT          # a float32 answer passes


def _bn_parts(h, g):
    sigma = h.std(0, keepdims=True)
    y = (h - h.mean(0, keepdims=True)) / sigma
    return sigma, y, g.mean(0, keepdims=True), (g * y).mean(0, keepdims=True)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda h, g: g / h.std(0, keepdims=True), "as constants"),
        (lambda h, g: (g - g.mean(0, keepdims=True)) / h.std(0, keepdims=True), "variance term is missing"),
        (lambda h, g: (lambda s, y, gm, gy: (g - y * gy) / s)(*_bn_parts(h, g)), "mean term is missing"),
        (lambda h, g: (lambda s, y, gm, gy: (g - gm - y * gy) * s)(*_bn_parts(h, g)), "Divide by"),
        (lambda h, g: (lambda s, y, gm, gy: g - gm - y * gy)(*_bn_parts(h, g)), "factor 1/σ_B"),
    ],
)
def test_q3_typical_mistakes(wrong, message):
    assert message in body(ex.q3.check(wrong))


# ----------------------------------------------------------------------------- q4


def test_q4_reference_closed_forms():
    assert abs(ex.q4.reference(jax.nn.relu) / (np.pi / (np.pi - 1)) - 1) < 0.01
    assert abs(ex.q4.reference(lambda z: 2.0 * z) - 1) < 1e-6            # linear: no explosion
    assert abs(ex.q4.reference(jnp.sin) - (1 + np.exp(-2)) / (1 - np.exp(-2))) < 1e-6


def test_q4_every_activation_gives_at_least_one():
    """Gaussian Poincaré inequality: Var[φ(z)] ≤ E[φ'(z)²]."""
    for name, phi in gc.ACTIVATIONS.items():
        assert ex.q4.reference(phi) >= 1 - 1e-6, name


def test_q4_monte_carlo_answer_passes():
    def mc(phi):
        z = jax.random.normal(jax.random.PRNGKey(0), (10**6,))
        return float(jnp.mean(jax.vmap(jax.grad(phi))(z) ** 2) / jnp.var(phi(z)))

    assert ex.q4.check(mc).status == CORRECT


def test_q4_reference_predicts_a_measured_tanh_batchnorm_net():
    depth, width, batch = 30, 256, 128
    kp, kx, ku = jax.random.split(jax.random.PRNGKey(3), 3)
    model = gc.Stacked(layers.dense("tanh", norm="batch"), layers.init_params(kp, depth, width))
    x, u = jax.random.normal(kx, (batch, width)), jax.random.normal(ku, (batch, width))
    ms = np.asarray(gc.mean_square(gc.backward(model, x, lambda h: jnp.sum(h * u))))
    measured = float(np.exp(-np.polyfit(np.arange(5, 26), np.log(ms[5:26]), 1)[0]))
    assert abs(measured / ex.q4.reference(jnp.tanh) - 1) < 0.05


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda phi: ex._moments(phi)[0] / ex._moments(phi)[1], "mean square"),
        (lambda phi: ex._moments(phi)[0], "numerator"),
        (lambda phi: ex._moments(phi)[2] / ex._moments(phi)[0], "Inverted"),
        (lambda phi: np.sqrt(ex._bn_rate(phi)), "squared norm"),
        (lambda phi: np.array([1.0, 2.0]), "one number"),
    ],
)
def test_q4_typical_mistakes(wrong, message):
    assert message in body(ex.q4.check(wrong))


# ----------------------------------------------------------------------------- q5


@pytest.mark.parametrize("lr, angle", [(1.0, 0.1), (0.3, 0.7), (0.02, 1.2)])
def test_q5_reference_gives_the_equilibrium_angle_of_a_simulated_update(lr, angle):
    """Independent check: iterate W <- (1 - lr wd) W - lr g with g orthogonal to W (|g| = 1/|W|) to equilibrium."""
    wd = ex.q5.reference(lr, angle)
    rng = np.random.default_rng(0)
    W = rng.normal(size=50)
    for _ in range(int(20 / (lr * wd)) + 200):
        r = rng.normal(size=50)
        r -= (r @ W) / (W @ W) * W
        new = (1 - lr * wd) * W - lr * r / np.linalg.norm(r) / np.linalg.norm(W)
        theta = np.arccos(new @ W / (np.linalg.norm(new) * np.linalg.norm(W)))
        W = new
    assert abs(theta / angle - 1) < 1e-6
    assert abs(gc.scale_invariance.equilibrium_angle(lr, wd) / angle - 1) < 1e-9


@pytest.mark.parametrize("wrong, words", [
    (lambda lr, a: a**2 / (2 * lr), "small-angle"),
    (lambda lr, a: a / lr, "squared"),
    (lambda lr, a: (1 - np.cos(a)) * lr, "less"),
    (lambda lr, a: a**2 / lr, "factor 2"),
])
def test_q5_typical_mistakes(wrong, words):
    assert words in body(ex.q5.check(wrong))
