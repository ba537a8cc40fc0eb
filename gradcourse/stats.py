"""Per-layer diagnostics: activation statistics, gradient/update-to-parameter ratios, NaN hunting.

Everything here is a pure function of arrays (or of a model and an input) and prints nothing;
the notebooks decide what to show.

* ``activation_stats(hs, activation)``: mean, standard deviation, saturated and dead fractions
  of every h_l in the output of ``gc.forward``.
* ``grad_to_param_ratio(grads, params)`` / ``update_to_param_ratio(updates, params)``:
  ‖g‖ / ‖p‖ per parameter leaf, labelled like ``gc.layer_norms``.
* ``find_nonfinite(model, x, loss)``: the first h_l (forward) or ∂loss/∂h_l (backward) that
  holds a NaN or an Inf; ``find_nonfinite_step(values)``: the first bad step of a history.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .activations import ACTIVATIONS, Activation
from .capture import Capture
from .chains import backward
from .model import Model, Stacked, as_model, check_input, forward
from .norms import _is_array, layer_norms, path_label
from .validate import real, scalar_loss, wide_float

__all__ = [
    "ActivationStats",
    "NonfiniteReport",
    "activation_stats",
    "capture_activation_stats",
    "capture_nonfinite",
    "find_nonfinite",
    "find_nonfinite_step",
    "grad_to_param_ratio",
    "tap_stats",
    "update_to_param_ratio",
]

# Bounded activations and how a value counts as saturated (s = the ``saturation`` threshold).
_SATURATING_SYMMETRIC = ("tanh", "erf")  # range (-1, 1): saturated when |h| > s
_SATURATING_SIGMOID = ("sigmoid",)  # range (0, 1): saturated when h < 1 - s or h > s
# Activations with an "off" side: h <= 0 exactly when the pre-activation z <= 0, where the
# derivative is 0 (relu) or small (leaky_relu 0.01, elu/selu/gelu/silu tails).
_CAN_DIE = ("relu", "leaky_relu", "elu", "selu", "gelu", "silu")
# Activations that cannot die (their derivative never vanishes on a half-line): frac_dead = 0.
_CANNOT_DIE = ("linear", "tanh", "erf", "sigmoid")


# --------------------------------------------------------------------------- activation statistics


class ActivationStats(NamedTuple):
    """Per-layer statistics of h_0 ... h_L; every field has shape (L+1,). A pytree (works under jit).

    ``mean``, ``std``: over all entries of h_l (batch and units together; population std, ddof=0).
    ``frac_saturated``: fraction of entries in the flat tails of a bounded activation (NaN when the
    activation is not bounded or not known). ``frac_dead``: fraction of units (last axis) with
    h ≤ 0 for every example (0 for activations that cannot die, NaN when unknown).
    """

    mean: jax.Array
    std: jax.Array
    frac_saturated: jax.Array
    frac_dead: jax.Array


def _activation_key(activation: str | Activation | None) -> str | None:
    """The name in ``ACTIVATIONS`` of ``activation`` (a name or one of its functions), or None."""
    if activation is None:
        return None
    if isinstance(activation, str):
        if activation not in ACTIVATIONS:
            names = ", ".join(repr(n) for n in ACTIVATIONS)
            raise ValueError(f"activation: unknown name {activation!r}; expected None or one of {names}")
        return activation
    if callable(activation):
        for name, fn in ACTIVATIONS.items():
            if fn is activation:
                return name
        if activation is jax.nn.gelu:  # the approximate (tanh) GELU: the same dead side as the exact one
            return "gelu"
        return None  # an unknown callable: statistics that need the activation's shape are NaN
    raise TypeError(f"activation: expected None, a name (str) or a function, got {type(activation).__name__}")


def _check_signal(h: Any, name: str) -> jax.Array:
    if not hasattr(h, "dtype"):
        try:
            h = jnp.asarray(h)
        except TypeError as e:
            raise TypeError(f"{name}: expected an array, got {type(h).__name__}") from e
    if not (jnp.issubdtype(h.dtype, jnp.floating) or jnp.issubdtype(h.dtype, jnp.integer)):
        raise TypeError(f"{name}: expected a real (floating-point) array, got dtype {jnp.dtype(h.dtype).name}")
    return jnp.asarray(h)


def _layer_stats(h: jax.Array, key: str | None, saturation: float) -> tuple[jax.Array, ...]:
    """(mean, std, frac_saturated, frac_dead) of one layer's h, as float scalars."""
    h = wide_float(h)
    mean, std = jnp.mean(h), jnp.std(h)
    nan = jnp.array(jnp.nan, h.dtype)
    if key in _SATURATING_SYMMETRIC:
        sat = jnp.mean(jnp.abs(h) > saturation)
    elif key in _SATURATING_SIGMOID:
        sat = jnp.mean((h < 1.0 - saturation) | (h > saturation))
    else:
        sat = nan
    if key in _CAN_DIE:
        off = h <= 0
        if h.ndim >= 2:  # units on the last axis, examples on all the others
            off = jnp.all(off, axis=tuple(range(h.ndim - 1)))
        dead = jnp.mean(off)
    elif key in _CANNOT_DIE:
        dead = jnp.zeros((), h.dtype)
    else:
        dead = nan
    return mean, std, sat.astype(h.dtype), dead.astype(h.dtype)


