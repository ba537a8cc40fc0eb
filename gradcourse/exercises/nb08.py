"""Exercises for notebook 08: exploding and vanishing gradients through time.

q1: the memory horizon of a contracting linear RNN; q2: backpropagation through time by hand for a
tanh RNN; q3: the LSTM forget-gate bias that keeps the cell-state gradient alive over T steps.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ._core import Exercise, Sheet, Wrong, as_number, diagnose, relative_error

__all__ = ["q1", "q2", "q3", "sheet", "horizon_reference", "bptt_reference", "forget_bias_reference"]


# --------------------------------------------------------------------------- q1: memory horizon


def horizon_reference(rho: float, tol: float) -> int:
    """Smallest T with ρ^T ≤ tol, for 0 < ρ < 1 and 0 < tol < 1."""
    return math.ceil(math.log(tol) / math.log(rho))


_Q1_CASES = [(0.9, 1e-6), (0.5, 1e-3), (0.99, 0.01), (0.3, 1e-8)]


def _check_q1(fn: Callable[[float, float], Any]) -> str | None:
    if not callable(fn):
        return "Pass your function horizon(rho, tol) itself (without calling it)."
    for rho, tol in _Q1_CASES:
        got = fn(rho, tol)
        want = horizon_reference(rho, tol)
        try:
            value = as_number(got, f"horizon({rho}, {tol})")
        except Wrong as w:
            return f"{w.message} It should return a whole number of steps."
        if value != int(value):
            return (
                f"horizon({rho}, {tol}) returned {value:.4g}, not a whole number: a horizon counts time steps. "
                f"Round up, since ρ^T only drops below tol once T passes log(tol)/log(ρ)."
            )
        value = int(value)
        if value == want:
            continue
        if value == want - 1:
            return (
                f"horizon({rho}, {tol}) = {value} is one step short: ρ^{value} = {rho ** value:.3g} is still above "
                f"{tol}. Round up, not down."
            )
        if value == round(math.log(rho) / math.log(tol)) or value == math.ceil(math.log(rho) / math.log(tol)):
            return (
                f"horizon({rho}, {tol}) = {value}: the logarithms are upside down. Solve ρ^T = tol for T: T = log(tol) "
                f"/ log(ρ)."
            )
        if value < 0:
            return (
                f"horizon({rho}, {tol}) = {value} is negative; log(ρ) and log(tol) are both negative, so their ratio "
                f"is positive."
            )
        return f"horizon({rho}, {tol}) = {value}, but it should be {want} (check: ρ^T ≤ tol at T = {want}, not before)."
    return None


q1 = Exercise(
    name="q1",
    template='def horizon(rho, tol):\n    return None  # your code here',
    prompt=(
        "Write `horizon(rho, tol)`: for a linear RNN h_t = W h_{t-1} with W = ρQ (Q orthogonal, 0 < ρ < 1), "
        "‖∂h_T/∂h_0‖ = ρ^T. Return the smallest whole number of steps T at which the gradient reaching "
        "step 0 has shrunk to at most `tol` times its size at step T."
    ),
    checker=_check_q1,
    hints=[
        "Solve ρ^T = tol for T with logarithms, then think about which way to round.",
        "T = log(tol) / log(ρ) is usually not a whole number; ρ^T only falls below tol after it, so use math.ceil.",
    ],
    reference=horizon_reference,
    explanation=(
        "For ρ = 0.9 the gradient is a millionth of its size after 132 steps: a contracting recurrence "
        "forgets exponentially fast, which is the vanishing-gradient problem of Bengio et al. (1994)."
    ),
)


# --------------------------------------------------------------------------- q2: BPTT by hand


def bptt_reference(W_h: np.ndarray, hs: np.ndarray, g_T: np.ndarray) -> np.ndarray:
    """∂L/∂h_t for t = 0 ... T of a tanh RNN h_t = tanh(x_t W_x + h_{t-1} W_h + b), given ∂L/∂h_T.

    W_h: (n, n); hs: (T+1, batch, n) with hs[0] = h_0; g_T: (batch, n). Returns (T+1, batch, n).
    """
    return _bptt_with(lambda g, t: (g * (1.0 - hs[t] ** 2)) @ W_h.T, hs, g_T)


def _q2_instance() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A small random tanh RNN run forward with NumPy: W_h, hs, g_T and the reference answer."""
    rng = np.random.default_rng(8)
    T, batch, n_in, n = 6, 3, 2, 4
    W_x = rng.normal(size=(n_in, n))
    W_h = 1.3 * rng.normal(size=(n, n)) / np.sqrt(n)
    b = 0.1 * rng.normal(size=n)
    xs = rng.normal(size=(T, batch, n_in))
    hs = [0.2 * rng.normal(size=(batch, n))]
    for t in range(T):
        hs.append(np.tanh(xs[t] @ W_x + hs[-1] @ W_h + b))
    hs = np.stack(hs)
    g_T = rng.normal(size=(batch, n))
    return W_h, hs, g_T, bptt_reference(W_h, hs, g_T)


