"""``gc.capture``: activations and backward signals at every tap and every submodule call, in one pass (core layer).

``capture(fn, *args, model=None, where=None, **kwargs)`` runs ``fn(*args, **kwargs)`` once forward
and once backward and returns a ``Capture`` whose ``acts[name]`` is the value h at each point and
``grads[name]`` is ∂value/∂h there. The points are

* every ``gc.tap(h, name)`` that runs inside ``fn`` (plain JAX, any framework), and
* with ``model=`` an Equinox module, a Flax NNX module or a Flax Linen module: every call of one of
  its submodules inside ``fn``, named by the module path (``layers/3``, ``blocks/2/attn``; Linen:
  its scope path, ``Block_3/Dense_0``), kept when ``where(path, module)`` is true.

How submodule calls are intercepted, without editing the model's code:

* Flax Linen: ``flax.linen.intercept_methods`` (Linen's own hook) sees every ``__call__`` of a bound
  module; the output of a module whose scope path is not the root is tapped.
* Flax NNX and Equinox: the model's submodules and their paths are listed first
  (``nnx.iter_modules``; for Equinox a walk of the pytree with ``jax.tree_util`` key paths that
  stops at every ``eqx.Module``). While ``fn`` runs, the ``__call__`` of each submodule's class is
  replaced by a wrapper that taps the output when ``self`` is one of those submodule objects (by
  identity), and restored afterwards, even on error. So ``fn`` must call the same objects that are
  in ``model`` (pass ``model`` itself, also inside ``jit``: ``eqx.filter_jit(lambda m, x:
  gc.capture(loss, m, x, model=m))``); a model rebuilt inside ``fn`` (``eqx.combine``,
  ``nnx.merge``) is not seen, and the capture says so. A submodule called twice gets ``path@1``,
  ``path@2`` ... for the later calls; a module whose output is a tuple is tapped per array leaf
  (``path/0``, ``path/1``).

The gradients come from zero perturbations (see ``gradcourse.tap``): a first, abstract run
(``jax.eval_shape``, no computation) finds the names, shapes, dtypes and shardings of the taps; the
perturbations are zeros of exactly that type (so a sharded activation gets a sharded perturbation
and a sharded ∂L/∂h), and ``jax.value_and_grad`` with respect to them gives every backward signal
in one reverse pass, like ``jax.grad``. Wrap a capture in ``jax.jit`` for speed (``Capture`` is a
pytree); eagerly it runs op by op.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

from .norms import l2, path_label
from .tap import _current, _Frame, _frame, _lifting, _Plan, _taken

__all__ = ["Capture", "capture", "jacobian_between", "model_kind", "submodules"]

ModelKind = Literal["equinox", "nnx", "linen"]
Where = Callable[[str, Any], bool]


# --------------------------------------------------------------------------- the result


@jax.tree_util.register_pytree_node_class
@dataclass(eq=False)
class Capture:
    """What ``gc.capture`` recorded. A pytree, so a capture can be returned from ``jax.jit``.

    ``value``: the output of ``fn`` (without aux). ``aux``: the aux output with ``has_aux=True``, else None.
    ``acts``: name -> h at that point, in execution order (a tap in a scan body / vmapped function:
    stacked along a leading axis). ``grads``: name -> ∂value/∂h (same shapes), or None when no
    gradients were taken (``grads=False`` or a non-scalar ``fn``). ``axes``: name -> the leading axes added
    by ``lax.scan`` / ``vmap`` around the point, outermost first (``("scan",)``: axis 0 is the iteration);
    absent for a point outside them. ``kinds``: name -> ``"tap"``
    (a ``gc.tap``) or ``"module"`` (a submodule call).
    """

    value: Any
    acts: dict[str, Any]
    grads: dict[str, Any] | None = None
    aux: Any = None
    kinds: dict[str, str] = field(default_factory=dict)
    axes: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        """The captured points, in execution order."""
        return list(self.acts)

    def act_norms(self) -> dict[str, jax.Array]:
        """‖h‖ at every point (all entries together), name -> scalar."""
        return {k: l2(v) for k, v in self.acts.items()}

    def grad_norms(self) -> dict[str, jax.Array]:
        """‖∂value/∂h‖ at every point: the backward signal of ``gc.backward``, name -> scalar."""
        if self.grads is None:
            raise ValueError("capture: no gradients were taken; capture a scalar fn (a loss) with grads=None or True")
        return {k: l2(v) for k, v in self.grads.items()}

    def __repr__(self) -> str:
        rows = [f"  {k}: {tuple(np.shape(v))} ({self.kinds.get(k, 'tap')})" for k, v in self.acts.items()]
        g = "with" if self.grads is not None else "without"
        return f"Capture({len(self.acts)} points, {g} gradients\n" + "\n".join(rows) + "\n)"

    def tree_flatten(self):
        names = tuple(self.acts)
        has_g = self.grads is not None
        gvals = tuple(self.grads.get(k) for k in names) if has_g else ()
        kinds = tuple(self.kinds.get(k, "tap") for k in names)
        axes = tuple(self.axes.get(k, ()) for k in names)
        return (self.value, tuple(self.acts.values()), gvals, self.aux), (names, has_g, kinds, axes)

    @classmethod
    def tree_unflatten(cls, meta, children):
        names, has_g, kinds, axes = meta
        value, acts, gvals, aux = children
        grads = {k: g for k, g in zip(names, gvals, strict=True) if g is not None} if has_g else None
        lifted = {k: a for k, a in zip(names, axes, strict=True) if a}
        return cls(value, dict(zip(names, acts, strict=True)), grads, aux, dict(zip(names, kinds, strict=True)), lifted)


# --------------------------------------------------------------------------- model kinds


def _mro_modules(obj: Any) -> list[str]:
    return [f"{c.__module__}.{c.__qualname__}" for c in type(obj).__mro__]


def model_kind(model: Any) -> ModelKind:
    """``"equinox"``, ``"nnx"`` or ``"linen"`` for a module of that framework; a TypeError otherwise."""
    names = _mro_modules(model)
    if any(n.startswith("equinox.") and n.endswith(".Module") for n in names):
        return "equinox"
    if any(n.startswith("flax.nnx.") and n.endswith(".Module") for n in names):
        return "nnx"
    if any(n.startswith("flax.linen.") and n.endswith(".Module") for n in names):
        return "linen"
    hint = ""
    if isinstance(model, (list, tuple)) or type(model).__name__ == "Stacked":
        hint = " (a list of layer functions or gc.Stacked goes to gc.forward / gc.backward, or add gc.tap to it)"
    elif callable(model):
        hint = " (for a plain JAX function, mark points with gc.tap(h, name) inside it and leave model=None)"
    raise TypeError(
        f"model: expected an Equinox module, a Flax NNX module or a Flax Linen module, got {type(model).__name__}{hint}"
    )


def _equinox_submodules(model: Any) -> list[tuple[str, Any]]:
    import equinox as eqx

    out: list[tuple[str, Any]] = []
    seen: set[int] = set()

    def walk(node: Any, prefix: str) -> None:
        leaves = jax.tree_util.tree_leaves_with_path(
            node, is_leaf=lambda x: x is not node and isinstance(x, eqx.Module)
        )
        for path, leaf in leaves:
            if isinstance(leaf, eqx.Module) and leaf is not node and id(leaf) not in seen:
                seen.add(id(leaf))
                label = "/".join(p for p in (prefix, path_label(path)) if p)
                out.append((label, leaf))
                walk(leaf, label)

    walk(model, "")
    return out


def submodules(model: Any) -> list[tuple[str, Any]]:
    """(path, module) for every submodule of an Equinox or Flax NNX ``model`` (not the root), in tree order.

    Paths are ``/``-joined attribute names and list indices (``blocks/2/attn``). A Linen module has
    no submodule objects before it is applied; its calls are named by scope path during a capture.
    """
    kind = model_kind(model)
    if kind == "equinox":
        return _equinox_submodules(model)
    if kind == "nnx":
        from flax import nnx

        return [("/".join(str(p) for p in path), m) for path, m in nnx.iter_modules(model) if path]
    raise TypeError("model: a Flax Linen module has no submodule objects until applied; use gc.capture(model=...)")


# --------------------------------------------------------------------------- interception


def _tap_output(out: Any, label: str) -> Any:
    """Record a submodule's output (each floating array leaf) in the current capture frame."""
    frame = _current()
    if frame is None:
        return out
    leaves = jax.tree_util.tree_leaves_with_path(out)
    single = len(leaves) == 1 and not leaves[0][0]
    first = "" if single or not leaves else "/" + path_label(leaves[0][0])
    base, k = label, 0
    while _taken(base + first):  # the same submodule called again: path@1, path@2, ...
        k += 1
        base = f"{label}@{k}"
    if single:
        return frame.record(base, out, "module") if _floating(out) else out

    def one(path, leaf):
        return frame.record(f"{base}/{path_label(path)}", leaf, "module") if _floating(leaf) else leaf

    return jax.tree_util.tree_map_with_path(one, out)


