"""gc.tap and gc.capture: values and backward signals against hand-written zero-perturbation references.

The reference for ∂L/∂h at a point is always computed independently: the model's forward pass is
written out by hand with an explicit perturbation e added at that point, and ``jax.grad`` is taken
with respect to e at e = 0 (the trick of ``gc.backward``, done without gradcourse).
"""
from __future__ import annotations

import equinox as eqx
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import gradcourse as gc

KEY = jax.random.PRNGKey(0)
TOL = dict(rtol=1e-5, atol=1e-6)


def _ws(depth=3, width=6, scale=0.8, key=KEY):
    return [jax.random.normal(k, (width, width)) * scale / np.sqrt(width) for k in jax.random.split(key, depth)]


def _x(batch=5, width=6):
    return jax.random.normal(jax.random.PRNGKey(1), (batch, width))


def tapped_loss(ws, x):
    for i, w in enumerate(ws):
        x = gc.tap(jnp.tanh(x @ w), f"h{i}")
    return jnp.mean(x**2)


def reference(ws, x):
    """(hs, dL/dh) by hand: explicit perturbations e_i at every layer, jax.grad at e = 0."""
    def loss(es):
        h = x
        for w, e in zip(ws, es, strict=True):
            h = jnp.tanh(h @ w) + e
        return jnp.mean(h**2)

    hs, h = [], x
    for w in ws:
        h = jnp.tanh(h @ w)
        hs.append(h)
    return hs, jax.grad(loss)([jnp.zeros_like(h) for h in hs])


# --------------------------------------------------------------------------- plain JAX


def test_tap_is_identity_outside_capture_and_under_transforms():
    x = _x()
    assert gc.tap(x, "a") is x
    f = lambda x: jnp.sum(gc.tap(jnp.sin(x), "s"))
    np.testing.assert_allclose(jax.jit(jax.grad(f))(x), jnp.cos(x), **TOL)
    np.testing.assert_allclose(jax.vmap(jax.grad(f))(x), jnp.cos(x), **TOL)


def test_capture_plain_jax_matches_reference():
    ws, x = _ws(), _x()
    c = gc.capture(tapped_loss, ws, x)
    hs, gs = reference(ws, x)
    assert c.names == ["h0", "h1", "h2"]
    assert set(c.kinds.values()) == {"tap"}
    np.testing.assert_allclose(c.value, tapped_loss(ws, x), **TOL)
    for i in range(3):
        np.testing.assert_allclose(c.acts[f"h{i}"], hs[i], **TOL)
        np.testing.assert_allclose(c.grads[f"h{i}"], gs[i], **TOL)


def test_capture_under_jit_is_a_pytree_in_execution_order():
    ws, x = _ws(depth=12), _x()
    f = lambda ws, x: tapped_loss(ws, x)
    c = jax.jit(lambda ws, x: gc.capture(f, ws, x))(ws, x)
    assert isinstance(c, gc.Capture)
    assert c.names == [f"h{i}" for i in range(12)]  # h10 after h9, not after h1
    _, gs = reference(ws, x)
    np.testing.assert_allclose(c.grads["h11"], gs[11], **TOL)


def test_capture_matches_gc_backward_on_a_layer_list():
    ws, x = _ws(depth=4), _x()
    layers = [lambda h, w=w: jnp.tanh(h @ w) for w in ws]
    loss = lambda h: jnp.mean(h**2)
    expected = gc.backward(layers, x, loss)

    def fn(x):
        h = gc.tap(x, "x")
        for i, f in enumerate(layers):
            h = gc.tap(f(h), f"h{i + 1}")
        return loss(h)

    c = gc.capture(fn, x)
    for l in range(5):
        np.testing.assert_allclose(c.grads[c.names[l]], expected[l], **TOL)


