"""Exercises for notebook 12, your own model: find the layer that kills the signal, choose an init, read a step log.

q1 which layer of a given Equinox MLP kills the signal (its health report flags several), q2 the normal
initialiser's std that keeps the backward signal of leaky-ReLU blocks flat, q3 the first broken step of a log of
``gc.train.step_metrics`` dicts (a NaN is not a spike).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._core import FunctionExercise, Sheet, ValueExercise

__all__ = ["q1", "q1_batch", "q1_loss", "q1_model", "q2", "q3", "q3_example_log", "sheet"]

# ------------------------------------------------------------------------------------------ q1

_Q1_DEPTH, _Q1_WIDTH, _Q1_KILLER = 10, 32, 6


def q1_model() -> Any:
    """An Equinox ``eqx.nn.MLP`` (16 → 32 → ... → 4, ReLU, 10 hidden layers; He-normal weights, zero biases) in
    which one layer is broken. Its submodules are ``layers/0`` ... ``layers/10`` (each the Linear layer's output,
    before the ReLU)."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    key = jax.random.PRNGKey(12)
    mlp = eqx.nn.MLP(16, 4, width_size=_Q1_WIDTH, depth=_Q1_DEPTH, activation=jax.nn.relu, key=key)
    init = jax.nn.initializers.he_normal(in_axis=-1, out_axis=-2)
    keys = jax.random.split(jax.random.PRNGKey(1212), len(mlp.layers))
    weights = [init(k, lay.weight.shape) for k, lay in zip(keys, mlp.layers, strict=True)]
    biases = [jnp.zeros_like(lay.bias) for lay in mlp.layers]
    biases[_Q1_KILLER] = jnp.full_like(biases[_Q1_KILLER], -10.0)  # the bug: a bias far below the pre-activations
    mlp = eqx.tree_at(lambda m: [lay.weight for lay in m.layers], mlp, weights)
    return eqx.tree_at(lambda m: [lay.bias for lay in m.layers], mlp, biases)


def _q1_batch() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(12)
    return rng.normal(size=(64, 16)).astype(np.float32), rng.integers(0, 4, 64).astype(np.int32)


q1_batch: tuple[np.ndarray, np.ndarray] = _q1_batch()
"""(x, y) for ``q1_model``: 64 inputs of 16 standard-normal features and labels 0..3."""


def q1_loss(model: Any, batch: Any) -> Any:
    """Mean cross-entropy of ``model`` (unbatched, so vmapped) on ``batch = (x, y)``."""
    import jax
    import optax

    x, y = batch
    return optax.softmax_cross_entropy_with_integer_labels(jax.vmap(model)(x), y).mean()


q1 = ValueExercise(
    name="q1",
    prompt=(
        "`ex.q1_model()` builds an Equinox MLP whose signal dies somewhere. Run "
        "`gc.health_report(ex.q1_loss, model, ex.q1_batch)` on it (and gc.capture if you like): several layers are "
        "flagged, but one layer causes it. Assign the index l of that layer (`layers/l`) to `killer`."
    ),
    hints=[
        "A layer is flagged as dead when its output is zero, *or its gradient is zero*, for every example. Walk "
        "through report.rows in execution order and look at the mean and ‖h‖/√n of each layer's output.",
        "The culprit is the first layer whose output is wrong while its input (the layer before it) is normal. "
        "Every layer below it has a zero gradient, every layer above it a zero input.",
    ],
    reference=float(_Q1_KILLER),
    mistakes=[
        (0.0,
         "layers/0 is only the first line of the report: its output is fine (look at its mean and ‖h‖/√n), only "
         "its gradient is zero, because nothing reaches it from above. Look for the layer whose *output* is wrong."),
        (float(_Q1_KILLER + 1),
         f"layers/{_Q1_KILLER + 1}'s output is 0 because its input is all zeros (the ReLUs after layers/{_Q1_KILLER}); "
         f"it is a victim. Its input was killed one layer below."),
        (float(_Q1_DEPTH),
         f"layers/{_Q1_DEPTH} is the output layer: its logits are 0 for every example because everything it "
         f"receives is 0. Go back through the rows to the first layer whose output goes wrong."),
        (float(_Q1_KILLER - 1),
         f"layers/{_Q1_KILLER - 1}'s output is normal (mean about 0, ‖h‖/√n of order 1); its gradient is zero only "
         f"because the layer above it blocks everything."),
    ],
    what="killer",
    rtol=1e-6,
    explanation=(
        f"layers/{_Q1_KILLER} has a bias of −10, far below its pre-activations (std about 1.5): every ReLU after it "
        f"is off for every example, so ∂L/∂h is exactly 0 at it and every layer below, and every layer above gets "
        f"only zeros. One dead layer flags the whole network; the cause is where the output first goes wrong in "
        f"execution order (notebook 03)."
    ),
    template=(
        "# Exercise 1: which layer kills the signal in ex.q1_model()? Run\n"
        "#   model = ex.q1_model(); gc.health_report(ex.q1_loss, model, ex.q1_batch)\n"
        "# and assign the index l of the culprit layers/l.\n"
        "killer = None  # your answer: an integer"
    ),
)