def _floating(x: Any) -> bool:
    return hasattr(x, "dtype") and hasattr(x, "shape") and jnp.issubdtype(x.dtype, jnp.inexact)


_MISSING = object()


@contextlib.contextmanager
def _class_hooks(mods: list[tuple[str, Any]], where: Where | None, called: list[str]):
    """Wrap ``__call__`` of every submodule class; tap when ``self`` is one of ``mods`` (by identity)."""
    labels = {id(m): lab for lab, m in mods}
    keep = {id(m): (where is None or bool(where(lab, m))) for lab, m in mods}
    active: set[int] = set()
    saved: list[tuple[type, Any]] = []

    def make(inherited: Callable) -> Callable:
        def __call__(self, *args, **kwargs):
            i = id(self)
            if i not in labels or i in active or _current() is None:
                return inherited(self, *args, **kwargs)
            active.add(i)
            try:
                out = inherited(self, *args, **kwargs)
            finally:
                active.discard(i)
            called.append(labels[i])
            return _tap_output(out, labels[i]) if keep[i] else out

        __call__.__wrapped__ = inherited
        __call__._gradcourse_hook = True
        return __call__

    try:
        for cls in {type(m) for _, m in mods}:
            saved.append((cls, cls.__dict__.get("__call__", _MISSING)))
            cls.__call__ = make(cls.__call__)
        yield
    finally:
        for cls, orig in reversed(saved):
            if orig is _MISSING:
                delattr(cls, "__call__")
            else:
                cls.__call__ = orig


