"""Train with any optax optimizer and record how the gradients behave, every step.

``fit(loss_fn, params, optimizer, data, steps)`` runs a jitted step that returns the loss, the new
parameters and optimizer state and every metric at once (no host round-trip per layer): the loss,
the global gradient norm ‖g‖ (= ``optax.global_norm`` of the raw gradients), the global update
norm ‖Δθ‖, and per leaf ("layer") the raw gradient norm ‖g_l‖ and the update-to-parameter ratio
‖Δθ_l‖ / ‖θ_l‖ (θ before the step, Δθ the optimizer's update: θ_new = θ + Δθ). Steps run in
compiled chunks of ``CHUNK`` (``lax.scan``): one dispatch and one transfer of the metrics to the
host per chunk, read one chunk late so the device never waits; recording everything costs about
as much as a bare jitted optax loop (``benchmarks/README.md``, figure 4, measured by ``benchmarks/run.py``).

Clipping is part of the optimizer, chained with optax, e.g.
``optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-3))``: the recorded gradient norms are
those of the raw (unclipped) gradients, the update norms those of what was applied.

Training stops cleanly at the first step whose loss, gradient norm or update norm is NaN or ±inf:
that step is not applied (the returned params are the last finite ones), the recorded arrays hold
the steps before it, and ``History.stopped_at`` / ``stop_reason`` say where and why.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .metrics import step_metrics  # noqa: F401  (public here too: gc.train.step_metrics, for your own loop)
from .norms import leaf_label
from .validate import positive_int, scalar_loss, stacked_depth

__all__ = ["History", "fit", "Runs", "fit_many"]

CHUNK = 10
"""Steps per compiled chunk (one dispatch, one host transfer of the metrics, one progress-bar update)."""


# --------------------------------------------------------------------------- the result


@dataclass(frozen=True, eq=False)
class History:
    """What ``fit`` recorded, one entry per step done (n = ``len(history)``), as host NumPy arrays.

    ``loss``, ``grad_norm`` (global ‖g‖ of the raw gradients), ``update_norm`` (global ‖Δθ‖): (n,).
    ``grad_norms`` / ``update_ratios``: label -> (n,) for an ordinary leaf, (n, L) for a stacked
    leaf (one column per depth index); empty when ``fit(..., record=False)``.
    ``params`` / ``opt_state``: after the last step applied; ``params`` is of the kind given to
    ``fit`` (a pytree, an Equinox module, a Flax NNX module). ``state``: the mutable state after the
    last step (``fit(state=...)``, or an NNX model's non-parameter state), else None. ``aux``: with
    ``has_aux=True``, the aux outputs of every step, stacked along a leading axis (n, ...).
    ``stopped_at``: the step (0-based) whose loss or gradients were not finite, else ``None``;
    ``stop_reason`` says what happened.
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
    state: Any = None
    aux: Any = None

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
    items = [(leaf_label(p), leaf) for p, leaf in jax.tree_util.tree_leaves_with_path(params)]
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
            raise TypeError(
                f"stacked: expected True, or path prefixes such as ('blocks',), got {type(stacked).__name__}"
            ) from None
        for p in prefixes:
            if not isinstance(p, str):
                raise TypeError(f"stacked: every prefix must be a str such as 'blocks' or 'encoder/layers', got {p!r}")
        prefixes = tuple(p.strip("/") for p in prefixes)
        for p in prefixes:
            if not any(lab == p or lab.startswith(p + "/") for lab in labels):
                raise ValueError(f"stacked: prefix {p!r} matches no parameter; the leaves are {', '.join(labels)}")
        mask = [any(lab == p or lab.startswith(p + "/") for p in prefixes) for lab in labels]
    stacked_leaves = {label: leaf for (label, leaf), is_stacked in zip(items, mask, strict=True) if is_stacked}
    if stacked_leaves:
        stacked_depth(stacked_leaves, "stacked")  # a leading depth axis on each, and the same depth
    return mask


def _fixed_batch(data: Any) -> bool:
    """True when ``data`` is one batch (an array or a tuple / dict / NamedTuple of arrays), not a list of them."""
    if isinstance(data, (list, Iterator)):
        return False
    leaves = jax.tree_util.tree_leaves(data)
    return bool(leaves) and all(hasattr(x, "shape") and hasattr(x, "dtype") for x in leaves)


def _batches(data: Any) -> Callable[[int], Any]:
    """``data`` (a function or an iterable) as a function step -> batch that raises StopIteration at the end."""
    if callable(data):
        return data
    try:
        it = iter(data)
    except TypeError:
        raise TypeError(
            f"data: expected a function step -> batch, an iterable of batches or one batch (a pytree of arrays), "
            f"got {type(data).__name__}"
        ) from None
    return lambda step: next(it)


def _signature(batch: Any) -> tuple:
    """Structure, shapes and dtypes of a batch: batches with equal signatures can be stacked."""
    leaves, treedef = jax.tree_util.tree_flatten(batch)
    return treedef, tuple((np.shape(x), x.dtype if hasattr(x, "dtype") else np.result_type(x)) for x in leaves)


# --------------------------------------------------------------------------- the step


def _sum_squares(x: jax.Array, stacked: bool) -> jax.Array:
    """Σ x² per depth index (shape (L,)) or over everything (shape (1,)), in float32 or wider.

    Reduces over axes without reshaping, so a sharded leaf keeps its sharding (a reshape of a sharded
    array is not always expressible: ``ShardingTypeError`` with Explicit mesh axes)."""
    if jnp.issubdtype(x.dtype, jnp.complexfloating):
        x = jnp.abs(x)
    x = x.astype(jnp.promote_types(x.dtype, jnp.float32))
    total = jnp.sum(x * x, axis=tuple(range(1 if stacked else 0, x.ndim)))
    return total if stacked else total[None]


def _make_step(inner: Callable, optimizer: optax.GradientTransformation, mask: list[bool], record: bool):
    """One training step, not jitted: (params, state, opt_state, alive, batch, valid) ->
    (params, state, opt_state, alive, metrics (M,), aux).

    ``inner(params, state, batch) -> (loss, (new_state, aux))`` (see ``_inner``).
    ``metrics`` is [loss, ‖g‖, ‖Δθ‖, ‖g_l‖ for every layer, ‖Δθ_l‖/‖θ_l‖ for every layer].
    The step is applied only while ``alive`` (no non-finite step yet) and ``valid`` (a bool: False
    for the padding of a last, shorter chunk).
    """
    extra = isinstance(optimizer, optax.GradientTransformationExtraArgs)

    def squares(tree):  # one vector: the per-layer Σx² of every leaf, in leaf order (cheap on CPU and GPU)
        return jnp.concatenate([_sum_squares(x, s) for x, s in zip(jax.tree_util.tree_leaves(tree), mask, strict=True)])

    def step(params, state, opt_state, alive, batch, valid):
        (loss, (new_mut, aux)), grads = jax.value_and_grad(inner, has_aux=True)(params, state, batch)
        if extra:  # e.g. line searches (optax.lbfgs) need the value and the function
            updates, new_state = optimizer.update(
                grads, opt_state, params, value=loss, grad=grads, value_fn=lambda p: inner(p, state, batch)[0]
            )
        else:
            updates, new_state = optimizer.update(grads, opt_state, params)
        new_params = optax.apply_updates(params, updates)
        g2, u2 = squares(grads), squares(updates)
        dtype = jnp.promote_types(g2.dtype, jnp.result_type(loss))
        parts = [jnp.reshape(loss, (1,)), jnp.sqrt(jnp.sum(g2, keepdims=True)), jnp.sqrt(jnp.sum(u2, keepdims=True))]
        if record:
            parts += [jnp.sqrt(g2), jnp.sqrt(u2 / squares(params))]
        metrics = jnp.concatenate([x.astype(dtype) for x in parts])
        ok = alive & valid & jnp.all(jnp.isfinite(metrics[:3]))
        keep = lambda new, old: jnp.where(ok, new, old)  # a non-finite step is not applied
        tm = jax.tree_util.tree_map
        return tm(keep, new_params, params), tm(keep, new_mut, state), tm(keep, new_state, opt_state), ok, metrics, aux

    return step


def _make_chunk(inner: Callable, optimizer: optax.GradientTransformation, mask: list[bool], record: bool):
    """A jitted run of k steps (``lax.scan``) -> (params, state, opt_state, alive, metrics (k, M), aux (k, ...)).

    Row t of ``metrics`` is ``_make_step``'s metrics of step t. A step is applied only while ``alive``
    and t < n_valid (the last chunk is padded to k steps so that it reuses the compiled function).
    """
    step = _make_step(inner, optimizer, mask, record)

    @functools.partial(jax.jit, static_argnames=("k",))
    def chunk(params, state, opt_state, alive, batches, n_valid, *, k, fixed=None):
        if batches is not None:  # a list of k batches, stacked here (no extra dispatch)
            batches = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *batches)

        def body(carry, xs):
            t, batch = xs
            p, mut, s, ok, m, aux = step(*carry, fixed if batch is None else batch, t < n_valid)
            return (p, mut, s, ok), (m, aux)

        carry = (params, state, opt_state, alive)
        (params, state, opt_state, alive), (metrics, aux) = jax.lax.scan(body, carry, (jnp.arange(k), batches))
        return params, state, opt_state, alive, metrics, aux

    return chunk


