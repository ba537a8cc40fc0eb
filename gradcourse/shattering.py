"""Shattered gradients (Balduzzi et al. 2017): how smooth the input-gradient of every layer is along a line of inputs.

Layer: experiments. Runs a model's forward-mode chain (``gc.jvp_chain``) on a 1-D input embedded by a first ReLU
layer and summarises each layer's gradient curves by their lag-1 autocorrelation; returns arrays, draws nothing.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .chains import jvp_chain

__all__ = ["lag1_autocorrelation", "shattering_profile"]


def lag1_autocorrelation(G: jax.Array) -> jax.Array:
    """G: (points, units) gradient curves along a line → mean over units of the lag-1 autocorrelation (a scalar).

    Each column is centred; columns that are constant (dead units) are left out. 1 means smooth, 0 white noise.

    >>> t = jnp.linspace(0, 1, 200)[:, None]
    >>> float(lag1_autocorrelation(jnp.sin(6.0 * t))) > 0.99
    True
    """
    G = jnp.asarray(G)
    G = G - G.mean(axis=0)
    var = jnp.sum(G**2, axis=0)
    live = var > 0
    r = jnp.sum(G[1:] * G[:-1], axis=0) / jnp.where(live, var, 1.0)
    return jnp.sum(jnp.where(live, r, 0.0)) / jnp.maximum(jnp.sum(live), 1)


def shattering_profile(model, xs: jax.Array, w_in: jax.Array, b_in: jax.Array) -> jax.Array:
    """Lag-1 autocorrelation of ∂h_l/∂x along the inputs ``xs`` (P,), for l = 0 … L. Shape (L + 1,).

    h_0 = relu(x w_in + b_in) ∈ R^n (w_in, b_in: (n,)) embeds the scalar x; ``model`` (a ``gc.Stacked`` or a
    layer list) maps h_0 to h_L. One forward-mode pass gives every layer's tangent ∂h_l/∂x, shape (P, n).
    """
    z = xs[:, None] * w_in + b_in
    tangents = jvp_chain(model, jax.nn.relu(z), w_in * (z > 0))        # (L + 1, P, n)
    return jax.vmap(lag1_autocorrelation)(jnp.asarray(tangents, jnp.float32))
