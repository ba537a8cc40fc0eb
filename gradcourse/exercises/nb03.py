"""Exercises for notebook 03, activations: derivative bounds, χ₁ of a new activation, saturation.

``function_checker`` and ``value_checker`` (also used by nb04) compare the learner's answer with
the reference and, when it is wrong, with a list of typical mistakes, each with its own message.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from ._core import Exercise, NotAttempted, Sheet

__all__ = ["function_checker", "q1", "q2", "q3", "q4", "sheet", "value_checker"]

Mistake = tuple[Callable[..., float], str]


def _close(got: Sequence[float], want: Sequence[float], rtol: float) -> bool:
    return bool(np.all(np.isclose(np.asarray(got, float), np.asarray(want, float), rtol=rtol, atol=0.0)))


def _number(v: Any, what: str) -> float:
    if v is None or v is Ellipsis:
        raise NotAttempted
    try:
        a = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{what} should be a number, got {type(v).__name__}") from None
    if a.size != 1:
        raise TypeError(f"{what} should be a single number, got an array of shape {a.shape}")
    return float(a.reshape(()))


def function_checker(
    reference: Callable[..., float],
    cases: Sequence[tuple],
    mistakes: Sequence[Mistake],
    signature: str,
    rtol: float = 1e-6,
) -> Callable[[Any], str | None]:
    """A checker for "write the function ``signature``": right on every case, or the message of the matching mistake.

    ``mistakes``: ``(wrong_function, message)`` pairs; a wrong function may return ``None`` for cases it does
    not care about (the mistake matches when the answer agrees with it on all the other cases).
    """

    def check(answer: Any) -> str | None:
        if not callable(answer):
            return f"Expected a function {signature}, got {type(answer).__name__}."
        got, errors = [], {}
        for i, args in enumerate(cases):
            try:
                got.append(_number(answer(*args), f"{signature} at {args}"))
            except ArithmeticError as e:  # e.g. 1/0 at a boundary case: may still match a known mistake
                got.append(math.nan)
                errors[i] = f"{type(e).__name__}: {e}"
        want = [reference(*args) for args in cases]
        if _close(got, want, rtol):
            return None
        for wrong, message in mistakes:
            pairs = [(g, w) for g, w in zip(got, (wrong(*args) for args in cases)) if w is not None]
            if pairs and _close(*zip(*pairs), rtol):
                return message
        i = next(i for i, (g, w) in enumerate(zip(got, want)) if not _close([g], [w], rtol))
        if i in errors:
            return f"At {signature.split('(')[0]}{cases[i]} your function raised {errors[i]}; the right value is {want[i]:.6g}."
        return f"At {signature.split('(')[0]}{cases[i]} your function returns {got[i]:.6g}, but the right value is {want[i]:.6g}."

    return check


def value_checker(reference: float, mistakes: Sequence[tuple[float, str]], what: str, rtol: float = 1e-4) -> Callable[[Any], str | None]:
    """A checker for "compute this number": right within ``rtol``, or the message of the matching mistake."""

    def check(answer: Any) -> str | None:
        got = _number(answer, what)
        if _close([got], [reference], rtol):
            return None
        for wrong, message in mistakes:
            if _close([got], [wrong], rtol):
                return message
        return f"{what} = {got:.6g} is not right."

    return check


# ------------------------------------------------------------------------------------------ q1


q1 = Exercise(
    name="q1",
    prompt=(
        "What is the largest value of the sigmoid's derivative σ'(x) over all x? "
        "Assign a number to `max_sigmoid_slope`."
    ),
    checker=value_checker(
        0.25,
        [
            (0.5, "0.5 is σ(0), the *value* of the sigmoid where it is steepest, not its slope. Differentiate σ(x) = 1/(1 + e^(−x))."),
            (1.0, "1 is tanh'(0), the largest slope of tanh. The sigmoid is flatter: σ(x) = (1 + tanh(x/2))/2."),
            (1 / 16, "1/16 is σ'(0)², the squared slope (the factor that enters χ₁). The question asks for the slope itself."),
            (math.exp(-1) / (1 + math.exp(-1)) ** 2, "That is σ'(1). The slope is largest at x = 0, where σ(x) = 1/2."),
        ],
        "max_sigmoid_slope",
    ),
    hints=[
        "Show that σ'(x) = σ(x)(1 − σ(x)).",
        "p(1 − p) for p in (0, 1) is largest at p = 1/2, and σ(0) = 1/2.",
    ],
    reference=0.25,
    explanation=(
        "σ'(x) = σ(x)(1 − σ(x)) ≤ 1/2 · 1/2 = 1/4, reached at x = 0. So every sigmoid layer multiplies the "
        "backward signal by at most ‖W_l‖/4: with weights of spectral norm ≤ 1 a sigmoid stack shrinks "
        "gradients at least as fast as 4^(−L)."
    ),
)


# ------------------------------------------------------------------------------------------ q2


def _sigmoid_bound(depth: int, weight_norm: float) -> float:
    return (weight_norm / 4.0) ** depth


_BOUND_CASES = [(L, s) for L in (1, 3, 10) for s in (0.5, 1.0, 2.0, 6.0)]

q2 = Exercise(
    name="q2",
    prompt=(
        "A stack of L sigmoid layers h_l = σ(W_l h_(l−1)) whose weight matrices all have spectral norm "
        "‖W_l‖₂ = s. Write `sigmoid_bound(depth, weight_norm)` returning the upper bound on ‖∂h_L/∂h_0‖₂, "
        "valid for every input, that follows from ‖AB‖ ≤ ‖A‖‖B‖ and the answer of q1."
    ),
    checker=function_checker(
        _sigmoid_bound,
        _BOUND_CASES,
        [
            (lambda L, s: (s / 2) ** L, "You used 1/2 as the slope bound: that is σ(0), the value. The slope σ' is at most 1/4."),
            (lambda L, s: s**L / 4, "The factor 1/4 applies at every layer, not once: each layer contributes ‖W_l‖ · max σ' = s/4."),
            (lambda L, s: s / 4**L, "Each layer has its own weight matrix: the weight factor is s per layer, s^L in all."),
            (lambda L, s: 4.0**-L, "Right only for unit weights (s = 1): include the weight norm, one factor s per layer."),
            (lambda L, s: (s / 4) ** (2 * L), "You squared the bound: (s/4)^(2L) bounds the squared norm. The question asks for the norm."),
        ],
        "sigmoid_bound(depth, weight_norm)",
    ),
    hints=[
        "∂h_L/∂h_0 = J_L ⋯ J_1 with J_l = diag(σ'(z_l)) W_l; bound each factor.",
        "‖diag(σ'(z))‖₂ = max_i σ'(z_i) ≤ 1/4 and ‖W_l‖₂ = s, so ‖J_l‖₂ ≤ s/4.",
    ],
    reference=_sigmoid_bound,
    explanation=(
        "‖J_L ⋯ J_1‖ ≤ Π ‖diag σ'(z_l)‖ ‖W_l‖ ≤ (s/4)^L. Gradients through a sigmoid stack can only survive "
        "if the weights have spectral norm above 4 — and then the pre-activations are large and σ' is far below 1/4."
    ),
)


# ------------------------------------------------------------------------------------------ q3


def _leaky_relu_critical(a: float) -> float:
    return 2.0 / (1.0 + a * a)


q3 = Exercise(
    name="q3",
    prompt=(
        "Leaky ReLU with negative slope a: φ(z) = z for z > 0, a·z for z < 0. With zero-mean Gaussian "
        "pre-activations and σ_b² = 0, χ₁ = σ_w² E[φ'(z)²]. Write `leaky_relu_critical(a)` returning the "
        "critical σ_w² (where χ₁ = 1)."
    ),
    checker=function_checker(
        _leaky_relu_critical,
        [(a,) for a in (0.0, 0.01, 0.1, 0.3, 0.5)],
        [
            (lambda a: 2.0 / (1.0 + a), "You averaged the slope, E[φ'] = (1 + a)/2. χ₁ needs the mean *squared* slope, E[φ'²] = (1 + a²)/2."),
            (lambda a: 2.0, "That is the ReLU answer, right for a = 0 only: the negative half of the pre-activations contributes a² too."),
            (lambda a: 1.0 / (1.0 + a * a), "Missing the factor 2: z > 0 and z < 0 each have probability 1/2, so E[φ'²] = (1 + a²)/2."),
            (lambda a: (1.0 + a * a) / 2.0, "That is E[φ'²] = χ₁/σ_w². The critical σ_w² solves σ_w² E[φ'²] = 1: take the reciprocal."),
        ],
        "leaky_relu_critical(a)",
    ),
    hints=[
        "φ'(z) is 1 with probability 1/2 and a with probability 1/2 (z is symmetric about 0).",
        "E[φ'²] = (1 + a²)/2; set σ_w² E[φ'²] = 1.",
    ],
    reference=_leaky_relu_critical,
    explanation=(
        "σ_w²* = 2/(1 + a²): 2 for ReLU (He et al. 2015), 1 for a = 1 (linear). For jax.nn.leaky_relu's default "
        "a = 0.01 it is 1.9998, indistinguishable from He's 2."
    ),
)


# ------------------------------------------------------------------------------------------ q4


def _tanh_saturated_fraction(q: float, s: float = 0.99) -> float:
    return math.erfc(math.atanh(s) / math.sqrt(2.0 * q))


_SAT_CASES = [(q, s) for q in (0.25, 1.0, 4.0, 25.0) for s in (0.9, 0.99)]

q4 = Exercise(
    name="q4",
    prompt=(
        "A tanh unit counts as saturated when |tanh(z)| > s (gc.stats.activation_stats uses s = 0.99). "
        "Write `tanh_saturated_fraction(q, s)`: the probability of saturation when z ~ N(0, q) "
        "(q is the variance). Use math.erfc and math.atanh."
    ),
    checker=function_checker(
        _tanh_saturated_fraction,
        _SAT_CASES,
        [
            (lambda q, s: 0.5 * math.erfc(math.atanh(s) / math.sqrt(2 * q)), "Only one tail: tanh saturates near −1 *and* near +1, so count P(|z| > t), both tails."),
            (lambda q, s: math.erfc(math.atanh(s) / (math.sqrt(2) * q)), "You treated q as the standard deviation. q is the variance: the standard deviation is √q."),
            (lambda q, s: math.erfc(s / math.sqrt(2 * q)), "|tanh(z)| > s means |z| > atanh(s) (≈ 2.65 for s = 0.99), not |z| > s."),
            (lambda q, s: math.erf(math.atanh(s) / math.sqrt(2 * q)), "That is the fraction *not* saturated, P(|z| < t) = erf(t/√(2q)); use erfc = 1 − erf."),
        ],
        "tanh_saturated_fraction(q, s)",
    ),
    hints=[
        "|tanh(z)| > s  ⇔  |z| > t with t = atanh(s).",
        "For z ~ N(0, q): P(|z| > t) = erfc(t / √(2q)).",
    ],
    reference=_tanh_saturated_fraction,
    explanation=(
        "P(|z| > atanh s) = erfc(atanh(s)/√(2q)). At q* the saturated fraction is the same at every layer, "
        "so mean-field theory predicts the per-layer saturation profile exactly (the line in the notebook)."
    ),
)

sheet = Sheet("Notebook 03: activations", q1, q2, q3, q4)
