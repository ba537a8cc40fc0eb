"""gc.train.fit against independent computations: jax.grad at the recorded params, hand-made ratios."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradcourse as gc

KEY = jax.random.PRNGKey(0)


def regression(n=32, d=4):
    kx, kw = jax.random.split(KEY)
    x = jax.random.normal(kx, (n, d))
    y = x @ jax.random.normal(kw, (d,))
    return x, y


def linear_loss(p, batch):
    x, y = batch
    return jnp.mean((x @ p["W"] + p["b"] - y) ** 2)


def linear_params(d=4):
    return {"W": 0.1 * jnp.ones((d,)), "b": jnp.asarray(0.5)}


def stacked_problem(depth=3, width=5):
    kx, kp = jax.random.split(KEY)
    x = jax.random.normal(kx, (16, width))
    y = jnp.sin(x[:, 0])
    params = {"blocks": gc.mlp_params(kp, depth, width, 1.0, 0.1), "head": jnp.ones((width,)) / width}
    f = gc.dense_layer("tanh")

    def loss_fn(p, batch):  # a Python loop over depth: compiles faster than lax.scan at this size
        h, yb = batch
        for l in range(depth):
            h = f(jax.tree.map(lambda a: a[l], p["blocks"]), h)  # noqa: B023 (called at once)
        return jnp.mean((h @ p["head"] - yb) ** 2)

    return loss_fn, params, (x, y)


def test_fit_reduces_loss_and_shapes():
    h = gc.train.fit(linear_loss, linear_params(), optax.sgd(0.1), regression(), 50, progress=False)
    assert isinstance(h, gc.train.History) and len(h) == 50
    assert h.loss.shape == h.grad_norm.shape == h.update_norm.shape == (50,)
    assert h.loss[-1] < 0.01 * h.loss[0]
    assert set(h.grad_norms) == set(h.update_ratios) == {"W", "b"}
    assert h.grad_norms["W"].shape == (50,)
    assert h.stopped_at is None and h.stop_reason is None
    np.testing.assert_allclose(float(linear_loss(h.params, regression())), h.loss[-1], rtol=0.5)  # one step further


def test_recorded_norms_match_jax_grad_at_recorded_params():
    """Every recorded number against an eager optax loop that recomputes jax.grad at each step's params."""
    loss_fn, params, batch = stacked_problem()
    opt = optax.adam(1e-2)
    n = 13  # a full chunk and a padded one
    h = gc.train.fit(loss_fn, params, opt, batch, n, stacked=("blocks",), progress=False)
    p, state = params, opt.init(params)
    rows = lambda a: jnp.linalg.norm(a.reshape(a.shape[0], -1), axis=1)  # per depth index
    for t in range(n):
        loss, g = jax.value_and_grad(loss_fn)(p, batch)
        u, state = opt.update(g, state, p)
        new = optax.apply_updates(p, u)
        np.testing.assert_allclose(h.loss[t], loss, rtol=1e-5)
        np.testing.assert_allclose(h.grad_norm[t], optax.tree.norm(g), rtol=1e-5)
        np.testing.assert_allclose(h.grad_norms["blocks/W"][t], rows(g["blocks"]["W"]), rtol=1e-5)
        np.testing.assert_allclose(h.grad_norms["blocks/b"][t], rows(g["blocks"]["b"]), rtol=1e-5)
        np.testing.assert_allclose(h.grad_norms["head"][t], jnp.linalg.norm(g["head"]), rtol=1e-5)
        # update ratios ‖θ_new − θ‖ / ‖θ‖ by hand, from the parameters themselves
        dW = new["blocks"]["W"] - p["blocks"]["W"]
        np.testing.assert_allclose(h.update_ratios["blocks/W"][t], rows(dW) / rows(p["blocks"]["W"]), rtol=1e-3)
        dh = new["head"] - p["head"]
        np.testing.assert_allclose(
            h.update_ratios["head"][t], jnp.linalg.norm(dh) / jnp.linalg.norm(p["head"]), rtol=1e-3
        )
        np.testing.assert_allclose(h.update_norm[t], optax.tree.norm(jax.tree.map(jnp.subtract, new, p)), rtol=1e-3)
        p = new
    for a, b in zip(jax.tree.leaves(h.params), jax.tree.leaves(p), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_sgd_first_step_by_hand():
    x, y = regression()
    p = linear_params()
    h = gc.train.fit(linear_loss, p, optax.sgd(0.05), (x, y), 1, progress=False)
    g = jax.grad(linear_loss)(p, (x, y))
    np.testing.assert_allclose(h.params["W"], p["W"] - 0.05 * g["W"], rtol=1e-6)
    np.testing.assert_allclose(
        h.update_ratios["W"][0], 0.05 * jnp.linalg.norm(g["W"]) / jnp.linalg.norm(p["W"]), rtol=1e-5
    )
    np.testing.assert_allclose(h.update_norm[0], 0.05 * h.grad_norm[0], rtol=1e-5)


def test_stacked_true_and_matrix():
    loss_fn, params, batch = stacked_problem(depth=4)
    h = gc.train.fit(loss_fn, params, optax.sgd(0.1), batch, 7, stacked=("blocks",), progress=False)
    assert h.grad_norms["blocks/W"].shape == (7, 4) and h.update_ratios["blocks/b"].shape == (7, 4)
    labels, values = h.matrix()
    assert labels == [f"blocks/W[{i}]" for i in range(4)] + [f"blocks/b[{i}]" for i in range(4)] + ["head"]
    assert values.shape == (9, 7)
    np.testing.assert_array_equal(values[2], h.grad_norms["blocks/W"][:, 2])
    np.testing.assert_array_equal(values[-1], h.grad_norms["head"])
    labels_r, ratios = h.matrix("update_ratios")
    assert labels_r == labels
    np.testing.assert_array_equal(ratios[5], h.update_ratios["blocks/b"][:, 1])
    # stacked=True: every leaf has the depth axis
    W = {"W": jnp.ones((3, 2, 2)), "b": jnp.ones((3, 2))}
    h2 = gc.train.fit(
        lambda p, b: jnp.sum(p["W"] ** 2) + jnp.sum(p["b"] ** 2),
        W,
        optax.sgd(0.1),
        jnp.zeros(1),
        2,
        stacked=True,
        progress=False,
    )
    assert h2.grad_norms["W"].shape == (2, 3)
    np.testing.assert_allclose(h2.grad_norms["W"][0], 2 * np.sqrt(4.0), rtol=1e-6)  # ∂/∂W Σ W² = 2W, ‖2·1_{2×2}‖ = 4
    # a prefix matching two top-level leaves
    h3 = gc.train.fit(
        lambda p, b: jnp.sum(p["W"] ** 2) + jnp.sum(p["b"] ** 2),
        W,
        optax.sgd(0.1),
        jnp.zeros(1),
        2,
        stacked=("W", "b"),
        progress=False,
    )
    assert h3.grad_norms["b"].shape == (2, 3)
    with pytest.raises(ValueError, match="kind"):
        h.matrix("weights")


def test_nan_stop_truncates_and_keeps_last_finite_params():
    x, y = regression()

    def loss_fn(p, batch):  # NaN from step 23 on
        xb, yb, step = batch
        return linear_loss(p, (xb, yb)) * jnp.where(step >= 23, jnp.nan, 1.0)

    h = gc.train.fit(loss_fn, linear_params(), optax.adam(1e-2), lambda i: (x, y, jnp.asarray(i)), 100, progress=False)
    assert h.stopped_at == 23 and h.stop_reason == "loss is NaN at step 23"
    assert len(h) == 23 and h.grad_norm.shape == (23,) and h.grad_norms["W"].shape == (23,)
    assert np.all(np.isfinite(h.loss))
    ref = gc.train.fit(linear_loss, linear_params(), optax.adam(1e-2), (x, y), 23, progress=False)
    np.testing.assert_array_equal(h.params["W"], ref.params["W"])
    np.testing.assert_array_equal(h.loss, ref.loss)
    assert int(h.opt_state[0].count) == 23  # the NaN step did not touch the optimizer state either


def test_nan_at_the_first_step():
    p = linear_params()
    h = gc.train.fit(lambda q, b: linear_loss(q, b) * jnp.nan, p, optax.sgd(0.1), regression(), 25, progress=False)
    assert h.stopped_at == 0 and h.stop_reason == "loss is NaN at step 0" and len(h) == 0
    assert h.grad_norms["W"].shape == (0,) and "stopped" in repr(h)
    np.testing.assert_array_equal(h.params["W"], p["W"])


def test_inf_gradient_stop():
    def loss_fn(p, step):  # finite loss (0 or 1), infinite gradient at step 5: d/dx sqrt(x) at x = 0
        c = jnp.where(step == 5, jax.lax.stop_gradient(p["a"]), p["a"] - 1.0)
        return jnp.sqrt(jnp.maximum(p["a"] - c, 0.0))

    h = gc.train.fit(loss_fn, {"a": jnp.asarray(1.0)}, optax.sgd(1e-3), lambda i: jnp.asarray(i), 30, progress=False)
    assert h.stopped_at == 5 and h.stop_reason == "gradient norm is inf at step 5"
    assert len(h) == 5 and np.all(h.loss == 1.0)


def test_divergence_stops_with_finite_params():
    # gradient descent on x² with lr 1.5 doubles |x| every step until overflow
    h = gc.train.fit(lambda p, b: jnp.sum(p**2), jnp.asarray([1.0]), optax.sgd(1.5), jnp.zeros(()), 400, progress=False)
    assert h.stopped_at is not None and h.stopped_at < 400
    assert np.all(np.isfinite(np.asarray(h.params)))
    assert len(h) == h.stopped_at


def test_global_norm_clipping_caps_the_update():
    loss_fn, params, batch = stacked_problem()
    big = jax.tree.map(lambda a: 30 * a, params)  # large gradients
    h0 = gc.train.fit(loss_fn, big, optax.sgd(1.0), batch, 3, progress=False)
    h1 = gc.train.fit(
        loss_fn, big, optax.chain(optax.clip_by_global_norm(0.01), optax.sgd(1.0)), batch, 3, progress=False
    )
    np.testing.assert_allclose(h0.update_norm, h0.grad_norm, rtol=1e-5)  # sgd(1): update = -g
    assert np.all(h1.grad_norm > 0.01)
    np.testing.assert_allclose(h1.update_norm, 0.01, rtol=1e-4)  # raw grads recorded, clipped update applied
    np.testing.assert_allclose(h1.grad_norm[0], h0.grad_norm[0], rtol=1e-6)
    # value clipping: every coordinate of the update within ±0.001
    h2 = gc.train.fit(loss_fn, big, optax.chain(optax.clip(1e-3), optax.sgd(1.0)), batch, 1, progress=False)
    n_params = sum(x.size for x in jax.tree.leaves(params))
    assert h2.update_norm[0] <= 1e-3 * np.sqrt(n_params) * (1 + 1e-5)


def test_data_forms():
    x, y = regression()
    opt = optax.sgd(0.1)
    fixed = gc.train.fit(linear_loss, linear_params(), opt, (x, y), 12, progress=False)
    fn = gc.train.fit(linear_loss, linear_params(), opt, lambda i: (x, y), 12, progress=False)
    it = gc.train.fit(linear_loss, linear_params(), opt, iter([(x, y)] * 12), 12, progress=False)
    lst = gc.train.fit(linear_loss, linear_params(), opt, [(np.asarray(x), np.asarray(y))] * 12, 12, progress=False)
    for h in (fn, it, lst):
        np.testing.assert_allclose(h.loss, fixed.loss, rtol=1e-6)
    # an iterable that runs out stops cleanly
    short = gc.train.fit(linear_loss, linear_params(), opt, [(x, y)] * 7, 12, progress=False)
    assert len(short) == 7 and short.stopped_at == 7 and "ran out" in short.stop_reason
    # batches of different sizes (a ragged last batch)
    ragged = gc.train.fit(linear_loss, linear_params(), opt, [(x, y)] * 5 + [(x[:5], y[:5])], 6, progress=False)
    assert len(ragged) == 6 and ragged.stopped_at is None
    np.testing.assert_allclose(ragged.loss[:5], fixed.loss[:5], rtol=1e-6)
    # the step index reaches the data function in order
    seen = []
    gc.train.fit(linear_loss, linear_params(), opt, lambda i: seen.append(i) or (x, y), 25, progress=False)
    assert seen == list(range(25))


def test_record_false_and_progress_bar():
    h = gc.train.fit(linear_loss, linear_params(), optax.sgd(0.1), regression(), 15, record=False, progress=False)
    assert h.grad_norms == {} and len(h) == 15
    with pytest.raises(ValueError, match="record=False"):
        h.matrix()
    h2 = gc.train.fit(linear_loss, linear_params(), optax.sgd(0.1), regression(), 15, progress=True, desc="test")
    np.testing.assert_allclose(h2.loss, h.loss, rtol=1e-6)
    assert "15 steps" in repr(h2)


def test_optimizers_with_extra_args():
    x, y = regression()
    h = gc.train.fit(linear_loss, linear_params(), optax.lbfgs(), (x, y), 10, progress=False)
    assert h.loss[-1] < 1e-4 * h.loss[0]


def test_bad_inputs():
    p, batch = linear_params(), regression()
    with pytest.raises(ValueError, match="steps"):
        gc.train.fit(linear_loss, p, optax.sgd(0.1), batch, 0)
    with pytest.raises(TypeError, match="steps"):
        gc.train.fit(linear_loss, p, optax.sgd(0.1), batch, 2.5)
    with pytest.raises(TypeError, match="optimizer"):
        gc.train.fit(linear_loss, p, lambda g: g, batch, 3)
    with pytest.raises(TypeError, match="loss_fn"):
        gc.train.fit("mse", p, optax.sgd(0.1), batch, 3)
    with pytest.raises(ValueError, match="loss_fn must return a scalar"):
        gc.train.fit(lambda p, b: (b[0] @ p["W"] - b[1]) ** 2, p, optax.sgd(0.1), batch, 3)
    with pytest.raises(ValueError, match="stacked: prefix 'blocks' matches no parameter"):
        gc.train.fit(linear_loss, p, optax.sgd(0.1), batch, 3, stacked=("blocks",))
    with pytest.raises(ValueError, match="different depths"):
        gc.train.fit(
            lambda q, b: jnp.sum(q["W"]) + jnp.sum(q["b"]),
            {"W": jnp.ones((3, 2)), "b": jnp.ones((4,))},
            optax.sgd(0.1),
            batch,
            3,
            stacked=True,
        )
    with pytest.raises(ValueError, match="scalar"):
        gc.train.fit(linear_loss, p, optax.sgd(0.1), batch, 3, stacked=("b",))
    with pytest.raises(TypeError, match="stacked"):
        gc.train.fit(linear_loss, p, optax.sgd(0.1), batch, 3, stacked=(0,))
    with pytest.raises(TypeError, match="params"):
        gc.train.fit(linear_loss, {"W": jnp.ones(4, jnp.int32), "b": 0.0}, optax.sgd(0.1), batch, 3)
    with pytest.raises(TypeError, match="data"):
        gc.train.fit(linear_loss, p, optax.sgd(0.1), None, 3)
    with pytest.raises(TypeError, match="data"):
        gc.train.fit(linear_loss, p, optax.sgd(0.1), 3.0, 3)
    with pytest.raises(ValueError, match="no batches"):
        gc.train.fit(linear_loss, p, optax.sgd(0.1), [], 3)


# ------------------------------------------------------------------ interrupted and failing runs (issue 12)


def _linear_problem():
    X = jax.random.normal(KEY, (16, 3))
    Y = X @ jnp.array([1.0, -2.0, 0.5])
    loss = lambda p, b: jnp.mean((b[0] @ p["w"] - b[1]) ** 2)  # noqa: E731
    return {"w": jnp.zeros(3)}, (X, Y), loss


def _by_hand(params, batch, loss, lr, steps):
    for _ in range(steps):
        params = jax.tree_util.tree_map(lambda p, g: p - lr * g, params, jax.grad(loss)(params, batch))
    return params


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError])
def test_an_interrupted_or_failing_run_keeps_its_completed_steps(error):
    params, batch, loss = _linear_problem()

    def data(step):
        if step == 15:
            raise error("stop here")
        return batch

    if error is KeyboardInterrupt:
        h = gc.train.fit(loss, params, optax.sgd(0.1), data, steps=25, progress=False)
        assert "interrupted" in h.stop_reason
    else:
        with pytest.raises(RuntimeError, match="step 15.*stop here") as info:
            gc.train.fit(loss, params, optax.sgd(0.1), data, steps=25, progress=False)
        h = info.value.history
    assert len(h) == h.stopped_at == 15
    np.testing.assert_allclose(h.params["w"], _by_hand(params, batch, loss, 0.1, 15)["w"], rtol=1e-5, atol=1e-6)
    assert h.opt_state is not None


def test_a_batch_of_the_wrong_shape_names_the_step_and_the_leaf():
    params, (X, Y), loss = _linear_problem()
    batches = [(X, Y)] * 5 + [(X[:, :2], Y)]
    with pytest.raises(
        ValueError, match=r"data: the batch of step 5 does not fit the model: leaf '0' has shape \(16, 2\)"
    ):
        gc.train.fit(loss, params, optax.sgd(0.1), iter(batches), steps=6, progress=False)


def test_a_list_as_data_says_what_a_list_means():
    params, (X, Y), loss = _linear_problem()
    with pytest.raises(TypeError, match=r"data: a list means a sequence of batches.*data=\(X, Y\)"):
        gc.train.fit(loss, params, optax.sgd(0.1), [X, Y], steps=2, progress=False)