# ------------------------------------------------------------------------------------------ q2

_Q2_SLOPE, _Q2_FAN_IN = 0.3, 64
_Q2_STD = math.sqrt(2.0 / ((1.0 + _Q2_SLOPE**2) * _Q2_FAN_IN))

q2 = ValueExercise(
    name="q2",
    prompt=(
        f"You rewrite the blocks of this notebook with `jax.nn.leaky_relu(h, negative_slope={_Q2_SLOPE})` instead "
        f"of ReLU (width {_Q2_FAN_IN}, zero biases). Choose the standard deviation `std` of the normal initialiser "
        f"N(0, std²) of each weight so that the backward signal keeps its size from block to block "
        f"(σ_w² E[φ'(z)²] = 1, with σ_w² = fan_in · std²)."
    ),
    hints=[
        f"φ'(z) is 1 for z > 0 and {_Q2_SLOPE} for z < 0, each with probability ½: what is E[φ'(z)²]?",
        f"E[φ'²] = (1 + α²)/2 with α = {_Q2_SLOPE}; σ_w² = 2/(1 + α²); std = √(σ_w² / fan_in).",
    ],
    reference=_Q2_STD,
    mistakes=[
        (math.sqrt(2.0 / _Q2_FAN_IN),
         "That is He's std for ReLU, √(2/fan_in): it ignores the negative slope, which also passes gradient "
         f"(α² = {_Q2_SLOPE**2:.2g} of it), so your backward signal would grow a little at every block."),
        (2.0 / ((1.0 + _Q2_SLOPE**2) * _Q2_FAN_IN),
         "That is the variance std², not the standard deviation: take the square root."),
        (math.sqrt(2.0 / ((1.0 + _Q2_SLOPE) * _Q2_FAN_IN)),
         "E[φ'²] averages the *squared* derivative: (1 + α²)/2, not (1 + α)/2."),
        (math.sqrt(1.0 / _Q2_FAN_IN),
         "√(1/fan_in) is LeCun's rule (and Glorot's 2/(fan_in + fan_out) here, since fan_in = fan_out): right for a "
         "linear or tanh-like layer near 0, but a leaky ReLU halves most of the gradient's square."),
    ],
    what="std",
    rtol=1e-3,
    explanation=(
        f"std = √(2 / ((1 + α²) · fan_in)) = {_Q2_STD:.4f}: He's rule for leaky ReLU (He et al. 2015). "
        f"jax.nn.initializers.variance_scaling(2 / (1 + {_Q2_SLOPE}**2), 'fan_in', 'normal') gives it; check it with "
        f"gc.health_report."
    ),
    template=(
        f"# Exercise 2: leaky ReLU blocks (negative_slope={_Q2_SLOPE}, width {_Q2_FAN_IN}): the std of N(0, std^2)\n"
        f"# weights that keeps the backward signal flat from block to block.\n"
        f"std = None  # your answer: a number"
    ),
)

# ------------------------------------------------------------------------------------------ q3


