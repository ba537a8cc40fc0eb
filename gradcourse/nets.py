"""Ready-made stacked models for the course: deep fully connected networks (core layer).

Layer l computes h_l = φ(h_{l-1} W_l + b_l) with W_l ~ N(0, σ_w²/n) (n = width) and
b_l ~ N(0, σ_b²), the convention of mean-field theory (``gradcourse.theory``). Weights come
from ``jax.nn.initializers``. The layer function itself is ``gradcourse.layers.dense``: one place
builds the dense stacked layer; this module only fixes the course's defaults (tanh, a bias).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from .activations import Activation
from .layers import dense, stacked_init
from .model import Stacked
from .validate import positive_int, prng_key, real


def dense_layer(activation: str | Activation = "tanh") -> Callable[[dict, jax.Array], jax.Array]:
    """The layer function f(p, h) = φ(h @ p["W"] + p["b"]) for ``Stacked`` models; h: (..., n).

    The same function as ``gc.layers.dense(activation)`` (no normalisation).

    >>> f = dense_layer("relu")
    >>> f({"W": jnp.eye(2), "b": jnp.array([0.0, -5.0])}, jnp.array([1.0, 2.0]))
    Array([1., 0.], dtype=float32)
    """
    return dense(activation)


def mlp_params(
    key: jax.Array,
    depth: int,
    width: int,
    sigma_w2: float = 1.0,
    sigma_b2: float = 0.0,
    *,
    init: Callable | None = None,
    dtype: Any = jnp.float32,
) -> dict[str, jax.Array]:
    """Stacked params {"W": (depth, width, width), "b": (depth, width)}.

    By default W ~ N(0, σ_w²/width) via ``jax.nn.initializers.variance_scaling(σ_w², "fan_in",
    "normal")``; pass ``init`` (any ``jax.nn.initializers`` initializer, e.g. ``orthogonal()``)
    to replace it. b ~ N(0, σ_b²). ``sigma_w2`` / ``sigma_b2`` may be traced (under ``jit``).

    >>> p = mlp_params(jax.random.PRNGKey(0), depth=3, width=4)
    >>> p["W"].shape, p["b"].shape
    ((3, 4, 4), (3, 4))
    """
    key = prng_key(key)
    depth = positive_int(depth, "depth")
    width = positive_int(width, "width")
    sigma_w2 = real(sigma_w2, "sigma_w2", low=0.0, low_open=True)
    sigma_b2 = real(sigma_b2, "sigma_b2", low=0.0)
    if init is not None and not callable(init):
        raise TypeError(f"init: expected a jax.nn.initializers initializer or None, got {type(init).__name__}")
    kw, kb = jax.random.split(key)
    if init is None:  # one initialiser call over the whole (depth, width, width) array
        fan_in = jax.nn.initializers.variance_scaling(sigma_w2, "fan_in", "normal", batch_axis=(0,))
        W = fan_in(kw, (depth, width, width), dtype)
    else:
        W = stacked_init(init, kw, depth, (width, width), dtype)
    b = jnp.sqrt(sigma_b2) * jax.random.normal(kb, (depth, width), dtype)
    return {"W": W, "b": b}


def mlp(
    key: jax.Array,
    depth: int,
    width: int,
    activation: str | Activation = "tanh",
    sigma_w2: float = 1.0,
    sigma_b2: float = 0.0,
    *,
    init: Callable | None = None,
    dtype: Any = jnp.float32,
) -> Stacked:
    """A deep random MLP as ``Stacked(dense_layer(activation), mlp_params(...))``; h: (batch, width).

    >>> import gradcourse as gc
    >>> model = gc.mlp(jax.random.PRNGKey(0), depth=10, width=32, activation="tanh", sigma_w2=1.5)
    >>> gc.forward(model, jnp.ones((2, 32))).shape  # h_0 ... h_10
    (11, 2, 32)
    """
    f = dense_layer(activation)
    return Stacked(f, mlp_params(key, depth, width, sigma_w2, sigma_b2, init=init, dtype=dtype))