def _leaf_widths(items: list[tuple[str, Any]], mask: list[bool]) -> list[int]:
    """Columns per leaf in a metrics row: L for a stacked leaf (one per layer), else 1."""
    return [leaf.shape[0] if s else 1 for (_, leaf), s in zip(items, mask, strict=True)]


def _step_dict(row: np.ndarray, items: list, mask: list[bool], record: bool, aux: Any) -> dict[str, Any]:
    """One step's metrics row as the dict a ``fit`` callback receives."""
    out: dict[str, Any] = {"loss": float(row[0]), "grad_norm": float(row[1]), "update_norm": float(row[2])}
    if record:
        sizes = _leaf_widths(items, mask)
        offsets = np.cumsum([3] + sizes + sizes)
        for i, ((label, _), s) in enumerate(zip(items, mask, strict=True)):
            g = row[offsets[i] : offsets[i + 1]]
            r = row[offsets[len(items) + i] : offsets[len(items) + i + 1]]
            out[f"grad_norm/{label}"] = g if s else float(g[0])
            out[f"update_ratio/{label}"] = r if s else float(r[0])
    if aux is not None:
        out["aux"] = aux
    return out


def _reason(row: np.ndarray, step: int) -> str:
    """Which of loss, gradient norm, update norm is not finite (the caller found one in ``row[:3]``)."""
    name, value = next(
        (n, v) for n, v in zip(("loss", "gradient norm", "update norm"), row[:3], strict=True) if not np.isfinite(v)
    )
    return f"{name} is {'NaN' if np.isnan(value) else ('inf' if value > 0 else '-inf')} at step {step}"


