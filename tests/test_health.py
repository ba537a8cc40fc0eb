"""gc.health_report: flags a vanishing, an exploding, a dead-ReLU and a NaN model, and stays quiet on healthy ones.

Each broken model is built so that the problem is known in advance (mean-field factor per layer,
a bias that switches every ReLU off, an operation that makes a NaN at a known block); the report
must name it, with the right block, and say nothing about the healthy versions.
"""
from __future__ import annotations

import json
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradcourse as gc
from gradcourse.stats import tap_stats

KEY = jax.random.PRNGKey(0)
DEPTH, WIDTH, BATCH = 16, 64, 32


class ReluMLP(eqx.Module):
    """A plain ReLU MLP; weights N(0, sw2/width), bias b. He init is sw2 = 2."""

    layers: list
    sqrt_at: int = eqx.field(static=True, default=-1)

    def __init__(self, key, sw2=2.0, bias=0.0, sqrt_at=-1):
        layers = []
        for k in jax.random.split(key, DEPTH):
            lin = eqx.nn.Linear(WIDTH, WIDTH, key=k)
            W = jax.random.normal(k, (WIDTH, WIDTH)) * math.sqrt(sw2 / WIDTH)
            layers.append(eqx.tree_at(lambda l: (l.weight, l.bias), lin, (W, jnp.full((WIDTH,), bias))))
        self.layers = layers
        self.sqrt_at = sqrt_at

    def __call__(self, x):
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i == self.sqrt_at:
                x = jnp.sqrt(x)  # NaN where the pre-activation is negative: a NaN-producing op
            x = jax.nn.relu(x)
        return x


def mse(m, batch):
    x, y = batch
    return jnp.mean((jax.vmap(m)(x) - y) ** 2)


@pytest.fixture(scope="module")
def batch():
    kx, ky = jax.random.split(jax.random.PRNGKey(1))
    return jax.random.normal(kx, (BATCH, WIDTH)), jax.random.normal(ky, (BATCH, WIDTH))


def test_healthy_he_mlp_is_quiet(batch):
    for seed in range(3):
        r = gc.health_report(mse, ReluMLP(jax.random.PRNGKey(seed)), batch)
        assert r.healthy, r.findings
        assert "no problems found" in str(r)
        assert [row["name"] for row in r.rows] == [f"layers/{i}" for i in range(DEPTH)]
        assert max(row["frac_dead"] for row in r.rows) < r.thresholds["dead"]


def test_vanishing_glorot_style_relu_mlp(batch):
    r = gc.health_report(mse, ReluMLP(KEY, sw2=1.0), batch)  # √½ per layer (notebook 04)
    text = " ".join(r.findings)
    assert "vanishing" in text and "`layers/15` to `layers/0`" in text


def test_exploding_relu_mlp(batch):
    r = gc.health_report(mse, ReluMLP(KEY, sw2=4.0), batch)  # √2 per layer
    assert any("exploding" in f and "`layers/15` to `layers/0`" in f for f in r.findings), r.findings


def test_dead_relu_mlp(batch):
    r = gc.health_report(mse, ReluMLP(KEY, bias=-1.0), batch)
    dead = [f for f in r.findings if "are dead" in f]
    assert dead and "100% of units in `layers/15`" in " ".join(dead)


def test_nan_forward_names_the_block(batch):
    r = gc.health_report(mse, ReluMLP(KEY, sqrt_at=5), batch)
    assert r.nonfinite is not None and "forward pass at `layers/6`" in r.nonfinite  # sqrt is applied after layers/5
    assert len(r.findings) == 1 and "notebook 11" in r.findings[0]
    assert "every point before it is finite" in r.nonfinite


def test_nan_at_the_first_point_says_so(batch):
    x, y = batch
    r = gc.health_report(mse, ReluMLP(KEY), (x.at[0, 0].set(jnp.nan), y))  # a NaN in the data itself
    assert "forward pass at `layers/0`" in r.nonfinite and "it is the first captured point" in r.nonfinite


