"""gradcourse.models.transformer: shapes, causality, gradients, Pre-/Post-LN structure, QK-norm bound, bad input.

Configs are tiny (d_model 8, 2 heads, 2 blocks, T ≤ 6) and shared between tests, so the whole file
compiles only a handful of programs.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradcourse as gc
from gradcourse.models import transformer as tf

V, D, H, L, T = 7, 8, 2, 2, 6


def config(**kw):
    base = dict(vocab=V, d_model=D, n_heads=H, n_layers=L, seq_len=T, d_ff=16)
    base.update(kw)
    return tf.TransformerConfig(**base)


# Two configs cover every code path (Pre-LN without, Post-LN with QK-norm). Compiling dominates the
# run time, so every test shares three jitted programs per config: the forward pass with attention,
# the loss and gradient (always with a traced depth, so full and truncated models share it), and
# the residual stream.
PRE, POST = config(norm="pre"), config(norm="post", qk_norm=True)
apply = jax.jit(tf.transformer_apply, static_argnums=1, static_argnames="return_attention")
_value_and_grad = jax.jit(
    lambda p, c, b, depth: jax.value_and_grad(tf.transformer_loss)(p, c, b, depth=depth), static_argnums=1
)
stream = jax.jit(lambda p, c, tokens: gc.forward(tf.transformer_stack(p, c), tf.embed_tokens(p, tokens)), static_argnums=1)


def loss(p, c, b, depth=None):
    return _value_and_grad(p, c, b, c.n_layers if depth is None else depth)[0]


def grad(p, c, b, depth=None):
    return _value_and_grad(p, c, b, c.n_layers if depth is None else depth)[1]


@pytest.fixture(scope="module")
def tokens():
    return jax.random.randint(jax.random.PRNGKey(1), (3, T), 0, V)


@pytest.fixture(scope="module")
def batch(tokens):
    targets = jnp.roll(tokens, -1, axis=1)
    weights = jnp.ones(tokens.shape).at[:, -1].set(0.0)
    return tokens, targets, weights


# --------------------------------------------------------------------------- config and params


def test_config_defaults_and_validation():
    c = tf.TransformerConfig(vocab=11)
    assert c.d_ff == 4 * c.d_model and c.d_head == c.d_model // c.n_heads and c.norm == "pre" and not c.qk_norm
    assert hash(c) == hash(tf.TransformerConfig(vocab=11))  # usable as a static jit argument
    assert c.replace(norm="post").norm == "post"
    with pytest.raises(ValueError, match="d_model: must be divisible by n_heads"):
        tf.TransformerConfig(vocab=5, d_model=10, n_heads=4)
    with pytest.raises(ValueError, match="norm: expected 'pre'"):
        tf.TransformerConfig(vocab=5, norm="sandwich")
    with pytest.raises(TypeError, match="n_layers: expected a positive int"):
        tf.TransformerConfig(vocab=5, n_layers=2.0)
    with pytest.raises(ValueError, match="vocab: expected a positive int, got 0"):
        tf.TransformerConfig(vocab=0)
    with pytest.raises(TypeError, match="qk_norm: expected True or False"):
        tf.TransformerConfig(vocab=5, qk_norm="yes")
    with pytest.raises(ValueError, match="d_ff"):
        tf.TransformerConfig(vocab=5, d_ff=-1)


def test_param_layout_and_init_statistics():
    p = tf.init_transformer(jax.random.PRNGKey(0), POST)
    b = p["blocks"]
    assert b["Wq"].shape == (L, D, D) and b["W1"].shape == (L, D, 16) and b["W2"].shape == (L, 16, D)
    assert b["q_scale"].shape == (L, H, D // H) and "final" not in p
    assert p["embed"]["tokens"].shape == (V, D) and p["unembed"].shape == (D, V)
    # variances of the initialisers: 1/fan_in (LeCun), 2/fan_in (He), 1/2 for the embeddings
    attn = jnp.stack([b["Wq"], b["Wk"], b["Wv"], b["Wo"]])
    assert abs(float(jnp.var(attn)) * D - 1) < 0.2 and abs(float(jnp.var(b["W1"])) * D - 2) < 0.4
    assert abs(float(jnp.var(b["W2"])) * 16 - 1) < 0.2 and float(jnp.max(jnp.abs(b["Wq"] - b["Wk"]))) > 0
    labels = gc.layer_norms(b, stacked=True)
    assert set(labels) >= {"Wq", "Wk", "Wv", "Wo", "W1", "W2", "ln1_scale", "q_scale"} and labels["Wq"].shape == (L,)
    pre = tf.init_transformer(jax.random.PRNGKey(0), PRE)
    assert pre["final"]["scale"].shape == (D,) and "q_scale" not in pre["blocks"]
    with pytest.raises(TypeError, match="key: expected a jax.random key"):
        tf.init_transformer(0, PRE)
    with pytest.raises(TypeError, match="config: expected a TransformerConfig"):
        tf.init_transformer(jax.random.PRNGKey(0), {"vocab": 5})


# --------------------------------------------------------------------------- forward


@pytest.mark.parametrize("c", [PRE, POST], ids=["pre", "post-qk"])
def test_shapes_and_causality(c, tokens):
    p = tf.init_transformer(jax.random.PRNGKey(2), c)
    out, att = apply(p, c, tokens, return_attention=True)
    assert out.shape == (3, T, V) and att.shape == (L, 3, H, T, T)
    # changing the token at position 3 leaves the logits at positions 0..2 unchanged
    changed = tokens.at[:, 3].set((tokens[:, 3] + 1) % V)
    out2 = apply(p, c, changed, return_attention=True)[0]
    np.testing.assert_array_equal(np.asarray(out[:, :3]), np.asarray(out2[:, :3]))
    assert float(jnp.max(jnp.abs(out[:, 3:] - out2[:, 3:]))) > 1e-4
    # the un-jitted entry point agrees, and shorter inputs work (learned positions are sliced)
    short = tf.transformer_apply(p, c, tokens[:, :4])
    assert short.shape == (3, 4, V)
    np.testing.assert_allclose(short, out[:, :4], rtol=1e-5, atol=1e-5)


def test_attention_logits_are_scaled_dot_products(tokens):
    c = PRE
    p = jax.device_get(tf.init_transformer(jax.random.PRNGKey(3), c))
    att = apply(p, c, tokens, return_attention=True)[1]
    # block 0 by hand, in NumPy: q = LN(h_0) W_q, k = LN(h_0) W_k, s = q·k / sqrt(d_head)
    h0 = p["embed"]["tokens"][np.asarray(tokens)] + p["embed"]["positions"][:T]
    x = (h0 - h0.mean(-1, keepdims=True)) / np.sqrt(h0.var(-1, keepdims=True) + 1e-5)
    x = x * p["blocks"]["ln1_scale"][0] + p["blocks"]["ln1_shift"][0]
    q = (x @ p["blocks"]["Wq"][0]).reshape(3, T, H, D // H)
    k = (x @ p["blocks"]["Wk"][0]).reshape(3, T, H, D // H)
    np.testing.assert_allclose(att[0], np.einsum("bthe,bshe->bhts", q, k) / math.sqrt(D // H), rtol=1e-4, atol=1e-5)


def test_attention_summaries():
    logits = jnp.zeros((2, 4, 4)).at[:, 0, 3].set(1e6)  # a huge logit above the diagonal is masked
    assert float(tf.max_attention_logit(logits)) == 0.0
    np.testing.assert_allclose(tf.attention_entropy(logits), np.log(np.arange(1, 5))[None].repeat(2, 0), rtol=1e-6)
    sharp = jnp.where(jnp.eye(4, dtype=bool), 50.0, 0.0)  # attend to itself: one-hot
    ent = np.asarray(tf.attention_entropy(sharp))
    assert np.all(ent >= 0) and np.all(ent < 1e-15 + 60 * np.exp(-50))
    per_block = tf.max_attention_logit(jnp.stack([logits, -3.0 * jnp.ones((2, 4, 4))]), axis=(1, 2, 3))
    np.testing.assert_allclose(per_block, [0.0, 3.0])
    with pytest.raises(ValueError, match="logits: expected"):
        tf.attention_entropy(jnp.zeros((3, 4)))


def test_post_ln_blocks_output_standardised_tokens_pre_ln_stream_grows(tokens):
    for c in (POST, PRE):
        p = tf.init_transformer(jax.random.PRNGKey(4), c)
        hs = stream(p, c, tokens)  # (L+1, B, T, d)
        assert hs.shape == (L + 1, 3, T, D)
        mean, var = jnp.mean(hs[1:], axis=-1), jnp.var(hs[1:], axis=-1)
        if c.norm == "post":  # LN(x + F(x)) with scale 1, shift 0: every token standardised
            np.testing.assert_allclose(mean, 0.0, atol=1e-5)
            np.testing.assert_allclose(var, 1.0, atol=1e-3)
            assert float(jnp.max(jnp.abs(jnp.var(hs[0], axis=-1) - 1))) > 0.1  # the embeddings are not
        else:  # the Pre-LN stream is never normalised: its mean square grows along the depth
            ms = np.asarray(gc.mean_square(hs))
            assert np.all(np.diff(ms) > 0) and ms[-1] > 1.5 * ms[0]
            # zero output maps make every Pre-LN block the identity
            p["blocks"]["Wo"] = jnp.zeros_like(p["blocks"]["Wo"])
            p["blocks"]["W2"] = jnp.zeros_like(p["blocks"]["W2"])
            p["blocks"]["b2"] = jnp.zeros_like(p["blocks"]["b2"])
            hs = stream(p, c, tokens)
            np.testing.assert_array_equal(np.asarray(hs[-1]), np.asarray(hs[0]))


def test_qk_norm_bounds_the_logits(tokens):
    """|q̂·k̂|/√d_head ≤ √d_head·max|γ_q|·max|γ_k| with QK-LayerNorm, whatever W_q and W_k are."""
    dh = D // H
    for c in (PRE, POST):
        qk = c.qk_norm
        p = tf.init_transformer(jax.random.PRNGKey(6), c)
        small = apply(p, c, tokens, return_attention=True)[1]
        p["blocks"]["Wq"] = 100.0 * p["blocks"]["Wq"]
        p["blocks"]["Wk"] = 100.0 * p["blocks"]["Wk"]
        if qk:
            p["blocks"]["q_scale"] = p["blocks"]["q_scale"].at[:, 0, 0].set(3.0)
            p["blocks"]["k_scale"] = p["blocks"]["k_scale"].at[:, 1, 2].set(-2.0)
        big = apply(p, c, tokens, return_attention=True)[1]
        if qk:
            assert float(tf.max_attention_logit(small)) <= math.sqrt(dh) * (1 + 1e-5)
            assert float(tf.max_attention_logit(big)) <= math.sqrt(dh) * 3.0 * 2.0 * (1 + 1e-5)
        else:  # bilinear in (W_q, W_k): scaling both by 100 scales block 0's logits by 10^4
            np.testing.assert_allclose(big[0], 1e4 * small[0], rtol=1e-3, atol=1e-2)


# --------------------------------------------------------------------------- gradients


def test_gradients_match_finite_differences(batch):
    """⟨∇L, v⟩ equals the central difference (L(θ + εv) − L(θ − εv)) / 2ε along a unit direction v.

    float32 with ε = 1e-3: the rounding error of the difference is about 1e-7 / ε = 1e-4, and v is
    tilted towards the gradient so that ⟨∇L, v⟩ is of order ‖∇L‖ ≈ 1, far above it.
    """
    rng = np.random.default_rng(8)
    for c in (PRE, POST):
        p = tf.init_transformer(jax.random.PRNGKey(7), c)
        g = grad(p, c, batch)
        gnorm = float(np.sqrt(sum(np.sum(np.square(x)) for x in jax.tree_util.tree_leaves(g))))
        v = jax.tree_util.tree_map(lambda x: np.asarray(x) / gnorm + rng.normal(size=x.shape) / 50.0, g)
        vnorm = float(np.sqrt(sum(np.sum(np.square(x)) for x in jax.tree_util.tree_leaves(v))))
        v = jax.tree_util.tree_map(lambda x: (x / vnorm).astype(np.float32), v)
        dot = sum(float(np.vdot(a, b)) for a, b in zip(jax.tree_util.tree_leaves(g), jax.tree_util.tree_leaves(v)))
        eps = 1e-3
        along = lambda e: float(loss(jax.tree_util.tree_map(lambda a, b: a + e * b, p, v), c, batch))
        fd = (along(eps) - along(-eps)) / (2 * eps)
        assert dot > 0.3 * gnorm and abs(dot - fd) <= 2e-3 * abs(dot), (c.norm, dot, fd)


def test_residual_stream_grads_and_block_norms(batch):
    c = POST
    p = tf.init_transformer(jax.random.PRNGKey(9), c)
    gs = jax.jit(tf.residual_stream_grads, static_argnums=1)(p, c, batch)
    assert gs.shape == (L + 1, 3, T, D)
    g = grad(p, c, batch)
    # h_0 = E_tok[tokens] + E_pos: ∂L/∂E_pos[t] = Σ_b ∂L/∂h_0[b, t]
    np.testing.assert_allclose(jnp.sum(gs[0], axis=0), g["embed"]["positions"], rtol=1e-4, atol=1e-7)
    norms = tf.block_grad_norms(g)
    want = np.sqrt(sum(np.sum(np.asarray(x).reshape(L, -1) ** 2, axis=1) for x in jax.tree_util.tree_leaves(g["blocks"])))
    np.testing.assert_allclose(norms, want, rtol=1e-5)
    with pytest.raises(TypeError, match="grads: expected"):
        tf.block_grad_norms([1.0])


def test_depth_runs_a_truncated_model(batch):
    c = PRE
    p = tf.init_transformer(jax.random.PRNGKey(10), c)
    c1 = c.replace(n_layers=1)
    p1 = dict(p, blocks=jax.tree_util.tree_map(lambda a: a[:1], p["blocks"]))
    np.testing.assert_allclose(loss(p, c, batch, depth=1), tf.transformer_loss(p1, c1, batch), rtol=1e-6)
    logits = apply(p, c, batch[0], return_attention=True)[0]  # the plain path, without depth masks
    np.testing.assert_allclose(loss(p, c, batch, depth=2), tf._xent(logits, batch[1], batch[2]), rtol=1e-6)
    norms = tf.block_grad_norms(grad(p, c, batch, depth=1))
    assert float(norms[1]) == 0.0 and float(norms[0]) > 0
    with pytest.raises(ValueError, match="depth: expected an int from 1 to config.n_layers=2"):
        tf.transformer_loss(p, c, batch, depth=3)
    with pytest.raises(TypeError, match="depth: expected None or an int"):
        tf.transformer_loss(p, c, batch, depth=1.5)


# --------------------------------------------------------------------------- bad input


def test_bad_input(tokens, batch):
    c = PRE
    p = tf.init_transformer(jax.random.PRNGKey(11), c)
    with pytest.raises(TypeError, match="tokens: expected integer token ids"):
        tf.transformer_apply(p, c, tokens.astype(jnp.float32))
    with pytest.raises(ValueError, match=r"tokens: ids must lie in 0..6"):
        tf.transformer_apply(p, c, tokens.at[0, 0].set(V))
    with pytest.raises(ValueError, match="tokens: length T=7"):
        tf.transformer_apply(p, c, jnp.zeros((1, 7), jnp.int32))
    with pytest.raises(ValueError, match=r"tokens: expected shape \(batch, T\)"):
        tf.transformer_apply(p, c, tokens[0])
    with pytest.raises(ValueError, match="params: built for n_layers=2"):
        tf.transformer_apply(p, c.replace(n_layers=3), tokens)
    with pytest.raises(ValueError, match="qk_norm"):
        tf.transformer_apply(p, c.replace(qk_norm=True), tokens)
    with pytest.raises(ValueError, match="placement"):
        tf.transformer_apply(p, c.replace(norm="post"), tokens)
    with pytest.raises(TypeError, match="params: expected the dict from init_transformer"):
        tf.transformer_apply({"W": 1}, c, tokens)
    with pytest.raises(TypeError, match="batch: expected"):
        tf.transformer_loss(p, c, tokens)
    with pytest.raises(ValueError, match="batch: tokens, targets and weights must have the same shape"):
        tf.transformer_loss(p, c, (tokens, tokens[:, :2], batch[2]))


# --------------------------------------------------------------------------- the task


def test_sequence_task():
    x, y, w = tf.sequence_task(0, 5, task="reverse", length=4, n_symbols=6)
    assert x.shape == y.shape == w.shape == (5, 8) and x.dtype == jnp.int32
    x, y, w = np.asarray(x), np.asarray(y), np.asarray(w)
    symbols = x[:, :4]
    assert symbols.min() >= 1 and symbols.max() <= 6 and np.all(x[:, 4] == 0)
    np.testing.assert_array_equal(y[:, :-1], x[:, 1:])  # next-token targets
    np.testing.assert_array_equal(y[:, 4:], symbols[:, ::-1])  # the answer, scored where w = 1
    np.testing.assert_array_equal(w, np.tile([0, 0, 0, 0, 1, 1, 1, 1], (5, 1)))
    xs, ys, _ = tf.sequence_task(0, 5, task="sort", length=4, n_symbols=6)
    np.testing.assert_array_equal(np.asarray(ys)[:, 4:], np.sort(np.asarray(xs)[:, :4], axis=1))
    xc, yc, _ = tf.sequence_task(jax.random.PRNGKey(0), 5, task="copy", length=4, n_symbols=6)
    np.testing.assert_array_equal(np.asarray(yc)[:, 4:], np.asarray(xc)[:, :4])
    np.testing.assert_array_equal(tf.sequence_task(3, 5)[0], tf.sequence_task(3, 5)[0])  # deterministic
    with pytest.raises(ValueError, match="task: expected one of reverse, copy, sort"):
        tf.sequence_task(0, 5, task="shuffle")
    with pytest.raises(TypeError, match="seed: expected an int or a jax.random key"):
        tf.sequence_task(0.5, 5)
    with pytest.raises(ValueError, match="length: expected a positive int"):
        tf.sequence_task(0, 5, length=0)


# --------------------------------------------------------------------------- training


def test_gradients_at_init_matches_direct_gradients(tokens, batch):
    keys = jax.random.split(jax.random.PRNGKey(14), 2)
    prof = tf.gradients_at_init(keys, [PRE, POST], batch, depths=(1, 2))
    assert prof["blocks"].shape == prof["W2"].shape == (2, 2, 2, L) and prof["stream_rms"].shape == (2, 2, L + 1)
    for i, c in enumerate((PRE, POST)):
        p = tf.init_transformer(keys[1], c)  # the same weights for every config
        g = grad(p, c, batch)
        np.testing.assert_allclose(prof["blocks"][i, 1, 1], tf.block_grad_norms(g), rtol=1e-4)
        np.testing.assert_allclose(prof["W2"][i, 1, 1], gc.layer_norms(g["blocks"], stacked=True)["W2"], rtol=1e-4)
        hs = stream(p, c, tokens)
        np.testing.assert_allclose(prof["stream_rms"][i, 1], np.sqrt(gc.mean_square(hs)), rtol=1e-4)
    p = tf.init_transformer(keys[0], PRE)
    np.testing.assert_allclose(prof["blocks"][0, 0, 0], tf.block_grad_norms(grad(p, PRE, batch, depth=1)), rtol=1e-4)
    assert prof["blocks"][0, 0, 0, 1] == 0.0  # depth 1: the second block is skipped
    with pytest.raises(ValueError, match="may differ only in norm and qk_norm"):
        tf.gradients_at_init(keys, [PRE, PRE.replace(d_ff=8)], batch)
    with pytest.raises(TypeError, match="keys: expected"):
        tf.gradients_at_init(keys[0], [PRE], batch)


def test_train_transformer_records_and_stops(tokens, batch):
    ps = [tf.init_transformer(jax.random.PRNGKey(12), c) for c in (POST, POST, PRE)]
    steps = 20
    data = tuple(jnp.broadcast_to(x, (steps,) + x.shape) for x in batch)  # the same batch every step
    lrs = [np.full(steps, 3e-2), np.zeros(steps), np.full(steps, 1e30)]
    run = tf.train_transformer(ps, [POST, POST, PRE], data, lrs, chunk=10, progress=False)
    assert run.loss.shape == (3, steps) and run.grad_norms.shape == (3, steps, L) and run.max_logit.shape == (3, steps, L)
    assert run.entropy.shape == (3, steps) and run.learning_rates.shape == (3, steps) and len(run.params) == 3
    # step 0 records the loss, gradient and attention at initialisation of each run's own variant
    for i, (p, c) in enumerate(zip(ps, (POST, POST, PRE))):
        np.testing.assert_allclose(run.loss[i, 0], float(loss(p, c, batch)), rtol=1e-5)
        np.testing.assert_allclose(run.grad_norms[i, 0], tf.block_grad_norms(grad(p, c, batch)), rtol=1e-4)
        att = apply(p, c, tokens, return_attention=True)[1]
        np.testing.assert_allclose(run.max_logit[i, 0], tf.max_attention_logit(att, axis=(1, 2, 3, 4)), rtol=1e-5)
        np.testing.assert_allclose(run.entropy[i, 0], jnp.mean(tf.attention_entropy(att)), rtol=1e-5)
        assert jax.tree_util.tree_structure(run.params[i]) == jax.tree_util.tree_structure(p)  # its own layout
    assert np.mean(run.loss[0, -5:]) < run.loss[0, 0] - 0.3  # it learns
    for a, b in zip(jax.tree_util.tree_leaves(run.params[1]), jax.tree_util.tree_leaves(ps[1])):  # lr 0: unchanged
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert run.stopped_at[0] == -1 and run.stopped_at[1] == -1
    s = int(run.stopped_at[2])  # lr 1e30: a non-finite step is not applied, and the run stops there
    assert 0 < s < steps and np.all(np.isfinite(run.loss[2, :s])) and np.all(np.isnan(run.loss[2, s:]))
    assert all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree_util.tree_leaves(run.params[2]))
    with pytest.raises(ValueError, match="learning_rates: expected shape"):
        tf.train_transformer(ps[0], POST, data, np.zeros((2, 2, 2)), progress=False)
    with pytest.raises(ValueError, match="learning_rates: expected finite"):
        tf.train_transformer(ps[0], POST, data, np.full(steps, np.inf), progress=False)
    with pytest.raises(ValueError, match="learning_rates: every run needs the same number of steps"):
        tf.train_transformer(ps[0], POST, data, [np.zeros(3), np.zeros(4)], progress=False)
    with pytest.raises(ValueError, match="config: expected one or 3 entries"):
        tf.train_transformer(ps[0], [POST, POST], data, lrs, progress=False)
    with pytest.raises(ValueError, match="leading step axis of 5"):
        tf.train_transformer(ps[0], POST, data, np.zeros(5), progress=False)
    with pytest.raises(TypeError, match="data: expected"):
        tf.train_transformer(ps[0], POST, tokens, np.zeros(5), progress=False)
    with pytest.raises(ValueError, match="params: config.qk_norm=False"):
        tf.train_transformer(ps[0], PRE, data, np.zeros(steps), progress=False)