def _kind(params: Any) -> str | None:
    """"equinox" / "nnx" for a module of those frameworks, None for a plain pytree (Linen: an error)."""
    names = [f"{c.__module__}.{c.__qualname__}" for c in type(params).__mro__]
    if any(n.startswith("equinox.") and n.endswith(".Module") for n in names):
        return "equinox"
    if any(n.startswith("flax.nnx.") and n.endswith(".Module") for n in names):
        return "nnx"
    if any(n.startswith("flax.linen.") and n.endswith(".Module") for n in names):
        raise TypeError(
            "params: a Flax Linen module holds no parameters; pass its variables (module.init(key, x)) and call "
            "module.apply(variables, ...) inside loss_fn"
        )
    return None


def _prepare(params: Any, state: Any) -> tuple[str | None, Any, Any, Callable, Callable]:
    """Split ``params`` into what is trained and the rest: (kind, trainable, state, model(p, s), finish(p, s)).

    Equinox: the floating-point arrays are trained (``eqx.partition(model, eqx.is_inexact_array)``); functions,
    Python scalars, integer arrays and PRNG keys stay as they are. Flax NNX: the ``nnx.Param`` variables are
    trained; the rest (batch statistics, RNG counts and keys) is the mutable state, carried from step to step.
    ``finish`` returns the trained model of the same kind (an NNX model is also updated in place).
    """
    kind = _kind(params)
    if kind == "equinox":
        import equinox as eqx

        trainable, static = eqx.partition(params, eqx.is_inexact_array)
        return kind, trainable, state, lambda p, s: eqx.combine(p, static), lambda p, s: eqx.combine(p, static)
    if kind == "nnx":
        from flax import nnx

        if state is not None:
            raise ValueError("state: an NNX model carries its own state (batch statistics, RNG counts); leave it None")
        graphdef, trainable, rest = nnx.split(params, nnx.Param, ...)
        original = params

        def finish(p, s):
            nnx.update(original, p, s)
            return original

        # copy=True: fresh Variables in the current trace (NNX forbids writing to one made at another trace level)
        return kind, trainable, rest, lambda p, s: nnx.merge(graphdef, p, s, copy=True), finish
    return None, params, state, lambda p, s: p, lambda p, s: p


def _inner(loss_fn: Callable, kind: str | None, model: Callable, has_aux: bool, with_state: bool) -> Callable:
    """``loss_fn`` as ``inner(params, state, batch) -> (loss, (new_state, aux))``, for every kind of model."""

    def inner(p, s, batch):
        m = model(p, s)
        if kind == "nnx":
            from flax import nnx

            out = loss_fn(m, batch)
            new_s = nnx.split(m, nnx.Param, ...)[2]  # the writes loss_fn made (batch statistics, RNG counts)
        elif with_state:
            out = loss_fn(m, s, batch)
            if not (isinstance(out, tuple) and len(out) == 2):
                raise ValueError("loss_fn: with state= it must return (loss, new_state) (or (loss, (new_state, aux)))")
            out, new_s = (out[0], out[1]) if not has_aux else ((out[0], out[1][1]), out[1][0])
        else:
            out, new_s = loss_fn(m, batch), s
        if has_aux:
            if not (isinstance(out, tuple) and len(out) == 2):
                raise ValueError(f"loss_fn: with has_aux=True it must return (loss, aux), got {type(out).__name__}")
            return out[0], (new_s, out[1])
        return out, (new_s, None)

    return inner


# --------------------------------------------------------------------------- fit


def _check_batch(inner: Callable, params: Any, state: Any, batch: Any, first: Any, step: int) -> None:
    """A batch whose shapes differ from the first batch's: run it only if the model takes it, else name the leaf."""
    try:
        jax.eval_shape(lambda p, s, b: inner(p, s, b)[0], params, state, batch)
    except (TypeError, ValueError) as e:
        was = {leaf_label(p): x for p, x in jax.tree_util.tree_leaves_with_path(first)}
        now = {leaf_label(p): x for p, x in jax.tree_util.tree_leaves_with_path(batch)}
        diff = [
            f"leaf {k!r} has shape {np.shape(x)} (the first batch's: {np.shape(was[k])})"
            for k, x in now.items()
            if k in was and np.shape(x) != np.shape(was[k])
        ]
        detail = diff[0] if diff else "its structure differs from the first batch's"
        first_line = (str(e).splitlines() or [type(e).__name__])[0]
        raise ValueError(f"data: the batch of step {step} does not fit the model: {detail}; {first_line}") from e


