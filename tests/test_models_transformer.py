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
    return tf.Config(**base)


# Two configs cover every code path (Pre-LN without, Post-LN with QK-norm). Compiling dominates the
# run time, so every test shares three jitted programs per config: the forward pass with attention,
# the loss and gradient (always with a traced depth, so full and truncated models share it), and
# the residual stream.
PRE, POST = config(norm="pre"), config(norm="post", qk_norm=True)
apply = jax.jit(tf.apply, static_argnums=1, static_argnames="return_attention")
_value_and_grad = jax.jit(lambda p, c, b, depth: jax.value_and_grad(tf.loss)(p, c, b, depth=depth), static_argnums=1)
stream = jax.jit(tf.states, static_argnums=1)


def block_norms(g):
    """‖∂L/∂θ_l‖ over every leaf of block l, in NumPy (the reference for the package's per-block norms)."""
    return np.sqrt(
        sum(np.sum(np.asarray(x).reshape(L, -1) ** 2, axis=1) for x in jax.tree_util.tree_leaves(g["blocks"]))
    )


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
    c = tf.Config(vocab=11)
    assert c.d_ff == 4 * c.d_model and c.d_head == c.d_model // c.n_heads and c.norm == "pre" and not c.qk_norm
    assert hash(c) == hash(tf.Config(vocab=11))  # usable as a static jit argument
    assert c.replace(norm="post").norm == "post"
    with pytest.raises(ValueError, match="d_model: must be divisible by n_heads"):
        tf.Config(vocab=5, d_model=10, n_heads=4)
    with pytest.raises(ValueError, match="^norm: expected one of 'pre', 'post'"):
        tf.Config(vocab=5, norm="sandwich")
    with pytest.raises(TypeError, match="^n_layers: expected a positive integer"):
        tf.Config(vocab=5, n_layers=2.0)
    with pytest.raises(ValueError, match="^vocab: expected a positive integer, got 0"):
        tf.Config(vocab=0)
    with pytest.raises(TypeError, match="^qk_norm: "):
        tf.Config(vocab=5, qk_norm="yes")
    with pytest.raises(ValueError, match="^d_ff: "):
        tf.Config(vocab=5, d_ff=-1)


def test_param_layout_and_init_statistics():
    p = tf.init(jax.random.PRNGKey(0), POST)
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
    pre = tf.init(jax.random.PRNGKey(0), PRE)
    assert pre["final"]["scale"].shape == (D,) and "q_scale" not in pre["blocks"]
    with pytest.raises(TypeError, match="key: expected a PRNG key"):
        tf.init(0, PRE)
    with pytest.raises(TypeError, match="config: expected a gc.models.transformer.Config"):
        tf.init(jax.random.PRNGKey(0), {"vocab": 5})


# --------------------------------------------------------------------------- forward


@pytest.mark.parametrize("c", [PRE, POST], ids=["pre", "post-qk"])
def test_shapes_and_causality(c, tokens):
    p = tf.init(jax.random.PRNGKey(2), c)
    out, att = apply(p, c, tokens, return_attention=True)
    assert out.shape == (3, T, V) and att.shape == (L, 3, H, T, T)
    # changing the token at position 3 leaves the logits at positions 0..2 unchanged
    changed = tokens.at[:, 3].set((tokens[:, 3] + 1) % V)
    out2 = apply(p, c, changed, return_attention=True)[0]
    np.testing.assert_array_equal(np.asarray(out[:, :3]), np.asarray(out2[:, :3]))
    assert float(jnp.max(jnp.abs(out[:, 3:] - out2[:, 3:]))) > 1e-4
    # the un-jitted entry point agrees, and shorter inputs work (learned positions are sliced)
    short = tf.apply(p, c, tokens[:, :4])
    assert short.shape == (3, 4, V)
    np.testing.assert_allclose(short, out[:, :4], rtol=1e-5, atol=1e-5)


def test_attention_logits_are_scaled_dot_products(tokens):
    c = PRE
    p = jax.device_get(tf.init(jax.random.PRNGKey(3), c))
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
        p = tf.init(jax.random.PRNGKey(4), c)
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


def test_states_is_the_stream_of_the_stacked_blocks(tokens):
    p = tf.init(jax.random.PRNGKey(4), POST)
    want = gc.forward(tf._stack(p, POST), tf._embed(p, tokens))
    np.testing.assert_allclose(stream(p, POST, tokens), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        tf.states(p, POST, tokens)[0], p["embed"]["tokens"][tokens] + p["embed"]["positions"][:T]
    )


