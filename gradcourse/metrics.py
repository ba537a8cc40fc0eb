"""``step_metrics``: the per-layer numbers of one training step as a flat dict, for any logger (core layer).

For a training loop you write yourself (optax, Equinox, Flax): call ``step_metrics(grads, params,
updates)`` inside your jitted step and hand the dict to TensorBoard, Weights & Biases, or a list.
Also available as ``gc.train.step_metrics``; ``gc.train.fit`` records the same quantities.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any

import jax
import jax.numpy as jnp

from .norms import leaf_label, natural_key, natural_tree_order

__all__ = ["array_leaves", "natural_key", "step_metrics"]


def _is_param(leaf: Any) -> bool:
    """A floating-point array (not a PRNG key, an integer counter, a Python scalar or a function)."""
    if not (hasattr(leaf, "shape") and hasattr(leaf, "dtype")):
        return False
    try:
        return bool(jnp.issubdtype(leaf.dtype, jnp.inexact))
    except TypeError:  # extended dtypes (PRNG key arrays)
        return False


def array_leaves(tree: Any) -> dict[str, jax.Array]:
    """label -> leaf for every floating-point array leaf of ``tree``, in natural tree order (``natural_tree_order``).

    Skipped: Python scalars, functions, integer arrays (RNG counters) and PRNG keys, ``None``. A Flax
    NNX ``.../value`` suffix is dropped (``layers/0/kernel``).
    """
    items = [(p, leaf) for p, leaf in jax.tree_util.tree_leaves_with_path(tree) if _is_param(leaf)]
    return {leaf_label(items[i][0]): items[i][1] for i in natural_tree_order([p for p, _ in items])}


def _prefixes(stacked: Any, labels: list[str]) -> tuple[str, ...] | None:
    """``stacked`` as path prefixes ("" = every leaf), or None when nothing is stacked."""
    if stacked is True:
        return ("",)
    if stacked is False or stacked is None or stacked == ():
        return None
    prefixes = (stacked,) if isinstance(stacked, str) else stacked
    try:
        prefixes = tuple(p.strip("/") for p in prefixes)
    except (TypeError, AttributeError):
        raise TypeError(f"stacked: expected True, False or path prefixes like ('blocks',), got {stacked!r}") from None
    for p in prefixes:
        if not any(lab == p or lab.startswith(p + "/") for lab in labels):
            raise ValueError(f"stacked: prefix {p!r} matches no parameter; the parameters are {', '.join(labels)}")
    return prefixes


def _sq(x: jax.Array, per_depth: bool) -> jax.Array:
    """Σ x² over all axes (or all but the first), in float32 or wider, without reshaping (keeps shardings)."""
    x = jnp.abs(x) if jnp.issubdtype(x.dtype, jnp.complexfloating) else x
    x = x.astype(jnp.promote_types(x.dtype, jnp.float32))
    return jnp.sum(x * x, axis=tuple(range(1 if per_depth else 0, x.ndim)))


def step_metrics(grads: Any, params: Any, updates: Any = None, *, stacked: Any = False) -> dict[str, jax.Array]:
    """Per-layer gradient and update statistics of one step, as a flat dict of scalars (works under ``jit``).

    ``grads``, ``params`` (and optionally the optimizer's ``updates``) are pytrees of the same
    structure: plain dicts, Equinox modules (non-array leaves are skipped), Flax NNX states, Linen
    variables. For every floating-point parameter leaf with label ``p`` (``layers/0/weight``):

    * ``grad_norm/p`` = ‖g_p‖, ``grad_ratio/p`` = ‖g_p‖ / ‖θ_p‖
    * with ``updates``: ``update_ratio/p`` = ‖Δθ_p‖ / ‖θ_p‖ (healthy ≈ 1e-3, see ``gc.stats.update_to_param_ratio``)

    and globally ``global/grad_norm`` = ‖g‖ (= ``optax.global_norm``), ``global/param_norm``,
    ``global/update_norm`` (with ``updates``) and ``nonfinite``: how many gradient (and update) leaves —
    per depth index for a stacked leaf — hold a NaN or ±Inf, 0 for a healthy step. It is read off the
    sums of squares, so it costs nothing extra (a leaf whose Σx² overflows float32, entries ≳ 1e19,
    counts as well: such a step is as broken). ``stacked``: path prefixes (``("blocks",)``) or
    ``True`` for leaves with a leading depth axis L; each gives L entries ``grad_norm/blocks/W[3]``.
    Norms are accumulated in float32 or wider; no array is reshaped, so sharded parameters keep
    their sharding. Keys are in natural order (``layers/2`` before ``layers/10``), also when returned from
    ``jit`` (the dict is an ``OrderedDict``, which JAX keeps in order; a plain dict comes back key-sorted).

    >>> import jax.numpy as jnp, gradcourse as gc
    >>> params = {"layers": [{"W": jnp.ones((2, 2))}, {"W": 2 * jnp.ones((2, 2))}]}
    >>> grads = {"layers": [{"W": jnp.full((2, 2), 0.5)}, {"W": jnp.zeros((2, 2))}]}
    >>> m = gc.train.step_metrics(grads, params)
    >>> float(m["grad_norm/layers/0/W"]), float(m["grad_ratio/layers/0/W"]), int(m["nonfinite"])
    (1.0, 0.5, 0)
    """
    g_leaves, p_leaves = array_leaves(grads), array_leaves(params)
    if not p_leaves:
        raise ValueError("params: expected a pytree with at least one floating-point array leaf, found none")
    trees = [("grads", g_leaves)] + ([("updates", array_leaves(updates))] if updates is not None else [])
    for name, leaves in trees:
        if leaves.keys() != p_leaves.keys():
            missing = [k for k in p_leaves if k not in leaves]
            extra = [k for k in leaves if k not in p_leaves]
            raise ValueError(
                f"{name}: its array leaves must match those of params (same structure, as jax.grad returns); "
                f"missing {missing[:5]}, unexpected {extra[:5]}"
            )
        for k, v in leaves.items():
            if jnp.shape(v) != jnp.shape(p_leaves[k]):
                raise ValueError(f"{name}: leaf {k!r} has shape {jnp.shape(v)} but params has {jnp.shape(p_leaves[k])}")
    prefixes = _prefixes(stacked, list(p_leaves))

    def is_stacked(label: str) -> bool:
        return prefixes is not None and any(p == "" or label == p or label.startswith(p + "/") for p in prefixes)

    out: dict[str, jax.Array] = OrderedDict()  # an OrderedDict keeps its order through jit (a dict comes back sorted)
    totals = {"grad": 0.0, "param": 0.0, "update": 0.0}
    bad = jnp.zeros((), jnp.int32)
    tree_list = [("grad", g_leaves)] + ([("update", trees[1][1])] if updates is not None else [])
    p_sq = {k: _sq(v, is_stacked(k)) for k, v in p_leaves.items()}
    for k in p_leaves:
        totals["param"] = totals["param"] + jnp.sum(p_sq[k])
    for kind, leaves in tree_list:
        ratio_key = "grad_ratio" if kind == "grad" else "update_ratio"
        for k, v in leaves.items():
            s = _sq(v, is_stacked(k))
            totals[kind] = totals[kind] + jnp.sum(s)
            bad = bad + jnp.sum(~jnp.isfinite(s)).astype(jnp.int32)  # read off Σx²: no extra pass over v
            norm, ratio = jnp.sqrt(s), jnp.sqrt(s / p_sq[k])
            if kind == "grad":
                _put(out, f"grad_norm/{k}", norm)
            _put(out, f"{ratio_key}/{k}", ratio)
    out["global/grad_norm"] = jnp.sqrt(totals["grad"])
    out["global/param_norm"] = jnp.sqrt(totals["param"])
    if updates is not None:
        out["global/update_norm"] = jnp.sqrt(totals["update"])
    out["nonfinite"] = bad
    return out


def _put(out: dict[str, jax.Array], key: str, value: jax.Array) -> None:
    if value.ndim == 0:
        out[key] = value
    else:
        for i in range(value.shape[0]):
            out[f"{key}[{i}]"] = value[i]
