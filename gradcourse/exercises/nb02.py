"""Exercises for notebook 02: vanishing vs exploding gradients, backward signal vs weight gradients."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._core import FunctionExercise, Sheet

__all__ = ["q1", "q2", "q3", "q4", "sheet"]


# --------------------------------------------------------------------------- q1: deep linear nets


def _backward_ratio(L: int, sigma_w: float) -> float:
    """‖∂L/∂h_0‖ / ‖∂L/∂h_L‖ for a depth-L linear net, W ~ N(0, σ_w²/n): each layer multiplies by σ_w."""
    return sigma_w**L


_Q1_POINTS = [(10, 1.2), (50, 0.9), (3, 2.0), (20, 1.05)]


q1 = FunctionExercise(
    name="q1",
    prompt=(
        "Write `backward_ratio(L, sigma_w)`: the predicted ‖∂L/∂h_0‖ / ‖∂L/∂h_L‖ of a wide depth-L linear network "
        "h_l = h_{l-1} W_l with W_l ~ N(0, σ_w²/n)."
    ),
    cases=_Q1_POINTS,
    mistakes=[
        (lambda L, s: s ** (2 * L), "You squared: σ_w^(2L) is the ratio of *squared* norms (each layer multiplies ‖g‖² "
                                    "by "
                                    "σ_w²). The norm itself gains σ_w per layer."),
        (lambda L, s: s ** (L / 2), "You took one square root too many: σ_w is already the scale of the weights (σ_w² "
                                    "is "
                                    "their variance times n), and each layer multiplies the norm by σ_w."),
        (lambda L, s: s ** (L - 1), "Off by one: from h_L back to h_0 the signal passes through all L weight "
                                    "matrices."),
        (lambda L, s: s ** (L + 1), "Off by one: from h_L back to h_0 the signal passes through exactly L weight "
                                    "matrices."),
        (lambda L, s: s ** (-L), "Inverted: ∂L/∂h_0 is ∂L/∂h_L pulled back through L layers, each multiplying the norm "
                                 "by σ_w (so it vanishes for σ_w < 1 and explodes for σ_w > 1)."),
        (lambda L, s: s * L, "The layers' gains multiply, they do not add: σ_w · σ_w ⋯ σ_w."),
    ],
    signature="backward_ratio(L, sigma_w)",
    template="def backward_ratio(L, sigma_w):\n    ...  # return the predicted ratio of norms",
    hints=[
        "One layer: ∂L/∂h_{l-1} = ∂L/∂h_l W_lᵀ. What is E‖g Wᵀ‖² for a fixed row vector g?",
        "E‖g Wᵀ‖² = n · (σ_w²/n) · ‖g‖² = σ_w² ‖g‖², so the norm gains σ_w per layer.",
    ],
    reference=_backward_ratio,
    explanation="σ_w^L: 1.1^50 ≈ 117 and 0.9^50 ≈ 0.005. A 10% error in the weight scale is a factor of 100 over 50 "
                "layers.",
)


# --------------------------------------------------------------------------- q2: where float32 overflows

_F32_MAX = float(np.finfo(np.float32).max)


def _overflow_depth(sigma_w2: float, q0: float) -> float:
    """Depth l where q_l = q0 σ_w^(2l) reaches float32's largest number: l = ln(max/q0) / ln σ_w²."""
    return math.log(_F32_MAX / q0) / math.log(sigma_w2)


q2 = FunctionExercise(
    name="q2",
    prompt=(
        "Predict before you run: a wide linear network h_l = h_(l-1) W_l, W_l ~ N(0, σ_w²/n), σ_w² > 1, input mean "
        "square q0. Its mean square grows as q_l = q0 σ_w^(2l). Write `overflow_depth(sigma_w2, q0)`: the depth "
        "(a real number) at which q_l reaches the largest float32 number, np.finfo(np.float32).max ≈ 3.4e38 — "
        "around where the forward pass turns into Inf and the loss into NaN."
    ),
    cases=[(4.0, 1.0), (1.21, 1.0), (2.0, 1e-4), (16.0, 100.0)],
    mistakes=[
        (lambda w2, q0: math.log(_F32_MAX / q0) / math.log(math.sqrt(w2)), "σ_w² already is the per-layer factor "
         "of the *mean square*; σ_w is the factor of the norm."),
        (lambda w2, q0: math.log(float(np.finfo(np.float64).max) / q0) / math.log(w2), "That is float64's limit; "
         "the network runs in float32 (max ≈ 3.4e38)."),
        (lambda w2, q0: math.log(_F32_MAX) / math.log(w2), "Include the input's mean square: q_l = q0 σ_w^(2l) "
                                                           "reaches the limit sooner when q0 > 1."),
        (lambda w2, q0: math.log10(_F32_MAX / q0) / math.log(w2), "Mixed logarithms: use the same base on top and "
                                                                  "bottom (ln/ln or log10/log10)."),
    ],
    signature="overflow_depth(sigma_w2, q0)",
    reference=_overflow_depth,
    hints=[
        "Solve q0 σ_w^(2l) = 3.4e38 for l.",
        "l = ln(3.4e38 / q0) / ln(σ_w²).",
    ],
    explanation=(
        "At σ_w² = 4 a float32 linear net overflows near layer 64; at σ_w² = 1.21 (σ_w = 1.1) only after 465 "
        "layers. Gradients overflow at a similar depth from the other end, which is why a NaN loss in a deep "
        "net is usually a gain problem, not a bug in the data."
    ),
    template="def overflow_depth(sigma_w2, q0):\n    ...  # return a depth (real number)",
)


