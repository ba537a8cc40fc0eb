"""gradcourse.models.rnn: the model contract, cell equations, gradients vs jacfwd / finite differences, inits.

Cheap on purpose: most tests share the configs of ``CFG`` and inputs of shape (2, 6, 3), so the jitted
``states`` / ``apply`` / ``hidden_state_grads`` compile once per cell and are reused across tests.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradcourse as gc
from gradcourse.models import rnn

CELLS = ["rnn", "linear", "lstm", "gru"]
CFG = {cell: rnn.Config(cell=cell, n_in=3, n_hidden=5, n_out=2) for cell in CELLS}
XS = jax.random.normal(jax.random.PRNGKey(1), (2, 6, 3))
Y = jnp.array([[0.3, -0.1], [1.0, 0.5]])


def _params(cell, seed=0):
    return rnn.init(jax.random.PRNGKey(seed), CFG[cell])


@pytest.mark.parametrize("cell,k", [("rnn", 1), ("linear", 1), ("lstm", 4), ("gru", 3)])
def test_shapes(cell, k):
    cfg, params = CFG[cell], _params(cell)
    assert params["cell"]["W_x"].shape == (3, k * 5)
    assert params["cell"]["W_h"].shape == (5, k * 5)
    assert params["cell"]["b"].shape == (k * 5,)
    assert params["readout"]["W"].shape == (5, 2)
    assert rnn.states(params, cfg, XS).shape == (7, 2, 5)
    assert rnn.apply(params, cfg, XS).shape == (2, 2)
    assert rnn.loss(params, cfg, (XS, Y)).shape == ()
    assert rnn.state_jacobian_norms(params, cfg, XS).shape == (2, 7)
    if cell == "gru":  # the other output modes, once
        every = rnn.Config(cell="gru", n_in=3, n_hidden=5, n_out=2, output="all")
        assert rnn.apply(params, every, XS).shape == (2, 6, 2)
        bare = rnn.Config(cell="gru", n_in=3, n_hidden=5, n_out=None)
        p0 = rnn.init(jax.random.PRNGKey(0), bare)
        assert set(p0) == {"cell"} and rnn.apply(p0, bare, XS).shape == (2, 5)
        np.testing.assert_array_equal(rnn.apply(p0, bare, XS), rnn.states(p0, bare, XS)[-1])


def test_elman_equation_by_hand():
    params = _params("rnn")
    p = params["cell"]
    h = jnp.zeros((2, 5))
    hs = [h]
    for t in range(XS.shape[1]):
        h = jnp.tanh(XS[:, t] @ p["W_x"] + h @ p["W_h"] + p["b"])
        hs.append(h)
    np.testing.assert_allclose(rnn.states(params, CFG["rnn"], XS), jnp.stack(hs), rtol=1e-5, atol=1e-6)
    out = rnn.apply(params, CFG["rnn"], XS)
    np.testing.assert_allclose(out, h @ params["readout"]["W"] + params["readout"]["b"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rnn.loss(params, CFG["rnn"], (XS, Y)), jnp.mean((out - Y) ** 2), rtol=1e-6)


def test_lstm_and_gru_equations_by_hand():
    params, n = _params("lstm"), 5
    p = params["cell"]
    h = c = jnp.zeros((2, n))
    for t in range(XS.shape[1]):
        z = XS[:, t] @ p["W_x"] + h @ p["W_h"] + p["b"]
        i, f, g, o = z[:, :n], z[:, n : 2 * n], z[:, 2 * n : 3 * n], z[:, 3 * n :]
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
    np.testing.assert_allclose(rnn.states(params, CFG["lstm"], XS)[-1], h, rtol=1e-5, atol=1e-6)

    params = _params("gru")
    p = params["cell"]
    h = jnp.zeros((2, n))
    for t in range(XS.shape[1]):
        zx = XS[:, t] @ p["W_x"] + p["b"]
        z = jax.nn.sigmoid(zx[:, :n] + h @ p["W_h"][:, :n])
        r = jax.nn.sigmoid(zx[:, n : 2 * n] + h @ p["W_h"][:, n : 2 * n])
        cand = jnp.tanh(zx[:, 2 * n :] + (r * h) @ p["W_h"][:, 2 * n :])
        h = z * h + (1 - z) * cand
    np.testing.assert_allclose(rnn.states(params, CFG["gru"], XS)[-1], h, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell", CELLS)
def test_hidden_state_grads_match_jacfwd(cell):
    """∂loss/∂h_t from the perturbation trick equals the chain rule through the model's own loss."""
    cfg, params = CFG[cell], _params(cell)
    g = rnn.hidden_state_grads(params, cfg, (XS, Y))
    assert g.shape == (7, 2, 5)
    # t = 0: gradient w.r.t. h0 directly
    g0 = jax.grad(lambda h0: _loss_h0(params, cfg, XS, Y, h0))(jnp.zeros((2, 5)))
    np.testing.assert_allclose(g[0], g0, rtol=1e-4, atol=1e-6)
    # last step: d mean((y - target)^2) / dh_T = 2 (y - target) W_out^T / (batch · n_out)
    out = rnn.apply(params, cfg, XS)
    want = 2 * (out - Y) @ params["readout"]["W"].T / Y.size
    np.testing.assert_allclose(g[-1], want, rtol=1e-4, atol=1e-6)
    # middle step, for Elman/GRU (state = h): restart the recurrence from h_t (tail of length 4)
    if cell != "lstm":
        t = 2
        hs = rnn.states(params, cfg, XS)
        tail = lambda h: _loss_h0(params, cfg, XS[:, t:], Y, h)  # noqa: E731
        np.testing.assert_allclose(g[t], jax.grad(tail)(hs[t]), rtol=1e-4, atol=1e-6)


