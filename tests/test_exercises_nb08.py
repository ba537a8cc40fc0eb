"""Exercises of notebook 08: each reference passes, typical wrong answers get the intended hint."""
import math

import jax
import numpy as np
import pytest
from exercise_helpers import body as _body
from exercise_helpers import fresh_exercises  # noqa: F401 - autouse fixture

from gradcourse.exercises import nb08 as ex
from gradcourse.models import rnn


def test_q1_values_and_wrong_answers():
    assert ex.horizon_reference(0.9, 1e-6) == 132
    assert 0.9**132 <= 1e-6 < 0.9**131
    assert "one step short" in _body(ex.q1.check(lambda r, t: math.floor(math.log(t) / math.log(r))))
    assert "whole number" in _body(ex.q1.check(lambda r, t: math.log(t) / math.log(r)))
    assert "upside down" in _body(ex.q1.check(lambda r, t: math.ceil(math.log(r) / math.log(t))))
    assert "negative" in _body(ex.q1.check(lambda r, t: -ex.horizon_reference(r, t)))
    assert "should be" in _body(ex.q1.check(lambda r, t: 7))
    assert "itself" in _body(ex.q1.check(132))


def test_q2_reference_matches_jax_bptt():
    """The NumPy reference equals ∂L/∂h_t from gradcourse.models.rnn.hidden_state_grads."""
    key = jax.random.PRNGKey(0)
    c = rnn.Config(cell="rnn", n_in=2, n_hidden=4, n_out=None, scale=1.2)  # no readout: the loss sees h_T
    p = rnn.init(key, c)
    xs = jax.random.normal(jax.random.PRNGKey(1), (3, 5, 2))
    g_T = jax.random.normal(jax.random.PRNGKey(2), (3, 4))
    hs = rnn.states(p, c, xs)
    # the model's loss mean((h_T - y)^2) over 12 entries has dL/dh_T = (h_T - y) / 6 = g_T for y = h_T - 6 g_T
    want = rnn.hidden_state_grads(p, c, (xs, hs[-1] - 6 * g_T))
    W_h = np.asarray(p["cell"]["W_h"], np.float64)
    got = ex.bptt_reference(W_h, np.asarray(hs, np.float64), np.asarray(g_T, np.float64))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def _bptt_variant(step, reverse=False):
    def fn(W_h, hs, g_T):
        gs = [g_T]
        for t in range(hs.shape[0] - 1, 0, -1):
            gs.append(step(gs[-1], t, W_h, hs))
        out = np.stack(gs[::-1])
        return out[::-1] if reverse else out

    return fn


@pytest.mark.parametrize(
    "fn,message",
    [
        (_bptt_variant(lambda g, t, W, hs: g @ W.T), "tanh derivative"),
        (_bptt_variant(lambda g, t, W, hs: (g * (1 - hs[t] ** 2)) @ W), "Transpose"),
        (_bptt_variant(lambda g, t, W, hs: (g * (1 - hs[t - 1] ** 2)) @ W.T), "Off by one"),
        (_bptt_variant(lambda g, t, W, hs: (g * (1 - hs[t])) @ W.T), "1 - tanh²"),
        (_bptt_variant(lambda g, t, W, hs: (g * (1 - hs[t] ** 2)) @ W.T, reverse=True), "backwards in time"),
        (lambda W, hs, g: 2 * ex.bptt_reference(W, hs, g), "result[-1] should be g_T"),
        (lambda W, hs, g: ex.bptt_reference(W, hs, g)[1:], "shape"),
        (lambda W, hs, g: "no", "array"),
    ],
)
def test_q2_wrong_answers(fn, message):
    fb = ex.q2.check(fn)
    assert not fb.passed
    assert message in fb.body


def test_q2_learner_code_that_raises_is_reported():
    fb = ex.q2.check(lambda W, hs, g: W @ np.zeros((7, 7)))
    assert "raised ValueError" in fb.body


def test_q3_value_and_wrong_answers():
    b = ex.forget_bias_reference()
    sig = 1 / (1 + math.exp(-b))
    assert abs(sig**100 - 0.5) < 1e-9
    assert 4.9 < b < 5.0
    assert "not the bias" in _body(ex.q3.check(0.5 ** (1 / 100)))
    assert "default" in _body(ex.q3.check(1.0))
    assert "one step" in _body(ex.q3.check(0.0))
    assert "must be larger" in _body(ex.q3.check(3.0))
    assert "smallest" in _body(ex.q3.check(8.0))
    assert "should be a number" in _body(ex.q3.check("five"))
    assert "NaN or Inf" in _body(ex.q3.check(float("nan")))
