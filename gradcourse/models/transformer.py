"""A small decoder-only transformer in pure JAX, built to look inside (core layer): per-block
gradients, attention logits of every block and head, and the residual stream.

The model convention of ``gradcourse.models``: a frozen ``Config``, ``init(key, config)``,
``apply(params, config, tokens)``, ``loss(params, config, batch)`` and ``states(params, config,
tokens)`` (the residual stream h_0 ... h_L). Train with ``gc.train.fit`` / ``gc.train.fit_many``;
the string tasks are ``gc.data.sequence_task``.

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

``gradients_at_init`` measures per-block gradient norms and the stream's size at initialisation
for several variants, seeds and depths in one compiled program (compiling dominates the run time
of a small model on a CPU).

>>> import jax
>>> config = Config(vocab=11, d_model=16, n_heads=2, n_layers=2, seq_len=8)
>>> params = init(jax.random.PRNGKey(0), config)
>>> tokens = jax.numpy.zeros((3, 8), int)
>>> apply(params, config, tokens).shape, states(params, config, tokens).shape
((3, 8, 11), (3, 3, 8, 16))
"""
from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ..layers import layer_normalize
from ..model import Stacked
from ..validate import boolean, one_of, positive_int, prng_key

__all__ = [
    "Config", "init", "apply", "loss", "states", "attention_logits", "max_attention_logit", "attention_entropy",
    "residual_stream_grads", "gradients_at_init",
]

# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class Config:
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
    norm: Literal["pre", "post"] = "pre"
    qk_norm: bool = False

    def __post_init__(self) -> None:
        for name in ("vocab", "d_model", "n_heads", "n_layers", "seq_len"):
            object.__setattr__(self, name, positive_int(getattr(self, name), name))
        if self.d_ff is None:
            object.__setattr__(self, "d_ff", 4 * self.d_model)
        else:
            object.__setattr__(self, "d_ff", positive_int(self.d_ff, "d_ff"))
        if self.d_model % self.n_heads:
            raise ValueError(
                f"d_model: must be divisible by n_heads (each head gets d_model / n_heads features), "
                f"got d_model={self.d_model}, n_heads={self.n_heads}"
            )
        one_of(self.norm, "norm", ("pre", "post"))
        object.__setattr__(self, "qk_norm", boolean(self.qk_norm, "qk_norm"))

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    def replace(self, **changes: Any) -> Config:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


def _check_config(config: Any) -> Config:
    if not isinstance(config, Config):
        raise TypeError(f"config: expected a gc.models.transformer.Config, got {type(config).__name__}")
    return config


# --------------------------------------------------------------------------- parameters


def init(key: jax.Array, config: Config, *, dtype: Any = jnp.float32) -> dict:
    """Random parameters (layout in the module docstring), all from ``jax.nn.initializers``.

    Embeddings (token and position) ~ N(0, ½), so h_0 has unit variance per feature. Attention
    and output weights ~ N(0, 1/fan_in) (LeCun, the variance-preserving choice for linear maps);
    W1 ~ N(0, 2/d) (He, for the GELU); biases and LN shifts 0; LN and QK-norm scales 1. The
    Gaussian entries come from one ``jax.nn.initializers.normal`` draw, scaled per weight.
    """
    c = _check_config(config)
    return _init(prng_key(key), c, jnp.dtype(dtype))


@functools.partial(jax.jit, static_argnums=(1, 2))
def _init(key: jax.Array, c: Config, dtype: Any) -> dict:
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
    for (name, shape, variance), size in zip(weights, sizes, strict=True):
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


def _causal_mask(T: int) -> jax.Array:
    """(T, T) boolean: True where query position t may attend to key position s (s ≤ t)."""
    return jnp.tril(jnp.ones((T, T), dtype=bool))


# The placement of LN and QK-norm are Python bools for one model (the unused branch is never
# traced), or traced booleans when runs of different variants share one compiled program
# (``gradients_at_init``): both branches are computed and one is selected.
# That costs a few extra element-wise LayerNorms, never an extra matmul.


def _variant(c: Config) -> tuple[bool, bool]:
    return c.norm == "pre", c.qk_norm


def _pick(flag: Any, a: Callable[[], jax.Array], b: Callable[[], jax.Array]) -> jax.Array:
    """a() if flag else b(); with a traced flag both are computed and selected."""
    if isinstance(flag, (bool, np.bool_)):
        return a() if flag else b()
    return jnp.where(flag, a(), b())


