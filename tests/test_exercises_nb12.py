"""Notebook 12 exercises: references against independent computations; typical mistakes get their own message."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from exercise_helpers import body, fresh_exercises  # noqa: F401 - autouse fixture

import gradcourse as gc
from gradcourse.exercises import nb12 as ex
from gradcourse.exercises._core import CORRECT, NOT_ATTEMPTED


def _forward_by_hand(model, x):
    """Pre-activations of every layer of an eqx.nn.MLP, computed from its weights (no gradcourse, no Equinox call)."""
    h, zs = np.asarray(x, np.float64), []
    for i, layer in enumerate(model.layers):
        z = h @ np.asarray(layer.weight, np.float64).T + np.asarray(layer.bias, np.float64)
        zs.append(z)
        h = np.maximum(z, 0.0) if i < len(model.layers) - 1 else z
    return zs


def test_q1_reference_is_the_first_layer_whose_relus_are_all_off():
    model = ex.q1_model()
    zs = _forward_by_hand(model, ex.q1_batch[0])
    off = [i for i, z in enumerate(zs[:-1]) if np.all(z <= 0)]
    assert off and off[0] == ex.q1.reference
    assert all(np.mean(z > 0) > 0.2 for z in zs[: off[0]])          # the layers below it work
    assert ex.q1.check(int(ex.q1.reference)).status == CORRECT


def test_q1_the_report_flags_more_than_the_culprit():
    """The premise of the exercise: the report alone does not single out the cause."""
    model = ex.q1_model()
    report = gc.health_report(ex.q1_loss, model, ex.q1_batch)
    k = int(ex.q1.reference)
    flagged = [r["name"] for r in report.rows if r["frac_dead"] > report.thresholds["dead"]]
    assert f"layers/{k}" in flagged and "layers/0" in flagged and len(flagged) > 2
    c = gc.capture(ex.q1_loss, model, ex.q1_batch, model=model)
    ref = _forward_by_hand(model, ex.q1_batch[0])
    np.testing.assert_allclose(c.acts[f"layers/{k}"], ref[k], rtol=1e-4, atol=1e-4)
    assert float(jnp.max(jnp.abs(c.grads["layers/0"]))) == 0.0        # zero gradient below the culprit


@pytest.mark.parametrize(
    "answer, phrase",
    [(0, "first line of the report"), (7, "victim"), (10, "output layer"), (5, "its gradient is zero only"),
     (3, "not right"), ("layers/6", "should be a number")],
)
def test_q1_mistakes(answer, phrase):
    assert phrase in body(ex.q1.check(answer))


def test_q2_reference_keeps_the_backward_signal_flat():
    alpha, n = ex._Q2_SLOPE, ex._Q2_FAN_IN
    z = np.random.default_rng(0).normal(size=1_000_000)
    e_dphi2 = np.mean(np.where(z > 0, 1.0, alpha) ** 2)                        # E[φ'(z)²] by sampling
    assert abs(n * ex.q2.reference**2 * e_dphi2 - 1.0) < 0.01
    # and a deep leaky-ReLU net at that std keeps ‖∂L/∂h‖ over 24 layers (median over 8 seeds; He's ReLU std
    # would give 1.09^12 ≈ 2.8, LeCun's 0.55^12 ≈ 0.001)
    depth, width = 24, 256

    def profile(key):
        ws = jax.random.normal(key, (depth, width, width)) * ex.q2.reference * math.sqrt(n / width)
        layer = lambda w, h: jax.nn.leaky_relu(h @ w, alpha)  # noqa: E731
        x = jax.random.normal(jax.random.fold_in(key, 1), (64, width))
        g = gc.backward(gc.Stacked(layer, ws), x, lambda h: jnp.sum(h[:, 0]))
        return jnp.linalg.norm(g[0].reshape(-1)) / jnp.linalg.norm(g[-1].reshape(-1))

    ratios = np.array([profile(k) for k in jax.random.split(jax.random.PRNGKey(0), 8)])
    assert 0.6 < np.median(ratios) < 1.6, ratios
    assert ex.q2.check(ex.q2.reference).status == CORRECT


@pytest.mark.parametrize(
    "answer, phrase",
    [
        (math.sqrt(2 / 64), "He's std"),
        (2 / (1.09 * 64), "variance"),
        (math.sqrt(2 / (1.3 * 64)), "squared"),
        (1 / 8, "LeCun"),
        (0.2, "not right"),
    ],
)
def test_q2_mistakes(answer, phrase):
    assert phrase in body(ex.q2.check(answer))


def test_q3_reference_agrees_with_find_nonfinite_step():
    for (log,) in ex._Q3_CASES:
        got = ex.q3.reference(log)
        want = gc.stats.find_nonfinite_step([m["global/grad_norm"] for m in log])
        assert got == (-1 if want is None else want)
    assert ex.q3.reference(ex.q3_example_log) == 25
    assert ex.q3.check(ex.q3.reference).status == CORRECT


def _template(log):
    return None


@pytest.mark.parametrize(
    "answer, phrase",
    [
        (lambda log: next((i for i, m in enumerate(log) if not math.isfinite(m["loss"])), -1), "non-finite *loss*"),
        (lambda log: next((i for i, m in enumerate(log) if m["global/grad_norm"] > 20), -1), "spike"),
        (lambda log: next((i + 1 for i, m in enumerate(log) if m["nonfinite"]), -1), "Off by one"),
        (lambda log: next((i for i, m in enumerate(log) if math.isnan(m["global/grad_norm"])), -1), "misses ±Inf"),
        (lambda log: next((i for i, m in enumerate(log) if m["nonfinite"]), None), "Your"),
        (lambda log: len(log), "At first_bad_step"),
    ],
)
def test_q3_mistakes(answer, phrase):
    assert phrase in body(ex.q3.check(answer))


def test_q3_template_is_not_attempted():
    assert ex.q3.check(_template).status == NOT_ATTEMPTED
