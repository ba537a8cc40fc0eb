"""gradcourse.models.rnn: shapes, cell equations, gradients vs jacfwd / finite differences, inits."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradcourse as gc
from gradcourse.models import rnn

jax.config.update("jax_enable_x64", False)

CELLS = ["rnn", "linear", "lstm", "gru"]


def _setup(cell, n_in=3, n=5, n_out=2, batch=2, T=6, seed=0, **kw):
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    params = rnn.init_rnn(k1, cell, n_in, n, n_out, **kw)
    xs = jax.random.normal(k2, (batch, T, n_in))
    return params, xs


def test_package_reexports():
    assert gc.models.unroll is rnn.unroll
    assert "hidden_state_grads" in gc.models.__all__


@pytest.mark.parametrize("cell,k", [("rnn", 1), ("linear", 1), ("lstm", 4), ("gru", 3)])
def test_shapes(cell, k):
    params, xs = _setup(cell)
    assert params["cell"]["W_x"].shape == (3, k * 5)
    assert params["cell"]["W_h"].shape == (5, k * 5)
    assert params["cell"]["b"].shape == (k * 5,)
    assert params["readout"]["W"].shape == (5, 2)
    assert rnn.unroll(cell, params, xs).shape == (7, 2, 5)
    assert rnn.apply_rnn(cell, params, xs).shape == (2, 2)
    assert rnn.apply_rnn(cell, params, xs, all_steps=True).shape == (2, 6, 2)
    assert rnn.apply_rnn(cell, params["cell"], xs).shape == (2, 5)
    assert rnn.state_jacobian_norms(cell, params, xs).shape == (2, 7)


def test_elman_equation_by_hand():
    params, xs = _setup("rnn")
    p = params["cell"]
    h = jnp.zeros((2, 5))
    hs = [h]
    for t in range(xs.shape[1]):
        h = jnp.tanh(xs[:, t] @ p["W_x"] + h @ p["W_h"] + p["b"])
        hs.append(h)
    np.testing.assert_allclose(rnn.unroll("rnn", params, xs), jnp.stack(hs), rtol=1e-5, atol=1e-6)


def test_lstm_and_gru_equations_by_hand():
    params, xs = _setup("lstm")
    p, n = params["cell"], 5
    h = c = jnp.zeros((2, n))
    for t in range(xs.shape[1]):
        z = xs[:, t] @ p["W_x"] + h @ p["W_h"] + p["b"]
        i, f, g, o = z[:, :n], z[:, n : 2 * n], z[:, 2 * n : 3 * n], z[:, 3 * n :]
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
    np.testing.assert_allclose(rnn.unroll("lstm", params, xs)[-1], h, rtol=1e-5, atol=1e-6)

    params, xs = _setup("gru")
    p = params["cell"]
    h = jnp.zeros((2, n))
    for t in range(xs.shape[1]):
        zx = xs[:, t] @ p["W_x"] + p["b"]
        z = jax.nn.sigmoid(zx[:, :n] + h @ p["W_h"][:, :n])
        r = jax.nn.sigmoid(zx[:, n : 2 * n] + h @ p["W_h"][:, n : 2 * n])
        cand = jnp.tanh(zx[:, 2 * n :] + (r * h) @ p["W_h"][:, 2 * n :])
        h = z * h + (1 - z) * cand
    np.testing.assert_allclose(rnn.unroll("gru", params, xs)[-1], h, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell", CELLS)
def test_hidden_state_grads_match_jacfwd(cell):
    """∂L/∂h_t from the perturbation trick equals the chain rule from jacfwd of h_T w.r.t. h_t."""
    params, xs = _setup(cell, batch=1, T=5, n_out=1)
    target = jnp.array([0.3])
    loss = lambda out: jnp.sum((out[:, 0] - target) ** 2)  # noqa: E731
    g = rnn.hidden_state_grads(cell, params, xs, loss)
    assert g.shape == (6, 1, 5)
    # t = 0: gradient w.r.t. h0 directly
    g0 = jax.grad(lambda h0: loss(rnn.apply_rnn(cell, params, xs, h0=h0)))(jnp.zeros((1, 5)))
    np.testing.assert_allclose(g[0], g0, rtol=1e-4, atol=1e-6)
    # last step: dL/dh_T = 2 (y - target) W_out^T
    out = rnn.apply_rnn(cell, params, xs)
    want = 2 * (out[:, 0] - target)[:, None] * params["readout"]["W"][:, 0][None]
    np.testing.assert_allclose(g[-1], want, rtol=1e-4, atol=1e-6)
    # middle step, for Elman/GRU (state = h): restart the recurrence from h_t
    if cell != "lstm":
        t = 2
        hs = rnn.unroll(cell, params, xs)
        tail = lambda h: loss(rnn.apply_rnn(cell, params, xs[:, t:], h0=h))  # noqa: E731
        np.testing.assert_allclose(g[t], jax.grad(tail)(hs[t]), rtol=1e-4, atol=1e-6)


def test_hidden_state_grads_finite_differences():
    params, xs = _setup("gru", batch=1, T=4, n_out=1)
    params = jax.tree_util.tree_map(lambda a: a.astype(jnp.float32), params)
    loss = lambda out: jnp.sum(out**2)  # noqa: E731
    g = rnn.hidden_state_grads("gru", params, xs, loss)
    h0 = jnp.zeros((1, 5))
    eps = 1e-2
    for i in range(5):
        d = jnp.zeros((1, 5)).at[0, i].set(eps)
        fd = (loss(rnn.apply_rnn("gru", params, xs, h0=h0 + d)) - loss(rnn.apply_rnn("gru", params, xs, h0=h0 - d))) / (2 * eps)
        np.testing.assert_allclose(g[0, 0, i], fd, rtol=2e-2, atol=1e-4)


@pytest.mark.parametrize("cell", CELLS)
def test_state_jacobian_norms_vs_jacfwd(cell):
    params, xs = _setup(cell, batch=2, T=4)
    norms = rnn.state_jacobian_norms(cell, params, xs)
    for b in range(2):
        f = lambda h: rnn.unroll(cell, params, xs[b : b + 1], h0=h[None])[-1, 0]  # noqa: E731
        J = jax.jacfwd(f)(jnp.zeros(5))
        np.testing.assert_allclose(norms[b, -1], np.linalg.norm(np.asarray(J), 2), rtol=1e-4)
    np.testing.assert_allclose(norms[:, 0], 1.0, rtol=1e-5)
    probe = rnn.state_jacobian_norms(cell, params, xs, method="jvp")
    assert probe.shape == norms.shape
    assert np.all(np.asarray(probe) <= np.asarray(norms) * (1 + 1e-4))


def test_linear_orthogonal_norm_is_exactly_rho_power_T():
    T, n = 20, 16
    for rho in (0.9, 1.0, 1.1):
        p = rnn.init_cell(jax.random.PRNGKey(1), "linear", 1, n, recurrent_init="orthogonal", scale=rho)
        norms = rnn.state_jacobian_norms("linear", p, jnp.zeros((1, T, 1)))[0]
        np.testing.assert_allclose(norms, rho ** np.arange(T + 1), rtol=1e-4)
        probe = rnn.state_jacobian_norms("linear", p, jnp.zeros((1, T, 1)), method="jvp")[0]
        np.testing.assert_allclose(probe, rho ** np.arange(T + 1), rtol=1e-4)


def test_recurrent_inits():
    n = 64
    key = jax.random.PRNGKey(0)
    p = rnn.init_cell(key, "rnn", 2, n, recurrent_init="orthogonal", scale=0.5)
    np.testing.assert_allclose(p["W_h"] @ p["W_h"].T, 0.25 * np.eye(n), atol=1e-5)
    p = rnn.init_cell(key, "rnn", 2, n, recurrent_init="identity")
    np.testing.assert_array_equal(p["W_h"], np.eye(n))
    p = rnn.init_cell(key, "rnn", 2, n, spectral_radius=1.3)
    assert abs(rnn.spectral_radius(p["W_h"]) - 1.3) < 1e-4
    p = rnn.init_cell(key, "rnn", 2, n, scale=1.0)  # circular law: radius ≈ scale
    assert abs(rnn.spectral_radius(p["W_h"]) - 1.0) < 0.25
    p = rnn.init_cell(key, "rnn", 2, n, recurrent_init=jax.nn.initializers.zeros)
    assert float(jnp.abs(p["W_h"]).max()) == 0.0
    p = rnn.init_cell(key, "gru", 2, 8)  # orthogonal blocks by default
    for blk in range(3):
        W = p["W_h"][:, 8 * blk : 8 * (blk + 1)]
        np.testing.assert_allclose(W @ W.T, np.eye(8), atol=1e-5)


def test_lstm_forget_bias():
    p = rnn.init_cell(jax.random.PRNGKey(0), "lstm", 2, 4)
    np.testing.assert_array_equal(p["b"], np.r_[np.zeros(4), np.ones(4), np.zeros(8)])
    p = rnn.init_cell(jax.random.PRNGKey(0), "lstm", 2, 4, forget_bias=0.0)
    np.testing.assert_array_equal(p["b"], np.zeros(16))


def test_losses_train_with_optax():
    from gradcourse.data import adding_problem, copy_task

    params, _ = _setup("gru", n_in=2, n=8, n_out=1)
    loss_fn = rnn.rnn_mse_loss("gru")
    batch = adding_problem(0, 8, 16)
    opt = optax.adam(1e-2)
    state = opt.init(params)
    l0 = loss_fn(params, batch)

    @jax.jit
    def step(params, state):
        g = jax.grad(loss_fn)(params, batch)
        u, state = opt.update(g, state, params)
        return optax.apply_updates(params, u), state

    for _ in range(30):
        params, state = step(params, state)
    assert loss_fn(params, batch) < 0.5 * l0
    xs, labels = copy_task(0, 3, 4, n_symbols=4, length=2)
    p = rnn.init_rnn(jax.random.PRNGKey(0), "lstm", 6, 8, 6)
    xent = rnn.rnn_xent_loss("lstm")(p, (xs, labels))
    assert np.isfinite(float(xent)) and abs(float(xent) - np.log(6)) < 0.5


def test_bad_inputs():
    params, xs = _setup("rnn")
    with pytest.raises(ValueError, match="cell"):
        rnn.init_cell(jax.random.PRNGKey(0), "transformer", 2, 4)
    with pytest.raises(TypeError, match="cell"):
        rnn.unroll(3, params, xs)
    with pytest.raises(ValueError, match="n_hidden"):
        rnn.init_cell(jax.random.PRNGKey(0), "rnn", 2, 0)
    with pytest.raises(ValueError, match="recurrent_init"):
        rnn.init_cell(jax.random.PRNGKey(0), "rnn", 2, 4, recurrent_init="glorot")
    with pytest.raises(ValueError, match="spectral_radius"):
        rnn.init_cell(jax.random.PRNGKey(0), "lstm", 2, 4, spectral_radius=1.0)
    with pytest.raises(ValueError, match="xs"):
        rnn.unroll("rnn", params, xs[0])
    with pytest.raises(ValueError, match="n_in"):
        rnn.unroll("rnn", params, jnp.zeros((2, 6, 4)))
    with pytest.raises(TypeError, match="xs"):
        rnn.unroll("rnn", params, jnp.zeros((2, 6, 3), jnp.int32))
    with pytest.raises(ValueError, match="h0"):
        rnn.unroll("rnn", params, xs, h0=jnp.zeros((2, 4)))
    with pytest.raises(ValueError, match="params"):
        rnn.unroll("rnn", {"W_x": 1}, xs)
    with pytest.raises(ValueError, match="scalar"):
        rnn.hidden_state_grads("rnn", params, xs, lambda out: out)
    with pytest.raises(ValueError, match="method"):
        rnn.state_jacobian_norms("rnn", params, xs, method="svd")
    with pytest.raises(ValueError, match="square"):
        rnn.spectral_radius(np.zeros((2, 3)))


def test_power_norm_bounds():
    rng = np.random.default_rng(0)
    W = rng.normal(size=(12, 12)) / np.sqrt(12)
    lower, upper = rnn.power_norm_bounds(W, 30)
    assert lower.shape == upper.shape == (31,)
    norms = np.array([np.linalg.norm(np.linalg.matrix_power(W, t), 2) for t in range(31)])
    assert np.all(norms >= lower * (1 - 1e-9)) and np.all(norms <= upper * (1 + 1e-9))
    Q = np.linalg.qr(rng.normal(size=(8, 8)))[0]
    lower, upper = rnn.power_norm_bounds(0.9 * Q, 5)
    np.testing.assert_allclose(lower, 0.9 ** np.arange(6), rtol=1e-9)
    np.testing.assert_allclose(upper, lower, rtol=1e-6)  # normal matrix: κ(V) = 1
    with pytest.raises(ValueError, match="T"):
        rnn.power_norm_bounds(W, 0)
    with pytest.raises(ValueError, match="square"):
        rnn.power_norm_bounds(np.zeros((2, 3)), 3)


def test_compare_runs_plot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    class Run:  # anything with loss and grad_norm arrays (a gc.train.History in the notebook)
        def __init__(self, loss, grad, stopped_at=None):
            self.loss, self.grad_norm, self.stopped_at = np.asarray(loss), np.asarray(grad), stopped_at

    runs = {"a": Run(np.linspace(1, 0.1, 50), np.ones(50)), "b": Run([1.0, 5.0, 50.0], [2.0, 20.0, 200.0], stopped_at=3)}
    fig, axes = gc.plot.compare_runs(runs, baseline=1 / 6, clip=1.0, smooth=5, loss_ylim=(1e-2, 10))
    assert len(axes) == 2 and axes[0].get_yscale() == "log"
    assert axes[0].get_ylim() == (1e-2, 10)
    assert any("b: above 10 from step" in t.get_text() for t in axes[0].texts)  # run b leaves the range
    assert "baseline" in [t.get_text() for t in axes[0].get_legend().get_texts()]
    plt.close(fig)
    with pytest.raises(TypeError, match="runs"):
        gc.plot.compare_runs({})
    with pytest.raises(TypeError, match="History"):
        gc.plot.compare_runs({"x": 3})
    with pytest.raises(ValueError, match="smooth"):
        gc.plot.compare_runs(runs, smooth=0)
