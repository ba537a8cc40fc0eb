"""Exercises for notebook 06: the residual stream's variance, branch scaling, the residual VJP, and the
backward signal of a pre-norm residual stack."""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ._core import Exercise, Sheet, as_array, diagnose, expect_function

__all__ = ["q1", "q2", "q3", "q4", "sheet"]


# --------------------------------------------------------------------------- q1: the stream's mean square


def _stream_mean_square(q0: float, depth: int, s: float, c: float, prenorm: bool) -> np.ndarray:
    """q_l for l = 0 ... L of h_l = h_{l-1} + s F(h_{l-1}) (branch output ⟂ stream on average).

    Unnormalised branch, ms(F(h)) = c · ms(h):  q_l = q0 (1 + s² c)^l.
    Pre-norm branch F(N(h)), ms = c whatever h:  q_l = q0 + l s² c.
    """
    l = np.arange(depth + 1, dtype=np.float64)
    return q0 + l * s**2 * c if prenorm else q0 * (1.0 + s**2 * c) ** l


_Q1_POINTS = [(1.0, 10, 1.0, 1.0), (2.0, 20, 0.3, 1.5), (0.5, 5, 1.0, 0.5)]


def _check_q1(fn: Callable) -> str | None:
    expect_function(fn, "stream_mean_square")
    for prenorm in (False, True):
        for q0, L, s, c in _Q1_POINTS:
            got = as_array(fn(q0, L, s, c, prenorm))
            l = np.arange(L + 1, dtype=np.float64)
            want = _stream_mean_square(q0, L, s, c, prenorm)
            kind = "pre-norm" if prenorm else "unnormalised"
            if got.shape == (L,):
                return (f"Your {kind} answer has L = {L} values; return L + 1, for l = 0 ... L (q_0 is the input's "
                        "mean square).")
            mistakes = [
                (q0 + l * s * c if prenorm else q0 * (1 + s * c) ** l,
                 f"{kind}: the scale s enters squared — the branch adds s·F, whose mean square is s² times F's."),
                (q0 * (1 + s**2 * c) ** l if prenorm else q0 + l * s**2 * c,
                 "You swapped the two cases. A pre-norm branch sees a normalised input, so it adds the *same* amount "
                 "s²c every layer (linear growth); an unnormalised branch adds s²c times the current q (geometric)."),
                (q0 * (s**2 * c) ** l if not prenorm else np.where(l == 0, q0, s**2 * c),
                 f"{kind}: you dropped the skip path. h_l = h_(l-1) + s F(h_(l-1)) keeps the old q and adds the branch's."),
                (q0 + l * s**2 * c * q0 if prenorm else q0 * (1 + 2 * s * c) ** l,
                 f"{kind}: check the cross term and what the branch's mean square is proportional to: for a random "
                 "branch, E⟨h, F⟩ = 0, and a pre-norm branch's output does not depend on q."),
            ]
            problem = diagnose(got, want, mistakes, name=f"Your {kind} q_l", rtol=1e-6)
            if problem is not None:
                return problem
    return None


q1 = Exercise(
    name="q1",
    prompt=(
        "Write `stream_mean_square(q0, depth, s, c, prenorm)` returning the predicted mean square q_l, l = 0 ... depth "
        "(an array of depth + 1 numbers), of the residual stream h_l = h_(l-1) + s·F(h_(l-1)) with q_0 = q0, where the "
        "random branch has mean-square gain c: ms(F(h)) = c·ms(h) if prenorm is False; F = G(LayerNorm(h)) with "
        "ms(F) = c whatever h if prenorm is True."
    ),
    checker=_check_q1,
    hints=[
        "E‖h + sF‖² = ‖h‖² + 2s E⟨h, F⟩ + s² E‖F‖², and the cross term is 0 on average for a branch that ends with "
        "a random zero-mean matrix.",
        "Unnormalised: q_l = q_(l-1) (1 + s² c). Pre-norm: q_l = q_(l-1) + s² c.",
    ],
    reference=_stream_mean_square,
    explanation=(
        "Geometric growth (1 + s²c)^L unless s² ~ 1/L; linear growth q0 + L s² c with pre-norm branches. Bounded "
        "needs Σ_l s_l² c bounded: s = 1/√L, or s = 0 at initialisation (SkipInit, ReZero, Fixup)."
    ),
)


# --------------------------------------------------------------------------- q2: the largest safe branch scale


def _max_branch_scale(L: int, growth: float = 2.0) -> float:
    """(1 + s²)^L = growth  ⇔  s = sqrt(growth^(1/L) − 1)."""
    return math.sqrt(growth ** (1.0 / L) - 1.0)


_Q2_POINTS = [(1, 2.0), (4, 2.0), (100, 2.0), (50, 10.0)]


def _check_q2(fn: Callable) -> str | None:
    expect_function(fn, "max_branch_scale")
    got = np.array([as_array(fn(L, g)) for L, g in _Q2_POINTS])
    L = np.array([p[0] for p in _Q2_POINTS], dtype=np.float64)
    g = np.array([p[1] for p in _Q2_POINTS])
    want = np.sqrt(g ** (1 / L) - 1)
    mistakes = [
        (1 / np.sqrt(L), "1/√L gives (1 + 1/L)^L, which approaches e ≈ 2.72 for every growth target; solve "
                         "(1 + s²)^L = growth for s instead."),
        (g ** (1 / L) - 1, "That is s², the branch's variance scale; take the square root for s."),
        (np.sqrt(np.log(g) / L), "Close for large L only (ln(1 + s²) ≈ s²); solve (1 + s²)^L = growth exactly: "
                                 "s = sqrt(growth^(1/L) − 1)."),
        (np.sqrt(g - 1) / L, "The growth compounds over layers: (1 + s²)^L, not 1 + L² s²."),
        (np.sqrt((g - 1) / L), "That makes 1 + L s² = growth, the first-order (linear) approximation; the "
                               "growth compounds: (1 + s²)^L = growth."),
    ]
    return diagnose(got, want, mistakes, name="Your scale", rtol=1e-6)


