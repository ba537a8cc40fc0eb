"""Exercises for notebook 10: the transformer case (Pre-LN vs Post-LN, warm-up, attention-logit growth, QK-norm)."""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ._core import Exercise, FunctionExercise, Sheet, Wrong, as_array, diagnose

__all__ = ["q1", "q2", "q3", "q4", "sheet"]


# --------------------------------------------------------------------------- q1: the QK-norm bound


def _qk_logit_bound(d_head: int, gamma_q: Any, gamma_k: Any) -> float:
    """|q̂·k̂|/√d ≤ ‖γ_q ⊙ q̂‖ ‖γ_k ⊙ k̂‖/√d ≤ max|γ_q| max|γ_k| ‖q̂‖‖k̂‖/√d, and ‖LN(x)‖² ≤ d."""
    return math.sqrt(d_head) * float(np.max(np.abs(gamma_q))) * float(np.max(np.abs(gamma_k)))


_Q1_CASES = [
    (8, np.ones(8), np.ones(8)),
    (16, np.array([0.5, 3.0] + [1.0] * 14), np.array([-2.0, 1.5] + [0.2] * 14)),
    (64, np.full(64, 0.5), np.linspace(-1.0, 4.0, 64)),
    (4, np.array([-3.0, 1.0, 1.0, 1.0]), np.array([0.5, 0.5, 0.5, 0.5])),
]

q1 = FunctionExercise(
    name="q1",
    prompt=(
        "With QK-LayerNorm, a head's logit is s = (γ_q ⊙ LN(q)) · (γ_k ⊙ LN(k)) / √d_head, LN without shift, over the "
        "d_head features of one head. Write `qk_logit_bound(d_head, gamma_q, gamma_k)`: an upper bound on |s| that "
        "holds for every q and k (the bound the notebook asserts)."
    ),
    cases=_Q1_CASES,
    mistakes=[
            (lambda d, gq, gk: d * np.max(np.abs(gq)) * np.max(np.abs(gk)),
             "You forgot the 1/√d_head in the logit: ‖LN(q)‖‖LN(k)‖ ≤ d_head, and the logit divides by √d_head."),
            (lambda d, gq, gk: np.max(np.abs(gq)) * np.max(np.abs(gk)),
             "LN(q) is not a unit vector: its d_head entries have mean square 1, so ‖LN(q)‖ = √d_head (up to ε)."),
            (lambda d, gq, gk: math.sqrt(d) * np.max(gq) * np.max(gk),
             "Take the largest |γ|, not the largest γ: a negative scale flips the sign of a feature but stretches it just as much."),
            (lambda d, gq, gk: np.linalg.norm(gq) * np.linalg.norm(gk) / math.sqrt(d) * d,
             "That bounds |s| too, but loosely: ‖γ ⊙ x‖ ≤ max|γ| ‖x‖ is tighter than ‖γ‖ ‖x‖ (Cauchy–Schwarz on each factor)."),
            (lambda d, gq, gk: math.sqrt(d) * np.max(np.abs(gq * gk)),
             "The largest scales of q and of k need not sit on the same feature: bound each factor on its own, max|γ_q| · max|γ_k|."),
        ],
    signature="qk_logit_bound(d_head, gamma_q, gamma_k)",
    hints=[
        "Cauchy–Schwarz: |a·b| ≤ ‖a‖‖b‖. How long is LN(x) for x with d_head entries?",
        "‖LN(x)‖² = d_head·Var/(Var + ε) ≤ d_head, and ‖γ ⊙ x‖ ≤ max|γ|·‖x‖. Put the pieces together, then divide by √d_head.",
    ],
    reference=_qk_logit_bound,
    explanation=(
        "|s| ≤ √d_head · max|γ_q| · max|γ_k|: the weights W_q, W_k cannot make the logits grow, only the scales γ "
        "can, and they move by about one learning rate per Adam step. At initialisation (γ = 1) the bound is √d_head."
    ),
)


# --------------------------------------------------------------------------- q2: causal attention entropy


def _causal_attention_entropy(logits: Any) -> np.ndarray:
    """Entropy (nats) of softmax over s ≤ t of each row t of a (T, T) logit matrix."""
    s = np.asarray(logits, dtype=np.float64)
    T = s.shape[-1]
    mask = np.tril(np.ones((T, T), dtype=bool))
    z = np.where(mask, s, -np.inf)
    z = z - z.max(axis=-1, keepdims=True)
    logp = np.where(mask, z - np.log(np.sum(np.exp(z), axis=-1, keepdims=True)), 0.0)  # 0 · log 0 → 0
    return -np.sum(np.where(mask, np.exp(logp), 0.0) * logp, axis=-1)


