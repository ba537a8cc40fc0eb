"""Normalisation layers and residual blocks for gradcourse's stacked models.

Three pure normalisations (features on the last axis; ε inside the square root):

* ``batch_normalize(h)``  — each feature over the batch: x̂ = (h − E_B[h]) / sqrt(Var_B[h] + ε), the mean
  and (population) variance taken over **every axis but the last** — the batch axis for (B, n),
  batch and positions for conv-shaped (B, H, W, C) inputs. Training mode only: there are no running
  averages (Ioffe & Szegedy 2015).
* ``layer_normalize(h)`` — each example over its features: (h − E_n[h]) / sqrt(Var_n[h] + ε) on the last
  axis (Ba et al. 2016).
* ``rms_normalize(h)``   — each example over its features, without centring: h / sqrt(E_n[h²] + ε)
  (Zhang & Sennrich 2019).

Each takes an optional learnable ``scale`` γ and ``shift`` β of shape (n,): y = γ ⊙ x̂ + β.

Layer builders for ``gc.Stacked(f, params)`` (params stacked along a leading depth axis):

* ``dense(activation, norm, norm_position)`` — f(p, h) = φ(N(h) W + b) ("pre") or φ(N(h W + b)) ("post");
* ``mlp_block(activation, norm)``            — f(p, h) = φ(N(h) W1 + b1) W2 + b2, a two-layer branch;
* ``residual(f, scale)``                     — g(p, h) = h + s · f(p, h), s a number, 1/√L or a learnable
  per-layer p["alpha"] initialised to 0 (SkipInit, De & Smith 2020; ReZero, Bachlechner et al. 2020);
* ``init_params(key, depth, width, ...)``     — the stacked params these layers read.

Example — a depth-50 pre-norm residual ReLU stack with zero-initialised branches::

    f = residual(mlp_block("relu", norm="layer"), scale="alpha")
    params = init_params(key, 50, 128, block="mlp", sigma_w2=2.0, norm="layer", alpha=True)
    model = gc.Stacked(f, params)
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

import jax
import jax.numpy as jnp

from .activations import Activation, get_activation
from .model import check_input
from .validate import boolean, one_of, positive_int, prng_key, real, wide_float

__all__ = [
    "NORMS",
    "batch_normalize",
    "dense",
    "get_norm",
    "init_params",
    "layer_normalize",
    "mlp_block",
    "residual",
    "rms_normalize",
    "stacked_init",
]

LayerFn = Callable[[dict, jax.Array], jax.Array]


# --------------------------------------------------------------------------- validation


def _check_h(h: Any, min_ndim: int, what: str) -> jax.Array:
    h = check_input(h, "h")
    if h.ndim < min_ndim:
        raise ValueError(f"h: {what} needs at least {min_ndim} axes, got shape {tuple(h.shape)}")
    return h


def _check_affine(v: Any, name: str, n: int) -> jax.Array | None:
    if v is None:
        return None
    if not hasattr(v, "shape"):
        v = jnp.asarray(v)
    if tuple(v.shape) not in ((), (n,)):
        raise ValueError(
            f"{name}: expected shape ({n},) (one value per feature, the last axis of h) or (), got {tuple(v.shape)}"
        )
    return v


def _affine(x: jax.Array, scale: jax.Array | None, shift: jax.Array | None) -> jax.Array:
    if scale is not None:
        x = x * scale
    if shift is not None:
        x = x + shift
    return x


# --------------------------------------------------------------------------- normalisations


def batch_normalize(
    h: jax.Array, scale: jax.Array | None = None, shift: jax.Array | None = None, *, eps: float = 1e-5
) -> jax.Array:
    """Batch normalisation (training mode): each feature standardised over the batch.

    h: (B, n) or conv-shaped (B, ..., n), features on the last axis. Mean μ and population
    variance σ² are taken over all axes but the last (batch and positions), so every feature has
    zero mean and variance σ²/(σ² + ε) ≈ 1 over the batch: y = γ ⊙ (h − μ) / sqrt(σ² + ε) + β.
    The output of one example depends on the whole batch. ``scale`` γ, ``shift`` β: (n,) or None.
    """
    h = _check_h(h, 2, "batch_normalize (a batch axis and a feature axis)")
    eps = real(eps, "eps", low=0.0)
    axes = tuple(range(h.ndim - 1))
    if math.prod(h.shape[:-1]) < 2:
        raise ValueError(
            f"h: batch_normalize needs at least 2 values per feature to standardise, got shape {tuple(h.shape)}"
        )
    x = wide_float(h)
    mean = jnp.mean(x, axis=axes, keepdims=True)
    var = jnp.mean(jnp.square(x - mean), axis=axes, keepdims=True)
    y = (x - mean) * jax.lax.rsqrt(var + eps)
    n = h.shape[-1]
    return _affine(y, _check_affine(scale, "scale", n), _check_affine(shift, "shift", n)).astype(h.dtype)


def layer_normalize(
    h: jax.Array, scale: jax.Array | None = None, shift: jax.Array | None = None, *, eps: float = 1e-5
) -> jax.Array:
    """Layer normalisation: each example standardised over its features (the last axis).

    h: (..., n). y = γ ⊙ (h − mean_n(h)) / sqrt(var_n(h) + ε) + β, so each example's n outputs
    have mean 0 and mean square ≈ 1. Invariant to h → c·h + d for c > 0 (up to ε).
    ``scale`` γ, ``shift`` β: (n,) or None.
    """
    h = _check_h(h, 1, "layer_normalize (a feature axis)")
    eps = real(eps, "eps", low=0.0)
    x = wide_float(h)
    mean = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(x - mean), axis=-1, keepdims=True)
    y = (x - mean) * jax.lax.rsqrt(var + eps)
    n = h.shape[-1]
    return _affine(y, _check_affine(scale, "scale", n), _check_affine(shift, "shift", n)).astype(h.dtype)


def rms_normalize(h: jax.Array, scale: jax.Array | None = None, *, eps: float = 1e-6) -> jax.Array:
    """RMS normalisation: each example divided by its root mean square over features (no centring).

    h: (..., n). y = γ ⊙ h / sqrt(mean_n(h²) + ε): mean square ≈ 1 per example. Invariant to
    h → c·h for c > 0 (up to ε). ``scale`` γ: (n,) or None (RMSNorm has no shift).
    """
    h = _check_h(h, 1, "rms_normalize (a feature axis)")
    eps = real(eps, "eps", low=0.0)
    x = wide_float(h)
    y = x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + eps)
    return _affine(y, _check_affine(scale, "scale", h.shape[-1]), None).astype(h.dtype)


NORMS: dict[str, Callable[..., jax.Array]] = {"batch": batch_normalize, "layer": layer_normalize, "rms": rms_normalize}


def get_norm(norm: Literal["batch", "layer", "rms"] | None) -> Callable[..., jax.Array] | None:
    """The function for ``norm`` ("batch", "layer", "rms"), or None for None.

    >>> get_norm("layer").__name__
    'layer_normalize'
    """
    return None if one_of(norm, "norm", (None, *NORMS)) is None else NORMS[norm]


def _apply_norm(norm: Literal["batch", "layer", "rms"] | None, p: dict, h: jax.Array) -> jax.Array:
    """Normalise h with ``norm``, using p["scale"] / p["shift"] when the params hold them."""
    if norm is None:
        return h
    if norm == "rms":
        return rms_normalize(h, p.get("scale"))
    return NORMS[norm](h, p.get("scale"), p.get("shift"))


def _check_params(p: Any, needed: tuple[str, ...], builder: str) -> None:
    if not isinstance(p, dict):
        raise TypeError(f"p: {builder} expects a dict of layer params, got {type(p).__name__}")
    missing = [k for k in needed if k not in p]
    if missing:
        raise ValueError(
            f"p: {builder} needs params {', '.join(repr(k) for k in missing)}, but the dict has {sorted(p)}; "
            f"build them with gc.layers.init_params(..., block={'mlp' if 'W1' in needed else 'dense'!r})"
        )


# --------------------------------------------------------------------------- layer builders


def dense(
    activation: str | Activation = "relu",
    norm: Literal["batch", "layer", "rms"] | None = None,
    norm_position: Literal["pre", "post"] = "post",
) -> LayerFn:
    """Layer function f(p, h) for ``gc.Stacked``: a dense layer with an optional normalisation.

    h: (B, n) (or (B, ..., n)); p["W"]: (n, n); p["b"]: (n,) optional; p["scale"], p["shift"]:
    (n,) optional affine parameters of the norm N.

    * norm_position="post": f(p, h) = φ(N(h W + b)) — N on the pre-activation, the placement of
      Ioffe & Szegedy (2015);
    * norm_position="pre":  f(p, h) = φ(N(h) W + b) — N on the layer input, as in pre-norm
      residual branches.
    """
    phi = get_activation(activation)
    get_norm(norm)
    one_of(norm_position, "norm_position", ("pre", "post"))

    def f(p: dict, h: jax.Array) -> jax.Array:
        _check_params(p, ("W",), "dense")
        if norm_position == "pre":
            h = _apply_norm(norm, p, h)
        z = h @ p["W"]
        if "b" in p:
            z = z + p["b"]
        if norm_position == "post":
            z = _apply_norm(norm, p, z)
        return phi(z)

    suffix = f"_{norm_position}{norm}norm" if norm else ""
    f.__name__ = f"dense_{getattr(phi, '__name__', 'activation').lstrip('_')}{suffix}"
    return f


def mlp_block(activation: str | Activation = "relu", norm: Literal["batch", "layer", "rms"] | None = None) -> LayerFn:
    """Two-layer branch f(p, h) = φ(N(h) W1 + b1) W2 + b2 (N on the block input, or none).

    The residual branch of pre-activation ResNets and Pre-LN transformer MLPs; wrap it in
    ``residual``. h: (B, n); p["W1"]: (n, m); p["W2"]: (m, n); p["b1"]: (m,), p["b2"]: (n,)
    optional; p["scale"], p["shift"]: (n,) optional. The output ends with a linear map, so it has
    zero mean over random W2, and it changes the residual stream's variance only additively.
    """
    phi = get_activation(activation)
    get_norm(norm)

    def f(p: dict, h: jax.Array) -> jax.Array:
        _check_params(p, ("W1", "W2"), "mlp_block")
        u = _apply_norm(norm, p, h) @ p["W1"]
        if "b1" in p:
            u = u + p["b1"]
        out = phi(u) @ p["W2"]
        if "b2" in p:
            out = out + p["b2"]
        return out

    f.__name__ = f"mlp_block_{getattr(phi, '__name__', 'activation').lstrip('_')}" + (f"_{norm}norm" if norm else "")
    return f


def residual(f: LayerFn, scale: float | Literal["1/sqrt(L)", "alpha"] = 1.0, *, depth: int | None = None) -> LayerFn:
    """Residual layer g(p, h) = h + s · f(p, h); its Jacobian is I + s · ∂f/∂h.

    ``scale`` s:

    * a number ≥ 0 (1.0: the plain ResNet sum of He et al. 2016);
    * "1/sqrt(L)": s = 1/√depth (pass ``depth``), which keeps the stream's variance bounded in depth;
    * "alpha": a learnable per-layer scalar s = p["alpha"] (shape () per layer, stacked (L,)),
      initialised to 0 by ``init_params(..., alpha=True)``: every layer is the identity at
      initialisation (SkipInit, De & Smith 2020; ReZero, Bachlechner et al. 2020; the zero-init
      idea of Fixup, Zhang et al. 2019).

    ``f`` must map h to an array of h's shape (f sees the whole p, and ignores p["alpha"]).
    """
    if not callable(f):
        raise TypeError(f"f: expected a layer function f(p, h), got {type(f).__name__}")
    if isinstance(scale, str):
        if scale == "1/sqrt(L)":
            if depth is None:
                raise ValueError("depth: scale='1/sqrt(L)' needs depth=L (a positive integer), got None")
            depth = positive_int(depth, "depth")
            s: float | None = 1.0 / math.sqrt(depth)
        elif scale == "alpha":
            s = None
        else:
            raise ValueError(f"scale: expected a number, '1/sqrt(L)' or 'alpha', got {scale!r}")
    else:
        s = real(scale, "scale", low=0.0, expected="a non-negative number, '1/sqrt(L)' or 'alpha'")

    def g(p: dict, h: jax.Array) -> jax.Array:
        out = f(p, h)
        if jnp.shape(out) != jnp.shape(h):
            raise ValueError(
                f"f: a residual branch must keep the shape of h, but maps {tuple(jnp.shape(h))} "
                f"to {tuple(jnp.shape(out))}"
            )
        if s is None:
            if not isinstance(p, dict) or "alpha" not in p:
                raise ValueError("p: scale='alpha' needs p['alpha']; build params with init_params(..., alpha=True)")
            return h + p["alpha"] * out
        return h + s * out

    g.__name__ = f"residual_{getattr(f, '__name__', 'f')}"
    return g


# --------------------------------------------------------------------------- parameters


def stacked_init(init: Callable, key: jax.Array, depth: int, shape: tuple[int, ...], dtype: Any) -> jax.Array:
    """``depth`` independent draws of ``init(key, shape, dtype)``, stacked: (depth, *shape).

    One ``vmap``ped initialiser call over ``jax.random.split(key, depth)``, so the (depth, *shape)
    result is written once rather than built from L separate arrays and then copied by a stack.

    >>> W = stacked_init(jax.nn.initializers.orthogonal(), jax.random.PRNGKey(0), 3, (4, 4), jnp.float32)
    >>> W.shape, bool(jnp.allclose(W[1] @ W[1].T, jnp.eye(4), atol=1e-5))
    ((3, 4, 4), True)
    """
    return jax.vmap(lambda k: init(k, shape, dtype))(jax.random.split(key, depth))


def init_params(
    key: jax.Array,
    depth: int,
    width: int,
    *,
    block: Literal["dense", "mlp"] = "dense",
    sigma_w2: float = 1.0,
    sigma_w2_out: float = 1.0,
    hidden: int | None = None,
    init: Callable | None = None,
    bias: bool = False,
    norm: Literal["batch", "layer", "rms"] | None = None,
    alpha: bool = False,
    dtype: Any = jnp.float32,
) -> dict[str, jax.Array]:
    """Stacked params (leading axis ``depth``) for ``dense`` or ``mlp_block`` layers.

    * block="dense": "W": (L, n, n) ~ N(0, σ_w²/n) (``variance_scaling(sigma_w2, "fan_in", "normal")``);
    * block="mlp": "W1": (L, n, m) ~ N(0, σ_w²/n) and "W2": (L, m, n) ~ N(0, σ_out²/m) with
      σ_out² = ``sigma_w2_out``; m = ``hidden`` (default n). ReLU with σ_w² = 2, σ_out² = 1 gives a
      branch whose output mean square equals its input's;
    * ``init``: any ``jax.nn.initializers`` initializer, replacing the weight initializer(s);
    * bias=True: "b" (or "b1", "b2") zeros; norm="batch"|"layer": "scale" ones and "shift" zeros,
      (L, n); norm="rms": "scale" only; alpha=True: "alpha" zeros, (L,) (for ``residual(..., "alpha")``).
    """
    key = prng_key(key)
    depth = positive_int(depth, "depth")
    width = positive_int(width, "width")
    one_of(block, "block", ("dense", "mlp"))
    sigma_w2 = real(sigma_w2, "sigma_w2", low=0.0, low_open=True)
    sigma_w2_out = real(sigma_w2_out, "sigma_w2_out", low=0.0, low_open=True)
    hidden = width if hidden is None else positive_int(hidden, "hidden")
    if init is not None and not callable(init):
        raise TypeError(f"init: expected a jax.nn.initializers initializer or None, got {type(init).__name__}")
    boolean(bias, "bias")
    boolean(alpha, "alpha")
    get_norm(norm)
    fan_in = jax.nn.initializers.variance_scaling
    zeros, ones = jax.nn.initializers.zeros, jax.nn.initializers.ones
    k1, k2 = jax.random.split(key)
    params: dict[str, jax.Array] = {}
    if block == "dense":
        params["W"] = stacked_init(init or fan_in(sigma_w2, "fan_in", "normal"), k1, depth, (width, width), dtype)
        if bias:
            params["b"] = zeros(k2, (depth, width), dtype)
    else:
        params["W1"] = stacked_init(init or fan_in(sigma_w2, "fan_in", "normal"), k1, depth, (width, hidden), dtype)
        params["W2"] = stacked_init(init or fan_in(sigma_w2_out, "fan_in", "normal"), k2, depth, (hidden, width), dtype)
        if bias:
            params["b1"] = zeros(k1, (depth, hidden), dtype)
            params["b2"] = zeros(k2, (depth, width), dtype)
    if norm is not None:
        params["scale"] = ones(k1, (depth, width), dtype)
        if norm != "rms":
            params["shift"] = zeros(k1, (depth, width), dtype)
    if alpha:
        params["alpha"] = zeros(k1, (depth,), dtype)
    return params
