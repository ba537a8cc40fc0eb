"""``gc.tap(h, name)``: mark a point in any JAX function so that ``gc.capture`` can read it (core layer).

Outside ``gc.capture`` a tap is the identity and costs nothing (it returns ``h`` itself). Inside a
capture, the tap records ``h`` and adds a *zero perturbation* e to it: h + e has the same value, and
∂L/∂e = ∂L/∂h, so one reverse pass of ``jax.grad`` with respect to the perturbations of every tap
gives the backward signal at every tap (the trick ``gc.backward`` uses for a chain of layers, here
for any program). This is what Flax Linen's ``Module.perturb`` does for Linen modules; a tap works in
plain JAX and in every framework.

Transformations. Taps work under ``jit``, ``grad`` and ``vmap`` applied *around* the captured
function (``jax.jit(lambda p, x: gc.capture(loss, p, x))``). Inside the captured function, a tap in
the body of ``jax.lax.scan``, of a function given to ``jax.vmap``, or of one given to
``jax.checkpoint`` / ``jax.remat`` (also through ``eqx.filter_vmap``, ``nnx.vmap``, ``nnx.scan``,
``nnx.remat``, which call them) is supported: while a capture runs, these three are replaced by thin
wrappers (``_lifting``) that pass each tap's perturbation in as one more scanned / mapped input and
return the recorded values as one more output, so the entries of a tap in a scan body stack along a
leading axis, one per iteration, and those in a vmapped function along the mapped axis (moved to the
front). Not supported: a tap inside a function jitted, checkpointed or vmapped *before* the capture
started and called inside it (``jax.lax.map``, a module-level ``@jax.jit``: their transformation was
built with the original function); the capture then raises a ValueError saying so.

The machinery here is the context stack (``_Frame``); ``gradcourse.capture`` drives it.
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

__all__ = ["tap"]

_LOCAL = threading.local()
_PATCH_LOCK = threading.Lock()
_PATCH_DEPTH = [0]
_ORIGINAL = {"scan": jax.lax.scan, "vmap": jax.vmap, "checkpoint": jax.checkpoint, "remat": jax.remat}


class _Plan:
    """What one run of a function (or of one scan / vmap body) tapped: names in order, and the plan of
    every lifted transformation called inside it, in call order."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.children: list[_Plan] = []


class _Frame:
    """One traced run of a function body under a capture.

    ``perts``: name -> perturbation added at that tap (None in the discovery run, which only records).
    ``plan``: the discovery plan of this body (None in the discovery run, which builds ``new_plan``).
    ``acts``: name -> recorded value, in execution order. ``kinds``: name -> "tap" or "module".
    """

    def __init__(self, perts: dict[str, Any] | None, plan: _Plan | None) -> None:
        self.perts = perts
        self.plan = plan
        self.new_plan = _Plan()
        self.acts: dict[str, Any] = {}
        self.kinds: dict[str, str] = {}
        self.axes: dict[str, tuple[str, ...]] = {}  # name -> the lifted leading axes ("scan", "vmap"), outermost first
        self.n_children = 0
        self.trace = _trace()

    def record(self, name: str, h: Any, kind: str) -> Any:
        if _trace() is not self.trace:
            raise ValueError(
                f"tap {name!r}: it ran inside a jax.jit, jax.checkpoint or jax.vmap that was created before gc.capture "
                f"started (only jax.vmap and jax.lax.scan called while fn runs are lifted), so its value cannot be "
                f"carried out; call the un-transformed function inside fn, or jit the whole capture instead"
            )
        if name in self.acts:
            raise ValueError(
                f"tap: the name {name!r} is used twice in one run of the captured function; give every "
                f"gc.tap a distinct name (a tap inside a lax.scan body or a vmapped function is fine: its "
                f"entries stack along a leading axis)"
            )
        self.acts[name] = h
        self.kinds[name] = kind
        self.new_plan.names.append(name)
        if self.perts is not None and name in self.perts:
            return h + self.perts[name]
        return h

    def next_child(self) -> _Plan | None:
        plan = None if self.plan is None else self.plan.children[self.n_children]
        self.n_children += 1
        return plan

    def absorb(self, child: _Frame, acts: dict[str, Any], lift: str) -> None:
        """Record a lifted child's (stacked) values under their names, in their order."""
        for name in child.new_plan.names:  # execution order (a dict returned through a transformation is key-sorted)
            value = acts[name]
            if name in self.acts:
                raise ValueError(
                    f"tap: the name {name!r} is used both inside and outside a lax.scan / vmap body; "
                    f"give each gc.tap a distinct name"
                )
            self.acts[name] = value
            self.kinds[name] = child.kinds[name]
            lifted = (lift,) if lift in ("scan", "vmap") else ()  # jax.checkpoint adds no axis
            if lifted or child.axes.get(name):
                self.axes[name] = (*lifted, *child.axes.get(name, ()))
        self.new_plan.names.extend(child.new_plan.names)
        self.new_plan.children.append(child.new_plan)


