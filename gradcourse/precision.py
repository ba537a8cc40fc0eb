"""Floating-point formats and what rounding into them does to gradients and updates.

Layer: theory and statistics. The numbers come from ``jnp.finfo`` (never typed in); the fractions
are measured by actually casting to the format, so they include round-to-nearest at the edges.

A binary float with p significand bits (the leading 1 included) and minimum exponent e_min has
machine epsilon 2^(1-p) (the gap above 1), smallest normal 2^e_min and smallest subnormal
2^(e_min+1-p). float16: p = 11, e_min = -14; bfloat16: p = 8, e_min = -126 (float32's range);
float32: p = 24, e_min = -126. A value below half the smallest subnormal rounds to 0.

>>> import jax.numpy as jnp
>>> f = float_format(jnp.float16)
>>> f.max, f.smallest_normal == 2.0**-14, f.smallest_subnormal == 2.0**-24, f.eps == 2.0**-10
(65504.0, True, True, True)
>>> z, s = underflow_fractions(jnp.array([1e-9, 1e-6, 1e-3, 0.0]), jnp.float16)
>>> float(z), float(s)   # of the 3 non-zero entries: 1e-9 -> 0, 1e-6 is subnormal
(0.3333333432674408, 0.3333333432674408)
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import validate

__all__ = ["FloatFormat", "float_format", "half_ulp", "swamped", "underflow_fractions"]


class FloatFormat(NamedTuple):
    """A float format's key numbers (Python floats / ints), from ``jnp.finfo``.

    ``significand_bits``: p, the leading 1 included (24 / 11 / 8 for float32 / float16 / bfloat16).
    ``eps``: 2^(1-p), the gap between 1 and the next float. ``max``: the largest finite value.
    ``smallest_normal`` / ``smallest_subnormal``: the smallest positive normal / subnormal value.
    """

    name: str
    bits: int
    significand_bits: int
    max: float
    smallest_normal: float
    smallest_subnormal: float
    eps: float


def _dtype(dtype: Any) -> np.dtype:
    try:
        dt = jnp.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype: expected a floating dtype such as jnp.float16, got {dtype!r}") from None
    if not jnp.issubdtype(dt, jnp.floating):
        raise TypeError(f"dtype: expected a floating dtype such as jnp.float16 or jnp.bfloat16, got {dt}")
    return dt


def float_format(dtype: Any) -> FloatFormat:
    """The ``FloatFormat`` of ``dtype`` (e.g. ``jnp.float32``, ``jnp.float16``, ``jnp.bfloat16``)."""
    dt = _dtype(dtype)
    fi = jnp.finfo(dt)
    return FloatFormat(
        name=str(dt), bits=int(fi.bits), significand_bits=int(fi.nmant) + 1, max=float(fi.max),
        smallest_normal=float(fi.smallest_normal), smallest_subnormal=float(fi.smallest_subnormal), eps=float(fi.eps),
    )


def underflow_fractions(x: Any, dtype: Any = jnp.float16, *, per_layer: bool = False) -> tuple[jax.Array, jax.Array]:
    """``(zero, subnormal)``: of the non-zero entries of ``x``, the fraction that becomes 0 and the fraction
    that becomes a (non-zero) subnormal when cast to ``dtype``.

    x: any shape (float32). ``per_layer=True``: x has a leading layer axis (L, ...), and both results
    have shape (L,) (one fraction per layer); otherwise they are 0-d. Entries that are exactly 0 in x
    are left out (a gradient that is 0 in any precision, e.g. from an always-zero input pixel, did not
    underflow); a layer with no non-zero entry gives NaN.
    """
    x = validate.floating_array(x, "x")
    dt = _dtype(dtype)
    tiny = jnp.finfo(dt).smallest_normal
    y = jnp.abs(x.astype(dt))
    nz = x != 0
    zero = nz & (y == 0)
    sub = (y > 0) & (y < tiny)
    axes = tuple(range(1, x.ndim)) if per_layer else None
    if per_layer and x.ndim < 1:
        raise ValueError(f"x: per_layer=True needs a leading layer axis, got shape {x.shape}")
    count = jnp.sum(nz, axis=axes)
    return jnp.sum(zero, axis=axes) / count, jnp.sum(sub, axis=axes) / count


def half_ulp(w: Any, dtype: Any) -> jax.Array:
    """Half the gap from |w| (rounded to ``dtype``) up to the next float of ``dtype``, as float32.

    Round-to-nearest maps w + Δ (Δ > 0, same sign as w) back to w when Δ < half_ulp(w). For |w| in
    [2^e, 2^(e+1)) the gap is 2^e·eps, so half_ulp(w) = 2^e·eps/2, between |w|·eps/4 and |w|·eps/2:
    for bfloat16 (eps = 2⁻⁷) between |w|·2⁻⁹ and |w|·2⁻⁸.
    """
    dt = _dtype(dtype)
    a = jnp.abs(validate.floating_array(w, "w").astype(dt))
    return (jnp.nextafter(a, jnp.asarray(jnp.inf, dt)).astype(jnp.float32) - a.astype(jnp.float32)) / 2


def swamped(w: Any, delta: Any, dtype: Any) -> jax.Array:
    """True where adding ``delta`` to ``w`` in ``dtype`` leaves it unchanged: fl(fl(w) + fl(Δ)) == fl(w).

    w, delta: arrays of one shape (broadcastable). This is what happens to an update applied to weights
    *stored* in a low-precision format; keeping a float32 copy ("master weights") avoids it.
    """
    dt = _dtype(dtype)
    w = validate.floating_array(w, "w").astype(dt)
    d = validate.floating_array(delta, "delta").astype(dt)
    return ((w + d) == w) & (d != 0)
