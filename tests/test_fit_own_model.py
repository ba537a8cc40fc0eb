"""gc.train.fit on your own model: Equinox and Flax NNX modules, has_aux, a state channel, resume, callbacks.

References are independent training loops written with optax (and ``nnx.Optimizer`` for NNX).
"""
from __future__ import annotations

import equinox as eqx
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import gradcourse as gc

KEY = jax.random.PRNGKey(0)
X = jax.random.normal(jax.random.PRNGKey(1), (16, 4))
Y = jnp.sin(X[:, :1])


def test_equinox_module_trains_like_an_optax_loop():
    model = eqx.nn.MLP(4, 1, 8, 2, key=KEY)  # holds activation functions as leaves
    loss = lambda m, b: jnp.mean((jax.vmap(m)(b[0]) - b[1]) ** 2)
    opt = optax.adam(1e-2)
    h = gc.train.fit(loss, model, opt, (X, Y), 20, progress=False)
    assert isinstance(h.params, eqx.nn.MLP) and h.params.activation is model.activation
    assert "layers/0/weight" in h.grad_norms

    params, static = eqx.partition(model, eqx.is_inexact_array)
    state = opt.init(params)
    for _ in range(20):
        g = jax.grad(lambda p: loss(eqx.combine(p, static), (X, Y)))(params)
        u, state = opt.update(g, state, params)
        params = optax.apply_updates(params, u)
    np.testing.assert_allclose(h.params.layers[1].weight, params.layers[1].weight, rtol=1e-4, atol=1e-6)


class BNNet(nnx.Module):
    def __init__(self, rngs):
        self.lin = nnx.Linear(4, 8, rngs=rngs)
        self.bn = nnx.BatchNorm(8, rngs=rngs)
        self.out = nnx.Linear(8, 1, rngs=rngs)

    def __call__(self, x):
        return self.out(jax.nn.relu(self.bn(self.lin(x))))


def test_nnx_module_with_batchnorm_matches_nnx_optimizer_and_is_updated_in_place():
    loss = lambda m, b: jnp.mean((m(b[0]) - b[1]) ** 2)
    model, reference = BNNet(nnx.Rngs(0)), BNNet(nnx.Rngs(0))
    h = gc.train.fit(loss, model, optax.sgd(0.05), (X, Y), 12, progress=False)
    assert h.params is model and "lin/kernel" in h.grad_norms

    opt = nnx.Optimizer(reference, optax.sgd(0.05), wrt=nnx.Param)
    for _ in range(12):
        grads = nnx.grad(loss)(reference, (X, Y))
        opt.update(reference, grads)
    np.testing.assert_allclose(model.lin.kernel[...], reference.lin.kernel[...], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(model.bn.mean[...], reference.bn.mean[...], rtol=1e-4, atol=1e-6)  # batch statistics
    assert not np.allclose(model.bn.mean[...], 0.0)


def test_nnx_dropout_rng_count_advances():
    class Drop(nnx.Module):
        def __init__(self):
            self.lin = nnx.Linear(4, 1, rngs=nnx.Rngs(0))
            self.drop = nnx.Dropout(0.2, rngs=nnx.Rngs(1))

        def __call__(self, x):
            return self.lin(self.drop(x))

    m = Drop()
    gc.train.fit(lambda m, b: jnp.mean((m(b[0]) - b[1]) ** 2), m, optax.sgd(0.01), (X, Y), 7, progress=False)
    assert int(m.drop.rngs.count[...]) == 7


def test_has_aux_state_channel_resume_and_callback():
    params = {"w": jnp.zeros((4, 1))}

    def loss(p, s, b):  # a running mean of the inputs as state (a BatchNorm statistic), the residual as aux
        r = b[0] @ p["w"] - b[1]
        new_s = 0.9 * s + 0.1 * jnp.mean(b[0], axis=0)
        return jnp.mean(r**2), (new_s, {"max_residual": jnp.max(jnp.abs(r))})

    seen = []
    h = gc.train.fit(loss, params, optax.sgd(0.1), (X, Y), 20, has_aux=True, state=jnp.zeros(4), progress=False,
                     callback=lambda step, m: seen.append((step, m["loss"], m["aux"]["max_residual"])),
                     callback_every=5)
    np.testing.assert_allclose(h.state, (1 - 0.9**20) * jnp.mean(X, axis=0), rtol=1e-5)  # closed form
    assert h.aux["max_residual"].shape == (20,)
    w = jnp.zeros((4, 1))
    for t in range(20):  # plain SGD by hand
        r = X @ w - Y
        np.testing.assert_allclose(h.aux["max_residual"][t], jnp.max(jnp.abs(r)), rtol=1e-5)
        w = w - 0.1 * jax.grad(lambda w: jnp.mean((X @ w - Y) ** 2))(w)
    assert [s for s, _, _ in seen] == [4, 9, 14, 19]
    assert all(np.isclose(loss_, h.loss[s]) for s, loss_, _ in seen)

    opt = optax.adam(1e-2)
    plain = lambda p, b: jnp.mean((b[0] @ p["w"] - b[1]) ** 2)
    whole = gc.train.fit(plain, params, opt, (X, Y), 20, progress=False)
    first = gc.train.fit(plain, params, opt, (X, Y), 10, progress=False)
    rest = gc.train.fit(plain, first.params, opt, (X, Y), 10, opt_state=first.opt_state, progress=False)
    np.testing.assert_allclose(rest.params["w"], whole.params["w"], rtol=1e-5, atol=1e-7)


def test_bad_input():
    class L(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Dense(1)(x)

    with pytest.raises(TypeError, match="Linen module holds no parameters"):
        gc.train.fit(lambda p, b: 0.0, L(), optax.sgd(0.1), (X, Y), 2, progress=False)
    with pytest.raises(ValueError, match="opt_state: its structure"):
        gc.train.fit(lambda p, b: jnp.sum(p["w"]), {"w": jnp.ones(2)}, optax.adam(0.1), X, 2,
                     opt_state=optax.sgd(0.1).init({"w": jnp.ones(2)}), progress=False)
    with pytest.raises(ValueError, match="has_aux=True it must return"):
        gc.train.fit(lambda p, b: jnp.sum(p["w"]), {"w": jnp.ones(2)}, optax.sgd(0.1), X, 2, has_aux=True,
                     progress=False)
