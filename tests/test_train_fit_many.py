"""gc.train.fit_many: R runs vmapped over fit's step give the numbers of R separate fit runs."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradcourse as gc


def _loss(p, batch):
    x, y = batch
    h = jnp.tanh(x @ p["blocks"]["W"][0])
    for W in p["blocks"]["W"][1:]:
        h = jnp.tanh(h @ W)
    return jnp.mean((h @ p["out"] - y) ** 2)


def _params(key):
    k1, k2 = jax.random.split(key)
    return {"blocks": {"W": jax.random.normal(k1, (3, 4, 4)) / 2}, "out": jax.random.normal(k2, (4, 1))}


X = jax.random.normal(jax.random.PRNGKey(9), (16, 4))
BATCH = (X, jnp.sin(X[:, :1]))
STEPS = 13  # not a multiple of the chunk: the padded last chunk must not be applied


def _stack(trees):
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *trees)


@pytest.mark.parametrize("workers", [1, 2, 3])  # 2: groups of 2 and 1 (padded to 2); 3: one run per group
def test_fit_many_equals_separate_fits_with_per_run_learning_rates(workers):
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    lrs = [1e-2, 3e-2, 1e-1]
    data = lambda t: (BATCH[0] * (1 + 0.01 * t), BATCH[1])  # noqa: E731  a different batch every step
    opt = optax.inject_hyperparams(optax.adam)(learning_rate=0.0)
    probe = lambda p, b: jnp.sum(p["out"] ** 2)  # noqa: E731
    runs = gc.train.fit_many(_loss, _stack([_params(k) for k in keys]), opt, data, STEPS, workers=workers,
                             hyperparams={"learning_rate": lrs}, probe=probe, stacked=("blocks",), progress=False)
    assert runs.interrupted is None and runs.params["out"].shape == (3, 4, 1)
    assert all(isinstance(x, jax.Array) for x in jax.tree_util.tree_leaves((runs.params, runs.opt_state)))
    assert runs.opt_state.hyperparams["learning_rate"].tolist() == pytest.approx(lrs)  # each run kept its own
    assert runs.loss.shape == (3, STEPS) and runs.grad_norms["blocks/W"].shape == (3, STEPS, 3)
    for i, (k, lr) in enumerate(zip(keys, lrs, strict=True)):
        ref = gc.train.fit(_loss, _params(k), optax.adam(lr), data, STEPS, stacked=("blocks",), progress=False)
        one = runs.run(i)
        # float32 roundoff: batched (vmap) vs unbatched matmuls, amplified by Adam's normalisation
        np.testing.assert_allclose(one.loss, ref.loss, rtol=1e-4)
        np.testing.assert_allclose(one.grad_norm, ref.grad_norm, rtol=1e-3)
        np.testing.assert_allclose(one.update_norm, ref.update_norm, rtol=1e-3)
        for label in ref.grad_norms:
            np.testing.assert_allclose(one.grad_norms[label], ref.grad_norms[label], rtol=1e-3)
            np.testing.assert_allclose(one.update_ratios[label], ref.update_ratios[label], rtol=1e-3)
        close = lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-6)  # noqa: E731
        jax.tree_util.tree_map(close, one.params, ref.params)
        assert one.stopped_at is None
        # the probe sees the parameters before each step: step 0 is the initialisation
        np.testing.assert_allclose(runs.probes[i, 0], np.sum(np.asarray(_params(k)["out"]) ** 2), rtol=1e-6)


@pytest.mark.parametrize("workers", [1, 2])
def test_fit_many_stops_only_the_diverging_run(workers):
    opt = optax.inject_hyperparams(optax.sgd)(learning_rate=0.0)
    params = _stack([_params(jax.random.PRNGKey(1))] * 2)
    runs = gc.train.fit_many(_loss, params, opt, BATCH, STEPS, hyperparams={"learning_rate": [1e-2, 1e30]},
                             progress=False, record=False, workers=workers)
    ref = gc.train.fit(_loss, _params(jax.random.PRNGKey(1)), optax.sgd(1e30), BATCH, STEPS, progress=False)
    assert runs.stopped_at[0] == -1 and runs.stopped_at[1] == ref.stopped_at
    assert np.all(np.isnan(runs.loss[1, ref.stopped_at + 1 :])) and np.all(np.isfinite(runs.loss[0]))
    assert runs.run(1).stop_reason == ref.stop_reason


def test_fit_many_bad_input():
    params = _stack([_params(jax.random.PRNGKey(1))] * 2)
    with pytest.raises(ValueError, match="hyperparams: 'lr'"):
        gc.train.fit_many(_loss, params, optax.inject_hyperparams(optax.sgd)(learning_rate=0.1), BATCH, 2,
                          hyperparams={"lr": [1, 2]}, progress=False)
    with pytest.raises(ValueError, match=r"one value per run, shape \(2,\)"):
        gc.train.fit_many(_loss, params, optax.inject_hyperparams(optax.sgd)(learning_rate=0.1), BATCH, 2,
                          hyperparams={"learning_rate": [1, 2, 3]}, progress=False)
    with pytest.raises(ValueError, match="leading run axis"):
        gc.train.fit_many(_loss, {"a": jnp.ones((2, 3)), "b": jnp.ones((3,))}, optax.sgd(0.1), BATCH, 2, progress=False)
    for bad, kind in ((0, ValueError), (1.5, TypeError), (True, TypeError)):
        with pytest.raises(kind, match="workers"):
            gc.train.fit_many(_loss, params, optax.sgd(0.1), BATCH, 2, workers=bad, progress=False)
    with pytest.raises(ValueError, match=r"workers: at most one worker per run.*R = 2"):
        gc.train.fit_many(_loss, params, optax.sgd(0.1), BATCH, 2, workers=3, progress=False)


@pytest.mark.parametrize("workers", [1, 2])
def test_fit_many_keyboard_interrupt_keeps_the_completed_steps(workers):
    """The stop button during step 15: the first chunk (steps 0-9) comes back, with the parameters after it."""
    keys = jax.random.split(jax.random.PRNGKey(2), 3)
    params = _stack([_params(k) for k in keys])
    opt = optax.inject_hyperparams(optax.sgd)(learning_rate=0.0)
    lrs = {"learning_rate": [0.05, 0.1, 0.2]}

    def data(t):
        if t == 15:
            raise KeyboardInterrupt
        return BATCH

    runs = gc.train.fit_many(_loss, params, opt, data, 30, hyperparams=lrs, progress=False, workers=workers,
                             probe=lambda p, b: jnp.sum(p["out"]))
    ref = gc.train.fit_many(_loss, params, opt, BATCH, gc.train.CHUNK, hyperparams=lrs, progress=False,
                            workers=workers, probe=lambda p, b: jnp.sum(p["out"]))
    n = gc.train.CHUNK
    assert runs.loss.shape == (3, n) and runs.probes.shape == (3, n)
    assert runs.interrupted == "interrupted (KeyboardInterrupt) at step 10; Runs hold steps 0 ... 9"
    np.testing.assert_array_equal(runs.loss, ref.loss)  # the same program on the same batches: bit for bit
    jax.tree_util.tree_map(np.testing.assert_array_equal, runs.params, ref.params)  # params after step 9
    one = runs.run(1)
    assert len(one) == n and one.stopped_at == n and "KeyboardInterrupt" in one.stop_reason


def test_fit_many_keyboard_interrupt_before_the_first_chunk_returns_nothing_trained():
    params = _stack([_params(jax.random.PRNGKey(3))] * 2)

    def data(t):
        if t == 1:
            raise KeyboardInterrupt
        return BATCH

    runs = gc.train.fit_many(_loss, params, optax.sgd(0.1), data, 5, progress=False, probe=lambda p, b: 0.0)
    assert runs.loss.shape == (2, 0) and runs.probes is None and runs.interrupted.startswith("interrupted")
    jax.tree_util.tree_map(np.testing.assert_array_equal, runs.params, params)  # nothing applied


def test_fit_many_setup_and_run_picking_compile_few_programs():
    """The optimizer state is built in one program, and ``Runs.run(i)`` picks run i of every leaf in one program
    for any i: eager per-leaf slicing compiled one program per leaf shape (notebook 09: 79 -> 48 programs)."""
    compiled = []  # programs lowered to XLA: counted whether the compile then hits the persistent cache or not

    def on_compile(event, duration, **_kw):
        if event == "/jax/core/compile/jaxpr_to_mlir_module_duration":
            compiled.append(duration)

    keys = jax.random.split(jax.random.PRNGKey(3), 4)
    params = _stack([_params(k) for k in keys])  # 2 leaves; adam's state adds 4 more, and a count
    opt = optax.inject_hyperparams(optax.adam)(learning_rate=0.0)
    jax.monitoring.register_event_duration_secs_listener(on_compile)
    try:
        runs = gc.train.fit_many(_loss, params, opt, BATCH, 3, hyperparams={"learning_rate": [0.1] * 4},
                                 progress=False)
        after_fit = len(compiled)
        picked = [runs.run(i) for i in range(4)]
        picking = len(compiled) - after_fit
    finally:
        jax.monitoring.unregister_event_duration_listener(on_compile)
    # set-up (optimizer state, one program), the training chunk, the metrics' host copy: a handful, not one per leaf
    assert after_fit <= 8, after_fit  # measured: 5 (JAX 0.10.2); one program per leaf and operation gave 17
    assert picking <= 1, picking  # params and opt_state together: one program, shared by every i
    for i, h in enumerate(picked):  # and the picking is exact
        jax.tree_util.tree_map(lambda a, b, i=i: np.testing.assert_array_equal(a, b[i]), h.params, runs.params)