@contextlib.contextmanager
def _linen_hooks(where: Where | None, called: list[str]):
    import flax.linen as nn

    def interceptor(next_fun, args, kwargs, context):
        module = context.module
        path = tuple(getattr(module, "path", ()) or ())
        if context.method_name != "__call__" or not path or _current() is None:
            return next_fun(*args, **kwargs)
        label = "/".join(str(p) for p in path)
        out = next_fun(*args, **kwargs)
        called.append(label)
        return _tap_output(out, label) if where is None or where(label, module) else out

    with nn.intercept_methods(interceptor):
        yield


def _hooks(model: Any, kind: ModelKind | None, mods: list | None, where: Where | None, called: list[str]):
    if kind is None:
        return contextlib.nullcontext()
    if kind == "linen":
        return _linen_hooks(where, called)
    return _class_hooks(mods, where, called)


# --------------------------------------------------------------------------- capture


def _zeros(spec: Any) -> jax.Array:
    """Zeros of the type of ``spec`` (shape, dtype and, when known, sharding)."""
    sharding = getattr(spec, "sharding", None)
    if sharding is not None:
        try:
            return jnp.zeros(spec.shape, spec.dtype, out_sharding=sharding)
        except (TypeError, ValueError):
            pass
    return jnp.zeros(spec.shape, spec.dtype)