def _trace() -> Any:
    """The JAX trace now active (private API, used only to detect a tap inside a transformation that cannot be
    lifted; if a JAX version lacks it, that check is skipped)."""
    try:
        from jax._src import core

        return core.trace_ctx.trace
    except (ImportError, AttributeError):  # pragma: no cover
        return None


def _stack() -> list[_Frame]:
    if not hasattr(_LOCAL, "frames"):
        _LOCAL.frames = []
    return _LOCAL.frames


def _current() -> _Frame | None:
    frames = _stack()
    return frames[-1] if frames else None


@contextlib.contextmanager
def _frame(frame: _Frame):
    frames = _stack()
    frames.append(frame)
    try:
        yield frame
    finally:
        frames.pop()


def _taken(name: str) -> bool:
    """Whether ``name`` is already recorded in the current frame or in a frame around it."""
    return any(name in f.acts for f in _stack())


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise TypeError(f"name: expected a non-empty str such as 'block3' or 'attn/logits', got {name!r}")
    return name


def tap(h: jax.Array, name: str) -> jax.Array:
    """Mark ``h`` as a point named ``name`` that ``gc.capture`` records; returns ``h`` unchanged.

    ``h``: a floating-point array (any shape). Outside ``gc.capture`` this is the identity (no cost,
    no effect under ``jit`` / ``vmap`` / ``grad``). Inside a capture, ``capture.acts[name]`` is h and
    ``capture.grads[name]`` is ∂L/∂h (see ``gc.capture``). A name may appear once per run of the
    captured function; a tap in a ``jax.lax.scan`` body or a ``jax.vmap``-ed function records one
    entry per iteration / example, stacked along a leading axis.

    >>> import jax, jax.numpy as jnp, gradcourse as gc
    >>> def loss(w, x):
    ...     h = gc.tap(jnp.tanh(x @ w), "hidden")
    ...     return jnp.sum(h ** 2)
    >>> w, x = jnp.eye(2), jnp.array([[0.5, -1.0]])
    >>> bool(jnp.all(loss(w, x) == jnp.sum(jnp.tanh(x) ** 2)))   # outside a capture: the identity
    True
    >>> c = gc.capture(loss, w, x)
    >>> bool(jnp.allclose(c.grads["hidden"], 2 * jnp.tanh(x)))   # ∂L/∂h = 2h
    True
    """
    name = _check_name(name)
    frame = _current()
    if frame is None:
        return h
    if not hasattr(h, "shape") or not hasattr(h, "dtype"):
        h = jnp.asarray(h)
    return frame.record(name, h, "tap")


# --------------------------------------------------------------------------- lifting through scan and vmap


def _child_perturbations(parent: _Frame, plan: Any) -> dict | None:
    """The zero perturbations of the taps a transformed child function will record (None: no gradients)."""
    return None if parent.perts is None else {n: parent.perts[n] for n in plan.names if n in parent.perts}