def _reraise_with_history(e: BaseException, history: History) -> None:
    """Re-raise ``e`` with the step it stopped at in the message and the partial History as ``e.history``."""
    note = f"fit stopped at step {history.stopped_at}: the completed steps are in this exception's .history"
    try:
        new = type(e)(f"{note}. {e}")
    except Exception:  # noqa: BLE001 - an exception type with another signature: keep it, add a note
        e.history = history
        e.add_note(note)
        raise e from None
    new.history = history
    raise new from e


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
    has_aux: bool = False,
    state: Any = None,
    opt_state: Any = None,
    callback: Callable[[int, dict[str, Any]], Any] | None = None,
    callback_every: int = 1,
) -> History:
    """Run ``steps`` optimizer steps of ``loss_fn(params, batch) -> scalar`` and record every one.

    ``params``: a pytree of arrays, an Equinox module (its floating-point arrays are trained; functions,
    Python scalars and PRNG keys are left alone) or a Flax NNX module (its ``nnx.Param`` variables
    are trained; batch statistics and RNG counts are carried as state). ``loss_fn`` takes the model
    of that kind. ``History.params`` is the trained model of the same kind; an NNX model is also
    updated in place. For Flax Linen pass the variables dict and call ``module.apply`` in ``loss_fn``.
    ``has_aux``: ``loss_fn`` returns ``(loss, aux)``; the aux of every step is in ``History.aux``.
    ``state``: a mutable state for a pytree or Equinox model (BatchNorm statistics, ``eqx.nn.State``):
    then ``loss_fn(params, state, batch)`` returns ``(loss, new_state)`` (with ``has_aux``:
    ``(loss, (new_state, aux))``); the final state is ``History.state``. ``opt_state``: resume from
    a previous ``History.opt_state`` instead of ``optimizer.init(params)``. ``callback(step, metrics)``:
    called on the host for every ``callback_every``-th step (step + 1 a multiple of it) with that
    step's loss, grad_norm, update_norm, per-layer values and aux; it runs as each compiled chunk's
    metrics arrive, one chunk (10 steps) behind the device.

    ``optimizer``: any ``optax.GradientTransformation`` (clipping chained in with optax).
    ``data``: a function ``step -> batch``, an iterable of batches (a list counts as one), or one
    fixed batch (an array or a tuple / dict of arrays: full-batch training).
    ``stacked``: path prefixes (``("blocks",)``, ``("W", "b")``) or ``True`` (all leaves) whose
    leaves carry a leading depth axis of size L; they are recorded per depth index, (n, L).
    ``progress``: a tqdm bar with the current loss. ``record=False`` skips the per-layer metrics.
    Stops early at a non-finite loss / gradient / update (see ``History.stopped_at``) or when an
    iterable runs out of batches. Returns a ``History``.

    Steps run in compiled chunks of up to 10 (``lax.scan``); batches are fetched a chunk ahead,
    so a function or iterable may be asked for up to 20 batches past a step that stops the run.
    """
    if not callable(loss_fn):
        raise TypeError(f"loss_fn: expected a function (params, batch) -> scalar loss, got {type(loss_fn).__name__}")
    if not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(
            f"optimizer: expected an optax.GradientTransformation (e.g. optax.adam(1e-3), "
            f"optax.chain(optax.clip_by_global_norm(1.0), optax.sgd(0.1))), got {type(optimizer).__name__}"
        )
    steps = _check_steps(steps)
    if not isinstance(has_aux, bool):
        raise TypeError(f"has_aux: expected True or False, got {type(has_aux).__name__}")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback: expected None or a function (step, metrics) -> None, got {type(callback).__name__}")
    every = _check_steps(callback_every) if callback is not None else 1
    with_state = state is not None
    kind, params, state, make_model, finish = _prepare(params, state)
    inner = _inner(loss_fn, kind, make_model, has_aux, with_state)
    items = _leaves(params)
    mask = _stacked_mask(stacked, items)
    if data is None:
        raise TypeError("data: expected a function step -> batch, an iterable of batches or one batch, got None")
    if (
        isinstance(data, list)
        and len(data) > 1
        and all(hasattr(x, "shape") for x in data)
        and len({tuple(np.shape(x)) for x in data}) > 1
    ):
        raise TypeError(
            "data: a list means a sequence of batches, one per step, but these arrays have different shapes "
            f"({', '.join(str(tuple(np.shape(x))) for x in data)}), as in [X, Y]; to train on one batch (X, Y) "
            "every step pass a tuple: data=(X, Y)"
        )
    fixed = jax.device_put(data) if not callable(data) and _fixed_batch(data) else None
    get_batch = None if fixed is not None else _batches(data)
    if fixed is None:
        try:
            first = get_batch(0)
        except StopIteration:
            raise ValueError("data: the iterable yields no batches") from None
    else:
        first = fixed
    try:
        out = jax.eval_shape(lambda p, s, b: inner(p, s, b)[0], params, state, first)
    except (TypeError, ValueError) as e:
        if isinstance(data, list):
            raise TypeError(
                f"data: a list means a sequence of batches, one per step, so step 0's batch is data[0] "
                f"({type(data[0]).__name__}); to train on one batch (X, Y) every step pass a tuple: data=(X, Y). "
                f"loss_fn on data[0] failed: {(str(e).splitlines() or [type(e).__name__])[0]}"
            ) from e
        raise
    scalar_loss(out, "loss_fn")
    first_sig = _signature(first)

    chunk = _make_chunk(inner, optimizer, mask, record)
    k = min(CHUNK, steps)
    if opt_state is None:
        opt_state = optimizer.init(params)
    elif jax.tree_util.tree_structure(opt_state) != jax.tree_util.tree_structure(optimizer.init(params)):
        raise ValueError(
            "opt_state: its structure does not match optimizer.init(params); pass the History.opt_state of a run "
            "with the same optimizer and parameters"
        )
    alive = jnp.asarray(True)

    from tqdm.auto import tqdm

    bar = tqdm(total=steps, desc=desc, disable=not progress, leave=True)
    rows: list[np.ndarray] = []  # metrics on the host, one array per chunk
    auxes: list[Any] = []  # aux outputs on the host, one pytree of (steps, ...) arrays per chunk
    pending: list[tuple[int, int, jax.Array, Any]] = []  # (first step, steps, metrics and aux on the device)
    stopped_at = stop_reason = None

    def read(first_step: int, n: int, metrics: jax.Array, aux: Any) -> bool:
        """Bring one chunk's metrics to the host; False (and stop info set) at a non-finite step."""
        nonlocal stopped_at, stop_reason
        m = np.asarray(metrics)[:n]
        bad = np.flatnonzero(~np.all(np.isfinite(m[:, :3]), axis=1))
        if len(bad):
            m = m[: bad[0]]
            stopped_at = first_step + int(bad[0])
            stop_reason = _reason(np.asarray(metrics)[bad[0]], stopped_at)
        rows.append(m)
        if has_aux:
            auxes.append(jax.tree_util.tree_map(lambda a: np.asarray(a)[: len(m)], aux))
        if callback is not None:
            for t in range(len(m)):
                if (first_step + t + 1) % every == 0:
                    aux_t = jax.tree_util.tree_map(lambda a, t=t: a[t], auxes[-1]) if has_aux else None
                    callback(first_step + t, _step_dict(m[t], items, mask, record, aux_t))
        if progress:
            if len(m):
                bar.set_postfix(loss=f"{float(m[-1, 0]):.4g}", refresh=False)
            bar.update(len(m))
        return not len(bad)

    def run(first_step: int, batches: Any, n: int, size: int) -> None:
        """Dispatch steps first_step ... first_step+n-1 as one compiled chunk of ``size`` steps."""
        nonlocal params, state, opt_state, alive
        params, state, opt_state, alive, metrics, aux = chunk(
            params, state, opt_state, alive, batches, jnp.asarray(n, jnp.int32), k=size, fixed=fixed
        )
        pending.append((first_step, n, metrics, aux))

    ran_out = False
    done = 0
    interrupted: BaseException | None = None
    fetch_error: BaseException | None = None
    try:
        while done < steps and not ran_out:
            n = min(k, steps - done)
            if fixed is not None:
                run(done, None, n, k)
            else:
                batches = []
                for i in range(done, done + n):
                    try:
                        b = first if i == 0 else get_batch(i)
                    except StopIteration:
                        ran_out = True
                        break
                    except BaseException as e:  # noqa: BLE001 - run the batches already fetched, then stop
                        fetch_error = e
                        break
                    if _signature(b) != first_sig:
                        _check_batch(inner, params, state, b, first, i)
                    batches.append(b)
                if not batches:
                    if fetch_error is not None:
                        raise fetch_error
                    break
                n = len(batches)
                if len({_signature(b) for b in batches}) == 1:  # pad the last chunk (padding is not applied)
                    run(done, batches + [batches[-1]] * (k - n), n, k)
                else:  # batches of different shapes or structures: one step at a time
                    for i, b in enumerate(batches):
                        run(done + i, [b], 1, 1)
            done += n
            while len(pending) > 1:  # read one chunk late: the device never waits for the host
                if not read(*pending.pop(0)):
                    break
            if fetch_error is not None:
                raise fetch_error
            if stop_reason is not None:
                break
        while pending and stop_reason is None:
            read(*pending.pop(0))
        if ran_out and stop_reason is None:
            stopped_at, stop_reason = done, f"data ran out after {done} batches (steps={steps})"
    except BaseException as e:  # noqa: BLE001 - keep the completed steps, whatever stopped the run
        interrupted = e
        try:  # every dispatched chunk has updated params: bring its metrics in so they match
            while pending:
                read(*pending.pop(0))
        except BaseException:  # noqa: BLE001
            pending.clear()
        n_done = sum(len(r) for r in rows)
        if stop_reason is None or stopped_at is None or stopped_at > n_done:
            stopped_at = n_done
            kind_e = "interrupted (KeyboardInterrupt)" if isinstance(e, KeyboardInterrupt) else type(e).__name__
            stop_reason = f"{kind_e} at step {n_done}; History holds steps 0 ... {n_done - 1}"
    finally:
        bar.close()

    sizes = _leaf_widths(items, mask)
    width = 3 + (2 * sum(sizes) if record else 0)
    table = np.concatenate(rows, axis=0) if rows else np.zeros((0, width), np.float32)
    grad_norms, update_ratios = {}, {}
    if record:
        offsets = np.cumsum([3] + sizes + sizes)
        for i, ((label, _), s) in enumerate(zip(items, mask, strict=True)):
            g = table[:, offsets[i] : offsets[i + 1]]
            r = table[:, offsets[len(items) + i] : offsets[len(items) + i + 1]]
            grad_norms[label] = g if s else g[:, 0]
            update_ratios[label] = r if s else r[:, 0]
    history = History(
        loss=table[:, 0].copy(),
        grad_norm=table[:, 1].copy(),
        update_norm=table[:, 2].copy(),
        grad_norms=grad_norms,
        update_ratios=update_ratios,
        params=finish(params, state),
        opt_state=opt_state,
        stopped_at=stopped_at,
        stop_reason=stop_reason,
        state=state if (with_state or kind == "nnx") else None,
        aux=jax.tree_util.tree_map(lambda *a: np.concatenate(a), *auxes) if has_aux and auxes else None,
    )
    if interrupted is None or isinstance(interrupted, KeyboardInterrupt):
        return history  # a kernel interrupt stops the run cleanly: the completed steps come back
    _reraise_with_history(interrupted, history)


