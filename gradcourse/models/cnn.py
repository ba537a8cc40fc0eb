"""A small deep CNN for 8×8 images (scikit-learn's digits), plain or residual, with optional normalisation (core layer).

The model convention of ``gradcourse.models``: a frozen ``Config``, ``init(key, config)``,
``apply(params, config, images)``, ``loss(params, config, batch)`` and ``states(params, config, images)``
(block outputs and activation outputs, for the gradient and dead-unit tools), plus ``accuracy``.

>>> import jax, jax.numpy as jnp
>>> config = Config(depth=3, width=4, residual=True, norm="batch")
>>> params = init(jax.random.PRNGKey(0), config)
>>> images, labels = jnp.ones((2, 8, 8, 1)), jnp.array([3, 7])
>>> apply(params, config, images).shape, [a.shape for a in states(params, config, images)]
((2, 10), [(4, 2, 8, 8, 4), (3, 2, 8, 8, 4)])
>>> bool(loss(params, config, (images, labels)) > 0)
True

NHWC images ``x: (B, H, W, C_in)``; every convolution is 3×3, stride 1, "SAME" padding, so the
spatial size never changes and every block keeps ``width`` channels:

* stem:   h_0 = conv(x, W_0) + b_0  (C_in → width, linear; optionally stride 2);
* plain block l = 1..L (conv → norm → activation):       h_l = φ(N(conv(h_{l-1}, W_l) + b_l));
* residual block (pre-activation, He et al. 2016b):      h_l = h_{l-1} + s · (conv(φ(N(h_{l-1})), W_l) + b_l),
  so ∂h_l/∂h_{l-1} = I + s · ∂branch/∂h: the identity path survives any depth (He et al. 2016a);
* head: global average pool over positions of h_L (residual: of φ(N(h_L)), the final
  norm + activation of pre-activation ResNets), then a linear map to ``n_classes`` logits.

N is ``gradcourse.layers.batch_normalize`` (each channel over batch and positions, training mode: it
always uses the statistics of the batch it is given) or ``layer_normalize`` (each position over its
channels), with learnable ``scale`` / ``shift``; ``None`` for no normalisation.

Parameters are a plain pytree, blocks stacked along a leading depth axis and run by ``lax.scan``
(compile time does not grow with depth)::

    {"stem": {"W": (3, 3, C_in, n), "b": (n,)},
     "blocks": {"W": (L, 3, 3, n, n), "b": (L, n), ["scale", "shift": (L, n)]},
     ["out_norm": {"scale", "shift": (n,)}]   # residual nets with a norm only
     "head": {"W": (n, n_classes), "b": (n_classes,)}}

so ``gc.train.fit(..., stacked=("blocks",))`` and ``gc.layer_norms(params["blocks"], stacked=True)``
give one value per block. ``init``: ``"he_normal"`` (He et al. 2015: N(0, 2/fan_in), zero biases)
or ``"pytorch"`` (PyTorch's ``nn.Conv2d`` / ``nn.Linear`` default, kaiming_uniform(a=√5):
weights and biases U(±1/√fan_in), i.e. weight variance 1/(3·fan_in)), fan_in = 9 · C_in for a conv.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

import jax
import jax.numpy as jnp
from jax import lax

from ..activations import get_activation
from ..layers import batch_normalize, layer_normalize
from ..validate import boolean, one_of, positive_int, prng_key, real

__all__ = ["Config", "init", "apply", "loss", "states", "accuracy"]

_INITS = ("he_normal", "pytorch")
_NORMS = {"batch": batch_normalize, "layer": layer_normalize}


@dataclass(frozen=True)
class Config:
    """What ``init`` builds and ``apply`` runs; frozen and hashable (a static ``jit`` argument).

    ``depth`` L ≥ 1 conv blocks of ``width`` channels; ``residual``: identity shortcuts with branch
    scale ``branch_scale`` (a number ≥ 0, or ``"1/sqrt(L)"``); ``norm``: None, "batch" or "layer";
    ``activation``: a name from ``gc.ACTIVATIONS``; ``init``: "he_normal" or "pytorch";
    ``stem_stride`` 1 or 2: a stride-2 stem halves H and W (8×8 → 4×4, like the strided stem of a
    ResNet), making every block 4× cheaper.

    >>> Config(norm="group")
    Traceback (most recent call last):
    ...
    ValueError: norm: expected one of None, 'batch', 'layer', got 'group'
    """

    depth: int = 16
    width: int = 16
    residual: bool = False
    norm: Literal["batch", "layer"] | None = None
    activation: str = "relu"
    branch_scale: float | Literal["1/sqrt(L)"] = 1.0
    init: Literal["he_normal", "pytorch"] = "he_normal"
    stem_stride: Literal[1, 2] = 1
    in_channels: int = 1
    n_classes: int = 10

    def __post_init__(self) -> None:
        for name in ("depth", "width", "in_channels", "n_classes"):
            object.__setattr__(self, name, positive_int(getattr(self, name), name))
        object.__setattr__(self, "residual", boolean(self.residual, "residual"))
        one_of(self.norm, "norm", (None, "batch", "layer"))
        if not isinstance(self.activation, str):
            raise TypeError(f"activation: expected an activation name (str), got {type(self.activation).__name__}")
        try:
            get_activation(self.activation)
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"activation: {e}") from None
        if isinstance(self.branch_scale, str):
            one_of(self.branch_scale, "branch_scale", ("1/sqrt(L)",))
        else:
            s = real(self.branch_scale, "branch_scale", low=0.0, expected="a number >= 0 or '1/sqrt(L)'")
            object.__setattr__(self, "branch_scale", s)
        one_of(self.stem_stride, "stem_stride", (1, 2))
        one_of(self.init, "init", _INITS)

    def replace(self, **changes: Any) -> Config:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


def _check_config(config: Any) -> Config:
    if not isinstance(config, Config):
        raise TypeError(f"config: expected a gc.models.cnn.Config, got {type(config).__name__}")
    return config


def _branch_scale(config: Config) -> float:
    s = config.branch_scale
    return 1.0 / math.sqrt(config.depth) if isinstance(s, str) else float(s)


# --------------------------------------------------------------------------- parameters


def _weight_bias(
    key: jax.Array, shape: tuple[int, ...], fan_in: int, init: str, depth: int | None = None
) -> tuple[jax.Array, jax.Array]:
    """W: shape (or (depth, *shape), one independent draw per block) and its bias (shape[-1],) / (depth, shape[-1])."""
    kw = key
    lead = () if depth is None else (depth,)
    batch_axis = () if depth is None else (0,)  # the depth axis is not part of the fan-in
    if init == "he_normal":
        W = jax.nn.initializers.he_normal(batch_axis=batch_axis)(kw, lead + shape, jnp.float32)
        b = jnp.zeros(lead + shape[-1:], jnp.float32)
    else:  # PyTorch default: kaiming_uniform(a=sqrt(5)) = U(±1/sqrt(fan_in)); bias U(±1/sqrt(fan_in))
        # = variance_scaling(1/3, "fan_in", "uniform") for W; drawn as one flat vector and split, so that
        # eager use compiles one random kernel instead of one per shape (seconds each on a busy CPU)
        bound = 1.0 / math.sqrt(fan_in)
        nw, nb = math.prod(lead + shape), math.prod(lead + shape[-1:])
        u = jax.random.uniform(kw, (nw + nb,), jnp.float32, -bound, bound)
        W, b = u[:nw].reshape(lead + shape), u[nw:].reshape(lead + shape[-1:])
    return W, b


def init(key: jax.Array, config: Config) -> dict:
    """Random parameters for ``config`` (see the module docstring for the pytree and the inits)."""
    config = _check_config(config)
    key = prng_key(key)
    L, n, c = config.depth, config.width, config.in_channels
    k_stem, k_blocks, k_head = jax.random.split(key, 3)
    W0, b0 = _weight_bias(k_stem, (3, 3, c, n), 9 * c, config.init)
    Ws, bs = _weight_bias(k_blocks, (3, 3, n, n), 9 * n, config.init, depth=L)
    blocks = {"W": Ws, "b": bs}
    if config.norm is not None:
        blocks["scale"] = jnp.ones((L, n), jnp.float32)
        blocks["shift"] = jnp.zeros((L, n), jnp.float32)
    if config.init == "he_normal":  # the head is linear: fan-in variance 1 (LeCun), zero bias
        Wh = jax.nn.initializers.lecun_normal()(k_head, (n, config.n_classes), jnp.float32)
        bh = jnp.zeros((config.n_classes,), jnp.float32)
    else:
        Wh, bh = _weight_bias(k_head, (n, config.n_classes), n, "pytorch")
    params = {"stem": {"W": W0, "b": b0}, "blocks": blocks, "head": {"W": Wh, "b": bh}}
    if config.residual and config.norm is not None:
        params["out_norm"] = {"scale": jnp.ones((n,), jnp.float32), "shift": jnp.zeros((n,), jnp.float32)}
    return params


# --------------------------------------------------------------------------- forward


def _conv3x3(h: jax.Array, W: jax.Array, b: jax.Array | None = None) -> jax.Array:
    """3×3 "SAME" convolution, stride 1: h (B, H, W, C_in), W (3, 3, C_in, C_out), b (C_out,) → (B, H, W, C_out).

    Equal to ``lax.conv_general_dilated(h, W, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO",
    "NHWC"))`` (tested), computed as one matmul of the 9 shifted copies of the zero-padded h
    (im2col): for a few channels on a CPU, XLA's convolution and its gradients are 10–25× slower
    than this matmul, which decides whether a deep CNN trains in seconds or minutes.
    """
    H, Wd = h.shape[1], h.shape[2]
    hp = jnp.pad(h, ((0, 0), (1, 1), (1, 1), (0, 0)))
    patches = jnp.concatenate([hp[:, i : i + H, j : j + Wd, :] for i in range(3) for j in range(3)], axis=-1)
    out = patches @ W.reshape(9 * W.shape[2], W.shape[3])
    return out if b is None else out + b


def _conv(h: jax.Array, W: jax.Array, b: jax.Array) -> jax.Array:
    return _conv3x3(h, W, b)


def _norm(config: Config, p: dict, h: jax.Array) -> jax.Array:
    if config.norm is None:
        return h
    return _NORMS[config.norm](h, p["scale"], p["shift"])


def _check_images(images: Any, config: Config) -> jax.Array:
    if not hasattr(images, "shape"):
        try:
            images = jnp.asarray(images)
        except TypeError:
            raise TypeError(f"images: expected an array (B, H, W, C), got {type(images).__name__}") from None
    if not jnp.issubdtype(images.dtype, jnp.floating):
        raise TypeError(f"images: expected a floating-point array, got dtype {jnp.dtype(images.dtype).name}")
    if images.ndim != 4 or images.shape[-1] != config.in_channels:
        raise ValueError(
            f"images: expected shape (B, H, W, {config.in_channels}) (NHWC, config.in_channels = "
            f"{config.in_channels}), got {tuple(images.shape)}"
        )
    if config.norm == "batch" and images.shape[0] * images.shape[1] * images.shape[2] < 2:
        raise ValueError(f"images: batch norm needs at least 2 values per channel, got shape {tuple(images.shape)}")
    return images


def _check_params(params: Any, config: Config) -> None:
    if not isinstance(params, dict) or not {"stem", "blocks", "head"} <= params.keys():
        raise ValueError("params: expected the dict from init(key, config) (keys 'stem', 'blocks', 'head')")
    W = params["blocks"].get("W") if isinstance(params["blocks"], dict) else None
    want = (config.depth, 3, 3, config.width, config.width)
    if W is None or tuple(W.shape) != want:
        got = None if W is None else tuple(W.shape)
        raise ValueError(f"params: blocks['W'] should have shape {want} for this config, got {got}")
    if config.norm is not None and "scale" not in params["blocks"]:
        raise ValueError(
            f"params: config.norm = {config.norm!r} needs blocks['scale'] / ['shift']; build with init(key, config)"
        )


def _run(params: dict, config: Config, images: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(logits (B, n_classes), h_0..h_L (L+1, B, H, W, n), activation outputs a_1..a_L (L, B, H, W, n))."""
    phi = get_activation(config.activation)
    s = _branch_scale(config)
    h0 = _conv(images, params["stem"]["W"], params["stem"]["b"])
    if config.stem_stride == 2:  # = a stride-2 convolution with padding (1, 1) on both spatial axes
        h0 = h0[:, ::2, ::2, :]

    def block(h, p):
        if config.residual:
            a = phi(_norm(config, p, h))
            h = h + s * _conv(a, p["W"], p["b"])
        else:
            a = phi(_norm(config, p, _conv(h, p["W"], p["b"])))
            h = a
        return h, (h, a)

    hL, (hs, acts) = lax.scan(block, h0, params["blocks"])
    top = hL
    if config.residual:
        top = phi(_norm(config, params["out_norm"], hL) if config.norm is not None else hL)
    logits = jnp.mean(top, axis=(1, 2)) @ params["head"]["W"] + params["head"]["b"]
    return logits, jnp.concatenate([h0[None], hs]), acts


