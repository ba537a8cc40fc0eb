"""Exercises for notebook 11, numerics: a loss scale from a gradient histogram, a NaN-free gradient, float16 underflow.

q1 the largest safe power-of-two loss scale for a measured gradient, q2 the ``jnp.where`` trap fixed (values and
gradient checked), q3 the fraction of a gradient's non-zero entries that float16 rounds to 0.
"""
from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._core import Exercise, FunctionExercise, Sheet, ValueExercise, Wrong

__all__ = ["q1", "q1_gradients", "q2", "q3", "sheet"]

_F16_MAX = 65504.0  # float(jnp.finfo(jnp.float16).max); tests/test_exercises_nb11.py checks it

# ------------------------------------------------------------------------------------------ q1

q1_gradients: np.ndarray = np.abs(
    np.random.default_rng(11).lognormal(mean=math.log(2.0**-20), sigma=2.0, size=4096)
).astype(np.float32)
"""Magnitudes of one layer's gradient entries (float32), spread over ~10 decades like section 2's first layers."""


def _largest_power_of_two_below(x: float) -> float:
    return 2.0 ** math.floor(math.log2(x))


_GMAX = float(q1_gradients.max())
_S = _largest_power_of_two_below(_F16_MAX / 8 / _GMAX)

q1 = ValueExercise(
    name="q1",
    prompt=(
        "`ex.q1_gradients` holds the magnitudes |g| of one layer's gradient entries. Choose a static loss scale S: "
        "the largest power of two such that S · max|g| stays at or below float16's largest value / 8 (65504 / 8; the "
        "factor 8 is headroom for gradients that grow during training). Assign it to `S`."
    ),
    hints=[
        "Only the largest gradient can overflow: S ≤ 65504 / 8 / max|g|. Then round down to a power of two.",
        "S = 2.0 ** np.floor(np.log2(65504 / 8 / ex.q1_gradients.max())).",
    ],
    reference=_S,
    mistakes=[
        (_largest_power_of_two_below(_F16_MAX / _GMAX),
         "Right idea but no headroom: the prompt asks for S · max|g| ≤ 65504 / 8, so a gradient that grows 8× during "
         "training still fits."),
        (_F16_MAX / 8 / _GMAX, "That S is not a power of two; round it down (2.0 ** np.floor(np.log2(...)))."),
        (2 * _S,
         "Rounded up: with this S, S · max|g| is above 65504 / 8. Round down (np.floor, not np.ceil/np.round)."),
        (_largest_power_of_two_below(_F16_MAX / 8 / float(np.median(q1_gradients))),
         "You used the median gradient; the largest one is what overflows. Use max|g|."),
        (2.0 ** math.ceil(math.log2(2.0**-24 / float(q1_gradients.min()))),
         "That S lifts the smallest entry above float16's smallest subnormal, but then S · max|g| overflows 65504 "
         "by far: the largest gradient sets the limit, and the smallest entries are the price."),
        (_largest_power_of_two_below(_F16_MAX / 8 / float(q1_gradients.mean())),
         "You used the mean gradient; the largest one is what overflows. Use max|g|."),
    ],
    what="S",
    rtol=1e-6,
    explanation=(
        f"S = 2^{math.log2(_S):.0f}. Entries below 2⁻²⁵ / S still round to 0: no single scale covers a gradient "
        "that spreads over more decades than float16 has — the reason the first layers of a very deep net may "
        "need float32 (or per-layer scales)."
    ),
    template=(
        "# Exercise 1: choose a static loss scale S for the gradient magnitudes in ex.q1_gradients (a NumPy array;\n"
        "# draw its histogram first): the largest power of two with S * max|g| <= float16's max / 8 (room to grow).\n"
        "S = None  # your answer: a number"
    ),
)


# ------------------------------------------------------------------------------------------ q2


def _sqrt_relu_fixed(x):
    safe = jnp.where(x > 0, x, 1.0)  # the untaken branch sees 1: sqrt and its derivative are finite there
    return jnp.where(x > 0, jnp.sqrt(safe), 0.0)