def test_tap_in_scan_body_stacks_one_entry_per_iteration():
    ws, x = _ws(depth=4), _x()

    def loss(W, x):
        def body(h, w):
            h = gc.tap(jnp.tanh(h @ w), "block")
            return h, None

        h, _ = jax.lax.scan(body, x, W)
        return jnp.mean(h**2)

    c = gc.capture(loss, jnp.stack(ws), x)
    hs, gs = reference(ws, x)
    assert c.acts["block"].shape == (4, *x.shape) and c.axes["block"] == ("scan",)
    np.testing.assert_allclose(c.acts["block"], jnp.stack(hs), **TOL)
    np.testing.assert_allclose(c.grads["block"], jnp.stack(gs), **TOL)


def test_tap_in_nested_scan_and_vmap():
    ws, x = _ws(depth=4), _x()
    W = jnp.stack(ws).reshape(2, 2, *ws[0].shape)

    def loss(W, x):
        def per_example(xi):
            def outer(h, w2):
                def inner(h, w):
                    return gc.tap(jnp.tanh(h @ w), "layer"), None

                return jax.lax.scan(inner, h, w2)[0], None

            return jax.lax.scan(outer, xi, W)[0]

        return jnp.mean(jax.vmap(per_example)(x) ** 2)

    c = gc.capture(loss, W, x)
    hs, gs = reference(ws, x)
    # vmap moves the batch axis to the front; then the two scan axes
    assert c.acts["layer"].shape == (x.shape[0], 2, 2, x.shape[1])
    assert c.axes["layer"] == ("vmap", "scan", "scan")
    got = c.grads["layer"].reshape(x.shape[0], 4, -1).transpose(1, 0, 2)
    np.testing.assert_allclose(got, jnp.stack(gs), **TOL)


def test_has_aux_and_forward_only():
    ws, x = _ws(), _x()
    c = gc.capture(lambda ws, x: (tapped_loss(ws, x), {"n": 3}), ws, x, has_aux=True)
    assert c.aux == {"n": 3} and c.grads is not None
    c2 = gc.capture(tapped_loss, ws, x, grads=False)
    assert c2.grads is None
    np.testing.assert_allclose(c2.acts["h2"], c.acts["h2"], **TOL)
    # a non-scalar fn: activations only
    c3 = gc.capture(lambda ws, x: jnp.tanh(gc.tap(x @ ws[0], "z")), ws, x)
    assert c3.grads is None and c3.acts["z"].shape == x.shape


# --------------------------------------------------------------------------- frameworks


class EqxMLP(eqx.Module):
    layers: list
    activation: callable

    def __init__(self, key, depth=3, width=6):
        self.layers = [eqx.nn.Linear(width, width, key=k) for k in jax.random.split(key, depth)]
        self.activation = jnp.tanh

    def __call__(self, x):
        for layer in self.layers:
            x = self.activation(layer(x))
        return x


def _dense_reference(Ws, bs, x):
    """Outputs of every Linear (pre-activation) and dL/d(that output), by hand, for loss = mean(tanh(...)^2)."""
    def loss(es):
        h = x
        for W, b, e in zip(Ws, bs, es, strict=True):
            h = jnp.tanh(h @ W + b + e)
        return jnp.mean(h**2)

    zs, h = [], x
    for W, b in zip(Ws, bs, strict=True):
        z = h @ W + b
        zs.append(z)
        h = jnp.tanh(z)
    return zs, jax.grad(loss)([jnp.zeros_like(z) for z in zs])


def test_equinox_module_paths_and_backward_signal():
    m, x = EqxMLP(KEY), _x()
    loss = lambda m, x: jnp.mean(jax.vmap(m)(x) ** 2)  # the usual Equinox pattern: an unbatched model, vmapped
    c = gc.capture(loss, m, x, model=m)
    assert c.names == ["layers/0", "layers/1", "layers/2"]
    zs, gs = _dense_reference([l.weight.T for l in m.layers], [l.bias for l in m.layers], x)
    for i in range(3):
        np.testing.assert_allclose(c.acts[f"layers/{i}"], zs[i], **TOL)
        np.testing.assert_allclose(c.grads[f"layers/{i}"], gs[i], **TOL)
    assert not hasattr(eqx.nn.Linear.__dict__["__call__"], "_gradcourse_hook")  # hooks removed
    # under eqx.filter_jit, passing the model as an argument
    cj = eqx.filter_jit(lambda m, x: gc.capture(loss, m, x, model=m))(m, x)
    np.testing.assert_allclose(cj.grads["layers/0"], gs[0], **TOL)


