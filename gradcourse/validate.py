"""Argument checks shared by the whole package (core layer; imports only JAX and NumPy).

Every public function of gradcourse checks its arguments with these helpers, so a learner's
mistake raises a ``ValueError`` / ``TypeError`` that names the argument, says what was expected and
what was given, and the fix where there is one::

    depth: expected a positive integer, got -3

In the spirit of ``chex`` assertions, but returning the cleaned value (``int`` for an integer given
as ``np.int64``, a key array for a key) so a caller can write ``depth = positive_int(depth, "depth")``.
Values that are JAX tracers (inside ``jit`` / ``vmap`` / ``grad``) cannot be inspected; the checks
of numbers let them through unchanged, so every function still works under ``jit``.

>>> import numpy as np, jax.numpy as jnp
>>> positive_int(np.int64(3), "depth")
3
>>> positive_int(-3, "depth")
Traceback (most recent call last):
...
ValueError: depth: expected a positive integer, got -3
>>> real(jnp.float32(2.0), "sigma_w2", low=0.0, low_open=True)
2.0
>>> one_of("exact", "method", ("auto", "exact", "lanczos"))
'exact'
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "boolean", "floating_array", "int_at_least", "non_negative_int", "one_of", "positive_int", "prng_key", "real",
    "scalar_loss", "stacked_depth", "wide_float",
]


def _describe(value: Any) -> str:
    """The ``got ...`` text: ``-3``, ``bool True``, ``str 'a'``, ``ndarray of shape (2,) and dtype int64``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value)
    if value is None or isinstance(value, (bool, numbers.Number, str, bytes, np.generic)):
        shown = value.item() if isinstance(value, np.generic) else value
        return f"{type(value).__name__} {shown!r}"
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return f"{type(value).__name__} of shape {tuple(value.shape)} and dtype {np.dtype(value.dtype).name}"
    return type(value).__name__


def _is_tracer(value: Any) -> bool:
    return isinstance(value, jax.core.Tracer)


# --------------------------------------------------------------------------- integers


def int_at_least(value: Any, name: str, low: int, *, expected: str | None = None) -> int:
    """``value`` as a Python int, checked ``>= low``.

    Accepts Python, NumPy and concrete 0-d JAX integers (``np.int64(3)``, ``jnp.int32(3)``); rejects
    ``bool`` and floats (``3.0``) with a TypeError.

    >>> int_at_least(np.int32(0), "n", 0)
    0
    >>> int_at_least(2.0, "n", 1)
    Traceback (most recent call last):
    ...
    TypeError: n: expected an integer >= 1, got 2.0 (a float); pass int(2.0) if you mean 2
    """
    expected = expected or f"an integer >= {low}"
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected {expected}, got bool {value!r}")
    if hasattr(value, "dtype") and getattr(value, "shape", None) == () and not _is_tracer(value):
        if jnp.issubdtype(value.dtype, jnp.integer):
            value = int(value)
    if not isinstance(value, (int, np.integer)):
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            raise TypeError(
                f"{name}: expected {expected}, got {float(value)!r} (a float); pass int({float(value)!r}) "
                f"if you mean {int(value)}"
            )
        raise TypeError(f"{name}: expected {expected}, got {_describe(value)}")
    value = int(value)
    if value < low:
        raise ValueError(f"{name}: expected {expected}, got {value}")
    return value


def positive_int(value: Any, name: str) -> int:
    """``value`` as an int > 0 (NumPy / JAX integer scalars accepted, bool and floats rejected).

    >>> positive_int(jnp.int32(4), "width")
    4
    >>> positive_int(True, "width")
    Traceback (most recent call last):
    ...
    TypeError: width: expected a positive integer, got bool True
    """
    return int_at_least(value, name, 1, expected="a positive integer")


def non_negative_int(value: Any, name: str) -> int:
    """``value`` as an int >= 0 (NumPy / JAX integer scalars accepted, bool and floats rejected).

    >>> non_negative_int(0, "warmup")
    0
    """
    return int_at_least(value, name, 0, expected="a non-negative integer")


def boolean(value: Any, name: str) -> bool:
    """``value`` as a Python bool (``np.bool_`` accepted; 0 / 1 rejected, they are easy to mistype).

    >>> boolean(np.True_, "stacked")
    True
    """
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {_describe(value)}")
    return bool(value)


# --------------------------------------------------------------------------- real numbers


def _range_text(low: float, high: float, low_open: bool, high_open: bool) -> str:
    parts = []
    if low > -math.inf:
        parts.append(f"{'>' if low_open else '>='} {low:g}")
    if high < math.inf:
        parts.append(f"{'<' if high_open else '<='} {high:g}")
    return " and ".join(parts)