# --------------------------------------------------------------------------- several runs in one program


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none (macOS, Windows, musl)."""
    import ctypes
    import ctypes.util

    try:
        return getattr(ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6"), "malloc_trim", None)
    except OSError:
        return None


def _trim_heap() -> None:
    """Hand the C heap's free pages back to the operating system (glibc; elsewhere a no-op).

    Why: each thread that ``fit_many(workers=N)`` starts allocates from its own glibc arena, and
    memory freed in one arena (XLA's compilation scratch, in the caller's) is not reused by
    another, so a kernel's resident memory would carry that scratch on top of the threads' working
    memory. Trimming before and after compiling and at the end of every ``fit_many`` call returns what
    was freed: notebook 09's kernel held 711 instead of 904 MiB after its training cell (cold cache).
    ``clipping.train_seeds`` trims around its one large compile too: notebook 07's kernel held 547 instead of
    903 MiB after its training cell (cold cache), and a later cell's compile no longer stacks on that scratch
    (one cold 1-core run had peaked at 1023 MiB). No Python or maintained library exposes this; ``ctypes``
    calls the C library's own function.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@jax.jit
def _split_runs(tree: Any, index: jax.Array) -> list:
    """index (G, S) int: G pytrees whose leaves hold runs index[g] (one program, not one per leaf)."""
    return [jax.tree_util.tree_map(lambda x, i=i: x[i], tree) for i in index]


