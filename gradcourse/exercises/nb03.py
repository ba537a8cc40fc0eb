"""Exercises for notebook 03, activations: transfer the mean-field tools to new activations and new questions.

q1 GELU's critical σ_w² (found numerically with ``gc.theory``), q2 a tanh depth profile predicted before it is
measured, q3 leaky ReLU's critical σ_w² by hand, q4 the saturated fraction at the fixed point q*.
"""
from __future__ import annotations

import math

import numpy as np

from ._core import FunctionExercise, Sheet, ValueExercise

__all__ = ["q1", "q2", "q3", "q4", "sheet"]

# ------------------------------------------------------------------------------------------ q1

# gc.theory.critical_sigma_w2("gelu", 0.05); tests/test_exercises_nb03.py recomputes it.
_GELU_CRITICAL = 2.234129461664191
_GELU_AT_Q1 = 2.193858973111635  # 1 / E[gelu'(z)²] with z ~ N(0, 1): χ₁ = 1 at q = 1 instead of at q*

q1 = ValueExercise(
    name="q1",
    prompt=(
        "GELU is not scale-invariant, so ReLU's σ_w² = 2 need not be its edge of chaos. With σ_b² = 0.05, find "
        "the σ_w² where χ₁ = 1 for `jax.nn.gelu`, numerically, with gc.theory (3 significant figures). "
        "Assign it to `gelu_critical`."
    ),
    hints=[
        "gc.theory.chi1(activation, sigma_w2, sigma_b2) is χ₁ at the fixed point q*; you want the σ_w² where it is 1.",
        "gc.theory.critical_sigma_w2('gelu', 0.05) does the bisection for you; or bisect chi1 - 1 yourself.",
    ],
    reference=_GELU_CRITICAL,
    mistakes=[
        (2.0, "2 is ReLU's critical σ_w² (He's rule). GELU differs from ReLU near 0: compute χ₁ = 1 for GELU."),
        (_GELU_AT_Q1, "That is where σ_w² E[gelu'(z)²] = 1 for z ~ N(0, 1). χ₁ must be taken at the fixed point q*, "
                      "which moves with σ_w²: use gc.theory.chi1 (or critical_sigma_w2)."),
        (1.7609548982528314, "That is tanh's critical σ_w² at σ_b² = 0.05; the question is about GELU."),
        (2.6702242961611606, "That is SiLU's (swish) critical σ_w²; GELU is `jax.nn.gelu` ('gelu')."),
    ],
    what="gelu_critical",
    rtol=1e-3,
    explanation=(
        "σ_w²* ≈ 2.234 at σ_b² = 0.05: He's σ_w² = 2 leaves a GELU network slightly ordered (gradients shrink). "
        "Evaluating χ₁ at q = 1 instead of q* gives 2.19, 2 % off: the fixed point matters for activations "
        "that are not scale-invariant."
    ),
    template="gelu_critical = None  # a number: the critical σ_w² of GELU at σ_b² = 0.05",
)


# ------------------------------------------------------------------------------------------ q2


def _tanh_profile(sigma_w2: float, depth: int) -> np.ndarray:
    """‖∂L/∂h_l‖² / ‖∂L/∂h_L‖² for l = 0..L: each layer below L multiplies by χ₁ (at q*, σ_b² = 0.05)."""
    import gradcourse as gc

    chi = float(gc.theory.chi1("tanh", sigma_w2, 0.05))
    return chi ** (depth - np.arange(depth + 1.0))


def _tanh_chi_at_q1(sigma_w2: float) -> float:
    x, w = np.polynomial.hermite_e.hermegauss(60)
    return sigma_w2 * float(np.sum(w / w.sum() / np.cosh(x) ** 4))


_PROFILE_CASES = [(1.5, 10), (1.0, 20), (3.0, 8)]

q2 = FunctionExercise(
    name="q2",
    prompt=(
        "Predict before you run: a wide tanh network with σ_b² = 0.05 and weight variance σ_w²/n, at its fixed "
        "point. Write `tanh_profile(sigma_w2, depth)` returning the predicted ‖∂L/∂h_l‖² / ‖∂L/∂h_L‖² for "
        "l = 0, 1, ..., L (an array of L + 1 numbers, the last one 1). Use gc.theory."
    ),
    cases=_PROFILE_CASES,
    mistakes=[
        (lambda w, L: _tanh_profile(w, L)[::-1], "Reversed: the gradient starts at the output (l = L, ratio 1) and "
                                                  "gains a factor χ₁ per layer on its way *down* to l = 0."),
        (lambda w, L: np.sqrt(_tanh_profile(w, L)), "That is the ratio of norms; the question asks for squared norms, "
                                                     "which gain χ₁ (not √χ₁) per layer."),
        (lambda w, L: _tanh_chi_at_q1(w) ** (L - np.arange(L + 1.0)),
         "You evaluated χ₁ = σ_w² E[tanh'(z)²] at q = 1. The pre-activations settle at q* (gc.theory.qstar), "
         "and gc.theory.chi1 evaluates χ₁ there."),
    ],
    signature="tanh_profile(sigma_w2, depth)",
    reference=_tanh_profile,
    hints=[
        "Below the output, each layer multiplies the expected squared gradient norm by χ₁ (gc.theory.chi1).",
        "ratio_l = χ₁^(L − l) with χ₁ = gc.theory.chi1('tanh', sigma_w2, 0.05); np.arange helps.",
    ],
    explanation=(
        "χ₁^(L − l): for σ_w² = 1.5, χ₁ ≈ 0.94, so 10 layers lose a factor 0.53; at σ_w² = 3 (chaotic) the gradient "
        "grows instead. Now measure it (gc.layer_norms of a gc.mlp's gradients) and compare."
    ),
    template=(
        "def tanh_profile(sigma_w2, depth):\n"
        "    ...  # return an array of depth + 1 predicted ratios, l = 0 .. depth"
    ),
)


