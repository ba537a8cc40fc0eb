"""Exercises for notebook 06, residual connections: design questions on the stream and the backward signal.

q1 how many layers until the stream has grown by a given factor (plain vs pre-norm branches), q2 the largest safe
branch scale, q3 the residual VJP, q4 the branch scale that keeps a pre-norm stack's backward growth within a bound.
Here ``c`` is the branch's *mean-square* gain, ms(F(h)) = c · ms(h) (the notebook's convention).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._core import FunctionExercise, Sheet

__all__ = ["q1", "q2", "q3", "q4", "sheet"]


# --------------------------------------------------------------------------- q1: layers until the stream has grown


def _layers_to_grow(factor: float, s: float, c: float, prenorm: bool) -> float:
    """Depth L at which q_L / q_0 = factor (q_0 = 1): unnormalised q_L = (1 + s²c)^L; pre-norm q_L = 1 + L s² c."""
    return (factor - 1.0) / (s**2 * c) if prenorm else math.log(factor) / math.log1p(s**2 * c)


_Q1_CASES = [(f, s, c, p) for p in (False, True) for f, s, c in [(10.0, 1.0, 1.0), (2.0, 0.1, 1.0), (100.0, 0.3, 2.0)]]

q1 = FunctionExercise(
    name="q1",
    prompt=(
        "Predict before you build: a residual stream h_l = h_(l-1) + s·F(h_(l-1)) starts with mean square q_0 = 1; "
        "its random branch has mean-square gain c (unnormalised: ms(F(h)) = c·ms(h); pre-norm, F = G(LayerNorm(h)): "
        "ms(F) = c whatever h). Write `layers_to_grow(factor, s, c, prenorm)`: after how many layers (a real "
        "number, not rounded) has the mean square grown by `factor`?"
    ),
    cases=_Q1_CASES,
    mistakes=[
        (lambda f, s, c, p: (f - 1) / (s * c) if p else math.log(f) / math.log1p(s * c),
         "The scale s enters squared: the branch adds s·F, whose mean square is s² times F's."),
        (lambda f, s, c, p: math.log(f) / math.log1p(s**2 * c) if p else (f - 1) / (s**2 * c),
         "You swapped the two cases. A pre-norm branch sees a normalised input, so it adds the *same* s²c every "
         "layer (linear growth); an unnormalised branch adds s²c times the current q (geometric growth)."),
        (lambda f, s, c, p: None if p else math.log(f) / (s**2 * c),
         "ln(1 + s²c) ≈ s²c only when s²c is small: use the exact per-layer factor 1 + s²c."),
        (lambda f, s, c, p: None if p else f / (s**2 * c),
         "The unnormalised stream grows geometrically, q_L = (1 + s²c)^L: solve for L with a logarithm."),
        (lambda f, s, c, p: f / (s**2 * c) if p else None, "q_0 = 1 is already there: the pre-norm stream needs "
                                                           "to *add* factor − 1, at s²c per layer."),
    ],
    signature="layers_to_grow(factor, s, c, prenorm)",
    reference=_layers_to_grow,
    hints=[
        "E‖h + sF‖² = ‖h‖² + 2s E⟨h, F⟩ + s² E‖F‖², with E⟨h, F⟩ = 0 for a random branch. So q_l = q_(l-1) + s² · "
        "ms(F).",
        "Unnormalised: q_L = (1 + s²c)^L. Pre-norm: q_L = 1 + L s² c. Set q_L = factor and solve for L.",
    ],
    explanation=(
        "At s = 1, c = 1 an unnormalised stream grows 10× in 3.3 layers, a pre-norm one in 9; at s = 0.1 doubling "
        "takes 70 and 100 layers. Geometric growth is what pre-norm and 1/√L scaling are there to prevent."
    ),
    template="def layers_to_grow(factor, s, c, prenorm):\n    ...  # return a (real) number of layers",
)


# --------------------------------------------------------------------------- q2: the largest safe branch scale


def _max_branch_scale(L: int, growth: float = 2.0) -> float:
    """(1 + s²)^L = growth  ⇔  s = sqrt(growth^(1/L) − 1)."""
    return math.sqrt(growth ** (1.0 / L) - 1.0)


_Q2_POINTS = [(1, 2.0), (4, 2.0), (100, 2.0), (50, 10.0)]


_Q2_MISTAKES = [
    (lambda L, g: 1 / math.sqrt(L), "1/√L gives (1 + 1/L)^L, which approaches e ≈ 2.72 for every growth target; "
                                    "solve (1 + s²)^L = growth for s instead."),
    (lambda L, g: g ** (1 / L) - 1, "That is s², the branch's variance scale; take the square root for s."),
    (lambda L, g: math.sqrt(math.log(g) / L), "Close for large L only (ln(1 + s²) ≈ s²); solve (1 + s²)^L = growth "
                                              "exactly: s = sqrt(growth^(1/L) − 1)."),
    (lambda L, g: math.sqrt(g - 1) / L, "The growth compounds over layers: (1 + s²)^L, not 1 + L² s²."),
    (lambda L, g: math.sqrt((g - 1) / L), "That makes 1 + L s² = growth, the first-order (linear) approximation; "
                                          "the growth compounds: (1 + s²)^L = growth."),
]

q2 = FunctionExercise(
    name="q2",
    prompt=(
        "Unnormalised residual branches with mean-square gain c = 1 (He-initialised ReLU branches) make the stream's "
        "mean square grow by (1 + s²) per layer. Write `max_branch_scale(L, growth)`: the largest s such that it "
        "grows by at most the factor `growth` over L layers."
    ),
    cases=_Q2_POINTS,
    mistakes=_Q2_MISTAKES,
    signature="max_branch_scale(L, growth)",
    template="def max_branch_scale(L, growth):\n    ...  # return s",
    hints=[
        "Solve (1 + s²)^L = growth for s.",
        "1 + s² = growth^(1/L), so s = sqrt(growth^(1/L) − 1) — about sqrt(ln(growth)/L) for large L.",
    ],
    reference=_max_branch_scale,
    explanation=(
        "s ≈ sqrt(ln(growth)/L): the 1/√L rule with a constant that sets the final growth. With s = 1/√L the growth "
        "is (1 + 1/L)^L < e at every depth."
    ),
)


# --------------------------------------------------------------------------- q3: the residual VJP


def _residual_vjp(u: Any, J: Any, s: float) -> np.ndarray:
    """u (I + sJ) = u + s · u J for a row-vector cotangent u (the Jacobian of h + sF(h) is I + sJ)."""
    u, J = np.asarray(u, dtype=np.float64), np.asarray(J, dtype=np.float64)
    return u + s * u @ J


_RNG = np.random.default_rng(11)
_Q3_CASES = [
    (_RNG.normal(size=4), _RNG.normal(size=(4, 4)), 0.5),
    (_RNG.normal(size=(2, 3)), _RNG.normal(size=(3, 3)), 1.0),
]


q3 = FunctionExercise(
    name="q3",
    prompt=(
        "A residual layer computes g(h) = h + s·F(h), and J = ∂F/∂h at the current h (n × n). Write "
        "`residual_vjp(u, J, s)`: the cotangent u ∂g/∂h pulled back through the layer, for a row vector u of "
        "shape (n,) (or a batch of them, shape (B, n))."
    ),
    cases=_Q3_CASES,
    mistakes=[
        (lambda u, J, s: s * u @ J, "You dropped the skip path: the Jacobian of h + sF(h) is I + sJ, so the cotangent "
                                    "passes through unchanged *plus* s·uJ."),
        (lambda u, J, s: u + u @ J, "The branch's contribution is scaled by s: u + s·uJ."),
        (lambda u, J, s: u + s * u @ J.T, "Transposed: for a row-vector cotangent the VJP is u (I + sJ) = u + s·(u @ "
                                          "J); "
                                          "u @ J.T would be a JVP with J."),
        (lambda u, J, s: u @ J, "That is the plain (no skip) VJP without the scale; a residual block gives u + s·uJ."),
    ],
    signature="residual_vjp(u, J, s)",
    template="def residual_vjp(u, J, s):\n    ...  # return u pulled back through h + s F(h)",
    hints=[
        "The Jacobian of h ↦ h + sF(h) is I + sJ.",
        "u (I + sJ) = u + s · (u @ J).",
    ],
    reference=_residual_vjp,
    explanation=(
        "u (I + sJ): the identity carries the cotangent past every layer untouched. Even when sJ is small or "
        "badly conditioned, the product of (I + sJ_l) stays near the identity if Σ_l s‖J_l‖ is moderate."
    ),
)


# --------------------------------------------------------------------------- q4: a branch scale for a backward budget


def _prenorm_scale(L: int, r: float, q0: float, c: float) -> float:
    """‖∂L/∂h_0‖² / ‖∂L/∂h_L‖² = q_L / q_0 = (q0 + L s² c) / q0 ≤ r  ⇔  s ≤ sqrt((r − 1) q0 / (L c))."""
    return math.sqrt((r - 1.0) * q0 / (L * c))


_Q4_CASES = [(50, 2.0, 1.0, 1.0), (100, 10.0, 1.0, 2.0), (12, 4.0, 0.5, 1.0), (1000, 1.5, 2.0, 0.5)]

q4 = FunctionExercise(
    name="q4",
    prompt=(
        "Design a pre-norm residual stack (q_k = q0 + k s² c, as in the notebook) of depth L whose backward signal "
        "grows by at most a factor r in squared norm from the top to the input: ‖∂L/∂h_0‖² / ‖∂L/∂h_L‖² ≤ r. Write "
        "`prenorm_scale(L, r, q0, c)`: the largest branch scale s that achieves it."
    ),
    cases=_Q4_CASES,
    mistakes=[
        (lambda L, r, q0, c: (r - 1) * q0 / (L * c), "That is s², the largest branch *variance* scale; take the square "
                                                     "root."),
        (lambda L, r, q0, c: math.sqrt(r * q0 / (L * c)), "q_L / q_0 = 1 + L s² c / q0: the 1 is the skip path, "
                                                          "so only r − 1 is left for the branches."),
        (lambda L, r, q0, c: math.sqrt(r ** (1 / L) - 1) / math.sqrt(c), "That is the *unnormalised* stack's rule "
         "((1 + s²c)^L = r). A pre-norm stack grows linearly, q_L = q0 + L s² c, so its backward ratio is q_L/q_0."),
        (lambda L, r, q0, c: math.sqrt((r - 1) / (L * c)), "You dropped q0: the ratio is (q0 + L s² c)/q0, so s² = (r "
                                                           "− 1) q0 / (L c)."),
    ],
    signature="prenorm_scale(L, r, q0, c)",
    reference=_prenorm_scale,
    hints=[
        "The notebook measured ‖∂L/∂h_l‖² / ‖∂L/∂h_L‖² ≈ q_L / q_l. Take l = 0.",
        "(q0 + L s² c)/q0 = r  ⇔  s² = (r − 1) q0 / (L c).",
    ],
    explanation=(
        "s = sqrt((r − 1) q0 / (L c)) ∝ 1/√L: the same 1/√L rule as for the forward stream, now derived from a "
        "gradient budget. Pre-LN transformers sit at s = 1 and accept r ≈ 1 + L c / q0 (notebook 10)."
    ),
    template="def prenorm_scale(L, r, q0, c):\n    ...  # return the largest s",
)

sheet = Sheet("Notebook 06: residual connections", q1, q2, q3, q4)