def _loss_h0(params, cfg, xs, y, h0):
    return jnp.mean((rnn.apply(params, cfg, xs, h0=h0) - y) ** 2)


def test_hidden_state_grads_finite_differences():
    cfg, params = CFG["gru"], _params("gru")
    g = rnn.hidden_state_grads(params, cfg, (XS, Y))
    h0 = jnp.zeros((2, 5))
    eps = 1e-2
    for i in range(5):
        d = jnp.zeros((2, 5)).at[0, i].set(eps)
        fd = (_loss_h0(params, cfg, XS, Y, h0 + d) - _loss_h0(params, cfg, XS, Y, h0 - d)) / (2 * eps)
        np.testing.assert_allclose(g[0, 0, i], fd, rtol=2e-2, atol=1e-4)


@pytest.mark.parametrize("cell", CELLS)
def test_state_jacobian_norms_vs_jacfwd(cell):
    cfg, params = CFG[cell], _params(cell)
    norms = rnn.state_jacobian_norms(params, cfg, XS)
    for b in range(2):
        f = lambda h, b=b: rnn.states(params, cfg, XS[b : b + 1], h0=h[None])[-1, 0]  # noqa: E731
        J = jax.jacfwd(f)(jnp.zeros(5))
        np.testing.assert_allclose(norms[b, -1], np.linalg.norm(np.asarray(J), 2), rtol=1e-4)
    np.testing.assert_allclose(norms[:, 0], 1.0, rtol=1e-5)
    probe = rnn.state_jacobian_norms(params, cfg, XS, method="jvp")
    assert probe.shape == norms.shape
    assert np.all(np.asarray(probe) <= np.asarray(norms) * (1 + 1e-4))


def test_linear_orthogonal_norm_is_exactly_rho_power_T():
    T, n = 20, 16
    for rho in (0.9, 1.0, 1.1):
        cfg = rnn.Config(cell="linear", n_in=1, n_hidden=n, n_out=None, recurrent_init="orthogonal", scale=rho)
        p = rnn.init(jax.random.PRNGKey(1), cfg)
        norms = rnn.state_jacobian_norms(p, cfg, jnp.zeros((1, T, 1)))[0]
        np.testing.assert_allclose(norms, rho ** np.arange(T + 1), rtol=1e-4)
        probe = rnn.state_jacobian_norms(p, cfg, jnp.zeros((1, T, 1)), method="jvp")[0]
        np.testing.assert_allclose(probe, rho ** np.arange(T + 1), rtol=1e-4)


def _w_h(key, **kw):
    return rnn.init(key, rnn.Config(n_in=2, n_out=None, **kw))["cell"]["W_h"]


