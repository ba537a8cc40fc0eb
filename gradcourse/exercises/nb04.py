"""Exercises for notebook 04, initialisation: He and Glorot variances, ReLU's q*, Fuss–Catalan moments."""
from __future__ import annotations

import math

from ._core import Exercise, Sheet
from .nb03 import function_checker

__all__ = ["q1", "q2", "q3", "q4", "sheet"]

_FANS = [(64, 64), (100, 10), (10, 300), (784, 256)]


# ------------------------------------------------------------------------------------------ q1


def _he_variance(fan_in: int, fan_out: int) -> float:
    return 2.0 / fan_in


q1 = Exercise(
    name="q1",
    prompt=(
        "A dense ReLU layer maps fan_in inputs to fan_out outputs. Write `he_variance(fan_in, fan_out)`: the "
        "weight variance Var[W_ij] of He et al. (2015) that keeps the forward variance Var[z_l] constant "
        "(the rule `jax.nn.initializers.he_normal()` implements)."
    ),
    checker=function_checker(
        _he_variance,
        _FANS,
        [
            (lambda i, o: 2.0 / o, "You used fan_out. Var[z_l] = fan_in · Var[W] · E[relu(z_(l−1))²] sums over the fan_in inputs: He's default (fan_in mode) divides by fan_in."),
            (lambda i, o: 1.0 / i, "Missing the factor 2 (this is LeCun's 1/fan_in): ReLU zeroes half of the pre-activations, E[relu(z)²] = Var[z]/2, and the weights must make up for it."),
            (lambda i, o: math.sqrt(2.0 / i), "That is the standard deviation √(2/fan_in); the question asks for the variance."),
            (lambda i, o: 4.0 / (i + o), "That averages fan_in and fan_out like Glorot; He's rule uses fan_in only."),
        ],
        "he_variance(fan_in, fan_out)",
    ),
    hints=[
        "Var[z_j] = Σ_i Var[W_ij] E[h_i²] = fan_in · Var[W] · E[relu(z)²] for zero-mean weights.",
        "For a symmetric z, E[relu(z)²] = E[z²]/2. Make fan_in · Var[W] / 2 = 1.",
    ],
    reference=_he_variance,
    explanation=(
        "Var[W] = 2/fan_in. The 2 is ReLU's: E[relu(z)²] = Var[z]/2 forward and E[relu'(z)²] = 1/2 backward, so "
        "σ_w² = 2 gives χ₁ = 1. It is not a generic 'deep-net' factor: for tanh it would put the net in the chaotic phase."
    ),
)


# ------------------------------------------------------------------------------------------ q2


def _glorot_variance(fan_in: int, fan_out: int) -> float:
    return 2.0 / (fan_in + fan_out)


q2 = Exercise(
    name="q2",
    prompt=(
        "Glorot & Bengio (2010) want Var[W] = 1/fan_in (forward) and Var[W] = 1/fan_out (backward) for a layer "
        "with φ'(0) = 1, and compromise between the two. Write `glorot_variance(fan_in, fan_out)`, the variance "
        "`jax.nn.initializers.glorot_normal()` uses."
    ),
    checker=function_checker(
        _glorot_variance,
        _FANS,
        [
            (lambda i, o: 1.0 / (i + o), "Off by a factor 2: the compromise averages the fans, Var[W] = 1/((fan_in + fan_out)/2) = 2/(fan_in + fan_out)."),
            (lambda i, o: 1.0 / i, "That is LeCun's 1/fan_in: it keeps the forward variance only. Glorot averages the fan_in and fan_out conditions."),
            (lambda i, o: 2.0 / i, "That is He's ReLU rule (2/fan_in). Glorot's rule is for activations with φ'(0) = 1 and uses both fans."),
            (lambda i, o: 6.0 / (i + o), "6/(fan_in + fan_out) is a² for Glorot's *uniform* U(−a, a); its variance is a²/3 = 2/(fan_in + fan_out)."),
            (lambda i, o: math.sqrt(2.0 / (i + o)), "That is the standard deviation; the question asks for the variance."),
        ],
        "glorot_variance(fan_in, fan_out)",
    ),
    hints=[
        "Forward needs fan_in · Var[W] = 1, backward needs fan_out · Var[W] = 1.",
        "Replace fan_in or fan_out by their average (fan_in + fan_out)/2.",
    ],
    reference=_glorot_variance,
    explanation=(
        "Var[W] = 2/(fan_in + fan_out). For a square layer it is 1/n, i.e. σ_w² = 1: exactly LeCun's rule. "
        "With ReLU it halves the squared signal per layer (χ₁ = 1/2, a factor √½ per layer on norms)."
    ),
)