def _bptt_with(step: Callable[[np.ndarray, int], np.ndarray], hs: np.ndarray, g_T: np.ndarray) -> np.ndarray:
    """The backward recurrence g_{t-1} = step(g_t, t) from g_T, stacked as (T+1, batch, n)."""
    gs = [g_T]
    for t in range(hs.shape[0] - 1, 0, -1):
        gs.append(step(gs[-1], t))
    return np.stack(gs[::-1])


def _check_q2(fn: Callable[[np.ndarray, np.ndarray, np.ndarray], Any]) -> str | None:
    if not callable(fn):
        return "Pass your function bptt(W_h, hs, g_T) itself (without calling it)."
    W_h, hs, g_T, want = _q2_instance()
    got = fn(W_h.copy(), hs.copy(), g_T.copy())
    mistakes = [
        (want[::-1], "Your array runs backwards in time: result[0] must be ∂L/∂h_0 and result[-1] = g_T."),
        (_bptt_with(lambda g, t: g @ W_h.T, hs, g_T),
         "You left out the tanh derivative: each step back multiplies by diag(1 - h_t²) before W_hᵀ."),
        (_bptt_with(lambda g, t: (g * (1.0 - hs[t] ** 2)) @ W_h, hs, g_T),
         "Transpose: with row vectors h_t = tanh(... + h_{t-1} W_h), the step back multiplies by W_hᵀ, not W_h."),
        (_bptt_with(lambda g, t: (g * (1.0 - hs[t - 1] ** 2)) @ W_h.T, hs, g_T),
         "Off by one in time: the tanh derivative at step t is 1 - h_t² (the output of step t), not 1 - h_{t-1}²."),
        (_bptt_with(lambda g, t: (g * (1.0 - hs[t])) @ W_h.T, hs, g_T),
         "The derivative of tanh is 1 - tanh², i.e. 1 - h_t², not 1 - h_t."),
    ]
    problem = diagnose(got, want, mistakes, name="bptt(W_h, hs, g_T)", rtol=1e-6)
    if problem is not None and np.shape(got) == want.shape and relative_error(np.asarray(got)[-1], g_T) > 1e-6:
        if not any(relative_error(np.asarray(got, dtype=np.float64), w) <= 1e-6 for w, _ in mistakes):
            return "result[-1] should be g_T itself, ∂L/∂h_T, the starting point of the backward pass."
    return problem


