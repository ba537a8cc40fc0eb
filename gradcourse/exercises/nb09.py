"""Exercises for notebook 09: debugging a deep CNN (gain per layer, dead channels, the first non-finite layer,
the initial-loss check)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ._core import Exercise, FunctionExercise, Sheet, as_array, diagnose

__all__ = ["q1", "q2", "q3", "q4", "sheet"]


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
        (np.sqrt(k * k * c * v), "You left out ReLU's factor ½: half of the pre-activations are negative and pass no "
                                 "gradient."),
        (np.sqrt(c * v / 2), "The fan-in of a k×k convolution is k²·c_in (every output sums over a k×k window of c_in "
                             "channels), not c_in."),
        (np.sqrt(k * c * v / 2), "The fan-in of a k×k convolution is k²·c_in, not k·c_in."),
    ]
    return diagnose(got, want, mistakes, name="Your gain", rtol=1e-6)


q1 = Exercise(
    name="q1",
    template='def relu_conv_gain(var_w, c_in, k):\n    return None  # your code here',
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
        "PyTorch's default gives √(1/6) ≈ 0.41 per layer, so 16 layers shrink the backward signal by about 0.41¹⁶ ≈ "
        "6·10⁻⁷; "
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
        (np.mean(acts <= 0, axis=(1, 2, 3, 4)), "That is the fraction of *entries* that are zero. About half of a "
                                                "healthy "
                                                 "ReLU's outputs are zero; a channel is dead only when it is zero for "
                                                 "every "
                                                 "image at every position, so it never passes a gradient."),
        (np.mean(np.all(acts <= 0, axis=1), axis=(1, 2, 3)), "You counted a (position, channel) pair as dead when it "
                                                             "is off "
                                                             "for every image. A conv channel shares its weights "
                                                             "across "
                                                             "positions: it is dead only if it is off at *all* "
                                                             "positions too."),
        (np.mean(np.all(acts <= 0, axis=(2, 3, 4)), axis=1), "You averaged over images, asking which images switch "
                                                             "every "
                                                               "unit off. Reduce with `all` over images and positions, "
                                                               "then average over channels."),
        (np.sum(np.all(acts <= 0, axis=(1, 2, 3)), axis=-1), "That is the *number* of dead channels per layer; divide "
                                                             "by "
                                                              "the number of channels."),
    ]
    return diagnose(got, want, mistakes, name="Your fractions", rtol=1e-9)


q2 = Exercise(
    name="q2",
    template='def dead_channel_fraction(acts):\n    return None  # your code here',
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


# --------------------------------------------------------------------------- q3: the first broken layer


def _first_nonfinite_layer(acts: Any) -> int:
    """Index of the first layer whose activations hold a NaN or an Inf; -1 when every layer is finite."""
    for i, a in enumerate(acts):
        if not np.all(np.isfinite(np.asarray(a))):
            return i
    return -1


def _acts(n_layers: int, bad: dict[int, float], shape=(2, 3, 3, 4), seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = [rng.normal(size=shape).astype(np.float32) for _ in range(n_layers)]
    for layer, value in bad.items():
        out[layer][(1, 2, 0, 3)] = value
    return out


# one corrupt entry in the last image/position/channel of a layer; NaN before Inf; a clean net; a corrupt input
_Q3_CASES = [
    (_acts(8, {5: np.inf, 6: np.nan, 7: np.nan}),),
    (_acts(6, {2: np.nan, 4: np.inf}),),
    (_acts(5, {}),),
    (_acts(4, {0: -np.inf, 1: np.nan}),),
    (_acts(7, {3: np.nan}, seed=1),),
]


def _first_inf_only(acts):
    return next((i for i, a in enumerate(acts) if np.any(np.isinf(a))), -1)


def _first_nan_only(acts):
    return next((i for i, a in enumerate(acts) if np.any(np.isnan(a))), -1)


q3 = FunctionExercise(
    name="q3",
    prompt=(
        "A deep CNN's loss is NaN. You recorded every block's output, `acts` (a list of arrays, layer 0 first). "
        "Write `first_nonfinite_layer(acts)`: the index of the first layer holding a NaN or an ±Inf anywhere "
        "(any image, position or channel), or -1 if all are finite. That layer is where to start debugging."
    ),
    cases=_Q3_CASES,
    mistakes=[
        (_first_inf_only, "NaN counts too: an overflow often shows up first as Inf, but 0·Inf or Inf − Inf makes NaN, "
                          "and a NaN may come first. np.isfinite catches both."),
        (_first_nan_only, "±Inf counts too (an overflow): np.isfinite is False for NaN, +Inf and −Inf."),
        (lambda acts: (lambda i: i + 1 if i >= 0 else -1)(_first_nonfinite_layer(acts)), "Off by one: layers are "
                                                                                         "numbered from 0, like the "
                                                                                         "list."),
        (lambda acts: next((i for i in range(len(acts) - 1, -1, -1) if not np.all(np.isfinite(acts[i]))), -1),
         "That is the *last* broken layer; once a layer is non-finite every later one usually is too. Debug the "
         "first."),
        (lambda acts: next((i for i, a in enumerate(acts) if not np.all(np.isfinite(np.ravel(a)[:5]))), -1),
         "Check every entry of a layer, not only the first few: one bad channel in one image is enough."),
    ],
    signature="first_nonfinite_layer(acts)",
    reference=_first_nonfinite_layer,
    hints=[
        "np.isfinite(a) is False for NaN, +Inf and −Inf; np.all(...) over the whole array says whether a layer is "
        "clean.",
        "Loop with enumerate over the layers and return the first index whose array is not all finite; -1 after the "
        "loop.",
    ],
    explanation=(
        "The first non-finite layer is where the computation broke (an overflow, a 0/0 in a normalisation, log of 0); "
        "every later layer inherits it. jax.debug_nans and jax.experimental.checkify report the same thing for you, "
        "at the operation level."
    ),
    template="def first_nonfinite_layer(acts):\n    ...  # return a layer index, or -1",
)


# --------------------------------------------------------------------------- q4: the initial-loss check


def _max_logit_std(n_classes: int, tolerance: float) -> float:
    """Largest logit std s at init with log C + (1 − 1/C)·s²/2 ≤ log C + tolerance: s = √(2·tolerance·C/(C − 1))."""
    return float(np.sqrt(2.0 * tolerance * n_classes / (n_classes - 1)))


q4 = FunctionExercise(
    name="q4",
    prompt=(
        "The initial-loss check: with C classes and logits N(0, s²) at initialisation, the loss is "
        "≈ log C + (1 − 1/C)·s²/2. You want the loss at step 0 within `tolerance` nats of log C. Write "
        "`max_logit_std(n_classes, tolerance)`: the largest logit standard deviation s that allows. Then say how much "
        "you would shrink a head whose logits have std 4 for C = 10 and tolerance = 0.05."
    ),
    cases=[(10, 0.05), (10, 0.5), (1000, 0.05), (2, 0.01), (100, 0.2)],
    mistakes=[
        (lambda C, tol: 2.0 * tol * C / (C - 1),
         "That is s², not s: take the square root of 2·tolerance·C/(C − 1)."),
        (lambda C, tol: float(np.sqrt(tol * C / (C - 1))),
         "You dropped the ½ in (1 − 1/C)·s²/2: the bound is s² ≤ 2·tolerance·C/(C − 1)."),
        (lambda C, tol: float(np.sqrt(2.0 * tol)),
         "Close: that is right for many classes, but the excess is (1 − 1/C)·s²/2, not s²/2 -- the label's own "
         "logit is one of the C. Divide by (1 − 1/C) before the square root (it matters for C = 2: √2 times larger)."),
        (lambda C, tol: float(np.sqrt(2.0 * tol * np.log(C))),
         "log C is the baseline and cancels; C enters only through the factor (1 − 1/C)."),
        (lambda C, tol: float(np.log(C) + tol), "That is the allowed *loss*, log C + tolerance; the question asks for "
                                               "the logit standard deviation s."),
    ],
    signature="max_logit_std(n_classes, tolerance)",
    reference=_max_logit_std,
    hints=[
        "Solve log C + (1 − 1/C)·s²/2 ≤ log C + tolerance for s. What is left of C?",
        "(1 − 1/C)·s²/2 ≤ tolerance, so s ≤ √(2·tolerance / (1 − 1/C)) = √(2·tolerance·C/(C − 1)).",
    ],
    explanation=(
        "s ≤ √(2·tolerance·C/(C − 1)): C matters only through 1 − 1/C (s ≈ √(2·tolerance) for many classes, √2 "
        "times that for C = 2). For C = 10 and 0.05 nats, s ≤ 0.33, so a head with logit std 4 should be shrunk "
        "about 12-fold (or initialised at zero, as many codebases do with the last layer). The formula is second "
        "order in s; for s ≫ 1 the loss grows like s·√(2 log C) instead."
    ),
    template="def max_logit_std(n_classes, tolerance):\n    ...  # return s",
)


sheet = Sheet("Notebook 09: debugging a deep CNN", q1, q2, q3, q4)
