"""The engine against independent references: jacfwd/jacrev, finite differences, closed forms."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradcourse as gc

KEY = jax.random.PRNGKey(0)


def small_sequence_model(key=KEY):
    """A 3-layer model whose widths change (5 -> 7 -> 4 -> 3), as a list of layer functions."""
    k1, k2, k3 = jax.random.split(key, 3)
    W1 = jax.random.normal(k1, (5, 7)) / jnp.sqrt(5)
    W2 = jax.random.normal(k2, (7, 4)) / jnp.sqrt(7)
    W3 = jax.random.normal(k3, (4, 3)) / jnp.sqrt(4)
    return [lambda h: jnp.tanh(h @ W1), lambda h: jax.nn.gelu(h @ W2), lambda h: h @ W3]


def unstack(model: gc.Stacked):
    """The same layers as a Python list (an independent way to run a stacked model)."""
    depth = jax.tree_util.tree_leaves(model.params)[0].shape[0]
    return [(lambda h, p=jax.tree_util.tree_map(lambda a: a[i], model.params): model.f(p, h)) for i in range(depth)]  # noqa: B008 (binds layer i)


def layer_jacobians(layers, x):
    """Materialised per-layer Jacobians J_l = ∂h_l/∂h_{l-1} (flattened), by jax.jacfwd."""
    hs, jacs = [x], []
    for layer in layers:
        h = hs[-1]
        jacs.append(jax.jacfwd(lambda v: layer(v.reshape(h.shape)).reshape(-1))(h.reshape(-1)))  # noqa: B023 (called at once)
        hs.append(layer(h))
    return hs, jacs


def loss_fn(h):
    return jnp.sum(jnp.sin(h)) + 0.5 * jnp.sum(h**2)


# ------------------------------------------------------------------ forward / backward


def test_forward_sequence_and_stacked_agree():
    model = gc.mlp(KEY, depth=6, width=16, activation="tanh", sigma_w2=1.5, sigma_b2=0.1)
    x = jax.random.normal(KEY, (4, 16))
    stacked = gc.forward(model, x)
    listed = gc.forward(unstack(model), x)
    assert stacked.shape == (7, 4, 16)
    np.testing.assert_allclose(stacked, jnp.stack(listed), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(stacked[0], x)


@pytest.mark.parametrize("form", ["sequence", "stacked"])
def test_backward_equals_grad_wrt_each_layer(form):
    if form == "sequence":
        layers = small_sequence_model()
        model, x = layers, jax.random.normal(KEY, (2, 5))
    else:
        model = gc.mlp(KEY, depth=5, width=6, activation="silu", sigma_w2=2.0, sigma_b2=0.05)
        layers, x = unstack(model), jax.random.normal(KEY, (3, 6))
    got = gc.backward(model, x, loss_fn)
    hs = gc.forward(layers, x)
    for l in range(len(layers) + 1):
        rest = lambda h, l=l: loss_fn(gc.forward(layers[l:], h)[-1]) if l < len(layers) else loss_fn(h)
        want = jax.grad(rest)(hs[l])
        np.testing.assert_allclose(got[l], want, rtol=1e-5, atol=1e-6)


def test_backward_matches_finite_differences():
    layers = small_sequence_model()
    x = np.random.default_rng(0).normal(size=(5,)).astype(np.float32)
    g0 = np.asarray(gc.backward(layers, jnp.asarray(x), loss_fn)[0])
    f = lambda v: float(loss_fn(gc.forward(layers, jnp.asarray(v, jnp.float32))[-1]))
    eps = 1e-2
    fd = np.array([(f(x + eps * e) - f(x - eps * e)) / (2 * eps) for e in np.eye(5, dtype=np.float32)])
    np.testing.assert_allclose(g0, fd, rtol=2e-3, atol=2e-3)


def test_backward_under_jit_equals_eager():
    model = gc.mlp(KEY, depth=8, width=12, activation="relu", sigma_w2=2.0)
    x = jax.random.normal(KEY, (3, 12))
    eager = gc.backward(model, x, loss_fn)
    jitted = jax.jit(lambda x: gc.backward(model, x, loss_fn))(x)
    np.testing.assert_allclose(eager, jitted, rtol=1e-5, atol=1e-6)


def test_param_leaves_under_jit():
    """Models whose params are traced (built inside jit) work too."""
    params = gc.mlp_params(KEY, 4, 8)
    x = jax.random.normal(KEY, (2, 8))
    f = gc.dense_layer("tanh")
    out = jax.jit(lambda p, x: gc.signal_norms(gc.backward(gc.Stacked(f, p), x, loss_fn)))(params, x)
    assert out.shape == (5,) and bool(jnp.all(jnp.isfinite(out)))


# ------------------------------------------------------------------ Jacobian chains


@pytest.mark.parametrize("form", ["sequence", "stacked"])
def test_jvp_and_vjp_chains_equal_jacobian_products(form):
    if form == "sequence":
        layers = small_sequence_model()
        model, x = layers, jax.random.normal(KEY, (5,))
    else:
        model = gc.mlp(KEY, depth=4, width=5, activation="gelu", sigma_w2=1.3, sigma_b2=0.2)
        layers, x = unstack(model), jax.random.normal(KEY, (5,))
    hs, jacs = layer_jacobians(layers, x)
    kv, ku = jax.random.split(jax.random.PRNGKey(1))
    v = jax.random.normal(kv, x.shape)
    u = jax.random.normal(ku, hs[-1].shape)
    tangents = gc.jvp_chain(model, x, v)
    cotangents = gc.vjp_chain(model, x, u)
    t = v.reshape(-1)
    np.testing.assert_allclose(tangents[0], v)
    for l, J in enumerate(jacs, start=1):
        t = J @ t
        np.testing.assert_allclose(tangents[l].reshape(-1), t, rtol=1e-5, atol=1e-6)
    c = u.reshape(-1)
    np.testing.assert_allclose(cotangents[len(jacs)], u)
    for l in range(len(jacs) - 1, -1, -1):
        c = c @ jacs[l]
        np.testing.assert_allclose(cotangents[l].reshape(-1), c, rtol=1e-5, atol=1e-6)


def test_deep_linear_backward_norm_is_sigma_w_to_the_depth():
    """Orthogonal layers scaled by σ_w: every per-layer backward ratio is exactly σ_w."""
    depth, width, sigma_w = 30, 32, 0.8
    init = jax.nn.initializers.orthogonal(scale=sigma_w)
    model = gc.mlp(KEY, depth, width, "linear", sigma_b2=0.0, init=init)
    model = gc.Stacked(model.f, {"W": model.params["W"], "b": jnp.zeros_like(model.params["b"])})
    x = jax.random.normal(KEY, (1, width))
    norms = gc.signal_norms(gc.backward(model, x, lambda h: jnp.sum(h * jnp.arange(width))))
    np.testing.assert_allclose(norms[:-1] / norms[1:], sigma_w, rtol=1e-4)
    np.testing.assert_allclose(norms[0] / norms[-1], sigma_w**depth, rtol=1e-3)


def test_deep_linear_gaussian_backward_decays_like_sigma_w_to_the_depth():
    """Gaussian weights N(0, σ_w²/n): E‖δ_{l-1}‖² = σ_w² ‖δ_l‖², so the mean log-ratio is ≈ log σ_w."""
    depth, width, sigma_w2 = 20, 1024, 0.7
    model = gc.mlp(KEY, depth, width, "linear", sigma_w2=sigma_w2)
    x = jax.random.normal(KEY, (1, width))
    norms = gc.signal_norms(gc.backward(model, x, lambda h: jnp.sum(h)))
    slope = np.polyfit(np.arange(depth + 1), np.log(np.asarray(norms)), 1)[0]
    np.testing.assert_allclose(-slope, 0.5 * np.log(sigma_w2), rtol=0.03)


def test_relu_backward_ratio_is_sqrt_sigma_w2_over_2():
    depth, width, sigma_w2 = 12, 2048, 1.0
    model = gc.mlp(KEY, depth, width, "relu", sigma_w2=sigma_w2)
    x = jax.random.normal(KEY, (4, width))
    norms = gc.signal_norms(gc.backward(model, x, lambda h: jnp.sum(h * jnp.linspace(-1, 1, width))))
    ratio = np.exp(np.mean(np.log(np.asarray(norms[:-1] / norms[1:]))))
    np.testing.assert_allclose(ratio, np.sqrt(sigma_w2 / 2), rtol=0.02)


# ------------------------------------------------------------------ Jacobian spectrum


def test_gaussian_product_spectrum_moments():
    """Product of L Gaussian N×N matrices with entry variance 1/N: E[s²] = 1, E[s⁴] = L + 1."""
    depth, width = 4, 300
    moments = []
    for seed in range(3):
        model = gc.mlp(jax.random.PRNGKey(seed), depth, width, "linear")
        s2 = np.asarray(gc.jacobian_spectrum(model, jnp.ones((width,)))) ** 2
        moments.append((s2.mean(), (s2**2).mean()))
    m1, m2 = np.mean(moments, axis=0)
    np.testing.assert_allclose(m1, 1.0, rtol=0.05)
    np.testing.assert_allclose(m2, depth + 1, rtol=0.1)


def test_orthogonal_layers_have_unit_singular_values():
    model = gc.mlp(KEY, 10, 64, "linear", init=jax.nn.initializers.orthogonal())
    s = gc.jacobian_spectrum(model, jnp.ones((64,)))
    assert s.shape == (64,)
    np.testing.assert_allclose(s, 1.0, atol=1e-4)


def test_exact_spectrum_equals_svd_of_jacfwd():
    layers = small_sequence_model()
    x = jax.random.normal(KEY, (5,))
    jac = jax.jacfwd(lambda v: gc.forward(layers, v)[-1])(x)
    np.testing.assert_allclose(
        gc.jacobian_spectrum(layers, x), np.linalg.svd(np.asarray(jac), compute_uv=False), rtol=1e-5
    )


def test_lanczos_estimates_extreme_singular_values():
    model = gc.mlp(KEY, 6, 200, "tanh", sigma_w2=1.5, sigma_b2=0.05)
    x = jax.random.normal(KEY, (200,))
    exact = np.asarray(gc.jacobian_spectrum(model, x, method="exact"))
    est = np.asarray(gc.jacobian_spectrum(model, x, method="lanczos", num_iters=60))
    # at most num_iters values; Ritz values below the float32 resolution 8·sqrt(eps)·σ_max are dropped
    assert 0 < est.shape[0] <= 60 and est[-1] >= 8 * np.sqrt(np.finfo(np.float32).eps) * est[0]
    np.testing.assert_allclose(est[0], exact[0], rtol=1e-3)
    assert est[-1] >= exact[-1] * (1 - 1e-3)  # a Ritz value never undershoots σ_min


def test_auto_spectrum_switches_to_lanczos_for_wide_models():
    """Past 4096 entries the Jacobian is not materialised; J = diag(d) has singular values |d|."""
    d = jnp.linspace(0.5, 2.0, 5000)
    s = gc.jacobian_spectrum([lambda h: d * h, jnp.sin], jnp.zeros((5000,)), num_iters=60)
    assert s.shape == (60,)
    np.testing.assert_allclose(s[0], 2.0, rtol=1e-3)  # the edges of a gap-free spectrum converge slowest
    np.testing.assert_allclose(s[-1], 0.5, rtol=0.02)


# ------------------------------------------------------------------ layer norms


class Layer(NamedTuple):
    W: jax.Array
    b: jax.Array


def test_layer_norms_labels_and_values_on_containers():
    W = jnp.arange(6.0).reshape(2, 3)
    tree = {"layers": [Layer(W, jnp.ones(3)), (2 * W, None)], "scale": jnp.float32(-3.0)}
    norms = gc.layer_norms(tree)
    assert set(norms) == {"layers/0/W", "layers/0/b", "layers/1/0", "scale"}
    np.testing.assert_allclose(norms["layers/0/W"], np.linalg.norm(np.arange(6.0)))
    np.testing.assert_allclose(norms["layers/1/0"], 2 * np.linalg.norm(np.arange(6.0)))
    np.testing.assert_allclose(norms["layers/0/b"], np.sqrt(3))
    np.testing.assert_allclose(norms["scale"], 3.0)


def test_layer_norms_stacked_gives_one_norm_per_depth():
    params = gc.mlp_params(KEY, 5, 8)
    norms = gc.layer_norms(params, stacked=True)
    want = np.linalg.norm(np.asarray(params["W"]).reshape(5, -1), axis=1)
    np.testing.assert_allclose(norms["W"], want, rtol=1e-6)
    np.testing.assert_allclose(
        gc.stacked_norms(params), np.sqrt(want**2 + np.linalg.norm(np.asarray(params["b"]), axis=1) ** 2), rtol=1e-6
    )


def test_layer_norms_float16_accumulates_wide():
    g = jnp.full((100, 100), 1e3, dtype=jnp.float16)  # squares overflow float16 (max 65504)
    n = gc.layer_norms({"g": g})["g"]
    assert n.dtype == jnp.float32 and bool(jnp.isfinite(n))
    np.testing.assert_allclose(n, 1e3 * 100, rtol=1e-3)


def test_layer_norms_under_jit_and_on_equinox_modules():
    eqx = pytest.importorskip("equinox")
    mlp = eqx.nn.MLP(4, 2, width_size=8, depth=2, key=KEY)
    norms = jax.jit(gc.layer_norms)(eqx.filter(mlp, eqx.is_array))
    assert "layers/0/weight" in norms and "layers/2/bias" in norms
    np.testing.assert_allclose(norms["layers/1/weight"], np.linalg.norm(np.asarray(mlp.layers[1].weight)), rtol=1e-6)


def test_layer_norms_on_flax_style_nested_dicts():
    params = {"params": {"Dense_0": {"kernel": jnp.ones((3, 4)), "bias": jnp.zeros(4)}}}
    norms = gc.layer_norms(params)
    np.testing.assert_allclose(norms["params/Dense_0/kernel"], np.sqrt(12))


def test_signal_norms_and_mean_square_agree_for_both_layouts():
    hs = [jnp.ones((2, 3)), 2 * jnp.ones((2, 3))]
    np.testing.assert_allclose(gc.signal_norms(hs), gc.signal_norms(jnp.stack(hs)))
    np.testing.assert_allclose(gc.mean_square(hs), [1.0, 4.0])


# ------------------------------------------------------------------ bad input


def test_layers_whose_shapes_do_not_chain():
    W1, W2 = jnp.ones((4, 5)), jnp.ones((6, 2))
    with pytest.raises(ValueError, match=r"layer 1 cannot take an input of shape \(3, 5\)"):
        gc.forward([lambda h: h @ W1, lambda h: h @ W2], jnp.ones((3, 4)))


def test_stacked_layer_must_preserve_shape():
    model = gc.Stacked(lambda p, h: h @ p, jnp.ones((3, 4, 5)))
    with pytest.raises(ValueError, match="same shape"):
        gc.backward(model, jnp.ones((2, 4)), jnp.sum)


def test_integer_params_and_inputs_are_rejected():
    with pytest.raises(TypeError, match="'W'.*floating point"):
        gc.forward(gc.Stacked(lambda p, h: h @ p["W"], {"W": jnp.ones((2, 3, 3), jnp.int32)}), jnp.ones((3,)))
    with pytest.raises(TypeError, match="x: expected a floating-point array"):
        gc.forward([jnp.tanh], jnp.ones((3,), jnp.int32))


def test_empty_and_non_callable_models():
    with pytest.raises(ValueError, match="empty"):
        gc.forward([], jnp.ones(3))
    with pytest.raises(TypeError, match="layer 1 is not callable"):
        gc.forward([jnp.tanh, 3], jnp.ones(3))
    with pytest.raises(TypeError, match="single callable"):
        gc.forward(jnp.tanh, jnp.ones(3))


def test_stacked_leaves_with_different_depths():
    params = {"W": jnp.ones((3, 4, 4)), "b": jnp.ones((2, 4))}
    with pytest.raises(ValueError, match="different depths.*W has 3.*b has 2"):
        gc.forward(gc.Stacked(gc.dense_layer(), params), jnp.ones((1, 4)))
    with pytest.raises(ValueError, match="different depths"):
        gc.layer_norms(params, stacked=True)


def test_loss_must_return_a_scalar():
    with pytest.raises(ValueError, match=r"loss must return a scalar, got shape \(2, 3\)"):
        gc.backward([jnp.tanh], jnp.ones((2, 3)), lambda h: h**2)


def test_unknown_activation_and_bad_sizes():
    with pytest.raises(ValueError, match="activation: unknown name 'tanhh'"):
        gc.mlp(KEY, 3, 4, "tanhh")
    with pytest.raises(ValueError, match="depth: expected a positive integer, got 0"):
        gc.mlp(KEY, 0, 4)
    with pytest.raises(ValueError, match="width: expected a positive integer, got -2"):
        gc.mlp(KEY, 3, -2)
    with pytest.raises(ValueError, match="sigma_w2"):
        gc.mlp(KEY, 3, 4, sigma_w2=0.0)


def test_tangent_and_cotangent_shapes_are_checked():
    model = gc.mlp(KEY, 2, 4)
    with pytest.raises(ValueError, match=r"v: expected shape \(2, 4\)"):
        gc.jvp_chain(model, jnp.ones((2, 4)), jnp.ones((4,)))
    with pytest.raises(ValueError, match=r"u: expected shape \(2, 4\)"):
        gc.vjp_chain(model, jnp.ones((2, 4)), jnp.ones((3, 4)))


def test_spectrum_arguments_are_checked():
    model = gc.mlp(KEY, 2, 4)
    with pytest.raises(ValueError, match="method"):
        gc.jacobian_spectrum(model, jnp.ones((4,)), method="svd")
    with pytest.raises(ValueError, match="num_iters"):
        gc.jacobian_spectrum(model, jnp.ones((4,)), method="lanczos", num_iters=0)


def test_norms_do_not_underflow_or_overflow():
    """A vanished gradient of 1e-25 per entry squares to 0 in float32; the norm must not."""
    tiny = jnp.full((100,), 1e-25, jnp.float32)
    np.testing.assert_allclose(gc.l2(tiny), 1e-24, rtol=1e-5)
    np.testing.assert_allclose(gc.signal_norms(jnp.stack([tiny, 1e30 * tiny / 1e-25])), [1e-24, 1e31], rtol=1e-5)
    assert float(gc.l2(jnp.zeros(3))) == 0.0


# ------------------------------------------------------------------ reliability (issue 12)


def _lanczos_vs_svd(layers, x, J, **kw):
    """J: the Jacobian, or a tuple (U, V) with J = U @ V (its singular values from the small factors)."""
    if isinstance(J, tuple):  # nonzero singular values of U V = those of R_U R_Vᵀ (U = Q_U R_U, Vᵀ = Q_V R_V)
        r_u = np.linalg.qr(np.asarray(J[0], np.float64))[1]
        r_v = np.linalg.qr(np.asarray(J[1], np.float64).T)[1]
        ref = np.linalg.svd(r_u @ r_v.T, compute_uv=False)
    else:
        ref = np.linalg.svd(np.asarray(J, np.float64), compute_uv=False)
    got = np.asarray(gc.jacobian_spectrum(layers, x, method="lanczos", **kw))
    rank = int(np.sum(ref > ref[0] * 1e-3))
    assert len(got) <= rank  # never more values than the rank
    top = min(5, len(got))
    np.testing.assert_allclose(got[:top], ref[:top], rtol=1e-4)
    return got


@pytest.mark.parametrize("x64", [False, True])
def test_lanczos_spectrum_low_rank_matches_dense_svd(x64):
    with jax.enable_x64(x64):
        dt = jnp.float64 if x64 else jnp.float32
        k1, k2 = jax.random.split(jax.random.PRNGKey(0))
        W1 = jax.random.normal(k1, (5000, 10), dt) / np.sqrt(5000)
        W2 = jax.random.normal(k2, (10, 5000), dt) / np.sqrt(10)
        x = jnp.ones(5000, dt)
        got = _lanczos_vs_svd([lambda h: h @ W1], x, W1.T)  # wide input, narrow output 5000 -> 10
        assert len(got) == 10
        _lanczos_vs_svd([lambda h: h @ W1, lambda h: h @ W2], x, (W2.T, W1.T))  # bottleneck 5000 -> 10 -> 5000
        A = jax.random.normal(k1, (20, 7), dt)
        B = jax.random.normal(k2, (7, 20), dt)
        _lanczos_vs_svd([lambda h: h @ A], jnp.ones(20, dt), A.T, num_iters=20)  # 20 -> 7, k = 20
        _lanczos_vs_svd([lambda h: h @ A @ B], jnp.ones(20, dt), (A @ B).T, num_iters=20)  # rank 7 of 20
        _lanczos_vs_svd([lambda h: h @ A @ B], jnp.ones(20, dt), (B.T, A.T), num_iters=20)  # the factor route agrees


def test_mlp_rejects_non_finite_variances_and_accepts_numpy_and_jax_scalars():
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="sigma_w2: expected a finite"):
            gc.mlp(KEY, 3, 4, sigma_w2=bad)
    with pytest.raises(ValueError, match="sigma_b2: expected a finite"):
        gc.mlp(KEY, 3, 4, sigma_b2=float("nan"))
    with pytest.raises(TypeError, match=r"key: expected a PRNG key such as jax.random.PRNGKey\(0\), got int 0"):
        gc.mlp(0, 3, 4)
    a = gc.mlp(KEY, np.int64(3), np.int32(4), sigma_w2=jnp.float32(1.5), sigma_b2=np.float64(0.1))
    b = gc.mlp(KEY, 3, 4, sigma_w2=1.5, sigma_b2=0.1)
    np.testing.assert_array_equal(a.params["W"], b.params["W"])
    np.testing.assert_array_equal(a.params["b"], b.params["b"])


def test_mlp_weights_are_the_variance_scaling_draw_and_sigma_may_be_traced():
    key_w, _ = jax.random.split(KEY)
    want = jax.nn.initializers.variance_scaling(1.7, "fan_in", "normal", batch_axis=(0,))(key_w, (3, 5, 5))
    np.testing.assert_array_equal(gc.mlp_params(KEY, 3, 5, 1.7)["W"], want)
    x = jnp.ones((2, 5))
    f = jax.jit(lambda s: gc.forward(gc.mlp(KEY, 3, 5, sigma_w2=s), x)[-1])
    np.testing.assert_allclose(f(1.7), gc.forward(gc.mlp(KEY, 3, 5, sigma_w2=1.7), x)[-1], rtol=1e-5, atol=1e-6)


def test_float64_numpy_input_is_uniform_across_core_functions():
    model = gc.mlp(KEY, 3, 4)
    x64 = np.random.default_rng(0).standard_normal((2, 4))
    x32 = jnp.asarray(x64, jnp.float32)
    np.testing.assert_allclose(gc.forward(model, x64), gc.forward(model, x32), rtol=1e-6)
    loss = lambda h: jnp.sum(h**2)
    np.testing.assert_allclose(gc.backward(model, x64, loss), gc.backward(model, x32, loss), rtol=1e-6)
    np.testing.assert_allclose(gc.jvp_chain(model, x64, x64), gc.jvp_chain(model, x32, x32), rtol=1e-6)
    np.testing.assert_allclose(gc.vjp_chain(model, x64, x64), gc.vjp_chain(model, x32, x32), rtol=1e-6)


def test_norm_gradients_at_zero_are_finite_and_zero_size_arrays_have_norm_zero():
    np.testing.assert_array_equal(jax.grad(gc.l2)(jnp.zeros(3)), np.zeros(3))
    np.testing.assert_array_equal(jax.grad(lambda h: jnp.sum(gc.signal_norms(h)))(jnp.zeros((2, 3))), np.zeros((2, 3)))
    x = jnp.array([3.0, -4.0])
    np.testing.assert_allclose(jax.grad(gc.l2)(x), x / 5.0, rtol=1e-6)  # x / ‖x‖ away from 0
    assert float(gc.l2(jnp.zeros((0, 3)))) == 0.0
    np.testing.assert_array_equal(gc.signal_norms([jnp.zeros((0,)), jnp.ones(4)]), [0.0, 2.0])
    assert gc.layer_norms({"a": jnp.zeros((0, 2))})["a"] == 0.0
    with pytest.raises(ValueError, match=r"hs\[0\]: has no entries"):
        gc.mean_square([jnp.zeros((0,))])


def test_learner_mistakes_name_the_argument():
    model = gc.mlp(KEY, 2, 3)
    with pytest.raises(TypeError, match=r"^x: expected a floating-point array, got NoneType"):
        gc.forward(model, None)
    with pytest.raises(TypeError, match=r"^x: .*ragged"):
        gc.forward(model, [[1.0, 2.0, 3.0], [1.0]])
    with pytest.raises(TypeError, match=r"^loss: expected a function of one argument"):
        gc.backward(model, jnp.ones((1, 3)), lambda h, y: jnp.sum(h))
    with pytest.raises(TypeError, match=r"^hs: expected an array, got NoneType"):
        gc.signal_norms(None)
    with pytest.raises(TypeError, match=r"^hs\[1\]: expected an array"):
        gc.signal_norms([jnp.ones(2), None])


def test_activation_histograms_name_hs_and_the_layer_for_non_finite_entries():
    import matplotlib

    matplotlib.use("Agg")
    hs = [jnp.ones((2, 3)), jnp.array([[1.0, jnp.inf, jnp.nan]])]
    with pytest.raises(ValueError, match=r"^hs: layer 1 has 2 non-finite"):
        gc.plot.activation_histograms(hs, [0, 1])
