"""A small decoder-only transformer in pure JAX, built to look inside: per-block gradients,
attention logits of every block and head, and the residual stream as a ``gc.Stacked`` model.

Tokens ``(B, T)`` int → h_0 = E_tok[tokens] + E_pos[:T] → L blocks → logits ``(B, T, vocab)``.
Each block is multi-head causal self-attention followed by an MLP (GELU, hidden width d_ff),
in one of two placements of LayerNorm (LN):

* ``norm="pre"``  (Pre-LN): h ← h + Attn(LN(h)); h ← h + MLP(LN(h)); a final LN before the
  unembedding. The residual stream is never normalised, so its variance grows with depth.
* ``norm="post"`` (Post-LN, Vaswani et al. 2017): h ← LN(h + Attn(h)); h ← LN(h + MLP(h)). Every
  block output has zero mean and unit variance per token (no final LN needed).

Attention, per head (d_head = d_model / n_heads): q = x W_q, k = x W_k, v = x W_v, logits
s_ts = q_t · k_s / √d_head for s ≤ t (causal), softmax over s, heads concatenated, then W_o.
With ``qk_norm=True`` q and k are layer-normalised over d_head before the dot product and scaled
by learnable γ_q, γ_k of shape (n_heads, d_head) (QK-LayerNorm: Dehghani et al. 2023; Wortsman
et al. 2023). Because ‖LN(q)‖² ≤ d_head, every logit then obeys
|s_ts| ≤ √d_head · max|γ_q| · max|γ_k| whatever the weights.

Parameters are a plain dict; the blocks' leaves are stacked along a leading depth axis and run by
``lax.scan``, so ``gc.layer_norms(grads["blocks"], stacked=True)`` and
``gc.train.fit(..., stacked=("blocks",))`` give one gradient norm per block::

    {"embed": {"tokens": (V, d), "positions": (T, d)},
     "blocks": {"ln1_scale", "ln1_shift": (L, d), "Wq", "Wk", "Wv", "Wo": (L, d, d),
                ["q_scale", "k_scale": (L, H, d_head) if qk_norm,]
                "ln2_scale", "ln2_shift": (L, d), "W1": (L, d, d_ff), "b1": (L, d_ff),
                "W2": (L, d_ff, d), "b2": (L, d)},
     ["final": {"scale", "shift": (d,)} for Pre-LN,]
     "unembed": (d, V)}

Measurements that compare variants share one compiled program (compiling dominates the run time
of a small model on a CPU): ``gradients_at_init`` (per-block gradient norms and the stream's size at
initialisation, for several configs, seeds and depths) and ``train_transformer`` (several runs at
once, recording per step the loss, per-block gradient norms, the largest attention logit per block
and the attention entropy). The synthetic task ``sequence_task`` (reverse / copy / sort a random
string) is here too.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from ..layers import layer_norm
from ..model import Stacked

__all__ = [
    "TransformerConfig", "init_transformer", "transformer_block", "transformer_stack", "embed_tokens",
    "unembed", "transformer_apply", "attention_logits", "causal_mask", "max_attention_logit",
    "attention_entropy", "transformer_loss", "residual_stream_grads", "block_grad_norms",
    "gradients_at_init", "TransformerRun", "train_transformer", "sequence_task", "SEQUENCE_TASKS",
]

NORM_PLACEMENTS = ("pre", "post")


# --------------------------------------------------------------------------- config


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected a positive int, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name}: expected a positive int, got {value}")
    return int(value)


@dataclass(frozen=True)
class TransformerConfig:
    """Shape and variant of the transformer. Hashable, so it can be a static argument of ``jit``.

    ``vocab``: number of token ids; ``d_model``: width of the residual stream; ``n_heads``: heads
    per block (must divide d_model); ``n_layers``: L blocks; ``seq_len``: the longest input T
    (learned positions); ``d_ff``: MLP hidden width (None: 4·d_model); ``norm``: "pre" or "post";
    ``qk_norm``: LayerNorm on queries and keys.
    """

    vocab: int
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 4
    seq_len: int = 16
    d_ff: int | None = None
    norm: str = "pre"
    qk_norm: bool = False

    def __post_init__(self) -> None:
        for name in ("vocab", "d_model", "n_heads", "n_layers", "seq_len"):
            object.__setattr__(self, name, _positive_int(getattr(self, name), name))
        if self.d_ff is None:
            object.__setattr__(self, "d_ff", 4 * self.d_model)
        else:
            object.__setattr__(self, "d_ff", _positive_int(self.d_ff, "d_ff"))
        if self.d_model % self.n_heads:
            raise ValueError(
                f"d_model: must be divisible by n_heads (each head gets d_model / n_heads features), "
                f"got d_model={self.d_model}, n_heads={self.n_heads}"
            )
        if self.norm not in NORM_PLACEMENTS:
            raise ValueError(f"norm: expected 'pre' (Pre-LN) or 'post' (Post-LN), got {self.norm!r}")
        if not isinstance(self.qk_norm, (bool, np.bool_)):
            raise TypeError(f"qk_norm: expected True or False, got {type(self.qk_norm).__name__}")
        object.__setattr__(self, "qk_norm", bool(self.qk_norm))

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    def replace(self, **changes: Any) -> "TransformerConfig":
        """A copy with some fields changed (validated again)."""
        import dataclasses

        return dataclasses.replace(self, **changes)


def _check_config(config: Any) -> TransformerConfig:
    if not isinstance(config, TransformerConfig):
        raise TypeError(f"config: expected a TransformerConfig, got {type(config).__name__}")
    return config


# --------------------------------------------------------------------------- parameters


def init_transformer(key: jax.Array, config: TransformerConfig, *, dtype: Any = jnp.float32) -> dict:
    """Random parameters (layout in the module docstring), all from ``jax.nn.initializers``.

    Embeddings (token and position) ~ N(0, ½), so h_0 has unit variance per feature. Attention
    and output weights ~ N(0, 1/fan_in) (LeCun, the variance-preserving choice for linear maps);
    W1 ~ N(0, 2/d) (He, for the GELU); biases and LN shifts 0; LN and QK-norm scales 1. The
    Gaussian entries come from one ``jax.nn.initializers.normal`` draw, scaled per weight.
    """
    c = _check_config(config)
    if not (hasattr(key, "dtype") and (jnp.issubdtype(key.dtype, jax.dtypes.prng_key) or key.dtype == jnp.uint32)):
        raise TypeError(f"key: expected a jax.random key, got {type(key).__name__}")
    return _init(key, c, jnp.dtype(dtype))


@functools.partial(jax.jit, static_argnums=(1, 2))
def _init(key: jax.Array, c: TransformerConfig, dtype: Any) -> dict:
    L, d, f, H = c.n_layers, c.d_model, c.d_ff, c.n_heads
    # (name, shape, variance): LeCun 1/fan_in for linear maps, He 2/fan_in before the GELU
    weights = [
        ("attn", (4, L, d, d), 1.0 / d), ("W1", (L, d, f), 2.0 / d), ("W2", (L, f, d), 1.0 / f),
        ("tokens", (c.vocab, d), 0.5), ("positions", (c.seq_len, d), 0.5), ("unembed", (d, c.vocab), 1.0 / d),
    ]
    # one flat N(0, 1) draw, cut into pieces: XLA compiles a single 1-D draw several times faster
    # than one n-D draw per weight (the whole init compiles in a fraction of a second)
    sizes = [math.prod(shape) for _, shape, _ in weights]
    z = jax.nn.initializers.normal(1.0)(key, (sum(sizes),), dtype)
    w, start = {}, 0
    for (name, shape, variance), size in zip(weights, sizes):
        w[name] = math.sqrt(variance) * z[start : start + size].reshape(shape)
        start += size
    Wq, Wk, Wv, Wo = w["attn"]
    blocks = {
        "ln1_scale": jnp.ones((L, d), dtype), "ln1_shift": jnp.zeros((L, d), dtype),
        "Wq": Wq, "Wk": Wk, "Wv": Wv, "Wo": Wo,
        "ln2_scale": jnp.ones((L, d), dtype), "ln2_shift": jnp.zeros((L, d), dtype),
        "W1": w["W1"], "b1": jnp.zeros((L, f), dtype),
        "W2": w["W2"], "b2": jnp.zeros((L, d), dtype),
    }
    if c.qk_norm:
        blocks["q_scale"] = jnp.ones((L, H, c.d_head), dtype)
        blocks["k_scale"] = jnp.ones((L, H, c.d_head), dtype)
    params = {
        "embed": {"tokens": w["tokens"], "positions": w["positions"]},
        "blocks": blocks,
        "unembed": w["unembed"],
    }
    if c.norm == "pre":
        params["final"] = {"scale": jnp.ones((d,), dtype), "shift": jnp.zeros((d,), dtype)}
    return params


# --------------------------------------------------------------------------- the block


def causal_mask(T: int) -> jax.Array:
    """(T, T) boolean: True where query position t may attend to key position s (s ≤ t)."""
    T = _positive_int(T, "T")
    return jnp.tril(jnp.ones((T, T), dtype=bool))


# The placement of LN and QK-norm are Python bools for one model (the unused branch is never
# traced), or traced booleans when runs of different variants share one compiled program
# (``train_transformer``, ``gradients_at_init``): both branches are computed and one is selected.
# That costs a few extra element-wise LayerNorms, never an extra matmul.


def _variant(c: TransformerConfig) -> tuple[bool, bool]:
    return c.norm == "pre", c.qk_norm


def _pick(flag: Any, a: Callable[[], jax.Array], b: Callable[[], jax.Array]) -> jax.Array:
    """a() if flag else b(); with a traced flag both are computed and selected."""
    if isinstance(flag, (bool, np.bool_)):
        return a() if flag else b()
    return jnp.where(flag, a(), b())


def _attention(p: dict, x: jax.Array, c: TransformerConfig, qk: Any) -> tuple[jax.Array, jax.Array]:
    """Causal multi-head self-attention of x (B, T, d): its output (B, T, d) and logits (B, H, T, T)."""
    B, T, d = x.shape
    H, dh = c.n_heads, c.d_head
    q = (x @ p["Wq"]).reshape(B, T, H, dh)
    k = (x @ p["Wk"]).reshape(B, T, H, dh)
    v = (x @ p["Wv"]).reshape(B, T, H, dh)
    q = _pick(qk, lambda: layer_norm(q) * p["q_scale"], lambda: q)
    k = _pick(qk, lambda: layer_norm(k) * p["k_scale"], lambda: k)
    logits = jnp.einsum("bthe,bshe->bhts", q, k) / math.sqrt(dh)
    weights = jax.nn.softmax(jnp.where(causal_mask(T), logits, -jnp.inf), axis=-1)
    out = jnp.einsum("bhts,bshe->bthe", weights, v).reshape(B, T, d)
    return out @ p["Wo"], logits


def _mlp(p: dict, x: jax.Array) -> jax.Array:
    return jax.nn.gelu(x @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]


def _block(p: dict, h: jax.Array, c: TransformerConfig, variant: tuple | None = None) -> tuple[jax.Array, jax.Array]:
    """One block: the new residual stream (B, T, d) and this block's attention logits (B, H, T, T).

    Pre-LN: h + Attn(LN₁(h)), then + MLP(LN₂(·)). Post-LN: LN₁(h + Attn(h)), then LN₂(· + MLP(·)).
    """
    pre, qk = _variant(c) if variant is None else variant
    ln1 = lambda x: layer_norm(x, p["ln1_scale"], p["ln1_shift"])
    ln2 = lambda x: layer_norm(x, p["ln2_scale"], p["ln2_shift"])
    a, logits = _attention(p, _pick(pre, lambda: ln1(h), lambda: h), c, qk)
    h = _pick(pre, lambda: h + a, lambda: ln1(h + a))
    m = _mlp(p, _pick(pre, lambda: ln2(h), lambda: h))
    h = _pick(pre, lambda: h + m, lambda: ln2(h + m))
    return h, logits


def transformer_block(config: TransformerConfig) -> Callable[[dict, jax.Array], jax.Array]:
    """The layer function f(block_params, h) -> h of one block, h: (B, T, d_model), for ``gc.Stacked``."""
    c = _check_config(config)

    def f(p: dict, h: jax.Array) -> jax.Array:
        return _block(p, h, c)[0]

    f.__name__ = f"transformer_block_{c.norm}ln" + ("_qknorm" if c.qk_norm else "")
    return f


def transformer_stack(params: dict, config: TransformerConfig) -> Stacked:
    """The L blocks as ``gc.Stacked(transformer_block(config), params["blocks"])``: h_0 -> h_L.

    With ``embed_tokens`` in front and ``unembed`` behind, ``gc.forward`` / ``gc.backward`` on it
    give the residual stream h_l and ∂loss/∂h_l at every block boundary.
    """
    _check_params(params, _check_config(config))
    return Stacked(transformer_block(config), params["blocks"])


# --------------------------------------------------------------------------- the model


def _check_params(params: Any, c: TransformerConfig) -> None:
    if not isinstance(params, dict) or not {"embed", "blocks", "unembed"} <= set(params):
        got = sorted(params) if isinstance(params, dict) else type(params).__name__
        raise TypeError(f"params: expected the dict from init_transformer (keys embed, blocks, unembed), got {got}")
    L = params["blocks"]["Wq"].shape[0]
    d = params["embed"]["tokens"].shape[1]
    if L != c.n_layers or d != c.d_model:
        raise ValueError(
            f"params: built for n_layers={L}, d_model={d}, but config has n_layers={c.n_layers}, d_model={c.d_model}"
        )
    if c.qk_norm != ("q_scale" in params["blocks"]):
        raise ValueError(f"params: config.qk_norm={c.qk_norm} but the params were built with qk_norm={not c.qk_norm}")
    if (c.norm == "pre") != ("final" in params):
        raise ValueError(f"params: config.norm={c.norm!r} but the params were built for the other placement")


def _check_tokens(tokens: Any, c: TransformerConfig) -> jax.Array:
    if not hasattr(tokens, "dtype"):
        try:
            tokens = jnp.asarray(tokens)
        except TypeError as e:
            raise TypeError(f"tokens: expected an int array (B, T), got {type(tokens).__name__}") from e
    if not jnp.issubdtype(tokens.dtype, jnp.integer):
        raise TypeError(f"tokens: expected integer token ids, got dtype {jnp.dtype(tokens.dtype).name}")
    if tokens.ndim != 2:
        raise ValueError(f"tokens: expected shape (batch, T), got {tuple(tokens.shape)}")
    if not 1 <= tokens.shape[1] <= c.seq_len:
        raise ValueError(f"tokens: length T={tokens.shape[1]} must be between 1 and config.seq_len={c.seq_len}")
    if not isinstance(tokens, jax.core.Tracer):
        ids = np.asarray(tokens)  # concrete: check the range on the host (skipped under jit)
        lo, hi = (int(ids.min()), int(ids.max())) if ids.size else (0, 0)
        if lo < 0 or hi >= c.vocab:
            raise ValueError(f"tokens: ids must lie in 0..{c.vocab - 1} (config.vocab={c.vocab}), got {lo}..{hi}")
    return tokens


def embed_tokens(params: dict, tokens: jax.Array) -> jax.Array:
    """h_0 = E_tok[tokens] + E_pos[:T], shape (B, T, d_model)."""
    T = tokens.shape[1]
    return params["embed"]["tokens"][tokens] + params["embed"]["positions"][:T]


def unembed(params: dict, config: TransformerConfig, h: jax.Array) -> jax.Array:
    """Next-token logits (B, T, vocab) from the last residual stream h_L (final LN first for Pre-LN)."""
    return _unembed(params, h, config.norm == "pre")


def _unembed(params: dict, h: jax.Array, pre: Any) -> jax.Array:
    h = _pick(pre, lambda: layer_norm(h, params["final"]["scale"], params["final"]["shift"]), lambda: h)
    return h @ params["unembed"]


def _run(
    params: dict, c: TransformerConfig, tokens: jax.Array, depth: Any = None, variant: tuple | None = None
) -> tuple[jax.Array, jax.Array]:
    """Logits (B, T, vocab) and attention logits (L, B, H, T, T); ``variant``: (pre, qk) flags, else from c."""
    variant = _variant(c) if variant is None else variant
    h0 = embed_tokens(params, tokens)
    if depth is None:
        h, logits = lax.scan(lambda h, p: _block(p, h, c, variant), h0, params["blocks"])
    else:  # blocks l >= depth are skipped: the identity, with zero attention logits and zero gradients

        def step(h: jax.Array, inp: tuple) -> tuple[jax.Array, jax.Array]:
            p, on = inp
            new, logits = _block(p, h, c, variant)
            return jnp.where(on, new, h), jnp.where(on, logits, 0.0)

        on = jnp.arange(c.n_layers) < depth
        h, logits = lax.scan(step, h0, (params["blocks"], on))
    return _unembed(params, h, variant[0]), logits


def _full_params(params: dict, c: TransformerConfig) -> dict:
    """``params`` with every leaf any variant reads (QK scales 1, final LN 1 / 0 where absent).

    A variant ignores the leaves it does not read; they get zero gradients, so optax leaves them
    unchanged. ``_own_params`` removes them again.
    """
    L, H, dh, d = c.n_layers, c.n_heads, c.d_head, c.d_model
    dtype = params["blocks"]["Wq"].dtype
    blocks = dict(params["blocks"])
    blocks.setdefault("q_scale", np.ones((L, H, dh), dtype))  # NumPy: no device op to compile per shape
    blocks.setdefault("k_scale", np.ones((L, H, dh), dtype))
    final = params.get("final", {"scale": np.ones((d,), dtype), "shift": np.zeros((d,), dtype)})
    return {"embed": params["embed"], "blocks": blocks, "final": final, "unembed": params["unembed"]}


def _own_params(params: dict, c: TransformerConfig) -> dict:
    """The leaves of ``params`` that config ``c`` uses (the layout of ``init_transformer(key, c)``)."""
    out = {"embed": params["embed"], "blocks": dict(params["blocks"]), "unembed": params["unembed"]}
    if not c.qk_norm:
        del out["blocks"]["q_scale"], out["blocks"]["k_scale"]
    if c.norm == "pre":
        out["final"] = params["final"]
    return out


def _check_depth(depth: Any, c: TransformerConfig) -> Any:
    if depth is None or isinstance(depth, jax.core.Tracer):
        return depth
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) and not (
        hasattr(depth, "dtype") and jnp.issubdtype(depth.dtype, jnp.integer) and jnp.ndim(depth) == 0
    ):
        raise TypeError(f"depth: expected None or an int, got {type(depth).__name__}")
    if not 1 <= int(depth) <= c.n_layers:
        raise ValueError(f"depth: expected an int from 1 to config.n_layers={c.n_layers}, got {int(depth)}")
    return depth


def transformer_apply(
    params: dict, config: TransformerConfig, tokens: jax.Array, *, depth: Any = None, return_attention: bool = False
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """Next-token logits (B, T, vocab) for ``tokens`` (B, T) int; position t sees tokens 0..t only.

    ``depth``: run only the first ``depth`` blocks (an int, or a traced int under ``jit`` / ``vmap``):
    exactly a depth-``depth`` model with those blocks' parameters, so several depths share one
    compilation. ``return_attention=True`` also returns the attention logits of every block and
    head, (L, B, H, T, T) (see ``attention_logits``; zero for skipped blocks).
    """
    c = _check_config(config)
    _check_params(params, c)
    tokens = _check_tokens(tokens, c)
    out, logits = _run(params, c, tokens, _check_depth(depth, c))
    return (out, logits) if return_attention else out


def attention_logits(params: dict, config: TransformerConfig, tokens: jax.Array) -> jax.Array:
    """Pre-softmax attention logits s_ts = q_t·k_s/√d_head of every block and head: (L, B, H, T, T).

    Entries above the diagonal (s > t) are computed but masked out of the softmax; use
    ``max_attention_logit`` / ``attention_entropy`` to summarise only the causal ones.
    """
    return transformer_apply(params, config, tokens, return_attention=True)[1]


def _check_logits(logits: Any) -> jax.Array:
    logits = jnp.asarray(logits)
    if logits.ndim < 2 or logits.shape[-1] != logits.shape[-2]:
        raise ValueError(f"logits: expected (..., T, T) attention logits, got shape {tuple(logits.shape)}")
    return logits


def max_attention_logit(logits: jax.Array, axis: Any = None) -> jax.Array:
    """max |s_ts| over the causal entries (s ≤ t) of attention logits (..., T, T).

    ``axis=None``: one number; e.g. ``axis=(1, 2, 3, 4)`` on (L, B, H, T, T) gives one per block.
    """
    logits = _check_logits(logits)
    a = jnp.where(causal_mask(logits.shape[-1]), jnp.abs(logits), 0.0)
    return jnp.max(a, axis=axis)


def attention_entropy(logits: jax.Array) -> jax.Array:
    """Entropy (nats) of each query's causal attention distribution, shape (..., T).

    Query t attends to t+1 keys, so 0 ≤ entropy ≤ log(t+1): 0 is one-hot attention ("entropy
    collapse", Zhai et al. 2023), log(t+1) uniform attention.
    """
    logits = _check_logits(logits)
    mask = causal_mask(logits.shape[-1])
    logp = jax.nn.log_softmax(jnp.where(mask, logits, -jnp.inf), axis=-1)
    return -jnp.sum(jnp.where(mask, jnp.exp(logp) * logp, 0.0), axis=-1)


# --------------------------------------------------------------------------- loss and gradients


def _xent(logits: jax.Array, targets: jax.Array, weights: jax.Array) -> jax.Array:
    logp = jax.nn.log_softmax(logits, axis=-1)
    nll = -jnp.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]
    return jnp.sum(nll * weights) / jnp.maximum(jnp.sum(weights), 1.0)


def _check_batch(batch: Any) -> tuple[jax.Array, jax.Array, jax.Array]:
    if not isinstance(batch, (tuple, list)) or len(batch) != 3:
        raise TypeError("batch: expected (tokens, targets, weights), each (B, T), as returned by sequence_task")
    tokens, targets, weights = batch
    if jnp.shape(targets) != jnp.shape(tokens) or jnp.shape(weights) != jnp.shape(tokens):
        raise ValueError(
            f"batch: tokens, targets and weights must have the same shape (B, T), got "
            f"{tuple(jnp.shape(tokens))}, {tuple(jnp.shape(targets))}, {tuple(jnp.shape(weights))}"
        )
    return tokens, targets, weights


def transformer_loss(params: dict, config: TransformerConfig, batch: tuple, *, depth: Any = None) -> jax.Array:
    """Mean next-token cross-entropy (nats) over the positions with weight 1.

    ``batch = (tokens, targets, weights)``, each (B, T): targets[b, t] is the token to predict at
    position t, weights[b, t] ∈ {0, 1} says whether position t is scored. ``depth``: as in
    ``transformer_apply``. For ``gc.train.fit``: ``fit(lambda p, b: transformer_loss(p, config, b), ...)``.
    """
    tokens, targets, weights = _check_batch(batch)
    return _xent(transformer_apply(params, config, tokens, depth=depth), targets, weights)


def residual_stream_grads(params: dict, config: TransformerConfig, batch: tuple) -> jax.Array:
    """∂loss/∂h_l for l = 0 ... L (h_0: the embeddings, h_l: after block l): (L+1, B, T, d_model).

    ``gc.backward`` on ``transformer_stack`` with the unembedding and cross-entropy as the loss.
    """
    from ..chains import backward

    c = _check_config(config)
    tokens, targets, weights = _check_batch(batch)
    tokens = _check_tokens(tokens, c)
    stack = transformer_stack(params, c)
    return backward(stack, embed_tokens(params, tokens), lambda h: _xent(unembed(params, c, h), targets, weights))


def block_grad_norms(grads: dict) -> jax.Array:
    """‖∂loss/∂θ_l‖ over all of block l's parameters, shape (L,), from a gradient pytree like the params."""
    from ..norms import stacked_norms

    if not isinstance(grads, dict) or "blocks" not in grads:
        raise TypeError("grads: expected a gradient pytree shaped like init_transformer's params (with 'blocks')")
    return stacked_norms(grads["blocks"])


# --------------------------------------------------------------------------- variants in one program


def _same_shapes(configs: Any, name: str = "config") -> list[TransformerConfig]:
    """A list of configs that may differ only in ``norm`` and ``qk_norm``."""
    configs = list(configs) if isinstance(configs, (list, tuple)) else [configs]
    if not configs:
        raise ValueError(f"{name}: expected at least one TransformerConfig")
    for c in configs:
        _check_config(c)
    base = configs[0].replace(norm="pre", qk_norm=False)
    for c in configs[1:]:
        if c.replace(norm="pre", qk_norm=False) != base:
            raise ValueError(
                f"{name}: runs compiled together may differ only in norm and qk_norm, got {configs[0]} and {c}"
            )
    return configs


def _variant_args(configs: list[TransformerConfig]) -> tuple[Any, jax.Array | None, jax.Array | None]:
    """A static (pre, qk) when every config agrees, else per-config boolean arrays (traced under vmap)."""
    variants = {_variant(c) for c in configs}
    if len(variants) == 1:
        return variants.pop(), None, None
    return None, jnp.array([c.norm == "pre" for c in configs]), jnp.array([c.qk_norm for c in configs])


def _block_norms(tree: Any) -> jax.Array:
    leaves = jax.tree_util.tree_leaves(tree)
    return jnp.sqrt(sum(jnp.sum(jnp.square(x.reshape(x.shape[0], -1)), axis=1) for x in leaves))


@functools.partial(jax.jit, static_argnums=(1, 2))
def _init_gradients(keys, c: TransformerConfig, static_variant, pre, qk, batch, depths):
    full = c.replace(norm="pre", qk_norm=True)  # the layout with every leaf; weights do not depend on the variant

    def one(key, variant):
        params = _init(key, full, jnp.dtype(jnp.float32))
        tokens, targets, weights = batch

        def loss(p, depth):
            return _xent(_run(p, c, tokens, depth, variant)[0], targets, weights)

        def at_depth(depth):
            g = jax.grad(loss)(params, depth)["blocks"]  # leaves a variant does not read get zero gradient
            return _block_norms(g), jnp.sqrt(jnp.sum(jnp.square(g["W2"]), axis=(1, 2)))

        blocks, w2 = lax.map(at_depth, depths)  # one depth at a time: memory for one backward pass per run
        h0 = embed_tokens(params, tokens)
        _, hs = lax.scan(lambda h, p: (lambda n: (n, n))(_block(p, h, c, variant)[0]), h0, params["blocks"])
        hs = jnp.concatenate([h0[None], hs])
        return blocks, w2, jnp.sqrt(jnp.mean(jnp.square(hs), axis=(1, 2, 3)))

    if static_variant is not None:  # one config: no selection, a leading config axis of 1
        return tuple(x[None] for x in jax.vmap(lambda key: one(key, static_variant))(keys))
    per_config = lambda p_, q_: jax.vmap(lambda key: one(key, (p_, q_)))(keys)
    return jax.vmap(per_config)(pre, qk)


def gradients_at_init(
    keys: jax.Array, configs: Any, batch: tuple, depths: Any = None
) -> dict[str, np.ndarray]:
    """Gradient norms at initialisation for every config × key × depth, in one compilation.

    ``keys``: (K,) ``jax.random`` keys (one initialisation each, the same weights for every config:
    ``init_transformer(key, c)``); ``configs``: TransformerConfigs differing only in ``norm`` /
    ``qk_norm`` (C of them); ``batch``: (tokens, targets, weights); ``depths``: D ints ≤ n_layers
    (default ``(n_layers,)``): a depth-D model is the first D blocks (see ``transformer_apply``).

    Returns NumPy arrays: ``"blocks"`` (C, K, D, L) ‖∂loss/∂θ_l‖ over block l's parameters (0 for
    l ≥ D); ``"W2"`` (C, K, D, L) ‖∂loss/∂W2_l‖ (the MLP output matrix of Xiong et al.'s analysis);
    ``"stream_rms"`` (C, K, L+1) root mean square of the residual stream h_0 ... h_L.
    """
    configs = _same_shapes(configs, "configs")
    c = configs[0]
    keys = jnp.asarray(keys)
    if keys.ndim != 2 or keys.dtype != jnp.uint32:
        raise TypeError(f"keys: expected a (K, 2) array of jax.random keys (jax.random.split(key, K)), got {keys.shape} {keys.dtype}")
    tokens, targets, weights = _check_batch(batch)
    tokens = _check_tokens(tokens, c)
    depths = (c.n_layers,) if depths is None else tuple(depths)
    for depth in depths:
        _check_depth(depth, c)
    static_variant, pre, qk = _variant_args(configs)
    blocks, w2, rms = _init_gradients(
        keys, c.replace(norm="pre", qk_norm=False), static_variant, pre, qk,
        (tokens, targets, weights), jnp.asarray(depths, jnp.int32),
    )
    return {"blocks": np.asarray(blocks), "W2": np.asarray(w2), "stream_rms": np.asarray(rms)}


# --------------------------------------------------------------------------- training with probes


class TransformerRun(NamedTuple):
    """What ``train_transformer`` recorded: R runs × n steps.

    ``loss``: (R, n) training loss *before* each step's update; ``grad_norms``: (R, n, L) ‖∂loss/∂θ_l‖
    per block; ``max_logit``: (R, n, L) max |attention logit| per block (causal entries);
    ``entropy``: (R, n) mean attention entropy (nats) over blocks, heads and queries;
    ``learning_rates``: (R, n); ``stopped_at``: (R,) first step with a non-finite loss or gradient
    (that step and all later ones are not applied; their records are NaN), −1 if none;
    ``params``: the final params of each run (a list of R pytrees, each in its config's layout).
    """

    loss: np.ndarray
    grad_norms: np.ndarray
    max_logit: np.ndarray
    entropy: np.ndarray
    learning_rates: np.ndarray
    stopped_at: np.ndarray
    params: list


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _train_chunk(carry, c: TransformerConfig, static_variant, optimizer, pre, qk, steps, lrs, batches):
    """Steps ``steps`` (one chunk) of every run at once: vmap over runs, scan over steps."""

    def one_run(carry: tuple, lr_row: jax.Array, variant: tuple):
        def step(carry: tuple, inp: tuple):
            params, opt_state, alive, stopped = carry
            t, lr, (tokens, targets, weights) = inp

            def loss_fn(p):
                logits, att = _run(p, c, tokens, None, variant)
                return _xent(logits, targets, weights), att

            (loss, att), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
            opt_state.hyperparams["learning_rate"] = jnp.asarray(lr, opt_state.hyperparams["learning_rate"].dtype)
            updates, new_state = optimizer.update(grads, opt_state, params)
            new_params = optax.apply_updates(params, updates)
            finite = jnp.stack([jnp.all(jnp.isfinite(g)) for g in jax.tree_util.tree_leaves(grads)])
            ok = alive & jnp.isfinite(loss) & jnp.all(finite)
            keep = lambda new, old: jnp.where(ok, new, old)
            carry = (
                jax.tree_util.tree_map(keep, new_params, params), jax.tree_util.tree_map(keep, new_state, opt_state),
                ok, jnp.where(alive & ~ok, t, stopped),
            )
            nan = jnp.asarray(jnp.nan, loss.dtype)
            record = (
                jnp.where(alive, loss, nan), jnp.where(alive, _block_norms(grads["blocks"]), nan),
                jnp.where(alive, max_attention_logit(att, axis=(1, 2, 3, 4)), nan),
                jnp.where(alive, jnp.mean(attention_entropy(att)), nan),
            )
            return carry, record

        return lax.scan(step, carry, (steps, lr_row, batches))

    if static_variant is not None:
        return jax.vmap(lambda cr, lr: one_run(cr, lr, static_variant))(carry, lrs)
    return jax.vmap(lambda cr, lr, p_, q_: one_run(cr, lr, (p_, q_)))(carry, lrs, pre, qk)


_INJECTED: dict[Callable, Any] = {}


def _as_list(value: Any, R: int, name: str) -> list:
    """``value`` for each of R runs: a list of 1 or R entries, or one value for all."""
    if isinstance(value, list):
        if len(value) not in (1, R):
            raise ValueError(f"{name}: expected one or {R} entries (one per run), got {len(value)}")
        return value * (R // len(value))
    return [value] * R


def train_transformer(
    params: Any,
    config: Any,
    data: Any,
    learning_rates: Any,
    *,
    optimizer: Callable[..., Any] | None = None,
    chunk: int = 50,
    progress: bool = True,
    desc: str | None = None,
) -> TransformerRun:
    """Train R runs at once, recording per step the loss, per-block gradient norms, per-block max
    |attention logit| and the mean attention entropy.

    ``learning_rates``: (n,), or (R, n) / a list of R schedules: the learning rate of every step (a
    warm-up is a ramp at the start, e.g. ``optax.linear_schedule(0, lr, 50)(jnp.arange(n))``).
    ``params`` / ``config``: one, or a list with one per run; runs may differ in ``norm`` and
    ``qk_norm`` (and initialisation), not in shape. ``data``: ``(tokens, targets, weights)``, each
    (n, batch, T): one batch per step, the same for every run (e.g. ``sequence_task(key, n * batch)``
    reshaped). ``optimizer``: a function ``learning_rate ->
    optax.GradientTransformation`` (default ``optax.adam``), wrapped in ``optax.inject_hyperparams``
    so the schedule is data, not code.

    All runs and steps are one compiled ``lax.scan``, vmapped over runs (runs of different variants
    compute both LayerNorm placements and select, a few element-wise operations more); the steps run
    in equal chunks of at most ``chunk`` (a tqdm bar advances per chunk). Like ``gc.train.fit``, a
    step whose loss or gradient is not finite is not applied, and that run stops.
    """
    if isinstance(learning_rates, (list, tuple)) and len(learning_rates) and np.ndim(learning_rates[0]) == 1:
        rows = [np.asarray(lr, dtype=np.float32) for lr in learning_rates]
    else:
        arr = np.asarray(learning_rates, dtype=np.float32)
        if arr.ndim not in (1, 2) or arr.shape[-1] == 0:
            raise ValueError(f"learning_rates: expected shape (steps,) or (runs, steps), got {arr.shape}")
        rows = list(arr) if arr.ndim == 2 else [arr]
    if len({row.shape for row in rows}) != 1:
        raise ValueError(f"learning_rates: every run needs the same number of steps, got {[len(row) for row in rows]}")
    R = max([len(v) for v in (params, config) if isinstance(v, list)] + [len(rows)])  # number of runs
    configs = _same_shapes(_as_list(config, R, "config"), "config")
    plist = _as_list(params, R, "params")
    lrs = np.stack(_as_list(rows, R, "learning_rates"))
    if not np.all(np.isfinite(lrs)) or np.any(lrs < 0):
        raise ValueError("learning_rates: expected finite, non-negative values")
    for p, c in zip(plist, configs):
        _check_params(p, c)
    chunk = _positive_int(chunk, "chunk")
    make = optax.adam if optimizer is None else optimizer
    if not callable(make):
        raise TypeError(f"optimizer: expected a function learning_rate -> optax.GradientTransformation, got {type(make).__name__}")
    if make not in _INJECTED:  # one wrapped optimizer per function, so repeated calls reuse the compilation
        _INJECTED[make] = optax.inject_hyperparams(make)(learning_rate=0.0)
    opt = _INJECTED[make]
    n = lrs.shape[1]
    c = configs[0]
    if not (isinstance(data, (tuple, list)) and len(data) == 3):
        raise TypeError(
            f"data: expected (tokens, targets, weights), each (steps, batch, T): one batch per step, "
            f"got {type(data).__name__}"
        )
    batches = tuple(jnp.asarray(x) for x in data)
    tokens = _check_batch(batches)[0]
    if tokens.ndim != 3 or tokens.shape[0] != n:
        raise ValueError(
            f"data: expected (tokens, targets, weights) with a leading step axis of {n} (steps, batch, T), "
            f"got tokens of shape {tuple(tokens.shape)}"
        )
    _check_tokens(batches[0].reshape(-1, tokens.shape[-1]), c)

    static_variant, pre, qk = _variant_args(configs)
    # stack the runs on the host (eager device ops would each compile once per leaf shape)
    full = [jax.device_get(_full_params(p, ci)) for p, ci in zip(plist, configs)]
    stacked = jax.tree_util.tree_map(lambda *xs: np.stack(xs), *full)
    states = jax.tree_util.tree_map(lambda x: np.broadcast_to(x, (R,) + np.shape(x)), jax.device_get(opt.init(full[0])))
    carry = (stacked, states, jnp.ones((R,), bool), jnp.full((R,), -1, jnp.int32))
    base = c.replace(norm="pre", qk_norm=False)  # the variant comes from static_variant / pre, qk
    size = max(k for k in range(1, min(chunk, n) + 1) if n % k == 0)  # equal chunks: one compilation
    records = []
    from tqdm.auto import tqdm

    with tqdm(total=n, desc=desc, disable=not progress, leave=True) as bar:
        for start in range(0, n, size):
            steps = jnp.arange(start, start + size, dtype=jnp.int32)
            part = tuple(x[start : start + size] for x in batches)
            carry, rec = _train_chunk(
                carry, base, static_variant, opt, pre, qk, steps, jnp.asarray(lrs[:, start : start + size]), part
            )
            records.append(jax.device_get(rec))
            bar.update(size)
            bar.set_postfix(loss=", ".join(f"{v:.3g}" for v in records[-1][0][:, -1]), refresh=False)
    loss, gn, ml, ent = (np.concatenate([r[i] for r in records], axis=1) for i in range(4))
    last = jax.device_get(carry[0])  # host NumPy: slicing per run compiles nothing
    final = [_own_params(jax.tree_util.tree_map(lambda x: x[i], last), ci) for i, ci in enumerate(configs)]
    return TransformerRun(loss, gn, ml, ent, lrs, np.asarray(carry[3]), final)


# --------------------------------------------------------------------------- a synthetic task


SEQUENCE_TASKS = ("reverse", "copy", "sort")


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4))
def _sequence(key: jax.Array, task: str, batch: int, length: int, n_symbols: int):
    symbols = jax.random.randint(key, (batch * length,), 1, n_symbols + 1).reshape(batch, length)  # 1-D: fast to compile
    if task == "reverse":
        answer = symbols[:, ::-1]
    elif task == "sort":
        answer = jnp.sort(symbols, axis=1)
    else:
        answer = symbols
    sep = jnp.zeros((batch, 1), symbols.dtype)
    seq = jnp.concatenate([symbols, sep, answer], axis=1).astype(jnp.int32)  # (B, 2·length + 1)
    weights = (jnp.arange(2 * length) >= length).astype(jnp.float32)
    return seq[:, :-1], seq[:, 1:], jnp.broadcast_to(weights, (batch, 2 * length))