def test_qk_norm_bounds_the_logits(tokens):
    """|q̂·k̂|/√d_head ≤ √d_head·max|γ_q|·max|γ_k| with QK-LayerNorm, whatever W_q and W_k are."""
    dh = D // H
    for c in (PRE, POST):
        qk = c.qk_norm
        p = tf.init(jax.random.PRNGKey(6), c)
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
        p = tf.init(jax.random.PRNGKey(7), c)
        g = grad(p, c, batch)
        gnorm = float(np.sqrt(sum(np.sum(np.square(x)) for x in jax.tree_util.tree_leaves(g))))
        v = jax.tree_util.tree_map(lambda x: np.asarray(x) / gnorm + rng.normal(size=x.shape) / 50.0, g)  # noqa: B023
        vnorm = float(np.sqrt(sum(np.sum(np.square(x)) for x in jax.tree_util.tree_leaves(v))))
        v = jax.tree_util.tree_map(lambda x: (x / vnorm).astype(np.float32), v)  # noqa: B023
        dot = sum(
            float(np.vdot(a, b))
            for a, b in zip(jax.tree_util.tree_leaves(g), jax.tree_util.tree_leaves(v), strict=True)
        )  # noqa: E501
        eps = 1e-3
        along = lambda e: float(loss(jax.tree_util.tree_map(lambda a, b: a + e * b, p, v), c, batch))  # noqa: B023
        fd = (along(eps) - along(-eps)) / (2 * eps)
        assert dot > 0.3 * gnorm and abs(dot - fd) <= 2e-3 * abs(dot), (c.norm, dot, fd)