def real(
    value: Any,
    name: str,
    *,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
    array: bool = False,
    expected: str | None = None,
) -> Any:
    """A finite real number in [low, high] (ends open with ``low_open`` / ``high_open``).

    Accepts Python / NumPy / JAX numbers, 0-d arrays included, and returns a Python float. With
    ``array=True`` any real array is accepted (every entry checked) and returned as given. A JAX tracer
    (the value inside ``jit``) cannot be checked and is returned unchanged. NaN and ±inf are rejected.

    >>> real(np.float64(0.5), "sigma_b2", low=0.0)
    0.5
    >>> real(float("nan"), "sigma_w2", low=0.0, low_open=True)
    Traceback (most recent call last):
    ...
    ValueError: sigma_w2: expected a finite real number > 0, got nan
    >>> real("1", "lr")
    Traceback (most recent call last):
    ...
    TypeError: lr: expected a finite real number, got str '1'
    """
    rng = _range_text(low, high, low_open, high_open)
    expected = expected or ("a finite real number" + (f" {rng}" if rng else ""))
    if _is_tracer(value):
        return value
    if isinstance(value, (bool, np.bool_)) or isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name}: expected {expected}, got {_describe(value)}")
    try:
        arr = np.asarray(value)
    except Exception:  # e.g. a ragged list
        raise TypeError(f"{name}: expected {expected}, got {_describe(value)}") from None
    if arr.dtype.kind not in "iuf" or (arr.ndim > 0 and not array):
        raise TypeError(f"{name}: expected {expected}, got {_describe(value)}")
    bad = ~np.isfinite(arr) | (arr < low) | (arr > high)
    if low_open:
        bad |= arr == low
    if high_open:
        bad |= arr == high
    if np.any(bad):
        shown = arr[bad].ravel()[0].item()
        raise ValueError(f"{name}: expected {expected}, got {shown!r}")
    return value if array else float(arr)


def one_of(value: Any, name: str, choices: Sequence[Any]) -> Any:
    """``value`` if it is one of ``choices``, else a ValueError listing them.

    >>> one_of("sgd", "optimizer", ("adam", "sgd"))
    'sgd'
    >>> one_of("ADAM", "optimizer", ("adam", "sgd"))
    Traceback (most recent call last):
    ...
    ValueError: optimizer: expected one of 'adam', 'sgd', got 'ADAM'
    """
    try:
        ok = value in choices and not isinstance(value, bool)
    except TypeError:  # unhashable / incomparable
        ok = False
    if not ok:
        names = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name}: expected one of {names}, got {value!r}")
    return value


# --------------------------------------------------------------------------- keys and arrays


def prng_key(key: Any, name: str = "key") -> jax.Array:
    """``key`` if it is a JAX PRNG key: a raw uint32 key (``jax.random.PRNGKey(0)``, shape (2,)) or a
    typed key (``jax.random.key(0)``).

    >>> prng_key(jax.random.PRNGKey(0)).shape
    (2,)
    >>> prng_key(0)
    Traceback (most recent call last):
    ...
    TypeError: key: expected a PRNG key such as jax.random.PRNGKey(0), got int 0
    """
    if hasattr(key, "dtype") and hasattr(key, "shape"):
        if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
            if key.shape != ():
                raise ValueError(f"{name}: expected a single PRNG key, got a batch of keys of shape {tuple(key.shape)}")
            return key
        if key.dtype == jnp.uint32 and tuple(key.shape) == (2,):
            return key
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        raise TypeError(f"{name}: expected a PRNG key such as jax.random.PRNGKey(0), got int {int(key)}")
    raise TypeError(f"{name}: expected a PRNG key such as jax.random.PRNGKey(0), got {_describe(key)}")