def sequence_task(
    seed: Any, batch: int, *, task: str = "reverse", length: int = 8, n_symbols: int = 10
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """One batch ``(tokens, targets, weights)``, each (batch, 2·length), of a string task.

    A sequence is ``length`` random symbols from 1..n_symbols, the separator 0, then the answer:
    the symbols reversed (``task="reverse"``), copied (``"copy"``) or sorted (``"sort"``).
    tokens = sequence[:-1], targets = sequence[1:] (next-token prediction), weights 1 on the
    ``length`` answer positions. A model needs vocab = n_symbols + 1 and seq_len ≥ 2·length.
    Guessing a uniform symbol costs log(n_symbols) nats per answer token. ``seed``: an int or a
    ``jax.random`` key (pure JAX: use ``jax.random.fold_in(key, step)`` for a fresh batch per step).
    """
    if task not in SEQUENCE_TASKS:
        raise ValueError(f"task: expected one of {', '.join(SEQUENCE_TASKS)}, got {task!r}")
    batch = _positive_int(batch, "batch")
    length = _positive_int(length, "length")
    n_symbols = _positive_int(n_symbols, "n_symbols")
    if isinstance(seed, bool):
        raise TypeError("seed: expected an int or a jax.random key, got bool")
    if isinstance(seed, (int, np.integer)):
        key = jax.random.PRNGKey(int(seed))
    elif hasattr(seed, "dtype") and (jnp.issubdtype(seed.dtype, jax.dtypes.prng_key) or seed.dtype == jnp.uint32):
        key = seed
    else:
        raise TypeError(f"seed: expected an int or a jax.random key, got {type(seed).__name__}")
    return _sequence(key, task, batch, length, n_symbols)