def _q2_logits() -> list[np.ndarray]:
    rng = np.random.default_rng(10)
    return [rng.normal(size=(5, 5)), 4.0 * rng.normal(size=(6, 6)), np.zeros((4, 4))]


def _entropy_no_mask(s: np.ndarray) -> np.ndarray:
    z = s - s.max(axis=-1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)
    return -np.sum(p * np.log(p), axis=-1)


def _check_q2(fn: Callable) -> str | None:
    if not callable(fn):
        return f"Pass your function causal_attention_entropy itself, not {type(fn).__name__}."
    cases = _q2_logits()
    got = []
    for s in cases:
        value = fn(s.copy())
        got.append(as_array(value, "Your entropies").ravel())
    shapes = [g.shape for g in got]
    if any(g.shape != (s.shape[0],) for g, s in zip(got, cases)):
        return f"Return one entropy per query position, shape (T,); for (5, 5), (6, 6), (4, 4) logits you returned shapes {shapes}."
    got_all = np.concatenate(got)
    want = np.concatenate([_causal_attention_entropy(s) for s in cases])
    mistakes = [
        (np.concatenate([_entropy_no_mask(s) for s in cases]),
         "You let every query attend to every key. Query t may only see keys s ≤ t: mask s > t out before the softmax "
         "(the first row then has entropy exactly 0)."),
        (want / np.log(2), "Your entropies are in bits (log base 2); the notebook uses nats (natural log)."),
        (-want, "Wrong sign: entropy is −Σ p log p, which is ≥ 0."),
    ]
    return diagnose(got_all, want, mistakes, name="Your entropies", rtol=1e-5)


q2 = Exercise(
    name="q2",
    prompt=(
        "Write `causal_attention_entropy(logits)`: for a (T, T) NumPy array of attention logits s[t, s'], return the "
        "(T,) entropies (in nats) of the causal attention distributions p_t = softmax over s' ≤ t of s[t, s']. "
        "Use NumPy only."
    ),
    checker=_check_q2,
    hints=[
        "Set the entries above the diagonal to −inf, subtract each row's maximum, exponentiate and normalise.",
        "H_t = −Σ_{s' ≤ t} p_t(s') log p_t(s'); skip the masked entries (0 · log 0 counts as 0). Row 0 has H = 0, "
        "uniform attention over t+1 keys has H = log(t+1).",
    ],
    reference=_causal_attention_entropy,
    explanation=(
        "0 ≤ H_t ≤ log(t+1). When the logits are large, softmax is nearly one-hot: H_t → 0 and the softmax "
        "Jacobian diag(p) − p pᵀ → 0, so almost no gradient reaches W_q and W_k any more. That is why entropy "
        "collapse is hard to undo."
    ),
)


# --------------------------------------------------------------------------- q3: Pre-LN and depth


def _pre_ln_depth_factor(L: int, v0: float, v: float) -> float:
    """‖g_top(L)‖ / ‖g_top(1)‖ = σ_1 / σ_L with σ_l² = v0 + l·v."""
    return math.sqrt((v0 + v) / (v0 + L * v))


_Q3_CASES = [(L, v0, v) for L in (1, 4, 12, 48) for v0, v in ((1.0, 1.0), (1.0, 0.5), (0.25, 2.0))]