def _attention(p: dict, x: jax.Array, c: Config, qk: Any) -> tuple[jax.Array, jax.Array]:
    """Causal multi-head self-attention of x (B, T, d): its output (B, T, d) and logits (B, H, T, T)."""
    B, T, d = x.shape
    H, dh = c.n_heads, c.d_head
    q = (x @ p["Wq"]).reshape(B, T, H, dh)
    k = (x @ p["Wk"]).reshape(B, T, H, dh)
    v = (x @ p["Wv"]).reshape(B, T, H, dh)
    q = _pick(qk, lambda: layer_normalize(q) * p["q_scale"], lambda: q)
    k = _pick(qk, lambda: layer_normalize(k) * p["k_scale"], lambda: k)
    logits = jnp.einsum("bthe,bshe->bhts", q, k) / math.sqrt(dh)
    weights = jax.nn.softmax(jnp.where(_causal_mask(T), logits, -jnp.inf), axis=-1)
    out = jnp.einsum("bhts,bshe->bthe", weights, v).reshape(B, T, d)
    return out @ p["Wo"], logits


def _mlp(p: dict, x: jax.Array) -> jax.Array:
    return jax.nn.gelu(x @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]


def _block(p: dict, h: jax.Array, c: Config, variant: tuple | None = None) -> tuple[jax.Array, jax.Array]:
    """One block: the new residual stream (B, T, d) and this block's attention logits (B, H, T, T).

    Pre-LN: h + Attn(LN₁(h)), then + MLP(LN₂(·)). Post-LN: LN₁(h + Attn(h)), then LN₂(· + MLP(·)).
    """
    pre, qk = _variant(c) if variant is None else variant
    ln1 = lambda x: layer_normalize(x, p["ln1_scale"], p["ln1_shift"])
    ln2 = lambda x: layer_normalize(x, p["ln2_scale"], p["ln2_shift"])
    a, logits = _attention(p, _pick(pre, lambda: ln1(h), lambda: h), c, qk)
    h = _pick(pre, lambda: h + a, lambda: ln1(h + a))
    m = _mlp(p, _pick(pre, lambda: ln2(h), lambda: h))
    h = _pick(pre, lambda: h + m, lambda: ln2(h + m))
    return h, logits


def _stack(params: dict, c: Config) -> Stacked:
    """The L blocks as ``gc.Stacked``: h_0 -> h_L, for ``gc.backward``."""

    def f(p: dict, h: jax.Array) -> jax.Array:
        return _block(p, h, c)[0]

    return Stacked(f, params["blocks"])


# --------------------------------------------------------------------------- the model


def _check_params(params: Any, c: Config) -> None:
    if not isinstance(params, dict) or not {"embed", "blocks", "unembed"} <= set(params):
        got = sorted(params) if isinstance(params, dict) else type(params).__name__
        raise TypeError(f"params: expected the dict from init (keys embed, blocks, unembed), got {got}")
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


def _check_tokens(tokens: Any, c: Config) -> jax.Array:
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


def _embed(params: dict, tokens: jax.Array) -> jax.Array:
    """h_0 = E_tok[tokens] + E_pos[:T], shape (B, T, d_model)."""
    T = tokens.shape[1]
    return params["embed"]["tokens"][tokens] + params["embed"]["positions"][:T]


def _unembed(params: dict, h: jax.Array, pre: Any) -> jax.Array:
    h = _pick(pre, lambda: layer_normalize(h, params["final"]["scale"], params["final"]["shift"]), lambda: h)
    return h @ params["unembed"]


def _run(
    params: dict, c: Config, tokens: jax.Array, depth: Any = None, variant: tuple | None = None
) -> tuple[jax.Array, jax.Array]:
    """Logits (B, T, vocab) and attention logits (L, B, H, T, T); ``variant``: (pre, qk) flags, else from c."""
    variant = _variant(c) if variant is None else variant
    h0 = _embed(params, tokens)
    if depth is None:
        h, logits = lax.scan(lambda h, p: _block(p, h, c, variant), h0, params["blocks"])
    else:  # blocks l >= depth are skipped: the identity, with zero attention logits and zero gradients

        def step(h: jax.Array, inp: tuple) -> tuple[jax.Array, jax.Array]:
            p, on = inp
            B, T = h.shape[:2]

            def skip() -> tuple[jax.Array, jax.Array]:
                return h, jnp.zeros((B, c.n_heads, T, T), h.dtype)

            # lax.cond runs one branch (a skipped block costs nothing); under vmap over depth it becomes a select
            return lax.cond(on, lambda: _block(p, h, c, variant), skip)

        on = jnp.arange(c.n_layers) < depth
        h, logits = lax.scan(step, h0, (params["blocks"], on))
    return _unembed(params, h, variant[0]), logits