@functools.partial(jax.jit, static_argnums=1)
def _merge_runs(trees: list, sizes: tuple[int, ...]) -> Any:
    """The first sizes[g] runs of each group's pytree, concatenated along the run axis."""
    return jax.tree_util.tree_map(lambda *xs: jnp.concatenate([x[:n] for x, n in zip(xs, sizes, strict=True)]), *trees)


@jax.jit
def _take_run(tree: Any, i: jax.Array) -> Any:
    """Run i of every leaf (leading run axis): one program for any i, not one per leaf shape and index."""
    return jax.tree_util.tree_map(lambda x: x[i], tree)


@dataclass(frozen=True, eq=False)
class Runs:
    """What ``fit_many`` recorded for R runs × n steps, as host NumPy arrays (leading axis: the run).

    ``loss``, ``grad_norm``, ``update_norm``: (R, n); ``grad_norms`` / ``update_ratios``: label ->
    (R, n) or (R, n, L) for a stacked leaf; ``probes``: the ``probe`` outputs, each leaf (R, n, ...)
    (``None`` without a probe). Entries after a run's first non-finite step are NaN.
    ``params`` / ``opt_state``: the final ones, stacked along the run axis. ``stopped_at``: (R,) the
    step where each run stopped (its loss, gradient or update was not finite), -1 if it did not.
    ``run(i)`` is run i as a ``History``, exactly what ``fit`` would have recorded.
    ``interrupted``: ``None``, or why the whole call stopped early (a ``KeyboardInterrupt``): every
    array then holds the n completed steps, and ``params`` / ``opt_state`` are those after step n - 1.
    """

    loss: np.ndarray
    grad_norm: np.ndarray
    update_norm: np.ndarray
    grad_norms: dict[str, np.ndarray]
    update_ratios: dict[str, np.ndarray]
    probes: Any
    params: Any
    opt_state: Any
    stopped_at: np.ndarray
    interrupted: str | None = None

    def __len__(self) -> int:
        return int(self.loss.shape[0])

    def run(self, i: int) -> History:
        """Run ``i`` as a ``History`` (its steps up to where it stopped)."""
        n = self.loss.shape[1] if self.stopped_at[i] < 0 else int(self.stopped_at[i])
        stop = None if self.stopped_at[i] < 0 else int(self.stopped_at[i])
        reason = None if stop is None else _reason(
            np.array([self.loss[i, stop], self.grad_norm[i, stop], self.update_norm[i, stop]]), stop)
        if stop is None and self.interrupted is not None:  # the call was interrupted after n steps
            stop, reason = n, self.interrupted
        params, opt_state = _take_run((self.params, self.opt_state), i)
        return History(
            loss=self.loss[i, :n], grad_norm=self.grad_norm[i, :n], update_norm=self.update_norm[i, :n],
            grad_norms={k: v[i, :n] for k, v in self.grad_norms.items()},
            update_ratios={k: v[i, :n] for k, v in self.update_ratios.items()},
            params=params, opt_state=opt_state, stopped_at=stop, stop_reason=reason,
        )


