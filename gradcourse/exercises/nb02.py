"""Exercises for notebook 02: vanishing vs exploding gradients, backward signal vs weight gradients."""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ._core import Exercise, Sheet, as_array, diagnose

__all__ = ["q1", "q2", "q3", "q4", "sheet"]


def _evaluate(fn: Callable, name: str, points: list[tuple]) -> np.ndarray | str:
    """``fn`` at each point (a tuple of arguments), as a float64 array; a message if ``fn`` is not a function."""
    if not callable(fn):
        return f"Pass your function {name} itself, not {type(fn).__name__}."
    out = []
    for args in points:
        value = fn(*args)
        out.append(as_array(value, f"Your {name} at {args}", finite=False))
    return np.array(out)


# --------------------------------------------------------------------------- q1: deep linear nets


def _backward_ratio(L: int, sigma_w: float) -> float:
    """‖∂L/∂h_0‖ / ‖∂L/∂h_L‖ for a depth-L linear net, W ~ N(0, σ_w²/n): each layer multiplies by σ_w."""
    return sigma_w**L


_Q1_POINTS = [(10, 1.2), (50, 0.9), (3, 2.0), (20, 1.05)]


def _check_q1(fn: Callable) -> str | None:
    got = _evaluate(fn, "backward_ratio", _Q1_POINTS)
    if isinstance(got, str):
        return got
    L = np.array([p[0] for p in _Q1_POINTS], dtype=np.float64)
    s = np.array([p[1] for p in _Q1_POINTS])
    mistakes = [
        (s ** (2 * L), "You squared: σ_w^(2L) is the ratio of *squared* norms (each layer multiplies ‖g‖² by σ_w²). "
                       "The norm itself gains σ_w per layer."),
        (s ** (L / 2), "You took one square root too many: σ_w is already the scale of the weights (σ_w² is their "
                       "variance times n), and each layer multiplies the norm by σ_w."),
        (s ** (L - 1), "Off by one: from h_L back to h_0 the signal passes through all L weight matrices."),
        (s ** (L + 1), "Off by one: from h_L back to h_0 the signal passes through exactly L weight matrices."),
        (s ** (-L), "Inverted: ∂L/∂h_0 is ∂L/∂h_L pulled back through L layers, each multiplying the norm by σ_w "
                    "(so it vanishes for σ_w < 1 and explodes for σ_w > 1)."),
        (s * L, "The layers' gains multiply, they do not add: σ_w · σ_w ⋯ σ_w."),
    ]
    return diagnose(got, s**L, mistakes, name="Your ratio", rtol=1e-6)


q1 = Exercise(
    name="q1",
    prompt=(
        "Write `backward_ratio(L, sigma_w)`: the predicted ‖∂L/∂h_0‖ / ‖∂L/∂h_L‖ of a wide depth-L linear network "
        "h_l = h_{l-1} W_l with W_l ~ N(0, σ_w²/n)."
    ),
    checker=_check_q1,
    hints=[
        "One layer: ∂L/∂h_{l-1} = ∂L/∂h_l W_lᵀ. What is E‖g Wᵀ‖² for a fixed row vector g?",
        "E‖g Wᵀ‖² = n · (σ_w²/n) · ‖g‖² = σ_w² ‖g‖², so the norm gains σ_w per layer.",
    ],
    reference=_backward_ratio,
    explanation="σ_w^L: 1.1^50 ≈ 117 and 0.9^50 ≈ 0.005. A 10% error in the weight scale is a factor of 100 over 50 layers.",
)


# --------------------------------------------------------------------------- q2: critical σ_w² of leaky ReLU


def _leaky_relu_sigma_w2(alpha: float) -> float:
    """χ₁ = σ_w² E[φ'(z)²] = σ_w² (1 + α²)/2 for φ'(z) = 1 (z > 0), α (z < 0); χ₁ = 1 gives this σ_w²."""
    return 2.0 / (1.0 + alpha**2)


_Q2_POINTS = [(0.0,), (0.01,), (0.2,), (0.5,), (1.0,)]


