"""gradcourse.layers against direct NumPy computations, jax.jacfwd and finite differences."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradcourse as gc
from gradcourse import layers as L

KEY = jax.random.PRNGKey(0)
RNG = np.random.default_rng(0)


def numpy_norm(kind, h, eps):
    h = np.asarray(h, np.float64)
    if kind == "batch":
        axes = tuple(range(h.ndim - 1))
        mu, var = h.mean(axis=axes, keepdims=True), h.var(axis=axes, keepdims=True)
        return (h - mu) / np.sqrt(var + eps)
    if kind == "layer":
        mu, var = h.mean(axis=-1, keepdims=True), h.var(axis=-1, keepdims=True)
        return (h - mu) / np.sqrt(var + eps)
    return h / np.sqrt((h**2).mean(axis=-1, keepdims=True) + eps)


# ------------------------------------------------------------------ the normalisations


@pytest.mark.parametrize("kind", ["batch", "layer", "rms"])
@pytest.mark.parametrize("shape", [(8, 5), (4, 3, 3, 6)])
def test_norms_match_numpy(kind, shape):
    h = RNG.normal(2.0, 3.0, size=shape).astype(np.float32)
    fn = L.NORMS[kind]
    np.testing.assert_allclose(fn(jnp.asarray(h), eps=1e-3), numpy_norm(kind, h, 1e-3), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["batch", "layer", "rms"])
def test_affine_scale_and_shift(kind):
    h = jnp.asarray(RNG.normal(size=(6, 4)), jnp.float32)
    scale = jnp.array([1.0, 2.0, -1.0, 0.5])
    shift = jnp.array([0.0, 1.0, 2.0, 3.0])
    fn = L.NORMS[kind]
    if kind == "rms":
        np.testing.assert_allclose(fn(h, scale), scale * fn(h), rtol=1e-6)
    else:
        np.testing.assert_allclose(fn(h, scale, shift), scale * fn(h) + shift, rtol=1e-6, atol=1e-6)


def test_batch_norm_statistics_per_feature():
    h = jnp.asarray(RNG.normal(5.0, 0.1, size=(32, 7)) * np.arange(1, 8), jnp.float32)
    y = L.batch_normalize(h, eps=0.0)
    np.testing.assert_allclose(y.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=0), 1.0, rtol=1e-4)


def test_batch_norm_conv_input_pools_batch_and_positions():
    h = jnp.asarray(RNG.normal(size=(3, 4, 5, 2)), jnp.float32)
    y = L.batch_normalize(h, eps=0.0)
    np.testing.assert_allclose(y.mean(axis=(0, 1, 2)), 0.0, atol=1e-6)
    np.testing.assert_allclose(y.var(axis=(0, 1, 2)), 1.0, rtol=1e-5)
    # and it equals batch norm of the flattened (B*H*W, C) array
    np.testing.assert_allclose(y.reshape(-1, 2), L.batch_normalize(h.reshape(-1, 2), eps=0.0), rtol=1e-6, atol=1e-6)


def test_layer_and_rms_norm_statistics_per_example():
    h = jnp.asarray(RNG.normal(3.0, 2.0, size=(5, 64)), jnp.float32)
    y = L.layer_normalize(h, eps=0.0)
    np.testing.assert_allclose(y.mean(axis=-1), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=-1), 1.0, rtol=1e-5)
    r = L.rms_normalize(h, eps=0.0)
    np.testing.assert_allclose(jnp.mean(r**2, axis=-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("kind", ["batch", "layer", "rms"])
@pytest.mark.parametrize("c", [0.3, 7.0])
def test_scale_invariance_after_a_linear_map(kind, c):
    """N(c·hW) = N(hW) for c > 0 (exactly when eps = 0)."""
    h = jnp.asarray(RNG.normal(size=(16, 8)), jnp.float32)
    W = jnp.asarray(RNG.normal(size=(8, 8)), jnp.float32)
    fn = L.NORMS[kind]
    np.testing.assert_allclose(fn(h @ (c * W), eps=0.0), fn(h @ W, eps=0.0), rtol=1e-4, atol=1e-5)


def test_float16_input_keeps_dtype_and_is_finite():
    h = jnp.asarray(RNG.normal(0, 300.0, size=(8, 16)), jnp.float16)
    for fn in L.NORMS.values():
        y = fn(h)
        assert y.dtype == jnp.float16 and bool(jnp.all(jnp.isfinite(y)))


# ------------------------------------------------------------------ gradients


@pytest.mark.parametrize("kind", ["batch", "layer", "rms"])
def test_norm_jacobian_matches_finite_differences(kind):
    h = RNG.normal(size=(4, 3))
    fn = L.NORMS[kind]
    with jax.enable_x64(True):
        x = jnp.asarray(h, jnp.float64)
        J = jax.jacfwd(lambda v: fn(v, eps=1e-3).reshape(-1))(x).reshape(12, 12)
        Jr = jax.jacrev(lambda v: fn(v, eps=1e-3).reshape(-1))(x).reshape(12, 12)
        d = 1e-6
        fd = np.stack(
            [
                (
                    np.asarray(fn(x + d * e.reshape(4, 3), eps=1e-3))
                    - np.asarray(fn(x - d * e.reshape(4, 3), eps=1e-3))
                ).reshape(-1)
                / (2 * d)
                for e in np.eye(12)
            ],
            axis=1,
        )
    np.testing.assert_allclose(J, fd, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(Jr, J, rtol=1e-10, atol=1e-12)


def test_layer_norm_gradient_is_orthogonal_to_weights_and_scales_inversely():
    """L(W) = loss(LN(x W)) is scale invariant, so <W, dL/dW> = 0 and dL/dW(cW) = dL/dW(W)/c."""
    x = jnp.asarray(RNG.normal(size=(8, 16)), jnp.float32)
    W = jnp.asarray(RNG.normal(size=(16, 16)) / 4, jnp.float32)
    t = jnp.asarray(RNG.normal(size=(8, 16)), jnp.float32)
    loss = lambda W: jnp.sum(jnp.tanh(L.layer_normalize(x @ W, eps=0.0)) * t)
    g = jax.grad(loss)(W)
    assert abs(float(jnp.vdot(W, g))) < 1e-5 * float(jnp.linalg.norm(W) * jnp.linalg.norm(g))
    np.testing.assert_allclose(jax.grad(loss)(3.0 * W), g / 3.0, rtol=1e-4, atol=1e-7)


# ------------------------------------------------------------------ layer builders


def test_dense_pre_and_post_positions():
    p = L.init_params(KEY, 1, 6, bias=True, norm="layer")
    p = jax.tree_util.tree_map(lambda a: a[0], p)
    p = {**p, "b": jnp.arange(6.0), "scale": jnp.linspace(0.5, 1.5, 6), "shift": jnp.ones(6)}
    h = jax.random.normal(KEY, (3, 6))
    post = L.dense("tanh", norm="layer", norm_position="post")(p, h)
    pre = L.dense("tanh", norm="layer", norm_position="pre")(p, h)
    ln = lambda v: L.layer_normalize(v, p["scale"], p["shift"])
    np.testing.assert_allclose(post, jnp.tanh(ln(h @ p["W"] + p["b"])), rtol=1e-6)
    np.testing.assert_allclose(pre, jnp.tanh(ln(h) @ p["W"] + p["b"]), rtol=1e-6)
    np.testing.assert_allclose(L.dense("relu")(p, h), jax.nn.relu(h @ p["W"] + p["b"]), rtol=1e-6)


def test_dense_without_norm_equals_gc_dense_layer():
    params = gc.mlp_params(KEY, 4, 8, 2.0, 0.1)
    x = jax.random.normal(KEY, (2, 8))
    np.testing.assert_allclose(
        gc.forward(gc.Stacked(L.dense("relu"), params), x),
        gc.forward(gc.Stacked(gc.dense_layer("relu"), params), x),
        rtol=1e-6,
    )


def test_mlp_block_and_rms_params():
    p = jax.tree_util.tree_map(lambda a: a[0], L.init_params(KEY, 2, 5, block="mlp", hidden=7, bias=True, norm="rms"))
    assert p["W1"].shape == (5, 7) and p["W2"].shape == (7, 5) and p["b1"].shape == (7,) and "shift" not in p
    h = jax.random.normal(KEY, (4, 5))
    want = jax.nn.gelu(L.rms_normalize(h, p["scale"]) @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]
    np.testing.assert_allclose(L.mlp_block(jax.nn.gelu, norm="rms")(p, h), want, rtol=1e-6)


def test_init_params_shapes_and_variance():
    p = L.init_params(KEY, 3, 256, sigma_w2=2.0, bias=True, norm="batch", alpha=True)
    assert set(p) == {"W", "b", "scale", "shift", "alpha"}
    assert p["W"].shape == (3, 256, 256) and p["b"].shape == (3, 256) and p["alpha"].shape == (3,)
    np.testing.assert_allclose(float(jnp.var(p["W"])) * 256, 2.0, rtol=0.03)
    assert not np.allclose(p["W"][0], p["W"][1])  # independent layers
    np.testing.assert_array_equal(p["alpha"], 0.0)
    np.testing.assert_array_equal(p["scale"], 1.0)
    q = L.init_params(KEY, 2, 64, block="mlp", hidden=128, sigma_w2=2.0, sigma_w2_out=0.5)
    np.testing.assert_allclose(float(jnp.var(q["W1"])) * 64, 2.0, rtol=0.05)
    np.testing.assert_allclose(float(jnp.var(q["W2"])) * 128, 0.5, rtol=0.05)
    o = L.init_params(KEY, 2, 8, init=jax.nn.initializers.orthogonal())
    np.testing.assert_allclose(o["W"][1] @ o["W"][1].T, np.eye(8), atol=1e-5)


def test_residual_with_alpha_zero_is_the_identity():
    depth, width = 12, 16
    params = L.init_params(KEY, depth, width, block="mlp", sigma_w2=2.0, norm="layer", alpha=True)
    model = gc.Stacked(L.residual(L.mlp_block("relu", norm="layer"), scale="alpha"), params)
    x = jax.random.normal(KEY, (4, width))
    hs = gc.forward(model, x)
    np.testing.assert_array_equal(hs[-1], x)
    g = gc.backward(model, x, lambda h: jnp.sum(h**2))
    np.testing.assert_array_equal(g[0], 2 * x)
    # alpha gets a gradient (so training moves it); the branch weights get none yet
    grads = jax.grad(lambda p: jnp.sum(gc.forward(gc.Stacked(model.f, p), x)[-1] ** 2))(params)
    assert float(jnp.min(jnp.abs(grads["alpha"]))) > 0
    np.testing.assert_array_equal(grads["W1"], 0.0)


def test_residual_scales_and_jacobian():
    p = jax.tree_util.tree_map(lambda a: a[0], L.init_params(KEY, 1, 5, sigma_w2=2.0))
    f = L.dense("tanh")
    h = jax.random.normal(KEY, (5,))
    for scale, s in [(1.0, 1.0), (0.3, 0.3), ("1/sqrt(L)", 0.5)]:
        g = L.residual(f, scale, depth=4)
        np.testing.assert_allclose(g(p, h), h + s * f(p, h), rtol=1e-6)
        J = jax.jacfwd(lambda v: g(p, v))(h)  # noqa: B023 (called at once)
        np.testing.assert_allclose(J, np.eye(5) + s * jax.jacfwd(lambda v: f(p, v))(h), rtol=1e-5, atol=1e-6)


def test_stacked_residual_gradients_match_finite_differences():
    params = L.init_params(KEY, 3, 4, block="mlp", sigma_w2=2.0, norm="layer", alpha=True)
    params = {**params, "alpha": jnp.array([0.5, -0.2, 1.0])}
    f = L.residual(L.mlp_block("tanh", norm="layer"), "alpha")
    x = np.asarray(jax.random.normal(KEY, (2, 4)), np.float64)
    with jax.enable_x64(True):
        p64 = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), params)
        out = jax.jit(lambda x: jnp.sum(jnp.sin(gc.forward(gc.Stacked(f, p64), x)[-1])))
        g = np.asarray(gc.backward(gc.Stacked(f, p64), jnp.asarray(x), lambda h: jnp.sum(jnp.sin(h)))[0])
        d = 1e-6
        fd = np.array([(out(x + d * e) - out(x - d * e)) / (2 * d) for e in np.eye(8).reshape(8, 2, 4)]).reshape(2, 4)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-9)


def test_batch_norm_in_a_stacked_model_under_jit():
    params = L.init_params(KEY, 6, 16, sigma_w2=2.0, norm="batch")
    model = gc.Stacked(L.dense("relu", norm="batch"), params)
    x = jax.random.normal(KEY, (10, 16))
    out = jax.jit(lambda x: gc.forward(model, x))(x)
    assert out.shape == (7, 10, 16)
    # every pre-activation of every layer is standardised over the batch, so E[relu(z)^2] is about 1/2
    np.testing.assert_allclose(gc.mean_square(out)[1:], 0.5, rtol=0.25)


# ------------------------------------------------------------------ validation


def test_errors_name_the_argument():
    h = jnp.ones((4, 3))
    with pytest.raises(ValueError, match="h: batch_normalize"):
        L.batch_normalize(jnp.ones(3))
    with pytest.raises(ValueError, match="h: batch_normalize needs at least 2"):
        L.batch_normalize(jnp.ones((1, 3)))
    with pytest.raises(TypeError, match="h: expected a floating"):
        L.layer_normalize(jnp.ones((2, 3), jnp.int32))
    with pytest.raises(ValueError, match="eps"):
        L.rms_normalize(h, eps=-1.0)
    with pytest.raises(ValueError, match="scale: expected shape \\(3,\\)"):
        L.layer_normalize(h, jnp.ones(4))
    with pytest.raises(ValueError, match="norm: expected one of None"):
        L.dense("relu", norm="group")
    with pytest.raises(ValueError, match="norm_position"):
        L.dense("relu", norm="layer", norm_position="middle")
    with pytest.raises(ValueError, match="activation"):
        L.dense("swish2")
    with pytest.raises(ValueError, match="depth: scale='1/sqrt\\(L\\)' needs depth"):
        L.residual(L.dense(), "1/sqrt(L)")
    with pytest.raises(ValueError, match="scale: expected a number"):
        L.residual(L.dense(), "rezero")
    with pytest.raises(TypeError, match="f: expected a layer function"):
        L.residual(3.0)
    with pytest.raises(ValueError, match="block"):
        L.init_params(KEY, 2, 3, block="conv")
    with pytest.raises(ValueError, match="sigma_w2"):
        L.init_params(KEY, 2, 3, sigma_w2=0.0)
    with pytest.raises(TypeError, match="depth"):
        L.init_params(KEY, 2.0, 3)
    p = L.init_params(KEY, 2, 3)
    with pytest.raises(ValueError, match="p\\['alpha'\\]"):
        gc.forward(gc.Stacked(L.residual(L.dense(), "alpha"), p), jnp.ones((2, 3)))
    with pytest.raises(ValueError, match="'W1', 'W2'"):
        gc.forward(gc.Stacked(L.mlp_block(), p), jnp.ones((2, 3)))