def test_equinox_where_filter_and_shared_module():
    m, x = EqxMLP(KEY), _x()

    def loss(m, x):
        y = jax.vmap(m)(x)
        return jnp.mean(jax.vmap(m.layers[0])(y) ** 2)  # layers/0 called a second time

    c = gc.capture(loss, m, x, model=m, where=lambda path, mod: path == "layers/0")
    assert c.names == ["layers/0", "layers/0@1"]


class NnxMLP(nnx.Module):
    def __init__(self, rngs, depth=3, width=6):
        self.layers = nnx.List([nnx.Linear(width, width, rngs=rngs) for _ in range(depth)])

    def __call__(self, x):
        for layer in self.layers:
            x = jnp.tanh(layer(x))
        return x


def test_nnx_module_paths_and_backward_signal():
    m, x = NnxMLP(nnx.Rngs(0)), _x()
    c = gc.capture(lambda m, x: jnp.mean(m(x) ** 2), m, x, model=m)
    assert c.names == ["layers/0", "layers/1", "layers/2"]
    zs, gs = _dense_reference([l.kernel[...] for l in m.layers], [l.bias[...] for l in m.layers], x)
    for i in range(3):
        np.testing.assert_allclose(c.acts[f"layers/{i}"], zs[i], **TOL)
        np.testing.assert_allclose(c.grads[f"layers/{i}"], gs[i], **TOL)


def test_nnx_state_written_once_not_by_the_abstract_run():
    class Noisy(nnx.Module):
        def __init__(self):
            self.lin = nnx.Linear(6, 6, rngs=nnx.Rngs(0))
            self.drop = nnx.Dropout(0.5, rngs=nnx.Rngs(1))

        def __call__(self, x):
            return self.drop(self.lin(x))

    m, x = Noisy(), _x()
    before = int(m.drop.rngs.count[...])
    gc.capture(lambda m, x: jnp.mean(m(x) ** 2), m, x, model=m)
    assert int(m.drop.rngs.count[...]) == before + 1  # the real run only, no leaked tracer
    assert isinstance(m.drop.rngs.count[...], jax.Array)


class LinenMLP(nn.Module):
    depth: int = 12

    @nn.compact
    def __call__(self, x):
        for _ in range(self.depth):
            x = jnp.tanh(nn.Dense(x.shape[-1])(x))
        return x


def test_linen_module_paths_natural_order_and_backward_signal():
    model, x = LinenMLP(), _x()
    variables = model.init(KEY, x)
    c = gc.capture(lambda v, x: jnp.mean(model.apply(v, x) ** 2), variables, x, model=model)
    assert c.names == [f"Dense_{i}" for i in range(12)]
    p = variables["params"]
    Ws, bs = [p[f"Dense_{i}"]["kernel"] for i in range(12)], [p[f"Dense_{i}"]["bias"] for i in range(12)]
    zs, gs = _dense_reference(Ws, bs, x)
    for i in (0, 5, 11):
        np.testing.assert_allclose(c.acts[f"Dense_{i}"], zs[i], **TOL)
        np.testing.assert_allclose(c.grads[f"Dense_{i}"], gs[i], **TOL)


# --------------------------------------------------------------------------- bad input


