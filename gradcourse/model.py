"""The two model forms gradcourse accepts, their validation, and the forward pass.

A deep network is a composition of layers ``h_l = f_l(h_{l-1})``. gradcourse accepts either

* a **sequence** of layer functions ``[f_1, ..., f_L]``, each ``h -> h`` (shapes may change), or
* a **stacked** model ``Stacked(f, params)``: one function ``f(layer_params, h) -> h`` and a params
  pytree whose leaves carry a leading depth axis of size L. It is run with ``jax.lax.scan``, so
  compile time does not grow with depth. A plain tuple ``(f, params)`` is accepted too.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from .validate import floating_array, stacked_depth

Layer = Callable[[jax.Array], jax.Array]


class Stacked(NamedTuple):
    """A depth-L model ``h_l = f(params[l], h_{l-1})`` with params stacked along a leading axis.

    >>> model = Stacked(lambda p, h: jnp.tanh(h @ p["W"]), {"W": jnp.stack([jnp.eye(2)] * 3)})
    >>> forward(model, jnp.zeros(2)).shape  # h_0 ... h_3
    (4, 2)
    """

    f: Callable[[Any, jax.Array], jax.Array]
    params: Any


Model = Sequence[Layer] | Stacked | tuple


# --------------------------------------------------------------------------- validation


def _shape_str(a: Any) -> str:
    return f"{tuple(a.shape)} {jnp.dtype(a.dtype).name}"


def check_input(x: Any, name: str = "x") -> jax.Array:
    """``x`` as a floating JAX array (``validate.floating_array``), in JAX's default precision.

    NumPy float64 input (``np.random.randn(...)``) becomes float32 unless ``jax_enable_x64`` is on, as
    ``jnp.asarray`` does everywhere in JAX, so a float32 model takes it the same way in ``forward``,
    ``backward``, ``jvp_chain``, ``vjp_chain`` and ``jacobian_spectrum``.
    """
    return jnp.asarray(floating_array(x, name, allow_empty=True))


def as_model(model: Any) -> Stacked | tuple[Layer, ...]:
    """Validate ``model`` and return it as a ``Stacked`` or a tuple of layer functions."""
    if isinstance(model, Stacked) or (
        isinstance(model, tuple) and len(model) == 2 and callable(model[0]) and not callable(model[1])
    ):
        f, params = model
        if not callable(f):
            raise TypeError(f"model: the stacked form needs a callable f(layer_params, h), got {type(f).__name__}")
        stacked_depth(params, name="model params")
        return Stacked(f, params)
    if callable(model):
        raise TypeError(
            "model: expected a sequence of layer functions or Stacked(f, params), got a single callable; "
            "wrap it in a list: [layer]"
        )
    if not isinstance(model, Sequence) or isinstance(model, (str, bytes)):
        raise TypeError(
            f"model: expected a sequence of layer functions or Stacked(f, params), got {type(model).__name__}"
        )
    if len(model) == 0:
        raise ValueError("model: expected at least one layer, got an empty sequence")
    for i, layer in enumerate(model):
        if not callable(layer):
            raise TypeError(
                f"model: layer {i} is not callable (got {type(layer).__name__}); every layer must map h -> h"
            )
    return tuple(model)


def _first_layer(params: Any) -> Any:
    return jax.tree_util.tree_map(lambda p: p[0], params)


def layer_shapes(model: Model, x: jax.Array) -> list[jax.ShapeDtypeStruct]:
    """Shapes and dtypes of h_0 ... h_L, found without computing anything (``jax.eval_shape``).

    Raises a ValueError naming the layer whose input shape does not fit.

    >>> [s.shape for s in layer_shapes([lambda h: h[:2], jnp.tanh], jnp.ones(5))]
    [(5,), (2,), (2,)]
    """
    m = as_model(model)
    x = check_input(x)
    h = jax.ShapeDtypeStruct(x.shape, x.dtype)
    if isinstance(m, Stacked):
        p0 = jax.tree_util.tree_map(lambda p: jax.ShapeDtypeStruct(p.shape[1:], p.dtype), m.params)
        out = _eval_layer(m.f, h, "the stacked layer f", params=p0)
        if out.shape == h.shape and out.dtype != h.dtype:
            raise ValueError(
                f"x: x is {jnp.dtype(h.dtype).name} but the stacked layer returns {jnp.dtype(out.dtype).name} "
                f"(the parameters' dtype); pass x.astype(jnp.{jnp.dtype(out.dtype).name})"
            )
        if out.shape != h.shape or out.dtype != h.dtype:
            raise ValueError(
                f"model: the stacked layer f must map h to an array of the same shape and dtype "
                f"(lax.scan carries it), but maps {_shape_str(h)} to {_shape_str(out)}"
            )
        return [h] * (stacked_depth(m.params) + 1)
    shapes = [h]
    for i, layer in enumerate(m):
        h = _eval_layer(layer, h, f"layer {i}", previous=i - 1)
        shapes.append(h)
    return shapes


def _eval_layer(
    fn: Callable, h: jax.ShapeDtypeStruct, what: str, previous: int | None = None, params: Any = None
) -> jax.ShapeDtypeStruct:
    source = "x" if previous is None or previous < 0 else f"the output of layer {previous}"
    try:
        out = jax.eval_shape(fn, h) if params is None else jax.eval_shape(fn, params, h)
    except (TypeError, ValueError, IndexError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"model: {what} cannot take an input of shape {_shape_str(h)} ({source}): {first}") from e
    if not isinstance(out, jax.ShapeDtypeStruct):
        raise TypeError(f"model: {what} must return a single array, got {type(out).__name__}")
    return out


# --------------------------------------------------------------------------- forward


def forward(model: Model, x: jax.Array) -> list[jax.Array] | jax.Array:
    """Activations ``h_0 = x, h_1, ..., h_L`` of ``model`` at input ``x``.

    Returns a list of L+1 arrays for a sequence model, and one array of shape (L+1, *x.shape)
    for a stacked model (index it the same way: ``hs[l]``).

    >>> hs = forward([lambda h: 2 * h, lambda h: h + 1], jnp.array([1.0]))
    >>> [float(h[0]) for h in hs]
    [1.0, 2.0, 3.0]
    """
    m = as_model(model)
    x = check_input(x)
    layer_shapes(m, x)
    if isinstance(m, Stacked):
        def step(h, p):
            h = m.f(p, h)
            return h, h

        _, hs = lax.scan(step, x, m.params)
        return jnp.concatenate([x[None], hs])
    hs = [x]
    for layer in m:
        hs.append(layer(hs[-1]))
    return hs


def output(model: Model, x: jax.Array, perturbations: Any = None) -> jax.Array:
    """h_L, optionally with ``perturbations[l-1]`` added to each h_l (used to read off ∂/∂h_l)."""
    m = as_model(model)
    if isinstance(m, Stacked):
        if perturbations is None:
            return lax.scan(lambda h, p: (m.f(p, h), None), x, m.params)[0]
        return lax.scan(lambda h, pe: (m.f(pe[0], h) + pe[1], None), x, (m.params, perturbations))[0]
    h = x
    for i, layer in enumerate(m):
        h = layer(h)
        if perturbations is not None:
            h = h + perturbations[i]
    return h


def zero_perturbations(model: Model, x: jax.Array) -> Any:
    """Zeros shaped like h_1 ... h_L: a stacked array for a stacked model, else a list.

    Each has the type of its h_l, sharding included (found by ``jax.eval_shape`` of the forward pass
    at this ``x``): with Explicit mesh axes a gradient has its primal's sharding, so replicated zeros
    would make ∂loss/∂h_l replicated (and a stacked model's concatenation with ∂loss/∂x fail).
    """
    layer_shapes(model, x)  # validates, naming the layer that does not fit
    hs = jax.eval_shape(lambda x_: forward(model, x_), x)
    if isinstance(as_model(model), Stacked):
        return _zeros_like_type(hs, first=1)
    return [_zeros_like_type(h) for h in hs[1:]]


def _zeros_like_type(spec: jax.ShapeDtypeStruct, first: int = 0) -> jax.Array:
    """Zeros of ``spec``'s shape (minus ``first`` rows of axis 0) and dtype, with its sharding when it has one."""
    shape = (spec.shape[0] - first, *spec.shape[1:]) if first else spec.shape
    sharding = getattr(spec, "sharding", None)
    if sharding is not None:
        try:
            return jnp.zeros(shape, spec.dtype, out_sharding=sharding)
        except (TypeError, ValueError):  # a sharding that cannot be given here (e.g. a device one): plain zeros
            pass
    return jnp.zeros(shape, spec.dtype)
