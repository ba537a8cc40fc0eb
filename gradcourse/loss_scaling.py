"""Loss scaling for float16 training: static and dynamic, as pure functions over a NamedTuple state.

Layer: core. Float16 has a narrow range (normal numbers from 2⁻¹⁴ ≈ 6.1e-5 to 65504, subnormals
down to 2⁻²⁴ ≈ 6.0e-8): gradients smaller than that become 0. Multiplying the loss by S before the
backward pass multiplies every gradient by S (the chain rule is linear in the output cotangent),
which shifts them up into the range; dividing the (float32) gradients by S afterwards undoes it
(Micikevicius et al. 2018, *Mixed Precision Training*, arXiv:1710.03740)::

    g = unscale(ls, grad(lambda p: scale_loss(ls, loss(p)))(params))   # = grad(loss)(params)

*Static* scaling uses one S. *Dynamic* scaling looks for the largest S that keeps the gradients
finite: after ``period`` finite steps in a row it multiplies S by ``factor``; at a step whose
gradients hold an Inf or NaN (S·g overflowed) it divides S by ``factor`` (not below
``min_scale``), and the optimizer step is skipped. The skip is optax's job:
``optax.apply_if_finite(optimizer, max_consecutive_errors)`` leaves the parameters and the
optimizer state untouched when the unscaled gradients are not finite.

Why not ``jmp`` (DeepMind's mixed-precision library, which has ``DynamicLossScale``): its last
release is 0.0.4 and it is unmaintained; checked against jax 0.10.2 its documented float32 example
runs, but (1) ``min_loss_scale`` is not part of its pytree, so it is silently reset to 1 every time
the state passes through ``jax.jit`` (a requested floor of 1024 fell to 32 after 10 overflows), and
(2) a float16 loss scale raises ``TypeError: lax.select requires arguments to have the same
dtypes``. Here every field is an array leaf of the NamedTuple, so the state passes through
``jit`` / ``lax.scan`` unchanged, and the scale is float32 whatever the loss's dtype.

>>> import jax.numpy as jnp
>>> ls = dynamic_loss_scale(2.0**15, period=2)
>>> ls = update_scale(ls, jnp.array(True)); float(ls.scale), int(ls.good_steps)
(32768.0, 1)
>>> ls = update_scale(ls, jnp.array(True)); float(ls.scale), int(ls.good_steps)
(65536.0, 0)
>>> ls = update_scale(ls, jnp.array(False)); float(ls.scale), int(ls.good_steps)
(32768.0, 0)
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from . import validate

__all__ = [
    "LossScale",
    "all_finite",
    "dynamic_loss_scale",
    "scale_loss",
    "scaled_value_and_grad",
    "static_loss_scale",
    "unscale",
    "update_scale",
]


class LossScale(NamedTuple):
    """Loss-scaling state; every field is a 0-d array (a pytree leaf), so it passes through ``jit``.

    ``scale``: S (float32). ``good_steps``: finite steps since S last changed (int32).
    ``period``: finite steps before S grows (int32). ``factor``: growth / back-off factor (float32;
    1 for a static scale). ``min_scale``: S never goes below this (float32).
    """

    scale: jax.Array
    good_steps: jax.Array
    period: jax.Array
    factor: jax.Array
    min_scale: jax.Array


def static_loss_scale(scale: float) -> LossScale:
    """A fixed loss scale S > 0 (``update_scale`` leaves it unchanged).

    >>> float(static_loss_scale(1024.0).scale)
    1024.0
    """
    scale = validate.real(scale, "scale", low=0.0, low_open=True)
    return LossScale(
        jnp.asarray(scale, jnp.float32), jnp.zeros((), jnp.int32), jnp.ones((), jnp.int32),
        jnp.ones((), jnp.float32), jnp.asarray(scale, jnp.float32),
    )


def dynamic_loss_scale(
    init: float = 2.0**15, *, period: int = 2000, factor: float = 2.0, min_scale: float = 1.0
) -> LossScale:
    """A dynamic loss scale starting at S = ``init``: ×``factor`` after ``period`` finite steps in a row,
    ÷``factor`` (not below ``min_scale``) at a non-finite step. The defaults (2¹⁵, 2000, 2) are jmp's;
    PyTorch's ``GradScaler`` uses 2¹⁶, 2000, 2.
    """
    init = validate.real(init, "init", low=0.0, low_open=True)
    period = validate.positive_int(period, "period")
    factor = validate.real(factor, "factor", low=1.0, low_open=True, expected="a number > 1 (e.g. 2.0)")
    min_scale = validate.real(min_scale, "min_scale", low=0.0, low_open=True)
    if init < min_scale:
        raise ValueError(f"init: expected a scale >= min_scale = {min_scale:g}, got {init:g}")
    return LossScale(
        jnp.asarray(init, jnp.float32), jnp.zeros((), jnp.int32), jnp.asarray(period, jnp.int32),
        jnp.asarray(factor, jnp.float32), jnp.asarray(min_scale, jnp.float32),
    )


def _check_state(ls: Any) -> LossScale:
    if not isinstance(ls, LossScale):
        raise TypeError(
            "ls: expected a LossScale (from static_loss_scale(...) or dynamic_loss_scale(...)), "
            f"got {type(ls).__name__}"
        )
    return ls


def scale_loss(ls: LossScale, loss: jax.Array) -> jax.Array:
    """S · loss, in the loss's dtype (compute the loss in float32 so S · loss itself cannot overflow)."""
    ls = _check_state(ls)
    return loss * ls.scale.astype(jnp.result_type(loss))


