"""Per-layer L2 norms of pytrees (gradients, parameters, updates) and of per-layer signals.

Norms are accumulated in at least float32, so float16 / bfloat16 entries around 1e3 (whose
squares overflow float16) still give a finite, correct norm.
"""
from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp
from jax.tree_util import DictKey, FlattenedIndexKey, GetAttrKey, SequenceKey


def path_label(path: Sequence[Any], sep: str = "/") -> str:
    """Readable label for a pytree key path: ``('layers', 3, 'W')`` -> ``"layers/3/W"``."""
    parts = []
    for k in path:
        if isinstance(k, DictKey):
            parts.append(str(getattr(k.key, "name", k.key)))
        elif isinstance(k, SequenceKey):
            parts.append(str(k.idx))
        elif isinstance(k, GetAttrKey):
            parts.append(k.name)
        elif isinstance(k, FlattenedIndexKey):
            parts.append(str(k.key))
        else:  # other key types (e.g. from custom pytrees): their own str, minus brackets
            parts.append(str(k).strip("[]().'\""))
    return sep.join(parts)


def _wide(x: jax.Array) -> jax.Array:
    """x as float32 or wider (float64 / complex stay as they are)."""
    x = jnp.asarray(x)
    if jnp.issubdtype(x.dtype, jnp.complexfloating):
        return jnp.abs(x).astype(jnp.promote_types(jnp.float32, jnp.finfo(x.dtype).dtype))
    return x.astype(jnp.promote_types(x.dtype, jnp.float32)) if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.float32)


def l2(x: jax.Array, axis: Any = None) -> jax.Array:
    """sqrt(Σ x²) over ``axis`` (all axes by default), accumulated in float32 or wider.

    Computed as m·sqrt(Σ (x/m)²) with m = max |x|, so neither tiny entries (whose squares would
    underflow to 0, e.g. a vanished gradient of 1e-25) nor huge ones (whose squares overflow) are lost.
    """
    x = _wide(x)
    m = jnp.max(jnp.abs(x), axis=axis, keepdims=True)
    safe = jnp.where((m > 0) & jnp.isfinite(m), m, 1.0)
    return jnp.squeeze(safe, axis=axis) * jnp.sqrt(jnp.sum(jnp.square(x / safe), axis=axis))


def _is_array(leaf: Any) -> bool:
    return hasattr(leaf, "shape") and hasattr(leaf, "dtype") or isinstance(leaf, (int, float, complex))


def layer_norms(tree: Any, *, stacked: bool = False, sep: str = "/") -> dict[str, jax.Array]:
    """L2 norm of every leaf of ``tree``, keyed by its readable path (e.g. ``"layers/3/W"``).

    With ``stacked=True`` each leaf carries a leading depth axis of size L and its entry is an
    array of L norms, one per depth index. Non-array leaves (functions, ``None``) are skipped.
    Works on dicts, lists, tuples, NamedTuples and Flax / Equinox parameter pytrees, under ``jit``.
    """
    if not isinstance(stacked, bool):
        raise TypeError(f"stacked: expected True or False, got {type(stacked).__name__}")
    items = [(path_label(p, sep) or "<root>", leaf) for p, leaf in jax.tree_util.tree_leaves_with_path(tree) if _is_array(leaf)]
    if not items:
        raise ValueError("tree: expected a pytree with at least one array leaf, found none")
    if not stacked:
        return {label: l2(leaf) for label, leaf in items}
    depths = {}
    for label, leaf in items:
        if jnp.ndim(leaf) == 0:
            raise ValueError(f"tree: leaf {label!r} is a scalar, but stacked=True needs a leading depth axis on every leaf")
        depths[label] = jnp.shape(leaf)[0]
    if len(set(depths.values())) > 1:
        detail = ", ".join(f"{k} has {v}" for k, v in depths.items())
        raise ValueError(f"tree: stacked leaves have different depths ({detail}); all leading axes must be equal")
    return {label: l2(leaf, axis=tuple(range(1, jnp.ndim(leaf)))) for label, leaf in items}


def stacked_norms(tree: Any) -> jax.Array:
    """Norm of the whole layer l for a stacked pytree: sqrt(Σ_leaves ‖leaf[l]‖²), shape (L,)."""
    norms = layer_norms(tree, stacked=True)
    return jnp.sqrt(sum(jnp.square(n) for n in norms.values()))


def signal_norms(hs: Sequence[jax.Array] | jax.Array) -> jax.Array:
    """‖h_l‖ for each layer of a per-layer signal (``forward`` / ``backward`` output), shape (L+1,)."""
    if isinstance(hs, (list, tuple)):
        if not hs:
            raise ValueError("hs: expected at least one array, got an empty sequence")
        return jnp.stack([l2(h) for h in hs])
    hs = jnp.asarray(hs)
    if hs.ndim == 0:
        raise ValueError("hs: expected a stacked array with a leading layer axis, got a scalar")
    return l2(hs, axis=tuple(range(1, hs.ndim)))


def mean_square(hs: Sequence[jax.Array] | jax.Array) -> jax.Array:
    """Mean of h_l² over all its entries for each layer, shape (L+1,). Mean-field theory predicts it."""
    if isinstance(hs, (list, tuple)):
        if not hs:
            raise ValueError("hs: expected at least one array, got an empty sequence")
        return jnp.stack([jnp.mean(jnp.square(_wide(h))) for h in hs])  # a mean square below 1e-38 reads 0
    hs = jnp.asarray(hs)
    if hs.ndim == 0:
        raise ValueError("hs: expected a stacked array with a leading layer axis, got a scalar")
    return jnp.mean(jnp.square(_wide(hs)), axis=tuple(range(1, hs.ndim)))
