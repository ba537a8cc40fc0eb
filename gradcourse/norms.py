"""Per-layer L2 norms of pytrees (gradients, parameters, updates) and of per-layer signals.

Norms are accumulated in at least float32, so float16 / bfloat16 entries around 1e3 (whose
squares overflow float16) still give a finite, correct norm.
"""
from __future__ import annotations

import functools
import re
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax
from jax.tree_util import DictKey, FlattenedIndexKey, GetAttrKey, SequenceKey

from .validate import wide_float


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


def l2(x: jax.Array, axis: Any = None) -> jax.Array:
    """sqrt(Σ x²) over ``axis`` (an int, a tuple of ints, or all axes by default), in float32 or wider.

    Computed as m·sqrt(Σ (x/m)²) with m = max |x|, so neither tiny entries (whose squares would
    underflow to 0, e.g. a vanished gradient of 1e-25) nor huge ones (whose squares overflow) are lost.
    A zero-size array has norm 0. The gradient is x/‖x‖, and 0 at x = 0 exactly (a "safe norm": the
    square root is only differentiated where its argument is positive, as ``optax.safe_norm`` does;
    the plain formula gives 0 · ∞ = NaN there). m is a constant for the gradient: the norm is
    1-homogeneous, so ∂/∂m of m·‖x/m‖ is 0 anyway.

    >>> round(float(l2(jnp.array([3e-30, 4e-30]))) / 1e-30, 4)  # the squares underflow float32; the norm does not
    5.0
    >>> jax.grad(l2)(jnp.zeros(3))
    Array([0., 0., 0.], dtype=float32)

    One compiled program per input shape and ``axis`` when called outside ``jit`` (op by op it compiled ten,
    one per operation, and ``layer_norms`` calls it on every leaf); inside a jitted function it is inlined.
    """
    return _l2(x, axis=tuple(axis) if isinstance(axis, list) else axis)


@functools.partial(jax.jit, static_argnames="axis")
def _l2(x: jax.Array, axis: Any) -> jax.Array:
    x = wide_float(x)
    m = lax.stop_gradient(jnp.max(jnp.abs(x), axis=axis, keepdims=True, initial=0.0))
    safe = jnp.where((m > 0) & jnp.isfinite(m), m, 1.0)
    ss = jnp.sum(jnp.square(x / safe), axis=axis)
    positive = ss > 0
    root = jnp.where(positive, jnp.sqrt(jnp.where(positive, ss, 1.0)), jnp.where(jnp.isnan(ss), ss, 0.0))
    return jnp.squeeze(safe, axis=axis) * root


def _is_array(leaf: Any) -> bool:
    """An array leaf that has a norm: not a Python scalar (Equinox's ``Dropout.p``), a function, ``None`` or a
    PRNG key array (``jax.random.key``: no arithmetic)."""
    if not (hasattr(leaf, "shape") and hasattr(leaf, "dtype")):
        return False
    try:
        return not jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key)
    except TypeError:  # pragma: no cover  (a dtype numpy cannot compare)
        return False


