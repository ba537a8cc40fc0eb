"""Exercises for notebook 10: the transformer case (Pre-LN vs Post-LN, warm-up, attention-logit growth, QK-norm)."""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ._core import Exercise, FunctionExercise, Sheet, as_array, diagnose

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
    template='def qk_logit_bound(d_head, gamma_q, gamma_k):\n    return None  # your code here',
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
             "Take the largest |γ|, not the largest γ: a negative scale flips the sign of a feature but stretches it "
             "just as much."),
            (lambda d, gq, gk: np.linalg.norm(gq) * np.linalg.norm(gk) / math.sqrt(d) * d,
             "That bounds |s| too, but loosely: ‖γ ⊙ x‖ ≤ max|γ| ‖x‖ is tighter than ‖γ‖ ‖x‖ (Cauchy–Schwarz on each "
             "factor)."),
            (lambda d, gq, gk: math.sqrt(d) * np.max(np.abs(gq * gk)),
             "The largest scales of q and of k need not sit on the same feature: bound each factor on its own, "
             "max|γ_q| · max|γ_k|."),
        ],
    signature="qk_logit_bound(d_head, gamma_q, gamma_k)",
    hints=[
        "Cauchy–Schwarz: |a·b| ≤ ‖a‖‖b‖. How long is LN(x) for x with d_head entries?",
        "‖LN(x)‖² = d_head·Var/(Var + ε) ≤ d_head, and ‖γ ⊙ x‖ ≤ max|γ|·‖x‖. Put the pieces together, then divide by "
        "√d_head.",
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
    if any(g.shape != (s.shape[0],) for g, s in zip(got, cases, strict=False)):
        return (
            f"Return one entropy per query position, shape (T,); for (5, 5), (6, 6), (4, 4) logits you returned shapes "
            f"{shapes}."
        )
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
    template='def causal_attention_entropy(logits):\n    return None  # your code here',
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
    template='def pre_ln_depth_factor(L, v0, v):\n    return None  # your code here',
    prompt=(
        "In a Pre-LN transformer at initialisation each block adds a roughly independent branch output of variance v "
        "to the residual stream, which starts with variance v0 (the embeddings): σ_l² = v0 + l·v. The final "
        "LayerNorm divides by σ_L, so the gradient of the top block's weights is ∝ 1/σ_L. Write "
        "`pre_ln_depth_factor(L, v0, v)`: the top block's gradient norm in a depth-L model divided by that of a "
        "depth-1 model."
    ),
    cases=_Q3_CASES,
    mistakes=[
            (lambda L, v0, v: 1 / math.sqrt(L), "1/√L is the large-L limit only (or v0 = 0): keep the embeddings' "
                                                "variance v0 in σ_l²."),
            (lambda L, v0, v: (v0 + v) / (v0 + L * v), "The gradient scales with 1/σ_L, not 1/σ_L²: take the square "
                                                       "root of the variance ratio."),
            (lambda L, v0, v: math.sqrt((v0 + L * v) / (v0 + v)), "Inverted: a larger stream (deeper model) means a "
                                                                  "*smaller* top-block gradient, since LN divides by "
                                                                  "σ_L."),
            (lambda L, v0, v: math.sqrt(v0 / (v0 + L * v)), "Compare with a depth-1 model, whose stream already holds "
                                                            "one branch: σ_1² = v0 + v, not v0."),
            (lambda L, v0, v: math.sqrt((v0 + v) / (v0 + (L - 1) * v)), "Off by one: after L blocks the stream holds L "
                                                                        "branch outputs, σ_L² = v0 + L·v."),
        ],
    signature="pre_ln_depth_factor(L, v0, v)",
    hints=[
        "The factor is σ_1/σ_L: the same top block, seen through a final LN that divides by a larger σ in the deeper "
        "model.",
        "σ_1/σ_L = √((v0 + v)/(v0 + L·v)).",
    ],
    reference=_pre_ln_depth_factor,
    explanation=(
        "√((v0 + v)/(v0 + L v)) → 1/√L for deep models: the ∝ 1/√L top-layer gradient of Xiong et al. (2020). "
        "Post-LN normalises after every block, σ_l = 1 for every l, so its top-block gradient does not shrink with "
        "depth."
    ),
)


# --------------------------------------------------------------------------- q4: what scaling W_q, W_k does


def _logit_gap(T: int, p: float) -> float:
    """One logit Δ above T − 1 equal others: top weight e^Δ / (e^Δ + T − 1) = p  ⇔  Δ = ln(p (T − 1) / (1 − p))."""
    return math.log(p * (T - 1) / (1.0 - p))


q4 = FunctionExercise(
    name="q4",
    prompt=(
        "When do growing logits become a problem? A query attends over T keys; one logit exceeds the other T − 1 "
        "(equal) logits by a gap Δ. Write `logit_gap(T, p)`: the gap Δ at which the top key takes attention weight p "
        "(e.g. p = 0.99: the softmax has collapsed onto one key and passes almost no gradient to the others). "
        "Compare with the max-logit growth the notebook measured."
    ),
    cases=[(2, 0.9), (16, 0.99), (128, 0.99), (1024, 0.5), (64, 0.999)],
    mistakes=[
        (lambda T, p: math.log(p / (1 - p)), "Right for T = 2 only: the top key competes with T − 1 others, so "
                                             "e^Δ = p (T − 1) / (1 − p)."),
        (lambda T, p: math.log(p * T / (1 - p)), "The denominator sums e^Δ and the T − 1 *other* keys: "
                                                 "e^Δ / (e^Δ + T − 1) = p."),
        (lambda T, p: math.log10(p * (T - 1) / (1 - p)), "Softmax uses e^s: take the natural logarithm."),
        (lambda T, p: p * (T - 1) / (1 - p), "That is e^Δ; the gap is its logarithm."),
    ],
    signature="logit_gap(T, p)",
    reference=_logit_gap,
    hints=[
        "Softmax weight of the top key: e^Δ / (e^Δ + (T − 1) e^0).",
        "Solve e^Δ (1 − p) = p (T − 1) for Δ.",
    ],
    explanation=(
        "Δ = ln(p (T − 1)/(1 − p)): only ≈ 9.4 for T = 128 and p = 0.99. Collapse needs a gap of order ln T plus a "
        "few units, so logits that grow by orders of magnitude (as without QK-norm) saturate every head long before "
        "they overflow; QK-norm's bound keeps them below that."
    ),
    template="def logit_gap(T, p):\n    ...  # return Δ",
)

sheet = Sheet("Notebook 10: the transformer case", q1, q2, q3, q4)
