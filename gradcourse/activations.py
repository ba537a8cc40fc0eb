"""Activation functions by name, shared by the theory, the model builders and the notebooks.

Every entry is a JAX-differentiable elementwise function from ``jax.nn`` / ``jax.numpy``.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.scipy.special import erf

Activation = Callable[[jax.Array], jax.Array]


def _linear(x: jax.Array) -> jax.Array:
    return x


def _gelu(x: jax.Array) -> jax.Array:
    return jax.nn.gelu(x, approximate=False)


ACTIVATIONS: dict[str, Activation] = {
    "linear": _linear,
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "leaky_relu": jax.nn.leaky_relu,  # negative slope 0.01
    "sigmoid": jax.nn.sigmoid,
    "erf": erf,
    "gelu": _gelu,  # exact (erf) form
    "silu": jax.nn.silu,
    "elu": jax.nn.elu,
    "selu": jax.nn.selu,
}


def get_activation(activation: str | Activation) -> Activation:
    """Return the elementwise function for ``activation`` (a name in ``ACTIVATIONS`` or a callable)."""
    if callable(activation):
        return activation
    if isinstance(activation, str):
        try:
            return ACTIVATIONS[activation]
        except KeyError:
            names = ", ".join(repr(n) for n in ACTIVATIONS)
            raise ValueError(
                f"activation: unknown name {activation!r}; expected one of {names} or a callable"
            ) from None
    raise TypeError(f"activation: expected a name (str) or a callable, got {type(activation).__name__}")


def activation_name(activation: str | Activation) -> str:
    """A readable label for plots: the name itself, or the callable's ``__name__``."""
    if isinstance(activation, str):
        return activation
    return getattr(activation, "__name__", type(activation).__name__).lstrip("_")