# jitted once per (shape, dtype, activation, saturation): eager use compiles one small program
_layer_stats_jit = jax.jit(_layer_stats, static_argnums=(1, 2))
_stacked_stats_jit = jax.jit(lambda hs, key, s: jax.vmap(lambda h: _layer_stats(h, key, s))(hs), static_argnums=(1, 2))


def activation_stats(
    hs: Sequence[jax.Array] | jax.Array,
    activation: str | Activation | None = None,
    *,
    saturation: float = 0.99,
) -> ActivationStats:
    """Mean, std, saturated fraction and dead-unit fraction of each h_l, each of shape (L+1,).

    ``hs`` is the output of ``gc.forward``: a list of L+1 arrays (shapes may differ) or one
    stacked array of shape (L+1, batch, ..., width). Entry 0 is the input x, to which no
    activation was applied; its saturated / dead entries just apply the same rule to x's values
    (slice ``[1:]`` to plot hidden layers only). With s = ``saturation`` and units on the last axis:

    * ``mean`` = E[h], ``std`` = sqrt(E[h²] − E[h]²) over all entries of h_l.
    * ``frac_saturated``: tanh, erf → P(|h| > s); sigmoid → P(h < 1−s or h > s) (both tails);
      anything else (ReLU family, linear, ``None``, an unknown callable) → NaN, since those are not
      bounded on both sides.
    * ``frac_dead``: for relu, leaky_relu, elu, selu, gelu, silu (h ≤ 0 exactly when the
      pre-activation is ≤ 0, the flat side) → the fraction of units with h ≤ 0 for *every*
      example (all axes but the last); for linear, tanh, erf, sigmoid → 0 (no flat half-line:
      their units cannot die); ``None`` or an unknown callable → NaN.

    ``activation`` is a name from ``gc.ACTIVATIONS`` or one of its functions (``jnp.tanh``,
    ``jax.nn.relu``, ``jax.nn.gelu``, ... compared by identity). Statistics are computed in float32
    or wider. Works under ``jit`` (with ``activation`` and ``saturation`` static).

    Your own model: pass a ``gc.capture(...)`` as ``hs`` and ``activation`` as one activation or a
    dict point name -> activation (points without one are skipped); returns a dict point name ->
    ``ActivationStats`` (``capture_activation_stats``).
    """
    if type(hs).__name__ == "Capture" and type(hs).__module__ == "gradcourse.capture":

        return capture_activation_stats(hs, activation, saturation=saturation)
    key = _activation_key(activation)
    saturation = real(saturation, "saturation", low=0.0, high=1.0, low_open=True, high_open=True)
    if key in _SATURATING_SIGMOID and saturation <= 0.5:
        raise ValueError(
            f"saturation: for sigmoid the two tails are h < 1 - s and h > s, so s must be above 0.5; got {saturation}"
        )
    saturation = float(saturation)

    if isinstance(hs, (list, tuple)):
        if not hs:
            raise ValueError("hs: expected at least one array (h_0 ... h_L), got an empty sequence")
        rows = [_layer_stats_jit(_check_signal(h, f"hs[{i}]"), key, saturation) for i, h in enumerate(hs)]
        return ActivationStats(*(jnp.stack(col) for col in zip(*rows, strict=True)))
    if not hasattr(hs, "shape"):
        raise TypeError(
            f"hs: expected the output of gc.forward (a list of arrays or one stacked array (L+1, ...)), "
            f"got {type(hs).__name__}"
        )
    hs = _check_signal(hs, "hs")
    if hs.ndim == 0:
        raise ValueError("hs: expected a stacked array with a leading layer axis (L+1, batch, ...), got a scalar")
    return ActivationStats(*_stacked_stats_jit(hs, key, saturation))


