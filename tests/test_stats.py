"""gc.stats against direct NumPy computations on small hand-built inputs."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradcourse as gc
from gradcourse.stats import (
    ActivationStats,
    NonfiniteReport,
    activation_stats,
    find_nonfinite,
    find_nonfinite_step,
    grad_to_param_ratio,
    update_to_param_ratio,
)

RNG = np.random.default_rng(0)


def normal(*shape, scale=1.0):
    """Gaussian float32 test data from NumPy (no JAX program to compile)."""
    return jnp.asarray(scale * RNG.standard_normal(shape), jnp.float32)


def mlp(depth, width, activation, sigma_w2=1.0, sigma_b2=0.0):
    """Same model as gc.mlp (W ~ N(0, σ_w²/width), b ~ N(0, σ_b²)), initialised with NumPy to keep the tests fast."""
    params = {
        "W": normal(depth, width, width, scale=np.sqrt(sigma_w2 / width)),
        "b": normal(depth, width, scale=np.sqrt(sigma_b2)),
    }
    return gc.Stacked(gc.dense_layer(activation), params)


def np_stats(hs, kind, s=0.99):
    """Reference statistics, one layer at a time in float64 NumPy."""
    out = {"mean": [], "std": [], "sat": [], "dead": []}
    for h in hs:
        h = np.asarray(h, np.float64)
        out["mean"].append(h.mean())
        out["std"].append(h.std())
        if kind == "tanh":
            out["sat"].append(np.mean(np.abs(h) > s))
        elif kind == "sigmoid":
            out["sat"].append(np.mean(h < 1 - s) + np.mean(h > s))
        else:
            out["sat"].append(np.nan)
        if kind == "relu":
            flat = h.reshape(-1, h.shape[-1])
            out["dead"].append(np.mean(np.all(flat <= 0, axis=0)))
        else:
            out["dead"].append(0.0)
    return {k: np.array(v) for k, v in out.items()}


def assert_stats(st, ref):
    np.testing.assert_allclose(st.mean, ref["mean"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(st.std, ref["std"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(st.frac_saturated, ref["sat"], atol=1e-7)
    np.testing.assert_allclose(st.frac_dead, ref["dead"], atol=1e-7)


# ------------------------------------------------------------------ activation_stats


def test_hand_built_layers_of_different_widths():
    hs = [
        np.array([[1.0, -2.0, 0.5], [3.0, -1.0, -0.5]], np.float32),  # unit 1 is <= 0 for both examples
        np.array([[0.0, 0.0], [0.0, 2.0]], np.float32),  # unit 0 is 0 for both
        np.array([[0.995, -0.999, 0.2, 0.0]], np.float32),
    ]
    for kind in ("relu", "tanh"):
        st = activation_stats(hs, kind)
        assert isinstance(st, ActivationStats) and st.mean.shape == (3,)
        assert_stats(st, np_stats(hs, kind))
    st = activation_stats(hs, "relu")
    np.testing.assert_allclose(st.frac_dead, [1 / 3, 1 / 2, 2 / 4])
    np.testing.assert_allclose(activation_stats(hs, "tanh").frac_saturated, [4 / 6, 1 / 4, 2 / 4])


def test_tanh_with_huge_weights_saturates():
    model = mlp(6, 64, "tanh", sigma_w2=1e4)
    hs = gc.forward(model, normal(32, 64))
    st = activation_stats(hs, "tanh")
    assert_stats(st, np_stats(hs, "tanh"))
    assert np.all(st.frac_saturated[1:] > 0.95), st.frac_saturated
    assert np.all(st.frac_dead == 0)  # tanh units cannot die
    mild = activation_stats(gc.forward(mlp(6, 64, "tanh", 1.0), hs[0]), "tanh")
    assert np.all(mild.frac_saturated[1:] < 0.05)


def test_sigmoid_saturates_on_both_sides():
    model = mlp(4, 64, "sigmoid", sigma_w2=400.0)
    hs = gc.forward(model, normal(32, 64))
    st = activation_stats(hs, "sigmoid")
    assert_stats(st, np_stats(hs, "sigmoid"))
    low = np.mean(np.asarray(hs[1:]) < 0.01, axis=(1, 2))
    high = np.mean(np.asarray(hs[1:]) > 0.99, axis=(1, 2))
    assert np.all(low > 0.2) and np.all(high > 0.2), (low, high)
    np.testing.assert_allclose(st.frac_saturated[1:], low + high, atol=1e-6)


def test_relu_with_strongly_negative_bias_has_dead_units():
    model = mlp(5, 32, "relu", sigma_w2=2.0)
    model.params["b"] = model.params["b"].at[:, :12].set(-10.0)  # 12 units per layer pushed far below zero
    hs = gc.forward(model, normal(16, 32))
    st = activation_stats(hs, "relu")
    assert_stats(st, np_stats(hs, "relu"))
    assert np.all(st.frac_dead[1:] >= 12 / 32)
    direct = [np.mean(np.all(np.asarray(h) <= 0, axis=0)) for h in hs]
    np.testing.assert_allclose(st.frac_dead, direct)
    assert np.all(np.isnan(st.frac_saturated))  # ReLU is not bounded above


def test_stacked_list_jit_and_function_names_agree():
    hs = gc.forward(mlp(4, 8, "relu", sigma_w2=2.0, sigma_b2=0.5), normal(5, 8))
    a = activation_stats(hs, "relu")
    b = activation_stats(list(hs), jax.nn.relu)
    c = jax.jit(lambda h: activation_stats(h, "relu"))(hs)
    for x, y in ((a, b), (a, c)):
        for f in ActivationStats._fields:
            np.testing.assert_allclose(getattr(x, f), getattr(y, f), rtol=1e-6)


def test_unknown_activation_gives_nan_and_float16_is_accumulated_wide():
    hs = [jnp.full((4, 3), 300.0, jnp.float16), jnp.zeros((4, 3), jnp.float16)]
    st = activation_stats(hs)
    assert np.all(np.isnan(st.frac_saturated)) and np.all(np.isnan(st.frac_dead))
    np.testing.assert_allclose(st.mean, [300.0, 0.0])
    np.testing.assert_allclose(st.std, [0.0, 0.0])
    st = activation_stats(hs, lambda z: z)  # a callable not in ACTIVATIONS: unknown
    assert np.all(np.isnan(st.frac_dead))
    np.testing.assert_array_equal(activation_stats(hs, "linear").frac_dead, [0.0, 0.0])


def test_activation_stats_bad_inputs():
    hs = [jnp.ones((2, 3))]
    with pytest.raises(ValueError, match="activation: unknown name 'tanhh'"):
        activation_stats(hs, "tanhh")
    with pytest.raises(TypeError, match="activation"):
        activation_stats(hs, 3)
    with pytest.raises(ValueError, match="saturation"):
        activation_stats(hs, "tanh", saturation=1.5)
    with pytest.raises(TypeError, match="saturation"):
        activation_stats(hs, "tanh", saturation="high")
    with pytest.raises(ValueError, match="saturation.*sigmoid"):
        activation_stats(hs, "sigmoid", saturation=0.3)
    with pytest.raises(ValueError, match="hs: .*empty"):
        activation_stats([], "tanh")
    with pytest.raises(TypeError, match="hs"):
        activation_stats("h", "tanh")
    with pytest.raises(TypeError, match=r"hs\[1\]"):
        activation_stats([jnp.ones(3), jnp.ones(3, jnp.complex64)], "tanh")
    with pytest.raises(ValueError, match="scalar"):
        activation_stats(jnp.float32(1.0), "tanh")


# ------------------------------------------------------------------ ratios


def test_grad_to_param_ratio_equals_manual_norms():
    params = {"layers": [{"W": jnp.arange(6.0).reshape(2, 3), "b": jnp.array([3.0, 4.0])}], "scale": jnp.array(2.0)}
    grads = {"layers": [{"W": jnp.ones((2, 3)), "b": jnp.array([0.0, 0.5])}], "scale": jnp.array(-1.0)}
    r = grad_to_param_ratio(grads, params)
    assert set(r) == {"layers/0/W", "layers/0/b", "scale"}
    np.testing.assert_allclose(r["layers/0/W"], np.sqrt(6) / np.linalg.norm(np.arange(6.0)), rtol=1e-6)
    np.testing.assert_allclose(r["layers/0/b"], 0.5 / 5.0, rtol=1e-6)
    np.testing.assert_allclose(r["scale"], 0.5, rtol=1e-6)


def test_stacked_ratios_per_depth_and_update_ratio_is_lr_times_grad_ratio():
    model = mlp(3, 6, "tanh", sigma_w2=1.5, sigma_b2=0.1)
    grads = {"W": normal(3, 6, 6) * jnp.array([1.0, 1e-2, 1e2])[:, None, None], "b": normal(3, 6)}
    r = grad_to_param_ratio(grads, model.params, stacked=True)
    for k in ("W", "b"):
        g, p = np.asarray(grads[k]), np.asarray(model.params[k])
        manual = [np.linalg.norm(g[l]) / np.linalg.norm(p[l]) for l in range(3)]
        np.testing.assert_allclose(r[k], manual, rtol=1e-5)
    opt = optax.sgd(1e-2)
    updates, _ = opt.update(grads, opt.init(model.params), model.params)
    u = update_to_param_ratio(updates, model.params, stacked=True)
    for k in ("W", "b"):
        np.testing.assert_allclose(u[k], 1e-2 * r[k], rtol=1e-5)
    jitted = jax.jit(lambda g, p: grad_to_param_ratio(g, p, stacked=True))(grads, model.params)
    np.testing.assert_allclose(jitted["W"], r["W"], rtol=1e-6)


def test_ratio_bad_inputs():
    p = {"W": jnp.ones((2, 2)), "b": jnp.ones(2)}
    with pytest.raises(ValueError, match=r"grads: .*missing \['b'\]"):
        grad_to_param_ratio({"W": jnp.ones((2, 2))}, p)
    with pytest.raises(ValueError, match=r"updates: leaf 'W' has shape \(2, 3\)"):
        update_to_param_ratio({"W": jnp.ones((2, 3)), "b": jnp.ones(2)}, p)
    with pytest.raises(TypeError, match="stacked"):
        grad_to_param_ratio(p, p, stacked="yes")
    with pytest.raises(ValueError, match="params: .*no"):
        grad_to_param_ratio(p, {})
    zero = grad_to_param_ratio({"b": jnp.ones(2)}, {"b": jnp.zeros(2)})
    assert np.isinf(zero["b"])  # a zero-initialised bias: documented


# ------------------------------------------------------------------ find_nonfinite


def test_forward_division_by_zero_at_layer_3():
    layers = [jnp.tanh, lambda h: 2 * h, lambda h: h / jnp.where(h > 0, 0.0, 1.0), jnp.tanh, jnp.sin]
    x = jnp.array([[0.5, -1.0, 2.0], [-0.3, 0.1, 0.0]])
    rep = find_nonfinite(layers, x, loss=jnp.sum)
    hs = [np.asarray(x)]
    for f in layers:
        hs.append(np.asarray(f(hs[-1])))
    expected = int(np.count_nonzero(~np.isfinite(hs[3])))
    assert expected > 0 and all(np.isfinite(h).all() for h in hs[:3])
    assert (rep.stage, rep.layer, rep.count, rep.size) == ("forward", 3, expected, 6)
    assert "h_3" in str(rep) and "model[2]" in str(rep) and "Inf" in str(rep)
    assert not rep.finite


def test_forward_nan_in_stacked_params():
    model = mlp(6, 4, "tanh")
    model.params["W"] = model.params["W"].at[4, 0, 0].set(jnp.nan)  # depth index 4 -> h_5
    rep = find_nonfinite(model, jnp.ones((2, 4)))
    assert (rep.stage, rep.layer) == ("forward", 5)
    assert rep.count == 2  # column 0 of h_5, for each of the 2 examples
    assert "NaN" in rep.message and "depth index 4" in rep.message


def test_backward_overflow_found_at_the_first_layer_reached_going_back():
    # sin(1e20 h) is bounded forward, but every layer multiplies the backward signal by ~1e20:
    # float32 overflows (> 3.4e38) after two layers, so ∂loss/∂h_{L-2} is the first Inf.
    layers = [lambda h: jnp.sin(1e20 * h)] * 4
    x = jnp.array([[0.3, -0.7, 1.1]])
    rep = find_nonfinite(layers, x, loss=jnp.sum)
    gs = gc.backward(layers, x, jnp.sum)
    bad = [l for l, g in enumerate(gs) if not np.isfinite(np.asarray(g)).all()]
    assert bad and max(bad) == 2
    assert (rep.stage, rep.layer) == ("backward", 2)
    assert rep.count == int(np.count_nonzero(~np.isfinite(np.asarray(gs[2]))))
    assert "∂loss/∂h_2" in str(rep)


def test_loss_gradient_blows_up_at_the_output():
    model = mlp(3, 8, "relu", sigma_w2=2.0)
    x = normal(4, 8)
    loss = lambda h: jnp.sum(jnp.sqrt(jnp.abs(h)))  # noqa: E731  d/dh sqrt|h| = inf at h = 0 (dead ReLU outputs)
    rep = find_nonfinite(model, x, loss)
    zeros = int(np.count_nonzero(np.asarray(gc.forward(model, x)[-1]) == 0))
    assert zeros > 0
    assert (rep.stage, rep.layer, rep.count) == ("backward", 3, zeros)


def test_nonfinite_loss_and_clean_reports():
    model = mlp(3, 8, "tanh")
    x = normal(4, 8)
    rep = find_nonfinite(model, x, lambda h: jnp.log(jnp.sum(h) - 1e3))
    assert (rep.stage, rep.layer) == ("loss", None) and "loss" in str(rep)
    clean = find_nonfinite(model, x, lambda h: jnp.mean(h**2))
    assert isinstance(clean, NonfiniteReport) and clean.finite
    assert (clean.stage, clean.layer, clean.count) == (None, None, None)
    assert str(clean).startswith("all finite")
    assert "pass a loss" in str(find_nonfinite(model, x))


def test_find_nonfinite_bad_inputs():
    with pytest.raises(TypeError, match="loss"):
        find_nonfinite([jnp.tanh], jnp.ones(3), loss=3)
    with pytest.raises(TypeError, match="model"):
        find_nonfinite(jnp.tanh, jnp.ones(3))
    with pytest.raises(TypeError, match="x: expected a floating-point"):
        find_nonfinite([jnp.tanh], jnp.ones(3, jnp.int32))
    with pytest.raises(ValueError, match="loss must return a scalar"):
        find_nonfinite([jnp.tanh], jnp.ones(3), loss=lambda h: h)


def test_find_nonfinite_step():
    assert find_nonfinite_step([1.0, 0.5, float("nan"), float("inf")]) == 2
    assert find_nonfinite_step(jnp.array([1.0, 2.0, jnp.inf])) == 2
    assert find_nonfinite_step([jnp.float32(1.0), jnp.float32(0.3)]) is None
    assert find_nonfinite_step(np.array([[1.0, 2.0], [3.0, np.nan], [np.nan, 0.0]])) == 1
    assert find_nonfinite_step([]) is None
    with pytest.raises(TypeError, match="values"):
        find_nonfinite_step("abc")
    with pytest.raises(TypeError, match="values"):
        find_nonfinite_step(3.0)
    with pytest.raises(ValueError, match="values: .*scalar"):
        find_nonfinite_step(np.float64(3.0))
    with pytest.raises(TypeError, match="values"):
        find_nonfinite_step([{"a": 1}])
