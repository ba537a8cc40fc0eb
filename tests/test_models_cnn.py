"""gradcourse.models.cnn: shapes, the im2col convolution against lax, gradients, residual identity, validation."""

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import gradcourse as gc
from gradcourse.models import cnn

TINY = cnn.Config(depth=2, width=3, n_classes=4)


def _images(key, b=3, h=5, w=4, c=1):
    return jax.random.normal(jax.random.PRNGKey(key), (b, h, w, c))


def test_conv3x3_equals_lax_conv():
    h = _images(0, 2, 6, 5, 3)
    W = jax.random.normal(jax.random.PRNGKey(1), (3, 3, 3, 4))
    want = lax.conv_general_dilated(h, W, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    np.testing.assert_allclose(cnn._conv3x3(h, W), want, rtol=1e-5, atol=1e-5)


def test_stride_two_stem_equals_strided_lax_conv():
    cfg = cnn.Config(depth=1, width=4, stem_stride=2)
    p = cnn.init(jax.random.PRNGKey(0), cfg)
    x = _images(2, 2, 8, 8, 1)
    hs, _ = cnn.states(p, cfg, x)
    want = lax.conv_general_dilated(
        x, p["stem"]["W"], (2, 2), ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    np.testing.assert_allclose(hs[0], want + p["stem"]["b"], rtol=1e-5, atol=1e-5)
    assert hs.shape == (2, 2, 4, 4, 4)


@pytest.mark.parametrize(
    "residual, norm, init",
    [(False, None, "pytorch"), (False, "batch", "he_normal"), (True, "layer", "he_normal"), (True, "batch", "pytorch")],
)
def test_shapes(residual, norm, init):
    cfg = cnn.Config(depth=3, width=5, residual=residual, norm=norm, init=init, n_classes=7)
    p = cnn.init(jax.random.PRNGKey(0), cfg)
    assert p["blocks"]["W"].shape == (3, 3, 3, 5, 5) and p["blocks"]["b"].shape == (3, 5)
    assert p["stem"]["W"].shape == (3, 3, 1, 5) and p["head"]["W"].shape == (5, 7)
    assert ("scale" in p["blocks"]) == (norm is not None)
    assert ("out_norm" in p) == (residual and norm is not None)
    x = _images(1, 4, 4, 4)
    assert cnn.apply(p, cfg, x).shape == (4, 7)
    hs, acts = cnn.states(p, cfg, x)
    assert hs.shape == (4, 4, 4, 4, 5) and acts.shape == (3, 4, 4, 4, 5)
    y = jnp.array([0, 1, 2, 6])
    assert cnn.loss(p, cfg, (x, y)).shape == () and 0 <= float(cnn.accuracy(p, cfg, (x, y))) <= 1
    # per-layer norms over the stacked blocks
    g = jax.grad(cnn.loss)(p, cfg, (x, y))
    assert gc.layer_norms(g["blocks"], stacked=True)["W"].shape == (3,)


def test_init_statistics():
    cfg = cnn.Config(depth=4, width=32)
    p = cnn.init(jax.random.PRNGKey(0), cfg)
    fan_in = 9 * 32
    assert abs(float(jnp.var(p["blocks"]["W"])) * fan_in / 2 - 1) < 0.05  # He: Var = 2 / fan_in
    assert float(jnp.abs(p["blocks"]["b"]).max()) == 0
    pt = cnn.init(jax.random.PRNGKey(0), cfg.replace(init="pytorch"))
    bound = 1 / np.sqrt(fan_in)
    assert float(jnp.abs(pt["blocks"]["W"]).max()) <= bound and float(jnp.abs(pt["blocks"]["b"]).max()) <= bound
    assert abs(float(jnp.var(pt["blocks"]["W"])) * 3 * fan_in - 1) < 0.05  # kaiming_uniform(a=sqrt(5))


@pytest.mark.parametrize(
    "cfg",
    [
        TINY,
        TINY.replace(residual=True, norm="batch"),
        TINY.replace(residual=True, norm="layer", activation="tanh", init="pytorch"),
    ],
)
def test_gradients_match_jacfwd_and_finite_differences(cfg):
    jax.config.update("jax_enable_x64", True)
    try:
        p = jax.tree_util.tree_map(lambda a: a.astype(jnp.float64), cnn.init(jax.random.PRNGKey(3), cfg))
        x = _images(4, 3, 3, 3).astype(jnp.float64)
        y = jnp.array([0, 3, 1])
        flat, unravel = jax.flatten_util.ravel_pytree(p)
        f = jax.jit(lambda v: cnn.loss(unravel(v), cfg, (x, y)))
        g = jax.jit(jax.grad(f))(flat)
        np.testing.assert_allclose(g, jax.jit(jax.jacfwd(f))(flat), rtol=1e-9, atol=1e-12)
        idx = np.random.default_rng(0).choice(flat.size, 6, replace=False)
        eps = 1e-6
        for i in idx:
            e = jnp.zeros_like(flat).at[i].set(eps)
            fd = (f(flat + e) - f(flat - e)) / (2 * eps)
            assert abs(float(fd) - float(g[i])) < 1e-6 * max(1.0, abs(float(g[i])))
    finally:
        jax.config.update("jax_enable_x64", False)


@pytest.mark.parametrize("norm", [None, "batch"])
def test_residual_with_zero_branch_is_identity(norm):
    cfg = cnn.Config(depth=5, width=4, residual=True, norm=norm)
    p = cnn.init(jax.random.PRNGKey(0), cfg)
    p["blocks"]["W"] = jnp.zeros_like(p["blocks"]["W"])
    x = _images(5, 2, 4, 4)
    hs, _ = cnn.states(p, cfg, x)
    for l in range(1, 6):
        np.testing.assert_array_equal(hs[l], hs[0])
    # and branch_scale = 0 gives the same whatever the weights
    cfg0 = cfg.replace(branch_scale=0.0)
    p0 = cnn.init(jax.random.PRNGKey(1), cfg0)
    hs0, _ = cnn.states(p0, cfg0, x)
    np.testing.assert_array_equal(hs0[-1], hs0[0])


def test_branch_scale_one_over_sqrt_depth():
    cfg = cnn.Config(depth=4, width=3, residual=True, branch_scale="1/sqrt(L)")
    p = cnn.init(jax.random.PRNGKey(0), cfg)
    x = _images(6, 2, 4, 4)
    hs, acts = cnn.states(p, cfg, x)
    branch = cnn._conv3x3(acts[0], p["blocks"]["W"][0], p["blocks"]["b"][0])
    np.testing.assert_allclose(hs[1], hs[0] + 0.5 * branch, rtol=1e-5, atol=1e-6)


def test_plain_block_formula():
    cfg = cnn.Config(depth=2, width=3, norm="batch")
    p = cnn.init(jax.random.PRNGKey(0), cfg)
    x = _images(7, 4, 4, 4)
    hs, acts = cnn.states(p, cfg, x)
    b = p["blocks"]
    want = jax.nn.relu(
        gc.layers.batch_normalize(cnn._conv3x3(hs[0], b["W"][0], b["b"][0]), b["scale"][0], b["shift"][0])
    )
    np.testing.assert_allclose(hs[1], want, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(hs[1:], acts)


def test_works_with_fit():
    import optax

    cfg = cnn.Config(depth=3, width=4, residual=True, norm="batch", stem_stride=2)
    p = cnn.init(jax.random.PRNGKey(0), cfg)
    x, y = _images(8, 16, 8, 8), jnp.arange(16) % 10
    h = gc.train.fit(
        lambda q, b: cnn.loss(q, cfg, b), p, optax.adam(1e-2), (x, y), 10, stacked=("blocks",), progress=False
    )
    assert h.grad_norms["blocks/W"].shape == (10, 3) and h.loss[-1] < h.loss[0]


@pytest.mark.parametrize(
    "change, exc, match",
    [
        ({"depth": 0}, ValueError, "^depth: expected a positive integer, got 0"),
        ({"width": 2.0}, TypeError, "^width: "),
        ({"depth": True}, TypeError, "^depth: "),
        ({"residual": 1}, TypeError, "^residual: "),
        ({"norm": "group"}, ValueError, "^norm: expected one of None, 'batch', 'layer'"),
        ({"activation": "swishy"}, ValueError, "^activation: "),
        ({"branch_scale": -1.0}, ValueError, "^branch_scale: "),
        ({"branch_scale": "1/L"}, ValueError, "^branch_scale: "),
        ({"init": "glorot"}, ValueError, "^init: "),
        ({"stem_stride": 3}, ValueError, "^stem_stride: "),
    ],
)
def test_config_validation_names_the_field(change, exc, match):
    with pytest.raises(exc, match=match):
        TINY.replace(**change)


def test_config_is_frozen_and_hashable():
    assert TINY.replace(depth=np.int64(2)) == TINY and hash(TINY.replace(depth=np.int64(2))) == hash(TINY)
    with pytest.raises(AttributeError):
        TINY.depth = 3


def test_validation():
    p = cnn.init(jax.random.PRNGKey(0), TINY)
    x = _images(0, 2, 4, 4)
    with pytest.raises(TypeError, match="config"):
        cnn.init(jax.random.PRNGKey(0), {"depth": 2})
    with pytest.raises(TypeError, match="key"):
        cnn.init(0, TINY)
    with pytest.raises(ValueError, match="images"):
        cnn.apply(p, TINY, jnp.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match="images"):
        cnn.apply(p, TINY, jnp.zeros((2, 4, 4, 3)))
    with pytest.raises(TypeError, match="images"):
        cnn.apply(p, TINY, jnp.zeros((2, 4, 4, 1), jnp.int32))
    with pytest.raises(ValueError, match="params"):
        cnn.apply(p, TINY.replace(depth=3), x)
    with pytest.raises(ValueError, match="params"):
        cnn.apply({"W": 1}, TINY, x)
    with pytest.raises(TypeError, match="batch"):
        cnn.loss(p, TINY, x)
    with pytest.raises(ValueError, match="labels"):
        cnn.loss(p, TINY, (x, jnp.zeros((2,), jnp.float32)))
    with pytest.raises(ValueError, match="2 images but 3 labels"):
        cnn.accuracy(p, TINY, (x, jnp.zeros((3,), jnp.int32)))


def test_models_package_exports_the_families():
    assert gc.models.__all__ == ["cnn", "rnn", "transformer"]
    for family in (gc.models.cnn, gc.models.rnn, gc.models.transformer):
        assert {"Config", "init", "apply", "loss", "states"} <= set(family.__all__)