# --------------------------------------------------------------------------- ratios


def _ratio(num: Any, params: Any, stacked: bool, name: str) -> dict[str, jax.Array]:
    if not isinstance(stacked, bool):
        raise TypeError(f"stacked: expected True or False, got {type(stacked).__name__}")
    for tree, what in ((num, name), (params, "params")):
        if not jax.tree_util.tree_leaves(tree):
            raise ValueError(f"{what}: expected a pytree with at least one array leaf, found none")
    shapes_n = {k: jnp.shape(v) for k, v in _labelled(num).items()}
    shapes_p = {k: jnp.shape(v) for k, v in _labelled(params).items()}
    if shapes_n.keys() != shapes_p.keys():
        missing = sorted(shapes_p.keys() - shapes_n.keys())
        extra = sorted(shapes_n.keys() - shapes_p.keys())
        raise ValueError(
            f"{name}: its leaves must match those of params; missing {missing}, unexpected {extra}"
        )
    for k in shapes_p:
        if shapes_n[k] != shapes_p[k]:
            raise ValueError(f"{name}: leaf {k!r} has shape {shapes_n[k]} but params[{k!r}] has shape {shapes_p[k]}")
    norms_n = layer_norms(num, stacked=stacked)
    norms_p = layer_norms(params, stacked=stacked)
    return {k: norms_n[k] / norms_p[k] for k in norms_p}


def _labelled(tree: Any) -> dict[str, Any]:
    return {path_label(p) or "<root>": leaf for p, leaf in jax.tree_util.tree_leaves_with_path(tree) if _is_array(leaf)}


def grad_to_param_ratio(grads: Any, params: Any, *, stacked: bool = False) -> dict[str, jax.Array]:
    """‖g‖ / ‖p‖ for every leaf, keyed by the labels of ``gc.layer_norms`` (e.g. ``"W"``, ``"layers/3/W"``).

    ``grads`` has the structure and shapes of ``params`` (as ``jax.grad`` returns). With
    ``stacked=True`` every leaf has a leading depth axis and each entry is an array of shape
    (L,): one ratio per depth index. It says how large a plain SGD step lr·g is relative to the
    weights (the relative step is lr times this). A leaf with ‖p‖ = 0 (a zero-initialised bias)
    gives inf (or NaN when ‖g‖ = 0 too). Works under ``jit``.
    """
    return _ratio(grads, params, stacked, "grads")


def update_to_param_ratio(updates: Any, params: Any, *, stacked: bool = False) -> dict[str, jax.Array]:
    """‖Δp‖ / ‖p‖ for every leaf, where ``updates`` are the optimizer's updates (``optax`` ``update``).

    The "update-to-data ratio" of Karpathy's *makemore part 3* (2022): plotted as log10 during
    training, healthy layers sit near 1e-3 (−3); far below means the layer barely learns, far
    above means the step is too large for the weights. (Karpathy uses std(Δp)/std(p), which
    equals this ratio for mean-zero tensors.) Same labels, ``stacked`` and zero-norm behaviour as
    ``grad_to_param_ratio``.
    """
    return _ratio(updates, params, stacked, "updates")


# --------------------------------------------------------------------------- non-finite values


@dataclass(frozen=True)
class NonfiniteReport:
    """Where the first NaN / Inf appears. All fields but ``message`` are None when all is finite.

    ``stage``: ``"forward"`` (an activation h_l), ``"loss"`` (h_L finite but loss(h_L) is not) or
    ``"backward"`` (a backward signal ∂loss/∂h_l). ``layer``: that l (0 = the input x, L = the
    output); ``None`` for ``"loss"``. ``count``: non-finite entries in that array, of ``size``.
    ``point``: for a report on a ``gc.capture``, the captured point's name (a module path such as
    ``"blocks/5/mlp"``, ``"block[3]"`` for iteration 3 of a tap in a scan body; ``layer`` is then its
    index in the capture's ``names``). ``str(report)`` is ``message``.
    """

    stage: str | None
    layer: int | None
    count: int | None
    size: int | None
    message: str
    point: str | None = None

    @property
    def finite(self) -> bool:
        """True when nothing non-finite was found."""
        return self.stage is None

    def __str__(self) -> str:
        return self.message


