"""gc.clipping: per-example gradients, an outlier's influence and train_seeds, against independent references."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradcourse as gc


def linear_loss(p, batch):
    x, y = batch
    return jnp.mean((x @ p["w"] + p["b"] - y) ** 2)


def make_batch(key, n=6, d=3):
    kx, ky = jax.random.split(key)
    return jax.random.normal(kx, (n, d)), jax.random.normal(ky, (n,))


PARAMS = {"w": jnp.array([0.3, -0.2, 0.5]), "b": jnp.array(0.1)}


def test_per_example_grads_match_a_loop_of_jax_grad_and_average_to_the_batch_gradient():
    x, y = make_batch(jax.random.PRNGKey(0))
    each = gc.clipping.per_example_grads(linear_loss, PARAMS, (x, y))
    for b in range(x.shape[0]):
        ref = jax.grad(linear_loss)(PARAMS, (x[b:b + 1], y[b:b + 1]))
        np.testing.assert_allclose(each["w"][b], ref["w"], rtol=1e-6)
        np.testing.assert_allclose(each["b"][b], ref["b"], rtol=1e-6)
    # closed form: d/dw (x.w + b - y)^2 = 2 r x
    r = x @ PARAMS["w"] + PARAMS["b"] - y
    np.testing.assert_allclose(each["w"], 2 * r[:, None] * x, rtol=1e-5)
    full = jax.grad(linear_loss)(PARAMS, (x, y))
    np.testing.assert_allclose(each["w"].mean(0), full["w"], rtol=1e-5)


def reference_updates(batch, c_batch, c_example):
    """The three updates by hand with NumPy: mean gradient, batch-clipped mean, mean of per-example clipped."""
    x, y = (np.asarray(a, np.float64) for a in batch)
    r = x @ np.asarray(PARAMS["w"], np.float64) + float(PARAMS["b"]) - y
    g_each = np.concatenate([2 * r[:, None] * x, 2 * r[:, None]], axis=1)   # (B, d + 1): w then b
    g = g_each.mean(0)
    clipped = g_each * np.minimum(1.0, c_example / np.linalg.norm(g_each, axis=1))[:, None]
    return {"no clipping": g, "batch clipping": g * min(1.0, c_batch / np.linalg.norm(g)),
            "per-example clipping": clipped.mean(0)}, np.linalg.norm(g_each, axis=1)


def test_outlier_influence_matches_a_numpy_reference_and_the_2C_over_B_bound():
    clean = make_batch(jax.random.PRNGKey(1))
    bad = (clean[0], clean[1].at[0].add(40.0))
    c_batch, c_example = 0.5, 0.8
    inf = gc.clipping.outlier_influence(linear_loss, PARAMS, bad, clean, batch_clip=c_batch, example_clip=c_example)
    u_bad, norms = reference_updates(bad, c_batch, c_example)
    u_good, _ = reference_updates(clean, c_batch, c_example)
    np.testing.assert_allclose(inf.example_norms, norms, rtol=1e-5)
    for name in u_bad:
        d = np.linalg.norm(u_bad[name] - u_good[name])
        assert inf.change[name] == pytest.approx(d, rel=1e-4)
        assert inf.shift[name] == pytest.approx(d / np.linalg.norm(u_good[name]), rel=1e-4)
        cos = u_bad[name] @ u_good[name] / (np.linalg.norm(u_bad[name]) * np.linalg.norm(u_good[name]))
        assert inf.cosine[name] == pytest.approx(cos, abs=1e-5)
        assert inf.norm[name] == pytest.approx(np.linalg.norm(u_bad[name]), rel=1e-4)
    assert inf.change["per-example clipping"] <= 2 * c_example / len(norms) * (1 + 1e-5)
    assert inf.change["no clipping"] > inf.change["per-example clipping"]
    assert list(inf.shift) == ["no clipping", "batch clipping", "per-example clipping"]


def test_outlier_influence_rejects_bad_thresholds_and_mismatched_batches():
    clean = make_batch(jax.random.PRNGKey(1))
    with pytest.raises(ValueError, match="batch_clip"):
        gc.clipping.outlier_influence(linear_loss, PARAMS, clean, clean, batch_clip=0.0, example_clip=1.0)
    with pytest.raises(ValueError, match="clean_batch"):
        gc.clipping.outlier_influence(linear_loss, PARAMS, clean, clean[0], batch_clip=1.0, example_clip=1.0)
    with pytest.raises(TypeError, match="loss_fn"):
        gc.clipping.outlier_influence(None, PARAMS, clean, clean, batch_clip=1.0, example_clip=1.0)


def init(key):
    return {"w": 0.1 * jax.random.normal(key, (3,)), "b": jnp.array(0.0)}, {"data": key}


def batch(task, t):
    return make_batch(jax.random.fold_in(task["data"], t))


def manual_run(key, optimizer, clip, example_clip, steps):
    """One seed trained by a plain Python loop of optax calls (the reference for train_seeds)."""
    params, task = init(key)
    state = optimizer.init(params)
    losses, shares = [], []
    for t in range(steps):
        b = batch(task, jnp.asarray(t))
        losses.append(float(linear_loss(params, b)))
        if example_clip is None:
            g = jax.grad(linear_loss)(params, b)
            g_used = g if clip is None else clip.update(g, clip.init(params), params)[0]
        else:
            each = gc.clipping.per_example_grads(linear_loss, params, b)
            norms = jnp.sqrt((each["w"] ** 2).sum(1) + each["b"] ** 2)
            scale = jnp.minimum(1.0, example_clip / norms)
            g_used = {"w": (each["w"] * scale[:, None]).mean(0), "b": (each["b"] * scale).mean(0)}
            shares.append(float(jnp.mean(norms > example_clip)))
        u, state = optimizer.update(g_used, state, params)
        params = optax.apply_updates(params, u)
    return np.array(losses), params, shares


def test_train_seeds_equals_a_python_loop_per_seed_and_method():
    keys = jax.random.split(jax.random.PRNGKey(3), 2)
    sgd = optax.sgd(0.05, momentum=0.9)
    methods = {"plain": gc.clipping.Method(sgd),
               "norm": gc.clipping.Method(sgd, clip=optax.clip_by_global_norm(0.3)),
               "example": gc.clipping.Method(optax.adam(0.01), example_clip=0.5)}
    runs = gc.clipping.train_seeds(linear_loss, init, batch, methods, 7, keys,
                                   evaluate=lambda p, task: jnp.sum(p["w"] ** 2))
    for name, m in methods.items():
        assert runs[name].loss.shape == (2, 7) and runs[name].final.shape == (2,)
        for i, k in enumerate(keys):
            loss, params, shares = manual_run(k, m.optimizer, m.clip, m.example_clip, 7)
            np.testing.assert_allclose(runs[name].loss[i], loss, rtol=2e-5, atol=1e-7)
            np.testing.assert_allclose(runs[name].params["w"][i], params["w"], rtol=2e-5, atol=1e-7)
            assert runs[name].final[i] == pytest.approx(float(jnp.sum(params["w"] ** 2)), rel=1e-4)
            if m.example_clip is not None:
                np.testing.assert_allclose(runs[name].clipped[i], shares)
    assert np.all(runs["plain"].clipped == 0)
    # global-norm clipping changes every entry exactly on the steps where the raw norm exceeds c
    np.testing.assert_array_equal(runs["norm"].clipped > 0, runs["norm"].grad_norm > 0.3)
    assert "2 seeds x 7 steps" in runs["norm"].summary("norm")


def test_train_seeds_records_probes_of_every_batch_and_dict_evaluations():
    keys = jax.random.split(jax.random.PRNGKey(4), 3)
    runs = gc.clipping.train_seeds(linear_loss, init, batch, {"a": gc.clipping.Method(optax.sgd(0.1))}, 5, keys,
                                   evaluate=lambda p, task: {"w2": jnp.sum(p["w"] ** 2), "b": p["b"]},
                                   probe=lambda b: b[1][0])
    r = runs["a"]
    assert r.probes.shape == (3, 5) and set(r.final) == {"w2", "b"} and r.final["b"].shape == (3,)
    for i, k in enumerate(keys):
        task = init(k)[1]
        np.testing.assert_allclose(r.probes[i], [float(batch(task, jnp.asarray(t))[1][0]) for t in range(5)], rtol=1e-6)
    np.testing.assert_allclose(r.final["b"], np.asarray(r.params["b"]), rtol=1e-6)
    line = r.summary("a", timing=False)
    assert "median final w2" in line and " in " not in line.split(";")[0]


def test_train_seeds_rejects_bad_methods():
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    with pytest.raises(TypeError, match="Method"):
        gc.clipping.train_seeds(linear_loss, init, batch, {"x": optax.sgd(0.1)}, 3, keys)
    with pytest.raises(ValueError, match="not both"):
        gc.clipping.train_seeds(linear_loss, init, batch,
                                {"x": gc.clipping.Method(optax.sgd(0.1), optax.clip(1.0), 1.0)}, 3, keys)
    with pytest.raises(ValueError, match="steps"):
        gc.clipping.train_seeds(linear_loss, init, batch, {"x": gc.clipping.Method(optax.sgd(0.1))}, 0, keys)