def capture(
    fn: Callable[..., Any],
    *args: Any,
    model: Any = None,
    where: Where | None = None,
    has_aux: bool = False,
    grads: bool | None = None,
    **kwargs: Any,
) -> Capture:
    """Run ``fn(*args, **kwargs)`` and record the value and, for a scalar ``fn``, ∂value/∂h at every point.

    Points: every ``gc.tap(h, name)`` inside ``fn``; with ``model=`` (an Equinox, Flax NNX or Flax
    Linen module that ``fn`` calls) every submodule call too, named by its path and kept when
    ``where(path, module)`` returns True (e.g. ``where=lambda p, m: p.count("/") == 1`` for the
    blocks of ``blocks/3``). ``has_aux``: ``fn`` returns ``(scalar, aux)``. ``grads``: None (take
    gradients when ``fn`` returns a floating scalar), True (require them) or False (forward only).

    Returns a ``Capture`` with ``value``, ``aux``, ``acts`` and ``grads`` (ordered dicts: name ->
    array, execution order). Costs one abstract trace plus one forward and one reverse pass, like
    ``jax.value_and_grad``; ``grads`` equal the zero-perturbation derivative ∂L/∂e at e = 0 of
    L(h + e), the backward signal of ``gc.backward``.

    >>> import jax, jax.numpy as jnp, gradcourse as gc
    >>> def loss(ws, x):
    ...     for i, w in enumerate(ws):
    ...         x = gc.tap(jnp.tanh(x @ w), f"layer{i}")
    ...     return jnp.sum(x)
    >>> ws = [jnp.eye(3) * 0.5] * 2
    >>> c = gc.capture(loss, ws, jnp.ones((1, 3)))
    >>> c.names
    ['layer0', 'layer1']
    >>> bool(jnp.allclose(c.grads["layer1"], 1.0))   # ∂Σh/∂h = 1
    True
    """
    if grads is not None and not isinstance(grads, bool):
        raise TypeError(f"grads: expected None, True or False, got {type(grads).__name__}")
    run = _Session(fn, args, kwargs, model, where, has_aux)
    if grads is False:
        out, frame = _guarded(lambda: run(None, None))
        value, aux = run.split(out)
        run.check(frame.acts)
        return Capture(value, dict(frame.acts), None, aux, dict(run.kinds), dict(run.axes))

    # 1. abstract run: names, shapes, dtypes, shardings of every point (no computation)
    out_spec, act_spec, plan = run.discover()
    value_spec, _ = run.split(out_spec)
    scalar = isinstance(value_spec, jax.ShapeDtypeStruct) and value_spec.shape == () and _floating(value_spec)
    if not scalar:
        if grads:
            got = (
                f"shape {tuple(value_spec.shape)} and dtype {jnp.dtype(value_spec.dtype).name}"
                if isinstance(value_spec, jax.ShapeDtypeStruct)
                else type(value_spec).__name__
            )
            raise ValueError(
                f"fn: gradients need fn to return a floating-point scalar (a loss), got {got}; reduce it "
                f"(e.g. jnp.mean), return (loss, aux) with has_aux=True, or pass grads=False for activations only"
            )
        out, frame = _guarded(lambda: run(None, None))
        value, aux = run.split(out)
        return Capture(value, dict(frame.acts), None, aux, dict(run.kinds), dict(run.axes))

    # 2. one forward and one reverse pass, differentiating with respect to zero perturbations
    perts = {n: _zeros(s) for n, s in act_spec.items() if _floating(s)}

    def f(e, *args, **kwargs):
        out, frame = run(e, plan, args, kwargs)
        value, _ = run.split(out)
        return value, (out, frame.acts)

    if run.nnx_lift:
        from flax import nnx

        vg = nnx.value_and_grad(f, argnums=0, has_aux=True)
    else:
        vg = jax.value_and_grad(f, has_aux=True)
    (_, (out, acts)), g = _guarded(lambda: vg(perts, *run.args, **run.kwargs))
    value, aux = run.split(out)
    order = plan.names  # execution order (the dicts returned by value_and_grad are key-sorted)
    grads_ = {n: g[n] for n in order if n in g}
    return Capture(value, {n: acts[n] for n in order}, grads_, aux, dict(run.kinds), dict(run.axes))