def _bad_counts(hs: Sequence[jax.Array] | jax.Array) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Per layer: number of NaN entries, number of ±Inf entries, and the size of h_l."""
    if isinstance(hs, (list, tuple)):
        arrs = [np.asarray(h) for h in hs]
        nan = np.array([np.count_nonzero(np.isnan(a)) for a in arrs])
        inf = np.array([np.count_nonzero(np.isinf(a)) for a in arrs])
        return nan, inf, [a.size for a in arrs]
    a = np.asarray(hs).reshape(hs.shape[0], -1)
    return np.isnan(a).sum(axis=1), np.isinf(a).sum(axis=1), [a.shape[1]] * a.shape[0]


def _where(l: int, stacked: bool, backward: bool) -> str:
    what, at = (f"∂loss/∂h_{l}", "at ") if backward else (f"h_{l}", "")
    if l == 0:
        return f"{what} (at the input x)"
    if stacked:
        return f"{what} ({at}the output of layer {l}, depth index {l - 1} of the stacked params)"
    return f"{what} ({at}the output of layer {l}, model[{l - 1}])"


def _span(name: str, a: int, b: int) -> str:
    """'h_0 ... h_3 are' / 'h_0 is': a range of layers with its verb."""
    return f"{name}_{a} is" if a == b else f"{name}_{a} ... {name}_{b} are"


def _kinds(nan: int, inf: int) -> str:
    return ", ".join(p for p in (f"{nan} NaN" if nan else "", f"{inf} Inf" if inf else "") if p)


def find_nonfinite(
    model: Model, x: jax.Array | None = None, loss: Callable[[jax.Array], jax.Array] | None = None
) -> NonfiniteReport:
    """Find the first NaN / Inf in the forward pass, then the loss, then the backward pass.

    Runs ``gc.forward(model, x)`` and reports the lowest l whose h_l has a non-finite entry. If
    all h_l are finite and ``loss`` (h_L -> scalar) is given, checks loss(h_L), then runs
    ``gc.backward(model, x, loss)`` and reports the *highest* l whose ∂loss/∂h_l is non-finite:
    the first layer the reverse pass reaches going from L down to 0. Without ``loss`` only the
    forward pass is checked (and the message says so). Returns a ``NonfiniteReport``.

    Your own model (any JAX function, Equinox, Flax NNX or Linen): pass a ``gc.capture(...)`` as
    ``model`` (and nothing else); the report names the captured point (``report.point``, a module
    path) and says forward, loss or backward (``capture_nonfinite``).
    """
    if type(model).__name__ == "Capture" and type(model).__module__ == "gradcourse.capture":

        if x is not None or loss is not None:
            raise TypeError("x, loss: a Capture already holds the values, the loss and its gradients; pass it alone")
        return capture_nonfinite(model)
    if x is None:
        raise TypeError("x: expected the model's input (or pass a gc.capture(...) as model, alone)")
    m = as_model(model)
    x = check_input(x)
    if loss is not None and not callable(loss):
        raise TypeError(f"loss: expected None or a function h_L -> scalar, got {type(loss).__name__}")
    stacked = isinstance(m, Stacked)
    hs = forward(m, x)
    nan, inf, sizes = _bad_counts(hs)
    bad = np.flatnonzero(nan + inf)
    if bad.size:
        l = int(bad[0])
        n = int(nan[l] + inf[l])
        msg = (
            f"forward pass: {_where(l, stacked, False)} has {n} non-finite of {sizes[l]} entries "
            f"({_kinds(nan[l], inf[l])})"
        )
        msg += f"; {_span('h', 0, l - 1)} finite" if l > 0 else ""
        return NonfiniteReport("forward", l, n, sizes[l], msg)
    depth = len(sizes) - 1
    if loss is None:
        return NonfiniteReport(
            None, None, None, None,
            f"all finite (forward pass, h_0 ... h_{depth}; pass a loss to check the backward pass too)",
        )
    value = np.asarray(scalar_loss(loss(hs[-1])))
    if not np.isfinite(value):
        return NonfiniteReport("loss", None, 1, 1, f"loss: {_span('h', 0, depth)} finite but loss(h_{depth}) = {value}")
    gs = backward(m, x, loss)
    nan, inf, sizes = _bad_counts(gs)
    bad = np.flatnonzero(nan + inf)
    if bad.size:
        l = int(bad[-1])
        n = int(nan[l] + inf[l])
        msg = (
            f"backward pass: {_where(l, stacked, True)} has {n} non-finite of {sizes[l]} entries "
            f"({_kinds(nan[l], inf[l])})"
        )
        msg += (
            f"; the forward pass, the loss and {_span('∂loss/∂h', depth, l + 1)} finite"
            if l < depth
            else "; the forward pass and the loss are finite"
        )
        return NonfiniteReport("backward", l, n, sizes[l], msg)
    return NonfiniteReport(
        None, None, None, None, f"all finite (forward pass, loss and backward pass, layers 0 ... {depth})"
    )


def find_nonfinite_step(values: Sequence[Any] | jax.Array) -> int | None:
    """Index of the first step whose value is NaN or ±Inf, or None if every step is finite.

    ``values`` is a per-step history along axis 0: a list of numbers (a loss curve), a list of
    per-step arrays of equal shape, or an array of shape (steps, ...); a step counts as
    non-finite when any of its entries is.
    """
    if isinstance(values, (str, bytes, dict)) or not (hasattr(values, "shape") or isinstance(values, Sequence)):
        raise TypeError(f"values: expected a sequence or an array of per-step values, got {type(values).__name__}")
    if isinstance(values, Sequence) and len(values) == 0:
        return None
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError) as e:
        raise ValueError(f"values: could not stack the per-step values into an array ({e})") from e
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise TypeError(f"values: expected numbers (per-step values of equal shape), got dtype {arr.dtype}")
    if arr.ndim == 0:
        raise ValueError("values: expected a sequence of per-step values, got a single scalar")
    bad = ~np.isfinite(arr.reshape(arr.shape[0], -1)).all(axis=1)
    idx = np.flatnonzero(bad)
    return int(idx[0]) if idx.size else None


# --------------------------------------------------------------------------- statistics of a gc.capture


def tap_stats(h: Any, g: Any = None, activation: Any = None, *, saturation: float = 0.99) -> dict[str, float]:
    """Statistics of one captured point: h (units on the last axis) and optionally its gradient g = ∂L/∂h.

    Returns ``mean``, ``std``, ``rms`` = ‖h‖/√n, ``grad_rms`` = ‖g‖/√n, ``frac_dead`` and
    ``frac_saturated``, ``nonfinite`` / ``grad_nonfinite`` (entry counts). ``frac_dead``: with a
    known activation that can die (ReLU family, GELU, SiLU), units with h ≤ 0 for every example;
    with no activation, units whose h is exactly 0, or whose g is exactly 0, for every example (NaN
    for a 1-d h). ``frac_saturated``: tanh / erf: P(|h| > s); sigmoid: P(h < 1−s or h > s); else NaN.
    """
    a = np.asarray(h, dtype=np.float64) if not np.iscomplexobj(h) else np.abs(np.asarray(h))
    gg = None if g is None else np.asarray(g, dtype=np.float64)
    name = _activation_key(activation)
    n = max(a.size, 1)
    fin = np.isfinite(a)
    out = {
        "mean": float(np.mean(a)) if a.size else math.nan,
        "std": float(np.std(a)) if a.size else math.nan,
        "rms": float(np.sqrt(np.sum(np.square(a)) / n)),
        "nonfinite": int(a.size - np.count_nonzero(fin)),
    }
    if gg is not None:
        out["grad_rms"] = float(np.sqrt(np.sum(np.square(gg)) / max(gg.size, 1)))
        out["grad_nonfinite"] = int(gg.size - np.count_nonzero(np.isfinite(gg)))
    dead = math.nan
    if a.ndim >= 2 and a.shape[-1] > 0:
        axes = tuple(range(a.ndim - 1))
        if name in ("relu", "leaky_relu", "elu", "selu", "gelu", "silu"):
            dead = float(np.mean(np.all(a <= 0, axis=axes)))
        elif name in ("linear", "tanh", "erf", "sigmoid"):
            dead = 0.0
        elif out["nonfinite"] == 0:
            off = np.all(a == 0, axis=axes)
            if gg is not None and gg.shape == a.shape and out.get("grad_nonfinite", 0) == 0:
                off = off | np.all(gg == 0, axis=axes)
            dead = float(np.mean(off))
    out["frac_dead"] = dead
    if name in ("tanh", "erf"):
        out["frac_saturated"] = float(np.mean(np.abs(a) > saturation))
    elif name == "sigmoid":
        out["frac_saturated"] = float(np.mean((a < 1 - saturation) | (a > saturation)))
    else:
        out["frac_saturated"] = math.nan
    return out


def _first_bad(a: np.ndarray, scanned: bool, last: bool) -> tuple[int, int | None]:
    """(non-finite count, iteration index) of an array; the index (first or last bad one) for a scanned tap."""
    bad = ~np.isfinite(a)
    count = int(np.count_nonzero(bad))
    if not count or not scanned or a.ndim == 0:
        return count, None
    per = np.flatnonzero(bad.reshape(a.shape[0], -1).any(axis=1))
    return int(np.count_nonzero(bad[per[-1] if last else per[0]])), int(per[-1] if last else per[0])


def capture_nonfinite(cap: Capture) -> Any:
    """Where the first NaN / Inf appears in a ``gc.capture``: forward (in execution order), the value, backward.

    Returns a ``gc.stats.NonfiniteReport`` whose ``point`` is the captured name (``"blocks/5/mlp"``,
    ``"block[3]"`` for iteration 3 of a tap in a scan body) and ``layer`` its position in
    ``cap.names``. Forward: the first point whose h has a NaN / Inf. Else, if the value (the loss) is
    not finite: stage ``"loss"``, the loss itself is the first non-finite value. Else backward: the
    *last* point in execution order whose ∂L/∂h is non-finite, the first one the reverse pass reaches.
    This is what ``gc.stats.find_nonfinite(capture)`` returns.
    """
    names = cap.names
    scanned = {n: cap.axes.get(n, ())[:1] == ("scan",) for n in names}

    def where(n: str, it: int | None) -> str:
        return n if it is None else f"{n}[{it}]"

    for i, n in enumerate(names):
        a = np.asarray(cap.acts[n])
        count, it = _first_bad(a, scanned[n], last=False)
        if count:
            size = a.size if it is None else a[it].size
            before = f"; the {i} points before it are finite" if i else "; it is the first captured point"
            msg = f"forward pass: `{where(n, it)}` has {count} non-finite of {size} entries{before}"
            return NonfiniteReport("forward", i, count, size, msg, point=where(n, it))
    value = np.asarray(cap.value)
    if value.size and not np.all(np.isfinite(value)):
        msg = (f"loss: every captured point is finite, but the value itself is {value.ravel()[0]}: the loss is the "
               f"first non-finite value")
        return NonfiniteReport("loss", None, int(np.count_nonzero(~np.isfinite(value))), value.size, msg)
    if cap.grads is None:
        msg = f"all finite (forward pass, {len(names)} points; no gradients were taken)"
        return NonfiniteReport(None, None, None, None, msg)
    for i in range(len(names) - 1, -1, -1):
        n = names[i]
        if n not in cap.grads:
            continue
        g = np.asarray(cap.grads[n])
        count, it = _first_bad(g, scanned[n], last=True)
        if count:
            size = g.size if it is None else g[it].size
            msg = (f"backward pass: ∂L/∂h at `{where(n, it)}` has {count} non-finite of {size} entries; the forward "
                   f"pass, the loss and the backward signal at the points after it are finite")
            return NonfiniteReport("backward", i, count, size, msg, point=where(n, it))
    msg = f"all finite (forward pass, loss and backward pass, {len(names)} points)"
    return NonfiniteReport(None, None, None, None, msg)


def capture_activation_stats(cap: Capture, activation: Any = None, *, saturation: float = 0.99) -> dict[str, Any]:
    """``gc.stats.activation_stats`` per captured point: name -> ``ActivationStats`` (scalars; arrays over the
    iterations for a tap in a scan body).

    ``activation``: one activation for every point (a name, or a function compared by identity with
    those of ``gc.ACTIVATIONS`` and ``jax.nn.gelu``), None (mean and std only; dead / saturated NaN), or
    a dict name -> activation, in which case the points without one are skipped. This is what
    ``gc.stats.activation_stats(capture, activation)`` returns.
    """
    if isinstance(activation, dict):
        unknown = [k for k in activation if k not in cap.acts]
        if unknown:
            raise ValueError(f"activation: {unknown} are not captured points; the points are {cap.names}")
        items = [(n, activation[n]) for n in cap.names if n in activation and activation[n] is not None]
    else:
        items = [(n, activation) for n in cap.names]
    out = {}
    for n, act in items:
        h = cap.acts[n]
        if cap.axes.get(n, ())[:1] == ("scan",):
            out[n] = activation_stats(h, act, saturation=saturation)  # one row per iteration
        else:
            st = activation_stats([h], act, saturation=saturation)
            out[n] = type(st)(*(v[0] for v in st))
    return out