def _check_q2(fn: Callable) -> str | None:
    got = _evaluate(fn, "leaky_relu_sigma_w2", _Q2_POINTS)
    if isinstance(got, str):
        return got
    a = np.array([p[0] for p in _Q2_POINTS])
    want = 2.0 / (1.0 + a**2)
    mistakes = [
        (np.full_like(a, 2.0), "Right for ReLU (α = 0) only: with slope α on the negative side, the negative half of "
                               "the units passes gradient too, with gain α²."),
        (np.full_like(a, 1.0), "σ_w² = 1 keeps a *linear* network's signal; a (leaky) ReLU shrinks gradients on its "
                               "negative side, so σ_w² must compensate."),
        (2.0 / (1.0 + a), "The slope enters squared: χ₁ = σ_w² E[φ'(z)²] and E[φ'²] = (1 + α²)/2."),
        (np.sqrt(want), "That is σ_w, the question asks for σ_w² (the variance scale)."),
        ((1.0 + a**2) / 2.0, "Inverted: solve σ_w² (1 + α²)/2 = 1 for σ_w²."),
        (1.0 / (1.0 + a**2), "Off by a factor 2: half of the pre-activations are positive (slope 1) and half negative "
                             "(slope α), so E[φ'²] = (1 + α²)/2."),
    ]
    return diagnose(got, want, mistakes, name="Your σ_w²", rtol=1e-4)


q2 = Exercise(
    name="q2",
    prompt=(
        "Write `leaky_relu_sigma_w2(alpha)`: the σ_w² that keeps the backward signal of a deep leaky-ReLU network "
        "(slope 1 for z > 0, α for z < 0, no bias) constant in norm, i.e. χ₁ = 1. Check it with gc.theory.chi1."
    ),
    checker=_check_q2,
    hints=[
        "χ₁ = σ_w² E[φ'(z)²], z ~ N(0, q). What is φ'(z)² for z > 0 and for z < 0, and how often is z > 0?",
        "E[φ'²] = ½ · 1 + ½ · α². Solve σ_w² (1 + α²)/2 = 1.",
    ],
    reference=_leaky_relu_sigma_w2,
    explanation="σ_w² = 2/(1+α²): He et al.'s (2015) rule, 2 for ReLU (α = 0) and 1 for the identity (α = 1).",
)


# --------------------------------------------------------------------------- q3: layers per decade


def _layers_per_decade(chi1: float) -> float:
    """Layers over which ‖∂L/∂h_l‖ changes by 10×: the norm gains √χ₁ per layer, so 2 ln 10 / |ln χ₁|."""
    return 2.0 * math.log(10.0) / abs(math.log(chi1))


_Q3_POINTS = [(0.5,), (0.9,), (0.99,), (1.2,)]


def _check_q3(fn: Callable) -> str | None:
    got = _evaluate(fn, "layers_per_decade", _Q3_POINTS)
    if isinstance(got, str):
        return got
    c = np.array([p[0] for p in _Q3_POINTS])
    want = 2 * np.log(10) / np.abs(np.log(c))
    mistakes = [
        (want / 2, "You forgot the ½: χ₁ is the per-layer gain of the *squared* norm, so the norm gains √χ₁ per layer "
                   "and needs twice as many layers for a factor 10."),
        (2 * np.log(10) / np.log(c), "A number of layers is positive: for χ₁ > 1 the signal grows 10× over that many "
                                     "layers, for χ₁ < 1 it shrinks 10×. Take |ln χ₁|."),
        (-2 * np.log(10) / np.log(c), "Right for χ₁ < 1 only; for χ₁ > 1 (exploding) the count is positive too: use |ln χ₁|."),
        (2 / np.abs(np.log(c)), "That is the number of layers for a factor e; for a factor 10 multiply by ln 10."),
        (2 * np.log(10) / np.abs(1 - c), "Close for χ₁ near 1 only (ln χ₁ ≈ χ₁ - 1 there): use ln χ₁ exactly."),
    ]
    return diagnose(got, want, mistakes, name="Your number of layers", rtol=1e-4)


