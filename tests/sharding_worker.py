"""Run by tests/test_sharding.py in a subprocess with 8 simulated CPU devices: the test starts it with
``XLA_FLAGS=--xla_force_host_platform_device_count=8`` (which must be set before JAX starts; importing this
module for its ``CHECKS`` names changes nothing).

Prints one JSON line: check name -> "ok" or the failure message. Every check compares the values on a
mesh with the one-device values of the same computation, and that the output keeps the input's sharding.
"""
from __future__ import annotations

import json
import os
import sys
import traceback

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import gradcourse as gc  # noqa: E402

KEY = jax.random.PRNGKey(0)
WIDTH, HIDDEN, BATCH = 16, 32, 32


def mlp_params():
    k1, k2, k3 = jax.random.split(KEY, 3)
    return {
        "W1": jax.random.normal(k1, (WIDTH, HIDDEN)) / np.sqrt(WIDTH),
        "a": 1.0 + 0.1 * jax.random.normal(k2, (HIDDEN,)),
        "w3": jax.random.normal(k3, (HIDDEN,)) / np.sqrt(HIDDEN),
    }


SHARD = {"W1": P(None, "d"), "a": P("d"), "w3": P("d")}
"""Model sharding: the hidden units split over the 8 devices (a column-parallel layer, per-unit scales, a reduction)."""


def loss(p, x):
    h = gc.tap(jax.nn.relu(x @ p["W1"]), "h1")
    h = gc.tap(jnp.tanh(h * p["a"]), "h2")
    return jnp.mean(jnp.sum(h * p["w3"], axis=-1) ** 2)


def x_batch():
    return jax.random.normal(jax.random.PRNGKey(1), (BATCH, WIDTH))


def close(a, b, what):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-5, atol=1e-6, err_msg=what)


def spec(a):
    return tuple(a.sharding.spec) if isinstance(a.sharding, NamedSharding) else None


def check_capture(axis_type, mode, jit):
    """Data-parallel (batch split over 8 devices) or model-sharded (hidden units split) capture."""
    p, x = mlp_params(), x_batch()
    ref = gc.capture(loss, p, x)
    mesh = jax.make_mesh((8,), ("d",), axis_types=(axis_type,))
    with jax.set_mesh(mesh):
        if mode == "data":
            xs = jax.device_put(x, NamedSharding(mesh, P("d")))
            ps = jax.device_put(p, NamedSharding(mesh, P()))
            want = ("d",)
        else:
            xs = jax.device_put(x, NamedSharding(mesh, P()))
            ps = {k: jax.device_put(v, NamedSharding(mesh, SHARD[k])) for k, v in p.items()}
            want = (None, "d")
        f = lambda p, x: gc.capture(loss, p, x)
        c = jax.jit(f)(ps, xs) if jit else f(ps, xs)
        for n in ("h1", "h2"):
            close(c.acts[n], ref.acts[n], f"acts {n}")
            close(c.grads[n], ref.grads[n], f"grads {n}")
            for what, a in (("acts", c.acts[n]), ("grads", c.grads[n])):
                got = spec(a)
                if got is None or tuple(s for s in got if s is not None) != tuple(s for s in want if s is not None):
                    raise AssertionError(f"{what}[{n}] sharding {a.sharding} does not keep {want}")
        close(c.value, ref.value, "value")


def check_step_metrics(axis_type):
    p, x = mlp_params(), x_batch()
    g = jax.grad(loss)(p, x)
    ref = gc.train.step_metrics(g, p)
    mesh = jax.make_mesh((8,), ("d",), axis_types=(axis_type,))
    with jax.set_mesh(mesh):
        ps = {k: jax.device_put(v, NamedSharding(mesh, SHARD[k])) for k, v in p.items()}
        xs = jax.device_put(x, NamedSharding(mesh, P()))
        m = jax.jit(lambda p, x: gc.train.step_metrics(jax.grad(loss)(p, x), p))(ps, xs)
    for k in ref:
        close(m[k], ref[k], k)


def check_health(axis_type):
    p, x = mlp_params(), x_batch()
    ref = gc.health_report(loss, p, x)
    mesh = jax.make_mesh((8,), ("d",), axis_types=(axis_type,))
    with jax.set_mesh(mesh):
        xs = jax.device_put(x, NamedSharding(mesh, P("d")))
        r = gc.health_report(loss, p, xs)
    assert r.findings == ref.findings, (r.findings, ref.findings)
    for a, b in zip(r.rows, ref.rows, strict=True):
        close(a["grad_rms"], b["grad_rms"], a["name"])


