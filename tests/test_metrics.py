"""gc.train.step_metrics: per-layer norms and ratios of one step against NumPy, under jit, for every framework."""
from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import gradcourse as gc
from gradcourse.metrics import natural_key, step_metrics


def _norm(x):
    return float(np.linalg.norm(np.asarray(x, np.float64).ravel()))


def _params(depth=11, seed=0):
    ks = jax.random.split(jax.random.PRNGKey(seed), depth)
    return {"layers": [{"W": jax.random.normal(k, (4, 3)), "b": jnp.full((3,), 0.5)} for k in ks]}


def loss(p, x):
    return sum(jnp.mean(jnp.tanh(x @ layer["W"] + layer["b"]) ** 2) for layer in p["layers"])


def test_values_match_numpy_and_optax_under_jit():
    p, x = _params(), jnp.ones((2, 4))
    opt = optax.adam(1e-2)
    state = opt.init(p)

    @jax.jit
    def step(p, state):
        g = jax.grad(loss)(p, x)
        u, state = opt.update(g, state, p)
        return g, u, step_metrics(g, p, u)

    g, u, m = step(p, state)
    for i in (0, 2, 10):
        W, gW, uW = p["layers"][i]["W"], g["layers"][i]["W"], u["layers"][i]["W"]
        np.testing.assert_allclose(m[f"grad_norm/layers/{i}/W"], _norm(gW), rtol=1e-5)
        np.testing.assert_allclose(m[f"grad_ratio/layers/{i}/W"], _norm(gW) / _norm(W), rtol=1e-5)
        np.testing.assert_allclose(m[f"update_ratio/layers/{i}/W"], _norm(uW) / _norm(W), rtol=1e-5)
    np.testing.assert_allclose(m["global/grad_norm"], optax.tree.norm(g), rtol=1e-5)
    np.testing.assert_allclose(m["global/update_norm"], optax.tree.norm(u), rtol=1e-5)
    assert int(m["nonfinite"]) == 0
    keys = [k for k in m if k.startswith("grad_norm/")]
    assert keys == sorted(keys, key=natural_key)
    assert keys.index("grad_norm/layers/2/W") < keys.index("grad_norm/layers/10/W")
    assert all(jnp.ndim(v) == 0 for v in m.values())


def test_nonfinite_count_and_stacked():
    p = {"blocks": {"W": jnp.ones((3, 2, 2))}, "head": jnp.ones((2,))}
    g = {"blocks": {"W": jnp.ones((3, 2, 2)).at[1, 0, :].set(jnp.nan)}, "head": jnp.array([jnp.inf, jnp.nan])}
    m = step_metrics(g, p, stacked=("blocks",))
    assert int(m["nonfinite"]) == 2  # one bad depth index of blocks/W, and the head
    assert float(m["grad_norm/blocks/W[0]"]) == pytest.approx(2.0) and np.isnan(m["grad_norm/blocks/W[1]"])
    assert "grad_norm/head" in m


def test_equinox_nnx_and_key_leaves_are_labelled_and_skipped():
    mlp = eqx.nn.MLP(3, 2, 4, 2, key=jax.random.PRNGKey(0))  # has activation functions as leaves
    params = eqx.filter(mlp, eqx.is_inexact_array)
    g = eqx.filter_grad(lambda m: jnp.sum(m(jnp.ones(3)) ** 2))(mlp)
    m = step_metrics(g, params)
    assert "grad_norm/layers/0/weight" in m and not any("activation" in k for k in m)
    np.testing.assert_allclose(m["grad_norm/layers/2/bias"], _norm(g.layers[2].bias), rtol=1e-5)

    model = nnx.Sequential(nnx.Linear(3, 4, rngs=nnx.Rngs(0)), nnx.Dropout(0.1, rngs=nnx.Rngs(1)))
    state = nnx.state(model)  # holds a PRNG key and an integer count
    grads = jax.tree_util.tree_map(jnp.ones_like, state)
    m = step_metrics(grads, state)
    assert "grad_norm/layers/0/kernel" in m and not any(k.endswith("/value") or "rngs" in k for k in m)


def test_errors():
    p = _params(2)
    with pytest.raises(ValueError, match=r"grads: .*missing"):
        step_metrics({"layers": p["layers"][:1]}, p)
    with pytest.raises(ValueError, match="stacked: prefix 'blocks'"):
        step_metrics(p, p, stacked=("blocks",))
    with pytest.raises(ValueError, match="params: expected a pytree"):
        step_metrics({}, {})
    assert gc.train.step_metrics is step_metrics


def test_layer_norms_natural_order_nnx_labels_skipped_leaves_and_filter_jit():
    import flax.linen as nn

    class Deep(nn.Module):
        @nn.compact
        def __call__(self, x):
            for _ in range(12):
                x = nn.Dense(2)(x)
            return x

    variables = Deep().init(jax.random.PRNGKey(0), jnp.ones((1, 2)))
    norms = jax.jit(gc.layer_norms)(variables)  # through jit: still natural order
    labels = [k for k in norms if k.endswith("/kernel")]
    assert labels == [f"params/Dense_{i}/kernel" for i in range(12)]
    np.testing.assert_allclose(norms["params/Dense_10/kernel"], _norm(variables["params"]["Dense_10"]["kernel"]))

    model = nnx.Sequential(nnx.Linear(3, 4, rngs=nnx.Rngs(0)), nnx.Dropout(0.1, rngs=nnx.Rngs(1)))
    norms = gc.layer_norms(nnx.state(model))  # holds a PRNG key: skipped, no "Cannot call abstract method astype"
    assert "layers/0/kernel" in norms and not any(k.endswith("/value") or k.endswith("key") for k in norms)

    mlp = eqx.nn.MLP(3, 2, 4, 2, key=jax.random.PRNGKey(0))
    drop = eqx.nn.Dropout(0.1)
    norms = eqx.filter_jit(gc.layer_norms)({"mlp": mlp, "drop": drop})  # functions and Dropout.p skipped
    assert list(norms) == [f"mlp/layers/{i}/{w}" for i in range(3) for w in ("weight", "bias")]
    np.testing.assert_allclose(norms["mlp/layers/1/weight"], _norm(mlp.layers[1].weight), rtol=1e-6)
