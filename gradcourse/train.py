"""Train with any optax optimizer and record how the gradients behave, every step.

``fit(loss_fn, params, optimizer, data, steps)`` runs one jitted function per step that returns the
loss, the new parameters and optimizer state, and every metric at once (no host round-trip per
layer): the loss, the global gradient norm ‖g‖ (= ``optax.global_norm`` of the raw gradients), the
global update norm ‖Δθ‖, and per leaf ("layer") the raw gradient norm ‖g_l‖ and the
update-to-parameter ratio ‖Δθ_l‖ / ‖θ_l‖ (θ before the step; Δθ the optimizer's update, so
θ_new = θ + Δθ). Metrics stay on the device and reach the host in chunks.

Clipping is part of the optimizer, chained with optax, e.g.
``optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-3))``: the recorded gradient norms are
those of the raw (unclipped) gradients, the update norms those of what was applied.

Training stops cleanly at the first step whose loss, gradient norm or update norm is NaN or ±inf:
that step is not applied (the returned params are the last finite ones), the recorded arrays hold
the steps before it, and ``History.stopped_at`` / ``stop_reason`` say where and why.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .norms import l2, path_label

__all__ = ["History", "fit"]

_CHUNK = 10  # steps between host syncs (progress bar, NaN check); results are read one chunk late


# --------------------------------------------------------------------------- the result


@dataclass(frozen=True, eq=False)
class History:
    """What ``fit`` recorded, one entry per step done (n = ``len(history)``), as host NumPy arrays.

    ``loss``, ``grad_norm`` (global ‖g‖ of the raw gradients), ``update_norm`` (global ‖Δθ‖): (n,).
    ``grad_norms`` / ``update_ratios``: label -> (n,) for an ordinary leaf, (n, L) for a stacked
    leaf (one column per depth index); empty when ``fit(..., record=False)``.
    ``params`` / ``opt_state``: after the last step applied. ``stopped_at``: the step (0-based)
    whose loss or gradients were not finite, else ``None``; ``stop_reason`` says what happened.
    """

    loss: np.ndarray
    grad_norm: np.ndarray
    update_norm: np.ndarray
    grad_norms: dict[str, np.ndarray] = field(default_factory=dict)
    update_ratios: dict[str, np.ndarray] = field(default_factory=dict)
    params: Any = None
    opt_state: Any = None
    stopped_at: int | None = None
    stop_reason: str | None = None

    def __len__(self) -> int:
        return int(self.loss.shape[0])

    def __repr__(self) -> str:
        last = f", final loss {self.loss[-1]:.4g}" if len(self) else ""
        stop = f", stopped: {self.stop_reason}" if self.stop_reason else ""
        return f"History({len(self)} steps, {len(self.grad_norms)} recorded leaves{last}{stop})"

    def matrix(self, kind: str = "grad_norms") -> tuple[list[str], np.ndarray]:
        """Per-layer values as one (n_layers, n_steps) array and its row labels.

        ``kind``: ``"grad_norms"`` or ``"update_ratios"``. A stacked leaf gives one row per depth
        index, labelled ``"blocks/W[3]"``; an ordinary leaf one row with its own label.
        """
        if kind not in ("grad_norms", "update_ratios"):
            raise ValueError(f"kind: expected 'grad_norms' or 'update_ratios', got {kind!r}")
        entries = getattr(self, kind)
        if not entries:
            raise ValueError(f"history: no per-layer {kind} were recorded (fit was called with record=False)")
        labels, rows = [], []
        for label, values in entries.items():
            if values.ndim == 1:
                labels.append(label)
                rows.append(values[None, :])
            else:
                labels.extend(f"{label}[{i}]" for i in range(values.shape[1]))
                rows.append(values.T)
        return labels, np.concatenate(rows, axis=0)


# --------------------------------------------------------------------------- validation


def _check_steps(steps: Any) -> int:
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)):
        raise TypeError(f"steps: expected a positive int, got {type(steps).__name__}")
    if steps <= 0:
        raise ValueError(f"steps: expected a positive int, got {steps}")
    return int(steps)


def _leaves(params: Any) -> list[tuple[str, Any]]:
    items = [(path_label(p) or "<root>", leaf) for p, leaf in jax.tree_util.tree_leaves_with_path(params)]
    if not items:
        raise ValueError("params: expected a pytree with at least one array leaf, found none")
    for label, leaf in items:
        dtype = getattr(leaf, "dtype", None)
        if dtype is None or not hasattr(leaf, "shape"):
            raise TypeError(f"params: leaf {label!r} is {type(leaf).__name__}; expected arrays (use jnp.asarray)")
        if not jnp.issubdtype(dtype, jnp.inexact):
            raise TypeError(
                f"params: leaf {label!r} has dtype {jnp.dtype(dtype).name}; gradients need floating-point parameters"
            )
    return items


def _stacked_mask(stacked: Any, items: list[tuple[str, Any]]) -> list[bool]:
    """Which leaves carry a leading depth axis; validates ``stacked`` and the depths."""
    labels = [label for label, _ in items]
    if stacked is True:
        mask = [True] * len(items)
    elif stacked is False or stacked is None:
        mask = [False] * len(items)
    else:
        prefixes = (stacked,) if isinstance(stacked, str) else stacked
        try:
            prefixes = tuple(prefixes)
        except TypeError:
            raise TypeError(f"stacked: expected True, or path prefixes such as ('blocks',), got {type(stacked).__name__}") from None
        for p in prefixes:
            if not isinstance(p, str):
                raise TypeError(f"stacked: every prefix must be a str such as 'blocks' or 'encoder/layers', got {p!r}")
        prefixes = tuple(p.strip("/") for p in prefixes)
        for p in prefixes:
            if not any(lab == p or lab.startswith(p + "/") for lab in labels):
                raise ValueError(f"stacked: prefix {p!r} matches no parameter; the leaves are {', '.join(labels)}")
        mask = [any(lab == p or lab.startswith(p + "/") for p in prefixes) for lab in labels]
    depths = {}
    for (label, leaf), is_stacked in zip(items, mask):
        if is_stacked:
            if leaf.ndim == 0:
                raise ValueError(f"stacked: leaf {label!r} is a scalar, but stacked leaves need a leading depth axis")
            depths[label] = leaf.shape[0]
    if len(set(depths.values())) > 1:
        detail = ", ".join(f"{k} has {v}" for k, v in depths.items())
        raise ValueError(f"stacked: the stacked leaves have different depths ({detail}); their leading axes must be equal")
    return mask


def _batches(data: Any, steps: int) -> Callable[[int], Any]:
    """``data`` as a function step -> batch (raising StopIteration when an iterable runs out)."""
    if data is None:
        raise TypeError("data: expected a function step -> batch, an iterable of batches or one batch, got None")
    if callable(data):
        return data
    leaves = jax.tree_util.tree_leaves(data)
    is_batch = not isinstance(data, list) and bool(leaves) and all(
        hasattr(x, "shape") and hasattr(x, "dtype") for x in leaves
    )
    if is_batch:  # one fixed batch (an array, a tuple / dict of arrays): full-batch training
        fixed = jax.device_put(data)
        return lambda step: fixed
    try:
        it = iter(data)
    except TypeError:
        raise TypeError(
            f"data: expected a function step -> batch, an iterable of batches or one batch (a pytree of arrays), "
            f"got {type(data).__name__}"
        ) from None
    return lambda step: next(it)


# --------------------------------------------------------------------------- the step


def _make_step(loss_fn: Callable, optimizer: optax.GradientTransformation, mask: list[bool], record: bool):
    extra = isinstance(optimizer, optax.GradientTransformationExtraArgs)

    def leaf_norms(tree):
        return [l2(x, axis=tuple(range(1, x.ndim))) if s else l2(x) for x, s in zip(jax.tree_util.tree_leaves(tree), mask)]

    def global_norm(norms):
        return jnp.sqrt(sum(jnp.sum(jnp.square(n)) for n in norms))

    def step(params, opt_state, alive, batch):
        loss, grads = jax.value_and_grad(loss_fn)(params, batch)
        if extra:  # e.g. line searches (optax.lbfgs) need the value and the function
            updates, new_state = optimizer.update(
                grads, opt_state, params, value=loss, grad=grads, value_fn=lambda p: loss_fn(p, batch)
            )
        else:
            updates, new_state = optimizer.update(grads, opt_state, params)
        new_params = optax.apply_updates(params, updates)
        g = leaf_norms(grads)
        u = leaf_norms(updates)
        gnorm, unorm = global_norm(g), global_norm(u)
        parts = [jnp.reshape(loss, (1,)), jnp.reshape(gnorm, (1,)), jnp.reshape(unorm, (1,))]
        if record:
            p = leaf_norms(params)
            parts += [jnp.ravel(n) for n in g] + [jnp.ravel(a / b) for a, b in zip(u, p)]
        dtype = jnp.result_type(*[x.dtype for x in parts])
        metrics = jnp.concatenate([x.astype(dtype) for x in parts])
        ok = alive & jnp.all(jnp.isfinite(metrics[:3]))
        keep = lambda new, old: jnp.where(ok, new, old)  # a non-finite step is not applied
        return jax.tree_util.tree_map(keep, new_params, params), jax.tree_util.tree_map(keep, new_state, opt_state), ok, metrics

    return jax.jit(step)


def _reason(row: np.ndarray, step: int) -> str:
    for name, value in zip(("loss", "gradient norm", "update norm"), row[:3]):
        if not np.isfinite(value):
            return f"{name} is {'NaN' if np.isnan(value) else ('inf' if value > 0 else '-inf')} at step {step}"
    return f"non-finite value at step {step}"  # not reached


# --------------------------------------------------------------------------- fit


def fit(
    loss_fn: Callable[[Any, Any], jax.Array],
    params: Any,
    optimizer: optax.GradientTransformation,
    data: Callable[[int], Any] | Iterable[Any] | Any,
    steps: int,
    *,
    stacked: Any = (),
    progress: bool = True,
    desc: str | None = None,
    record: bool = True,
) -> History:
    """Run ``steps`` optimizer steps of ``loss_fn(params, batch) -> scalar`` and record every one.

    ``optimizer``: any ``optax.GradientTransformation`` (clipping chained in with optax).
    ``data``: a function ``step -> batch``, an iterable of batches (a list counts as one), or one
    fixed batch (an array or a tuple / dict of arrays: full-batch training).
    ``stacked``: path prefixes (``("blocks",)``, ``("W", "b")``) or ``True`` (all leaves) whose
    leaves carry a leading depth axis of size L; they are recorded per depth index, (n, L).
    ``progress``: a tqdm bar with the current loss. ``record=False`` skips the per-layer metrics.
    Stops early at a non-finite loss / gradient / update (see ``History.stopped_at``) or when an
    iterable runs out of batches. Returns a ``History``.
    """
    if not callable(loss_fn):
        raise TypeError(f"loss_fn: expected a function (params, batch) -> scalar loss, got {type(loss_fn).__name__}")
    if not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(
            f"optimizer: expected an optax.GradientTransformation (e.g. optax.adam(1e-3), "
            f"optax.chain(optax.clip_by_global_norm(1.0), optax.sgd(0.1))), got {type(optimizer).__name__}"
        )
    steps = _check_steps(steps)
    items = _leaves(params)
    mask = _stacked_mask(stacked, items)
    get_batch = _batches(data, steps)

    try:
        first = get_batch(0)
    except StopIteration:
        raise ValueError("data: the iterable yields no batches") from None
    out = jax.eval_shape(loss_fn, params, first)
    if not hasattr(out, "shape") or out.shape != ():
        shape = getattr(out, "shape", type(out).__name__)
        raise ValueError(f"loss_fn: must return a scalar (shape ()), got {shape}; reduce it, e.g. with jnp.mean")
    if not jnp.issubdtype(out.dtype, jnp.floating):
        raise TypeError(f"loss_fn: must return a floating-point scalar, got dtype {jnp.dtype(out.dtype).name}")

    step_fn = _make_step(loss_fn, optimizer, mask, record)
    opt_state = optimizer.init(params)
    alive = jnp.asarray(True)

    from tqdm.auto import tqdm

    bar = tqdm(total=steps, desc=desc, disable=not progress, leave=True)
    pending: list[jax.Array] = []  # metric vectors still on the device
    rows: list[np.ndarray] = []  # fetched chunks
    n_fetched = 0
    stopped_at = stop_reason = None
    batch = first

    def fetch(upto: int) -> tuple[int, str] | None:
        """Move the metrics of steps < upto to the host; return (step, reason) of the first bad step."""
        nonlocal n_fetched
        start = n_fetched
        chunk = np.asarray(jnp.stack(pending[: upto - start]))
        del pending[: upto - start]
        rows.append(chunk)
        n_fetched = upto
        bad = np.flatnonzero(~np.all(np.isfinite(chunk[:, :3]), axis=1))
        if progress:
            last = chunk[bad[0] - 1, 0] if len(bad) and bad[0] > 0 else chunk[-1, 0] if not len(bad) else None
            if last is not None:
                bar.set_postfix(loss=f"{float(last):.4g}", refresh=False)
            bar.update((start + bad[0] if len(bad) else upto) - bar.n)
        return (start + int(bad[0]), _reason(chunk[bad[0]], start + int(bad[0]))) if len(bad) else None

    try:
        step = 0
        while True:
            params, opt_state, alive, metrics = step_fn(params, opt_state, alive, batch)
            pending.append(metrics)
            step += 1
            if step % _CHUNK == 0 and step >= 2 * _CHUNK:  # read one chunk late: the device never waits
                found = fetch(step - _CHUNK)
                if found:
                    stopped_at, stop_reason = found
                    break
            if step == steps:
                break
            try:
                batch = get_batch(step)
            except StopIteration:
                stopped_at, stop_reason = step, f"data ran out after {step} batches (steps={steps})"
                break
        if pending and (stop_reason is None or stopped_at == step):  # finished, or the data ran out
            found = fetch(step)
            if found:
                stopped_at, stop_reason = found
    finally:
        bar.close()

    table = np.concatenate(rows, axis=0)
    n = table.shape[0] if stopped_at is None else min(stopped_at, table.shape[0])
    table = table[:n]
    grad_norms, update_ratios = {}, {}
    if record:
        sizes = [leaf.shape[0] if s else 1 for (_, leaf), s in zip(items, mask)]
        offsets = np.cumsum([3] + sizes + sizes)
        for i, ((label, _), s) in enumerate(zip(items, mask)):
            g = table[:, offsets[i] : offsets[i + 1]]
            r = table[:, offsets[len(items) + i] : offsets[len(items) + i + 1]]
            grad_norms[label] = g if s else g[:, 0]
            update_ratios[label] = r if s else r[:, 0]
    return History(
        loss=table[:, 0].copy(),
        grad_norm=table[:, 1].copy(),
        update_norm=table[:, 2].copy(),
        grad_norms=grad_norms,
        update_ratios=update_ratios,
        params=params,
        opt_state=opt_state,
        stopped_at=stopped_at,
        stop_reason=stop_reason,
    )