def check_fit(axis_type):
    """gc.train.fit on model-sharded parameters (a reshape in the sum of squares used to fail here)."""
    import optax

    p, x = mlp_params(), x_batch()
    plain = lambda p, x: loss(p, x)
    ref = gc.train.fit(plain, p, optax.adam(1e-2), x, 12, progress=False)
    mesh = jax.make_mesh((8,), ("d",), axis_types=(axis_type,))
    with jax.set_mesh(mesh):
        ps = {k: jax.device_put(v, NamedSharding(mesh, SHARD[k])) for k, v in p.items()}
        xs = jax.device_put(x, NamedSharding(mesh, P()))
        h = gc.train.fit(plain, ps, optax.adam(1e-2), xs, 12, progress=False)
    close(h.loss, ref.loss, "loss")
    for k in ref.grad_norms:
        close(h.grad_norms[k], ref.grad_norms[k], k)
    for k in p:
        close(h.params[k], ref.params[k], k)
        if spec(h.params[k]) is None or tuple(s for s in spec(h.params[k]) if s) != tuple(s for s in SHARD[k] if s):
            raise AssertionError(f"params[{k}] came back with {h.params[k].sharding}, not {SHARD[k]}")


def check_backward(axis_type, stacked):
    """gc.backward on a data-parallel batch: ∂L/∂h_l keeps the batch sharding (it used to come back replicated,
    and a stacked model failed in the concatenation with ∂L/∂x)."""
    ws = [jax.random.normal(k, (WIDTH, WIDTH)) / np.sqrt(WIDTH) for k in jax.random.split(KEY, 3)]
    model = (gc.Stacked(lambda w, h: jnp.tanh(h @ w), jnp.stack(ws)) if stacked
             else [lambda h, w=w: jnp.tanh(h @ w) for w in ws])
    x = x_batch()
    mse = lambda h: jnp.mean(h**2)
    ref = gc.backward(model, x, mse)
    mesh = jax.make_mesh((8,), ("d",), axis_types=(axis_type,))
    with jax.set_mesh(mesh):
        xs = jax.device_put(x, NamedSharding(mesh, P("d")))
        out = gc.backward(model, xs, mse)
    want = (None, "d") if stacked else ("d",)
    for l in range(4):
        close(out[l], ref[l], f"dL/dh_{l}")
        a = out if stacked else out[l]
        if tuple(s for s in spec(a) if s) != tuple(s for s in want if s) or spec(a)[: len(want)] != want:
            raise AssertionError(f"dL/dh_{l} has sharding {a.sharding}, expected the batch axis on 'd'")


CHECKS = {
    "capture_data_explicit": lambda: check_capture(AxisType.Explicit, "data", False),
    "capture_data_explicit_jit": lambda: check_capture(AxisType.Explicit, "data", True),
    "capture_data_auto_jit": lambda: check_capture(AxisType.Auto, "data", True),
    "capture_model_explicit": lambda: check_capture(AxisType.Explicit, "model", False),
    "capture_model_auto_jit": lambda: check_capture(AxisType.Auto, "model", True),
    "step_metrics_explicit": lambda: check_step_metrics(AxisType.Explicit),
    "step_metrics_auto": lambda: check_step_metrics(AxisType.Auto),
    "health_report_explicit": lambda: check_health(AxisType.Explicit),
    "fit_model_sharded_explicit": lambda: check_fit(AxisType.Explicit),
    "fit_model_sharded_auto": lambda: check_fit(AxisType.Auto),
    "backward_list_explicit": lambda: check_backward(AxisType.Explicit, False),
    "backward_stacked_explicit": lambda: check_backward(AxisType.Explicit, True),
    "backward_stacked_auto": lambda: check_backward(AxisType.Auto, True),
}


if __name__ == "__main__":
    assert len(jax.devices()) == 8, jax.devices()
    results = {}
    for name, check in CHECKS.items():
        try:
            check()
            results[name] = "ok"
        except Exception as e:  # report every check, not only the first failure
            results[name] = f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=3)}"
    print(json.dumps(results))