def _child_body(fun: Callable, plan: Any, frames: list) -> Callable:
    """``fun`` run in a fresh child frame fed perturbations ``e``; returns ``(fun's output, the child's taps)``."""

    def body(e, *a, **k):
        child = _Frame(e, plan)
        frames.append(child)
        with _frame(child):
            out = fun(*a, **k)
        return out, child.acts

    return body


def _lifted_scan(f: Callable, init: Any, xs: Any = None, length: int | None = None, **kw: Any) -> Any:
    """``jax.lax.scan`` that carries the taps of its body out as stacked outputs (perturbations as inputs)."""
    parent = _current()
    if parent is None:
        return _ORIGINAL["scan"](f, init, xs, length, **kw)
    plan = parent.next_child()
    perts = _child_perturbations(parent, plan)
    frames: list[_Frame] = []

    def body(carry, x_and_e):
        x, e = x_and_e
        child = _Frame(e, plan)
        frames.append(child)
        with _frame(child):
            new_carry, y = f(carry, x)
        return new_carry, (y, child.acts)

    carry, (ys, acts) = _ORIGINAL["scan"](body, init, (xs, perts), length, **kw)
    parent.absorb(frames[-1], acts, "scan")
    return carry, ys


def _lifted_vmap(fun: Callable, in_axes: Any = 0, out_axes: Any = 0, *v_args: Any, **v_kw: Any) -> Callable:
    """``jax.vmap`` whose mapped function's taps come out mapped along axis 0 (perturbations mapped in)."""
    original = _ORIGINAL["vmap"](fun, in_axes, out_axes, *v_args, **v_kw)

    def mapped(*args: Any, **kwargs: Any) -> Any:
        parent = _current()
        if parent is None:
            return original(*args, **kwargs)
        plan = parent.next_child()
        perts = _child_perturbations(parent, plan)
        frames: list[_Frame] = []
        body = _child_body(fun, plan, frames)

        axes = in_axes if isinstance(in_axes, (list, tuple)) else (in_axes,) * len(args)
        lifted = _ORIGINAL["vmap"](body, (0, *axes), (out_axes, 0), *v_args, **v_kw)
        out, acts = lifted(perts, *args, **kwargs)
        parent.absorb(frames[-1], acts, "vmap")
        return out

    return mapped


def _lifted_checkpoint(fun: Callable | None = None, **options: Any) -> Callable:
    """``jax.checkpoint`` (rematerialisation) whose function's taps come out as extra outputs (perturbations in)."""
    if fun is None:  # used as @jax.checkpoint(policy=...)
        return lambda f: _lifted_checkpoint(f, **options)
    original = _ORIGINAL["checkpoint"](fun, **options)
    static = options.get("static_argnums", ())
    static = (static,) if isinstance(static, int) else tuple(static)

    def remat(*args: Any, **kwargs: Any) -> Any:
        parent = _current()
        if parent is None:
            return original(*args, **kwargs)
        plan = parent.next_child()
        perts = _child_perturbations(parent, plan)
        frames: list[_Frame] = []
        body = _child_body(fun, plan, frames)

        opts = dict(options, static_argnums=tuple(i + 1 for i in static))
        out, acts = _ORIGINAL["checkpoint"](body, **opts)(perts, *args, **kwargs)
        parent.absorb(frames[-1], acts, "checkpoint")
        return out

    return remat


@contextlib.contextmanager
def _lifting():
    """Replace ``jax.lax.scan`` and ``jax.vmap`` by the lifted versions while a capture runs (re-entrant)."""
    with _PATCH_LOCK:
        if _PATCH_DEPTH[0] == 0:
            jax.lax.scan = _lifted_scan
            jax.vmap = _lifted_vmap
            jax.checkpoint = jax.remat = _lifted_checkpoint
        _PATCH_DEPTH[0] += 1
    try:
        yield
    finally:
        with _PATCH_LOCK:
            _PATCH_DEPTH[0] -= 1
            if _PATCH_DEPTH[0] == 0:
                jax.lax.scan = _ORIGINAL["scan"]
                jax.vmap = _ORIGINAL["vmap"]
                jax.checkpoint, jax.remat = _ORIGINAL["checkpoint"], _ORIGINAL["remat"]