def floating_array(x: Any, name: str = "x", *, allow_empty: bool = False) -> jax.Array:
    """``x`` as a floating-point array (NumPy arrays stay NumPy; lists become JAX arrays).

    Raises a TypeError naming ``name`` for ``None``, ragged lists, strings and integer / bool arrays
    (with the fix: ``x.astype(jnp.float32)``), and a ValueError for a zero-size array unless
    ``allow_empty``.

    >>> floating_array([[1.0, 2.0]]).shape
    (1, 2)
    >>> floating_array(np.arange(3))
    Traceback (most recent call last):
    ...
    TypeError: x: expected a floating-point array (gradients are taken with respect to it), got dtype int64; \
convert with x.astype(jnp.float32)
    """
    if x is None or isinstance(x, (str, bytes)):
        raise TypeError(f"{name}: expected a floating-point array, got {_describe(x)}")
    if not (hasattr(x, "dtype") and hasattr(x, "shape")):
        try:
            x = jnp.asarray(x)
        except (TypeError, ValueError) as e:
            raise TypeError(
                f"{name}: expected a floating-point array, got a {type(x).__name__} that is not one "
                f"(ragged or non-numeric entries?); build it with np.stack or jnp.array first"
            ) from e
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(
            f"{name}: expected a floating-point array (gradients are taken with respect to it), "
            f"got dtype {np.dtype(x.dtype).name}; convert with {name}.astype(jnp.float32)"
        )
    if not allow_empty and math.prod(x.shape) == 0:
        raise ValueError(f"{name}: expected a non-empty array, got shape {tuple(x.shape)}")
    return x


def wide_float(x: Any) -> jax.Array:
    """``x`` as float32 or wider (float64 stays float64; |x| for complex; ints become float32).

    Accumulate norms and statistics in it: float16 / bfloat16 squares overflow above ~256.

    >>> wide_float(jnp.ones(2, jnp.float16)).dtype
    dtype('float32')
    """
    x = jnp.asarray(x)
    if jnp.issubdtype(x.dtype, jnp.complexfloating):
        return jnp.abs(x).astype(jnp.promote_types(jnp.float32, jnp.finfo(x.dtype).dtype))
    if jnp.issubdtype(x.dtype, jnp.floating):
        return x.astype(jnp.promote_types(x.dtype, jnp.float32))
    return x.astype(jnp.float32)


# --------------------------------------------------------------------------- pytrees and losses


def _label(path: Any) -> str:
    from .norms import path_label  # local import: norms imports this module

    return path_label(path) or "<root>"


def stacked_depth(params: Any, name: str = "params") -> int:
    """Depth L of a stacked pytree: the common leading-axis size of its floating leaves.

    >>> stacked_depth({"W": jnp.zeros((5, 3, 3)), "b": jnp.zeros((5, 3))})
    5
    >>> stacked_depth({"W": jnp.zeros((5, 3, 3)), "b": jnp.zeros((4, 3))})
    Traceback (most recent call last):
    ...
    ValueError: params: stacked leaves have different depths (W has 5, b has 4); all leading axes must be equal
    """
    leaves = jax.tree_util.tree_leaves_with_path(params)
    if not leaves:
        raise ValueError(f"{name}: the stacked params pytree has no leaves; expected arrays with a leading depth axis")
    depths = {}
    for path, leaf in leaves:
        label = _label(path)
        if not hasattr(leaf, "shape") or not hasattr(leaf, "dtype"):
            raise TypeError(
                f"{name}: leaf {label!r} is {type(leaf).__name__}, expected an array with a leading depth axis"
            )
        if not jnp.issubdtype(leaf.dtype, jnp.inexact):
            raise TypeError(
                f"{name}: leaf {label!r} has dtype {np.dtype(leaf.dtype).name}; parameters must be floating point"
            )
        if leaf.ndim == 0:
            raise ValueError(f"{name}: leaf {label!r} is a scalar; stacked leaves need a leading depth axis")
        depths[label] = leaf.shape[0]
    if len(set(depths.values())) > 1:
        detail = ", ".join(f"{k} has {v}" for k, v in depths.items())
        raise ValueError(f"{name}: stacked leaves have different depths ({detail}); all leading axes must be equal")
    depth = next(iter(depths.values()))
    if depth == 0:
        raise ValueError(f"{name}: depth is 0; expected at least one layer")
    return depth


def scalar_loss(out: Any, name: str = "loss") -> Any:
    """Check that a loss value (an array or ``jax.eval_shape`` result) is a floating scalar.

    >>> scalar_loss(jax.ShapeDtypeStruct((3,), jnp.float32))
    Traceback (most recent call last):
    ...
    ValueError: loss must return a scalar, got shape (3,); reduce it, e.g. with jnp.mean
    """
    shape = getattr(out, "shape", None)
    if shape is None:
        if isinstance(out, (float, int)) and not isinstance(out, bool):
            return out
        raise TypeError(f"{name} must return a scalar array, got {type(out).__name__}")
    if tuple(shape) != ():
        raise ValueError(f"{name} must return a scalar, got shape {tuple(shape)}; reduce it, e.g. with jnp.mean")
    if not jnp.issubdtype(out.dtype, jnp.floating):
        raise TypeError(f"{name} must return a floating-point scalar, got dtype {np.dtype(out.dtype).name}")
    return out
