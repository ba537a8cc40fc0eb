"""Jacobian chains: push a tangent forward or pull a cotangent back through every layer.

With J_l = ∂h_l/∂h_{l-1}, a gradient is a product of layer Jacobians. None of these functions
materialises a Jacobian: they use ``jax.jvp`` / ``jax.vjp`` once over the whole model.

The backward signal at every layer is read off in a single reverse pass with a standard trick:
add a zero perturbation e_l to each h_l; then ∂loss/∂e_l = ∂loss/∂h_l.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from .model import Model, Stacked, as_model, check_input, forward, layer_shapes, output, zero_perturbations
from .validate import scalar_loss


def _join(first: jax.Array, rest: Any, stacked: bool) -> list[jax.Array] | jax.Array:
    if stacked:
        return jnp.concatenate([first[None], rest])
    return [first, *rest]


def _check_like(v: Any, like: jax.ShapeDtypeStruct, name: str, what: str) -> jax.Array:
    v = check_input(v, name)
    if tuple(v.shape) != tuple(like.shape):
        raise ValueError(f"{name}: expected shape {tuple(like.shape)} (the shape of {what}), got {tuple(v.shape)}")
    return v.astype(like.dtype)


def _eval_loss(loss: Callable, h: jax.ShapeDtypeStruct) -> Any:
    """``jax.eval_shape(loss, h)``; a loss that does not take one argument gets a message naming ``loss``."""
    try:
        inspect.signature(loss).bind(h)
    except TypeError as e:
        raise TypeError(
            f"loss: expected a function of one argument, h_L -> scalar, but calling it with h_L fails: {e}"
        ) from None
    except ValueError:  # no signature (some builtins): let the call itself decide
        pass
    return jax.eval_shape(loss, h)


def vjp_chain(model: Model, x: jax.Array, u: jax.Array) -> list[jax.Array] | jax.Array:
    """Cotangent pulled back to every layer: c_L = u and c_l = uᵀ J_L ⋯ J_{l+1} for l = L-1 ... 0.

    ``u`` has the shape of h_L. Returns L+1 arrays shaped like h_0 ... h_L (a list, or one array
    of shape (L+1, *x.shape) for a stacked model); ``result[0]`` is uᵀ ∂h_L/∂x.

    >>> cs = vjp_chain([lambda h: 2 * h, lambda h: 3 * h], jnp.ones(2), jnp.ones(2))
    >>> [c.tolist() for c in cs]  # u J_2 J_1, u J_2, u
    [[6.0, 6.0], [3.0, 3.0], [1.0, 1.0]]
    """
    m = as_model(model)
    x = check_input(x)
    shapes = layer_shapes(m, x)
    u = _check_like(u, shapes[-1], "u", "the model output h_L")
    e = zero_perturbations(m, x)
    _, pull = jax.vjp(lambda x_, e_: output(m, x_, e_), x, e)
    gx, ge = pull(u)
    return _join(gx, ge, isinstance(m, Stacked))


def backward(model: Model, x: jax.Array, loss: Callable[[jax.Array], jax.Array]) -> list[jax.Array] | jax.Array:
    """Backward signal ∂loss/∂h_l for l = 0 ... L, where ``loss`` maps h_L to a scalar.

    Same layout as ``forward``. Costs one forward and one reverse pass (like ``jax.grad``).

    >>> gs = backward([lambda h: 2 * h], jnp.array([1.0, 2.0]), lambda h: jnp.sum(h**2) / 2)
    >>> [g.tolist() for g in gs]  # ∂loss/∂h_0 = 2 h_1 = 4 h_0, ∂loss/∂h_1 = h_1
    [[4.0, 8.0], [2.0, 4.0]]
    """
    m = as_model(model)
    x = check_input(x)
    if not callable(loss):
        raise TypeError(f"loss: expected a function h_L -> scalar, got {type(loss).__name__}")
    shapes = layer_shapes(m, x)
    scalar_loss(_eval_loss(loss, shapes[-1]))
    e = zero_perturbations(m, x)
    gx, ge = jax.grad(lambda x_, e_: loss(output(m, x_, e_)), argnums=(0, 1))(x, e)
    return _join(gx, ge, isinstance(m, Stacked))


def jvp_chain(model: Model, x: jax.Array, v: jax.Array) -> list[jax.Array] | jax.Array:
    """Tangent pushed forward through every layer: t_0 = v and t_l = J_l ⋯ J_1 v.

    ``v`` has the shape of x. Same layout as ``forward``.

    >>> ts = jvp_chain([lambda h: 2 * h, jnp.sin], jnp.zeros(2), jnp.ones(2))
    >>> [t.tolist() for t in ts]  # v, J_1 v, J_2 J_1 v (sin' (0) = 1)
    [[1.0, 1.0], [2.0, 2.0], [2.0, 2.0]]
    """
    m = as_model(model)
    x = check_input(x)
    v = _check_like(v, jax.ShapeDtypeStruct(x.shape, x.dtype), "v", "the input x")
    _, tangents = jax.jvp(lambda x_: forward(m, x_), (x,), (v,))
    return tangents