# ------------------------------------------------------------------------------------------ q3


def _leaky_relu_critical(a: float) -> float:
    return 2.0 / (1.0 + a * a)


q3 = FunctionExercise(
    name="q3",
    prompt=(
        "Leaky ReLU with negative slope a: φ(z) = z for z > 0, a·z for z < 0. With zero-mean Gaussian "
        "pre-activations and σ_b² = 0, χ₁ = σ_w² E[φ'(z)²]. Write `leaky_relu_critical(a)` returning the "
        "critical σ_w² (where χ₁ = 1). Check it with gc.theory.chi1."
    ),
    cases=[(a,) for a in (0.0, 0.01, 0.1, 0.3, 0.5)],
    mistakes=[
        (lambda a: 2.0 / (1.0 + a), "You averaged the slope, E[φ'] = (1 + a)/2. χ₁ needs the mean *squared* slope, "
                                    "E[φ'²] = (1 + a²)/2."),
        (lambda a: 2.0, "That is the ReLU answer, right for a = 0 only: the negative half of the pre-activations "
                        "contributes a² too."),
        (lambda a: 1.0 / (1.0 + a * a), "Missing the factor 2: z > 0 and z < 0 each have probability 1/2, so E[φ'²] = "
                                        "(1 + a²)/2."),
        (lambda a: (1.0 + a * a) / 2.0, "That is E[φ'²] = χ₁/σ_w². The critical σ_w² solves σ_w² E[φ'²] = 1: take the "
                                        "reciprocal."),
        (lambda a: math.sqrt(2.0 / (1.0 + a * a)), "That is σ_w; the question asks for σ_w² (the variance scale)."),
    ],
    signature="leaky_relu_critical(a)",
    hints=[
        "φ'(z) is 1 with probability 1/2 and a with probability 1/2 (z is symmetric about 0).",
        "E[φ'²] = (1 + a²)/2; set σ_w² E[φ'²] = 1.",
    ],
    reference=_leaky_relu_critical,
    explanation=(
        "σ_w²* = 2/(1 + a²): 2 for ReLU (He et al. 2015), 1 for a = 1 (linear). For jax.nn.leaky_relu's default "
        "a = 0.01 it is 1.9998, indistinguishable from He's 2."
    ),
    template="def leaky_relu_critical(a):\n    ...  # return the critical σ_w²",
)


# ------------------------------------------------------------------------------------------ q4


def _saturated_at_qstar(sigma_w2: float, s: float = 0.99) -> float:
    """P(|tanh z| > s) for z ~ N(0, q*) at σ_b² = 0.05: both tails beyond atanh(s)."""
    import gradcourse as gc

    q = float(gc.theory.qstar("tanh", sigma_w2, 0.05))
    return math.erfc(math.atanh(s) / math.sqrt(2.0 * q))


_SAT_CASES = [(w, s) for w in (1.5, 3.0, 6.0) for s in (0.9, 0.99)]

q4 = FunctionExercise(
    name="q4",
    prompt=(
        "How saturated is a tanh network at its fixed point? With σ_b² = 0.05, write "
        "`saturated_at_qstar(sigma_w2, s)`: the predicted fraction of units with |tanh(z)| > s in a deep layer "
        "(z ~ N(0, q*), q* from gc.theory). Use math.erfc and math.atanh."
    ),
    cases=_SAT_CASES,
    mistakes=[
        (lambda w, s: math.erfc(math.atanh(s) / math.sqrt(2.0)), "You used q = 1. Deep in the network the "
                                                                  "pre-activation variance is the fixed point q*, "
                                                                  "gc.theory.qstar('tanh', sigma_w2, 0.05)."),
        (lambda w, s: 0.5 * _saturated_at_qstar(w, s), "Only one tail: tanh saturates near −1 *and* near +1."),
        (lambda w, s: math.erfc(s / math.sqrt(2.0 * float(__import__("gradcourse").theory.qstar("tanh", w, 0.05)))),
         "|tanh(z)| > s means |z| > atanh(s) (≈ 2.65 for s = 0.99), not |z| > s."),
        (lambda w, s: 1.0 - _saturated_at_qstar(w, s), "That is the fraction *not* saturated; use erfc = 1 − erf."),
    ],
    signature="saturated_at_qstar(sigma_w2, s)",
    hints=[
        "Two steps: q* = gc.theory.qstar('tanh', sigma_w2, 0.05), then P(|z| > atanh(s)) for z ~ N(0, q*).",
        "P(|z| > t) = erfc(t / √(2 q*)).",
    ],
    reference=_saturated_at_qstar,
    explanation=(
        "At σ_w² = 1.5 almost no unit is saturated (q* ≈ 0.42), at σ_w² = 6 a large share is: the fixed point "
        "sets the saturation profile, and the notebook's measured per-layer saturation follows it."
    ),
    template="def saturated_at_qstar(sigma_w2, s):\n    ...  # return a fraction between 0 and 1",
)

sheet = Sheet("Notebook 03: activations", q1, q2, q3, q4)