def test_errors_name_the_problem_and_the_fix():
    ws, x = _ws(), _x()
    with pytest.raises(ValueError, match=r"no gc.tap ran.*model="):
        gc.capture(lambda ws, x: jnp.sum(x @ ws[0]), ws, x)
    m = EqxMLP(KEY)
    loss = lambda m, x: jnp.mean(jax.vmap(m)(x) ** 2)
    with pytest.raises(ValueError, match=r"where: matched none.*layers/0"):
        gc.capture(loss, m, x, model=m, where=lambda p, mod: p.startswith("blocks"))
    with pytest.raises(ValueError, match=r"scalar.*grads=False"):
        gc.capture(lambda ws, x: gc.tap(x @ ws[0], "z"), ws, x, grads=True)
    with pytest.raises(TypeError, match=r"model: expected an Equinox module.*gc.backward"):
        gc.capture(tapped_loss, ws, x, model=[jnp.tanh])
    with pytest.raises(TypeError, match=r"model: expected an Equinox module"):
        gc.capture(tapped_loss, ws, x, model={"W": ws[0]})
    with pytest.raises(ValueError, match=r"'h' is used twice"):
        gc.capture(lambda x: jnp.sum(gc.tap(gc.tap(x, "h") * 2, "h")), x)
    with pytest.raises(TypeError, match=r"name: expected a non-empty str"):
        gc.tap(x, 3)
    with pytest.raises(ValueError, match=r"rebuilt inside fn"):
        params, static = eqx.partition(m, eqx.is_array)
        gc.capture(lambda p, x: loss(eqx.combine(p, static), x), params, x, model=m)
    pre_vmapped = jax.vmap(lambda xi: gc.tap(jnp.tanh(xi), "t"))  # built before the capture started
    with pytest.raises(ValueError, match=r"created before gc.capture"):
        gc.capture(lambda x: jnp.sum(pre_vmapped(x)), x)


def test_hooks_are_removed_even_when_fn_raises():
    m, x = EqxMLP(KEY), _x()

    def bad(m, x):
        jax.vmap(m)(x)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        gc.capture(bad, m, x, model=m)
    assert not hasattr(eqx.nn.Linear.__dict__["__call__"], "_gradcourse_hook")
    assert jax.vmap.__module__.startswith("jax") and jax.lax.scan.__module__.startswith("jax")


# --------------------------------------------------------------------------- Jacobian between two points


def test_jacobian_between_matches_jacfwd_of_the_hand_written_map():
    ws = _ws(depth=4, scale=1.5)
    x = jax.random.normal(jax.random.PRNGKey(3), (1, 6))
    sv = gc.jacobian_between(tapped_loss, ws, x, source="h0", target="h3")
    h0 = jnp.tanh(x @ ws[0])

    def by_hand(h):  # h0 -> h3 through layers 1..3
        for w in ws[1:]:
            h = jnp.tanh(h @ w)
        return h

    J = jax.jacfwd(lambda v: by_hand(v.reshape(1, 6)).ravel())(h0.ravel())
    np.testing.assert_allclose(sv, jnp.linalg.svd(J, compute_uv=False), rtol=1e-5, atol=1e-6)
    # between module paths of an Equinox model, for one example
    m = EqxMLP(KEY)
    total = lambda m, x: jnp.sum(jax.vmap(m)(x))
    sv_m = gc.jacobian_between(total, m, x, model=m, source="layers/0", target="layers/2")
    z0 = m.layers[0](x[0])
    J = jax.jacfwd(lambda z: m.layers[2](jnp.tanh(m.layers[1](jnp.tanh(z)))))(z0)
    np.testing.assert_allclose(sv_m, jnp.linalg.svd(J, compute_uv=False), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"target: 'h9' is not a captured point"):
        gc.jacobian_between(tapped_loss, ws, x, source="h0", target="h9")
    with pytest.raises(ValueError, match=r"must run before"):
        gc.jacobian_between(tapped_loss, ws, x, source="h3", target="h0")


def test_tap_inside_checkpoint_called_in_fn():
    ws, x = _ws(), _x()

    def loss(ws, x):
        for i, w in enumerate(ws):
            x = jax.checkpoint(lambda h, w, i=i: gc.tap(jnp.tanh(h @ w), f"h{i}"))(x, w)
        return jnp.mean(x**2)

    c = gc.capture(loss, ws, x)
    _, gs = reference(ws, x)
    assert c.names == ["h0", "h1", "h2"] and "h0" not in c.axes  # jax.checkpoint adds no axis
    for i in range(3):
        np.testing.assert_allclose(c.grads[f"h{i}"], gs[i], **TOL)