def test_nan_backward_only():
    def loss(w, x):
        h = gc.tap(x @ w, "pre")
        h = gc.tap(jnp.where(h > 0, jnp.sqrt(h), 0.0), "post")  # the jnp.where trap: finite forward, NaN backward
        return jnp.mean(h)

    x = jnp.array([[1.0, -1.0], [2.0, -3.0]])
    r = gc.health_report(loss, jnp.eye(2), x)
    assert "backward pass at `pre`" in r.nonfinite


def test_nan_in_the_loss_itself():
    def loss(w, x):
        h = gc.tap(x @ w, "h")
        return jnp.log(jnp.sum(h))  # log of a negative number

    r = gc.health_report(loss, jnp.eye(2), -jnp.ones((2, 2)))
    assert "the loss itself" in r.nonfinite


def test_report_on_a_scanned_transformer_is_quiet_and_per_block():
    depth, d, T = 12, 32, 8
    keys = jax.random.split(KEY, 4)
    params = {
        "qkv": jax.random.normal(keys[0], (depth, d, 3 * d)) / math.sqrt(d),
        "o": jax.random.normal(keys[1], (depth, d, d)) / math.sqrt(d),
        "up": jax.random.normal(keys[2], (depth, d, 4 * d)) / math.sqrt(d),
        "down": jax.random.normal(keys[3], (depth, 4 * d, d)) / math.sqrt(4 * d),
    }

    def ln(h):
        return (h - h.mean(-1, keepdims=True)) / jnp.sqrt(h.var(-1, keepdims=True) + 1e-5)

    def block(h, p):
        q, k, v = jnp.split(ln(h) @ p["qkv"], 3, axis=-1)
        a = jax.nn.softmax(q @ k.swapaxes(-1, -2) / math.sqrt(d), axis=-1)
        h = h + (a @ v) @ p["o"]
        h = h + jax.nn.gelu(ln(h) @ p["up"]) @ p["down"]
        return gc.tap(h, "block"), None

    def loss(params, x):
        h, _ = jax.lax.scan(block, x, params)
        return jnp.mean(ln(h) ** 2 * jnp.arange(d))

    x = jax.random.normal(jax.random.PRNGKey(3), (4, T, d))
    r = gc.health_report(loss, params, x)
    assert [row["name"] for row in r.rows] == [f"block[{i}]" for i in range(depth)]
    assert r.healthy, r.findings


def test_per_tap_activation_and_to_dict_and_html(batch):
    m = ReluMLP(KEY, bias=-1.0)
    r = gc.health_report(mse, m, batch, activation={"layers/0": "tanh"})
    assert r.rows[0]["frac_dead"] == 0.0  # tanh cannot die: the given activation's rule is used
    d = r.to_dict()
    json.dumps(d, allow_nan=True)
    assert d["findings"] == r.findings and len(d["rows"]) == DEPTH
    assert d["rows"][3]["grad_to_param"] >= 0 or math.isnan(d["rows"][3]["grad_to_param"])
    page = r._repr_html_()
    assert "<table>" in page and "data:image/png;base64" in page and "are dead" in page


def test_weight_gradients_match_jax_grad(batch):
    m = ReluMLP(KEY)
    r = gc.health_report(mse, m, batch)
    g = jax.grad(lambda W: mse(eqx.tree_at(lambda m: m.layers[3].weight, m, W), batch))(m.layers[3].weight)
    np.testing.assert_allclose(r.params["layers/3/weight"]["grad_norm"], float(jnp.linalg.norm(g)), rtol=1e-4)


def test_tap_stats_dead_rules():
    h = jnp.array([[0.0, 1.0, -2.0], [0.0, 2.0, -1.0]])
    assert tap_stats(h, None, "relu")["frac_dead"] == pytest.approx(2 / 3)  # h ≤ 0 for every example
    assert tap_stats(h, None, jax.nn.gelu)["frac_dead"] == pytest.approx(2 / 3)  # approximate GELU by identity
    assert tap_stats(h, None)["frac_dead"] == pytest.approx(1 / 3)  # only exact zeros without an activation
    g = jnp.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
    assert tap_stats(h, g)["frac_dead"] == pytest.approx(2 / 3)  # zero gradient for every example
    assert tap_stats(jnp.array([0.5, 0.999]), None, "tanh")["frac_saturated"] == pytest.approx(0.5)