def _q3_log(steps: int, spike: int | None, bad: int | None, loss_bad: int | None, inf_first: bool, seed: int):
    """A log like the notebook's training loop keeps: one dict of step_metrics (plus the loss) per step."""
    rng = np.random.default_rng(seed)
    log = []
    for i in range(steps):
        g = float(rng.uniform(0.5, 1.5))
        if spike is not None and i == spike:
            g *= 80.0  # an outlier batch: large but finite
        nonfinite = 0
        if bad is not None and i >= bad:
            g = math.inf if inf_first and i < bad + 2 else math.nan
            nonfinite = int(rng.integers(1, 5))
        loss = float(2.3 * math.exp(-i / 20) + rng.uniform(0, 0.05))
        if loss_bad is not None and i >= loss_bad:
            loss = math.nan
        log.append({"loss": loss, "global/grad_norm": g, "nonfinite": nonfinite})
    return log


q3_example_log: list[dict[str, float]] = _q3_log(40, 12, 25, 27, False, 0)
"""A 40-step log of {"loss", "global/grad_norm", "nonfinite"} dicts to try your function on."""

_Q3_CASES = [
    (q3_example_log,),
    (_q3_log(50, 30, None, None, False, 1),),
    (_q3_log(12, 1, 3, 4, True, 2),),
]


def _first_bad_step(log):
    for i, m in enumerate(log):
        if m["nonfinite"] > 0:
            return i
    return -1


def _first_bad_loss(log):
    return next((i for i, m in enumerate(log) if not math.isfinite(m["loss"])), -1)


def _first_spike(log):
    norms = np.array([m["global/grad_norm"] for m in log], dtype=np.float64)
    med = np.median(norms[np.isfinite(norms)])
    return next((i for i, g in enumerate(norms) if g > 10 * med), -1)


def _first_bad_one_based(log):
    i = _first_bad_step(log)
    return i + 1 if i >= 0 else -1


def _first_nan_norm(log):
    return next((i for i, m in enumerate(log) if math.isnan(m["global/grad_norm"])), -1)


q3 = FunctionExercise(
    name="q3",
    prompt=(
        "Your training loop appends one dict per step: gc.train.step_metrics(...) plus the loss (keys "
        "'loss', 'global/grad_norm', 'nonfinite', ...). Write `first_bad_step(log)`: the index of the first step "
        "whose gradient holds a NaN or Inf, or -1 if there is none. Try it on `ex.q3_example_log`."
    ),
    hints=[
        "step_metrics counts the non-finite gradient leaves of every step in 'nonfinite' (0 for a healthy step). "
        "A large but finite gradient norm (a spike) is not a broken step.",
        "for i, m in enumerate(log): if m['nonfinite'] > 0: return i — and return -1 after the loop.",
    ],
    reference=_first_bad_step,
    cases=_Q3_CASES,
    mistakes=[
        (_first_bad_loss,
         "You found the first non-finite *loss*. The loss of a step is computed before its update, so a broken "
         "gradient shows up in the loss only a step or more later. Use the gradient's 'nonfinite' count."),
        (_first_spike,
         "You found a gradient *spike*: a large, finite norm from an outlier batch. That is not a NaN (notebook 07); "
         "the 'nonfinite' count says when the gradient really broke."),
        (_first_bad_one_based, "Off by one: steps are numbered from 0, like the list's indices."),
        (_first_nan_norm,
         "math.isnan misses ±Inf, and a gradient that overflows is Inf first. Use 'nonfinite' (or not "
         "math.isfinite)."),
    ],
    signature="first_bad_step(log)",
    rtol=1e-6,
    explanation=(
        "The 'nonfinite' count costs nothing (step_metrics reads it off the sums of squares it computes anyway); "
        "stop the loop, or skip the update, on the first step where it is above 0, and look at that step's batch "
        "with gc.health_report."
    ),
    template=(
        "# Exercise 3: the index of the first step of a step_metrics log whose gradient holds a NaN or Inf\n"
        "# (-1 if none). Try it on ex.q3_example_log.\n"
        "def first_bad_step(log):\n"
        "    return None  # your code here"
    ),
)

sheet = Sheet("Notebook 12: your own model", q1, q2, q3)