def unscale(ls: LossScale, grads: Any) -> Any:
    """Every gradient leaf cast to float32 and divided by S: the true gradient, if S · g did not overflow."""
    ls = _check_state(ls)
    inv = 1.0 / ls.scale
    return jax.tree.map(lambda g: g.astype(jnp.float32) * inv, grads)


def all_finite(tree: Any) -> jax.Array:
    """True (a 0-d bool array) when no leaf of ``tree`` holds a NaN or ±Inf.

    >>> bool(all_finite({"a": jnp.ones(3), "b": jnp.array([1.0, jnp.inf])}))
    False
    """
    leaves = jax.tree.leaves(tree)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves])) if leaves else jnp.array(True)


def update_scale(ls: LossScale, finite: jax.Array) -> LossScale:
    """The next state after a step whose unscaled gradients were ``finite`` (a 0-d bool).

    finite: ``good_steps + 1``; when that reaches ``period``, S ← S·factor (kept only if still finite)
    and ``good_steps`` ← 0. Not finite: S ← max(S / factor, min_scale) and ``good_steps`` ← 0.
    A static scale (factor 1) never changes.
    """
    ls = _check_state(ls)
    finite = jnp.asarray(finite, bool)
    good = ls.good_steps + 1
    grow = finite & (good >= ls.period)
    grown = ls.scale * ls.factor
    grown = jnp.where(jnp.isfinite(grown), grown, ls.scale)
    scale = jnp.where(finite, jnp.where(grow, grown, ls.scale), jnp.maximum(ls.scale / ls.factor, ls.min_scale))
    good = jnp.where(finite & ~grow, good, 0).astype(jnp.int32)
    return ls._replace(scale=scale.astype(jnp.float32), good_steps=good)


def scaled_value_and_grad(
    fun: Callable[..., jax.Array], ls: LossScale, params: Any, *args: Any
) -> tuple[jax.Array, Any, jax.Array]:
    """``(loss, grads, finite)``: the unscaled loss, the unscaled float32 gradients of ``fun(params, *args)``
    computed through the scaled loss S · fun, and whether every gradient entry is finite.

    With S = 1 this is ``jax.value_and_grad`` (plus the finite flag); the gradients differ from it only
    where S · g would have underflowed (then they are better) or overflowed (then ``finite`` is False).
    """
    ls = _check_state(ls)
    if not callable(fun):
        raise TypeError(f"fun: expected a function (params, *args) -> scalar loss, got {type(fun).__name__}")
    scaled, grads = jax.value_and_grad(lambda p: scale_loss(ls, fun(p, *args)))(params)
    grads = unscale(ls, grads)
    return scaled.astype(jnp.float32) / ls.scale, grads, all_finite(grads)
