"""Ready-made stacked models for the course: deep fully connected networks.

Layer l computes h_l = φ(h_{l-1} W_l + b_l) with W_l ~ N(0, σ_w²/n) (n = width) and
b_l ~ N(0, σ_b²), the convention of mean-field theory (``gradcourse.theory``). Weights come
from ``jax.nn.initializers``.
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from .activations import Activation, get_activation
from .model import Stacked


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}: expected a positive int, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name}: expected a positive int, got {value}")
    return value


def _non_negative(value: Any, name: str, strict: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__}")
    if value < 0 or (strict and value == 0):
        raise ValueError(f"{name}: expected a {'positive' if strict else 'non-negative'} number, got {value}")
    return float(value)


def dense_layer(activation: str | Activation = "tanh") -> Callable[[dict, jax.Array], jax.Array]:
    """The layer function f(p, h) = φ(h @ p["W"] + p["b"]) for ``Stacked`` models; h: (..., n)."""
    phi = get_activation(activation)

    def f(p: dict, h: jax.Array) -> jax.Array:
        return phi(h @ p["W"] + p["b"])

    f.__name__ = f"dense_{getattr(phi, '__name__', 'activation')}"
    return f


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
    to replace it. b ~ N(0, σ_b²).
    """
    depth = _positive_int(depth, "depth")
    width = _positive_int(width, "width")
    sigma_w2 = _non_negative(sigma_w2, "sigma_w2", strict=True)
    sigma_b2 = _non_negative(sigma_b2, "sigma_b2")
    kw, kb = jax.random.split(key)
    if init is None:
        init = jax.nn.initializers.variance_scaling(sigma_w2, "fan_in", "normal", batch_axis=(0,))
        W = init(kw, (depth, width, width), dtype)
    else:
        W = jax.vmap(lambda k: init(k, (width, width), dtype))(jax.random.split(kw, depth))
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
    """A deep random MLP as ``Stacked(dense_layer(activation), mlp_params(...))``; h: (batch, width)."""
    return Stacked(dense_layer(activation), mlp_params(key, depth, width, sigma_w2, sigma_b2, init=init, dtype=dtype))