q3 = Exercise(
    name="q3",
    prompt=(
        "Write `layers_per_decade(chi1)`: over how many layers does ‖∂L/∂h_l‖ change by a factor 10 in a wide "
        "random network with per-layer gain χ₁ (of the squared norm)? (A real number, not rounded.)"
    ),
    checker=_check_q3,
    hints=[
        "Going down k layers multiplies ‖∂L/∂h‖ by χ₁^(k/2).",
        "Solve χ₁^(k/2) = 10 (or 1/10) for k: k = 2 ln 10 / |ln χ₁|.",
    ],
    reference=_layers_per_decade,
    explanation=(
        "χ₁ = 0.5 (ReLU at σ_w² = 1) loses a decade every 6.6 layers; χ₁ = 0.99 only every 458 layers. Schoenholz et "
        "al. (2017) call -1/ln χ₁ the gradient depth scale ξ_∇ (gc.theory.depth_scales)."
    ),
)


# --------------------------------------------------------------------------- q4: a floor under every weight gradient


def _weight_grad_lower_bound(s: float, W_norms: Any) -> np.ndarray:
    """⟨W_l, ∂L/∂W_l⟩ = s for every layer and |⟨W, G⟩| ≤ ‖W‖‖G‖ (Cauchy-Schwarz), so ‖G_l‖ ≥ |s| / ‖W_l‖."""
    return np.abs(s) / np.asarray(W_norms)


_Q4_POINTS = [(-0.3, np.array([10.0, 12.0, 9.5])), (2.0, np.array([1.0, 4.0, 16.0, 0.5]))]


def _check_q4(fn: Callable) -> str | None:
    if not callable(fn):
        return f"Pass your function weight_grad_lower_bound itself, not {type(fn).__name__}."
    for s, w in _Q4_POINTS:
        got = fn(s, w)
        mistakes = [
            (s * w, "Cauchy-Schwarz gives |⟨W, G⟩| ≤ ‖W‖‖G‖, so ‖G‖ is at least |s| divided by ‖W‖, not multiplied."),
            (s / w, "A norm cannot be negative: the bound is |s| / ‖W_l‖ (here s < 0)."),
            (np.abs(s) / w**2, "One power of ‖W_l‖ only: |s| = |⟨W_l, G_l⟩| ≤ ‖W_l‖ ‖G_l‖."),
            (np.full_like(w, np.abs(s)), "|s| bounds ‖W_l‖‖G_l‖, not ‖G_l‖ alone: divide by ‖W_l‖."),
        ]
        problem = diagnose(got, np.abs(s) / w, mistakes, name="Your bound", rtol=1e-6)
        if problem is not None:
            return problem
    return None


q4 = Exercise(
    name="q4",
    prompt=(
        "In a ReLU network without biases, ⟨W_l, ∂L/∂W_l⟩ = s := ⟨h_L, ∂L/∂h_L⟩ for every layer l. Write "
        "`weight_grad_lower_bound(s, W_norms)` returning, for each layer, a lower bound on ‖∂L/∂W_l‖ from s and "
        "‖W_l‖ (W_norms: array of the L Frobenius norms)."
    ),
    checker=_check_q4,
    hints=[
        "Which inequality relates an inner product ⟨A, B⟩ to the norms ‖A‖ and ‖B‖?",
        "Cauchy-Schwarz: |⟨W_l, G_l⟩| ≤ ‖W_l‖ ‖G_l‖.",
    ],
    reference=_weight_grad_lower_bound,
    explanation=(
        "‖∂L/∂W_l‖ ≥ |s| / ‖W_l‖ in every layer: however small the backward signal ∂L/∂h_l gets at the bottom, no "
        "layer's weight gradient can fall below this floor, and at initialisation all ‖W_l‖ ≈ σ_w √n are equal."
    ),
)

sheet = Sheet("Notebook 02: vanishing vs exploding", q1, q2, q3, q4)