def test_recurrent_inits():
    n = 64
    key = jax.random.PRNGKey(0)
    rho = lambda W: np.max(np.abs(np.linalg.eigvals(np.asarray(W, np.float64))))  # noqa: E731
    W = _w_h(key, n_hidden=n, recurrent_init="orthogonal", scale=0.5)
    np.testing.assert_allclose(W @ W.T, 0.25 * np.eye(n), atol=1e-5)
    np.testing.assert_array_equal(_w_h(key, n_hidden=n, recurrent_init="identity"), np.eye(n))
    assert abs(rho(_w_h(key, n_hidden=n, spectral_radius=1.3)) - 1.3) < 1e-4
    assert abs(rho(_w_h(key, n_hidden=n, scale=1.0)) - 1.0) < 0.25  # circular law: radius ≈ scale
    assert float(jnp.abs(_w_h(key, n_hidden=n, recurrent_init=jax.nn.initializers.zeros)).max()) == 0.0
    W = _w_h(key, cell="gru", n_hidden=8)  # orthogonal blocks by default
    for blk in range(3):
        B = W[:, 8 * blk : 8 * (blk + 1)]
        np.testing.assert_allclose(B @ B.T, np.eye(8), atol=1e-5)
    # the readout draws from its own key: with n_out=None the cell uses the key itself
    with_readout = rnn.init(key, rnn.Config(n_in=2, n_hidden=n, n_out=1))
    np.testing.assert_array_equal(with_readout["cell"]["W_h"], _w_h(jax.random.split(key)[0], n_hidden=n))


def test_lstm_forget_bias():
    b = lambda **kw: rnn.init(jax.random.PRNGKey(0), rnn.Config(cell="lstm", n_in=2, n_hidden=4, **kw))["cell"]["b"]  # noqa: E731
    np.testing.assert_array_equal(b(), np.r_[np.zeros(4), np.ones(4), np.zeros(8)])
    np.testing.assert_array_equal(b(forget_bias=0.0), np.zeros(16))


def test_losses_train_with_fit():
    from gradcourse.data import adding_problem, copy_task

    cfg = rnn.Config(cell="gru", n_in=2, n_hidden=8, n_out=1)
    params = rnn.init(jax.random.PRNGKey(0), cfg)
    batch = adding_problem(0, 8, 16)
    np.testing.assert_allclose(
        rnn.loss(params, cfg, batch), jnp.mean((rnn.apply(params, cfg, batch[0])[:, 0] - batch[1]) ** 2), rtol=1e-6
    )
    h = gc.train.fit(lambda p, b: rnn.loss(p, cfg, b), params, optax.adam(1e-2), batch, 30, progress=False)
    assert h.loss[-1] < 0.5 * h.loss[0]
    xs, labels = copy_task(0, 3, 4, n_symbols=4, length=2)
    tag = rnn.Config(cell="lstm", n_in=6, n_hidden=8, n_out=6, output="all")
    p = rnn.init(jax.random.PRNGKey(0), tag)
    xent = rnn.loss(p, tag, (xs, labels))
    logp = jax.nn.log_softmax(rnn.apply(p, tag, xs), axis=-1)
    want = -np.mean(np.take_along_axis(np.asarray(logp), np.asarray(labels)[..., None], axis=-1))
    np.testing.assert_allclose(xent, want, rtol=1e-5)
    assert abs(float(xent) - np.log(6)) < 0.5


@pytest.mark.parametrize(
    "change, exc, match",
    [
        ({"cell": "transformer"}, ValueError, "^cell: expected one of 'rnn', 'linear', 'lstm', 'gru'"),
        ({"n_hidden": 0}, ValueError, "^n_hidden: expected a positive integer, got 0"),
        ({"n_in": 2.0}, TypeError, "^n_in: "),
        ({"n_out": -1}, ValueError, "^n_out: "),
        ({"output": "first"}, ValueError, "^output: "),
        ({"recurrent_init": "glorot"}, ValueError, "^recurrent_init: "),
        ({"scale": -1.0}, ValueError, "^scale: "),
        ({"forget_bias": "1"}, TypeError, "^forget_bias: "),
        ({"cell": "lstm", "spectral_radius": 1.0}, ValueError, "^spectral_radius: "),
    ],
)
def test_config_validation_names_the_field(change, exc, match):
    with pytest.raises(exc, match=match):
        rnn.Config(**change)


def test_bad_inputs():
    cfg, params = CFG["rnn"], _params("rnn")
    with pytest.raises(TypeError, match="config"):
        rnn.states(params, "rnn", XS)
    with pytest.raises(TypeError, match="key"):
        rnn.init(0, cfg)
    with pytest.raises(ValueError, match="xs"):
        rnn.states(params, cfg, XS[0])
    with pytest.raises(ValueError, match="n_in"):
        rnn.states(params, cfg, jnp.zeros((2, 6, 4)))
    with pytest.raises(TypeError, match="xs"):
        rnn.states(params, cfg, jnp.zeros((2, 6, 3), jnp.int32))
    with pytest.raises(ValueError, match="h0"):
        rnn.states(params, cfg, XS, h0=jnp.zeros((2, 4)))
    with pytest.raises(TypeError, match="params"):
        rnn.states({"W_x": 1}, cfg, XS)
    with pytest.raises(ValueError, match="params"):
        rnn.states(_params("gru"), cfg, XS)
    with pytest.raises(ValueError, match="readout"):
        rnn.apply({"cell": params["cell"]}, cfg, XS)
    with pytest.raises(TypeError, match="batch"):
        rnn.loss(params, cfg, XS)
    with pytest.raises(ValueError, match="method"):
        rnn.state_jacobian_norms(params, cfg, XS, method="svd")


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

    runs = {
        "a": Run(np.linspace(1, 0.1, 50), np.ones(50)),
        "b": Run([1.0, 5.0, 50.0], [2.0, 20.0, 200.0], stopped_at=3),
    }
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