_Q2_POINTS = (0.0, -2.0, -0.5, 1e-4, 0.25, 4.0)


def _value_and_grad(fn, x: float) -> tuple[float, float] | None:
    """(value, derivative) of the learner's scalar function at x, or None when it returned None."""
    if fn(jnp.float32(x)) is None:
        return None
    v, g = jax.value_and_grad(lambda t: jnp.asarray(fn(t), jnp.float32).reshape(()))(jnp.float32(x))
    return float(v), float(g)


def _guarded_like(answer: Any, fn: Any) -> Any:
    """``fn`` run the way ``check`` runs the learner's function (time limit, errors reported in words).

    ``check`` hands the checker the learner's function already wrapped, and the wrapper runs it in a thread;
    ``jax.grad`` must trace the learner's function inside that same thread, so the whole value-and-gradient
    computation is wrapped the same way instead.
    """
    try:
        return type(answer)(fn, answer.time_limit)
    except (AttributeError, TypeError):  # not wrapped (called directly): no time limit
        return fn


def _q2_checker(answer: Any) -> str | None:
    raw = getattr(answer, "fn", answer)
    if not callable(raw):
        raise Wrong(f"Expected a function sqrt_relu_fixed(x), got {type(raw).__name__}.")
    at = _guarded_like(answer, lambda x: _value_and_grad(raw, x))
    for x in _Q2_POINTS:
        v_ref, g_ref = _value_and_grad(_sqrt_relu_fixed, x)
        got = at(x)
        if got is None:
            raise Wrong("Your function returned None: did you forget `return`?")
        v, g = got
        if not math.isfinite(v) or abs(v - v_ref) > 1e-5 * max(1.0, abs(v_ref)):
            return (f"At x = {x} your function returns {v:.6g}, but sqrt_relu(x) = {v_ref:.6g}: the fix must keep the "
                    "values (adding ε inside the sqrt, or clipping, changes them near 0).")
        if math.isnan(g):
            return (f"The gradient at x = {x} is still NaN: jnp.where's untaken branch jnp.sqrt(x) has an infinite or "
                    "NaN derivative there, and 0 · inf = NaN. Feed that branch a safe input with a second jnp.where.")
        if math.isinf(g):
            return (f"The gradient at x = {x} is infinite: sqrt's derivative 1/(2√x) is infinite at 0, and "
                    "jnp.maximum(x, 0) still passes x = 0 into it. Keep x = 0 out of the sqrt altogether.")
        if abs(g - g_ref) > 1e-4 * max(1.0, abs(g_ref)):
            return f"At x = {x} your gradient is {g:.6g}, the right one is {g_ref:.6g}."
    return None


q2 = Exercise(
    name="q2",
    prompt=(
        "sqrt_relu(x) = jnp.where(x > 0, jnp.sqrt(x), 0.0) has a NaN gradient at x ≤ 0 although its values are fine. "
        "Write `sqrt_relu_fixed(x)` (x a scalar) with the same values everywhere and the right gradient everywhere: "
        "1/(2√x) for x > 0 and 0 for x ≤ 0."
    ),
    hints=[
        "jax.grad of jnp.where(c, a, b) is c·a' + (1 − c)·b'. At x = 0 the untaken a' = 1/(2√0) = inf, "
        "and 0 · inf = NaN.",
        "Make the untaken branch harmless: safe = jnp.where(x > 0, x, 1.0), "
        "then jnp.where(x > 0, jnp.sqrt(safe), 0.0).",
    ],
    reference=_sqrt_relu_fixed,
    checker=_q2_checker,
    explanation=(
        "The double where: the inner where keeps x ≤ 0 out of sqrt, so its derivative is finite there and the outer "
        "where's zero cotangent multiplies a finite number. The same fix works for log, x ** p and division."
    ),
    template=(
        "# Exercise 2: sqrt_relu has a NaN gradient at x <= 0 (try jax.grad(sqrt_relu)(0.0)).\n"
        "# Write sqrt_relu_fixed(x): the same values everywhere, and the right gradient everywhere (0 for x <= 0).\n"
        "def sqrt_relu(x):\n"
        "    return jnp.where(x > 0, jnp.sqrt(x), 0.0)\n\n\n"
        "def sqrt_relu_fixed(x):\n"
        "    return None  # your code here"
    ),
)