q2 = Exercise(
    name="q2",
    prompt=(
        "Unnormalised residual branches with mean-square gain c = 1 (He-initialised ReLU branches) make the stream's "
        "mean square grow by (1 + s²) per layer. Write `max_branch_scale(L, growth)`: the largest s such that it "
        "grows by at most the factor `growth` over L layers."
    ),
    checker=_check_q2,
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


def _q3_inputs() -> list[tuple[np.ndarray, np.ndarray, float]]:
    rng = np.random.default_rng(11)
    return [(rng.normal(size=4), rng.normal(size=(4, 4)), 0.5), (rng.normal(size=(2, 3)), rng.normal(size=(3, 3)), 1.0)]


def _check_q3(fn: Callable) -> str | None:
    expect_function(fn, "residual_vjp")
    for u, J, s in _q3_inputs():
        got = as_array(fn(u.copy(), J.copy(), s))
        mistakes = [
            (s * u @ J, "You dropped the skip path: the Jacobian of h + sF(h) is I + sJ, so the cotangent passes "
                        "through unchanged *plus* s·uJ."),
            (u + u @ J, "The branch's contribution is scaled by s: u + s·uJ."),
            (u + s * u @ J.T, "Transposed: for a row-vector cotangent the VJP is u (I + sJ) = u + s·(u @ J); "
                              "u @ J.T would be a JVP with J."),
            (u @ J, "That is the plain (no skip) VJP without the scale; a residual block gives u + s·uJ."),
        ]
        problem = diagnose(got, _residual_vjp(u, J, s), mistakes, name="Your cotangent", rtol=1e-8)
        if problem is not None:
            return problem
    return None


q3 = Exercise(
    name="q3",
    prompt=(
        "A residual layer computes g(h) = h + s·F(h), and J = ∂F/∂h at the current h (n × n). Write "
        "`residual_vjp(u, J, s)`: the cotangent u ∂g/∂h pulled back through the layer, for a row vector u of "
        "shape (n,) (or a batch of them, shape (B, n))."
    ),
    checker=_check_q3,
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


# --------------------------------------------------------------------------- q4: pre-norm backward growth


def _prenorm_backward_ratio(l: int, L: int, q0: float, s: float, c: float) -> float:
    """‖∂L/∂h_l‖² / ‖∂L/∂h_L‖² = q_L / q_l with q_k = q0 + k s² c: each layer multiplies by q_k / q_(k-1)."""
    return (q0 + L * s**2 * c) / (q0 + l * s**2 * c)


_Q4_POINTS = [(0, 50, 1.0, 1.0, 1.0), (10, 50, 1.0, 1.0, 1.0), (0, 20, 2.0, 0.5, 1.0), (5, 100, 0.5, 1.0, 2.0)]


def _check_q4(fn: Callable) -> str | None:
    expect_function(fn, "prenorm_backward_ratio")
    got = np.array([as_array(fn(*p)) for p in _Q4_POINTS])
    l, L, q0, s, c = (np.array([p[i] for p in _Q4_POINTS], dtype=np.float64) for i in range(5))
    want = (q0 + L * s**2 * c) / (q0 + l * s**2 * c)
    mistakes = [
        ((q0 + l * s**2 * c) / (q0 + L * s**2 * c), "Inverted: the backward signal grows going *down*, towards "
                                                     "the input, so ‖∂L/∂h_l‖² ≥ ‖∂L/∂h_L‖² for l < L."),
        ((1 + s**2 * c) ** (L - l), "That is the unnormalised branch's rate. Through a pre-norm branch the gain "
                                    "per layer is 1 + s²c/q_(k-1) (LayerNorm divides by √q), which shrinks as q grows."),
        (np.sqrt(want), "That is the ratio of norms; the question asks for squared norms."),
        ((q0 + L * s * c) / (q0 + l * s * c), "s enters squared (q_k = q0 + k s² c)."),
        (1 + (L - l) * s**2 * c, "Close, but each layer's gain is 1 + s²c/q_(k-1), not 1 + s²c: the product "
                                 "telescopes to q_L/q_l."),
    ]
    return diagnose(got, want, mistakes, name="Your ratio", rtol=1e-6)


q4 = Exercise(
    name="q4",
    prompt=(
        "In a pre-norm residual stack with q_k = q0 + k s² c (exercise 1), going down through layer k multiplies "
        "‖∂L/∂h‖² by about 1 + s²c/q_(k-1). Write `prenorm_backward_ratio(l, L, q0, s, c)`: the predicted "
        "‖∂L/∂h_l‖² / ‖∂L/∂h_L‖²."
    ),
    checker=_check_q4,
    hints=[
        "1 + s²c/q_(k-1) = (q_(k-1) + s²c)/q_(k-1) = q_k / q_(k-1).",
        "Multiply k = l+1 ... L: the product telescopes to q_L / q_l.",
    ],
    reference=_prenorm_backward_ratio,
    explanation=(
        "q_L/q_l: the backward signal grows towards the input by exactly as much as the stream's variance grows "
        "forwards — linearly in depth, not geometrically. This is why Pre-LN transformers have well-behaved "
        "gradients at initialisation (Xiong et al. 2020, notebook 10)."
    ),
)

sheet = Sheet("Notebook 06: residual connections", q1, q2, q3, q4)