def test_bad_input():
    with pytest.raises(TypeError, match="loss_fn"):
        gc.health_report(3, {}, None)
    with pytest.raises(ValueError, match="no gc.tap"):
        gc.health_report(lambda p, x: jnp.sum(p * x), jnp.ones(2), jnp.ones(2))


# --------------------------------------------------------------------------- the stats tools on a Capture


def test_capture_nonfinite_forward_loss_backward_and_scan_iteration():
    from gradcourse.stats import capture_nonfinite

    def fwd(w, x):
        h = gc.tap(x @ w, "pre")
        h = gc.tap(jnp.log(h), "log")  # NaN where h < 0
        return jnp.mean(h)

    x = jnp.array([[1.0, -1.0]])
    r = capture_nonfinite(gc.capture(fwd, jnp.eye(2), x))
    assert (r.stage, r.point, r.layer, r.count) == ("forward", "log", 1, 1) and "the 1 points before it" in r.message
    assert gc.stats.find_nonfinite(gc.capture(fwd, jnp.eye(2), x)) == r  # the same through gc.stats

    def bwd(w, x):
        h = gc.tap(x @ w, "pre")
        return jnp.mean(gc.tap(jnp.where(h > 0, jnp.sqrt(h), 0.0), "post"))

    r = capture_nonfinite(gc.capture(bwd, jnp.eye(2), x))
    assert (r.stage, r.point) == ("backward", "pre")
    r = capture_nonfinite(gc.capture(lambda w, x: jnp.log(jnp.sum(gc.tap(x @ w, "h"))), jnp.eye(2), -jnp.ones((1, 2))))
    assert r.stage == "loss" and "the loss is the first non-finite value" in r.message

    def scanned(ws, x):
        def body(h, w):
            return gc.tap(jnp.sqrt(h @ w), "block"), None  # goes NaN at the iteration whose weights flip the sign

        return jnp.sum(jax.lax.scan(body, x, ws)[0])

    ws = jnp.stack([jnp.eye(2), jnp.eye(2), -jnp.eye(2), jnp.eye(2)])
    r = capture_nonfinite(gc.capture(scanned, ws, jnp.ones((1, 2))))
    assert r.point == "block[2]" and r.count == 2
    assert capture_nonfinite(gc.capture(scanned, ws[:2], jnp.ones((1, 2)))).finite


def test_capture_activation_stats_per_tap():
    from gradcourse.stats import capture_activation_stats

    def f(x):
        a = gc.tap(jax.nn.relu(x), "relu")
        b = gc.tap(jax.nn.gelu(x), "gelu")  # the approximate GELU, jax.nn.gelu itself
        return jnp.sum(gc.tap(a + b, "logits"))

    x = jnp.array([[1.0, -2.0, 3.0], [2.0, -1.0, -4.0]])
    c = gc.capture(f, x)
    st = capture_activation_stats(c, {"relu": "relu", "gelu": jax.nn.gelu})
    assert gc.stats.activation_stats(c, {"relu": "relu", "gelu": jax.nn.gelu}).keys() == st.keys()
    assert float(gc.stats.activation_stats([x], jax.nn.gelu).frac_dead[0]) == pytest.approx(1 / 3)  # was NaN
    assert list(st) == ["relu", "gelu"]  # logits have no activation: skipped
    assert float(st["relu"].frac_dead) == pytest.approx(1 / 3)  # unit 1 is off for both examples
    assert float(st["gelu"].frac_dead) == pytest.approx(1 / 3)  # not NaN: jax.nn.gelu is recognised
    np.testing.assert_allclose(st["relu"].mean, jnp.mean(jax.nn.relu(x)), rtol=1e-6)