def test_residual_stream_grads_and_block_norms(batch):
    c = POST
    p = tf.init(jax.random.PRNGKey(9), c)
    gs = jax.jit(tf.residual_stream_grads, static_argnums=1)(p, c, batch)
    assert gs.shape == (L + 1, 3, T, D)
    g = grad(p, c, batch)
    # h_0 = E_tok[tokens] + E_pos: ∂L/∂E_pos[t] = Σ_b ∂L/∂h_0[b, t]
    np.testing.assert_allclose(jnp.sum(gs[0], axis=0), g["embed"]["positions"], rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(gc.stacked_norms(g["blocks"]), block_norms(g), rtol=1e-5)


def test_depth_runs_a_truncated_model(batch):
    c = PRE
    p = tf.init(jax.random.PRNGKey(10), c)
    c1 = c.replace(n_layers=1)
    p1 = dict(p, blocks=jax.tree_util.tree_map(lambda a: a[:1], p["blocks"]))
    np.testing.assert_allclose(loss(p, c, batch, depth=1), tf.loss(p1, c1, batch), rtol=1e-6)
    logits = apply(p, c, batch[0], return_attention=True)[0]  # the plain path, without depth masks
    np.testing.assert_allclose(loss(p, c, batch, depth=2), tf._xent(logits, batch[1], batch[2]), rtol=1e-6)
    norms = block_norms(grad(p, c, batch, depth=1))
    assert float(norms[1]) == 0.0 and float(norms[0]) > 0
    with pytest.raises(ValueError, match="depth: expected an int from 1 to config.n_layers=2"):
        tf.loss(p, c, batch, depth=3)
    with pytest.raises(TypeError, match="depth: expected None or an int"):
        tf.loss(p, c, batch, depth=1.5)


# --------------------------------------------------------------------------- bad input


def test_bad_input(tokens, batch):
    c = PRE
    p = tf.init(jax.random.PRNGKey(11), c)
    with pytest.raises(TypeError, match="tokens: expected integer token ids"):
        tf.apply(p, c, tokens.astype(jnp.float32))
    with pytest.raises(ValueError, match=r"tokens: ids must lie in 0..6"):
        tf.apply(p, c, tokens.at[0, 0].set(V))
    with pytest.raises(ValueError, match="tokens: length T=7"):
        tf.apply(p, c, jnp.zeros((1, 7), jnp.int32))
    with pytest.raises(ValueError, match=r"tokens: expected shape \(batch, T\)"):
        tf.apply(p, c, tokens[0])
    with pytest.raises(ValueError, match="params: built for n_layers=2"):
        tf.apply(p, c.replace(n_layers=3), tokens)
    with pytest.raises(ValueError, match="qk_norm"):
        tf.apply(p, c.replace(qk_norm=True), tokens)
    with pytest.raises(ValueError, match="placement"):
        tf.apply(p, c.replace(norm="post"), tokens)
    with pytest.raises(TypeError, match="params: expected the dict from init"):
        tf.apply({"W": 1}, c, tokens)
    with pytest.raises(TypeError, match="batch: expected"):
        tf.loss(p, c, tokens)
    with pytest.raises(ValueError, match="batch: tokens, targets and weights must have the same shape"):
        tf.loss(p, c, (tokens, tokens[:, :2], batch[2]))


# --------------------------------------------------------------------------- training


def test_gradients_at_init_matches_direct_gradients(tokens, batch):
    keys = jax.random.split(jax.random.PRNGKey(14), 2)
    prof = tf.gradients_at_init(keys, [PRE, POST], batch, depths=(1, 2))
    assert prof["blocks"].shape == prof["W2"].shape == (2, 2, 2, L) and prof["stream_rms"].shape == (2, 2, L + 1)
    for i, c in enumerate((PRE, POST)):
        p = tf.init(keys[1], c)  # the same weights for every config
        g = grad(p, c, batch)
        np.testing.assert_allclose(prof["blocks"][i, 1, 1], block_norms(g), rtol=1e-4)
        np.testing.assert_allclose(prof["W2"][i, 1, 1], gc.layer_norms(g["blocks"], stacked=True)["W2"], rtol=1e-4)
        hs = stream(p, c, tokens)
        np.testing.assert_allclose(prof["stream_rms"][i, 1], np.sqrt(gc.mean_square(hs)), rtol=1e-4)
    p = tf.init(keys[0], PRE)
    np.testing.assert_allclose(prof["blocks"][0, 0, 0], block_norms(grad(p, PRE, batch, depth=1)), rtol=1e-4)
    assert prof["blocks"][0, 0, 0, 1] == 0.0  # depth 1: the second block is skipped
    with pytest.raises(ValueError, match="may differ only in norm and qk_norm"):
        tf.gradients_at_init(keys, [PRE, PRE.replace(d_ff=8)], batch)
    with pytest.raises(TypeError, match="keys: expected"):
        tf.gradients_at_init(keys[0], [PRE], batch)


def test_fit_many_trains_transformer_runs_and_probes_attention(tokens, batch):
    """gc.train.fit_many with a per-run learning rate and an attention probe (notebook 10's set-up)."""
    import optax

    c, steps = POST, 12
    p0 = tf.init(jax.random.PRNGKey(12), c)
    params = jax.tree_util.tree_map(lambda x: jnp.stack([x, x]), p0)
    opt = optax.inject_hyperparams(optax.adam)(learning_rate=0.0)
    probe = lambda p, b: tf.max_attention_logit(tf.attention_logits(p, c, b[0]), axis=(1, 2, 3, 4))  # noqa: E731
    runs = gc.train.fit_many(
        lambda p, b: tf.loss(p, c, b),
        params,
        opt,
        batch,
        steps,
        hyperparams={"learning_rate": [3e-2, 0.0]},
        probe=probe,
        stacked=("blocks",),
        progress=False,
    )
    assert runs.loss.shape == (2, steps) and runs.probes.shape == (2, steps, L)
    # step 0 records the loss, per-block gradients and attention at initialisation
    g = grad(p0, c, batch)
    per_block = np.sqrt(sum(v[:, 0] ** 2 for k, v in runs.grad_norms.items() if k.startswith("blocks/")))
    att = apply(p0, c, tokens, return_attention=True)[1]
    for i in range(2):
        np.testing.assert_allclose(runs.loss[i, 0], float(loss(p0, c, batch)), rtol=1e-5)
        np.testing.assert_allclose(per_block[i], block_norms(g), rtol=1e-4)
        np.testing.assert_allclose(runs.probes[i, 0], tf.max_attention_logit(att, axis=(1, 2, 3, 4)), rtol=1e-5)
    assert np.mean(runs.loss[0, -3:]) < runs.loss[0, 0] - 0.3  # it learns
    for a, b in zip(jax.tree_util.tree_leaves(runs.run(1).params), jax.tree_util.tree_leaves(p0), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # lr 0: unchanged