def natural_key(label: str) -> tuple:
    """Sort key that orders the numbers inside a label by value: ``layers/2`` before ``layers/10``, ``Dense_2``
    before ``Dense_10`` (a plain string sort, and ``jit``'s key-sorted dicts, put ``10`` before ``2``).

    >>> sorted(["layers/10/W", "layers/2/W", "Dense_10", "Dense_9"], key=natural_key)
    ['Dense_9', 'Dense_10', 'layers/2/W', 'layers/10/W']
    """
    return tuple((0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", label) if t)


def natural_tree_order(paths: Sequence[Sequence[Any]]) -> list[int]:
    """Indices that put pytree key paths in natural tree order: the tree's own order, except that the keys of a
    dict, which JAX visits sorted as strings (``Dense_10`` before ``Dense_2``), go in natural order.

    Attributes (Equinox / dataclass fields: ``weight`` before ``bias``) and list items keep their order.

    >>> from jax.tree_util import DictKey, GetAttrKey
    >>> a, b = DictKey("Dense_10"), DictKey("Dense_2")
    >>> paths = [(a, GetAttrKey("w")), (a, GetAttrKey("b")), (b, GetAttrKey("w"))]
    >>> natural_tree_order(paths)
    [2, 0, 1]
    """
    rank: dict[tuple, int] = {}
    keys = []
    for path in paths:
        key = []
        for d, k in enumerate(path):
            if isinstance(k, DictKey):
                key.append((0, natural_key(str(getattr(k.key, "name", k.key)))))
            else:
                key.append((1, rank.setdefault((tuple(path[:d]), k), len(rank))))
        keys.append(tuple(key))
    return sorted(range(len(paths)), key=keys.__getitem__)


def leaf_label(path: Sequence[Any], sep: str = "/") -> str:
    """``path_label``, without the trailing ``value`` of a Flax NNX ``Variable`` leaf (``layers/0/kernel``)."""
    if path and isinstance(path[-1], GetAttrKey) and path[-1].name == "value":
        path = path[:-1]
    return path_label(path, sep) or "<root>"


def layer_norms(tree: Any, *, stacked: bool = False, sep: str = "/") -> dict[str, jax.Array]:
    """L2 norm of every leaf of ``tree``, keyed by its readable path (e.g. ``"layers/3/W"``).

    With ``stacked=True`` each leaf carries a leading depth axis of size L and its entry is an
    array of L norms, one per depth index. Leaves without a norm are skipped: functions, ``None``,
    Python scalars and bools (an Equinox ``Dropout.p``), PRNG key arrays. Labels are in natural tree
    order (``layers/2`` before ``layers/10``, Linen's ``Dense_2`` before ``Dense_10``; fields in their
    own order, ``weight`` before ``bias``: ``natural_tree_order``), also when the
    dict is returned from ``jit`` (it is an ``OrderedDict``, which JAX keeps in order); a Flax NNX
    ``Variable``'s ``/value`` is dropped (``layers/0/kernel``). Works on dicts, lists, tuples,
    NamedTuples and Flax / Equinox pytrees, under ``jit``; a whole Equinox module (which holds
    functions) goes through ``eqx.filter_jit(gc.layer_norms)`` (``jax.jit`` itself rejects function
    arguments) or inside any jitted function that has it.

    >>> norms = layer_norms({"W": jnp.full((2, 2), 0.5), "b": jnp.array([3.0, 4.0])})
    >>> {k: float(v) for k, v in norms.items()}
    {'W': 1.0, 'b': 5.0}
    >>> layer_norms({"W": jnp.ones((3, 2, 2))}, stacked=True)["W"]  # one norm per depth index
    Array([2., 2., 2.], dtype=float32)
    """
    if not isinstance(stacked, bool):
        raise TypeError(f"stacked: expected True or False, got {type(stacked).__name__}")
    leaves = jax.tree_util.tree_leaves_with_path(tree)
    leaves = [(p, leaf) for p, leaf in leaves if _is_array(leaf)]
    items = [(leaf_label(leaves[i][0], sep), leaves[i][1]) for i in natural_tree_order([p for p, _ in leaves])]
    if not items:
        raise ValueError("tree: expected a pytree with at least one array leaf, found none")
    if not stacked:
        return OrderedDict((label, l2(leaf)) for label, leaf in items)
    depths = {}
    for label, leaf in items:
        if jnp.ndim(leaf) == 0:
            raise ValueError(
                f"tree: leaf {label!r} is a scalar, but stacked=True needs a leading depth axis on every leaf"
            )
        depths[label] = jnp.shape(leaf)[0]
    if len(set(depths.values())) > 1:
        detail = ", ".join(f"{k} has {v}" for k, v in depths.items())
        raise ValueError(f"tree: stacked leaves have different depths ({detail}); all leading axes must be equal")
    return OrderedDict((label, l2(leaf, axis=tuple(range(1, jnp.ndim(leaf))))) for label, leaf in items)


def stacked_norms(tree: Any) -> jax.Array:
    """Norm of the whole layer l for a stacked pytree: sqrt(Σ_leaves ‖leaf[l]‖²), shape (L,).

    >>> stacked_norms({"W": jnp.ones((2, 3, 3)), "b": jnp.zeros((2, 3))})
    Array([3., 3.], dtype=float32)
    """
    norms = layer_norms(tree, stacked=True)
    return jnp.sqrt(sum(jnp.square(n) for n in norms.values()))


def _signal(hs: Any) -> list[jax.Array] | jax.Array:
    """``hs`` (a list of per-layer arrays or one stacked array) checked, naming ``hs`` and the layer."""
    def one(h: Any, name: str) -> jax.Array:
        if h is None or isinstance(h, (str, bytes, dict)):
            raise TypeError(f"{name}: expected an array, got {type(h).__name__}")
        try:
            h = jnp.asarray(h)
        except (TypeError, ValueError) as e:
            raise TypeError(f"{name}: expected an array, got a {type(h).__name__} that is not one (ragged?)") from e
        if not (jnp.issubdtype(h.dtype, jnp.number) or h.dtype == jnp.bool_):
            raise TypeError(f"{name}: expected a numeric array, got dtype {h.dtype}")
        return h

    if isinstance(hs, (list, tuple)):
        if not hs:
            raise ValueError("hs: expected at least one array, got an empty sequence")
        return [one(h, f"hs[{i}]") for i, h in enumerate(hs)]
    hs = one(hs, "hs")
    if hs.ndim == 0:
        raise ValueError("hs: expected a stacked array with a leading layer axis, got a scalar")
    return hs


def signal_norms(hs: Sequence[jax.Array] | jax.Array) -> jax.Array:
    """‖h_l‖ for each layer of a per-layer signal (``forward`` / ``backward`` output), shape (L+1,).

    ``hs`` is a list of arrays (shapes may differ) or one stacked array (L+1, ...). Zero-size
    layers have norm 0; the gradient at h_l = 0 is 0 (see ``l2``).

    >>> signal_norms([jnp.array([3.0, 4.0]), jnp.zeros(2)])
    Array([5., 0.], dtype=float32)
    """
    hs = _signal(hs)
    if isinstance(hs, list):
        return jnp.stack([l2(h) for h in hs])
    return l2(hs, axis=tuple(range(1, hs.ndim)))


def mean_square(hs: Sequence[jax.Array] | jax.Array) -> jax.Array:
    """Mean of h_l² over all its entries for each layer, shape (L+1,). Mean-field theory predicts it.

    Accumulated in float32 or wider (a mean square below ~1e-38 reads 0 in float32).

    >>> mean_square(jnp.stack([jnp.ones((2, 3)), 2 * jnp.ones((2, 3))]))
    Array([1., 4.], dtype=float32)
    """
    hs = _signal(hs)
    empty = [f"hs[{i}]" for i, h in enumerate(hs) if h.size == 0] if isinstance(hs, list) else ["hs"] * (hs.size == 0)
    if empty:
        raise ValueError(f"{empty[0]}: has no entries (a zero-size array); a mean square needs at least one")
    if isinstance(hs, list):
        return jnp.stack([jnp.mean(jnp.square(wide_float(h))) for h in hs])
    return jnp.mean(jnp.square(wide_float(hs)), axis=tuple(range(1, hs.ndim)))
