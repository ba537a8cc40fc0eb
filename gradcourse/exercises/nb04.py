"""Exercises for notebook 04, initialisation.

q1 the backward gain of He init, q2 He's rule for any activation, q3 ReLU's q*, q4 Fuss–Catalan moments,
q5 one LSUV rescaling step.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from ._core import FunctionExercise, Sheet

__all__ = ["q1", "q2", "q3", "q4", "q5", "sheet"]

_FANS = [(64, 64), (100, 10), (10, 300), (784, 256)]


# ------------------------------------------------------------------------------------------ q1


def _backward_gain(fan_in: int, fan_out: int) -> float:
    """Per-unit Var[δ_in] / Var[δ_out] through W (fan_out × fan_in), Var[W] = 2/fan_in, and ReLU.

    Each entry of δ_in sums fan_out terms: fan_out · (2/fan_in) · 1/2.
    """
    return fan_out / fan_in


q1 = FunctionExercise(
    name="q1",
    prompt=(
        "He's rule Var[W] = 2/fan_in keeps the *forward* variance constant. A dense ReLU layer maps fan_in inputs "
        "to fan_out outputs with that initialisation. Write `backward_gain(fan_in, fan_out)`: by what factor does "
        "it multiply the per-unit variance of the backward signal, Var[∂L/∂h_i], on its way from its outputs to its "
        "inputs?"
    ),
    cases=_FANS,
    mistakes=[
        (lambda i, o: 1.0, "He's fan_in rule preserves the forward variance; backward, the sum runs over the "
                           "fan_out outputs, so the gain is fan_out · Var[W] · E[relu'²], not 1 unless fan_in = "
                           "fan_out."),
        (lambda i, o: i / o, "Inverted: ∂L/∂h_in = Wᵀ (relu' ⊙ ∂L/∂z) sums over the fan_out outputs."),
        (lambda i, o: 2.0 * o / i, "Missing ReLU's 1/2: E[relu'(z)²] = 1/2, half the units pass no gradient."),
        (lambda i, o: math.sqrt(o / i), "That is the gain of the standard deviation; the question asks for the "
                                        "variance."),
    ],
    signature="backward_gain(fan_in, fan_out)",
    hints=[
        "Each entry of ∂L/∂h_in = Wᵀ (relu'(z) ⊙ ∂L/∂z) sums fan_out terms.",
        "Gain = fan_out · Var[W] · E[relu'(z)²] = fan_out · (2/fan_in) · (1/2).",
    ],
    reference=_backward_gain,
    explanation=(
        "fan_out/fan_in: a 784 → 256 layer with He (fan_in) init divides the per-unit backward variance by 3 (the "
        "total squared norm is kept: fewer outputs, more inputs). "
        "He's fan_out mode fixes the backward pass instead; Glorot's 2/(fan_in + fan_out) compromises. For square "
        "layers all three agree."
    ),
    template="def backward_gain(fan_in, fan_out):\n    ...  # return the factor",
)


# ------------------------------------------------------------------------------------------ q2


def _forward_sigma_w2(phi) -> float:
    """σ_w² = 1 / E[φ(z)²], z ~ N(0, 1): keeps the forward second moment (Gauss–Hermite quadrature)."""
    x, w = np.polynomial.hermite_e.hermegauss(80)
    return 1.0 / float(np.sum(w / w.sum() * np.asarray(phi(jnp.asarray(x)), dtype=np.float64) ** 2))


def _backward_sigma_w2(phi) -> float:
    x, w = np.polynomial.hermite_e.hermegauss(80)
    d = np.asarray(jax.vmap(jax.grad(phi))(jnp.asarray(x)), dtype=np.float64)
    return 1.0 / float(np.sum(w / w.sum() * d**2))


_PHIS = [(jax.nn.relu,), (jnp.tanh,), (jax.nn.gelu,), (jax.nn.sigmoid,)]

q2 = FunctionExercise(
    name="q2",
    prompt=(
        "Generalise He's derivation to any activation: write `forward_sigma_w2(phi)` returning the σ_w² "
        "(Var[W] = σ_w²/fan_in) for which a layer z' = W φ(z) keeps E[z'²] = E[z²] = 1, for z ~ N(0, 1). "
        "phi is a JAX function (e.g. jnp.tanh). Use quadrature (gc.theory.length_map does it) — not sampling."
    ),
    cases=_PHIS,
    mistakes=[
        (lambda phi: 1.0 / float(__import__("gradcourse").theory.length_map(phi, 1.0, 1.0, 0.0)) ** 2, "You squared "
         "E[φ(z)²]; the forward map is E[z'²] = σ_w² E[φ(z)²]."),
        (_backward_sigma_w2, "That is 1/E[φ'(z)²], the σ_w² that keeps the *backward* signal (χ₁ = 1 at q = 1); "
                             "for ReLU the two agree (both 2), for tanh or sigmoid they do not."),
        (lambda phi: float(__import__("gradcourse").theory.length_map(phi, 1.0, 1.0, 0.0)), "Inverted: solve "
         "σ_w² E[φ(z)²] = 1 for σ_w²."),
    ],
    signature="forward_sigma_w2(phi)",
    rtol=1e-3,
    hints=[
        "E[z'²] = fan_in · Var[W] · E[φ(z)²] = σ_w² E[φ(z)²]. Set it to 1.",
        "E[φ(z)²] = gc.theory.length_map(phi, 1.0, 1.0, 0.0) (q = 1, σ_w² = 1, σ_b² = 0).",
    ],
    reference=_forward_sigma_w2,
    explanation=(
        "σ_w² = 1/E[φ(z)²]: 2 for ReLU (He), ≈ 2.53 for tanh, ≈ 3.4 for GELU, ≈ 3.4 for the sigmoid (whose mean "
        "is not 0). Keeping the forward scale and keeping the backward scale are different conditions except "
        "for ReLU — which is why He's rule is a ReLU rule."
    ),
    template="def forward_sigma_w2(phi):\n    ...  # return σ_w²",
)


# ------------------------------------------------------------------------------------------ q3


def _relu_qstar(sigma_w2: float, sigma_b2: float) -> float:
    if sigma_w2 >= 2.0:
        return math.inf
    return sigma_b2 / (1.0 - sigma_w2 / 2.0)


q3 = FunctionExercise(
    name="q3",
    prompt=(
        "For a ReLU network the length map is q_l = σ_w² E[relu(z)²] + σ_b² with z ~ N(0, q_(l−1)). Write "
        "`relu_qstar(sigma_w2, sigma_b2)` (σ_b² > 0): its fixed point q*, or `math.inf` when q_l grows without bound."
    ),
    cases=[(0.5, 1.0), (0.8, 0.05), (1.5, 0.2), (1.9, 0.01), (2.0, 0.05), (3.0, 0.5)],
    mistakes=[
            (lambda w, b: b / (1 - w) if w < 1 else None, "You used E[relu(z)²] = q; it is q/2 (half the Gaussian mass "
                                                          "is cut off). The map is q ← σ_w² q/2 + σ_b²."),
            (lambda w, b: b / (1 + w / 2) if w < 2 else None, "Sign error: solving q = σ_w² q/2 + σ_b² gives q (1 − "
                                                              "σ_w²/2) = σ_b²."),
            (lambda w, b: b / (1 - w / 2) if w < 2 else -math.inf, "Return +inf (math.inf) when q grows without bound, "
                                                                   "not −inf."),
            (lambda w, b: None if w < 2 else math.inf, "Right for σ_w² ≥ 2; check your formula for σ_w² < 2 by solving "
                                                       "q = σ_w² q/2 + σ_b²."),
            (lambda w, b: b / (1 - w / 2) if w < 2 else None, "Right for σ_w² < 2. For σ_w² ≥ 2 (with σ_b² > 0) the "
                                                              "map q ← σ_w² q/2 + σ_b² grows without bound; return "
                                                              "math.inf."),
        ],
    signature="relu_qstar(sigma_w2, sigma_b2)",
    hints=[
        "For z ~ N(0, q), E[relu(z)²] = q/2.",
        "Solve q = σ_w² q/2 + σ_b². The map's slope is σ_w²/2: the fixed point is attracting only if it is < 1.",
    ],
    reference=_relu_qstar,
    template="def relu_qstar(sigma_w2, sigma_b2):\n    ...  # return q*, or math.inf",
    explanation=(
        "q* = σ_b² / (1 − σ_w²/2) for σ_w² < 2, else ∞. χ₁ = σ_w²/2 does not depend on q*, so ReLU's "
        "order-to-chaos line is the vertical σ_w² = 2 (the He value) at every σ_b²."
    ),
)


# ------------------------------------------------------------------------------------------ q4


def _fc_second_moment(depth: int) -> float:
    return depth + 1.0


q4 = FunctionExercise(
    name="q4",
    prompt=(
        "J = W_L ⋯ W_1 with iid N×N Gaussian W_l, entries N(0, 1/N), N → ∞. The squared singular values x of J "
        "have mean 1. Write `fc_second_moment(depth)`: their second moment E[x²] as a function of L = depth."
    ),
    cases=[(1,), (2,), (4,), (10,)],
    mistakes=[
            (lambda L: float(L), "That is the variance, E[x²] − E[x]² = L. The second moment adds E[x]² = 1."),
            (lambda L: 1.0, "That is the orthogonal answer (every x = 1). Gaussian products spread out with depth."),
            (lambda L: 2.0**L, "The moments do not multiply layer by layer. For independent rotation-invariant factors "
                               "the normalised variances *add*: 1 per Gaussian layer."),
            (lambda L: 2.0, "Right for one layer only (Marchenko–Pastur, E[x²] = 2). Each extra layer adds 1 to the "
                            "variance."),
        ],
    signature="fc_second_moment(depth)",
    hints=[
        "For L = 1, x follows Marchenko–Pastur with ratio 1: E[x] = 1, E[x²] = 2.",
        "The Fuss–Catalan moments are C((L+1)k, k)/(Lk + 1); take k = 2.",
    ],
    reference=_fc_second_moment,
    template="def fc_second_moment(depth):\n    ...  # return E[x²]",
    explanation=(
        "E[x²] = C(2L+2, 2)/(2L+1) = L + 1, so Var[x] = L: a Gaussian-initialised deep linear net is isometric "
        "on average (E[x] = 1) but its singular values spread with depth. Orthogonal weights give x = 1 exactly "
        "(Saxe et al. 2014): dynamical isometry."
    ),
)

# ------------------------------------------------------------------------------------------ q5


def _lsuv_scale(var_z: float, target: float) -> float:
    """z = h W is linear in W: scaling W by a scales Var[z] by a², so a = √(target / Var[z])."""
    return math.sqrt(target / var_z)


q5 = FunctionExercise(
    name="q5",
    prompt=(
        "One LSUV step (§7): on a batch, layer l's pre-activations z_l = h_(l-1) W_l have variance `var_z`. Write "
        "`lsuv_scale(var_z, target)`: the number to multiply W_l by so that Var[z_l] becomes `target` on that batch "
        "(no bias)."
    ),
    cases=[(4.0, 1.0), (0.01, 1.0), (2.5, 0.5), (1e-4, 2.0)],
    mistakes=[
        (lambda v, t: t / v, "That rescales the *variance* by the factor you want; W multiplies z, so Var[z] "
                             "changes by the square of W's factor: take the square root."),
        (lambda v, t: math.sqrt(v / t), "Inverted: a layer whose variance is too large needs W made smaller."),
        (lambda v, t: 1 / math.sqrt(v), "Right only for target 1: aim at `target`, i.e. √(target / var_z)."),
    ],
    signature="lsuv_scale(var_z, target)",
    template="def lsuv_scale(var_z, target):\n    ...  # return the factor for W_l",
    hints=[
        "z = h W is linear in W. If W becomes a·W, what happens to Var[z]?",
        "Var[a z] = a² Var[z]; solve a² var_z = target.",
    ],
    reference=_lsuv_scale,
    explanation=(
        "a = √(target / Var[z]). With no bias one step is exact on the batch; with biases or normalisation after the "
        "layer LSUV repeats the step until the variance is within a tolerance (gc.experiments.lsuv)."
    ),
)

sheet = Sheet("Notebook 04: initialisation", q1, q2, q3, q4, q5)