# ------------------------------------------------------------------------------------------ q3


def _underflow_fraction(g):
    g = np.asarray(g, dtype=np.float32)
    nonzero = g != 0
    return np.sum((g.astype(np.float16) == 0) & nonzero) / np.sum(nonzero)


def _q3_case(seed: int, n: int, zeros: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    g = (rng.choice([-1.0, 1.0], n) * 2.0 ** rng.uniform(-28, -10, n)).astype(np.float32)
    g[rng.random(n) < zeros] = 0.0
    # entries between half the smallest subnormal (2^-25) and the smallest subnormal (2^-24): they round up, not to 0
    g[:8] = np.float32(2.0**-24) * np.array([0.6, 0.7, 0.8, 0.9, -0.6, -0.75, -0.9, 0.55], np.float32)
    return g


_Q3_CASES = [(_q3_case(0, 400, 0.3),), (_q3_case(1, 1000, 0.0),), (_q3_case(2, 50, 0.5).reshape(5, 10),)]

q3 = FunctionExercise(
    name="q3",
    prompt=(
        "Write `underflow_fraction(g)`: of the NON-ZERO entries of a float32 NumPy array g (any shape), the fraction "
        "that becomes exactly 0 when cast to float16. Do it with a cast, not with gc.precision."
    ),
    hints=[
        "g.astype(np.float16) does the rounding; compare with 0. Entries already 0 in g do not count, in the "
        "numerator or the denominator.",
        "nz = g != 0; np.sum((g.astype(np.float16) == 0) & nz) / np.sum(nz).",
    ],
    reference=_underflow_fraction,
    cases=_Q3_CASES,
    mistakes=[
        (lambda g: np.mean(np.asarray(g).astype(np.float16) == 0),
         "You counted the entries that were already 0 in float32: they did not underflow. Leave them out of both the "
         "count and the total."),
        (lambda g: np.sum(np.asarray(g).astype(np.float16) == 0) / np.sum(np.asarray(g) != 0),
         "Your numerator still counts the entries that were 0 before the cast."),
        (lambda g: np.sum((np.abs(g) < 2.0**-24) & (g != 0)) / np.sum(g != 0),
         "A threshold at the smallest subnormal 2⁻²⁴ is off by rounding: values between 2⁻²⁵ and 2⁻²⁴ round *up* to "
         "2⁻²⁴. Let the cast do the rounding."),
        (lambda g: np.sum((np.abs(g) < 2.0**-14) & (g != 0)) / np.sum(g != 0),
         "2⁻¹⁴ is float16's smallest *normal* number: below it values become subnormal (fewer bits) but not 0."),
        (lambda g: np.sum((np.abs(g) < 2.0**-10) & (g != 0)) / np.sum(g != 0),
         "2⁻¹⁰ is float16's eps, the relative gap between neighbouring floats, not a bound on small values."),
    ],
    signature="underflow_fraction(g)",
    rtol=1e-6,
    explanation=(
        "The cast rounds to nearest: |g| < 2⁻²⁵ (half the smallest subnormal) becomes 0, up to 2⁻¹⁴ it becomes a "
        "subnormal with fewer significant bits. gc.precision.underflow_fractions(g, jnp.float16) gives both."
    ),
    template=(
        "# Exercise 3: the fraction of the NON-ZERO entries of a float32 NumPy array g that become exactly 0 when\n"
        "# cast to float16 (do not use gc.precision).\n"
        "def underflow_fraction(g):\n"
        "    return None  # your code here"
    ),
)

sheet = Sheet("Notebook 11: numerics of gradient flow", q1, q2, q3)