def _check_depth(depth: Any, c: Config) -> Any:
    if depth is None or isinstance(depth, jax.core.Tracer):
        return depth
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) and not (
        hasattr(depth, "dtype") and jnp.issubdtype(depth.dtype, jnp.integer) and jnp.ndim(depth) == 0
    ):
        raise TypeError(f"depth: expected None or an int, got {type(depth).__name__}")
    if not 1 <= int(depth) <= c.n_layers:
        raise ValueError(f"depth: expected an int from 1 to config.n_layers={c.n_layers}, got {int(depth)}")
    return depth


def apply(
    params: dict, config: Config, tokens: jax.Array, *, depth: Any = None, return_attention: bool = False
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


def _stream(params: dict, c: Config, tokens: jax.Array, variant: tuple | None = None) -> jax.Array:
    h0 = _embed(params, tokens)
    _, hs = lax.scan(lambda h, p: (lambda n: (n, n))(_block(p, h, c, variant)[0]), h0, params["blocks"])
    return jnp.concatenate([h0[None], hs])


def states(params: dict, config: Config, tokens: jax.Array) -> jax.Array:
    """The residual stream h_0 ... h_L at every block boundary, (L+1, B, T, d_model).

    h_0 = E_tok[tokens] + E_pos[:T] (the embeddings), h_l the output of block l (for Pre-LN before
    the final LN). Equal to ``gc.forward`` on the blocks as a ``gc.Stacked`` model (tested).
    """
    c = _check_config(config)
    _check_params(params, c)
    return _stream(params, c, _check_tokens(tokens, c))


def attention_logits(params: dict, config: Config, tokens: jax.Array) -> jax.Array:
    """Pre-softmax attention logits s_ts = q_t·k_s/√d_head of every block and head: (L, B, H, T, T).

    Entries above the diagonal (s > t) are computed but masked out of the softmax; use
    ``max_attention_logit`` / ``attention_entropy`` to summarise only the causal ones.
    """
    return apply(params, config, tokens, return_attention=True)[1]


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
    a = jnp.where(_causal_mask(logits.shape[-1]), jnp.abs(logits), 0.0)
    return jnp.max(a, axis=axis)


def attention_entropy(logits: jax.Array) -> jax.Array:
    """Entropy (nats) of each query's causal attention distribution, shape (..., T).

    Query t attends to t+1 keys, so 0 ≤ entropy ≤ log(t+1): 0 is one-hot attention ("entropy
    collapse", Zhai et al. 2023), log(t+1) uniform attention.
    """
    logits = _check_logits(logits)
    mask = _causal_mask(logits.shape[-1])
    logp = jax.nn.log_softmax(jnp.where(mask, logits, -jnp.inf), axis=-1)
    return -jnp.sum(jnp.where(mask, jnp.exp(logp) * logp, 0.0), axis=-1)


# --------------------------------------------------------------------------- loss and gradients


def _xent(logits: jax.Array, targets: jax.Array, weights: jax.Array) -> jax.Array:
    logp = jax.nn.log_softmax(logits, axis=-1)
    nll = -jnp.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]
    return jnp.sum(nll * weights) / jnp.maximum(jnp.sum(weights), 1.0)


def _check_batch(batch: Any) -> tuple[jax.Array, jax.Array, jax.Array]:
    if not isinstance(batch, (tuple, list)) or len(batch) != 3:
        raise TypeError("batch: expected (tokens, targets, weights), each (B, T), as returned by gc.data.sequence_task")
    tokens, targets, weights = batch
    if jnp.shape(targets) != jnp.shape(tokens) or jnp.shape(weights) != jnp.shape(tokens):
        raise ValueError(
            f"batch: tokens, targets and weights must have the same shape (B, T), got "
            f"{tuple(jnp.shape(tokens))}, {tuple(jnp.shape(targets))}, {tuple(jnp.shape(weights))}"
        )
    return tokens, targets, weights


def loss(params: dict, config: Config, batch: tuple, *, depth: Any = None) -> jax.Array:
    """Mean next-token cross-entropy (nats) over the positions with weight 1.

    ``batch = (tokens, targets, weights)``, each (B, T): targets[b, t] is the token to predict at
    position t, weights[b, t] ∈ {0, 1} says whether position t is scored. ``depth``: as in
    ``apply``. For ``gc.train.fit``: ``fit(lambda p, b: loss(p, config, b), ...)``.
    """
    tokens, targets, weights = _check_batch(batch)
    return _xent(apply(params, config, tokens, depth=depth), targets, weights)


