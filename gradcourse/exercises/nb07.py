"""Exercises for notebook 07: gradient clipping and what it does to the update direction.

q1: global-norm clipping of a gradient pytree by hand; q2: the cosine between a gradient and its
value-clipped version; q3: the unit-wise ratio that adaptive gradient clipping (AGC) bounds;
q4: the first step of Adam.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ._core import Exercise, Sheet, as_number, diagnose

__all__ = [
    "q1", "q2", "q3", "q4", "sheet",
    "clip_global_reference", "value_clip_cosine_reference", "agc_ratio_reference", "adam_first_step_reference",
    "Q2_VECTOR", "Q2_THRESHOLD",
]


# --------------------------------------------------------------------------- q1: global-norm clipping


def clip_global_reference(grads: dict, max_norm: float) -> dict:
    """g · min(1, max_norm / ‖g‖) with ‖g‖ the norm of all leaves together (``optax.clip_by_global_norm``)."""
    total = np.sqrt(sum(np.sum(np.asarray(g, dtype=np.float64) ** 2) for g in grads.values()))
    scale = min(1.0, max_norm / total) if total > 0 else 1.0
    return {k: np.asarray(g, dtype=np.float64) * scale for k, g in grads.items()}


def _q1_cases() -> list[tuple[dict, float]]:
    rng = np.random.default_rng(7)
    big = {"W": rng.normal(size=(4, 3)), "b": 5.0 * rng.normal(size=3)}  # norm ≈ 9: clipped
    small = {"W": 0.01 * rng.normal(size=(4, 3)), "b": 0.01 * rng.normal(size=3)}  # below the threshold
    return [(big, 1.0), (small, 1.0), (big, 20.0)]


def _as_dict(got: Any, grads: dict) -> dict | str:
    if not isinstance(got, dict) or set(got) != set(grads):
        return f"Return a dict with the same keys as grads ({sorted(grads)}), got {type(got).__name__}."
    return got


def _check_q1(fn: Callable[[dict, float], Any]) -> str | None:
    if not callable(fn):
        return "Pass your function clip_global(grads, max_norm) itself (without calling it)."
    for grads, max_norm in _q1_cases():
        got = fn({k: v.copy() for k, v in grads.items()}, max_norm)
        got = _as_dict(got, grads)
        if isinstance(got, str):
            return got
        keys = sorted(grads)
        want = clip_global_reference(grads, max_norm)
        flat = lambda d, keys=keys: np.concatenate([np.ravel(np.asarray(d[k], dtype=np.float64)) for k in keys])
        for k in keys:
            if np.shape(got[k]) != grads[k].shape:
                return (
                    f"Leaf {k!r} has shape {np.shape(got[k])}, but the gradient's is {grads[k].shape}: clipping only "
                    f"rescales."
                )
        total = np.linalg.norm(flat(grads))
        per_leaf = {k: g * min(1.0, max_norm / np.linalg.norm(g)) for k, g in grads.items()}
        always = {k: g * max_norm / total for k, g in grads.items()}
        value = {k: np.clip(g, -max_norm, max_norm) for k, g in grads.items()}
        mistakes = [
            (flat(per_leaf), "You clipped each array to max_norm separately. The *global* norm is over all leaves "
                             "together: ‖g‖ = sqrt(Σ_leaves Σ g²), and every leaf gets the same factor."),
            (flat(always), f"You rescaled to norm max_norm even though ‖g‖ = {total:.3g} is already below "
                           f"max_norm = {max_norm:g}: clipping only ever shrinks, factor min(1, max_norm/‖g‖)."),
            (flat(value), "That is clipping by value (each entry into [-max_norm, max_norm]), which changes the "
                          "direction. Global-norm clipping multiplies the whole gradient by one factor."),
            (flat(grads) * min(1.0, max_norm / total**2), "The factor is max_norm / ‖g‖, not max_norm / ‖g‖²."),
        ]
        problem = diagnose(flat(got), flat(want), mistakes, name=f"clip_global(grads, {max_norm:g})", rtol=1e-6)
        if problem is not None:
            return problem
    return None


q1 = Exercise(
    name="q1",
    template='def clip_global(grads, max_norm):\n    return None  # your code here',
    prompt=(
        "Write `clip_global(grads, max_norm)`: `grads` is a dict of NumPy arrays (one per parameter). Return "
        "the dict clipped by global norm, g · min(1, max_norm / ‖g‖), where ‖g‖ is the norm of all arrays "
        "together — what `optax.clip_by_global_norm(max_norm)` does."
    ),
    checker=_check_q1,
    hints=[
        "First the global norm: the square root of the sum of squares of every entry of every array.",
        "scale = min(1, max_norm / total); return {k: g * scale for k, g in grads.items()}.",
    ],
    reference=clip_global_reference,
    explanation=(
        "One factor for the whole gradient: the direction is exactly that of the raw gradient (cosine 1), "
        "only the step is shorter. This is the clipping of Pascanu et al. (2013)."
    ),
)


# --------------------------------------------------------------------------- q2: cosine after value clipping


Q2_VECTOR = np.array([3.0, 0.5, -0.2, 4.0])
Q2_THRESHOLD = 1.0


def value_clip_cosine_reference(g: np.ndarray = Q2_VECTOR, c: float = Q2_THRESHOLD) -> float:
    """cos(g, clip(g, -c, c)) = g·ĝ / (‖g‖ ‖ĝ‖)."""
    g = np.asarray(g, dtype=np.float64)
    clipped = np.clip(g, -c, c)
    return float(g @ clipped / (np.linalg.norm(g) * np.linalg.norm(clipped)))


def _check_q2(answer: Any) -> str | None:
    value = as_number(answer, "Your cosine")
    g, c = Q2_VECTOR, Q2_THRESHOLD
    clipped = np.clip(g, -c, c)
    want = value_clip_cosine_reference()
    if abs(value - want) <= 1e-3:
        return None
    if abs(value - 1.0) <= 1e-3:
        return ("Cosine 1 would mean the direction is unchanged. Value clipping cuts the two large entries to 1 "
                "but keeps the small ones: the vector turns towards the small coordinates.")
    if abs(value - np.linalg.norm(clipped) / np.linalg.norm(g)) <= 1e-3:
        return "That is ‖clip(g)‖ / ‖g‖, how much shorter the vector got. The cosine is g·clip(g) / (‖g‖ ‖clip(g)‖)."
    if abs(value - float(g @ clipped)) <= 1e-3:
        return "That is the dot product g·clip(g); divide by both lengths, ‖g‖ and ‖clip(g)‖, to get the cosine."
    if abs(value - np.degrees(np.arccos(want))) <= 0.1 or abs(value - np.arccos(want)) <= 1e-3:
        return "That is the angle; the exercise asks for its cosine."
    if not -1.0 <= value <= 1.0:
        return f"A cosine lies between -1 and 1; {value:.4g} does not."
    return f"{value:.4g} is not it. Clip every entry of g into [-1, 1], then compute g·clip(g) / (‖g‖ ‖clip(g)‖)."


q2 = Exercise(
    name="q2",
    template='cosine_after_value_clipping = None',
    prompt=(
        "Value clipping at c = 1 (`optax.clip(1.0)`) maps g = [3, 0.5, -0.2, 4] to clip(g, -1, 1). What is the "
        "cosine between g and its clipped version? Give a number (4 decimals are enough); compute it by hand "
        "or with NumPy."
    ),
    checker=_check_q2,
    hints=[
        "clip(g, -1, 1) = [1, 0.5, -0.2, 1]. The cosine is the dot product divided by the two lengths.",
        "g·clip(g) = 3 + 0.25 + 0.04 + 4 = 7.29; ‖g‖ = sqrt(25.29), ‖clip(g)‖ = sqrt(2.29).",
    ],
    reference=value_clip_cosine_reference(),
    explanation=(
        "cos ≈ 0.96, an angle of about 16°: the two large coordinates lost most of their weight, so the "
        "step now leans towards the small ones. Global-norm clipping of the same g would keep cosine 1."
    ),
)


# --------------------------------------------------------------------------- q3: the AGC ratio


def agc_ratio_reference(W: np.ndarray, G: np.ndarray, eps: float = 1e-3) -> np.ndarray:
    """‖G_i‖ / max(‖W_i‖, eps) for every output unit i (column) of a dense weight W: (n_in, n_out) -> (n_out,).

    Adaptive gradient clipping (Brock et al. 2021; ``optax.adaptive_grad_clip(λ)``) rescales column i
    of G so that this ratio is at most λ.
    """
    W, G = np.asarray(W, dtype=np.float64), np.asarray(G, dtype=np.float64)
    return np.linalg.norm(G, axis=0) / np.maximum(np.linalg.norm(W, axis=0), eps)


def _q3_instance() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    W = rng.normal(size=(5, 4)) * np.array([1.0, 0.1, 2.0, 0.5])
    W[:, 3] = 0.0  # a dead (zero) unit: eps matters
    G = rng.normal(size=(5, 4))
    return W, G


def _check_q3(fn: Callable[[np.ndarray, np.ndarray], Any]) -> str | None:
    if not callable(fn):
        return "Pass your function agc_ratio(W, G) itself (without calling it)."
    W, G = _q3_instance()
    got = fn(W.copy(), G.copy())
    want = agc_ratio_reference(W, G)
    try:
        arr = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        return f"agc_ratio(W, G) should return an array of numbers, got {type(got).__name__}."
    if arr.shape == want.shape and np.any(~np.isfinite(arr)):
        return ("Column 3 of W is all zeros, so ‖W_3‖ = 0 and your ratio divides by zero. AGC divides by "
                "max(‖W_i‖, eps) with eps = 1e-3, so a zero-initialised unit can still learn.")
    mistakes = [
        (np.linalg.norm(G, axis=1) / np.maximum(np.linalg.norm(W, axis=1), 1e-3),
         "You took the norms along rows (axis=1). For a dense weight of shape (n_in, n_out) a unit is an output "
         "neuron: the column W[:, i] of its incoming weights, so reduce over axis 0."),
        (np.full(4, np.linalg.norm(G) / np.linalg.norm(W)),
         "That is one ratio for the whole matrix (layer-wise, as in LARS). AGC is unit-wise: one ratio per column."),
        (np.linalg.norm(W, axis=0) / np.maximum(np.linalg.norm(G, axis=0), 1e-3),
         "Upside down: the ratio is gradient over weights, ‖G_i‖ / max(‖W_i‖, eps)."),
        (np.linalg.norm(G, axis=0) / (np.linalg.norm(W, axis=0) + 1e-3),
         "Close: AGC uses max(‖W_i‖, eps), not ‖W_i‖ + eps; the two differ for small weights."),
    ]
    return diagnose(got, want, mistakes, name="agc_ratio(W, G)", rtol=1e-6)


q3 = Exercise(
    name="q3",
    template='def agc_ratio(W, G):\n    return None  # your code here',
    prompt=(
        "Write `agc_ratio(W, G)` for a dense weight W of shape (n_in, n_out) and its gradient G: return, for every "
        "output unit i (column), ‖G_i‖ / max(‖W_i‖, eps) with eps = 1e-3 — the ratio that "
        "`optax.adaptive_grad_clip(λ)` caps at λ. Use NumPy; the result has shape (n_out,)."
    ),
    checker=_check_q3,
    hints=[
        "np.linalg.norm(G, axis=0) gives one norm per column.",
        "Divide by np.maximum(np.linalg.norm(W, axis=0), 1e-3) so that an all-zero column does not divide by 0.",
    ],
    reference=agc_ratio_reference,
    explanation=(
        "AGC clips unit i's gradient to λ·max(‖W_i‖, eps): large relative steps are cut, unit by unit. Each "
        "unit keeps its own gradient direction, but units are scaled differently, so the direction of the "
        "whole gradient can change (unlike global-norm clipping)."
    ),
)


# --------------------------------------------------------------------------- q4: Adam's first step


def adam_first_step_reference(
    g: np.ndarray, lr: float, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8
) -> np.ndarray:
    """The first update of ``optax.adam(lr, b1, b2, eps)``: -lr · m̂/(√v̂ + eps) with m̂ = g, v̂ = g²."""
    g = np.asarray(g, dtype=np.float64)
    m_hat = (1 - b1) * g / (1 - b1)
    v_hat = (1 - b2) * g**2 / (1 - b2)
    return -lr * m_hat / (np.sqrt(v_hat) + eps)


def _check_q4(fn: Callable[..., Any]) -> str | None:
    if not callable(fn):
        return "Pass your function adam_first_step(g, lr) itself (without calling it)."
    g = np.array([2.0, -1e-3, 5e-9, 30.0, -0.5])
    lr = 0.01
    got = fn(g.copy(), lr)
    want = adam_first_step_reference(g, lr)
    b1, b2, eps = 0.9, 0.999, 1e-8
    mistakes = [
        (-lr * g, "That is plain SGD, -lr·g. Adam divides the (bias-corrected) first moment by the square root of "
                  "the second: -lr · m̂ / (√v̂ + eps)."),
        (-lr * (1 - b1) * g / (np.sqrt(1 - b2) * np.abs(g) + eps),
         "You left out the bias correction: after one step m = (1-β1)g and v = (1-β2)g², and Adam divides them by "
         "(1-β1¹) and (1-β2¹), which gives m̂ = g and v̂ = g². Without it the step is (1-β1)/√(1-β2) ≈ 3.16 times too "
         "big."),
        (-lr * np.sign(g), "Almost: -lr·sign(g) ignores eps. For the tiny entry 5e-9 the step is "
                           "-lr · 5e-9 / (5e-9 + 1e-8), a third of lr, not lr."),
        (lr * g / (np.abs(g) + eps), "Wrong sign: the update moves against the gradient."),
    ]
    return diagnose(got, want, mistakes, name="adam_first_step(g, lr)", rtol=1e-6)


q4 = Exercise(
    name="q4",
    template='def adam_first_step(g, lr):\n    return None  # your code here',
    prompt=(
        "Write `adam_first_step(g, lr)`: the update `optax.adam(lr)` returns at its very first step for gradient g "
        "(β1 = 0.9, β2 = 0.999, eps = 1e-8). Use NumPy; return an array shaped like g."
    ),
    checker=_check_q4,
    hints=[
        "After one step m = (1-β1)·g and v = (1-β2)·g²; the bias-corrected m̂ = m/(1-β1) and v̂ = v/(1-β2).",
        "So m̂ = g, v̂ = g², and the update is -lr · g / (|g| + eps): about -lr·sign(g) unless |g| is near eps.",
    ],
    reference=adam_first_step_reference,
    explanation=(
        "Every coordinate moves by lr (times sign(g)), whatever the size of g: multiplying the loss by 1000 "
        "gives the same first step. That scale-freeness is why a single spike cannot make one giant Adam "
        "step, and also why it does not tell you anything about how large the gradient was."
    ),
)


sheet = Sheet("Notebook 07: gradient clipping", q1, q2, q3, q4)