def jacobian_between(
    fn: Callable[..., Any],
    *args: Any,
    source: str,
    target: str,
    model: Any = None,
    where: Where | None = None,
    method: Literal["auto", "exact", "lanczos"] = "auto",
    num_iters: int = 64,
    key: jax.Array | None = None,
    **kwargs: Any,
) -> jax.Array:
    """Singular values of J = ∂h_target/∂h_source between two captured points of ``fn(*args, **kwargs)``.

    ``source`` and ``target`` are names of ``gc.capture`` (taps or module paths; ``model`` and
    ``where`` as there), ``source`` running before ``target``. J is taken at the values of this run,
    with everything else held fixed: the map h_source ↦ h_target is ``fn`` re-run with h_source
    replaced (through its zero perturbation), and its spectrum is ``gc.jacobian_spectrum`` of that
    one-layer map (``method``, ``num_iters``, ``key`` as there: exact up to 4096 entries, Lanczos
    beyond). The points' batch axes are flattened with the rest, so for a model that treats examples
    independently J is block-diagonal over the batch: pass one example to get one example's spectrum.

    >>> import jax.numpy as jnp, gradcourse as gc
    >>> def f(x):
    ...     h = gc.tap(3.0 * x, "a")
    ...     return jnp.sum(gc.tap(jnp.stack([h[0], 2.0 * h[1]]), "b"))
    >>> gc.jacobian_between(f, jnp.ones(2), source="a", target="b")   # J = diag(1, 2)
    Array([2., 1.], dtype=float32)
    """
    from .spectrum import jacobian_spectrum

    run = _Session(fn, args, kwargs, model, where, False)
    _, act_spec, plan = run.discover()
    for name, what in ((source, "source"), (target, "target")):
        if not isinstance(name, str) or name not in act_spec:
            shown = ", ".join(plan.names[:20]) + (" ..." if len(plan.names) > 20 else "")
            raise ValueError(f"{what}: {name!r} is not a captured point; the points are {shown}")
    if plan.names.index(source) >= plan.names.index(target):
        raise ValueError(
            f"source: {source!r} must run before target {target!r} (the points run in the order {plan.names})"
        )
    out, frame = _guarded(lambda: run(None, plan))
    h0 = frame.acts[source]

    def layer(h):
        _, frame = run({source: h - jax.lax.stop_gradient(h0)}, plan)
        return frame.acts[target]

    return jacobian_spectrum([layer], h0, method=method, num_iters=num_iters, key=key)