def residual_stream_grads(params: dict, config: Config, batch: tuple) -> jax.Array:
    """∂loss/∂h_l for l = 0 ... L (h_0: the embeddings, h_l: after block l): (L+1, B, T, d_model).

    ``gc.backward`` on ``transformer_stack`` with the unembedding and cross-entropy as the loss.
    """
    from ..chains import backward

    c = _check_config(config)
    tokens, targets, weights = _check_batch(batch)
    tokens = _check_tokens(tokens, c)
    _check_params(params, c)
    head = lambda h: _xent(_unembed(params, h, c.norm == "pre"), targets, weights)  # noqa: E731
    return backward(_stack(params, c), _embed(params, tokens), head)


# --------------------------------------------------------------------------- variants in one program


def _same_shapes(configs: Any, name: str = "config") -> list[Config]:
    """A list of configs that may differ only in ``norm`` and ``qk_norm``."""
    configs = list(configs) if isinstance(configs, (list, tuple)) else [configs]
    if not configs:
        raise ValueError(f"{name}: expected at least one Config")
    for c in configs:
        _check_config(c)
    base = configs[0].replace(norm="pre", qk_norm=False)
    for c in configs[1:]:
        if c.replace(norm="pre", qk_norm=False) != base:
            raise ValueError(
                f"{name}: runs compiled together may differ only in norm and qk_norm, got {configs[0]} and {c}"
            )
    return configs


def _variant_args(configs: list[Config]) -> tuple[Any, jax.Array | None, jax.Array | None]:
    """A static (pre, qk) when every config agrees, else per-config boolean arrays (traced under vmap)."""
    variants = {_variant(c) for c in configs}
    if len(variants) == 1:
        return variants.pop(), None, None
    return None, jnp.array([c.norm == "pre" for c in configs]), jnp.array([c.qk_norm for c in configs])


def _block_norms(tree: Any) -> jax.Array:
    leaves = jax.tree_util.tree_leaves(tree)
    return jnp.sqrt(sum(jnp.sum(jnp.square(x.reshape(x.shape[0], -1)), axis=1) for x in leaves))


@functools.partial(jax.jit, static_argnums=(1, 2))
def _init_gradients(keys, c: Config, static_variant, pre, qk, batch, depths):
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
        hs = _stream(params, c, tokens, variant)
        return blocks, w2, jnp.sqrt(jnp.mean(jnp.square(hs), axis=(1, 2, 3)))

    if static_variant is not None:  # one config: no selection, a leading config axis of 1
        return tuple(x[None] for x in jax.vmap(lambda key: one(key, static_variant))(keys))
    # one vmap over the C x K (config, key) pairs rather than a vmap of a vmap: JAX batches the inner scans' and
    # conds' jaxprs once per vmap level, so the flat form traces in about half the time
    C, K = pre.shape[0], keys.shape[0]
    pairs = (jnp.tile(keys, (C, 1)), jnp.repeat(pre, K), jnp.repeat(qk, K))  # config-major: (c0, k0), (c0, k1), ...
    flat = jax.vmap(lambda key, p_, q_: one(key, (p_, q_)))(*pairs)
    return tuple(x.reshape((C, K) + x.shape[1:]) for x in flat)


def gradients_at_init(
    keys: jax.Array, configs: Any, batch: tuple, depths: Any = None
) -> dict[str, np.ndarray]:
    """Gradient norms at initialisation for every config × key × depth, in one compilation.

    ``keys``: (K,) ``jax.random`` keys (one initialisation each, the same weights for every config:
    ``init(key, c)``); ``configs``: Configs differing only in ``norm`` /
    ``qk_norm`` (C of them); ``batch``: (tokens, targets, weights); ``depths``: D ints ≤ n_layers
    (default ``(n_layers,)``): a depth-D model is the first D blocks (see ``apply``).

    Returns NumPy arrays: ``"blocks"`` (C, K, D, L) ‖∂loss/∂θ_l‖ over block l's parameters (0 for
    l ≥ D); ``"W2"`` (C, K, D, L) ‖∂loss/∂W2_l‖ (the MLP output matrix of Xiong et al.'s analysis);
    ``"stream_rms"`` (C, K, L+1) root mean square of the residual stream h_0 ... h_L.
    """
    configs = _same_shapes(configs, "configs")
    c = configs[0]
    keys = jnp.asarray(keys)
    if keys.ndim != 2 or keys.dtype != jnp.uint32:
        raise TypeError(
            f"keys: expected a (K, 2) array of keys (jax.random.split(key, K)), got {keys.shape} {keys.dtype}"
        )
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