# ------------------------------------------------------------------------------------------ q3


def _relu_qstar(sigma_w2: float, sigma_b2: float) -> float:
    if sigma_w2 >= 2.0:
        return math.inf
    return sigma_b2 / (1.0 - sigma_w2 / 2.0)


q3 = Exercise(
    name="q3",
    prompt=(
        "For a ReLU network the length map is q_l = σ_w² E[relu(z)²] + σ_b² with z ~ N(0, q_(l−1)). Write "
        "`relu_qstar(sigma_w2, sigma_b2)` (σ_b² > 0): its fixed point q*, or `math.inf` when q_l grows without bound."
    ),
    checker=function_checker(
        _relu_qstar,
        [(0.5, 1.0), (0.8, 0.05), (1.5, 0.2), (1.9, 0.01), (2.0, 0.05), (3.0, 0.5)],
        [
            (lambda w, b: b / (1 - w) if w < 1 else None, "You used E[relu(z)²] = q; it is q/2 (half the Gaussian mass is cut off). The map is q ← σ_w² q/2 + σ_b²."),
            (lambda w, b: b / (1 + w / 2) if w < 2 else None, "Sign error: solving q = σ_w² q/2 + σ_b² gives q (1 − σ_w²/2) = σ_b²."),
            (lambda w, b: b / (1 - w / 2) if w < 2 else -math.inf, "Return +inf (math.inf) when q grows without bound, not −inf."),
            (lambda w, b: None if w < 2 else math.inf, "Right for σ_w² ≥ 2; check your formula for σ_w² < 2 by solving q = σ_w² q/2 + σ_b²."),
            (lambda w, b: b / (1 - w / 2) if w < 2 else None, "Right for σ_w² < 2. For σ_w² ≥ 2 (with σ_b² > 0) the map q ← σ_w² q/2 + σ_b² grows without bound; return math.inf."),
        ],
        "relu_qstar(sigma_w2, sigma_b2)",
    ),
    hints=[
        "For z ~ N(0, q), E[relu(z)²] = q/2.",
        "Solve q = σ_w² q/2 + σ_b². The map's slope is σ_w²/2: the fixed point is attracting only if it is < 1.",
    ],
    reference=_relu_qstar,
    explanation=(
        "q* = σ_b² / (1 − σ_w²/2) for σ_w² < 2, else ∞. χ₁ = σ_w²/2 does not depend on q*, so ReLU's "
        "order-to-chaos line is the vertical σ_w² = 2 (the He value) at every σ_b²."
    ),
)


# ------------------------------------------------------------------------------------------ q4


def _fc_second_moment(depth: int) -> float:
    return depth + 1.0


q4 = Exercise(
    name="q4",
    prompt=(
        "J = W_L ⋯ W_1 with iid N×N Gaussian W_l, entries N(0, 1/N), N → ∞. The squared singular values x of J "
        "have mean 1. Write `fc_second_moment(depth)`: their second moment E[x²] as a function of L = depth."
    ),
    checker=function_checker(
        _fc_second_moment,
        [(1,), (2,), (4,), (10,)],
        [
            (lambda L: float(L), "That is the variance, E[x²] − E[x]² = L. The second moment adds E[x]² = 1."),
            (lambda L: 1.0, "That is the orthogonal answer (every x = 1). Gaussian products spread out with depth."),
            (lambda L: 2.0**L, "The moments do not multiply layer by layer. For independent rotation-invariant factors the normalised variances *add*: 1 per Gaussian layer."),
            (lambda L: 2.0, "Right for one layer only (Marchenko–Pastur, E[x²] = 2). Each extra layer adds 1 to the variance."),
        ],
        "fc_second_moment(depth)",
    ),
    hints=[
        "For L = 1, x follows Marchenko–Pastur with ratio 1: E[x] = 1, E[x²] = 2.",
        "The Fuss–Catalan moments are C((L+1)k, k)/(Lk + 1); take k = 2.",
    ],
    reference=_fc_second_moment,
    explanation=(
        "E[x²] = C(2L+2, 2)/(2L+1) = L + 1, so Var[x] = L: a Gaussian-initialised deep linear net is isometric "
        "on average (E[x] = 1) but its singular values spread with depth. Orthogonal weights give x = 1 exactly "
        "(Saxe et al. 2014): dynamical isometry."
    ),
)

sheet = Sheet("Notebook 04: initialisation", q1, q2, q3, q4)