# --------------------------------------------------------------------------- cell_state_grads, unrolled


def _lstm_loss_loop(p, xs, y, t_star, e):
    """The LSTM written out as a Python loop (independent of the scan), with e added to c_{t_star}."""
    n = p["cell"]["W_h"].shape[0]
    h = jnp.zeros((xs.shape[0], n))
    c = jnp.zeros_like(h) + (e if t_star == 0 else 0.0)
    for t in range(xs.shape[1]):
        z = xs[:, t] @ p["cell"]["W_x"] + h @ p["cell"]["W_h"] + p["cell"]["b"]
        i, f, g, o = (z[:, k * n:(k + 1) * n] for k in range(4))
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g) + (e if t + 1 == t_star else 0.0)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
    out = h @ p["readout"]["W"] + p["readout"]["b"]
    return jnp.mean((out - y) ** 2)


def test_cell_state_grads_equal_a_python_loop_reference():
    params = _params("lstm")
    got = np.asarray(rnn.cell_state_grads(params, CFG["lstm"], (XS, Y)))
    assert got.shape == (7, 2, 5)
    zero = jnp.zeros((2, 5))
    for t in range(7):
        want = jax.grad(lambda e, t=t: _lstm_loss_loop(params, XS, Y, t, e))(zero)
        np.testing.assert_allclose(got[t], want, rtol=1e-4, atol=1e-7)


def test_cell_state_grads_follow_the_forget_gate_with_no_feedback():
    # W_h = 0 cuts the loop through h: then ∂L/∂c_{t-1} = ∂L/∂c_t ⊙ σ(b_f) exactly (zero inputs keep f = σ(b_f))
    cfg = rnn.Config(cell="lstm", n_in=3, n_hidden=5, n_out=2, forget_bias=2.0)
    params = rnn.init(jax.random.PRNGKey(0), cfg)
    params["cell"]["W_h"] = jnp.zeros_like(params["cell"]["W_h"])
    xs = jnp.zeros((2, 6, 3))
    g = np.asarray(rnn.cell_state_grads(params, cfg, (xs, Y)))
    f = 1.0 / (1.0 + np.exp(-2.0))
    np.testing.assert_allclose(g[:-1], g[1:] * f, rtol=1e-5)


def test_cell_state_grads_need_an_lstm():
    with pytest.raises(ValueError, match="cell='lstm'"):
        rnn.cell_state_grads(_params("gru"), CFG["gru"], (XS, Y))


@pytest.mark.parametrize("cell", ["rnn", "gru"])
def test_unrolled_is_the_model_with_time_as_depth(cell):
    cfg, params = CFG[cell], _params(cell)
    model, h0, loss_of_h_T = rnn.unrolled(params, cfg, (XS, Y))
    np.testing.assert_allclose(np.asarray(gc.forward(model, h0)), np.asarray(rnn.states(params, cfg, XS)), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(gc.backward(model, h0, loss_of_h_T)),
                               np.asarray(rnn.hidden_state_grads(params, cfg, (XS, Y))), rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(float(loss_of_h_T(gc.forward(model, h0)[-1])), float(rnn.loss(params, cfg, (XS, Y))),
                               rtol=1e-6)


def test_unrolled_lets_find_nonfinite_name_the_time_step():
    cfg, params = CFG["rnn"], _params("rnn")
    xs = XS.at[1, 3, 0].set(jnp.nan)       # a NaN input at time step 4 (x_4 is xs[:, 3]; tanh(inf) would be finite)
    report = gc.stats.find_nonfinite(*rnn.unrolled(params, cfg, (xs, Y)))
    assert report.stage == "forward" and report.layer == 4
    with pytest.raises(ValueError, match="unrolled"):
        rnn.unrolled(_params("lstm"), CFG["lstm"], (XS, Y))