def fit_many(
    loss_fn: Callable[[Any, Any], jax.Array],
    params: Any,
    optimizer: optax.GradientTransformation,
    data: Callable[[int], Any] | Any,
    steps: int,
    *,
    hyperparams: dict[str, Any] | None = None,
    probe: Callable[[Any, Any], Any] | None = None,
    stacked: Any = (),
    progress: bool = True,
    desc: str | None = None,
    record: bool = True,
    workers: int = 1,
) -> Runs:
    """R runs of ``fit`` in one compiled program: ``fit``'s step, ``jax.vmap``-ed over the runs.

    ``params``: a pytree whose leaves carry a leading run axis of size R (e.g. ``jax.vmap(init)``
    over R keys, or ``jax.tree_util.tree_map(lambda *x: jnp.stack(x), *params_list)``).
    ``hyperparams``: name -> (R,) values, one per run, for an optimizer built with
    ``optax.inject_hyperparams`` (e.g. ``{"learning_rate": [1e-2, 1e-1]}``); a per-step schedule is
    a hyperparameter of a factory such as ``lambda learning_rate, warmup: optax.adam(schedule)``.
    ``data``: one batch or a function ``step -> batch`` (no iterables), the same batch for every run.
    ``probe(params, batch) -> pytree``: recorded per run and step on the parameters *before* the
    step (e.g. the largest attention logit). ``stacked``, ``progress``, ``desc``, ``record``: as in
    ``fit``. Like ``fit``, a run stops at its first non-finite loss, gradient or update (that step
    is not applied); the other runs go on. Returns ``Runs``; ``runs.run(i)`` equals ``fit`` on run i.
    A ``KeyboardInterrupt`` (the kernel's stop button) ends the call cleanly: the completed steps come
    back, with ``Runs.interrupted`` saying so.

    ``workers``: cut the runs into this many groups (runs 0 … R/w - 1, then the next, …; padded with a
    copy of a group's last run to equal size, so one compiled program serves every group) and advance
    the groups side by side on as many threads. A program of small matrix products keeps about one CPU
    core busy, and JAX releases Python's lock while it runs, so on a machine with ``workers`` cores this
    is up to ``workers`` times faster (notebook 10: 2 workers on 2 cores, ~1.6x). On one core it only
    adds the padding. The groups are vmapped over fewer runs, which changes XLA's program and so the
    float32 rounding: a run's numbers differ from ``workers=1`` at the level of rounding, which a
    chaotic training run can amplify. Fix ``workers`` in your code rather than deriving it from the
    machine's core count, so that every machine computes the same numbers.

    Example: four learning rates, two groups of two runs side by side.

    >>> import jax, jax.numpy as jnp, optax
    >>> import gradcourse as gc
    >>> keys = jax.random.split(jax.random.PRNGKey(0), 4)
    >>> params = {"w": jax.vmap(lambda k: jax.random.normal(k, (3,)))(keys)}  # (R, 3): R = 4 runs
    >>> loss = lambda p, x: jnp.mean((x @ p["w"] - 1.0) ** 2)
    >>> opt = optax.inject_hyperparams(optax.sgd)(learning_rate=0.0)
    >>> runs = gc.train.fit_many(loss, params, opt, jnp.ones((8, 3)), 20, progress=False, workers=2,
    ...                          hyperparams={"learning_rate": [0.01, 0.03, 0.1, 0.3]})
    >>> runs.loss.shape, runs.params["w"].shape, runs.stopped_at.tolist()
    ((4, 20), (4, 3), [-1, -1, -1, -1])
    >>> bool(runs.loss[3, -1] < runs.loss[0, -1] < runs.loss[0, 0])  # every run learns; the largest rate got furthest
    True
    """
    if not callable(loss_fn):
        raise TypeError(f"loss_fn: expected a function (params, batch) -> scalar loss, got {type(loss_fn).__name__}")
    if not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(f"optimizer: expected an optax.GradientTransformation, got {type(optimizer).__name__}")
    steps = _check_steps(steps)
    sizes = {np.shape(x)[0] if np.ndim(x) else None for x in jax.tree_util.tree_leaves(params)}
    if len(sizes) != 1 or None in sizes:
        raise ValueError(f"params: every leaf needs the same leading run axis (R, ...), got leading sizes {sizes}")
    R = sizes.pop()
    workers = positive_int(workers, "workers")
    if workers > R:
        raise ValueError(f"workers: at most one worker per run, and there are R = {R} runs; got workers={workers}")
    one = jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(np.shape(x)[1:], x.dtype), params)  # one run's shapes
    items = _leaves(one)
    mask = _stacked_mask(stacked, items)
    get_batch = data if callable(data) else (lambda step: data)
    first = get_batch(0)
    scalar_loss(jax.eval_shape(loss_fn, one, first), "loss_fn")
    opt_state = jax.jit(jax.vmap(optimizer.init))(params)  # one program, not one per leaf and operation
    for name, value in (hyperparams or {}).items():
        table = getattr(opt_state, "hyperparams", None)
        if not isinstance(table, dict) or name not in table:
            raise ValueError(
                f"hyperparams: {name!r} is not a hyperparameter of the optimizer; build it with "
                f"optax.inject_hyperparams(...)(..., {name}=...)"
            )
        value = jnp.asarray(value, table[name].dtype)
        if value.shape != (R,):
            raise ValueError(f"hyperparams: {name!r} needs one value per run, shape ({R},), got {value.shape}")
        table[name] = value

    step = _make_step(lambda p, _, b: (loss_fn(p, b), (None, None)), optimizer, mask, record)

    def one_step(p, s, a, b, valid):  # fit's step (no model state, no aux); traced once, straight into the vmap
        p, _, s, a, m, _ = step(p, None, s, a, b, valid > 0)
        return p, s, a, m

    def body(carry, inp):
        (p, s, alive), (batch, valid) = carry, inp
        extra = None if probe is None else jax.vmap(probe, in_axes=(0, None))(p, batch)
        p, s, alive, m = jax.vmap(one_step, in_axes=(0, 0, 0, None, None))(p, s, alive, batch, valid)
        return (p, s, alive), (m, extra)

    run_chunk = jax.jit(lambda carry, batches: jax.lax.scan(body, carry, batches))
    carry = (params, opt_state, jnp.ones((R,), bool))
    groups = np.array_split(np.arange(R), workers)  # contiguous; sizes differ by at most one
    size = len(groups[0])
    padded = [np.concatenate([g, np.repeat(g[-1:], size - len(g))]) for g in groups]  # equal sizes: one program
    carries = _split_runs(carry, np.stack(padded)) if workers > 1 else [carry]

    compiled: dict[Any, Callable] = {}  # input signature -> the groups' one program, compiled before the threads

    def program(inputs: Any) -> Callable:
        """Compile here, once per input signature: threads missing jit's cache together would each compile."""
        sig = str(jax.tree_util.tree_map(lambda x: (np.shape(x), np.result_type(x).str), inputs))
        if sig not in compiled:
            compiled[sig] = run_chunk.lower(carries[0], inputs).compile()
            _trim_heap()  # the compiler's freed scratch: back to the system before the threads start
        return compiled[sig]

    def advance(g: int, inputs: Any, run: Callable) -> tuple[Any, Any]:
        """One chunk of group g, waited for in this thread (JAX releases Python's lock while it runs)."""
        new_carry, out = run(carries[g], inputs)
        return new_carry, jax.tree_util.tree_map(np.asarray, out)

    def unpad(outs: list) -> Any:  # host arrays (steps, runs, ...) of the groups side by side, padding dropped
        return jax.tree_util.tree_map(
            lambda *xs: np.concatenate([x[:, : len(g)] for x, g in zip(xs, groups, strict=True)], axis=1), *outs)

    k = min(CHUNK, steps)
    rows, extras = [], []
    interrupted = None
    from tqdm.auto import tqdm

    _trim_heap()  # what earlier cells freed but the C heap still holds: not under this call's compile
    pool = ThreadPoolExecutor(workers - 1) if workers > 1 else None  # group 0 runs in the calling thread
    with tqdm(total=steps, desc=desc, disable=not progress, leave=True) as bar:
        try:
            for start in range(0, steps, k):
                n = min(k, steps - start)
                batches = [first if t == 0 else get_batch(t) for t in range(start, start + n)]
                batches = jax.tree_util.tree_map(lambda *xs: np.stack(xs), *(batches + [batches[-1]] * (k - n)))
                valid = (np.arange(k) < n).astype(np.int32)  # the last chunk is padded; padding is not applied
                inputs = (batches, valid)
                if pool is None:
                    done = [advance(0, inputs, run_chunk)]
                else:
                    run = program(inputs)
                    others = [pool.submit(advance, g, inputs, run) for g in range(1, workers)]
                    done = [advance(0, inputs, run)] + [f.result() for f in others]  # group 0 in this thread
                carries = [c for c, _ in done]  # only a finished round moves the parameters on
                m, extra = unpad([o for _, o in done])
                rows.append(m[:n])
                extras.append(jax.tree_util.tree_map(lambda x, n=n: x[:n], extra))
                bar.update(n)
        except KeyboardInterrupt:  # the kernel's stop button: keep the completed steps
            n_run = sum(len(r) for r in rows)
            interrupted = f"interrupted (KeyboardInterrupt) at step {n_run}; Runs hold steps 0 ... {n_run - 1}"
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
            _trim_heap()  # what compiling and training freed goes back to the system, not into the next cell's peak
    carry = _merge_runs(carries, tuple(len(g) for g in groups)) if workers > 1 else carries[0]
    widths = _leaf_widths(items, mask)
    width = 3 + (2 * sum(widths) if record else 0)
    table = np.concatenate(rows, axis=0).transpose(1, 0, 2) if rows else np.zeros((R, 0, width), np.float32)
    bad = ~np.all(np.isfinite(table[:, :, :3]), axis=2)
    stopped_at = np.where(bad.any(axis=1), bad.argmax(axis=1), -1) if bad.size else np.full(R, -1)
    n_done = table.shape[1]  # = steps unless interrupted
    dead = np.arange(n_done)[None, :] > np.where(stopped_at < 0, n_done, stopped_at)[:, None]  # (R, n_done)
    table = np.where(dead[:, :, None], np.nan, table)
    probes = None
    if probe is not None and extras:  # (None if interrupted before the first chunk finished)
        probes = jax.tree_util.tree_map(lambda *xs: np.concatenate(xs, axis=0), *extras)
        probes = jax.tree_util.tree_map(
            lambda x: np.where(dead.T.reshape(dead.T.shape + (1,) * (x.ndim - 2)), np.nan, x).swapaxes(0, 1), probes
        )
    grad_norms, update_ratios = {}, {}
    if record:
        offsets = np.cumsum([3] + widths + widths)
        for i, ((label, _), s) in enumerate(zip(items, mask, strict=True)):
            g = table[:, :, offsets[i] : offsets[i + 1]]
            u = table[:, :, offsets[len(items) + i] : offsets[len(items) + i + 1]]
            grad_norms[label] = g if s else g[:, :, 0]
            update_ratios[label] = u if s else u[:, :, 0]
    return Runs(
        loss=table[:, :, 0], grad_norm=table[:, :, 1], update_norm=table[:, :, 2], grad_norms=grad_norms,
        update_ratios=update_ratios, probes=probes, params=carry[0], opt_state=carry[1], stopped_at=stopped_at,
        interrupted=interrupted,
    )