# --------------------------------------------------------------------------- q3: layers per decade


def _layers_per_decade(chi1: float) -> float:
    """Layers over which ‖∂L/∂h_l‖ changes by 10×: the norm gains √χ₁ per layer, so 2 ln 10 / |ln χ₁|."""
    return 2.0 * math.log(10.0) / abs(math.log(chi1))


_Q3_POINTS = [(0.5,), (0.9,), (0.99,), (1.2,)]


q3 = FunctionExercise(
    name="q3",
    prompt=(
        "Write `layers_per_decade(chi1)`: over how many layers does ‖∂L/∂h_l‖ change by a factor 10 in a wide "
        "random network with per-layer gain χ₁ (of the squared norm)? (A real number, not rounded.)"
    ),
    cases=_Q3_POINTS,
    mistakes=[
        (lambda c: _layers_per_decade(c) / 2, "You forgot the ½: χ₁ is the per-layer gain of the *squared* norm, so "
                                              "the "
                                              "norm gains √χ₁ per layer and needs twice as many layers for a factor "
                                              "10."),
        (lambda c: 2 * math.log(10) / math.log(c), "A number of layers is positive: for χ₁ > 1 the signal grows 10× "
                                                   "over "
                                                   "that many layers, for χ₁ < 1 it shrinks 10×. Take |ln χ₁|."),
        (lambda c: -2 * math.log(10) / math.log(c), "Right for χ₁ < 1 only; for χ₁ > 1 (exploding) the count is "
                                                    "positive "
                                                    "too: use |ln χ₁|."),
        (lambda c: 2 / abs(math.log(c)), "That is the number of layers for a factor e; for a factor 10 multiply by ln "
                                         "10."),
        (lambda c: 2 * math.log(10) / abs(1 - c), "Close for χ₁ near 1 only (ln χ₁ ≈ χ₁ - 1 there): use ln χ₁ "
                                                  "exactly."),
    ],
    signature="layers_per_decade(chi1)",
    template="def layers_per_decade(chi1):\n    ...  # return a (real) number of layers",
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


q4 = FunctionExercise(
    name="q4",
    prompt=(
        "In a ReLU network without biases, ⟨W_l, ∂L/∂W_l⟩ = s := ⟨h_L, ∂L/∂h_L⟩ for every layer l. Write "
        "`weight_grad_lower_bound(s, W_norms)` returning, for each layer, a lower bound on ‖∂L/∂W_l‖ from s and "
        "‖W_l‖ (W_norms: array of the L Frobenius norms)."
    ),
    cases=_Q4_POINTS,
    mistakes=[
        (lambda s, w: s * w, "Cauchy-Schwarz gives |⟨W, G⟩| ≤ ‖W‖‖G‖, so ‖G‖ is at least |s| divided by ‖W‖, not "
                             "multiplied."),
        (lambda s, w: s / w, "A norm cannot be negative: the bound is |s| / ‖W_l‖ (here s < 0)."),
        (lambda s, w: np.abs(s) / w**2, "One power of ‖W_l‖ only: |s| = |⟨W_l, G_l⟩| ≤ ‖W_l‖ ‖G_l‖."),
        (lambda s, w: np.full_like(w, np.abs(s)), "|s| bounds ‖W_l‖‖G_l‖, not ‖G_l‖ alone: divide by ‖W_l‖."),
    ],
    signature="weight_grad_lower_bound(s, W_norms)",
    template="def weight_grad_lower_bound(s, W_norms):\n    ...  # return an array of L lower bounds",
    hints=[
        "Which inequality relates an inner product ⟨A, B⟩ to the norms ‖A‖ and ‖B‖?",
        "Cauchy-Schwarz: |⟨W_l, G_l⟩| ≤ ‖W_l‖ ‖G_l‖.",
    ],
    reference=_weight_grad_lower_bound,
    explanation=(
        "‖∂L/∂W_l‖ ≥ |s| / ‖W_l‖ in every layer. This is a floor, not the reason the notebook's weight gradients "
        "come out balanced across depth. The balance comes from ‖∂L/∂W_l‖ = ‖h_(l-1)‖ · ‖δ_l‖ (per example, an outer "
        "product): going down, the forward signal ‖h_(l-1)‖ decays exactly as fast as the backward signal ‖δ_l‖ "
        "grows, and the product stays flat. That ⟨W_l, ∂L/∂W_l⟩ is the same in every layer is the conserved "
        "quantity of Du, Hu & Lee (2018) (balancedness of ‖W_l‖² under gradient flow); it bounds the gradients but "
        "does not make them equal."
    ),
)

sheet = Sheet("Notebook 02: vanishing vs exploding", q1, q2, q3, q4)