q2 = Exercise(
    name="q2",
    template='def bptt(W_h, hs, g_T):\n    return None  # your code here',
    prompt=(
        "Write `bptt(W_h, hs, g_T)` for a tanh RNN h_t = tanh(x_t W_x + h_{t-1} W_h + b) (row vectors): "
        "given W_h (n, n), the forward states hs (T+1, batch, n) with hs[0] = h_0, and g_T = ∂L/∂h_T "
        "(batch, n), return all ∂L/∂h_t as an array (T+1, batch, n), result[0] = ∂L/∂h_0. Use NumPy."
    ),
    checker=_check_q2,
    hints=[
        "Go backwards from g_T. One step back is the chain rule through h_t = tanh(z_t), z_t = ... + h_{t-1} W_h.",
        "∂L/∂h_{t-1} = (∂L/∂h_t ⊙ (1 - h_t²)) W_hᵀ. Collect the T+1 arrays, then reverse the list so index 0 is h_0.",
    ],
    reference=bptt_reference,
    explanation=(
        "Each step back multiplies the row vector ∂L/∂h_t by diag(1 - h_t²), then by W_hᵀ. Since "
        "0 < 1 - h_t² ≤ 1, ‖∂L/∂h_t‖ ≤ ‖W_h‖^(T-t) ‖∂L/∂h_T‖: a recurrent matrix with norm below 1 forces "
        "the gradient to vanish (Pascanu et al. 2013)."
    ),
)


# --------------------------------------------------------------------------- q3: forget-gate bias


def forget_bias_reference(T: int = 100, keep: float = 0.5) -> float:
    """Smallest forget bias b with σ(b)^T ≥ keep: b = logit(keep^(1/T))."""
    p = keep ** (1.0 / T)
    return math.log(p / (1.0 - p))


def _check_q3(value: Any) -> str | None:
    want = forget_bias_reference()
    b = as_number(value, "Your forget bias b")
    if abs(b - want) <= 1e-3 * abs(want):
        return None
    p = 0.5 ** (1 / 100)
    if abs(b - p) <= 1e-3:
        return (
            f"{b:.4g} is the forget-gate value σ(b) you need, not the bias b: invert the sigmoid, b = log(p / (1 - p))."
        )
    if abs(b - 1.0) <= 1e-6:
        return (
            "b = 1 is the usual default (Jozefowicz et al. 2015), but along the cell path σ(1)^100 = 0.731^100 ≈ "
            "2e-14: far too little over 100 steps."
        )
    if abs(b) <= 1e-3:
        return "b = 0 gives σ(0) = 1/2: the gradient halves every step, so 1/2 is kept for one step, not for 100."
    kept = (1.0 / (1.0 + math.exp(-b))) ** 100
    if b < want:
        return f"With b = {b:.4g}, σ(b)^100 = {kept:.3g}, less than 1/2: the bias must be larger."
    return (
        f"With b = {b:.4g}, σ(b)^100 = {kept:.3g} ≥ 1/2, but a smaller bias also works: find the smallest, where "
        f"σ(b)^100 = 1/2."
    )


q3 = Exercise(
    name="q3",
    template='forget_bias = None  # a number',
    prompt=(
        "An LSTM's cell state obeys c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t, so along the cell path alone (holding h_{t-1} "
        "fixed) ∂c_T/∂c_0 = ∏ diag(f_t). "
        "Suppose every forget-gate pre-activation equals its bias b (inputs and h_{t-1} contribute nothing), so "
        "f_t = σ(b). What is the smallest b for which the cell path keeps at least half of the gradient over "
        "T = 100 steps, σ(b)^100 ≥ 1/2? Give a number."
    ),
    checker=_check_q3,
    hints=[
        "First find the forget-gate value p with p^100 = 1/2, then the b with σ(b) = p.",
        "p = 0.5 ** (1/100) ≈ 0.99309; the inverse of the sigmoid is the logit, b = log(p / (1 - p)).",
    ],
    reference=forget_bias_reference(),
    explanation=(
        "b ≈ 4.97: remembering over 100 steps needs a forget gate open to within 0.7 %. The +1 default "
        "(Gers et al. 2000; Jozefowicz et al. 2015) is only a starting point; training opens the gates that "
        "the task needs, because their gradient does not vanish along the cell state. The cell path is not the "
        "whole gradient: notebook 08 measures the loop back through h_{t-1} and W_h, which at b = 5 makes the "
        "untrained LSTM's gradient grow going back in time."
    ),
)


sheet = Sheet("Notebook 08: gradients through time", q1, q2, q3)
