"""Notebook 09 exercises: references pass their own checks; typical mistakes get the intended hint."""
import numpy as np
import pytest
from exercise_helpers import fresh_exercises  # noqa: F401 - autouse fixture

import gradcourse as gc
from gradcourse.exercises import nb09 as ex


def _msg(exercise, answer):
    fb = exercise.check(answer)
    assert not fb.passed
    return fb.body






def test_q1_mistakes():
    assert "squared" in _msg(ex.q1, lambda v, c, k: k * k * c * v / 2)
    assert "factor ½" in _msg(ex.q1, lambda v, c, k: np.sqrt(k * k * c * v))
    assert "k²·c_in" in _msg(ex.q1, lambda v, c, k: np.sqrt(c * v / 2))
    assert "not k·c_in" in _msg(ex.q1, lambda v, c, k: np.sqrt(k * c * v / 2))
    assert "Pass your function" in _msg(ex.q1, 0.41)
    # the numbers the explanation quotes
    assert abs(ex.q1.reference(1 / (3 * 144), 16, 3) - np.sqrt(1 / 6)) < 1e-12
    assert ex.q1.reference(2 / 144, 16, 3) == pytest.approx(1.0)


def test_q2_mistakes():
    assert "fraction of *entries*" in _msg(ex.q2, lambda a: np.mean(a <= 0, axis=(1, 2, 3, 4)))
    assert "all* positions" in _msg(ex.q2, lambda a: np.mean(np.all(a <= 0, axis=1), axis=(1, 2, 3)))
    assert "averaged over images" in _msg(ex.q2, lambda a: np.mean(np.all(a <= 0, axis=(2, 3, 4)), axis=1))
    assert "*number*" in _msg(ex.q2, lambda a: np.sum(np.all(a <= 0, axis=(1, 2, 3)), axis=-1))
    assert "raised" in _msg(ex.q2, lambda a: a.nonexistent)
    # the reference agrees with gc.stats
    acts = ex._q2_data()
    np.testing.assert_allclose(ex.q2.reference(acts), [0, 0.25, 0.75, 0])
    np.testing.assert_allclose(ex.q2.reference(acts), gc.stats.activation_stats(acts, "relu").frac_dead, atol=1e-7)


def test_q3_reference_finds_the_first_broken_layer_of_an_overflowing_net():
    """A plain float32 ReLU stack with a huge gain overflows; the reference names the first layer that holds Inf/NaN."""
    h = np.ones((2, 8), np.float32)
    acts = []
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(12):
            h = np.maximum(h @ np.full((8, 8), 1e6, np.float32), 0)
            acts.append(h)
    want = next(i for i, a in enumerate(acts) if not np.isfinite(a).all())
    assert ex.q3.reference(acts) == want and want > 0


def test_q3_mistakes():
    assert "NaN counts too" in _msg(ex.q3, lambda acts: next((i for i, a in enumerate(acts) if np.isinf(a).any()), -1))
    assert "Off by one" in _msg(ex.q3, lambda acts: (lambda i: i + 1 if i >= 0 else -1)(ex.q3.reference(acts)))
    assert "right value is" in _msg(ex.q3, lambda acts: 0)




def test_q4_reference_matches_the_loss_of_gaussian_logits():
    """Sampling: logits N(0, s^2) at s = max_logit_std(C, tol) give a mean cross-entropy within ~tol of log C + tol."""
    rng = np.random.default_rng(0)
    for C, tol in ((10, 0.05), (100, 0.02)):
        s = ex.q4.reference(C, tol)
        z = rng.normal(scale=s, size=(200_000, C))
        ce = np.mean(np.log(np.sum(np.exp(z), axis=1)) - z[:, 0])
        # second order in s: exact up to O(s^4) and sampling; the answer without 1 - 1/C is 0.1 * tol off at C = 10
        assert abs(ce - (np.log(C) + tol)) < 0.05 * tol
        assert gc.monitor.initial_loss(C, s) == pytest.approx(np.log(C) + tol)


def test_q4_mistakes():
    assert "s², not s" in _msg(ex.q4, lambda C, tol: 2 * tol * C / (C - 1))
    assert "dropped the ½" in _msg(ex.q4, lambda C, tol: np.sqrt(tol * C / (C - 1)))
    assert "1 − 1/C" in _msg(ex.q4, lambda C, tol: np.sqrt(2 * tol))  # the formula without the label's own logit
    assert "cancels" in _msg(ex.q4, lambda C, tol: np.sqrt(2 * tol * np.log(C)))
    assert "allowed *loss*" in _msg(ex.q4, lambda C, tol: np.log(C) + tol)