class _Session:
    """One capture's setup: validated arguments, and ``run(perts, plan)`` = fn under taps and module hooks."""

    def __init__(self, fn: Callable, args: tuple, kwargs: dict, model: Any, where: Where | None, has_aux: bool):
        if not callable(fn):
            raise TypeError(f"fn: expected a function to capture, got {type(fn).__name__}")
        if not isinstance(has_aux, bool):
            raise TypeError(f"has_aux: expected True or False, got {type(has_aux).__name__}")
        if where is not None and not callable(where):
            raise TypeError(f"where: expected None or a function (path, module) -> bool, got {type(where).__name__}")
        if where is not None and model is None:
            raise ValueError("where: filters the submodule calls of model=, but no model was given; pass model=")
        self.kind = model_kind(model) if model is not None else None
        self.mods = submodules(model) if self.kind in ("equinox", "nnx") else None
        if self.mods is not None and not self.mods:
            raise ValueError(f"model: this {type(model).__name__} has no submodules to capture; add gc.tap inside fn")
        self.fn, self.args, self.kwargs, self.model, self.where, self.has_aux = fn, args, kwargs, model, where, has_aux
        self.kinds: dict[str, str] = {}
        self.axes: dict[str, tuple[str, ...]] = {}
        self.called: list[str] = []
        # a Flax NNX model given as an argument of fn goes through nnx.eval_shape / nnx.value_and_grad, which
        # carry its writes (RNG counts, batch statistics) out of the trace; NNX forbids them from inside jax's own
        self.nnx_pos = None
        if self.kind == "nnx":
            self.nnx_pos = next((i for i, a in enumerate(args) if a is model), None)
            if self.nnx_pos is None:
                self.nnx_pos = next((k for k, v in kwargs.items() if v is model), None)
        self.nnx_lift = self.nnx_pos is not None

    def __call__(
        self, perts: dict | None, plan: _Plan | None, args: tuple | None = None, kwargs: dict | None = None
    ) -> tuple[Any, _Frame]:
        """Run fn once under a capture frame, on ``args`` / ``kwargs`` (default: those given to capture). Inside a
        Flax NNX transform the model arrives as a new object; its submodules are then listed again."""
        args = self.args if args is None else args
        kwargs = self.kwargs if kwargs is None else kwargs
        model, mods = self.model, self.mods
        if self.nnx_lift:
            pos = self.nnx_pos
            model = args[pos] if isinstance(pos, int) else kwargs[pos]
            mods = self.mods if model is self.model else submodules(model)
        frame = _Frame(perts, plan)
        self.called.clear()
        with _lifting(), _frame(frame), _hooks(model, self.kind, mods, self.where, self.called):
            out = self.fn(*args, **kwargs)
        self.kinds.clear()
        self.kinds.update(frame.kinds)
        self.axes.clear()
        self.axes.update(frame.axes)
        return out, frame

    def split(self, out: Any) -> tuple[Any, Any]:
        if not self.has_aux:
            return out, None
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise ValueError(f"fn: with has_aux=True it must return a pair (value, aux), got {type(out).__name__}")
        return out[0], out[1]

    def check(self, acts: dict) -> None:
        _check_points(acts, self.kinds, self.model, self.where, self.called)

    def discover(self) -> tuple[Any, dict[str, Any], _Plan]:
        """Abstract run (``jax.eval_shape``): fn's output type, every point's type, and the plan of the run."""
        box: dict[str, Any] = {}

        def discover(*args, **kwargs):
            out, frame = self(None, None, args, kwargs)
            box["plan"] = frame.new_plan
            return out, frame.acts

        if self.nnx_lift:
            from flax import nnx

            out_spec, act_spec = _guarded(lambda: nnx.eval_shape(discover, *self.args, **self.kwargs))
        else:
            out_spec, act_spec = _guarded(lambda: jax.eval_shape(lambda: discover(*self.args, **self.kwargs)))
        self.check(act_spec)
        return out_spec, act_spec, box["plan"]


def _guarded(thunk: Callable[[], Any]) -> Any:
    """Run ``thunk``; a tracer leaked by a tap inside a transformation built before the capture -> ValueError."""
    try:
        return thunk()
    except Exception as e:
        if type(e).__name__ != "TraceContextError":
            raise
        raise ValueError(
            "capture: a Flax NNX module wrote to its state (an RNG count, batch statistics) from inside the capture's "
            "trace; pass the model to fn as an argument, gc.capture(fn, model, x, model=model), so that the capture "
            "runs it through nnx.value_and_grad"
        ) from e
    except jax.errors.UnexpectedTracerError as e:
        raise ValueError(
            "capture: a gc.tap (or a captured submodule) ran inside a jax.jit / jax.checkpoint / jax.vmap that was "
            "created before gc.capture started, so its value cannot be carried out; call the un-transformed function "
            "inside fn (jax.vmap and jax.lax.scan called inside fn are fine) or jit the capture itself"
        ) from e


def _check_points(acts: dict, kinds: dict, model: Any, where: Where | None, called: list[str]) -> None:
    if acts:
        if model is not None and where is not None and "module" not in kinds.values():
            pass  # explicit taps alone: fall through to the where check below
        else:
            return
    if model is None:
        raise ValueError(
            "fn: no gc.tap ran inside it and no model= was given, so there is nothing to capture; mark points "
            "with gc.tap(h, 'name') inside fn, or pass model=<your Equinox / Flax NNX / Flax Linen module>"
        )
    if not called:
        raise ValueError(
            f"model: fn called none of the submodules of this {type(model).__name__}; pass the module object that fn "
            f"calls (a model rebuilt inside fn with eqx.combine / nnx.merge is a different object), or add gc.tap"
        )
    shown = ", ".join(dict.fromkeys(called))
    if len(shown) > 300:
        shown = shown[:300] + " ..."
    raise ValueError(
        f"where: matched none of the submodule calls; where(path, module) was False for every one of: {shown}"
    )
