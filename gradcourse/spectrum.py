"""Singular values of the input-output Jacobian J = ∂h_L/∂x at one input.

Exact for small widths (J materialised with ``jax.jacfwd`` / ``jax.jacrev``, then an SVD); for
large widths a matrix-free Lanczos estimate built only from JVPs and VJPs (``jax.linearize``).
"""
from __future__ import annotations

import math
from typing import Literal

import jax
import jax.numpy as jnp
from jax import lax

from .model import Model, as_model, check_input, layer_shapes, output

EXACT_MAX_SIZE = 4096


def jacobian_spectrum(
    model: Model,
    x: jax.Array,
    *,
    method: Literal["auto", "exact", "lanczos"] = "auto",
    num_iters: int = 64,
    key: jax.Array | None = None,
) -> jax.Array:
    """Singular values of J = ∂h_L/∂x (x and h_L flattened), in descending order.

    ``method="exact"``: all min(m, n) singular values, J (m×n) materialised.
    ``method="lanczos"``: ``num_iters`` steps of Lanczos on JᵀJ using only J v and Jᵀ u products;
    returns the Ritz values' square roots. The first converges quickly to σ_max (from below);
    the last is an upper bound on σ_min that is only tight when the spectrum's lower edge is
    well separated. ``"auto"`` is exact when x and h_L have at most 4096 entries each.
    """
    m = as_model(model)
    x = check_input(x)
    if method not in ("auto", "exact", "lanczos"):
        raise ValueError(f"method: expected 'auto', 'exact' or 'lanczos', got {method!r}")
    if not isinstance(num_iters, int) or isinstance(num_iters, bool) or num_iters <= 0:
        raise ValueError(f"num_iters: expected a positive int, got {num_iters!r}")
    out_shape = layer_shapes(m, x)[-1]
    n, size_out = x.size, math.prod(out_shape.shape)
    if method == "auto":
        method = "exact" if max(n, size_out) <= EXACT_MAX_SIZE else "lanczos"

    def flat(v):
        return output(m, v.reshape(x.shape)).reshape(-1)

    if method == "exact":
        jac = jax.jacfwd(flat)(x.reshape(-1)) if n <= size_out else jax.jacrev(flat)(x.reshape(-1))
        return jnp.linalg.svd(jac, compute_uv=False)

    _, jvp = jax.linearize(flat, x.reshape(-1))
    vjp = jax.linear_transpose(jvp, x.reshape(-1))
    k = min(num_iters, n)
    key = jax.random.PRNGKey(0) if key is None else key
    eig = _lanczos_eigs(lambda v: vjp(jvp(v))[0], n, k, key, x.dtype)
    return jnp.sqrt(jnp.clip(eig, 0.0))[::-1]


def _lanczos_eigs(matvec, n: int, k: int, key: jax.Array, dtype) -> jax.Array:
    """Eigenvalues (ascending) of the k×k tridiagonal Lanczos matrix of a symmetric operator.

    Full re-orthogonalisation against all previous vectors keeps the Ritz values clean.
    """
    q0 = jax.random.normal(key, (n,), dtype)
    q0 = q0 / jnp.linalg.norm(q0)
    basis = jnp.zeros((k, n), dtype).at[0].set(q0)

    def step(carry, i):
        basis, beta_prev = carry
        q = basis[i]
        w = matvec(q)
        alpha = jnp.dot(q, w)
        # subtract projections on all previous vectors (twice, for numerical safety)
        mask = (jnp.arange(k) <= i).astype(dtype)[:, None]
        for _ in range(2):
            w = w - (basis * mask).T @ ((basis * mask) @ w)
        beta = jnp.linalg.norm(w)
        safe = jnp.where(beta > 1e-30, beta, 1.0)
        nxt = jnp.where(beta > 1e-30, w / safe, jnp.zeros_like(w))
        basis = lax.cond(i + 1 < k, lambda b: b.at[i + 1].set(nxt), lambda b: b, basis)
        return (basis, beta), (alpha, beta)

    _, (alphas, betas) = lax.scan(step, (basis, jnp.zeros((), dtype)), jnp.arange(k))
    tri = jnp.diag(alphas) + jnp.diag(betas[:-1], 1) + jnp.diag(betas[:-1], -1)
    return jnp.linalg.eigvalsh(tri)
