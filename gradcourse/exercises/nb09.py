"""Exercises for notebook 09: debugging a deep CNN (gain per layer, dead channels, residual gradients)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ._core import Exercise, Sheet, as_array, diagnose

__all__ = ["q1", "q2", "q3", "sheet"]


def _evaluate(fn: Callable, name: str, points: list[tuple]) -> np.ndarray | str:
    if not callable(fn):
        return f"Pass your function {name} itself, not {type(fn).__name__}."
    out = []
    for args in points:
        value = fn(*args)
        out.append(as_array(value, f"Your {name} at {args}", finite=False))
    return np.array(out)


# --------------------------------------------------------------------------- q1: gain per conv layer


def _relu_conv_gain(var_w: float, c_in: int, k: int) -> float:
    """√χ₁ of a k×k ReLU conv layer with weight variance var_w: χ₁ = fan_in · var_w / 2, fan_in = k² c_in."""
    return float(np.sqrt(k * k * c_in * var_w / 2.0))


_Q1_POINTS = [(2.0 / 144, 16, 3), (1.0 / (3 * 144), 16, 3), (0.01, 8, 5), (0.05, 3, 1)]


def _check_q1(fn: Callable) -> str | None:
    got = _evaluate(fn, "relu_conv_gain", _Q1_POINTS)
    if isinstance(got, str):
        return got
    v, c, k = (np.array([p[i] for p in _Q1_POINTS], dtype=np.float64) for i in range(3))
    want = np.sqrt(k * k * c * v / 2)
    mistakes = [
        (k * k * c * v / 2, "That is χ₁, the gain of the *squared* norm; the norm gains √χ₁ per layer."),
        (np.sqrt(k * k * c * v), "You left out ReLU's factor ½: half of the pre-activations are negative and pass no gradient."),
        (np.sqrt(c * v / 2), "The fan-in of a k×k convolution is k²·c_in (every output sums over a k×k window of c_in channels), not c_in."),
        (np.sqrt(k * c * v / 2), "The fan-in of a k×k convolution is k²·c_in, not k·c_in."),
    ]
    return diagnose(got, want, mistakes, name="Your gain", rtol=1e-6)


q1 = Exercise(
    name="q1",
    prompt=(
        "Write `relu_conv_gain(var_w, c_in, k)`: the mean-field factor √χ₁ by which the backward signal's norm "
        "changes per k×k ReLU conv layer with c_in input channels and weights of variance var_w (no bias). "
        "Then evaluate it for PyTorch's default (var_w = 1/(3·fan_in)) and for He's (var_w = 2/fan_in)."
    ),
    checker=_check_q1,
    hints=[
        "Notebook 02: χ₁ = σ_w² E[φ'(z)²], where σ_w² = fan_in · var_w. What is the fan-in of a k×k convolution?",
        "fan_in = k² c_in and E[relu'(z)²] = ½, so √χ₁ = √(k² c_in var_w / 2).",
    ],
    reference=_relu_conv_gain,
    explanation=(
        "PyTorch's default gives √(1/6) ≈ 0.41 per layer, so 16 layers shrink the backward signal by about 0.41¹⁶ ≈ 6·10⁻⁷; "
        "He's rule gives exactly 1."
    ),
)


# --------------------------------------------------------------------------- q2: dead channels


def _dead_channel_fraction(acts: Any) -> np.ndarray:
    """acts (L, B, H, W, C) → (L,): the fraction of channels that are ≤ 0 at every position of every image."""
    a = np.asarray(acts)
    return np.mean(np.all(a <= 0, axis=(1, 2, 3)), axis=-1)


def _q2_data() -> np.ndarray:
    rng = np.random.default_rng(9)
    a = np.maximum(rng.normal(size=(4, 6, 3, 3, 8)), 0.0)
    a[1, ..., :2] = 0.0  # layer 1: 2 of 8 channels dead
    a[2, ..., 1:7] = 0.0  # layer 2: 6 of 8 dead
    a[3, :, 0, 0, :] = 0.0  # layer 3: off at one position only, none dead
    a[3, 0] = 0.0  # and one image all zero: still none dead
    return a


def _check_q2(fn: Callable) -> str | None:
    if not callable(fn):
        return f"Pass your function dead_channel_fraction itself, not {type(fn).__name__}."
    acts = _q2_data()
    got = fn(acts.copy())
    want = _dead_channel_fraction(acts)
    mistakes = [
        (np.mean(acts <= 0, axis=(1, 2, 3, 4)), "That is the fraction of *entries* that are zero. About half of a healthy "
                                                 "ReLU's outputs are zero; a channel is dead only when it is zero for every "
                                                 "image at every position, so it never passes a gradient."),
        (np.mean(np.all(acts <= 0, axis=1), axis=(1, 2, 3)), "You counted a (position, channel) pair as dead when it is off "
                                                             "for every image. A conv channel shares its weights across "
                                                             "positions: it is dead only if it is off at *all* positions too."),
        (np.mean(np.all(acts <= 0, axis=(2, 3, 4)), axis=1), "You averaged over images, asking which images switch every "
                                                               "unit off. Reduce with `all` over images and positions, "
                                                               "then average over channels."),
        (np.sum(np.all(acts <= 0, axis=(1, 2, 3)), axis=-1), "That is the *number* of dead channels per layer; divide by "
                                                              "the number of channels."),
    ]
    return diagnose(got, want, mistakes, name="Your fractions", rtol=1e-9)


q2 = Exercise(
    name="q2",
    prompt=(
        "Write `dead_channel_fraction(acts)`: for ReLU outputs acts of shape (L, B, H, W, C) (as from "
        "`gc.models.cnn.states`), return the (L,) fraction of channels that are ≤ 0 at every position of every "
        "image. Compare with `gc.stats.activation_stats(acts, 'relu').frac_dead`."
    ),
    checker=_check_q2,
    hints=[
        "A channel is dead when *all* its B·H·W values are ≤ 0: np.all over axes 1, 2, 3.",
        "np.mean(np.all(acts <= 0, axis=(1, 2, 3)), axis=-1)",
    ],
    reference=_dead_channel_fraction,
    explanation="A dead channel passes no gradient to its weights, and its weights get none back to revive it.",
)


# --------------------------------------------------------------------------- q3: residual backward gain


def _residual_backward_ratio(L: int, s: float, c: float) -> float:
    """E‖g_0‖² / ‖g_L‖² = (1 + s²c²)^L for g_{l-1} = g_l (I + s J_l), ‖g J_l‖ = c‖g‖, g J_l ⟂ g on average."""
    return float((1.0 + s * s * c * c) ** (L / 2.0))


_Q3_POINTS = [(16, 1.0, 0.5), (50, 1.0, 0.3), (100, 0.1, 1.0), (10, 0.0, 2.0)]


def _check_q3(fn: Callable) -> str | None:
    got = _evaluate(fn, "residual_backward_ratio", _Q3_POINTS)
    if isinstance(got, str):
        return got
    L, s, c = (np.array([p[i] for p in _Q3_POINTS], dtype=np.float64) for i in range(3))
    want = (1 + s**2 * c**2) ** (L / 2)
    mistakes = [
        ((1 + s**2 * c**2) ** L, "That is the ratio of *squared* norms; take the square root."),
        ((1 + s * c) ** L, "The identity and the branch add as *orthogonal* vectors (on average), so their squared norms "
                           "add: ‖g + s g J‖² ≈ ‖g‖² + s²c²‖g‖²."),
        ((s * c) ** L, "That is the plain network without the identity path: the '1 +' of the shortcut is what keeps "
                       "the gradient from vanishing."),
        ((1 + s**2 * c**2) ** ((L - 1) / 2), "Off by one: from h_L back to h_0 the signal passes through all L blocks."),
    ]
    return diagnose(got, want, mistakes, name="Your ratio", rtol=1e-6)


q3 = Exercise(
    name="q3",
    prompt=(
        "In a residual stack h_l = h_{l-1} + s·F_l(h_{l-1}) the backward signal obeys g_{l-1} = g_l (I + s J_l). Assume "
        "‖g J_l‖ = c‖g‖ and that g J_l is, on average, orthogonal to g. Write `residual_backward_ratio(L, s, c)`: "
        "the expected ‖g_0‖ / ‖g_L‖. Can it vanish? What does s = 1/√L do to it?"
    ),
    checker=_check_q3,
    hints=[
        "Orthogonal vectors: ‖g + s g J‖² = ‖g‖² + s²‖g J‖² = (1 + s²c²)‖g‖².",
        "Each block multiplies the squared norm by 1 + s²c²; after L blocks take the square root: (1 + s²c²)^(L/2).",
    ],
    reference=_residual_backward_ratio,
    explanation=(
        "(1 + s²c²)^(L/2) ≥ 1: a residual stack cannot make the gradient vanish, but it can grow with depth. With "
        "s = 1/√L it tends to e^(c²/2), bounded at any depth; this is why branch scaling (and zero-init branches) "
        "keep very deep ResNets trainable."
    ),
)


sheet = Sheet("Notebook 09: debugging a deep CNN", q1, q2, q3)