q3 = FunctionExercise(
    name="q3",
    prompt=(
        "In a Pre-LN transformer at initialisation each block adds a roughly independent branch output of variance v "
        "to the residual stream, which starts with variance v0 (the embeddings): σ_l² = v0 + l·v. The final "
        "LayerNorm divides by σ_L, so the gradient of the top block's weights is ∝ 1/σ_L. Write "
        "`pre_ln_depth_factor(L, v0, v)`: the top block's gradient norm in a depth-L model divided by that of a "
        "depth-1 model."
    ),
    cases=_Q3_CASES,
    mistakes=[
            (lambda L, v0, v: 1 / math.sqrt(L), "1/√L is the large-L limit only (or v0 = 0): keep the embeddings' variance v0 in σ_l²."),
            (lambda L, v0, v: (v0 + v) / (v0 + L * v), "The gradient scales with 1/σ_L, not 1/σ_L²: take the square root of the variance ratio."),
            (lambda L, v0, v: math.sqrt((v0 + L * v) / (v0 + v)), "Inverted: a larger stream (deeper model) means a *smaller* top-block gradient, since LN divides by σ_L."),
            (lambda L, v0, v: math.sqrt(v0 / (v0 + L * v)), "Compare with a depth-1 model, whose stream already holds one branch: σ_1² = v0 + v, not v0."),
            (lambda L, v0, v: math.sqrt((v0 + v) / (v0 + (L - 1) * v)), "Off by one: after L blocks the stream holds L branch outputs, σ_L² = v0 + L·v."),
        ],
    signature="pre_ln_depth_factor(L, v0, v)",
    hints=[
        "The factor is σ_1/σ_L: the same top block, seen through a final LN that divides by a larger σ in the deeper model.",
        "σ_1/σ_L = √((v0 + v)/(v0 + L·v)).",
    ],
    reference=_pre_ln_depth_factor,
    explanation=(
        "√((v0 + v)/(v0 + L v)) → 1/√L for deep models: the ∝ 1/√L top-layer gradient of Xiong et al. (2020). "
        "Post-LN normalises after every block, σ_l = 1 for every l, so its top-block gradient does not shrink with depth."
    ),
)


# --------------------------------------------------------------------------- q4: what scaling W_q, W_k does


def _logit_scaling(c: float) -> tuple[float, float]:
    """Scaling W_q and W_k by c > 0 scales s = q·k/√d by c² without QK-norm and leaves it unchanged with it."""
    return (c * c, 1.0)


_Q4_CASES = (0.5, 2.0, 10.0)


def _check_q4(fn: Callable) -> str | None:
    if not callable(fn):
        return f"Pass your function logit_scaling itself, not {type(fn).__name__}."
    got = []
    for c in _Q4_CASES:
        value = fn(c)
        try:
            pair = tuple(float(x) for x in as_array(value, "Your pair").ravel())
        except Wrong:
            return f"Return a pair (factor without QK-norm, factor with QK-norm), got {type(value).__name__}."
        if len(pair) != 2:
            return f"Return a pair (factor without QK-norm, factor with QK-norm), got {len(pair)} values."
        got.append(pair)
    g = np.array(got)
    c = np.array(_Q4_CASES)
    want = np.stack([c**2, np.ones_like(c)], axis=1)
    if np.allclose(g, want, rtol=1e-6):
        return None
    without, with_ = g[:, 0], g[:, 1]
    if np.allclose(without, c, rtol=1e-6):
        return "Without QK-norm both q = x W_q and k = x W_k scale by c, and the logit is their product: c · c = c²."
    if np.allclose(without, c**2 / math.sqrt(2), rtol=1e-6) or np.allclose(without, c**4, rtol=1e-6):
        return "The 1/√d_head is a fixed constant and q·k is bilinear: scaling both W_q and W_k by c gives c²."
    if not np.allclose(without, c**2, rtol=1e-6):
        return f"Your factor without QK-norm, {without[1]:.4g} at c = 2, is not right: write the logit as (c x W_q)·(c x W_k)/√d."
    if np.allclose(with_, c**2, rtol=1e-6) or np.allclose(with_, c, rtol=1e-6):
        return "LayerNorm is scale invariant: LN(c q) = LN(q) for c > 0 (up to ε), so with QK-norm the logits do not change."
    return f"Your factor with QK-norm, {with_[1]:.4g} at c = 2, is not right: what is LN(c·q) for c > 0?"


q4 = Exercise(
    name="q4",
    prompt=(
        "An optimizer step happens to multiply both W_q and W_k of a head by c > 0. Write `logit_scaling(c)` returning "
        "the pair (factor by which the attention logits change without QK-norm, factor with QK-norm)."
    ),
    checker=_check_q4,
    hints=[
        "Without QK-norm, s = (x W_q)·(x W_k)/√d_head: how does each factor change?",
        "With QK-norm, s = (γ_q ⊙ LN(x W_q))·(γ_k ⊙ LN(x W_k))/√d_head, and LN(c·y) = LN(y) for c > 0.",
    ],
    reference=_logit_scaling,
    explanation=(
        "(c², 1): without QK-norm the logits are quadratic in the weight scale, so steady growth of ‖W_q‖ and ‖W_k‖ "
        "compounds — what the high-learning-rate run shows. QK-norm makes the logits blind to the scale of W_q and W_k."
    ),
)

sheet = Sheet("Notebook 10: the transformer case", q1, q2, q3, q4)