def apply(params: dict, config: Config, images: jax.Array) -> jax.Array:
    """Logits (B, n_classes) for NHWC ``images`` (B, H, W, in_channels)."""
    config = _check_config(config)
    _check_params(params, config)
    return _run(params, config, _check_images(images, config))[0]


def states(params: dict, config: Config, images: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(hs, acts)``: block outputs h_0..h_L (L+1, B, H, W, n) and each block's activation output
    φ(·) (L, B, H, W, n), e.g. for ``gc.stats.activation_stats(acts, "relu").frac_dead`` (the
    fraction of channels that are off at every position of every image)."""
    config = _check_config(config)
    _check_params(params, config)
    _, hs, acts = _run(params, config, _check_images(images, config))
    return hs, acts


def _check_batch(batch: Any) -> tuple[Any, jax.Array]:
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise TypeError(f"batch: expected a pair (images, labels), got {type(batch).__name__}")
    images, labels = batch
    labels = jnp.asarray(labels)
    if not jnp.issubdtype(labels.dtype, jnp.integer) or labels.ndim != 1:
        raise ValueError(
            f"batch: labels must be integer class indices of shape (B,), got dtype {labels.dtype} shape {labels.shape}"
        )
    if hasattr(images, "shape") and images.shape[0] != labels.shape[0]:
        raise ValueError(f"batch: {images.shape[0]} images but {labels.shape[0]} labels")
    return images, labels


def loss(params: dict, config: Config, batch: tuple[jax.Array, jax.Array]) -> jax.Array:
    """Mean cross-entropy of ``apply`` on ``batch = (images (B, H, W, C), labels (B,) int)``."""
    images, labels = _check_batch(batch)
    logits = apply(params, config, images)
    logp = jax.nn.log_softmax(logits)
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=1))


def accuracy(params: dict, config: Config, batch: tuple[jax.Array, jax.Array]) -> jax.Array:
    """Fraction of ``batch = (images, labels)`` classified correctly (batch norm: statistics of this batch)."""
    images, labels = _check_batch(batch)
    return jnp.mean(jnp.argmax(apply(params, config, images), axis=-1) == labels)
