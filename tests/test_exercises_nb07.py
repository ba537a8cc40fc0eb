"""Exercises of notebook 07: each reference agrees with optax; typical wrong answers get the intended hint."""
import jax.numpy as jnp
import numpy as np
import optax
from exercise_helpers import body as _body
from exercise_helpers import fresh_exercises  # noqa: F401 - autouse fixture

from gradcourse.exercises import nb07 as ex


def test_q1_reference_is_optax_clip_by_global_norm():
    for grads, max_norm in ex._q1_cases():
        tree = {k: jnp.asarray(v) for k, v in grads.items()}
        want, _ = optax.clip_by_global_norm(max_norm).update(tree, optax.EmptyState())
        got = ex.clip_global_reference(grads, max_norm)
        for k in grads:
            np.testing.assert_allclose(got[k], want[k], rtol=1e-5)


def test_q1_wrong_answers():
    def per_leaf(grads, c):
        return {k: g * min(1.0, c / np.linalg.norm(g)) for k, g in grads.items()}

    def always(grads, c):
        total = np.sqrt(sum(np.sum(g**2) for g in grads.values()))
        return {k: g * c / total for k, g in grads.items()}

    assert "separately" in _body(ex.q1.check(per_leaf))
    assert "already below" in _body(ex.q1.check(always))
    assert "clipping by value" in _body(ex.q1.check(lambda grads, c: {k: np.clip(g, -c, c) for k, g in grads.items()}))
    assert "same keys" in _body(ex.q1.check(lambda grads, c: list(grads.values())))
    assert "itself" in _body(ex.q1.check({"W": 1}))


def test_q2_value_and_wrong_answers():
    g = jnp.asarray(ex.Q2_VECTOR)
    clipped, _ = optax.clip(ex.Q2_THRESHOLD).update(g, optax.EmptyState())
    cos = float(jnp.dot(g, clipped) / (jnp.linalg.norm(g) * jnp.linalg.norm(clipped)))
    np.testing.assert_allclose(ex.q2.reference, cos, rtol=1e-6)
    assert 0.95 < cos < 0.97
    assert "Cosine 1" in _body(ex.q2.check(1.0))
    assert "shorter" in _body(ex.q2.check(np.sqrt(2.29 / 25.29)))
    assert "dot product" in _body(ex.q2.check(7.29))
    assert "angle" in _body(ex.q2.check(float(np.degrees(np.arccos(cos)))))
    assert "between -1 and 1" in _body(ex.q2.check(3.0))
    assert "should be a number" in _body(ex.q2.check("0.96"[::-1] + "x"))


def test_q3_reference_is_what_optax_adaptive_grad_clip_caps():
    W, G = ex._q3_instance()
    lam = 0.05
    clipped, _ = optax.adaptive_grad_clip(lam).update({"W": jnp.asarray(G)}, optax.EmptyState(), {"W": jnp.asarray(W)})
    ratio = ex.agc_ratio_reference(W, np.asarray(clipped["W"]))
    assert np.all(ratio <= lam * (1 + 1e-5))
    raw = ex.agc_ratio_reference(W, G)
    unclipped = raw <= lam
    np.testing.assert_allclose(np.asarray(clipped["W"])[:, unclipped], G[:, unclipped], rtol=1e-6)
    np.testing.assert_allclose(ratio[~unclipped], lam, rtol=1e-4)


def test_q3_wrong_answers():
    norm = np.linalg.norm
    assert "axis 0" in _body(ex.q3.check(lambda W, G: norm(G, axis=1) / np.maximum(norm(W, axis=1), 1e-3)))
    assert "layer-wise" in _body(ex.q3.check(lambda W, G: np.full(W.shape[1], norm(G) / norm(W))))
    assert "Upside down" in _body(ex.q3.check(lambda W, G: norm(W, axis=0) / np.maximum(norm(G, axis=0), 1e-3)))
    with np.errstate(divide="ignore"):
        assert "divides by zero" in _body(ex.q3.check(lambda W, G: norm(G, axis=0) / norm(W, axis=0)))
    assert "not ‖W_i‖ + eps" in _body(ex.q3.check(lambda W, G: norm(G, axis=0) / (norm(W, axis=0) + 1e-3)))


def test_q4_reference_is_optax_adam():
    g = np.array([2.0, -1e-3, 5e-9, 30.0, -0.5])
    opt = optax.adam(0.01)
    u, _ = opt.update(jnp.asarray(g, jnp.float32), opt.init(jnp.zeros(5)))
    np.testing.assert_allclose(ex.adam_first_step_reference(g, 0.01), u, rtol=1e-5)


def test_q4_wrong_answers():
    assert "plain SGD" in _body(ex.q4.check(lambda g, lr: -lr * g))
    assert "bias correction" in _body(ex.q4.check(lambda g, lr: -lr * 0.1 * g / (np.sqrt(0.001) * np.abs(g) + 1e-8)))
    assert "ignores eps" in _body(ex.q4.check(lambda g, lr: -lr * np.sign(g)))
    assert "Wrong sign" in _body(ex.q4.check(lambda g, lr: lr * g / (np.abs(g) + 1e-8)))
