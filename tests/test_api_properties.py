"""Property test over the core API's argument validation (hypothesis).

For random shapes, dtypes, NaN/Inf entries, depths and every named activation, each call either
raises a ValueError / TypeError whose message starts with the argument's name, or returns a result
that is finite where the inputs are finite and agrees with an independent reference (jax.jacfwd /
a by-hand forward pass).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gradcourse as gc

SETTINGS = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NAMES = ("key", "depth", "width", "activation", "sigma_w2", "sigma_b2", "x", "model", "loss", "v", "u", "hs", "tree")

bad_ints = st.sampled_from([0, -3, 2.5, 3.0, True, "3", None, np.float32(2)])
good_ints = st.one_of(st.integers(1, 4), st.integers(1, 4).map(np.int64), st.integers(1, 4).map(np.int32))
variances = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.floats(0.1, 3.0).map(np.float32),
    st.floats(0.1, 3.0).map(jnp.float32),
    st.sampled_from(["1", None, True]),
)


def _names_argument(e: Exception) -> bool:
    return str(e).split(":")[0].split(" ")[0] in NAMES or str(e).startswith(NAMES)


@SETTINGS
@given(depth=st.one_of(good_ints, bad_ints), width=st.one_of(good_ints, bad_ints), sw=variances,
       sb=variances, act=st.sampled_from(list(gc.ACTIVATIONS)))
def test_mlp_validates_or_builds_a_finite_model(depth, width, sw, sb, act):
    try:
        model = gc.mlp(jax.random.PRNGKey(0), depth, width, act, sigma_w2=sw, sigma_b2=sb)
    except (ValueError, TypeError) as e:
        assert _names_argument(e), str(e)
        return
    assert np.isfinite(float(sw)) and float(sw) > 0 and np.isfinite(float(sb)) and float(sb) >= 0
    leaves = jax.tree_util.tree_leaves(model.params)
    assert all(bool(jnp.all(jnp.isfinite(p))) for p in leaves)
    assert model.params["W"].shape == (int(depth), int(width), int(width))


@st.composite
def inputs(draw):
    shape = draw(st.sampled_from([(3,), (2, 3), (0, 3), (2, 4), (), (1, 3)]))
    dtype = draw(st.sampled_from([np.float32, np.float64, np.float16, np.int32, np.bool_]))
    x = np.asarray(draw(st.lists(st.floats(-3, 3), min_size=int(np.prod(shape)), max_size=int(np.prod(shape)))))
    x = x.reshape(shape).astype(dtype)
    if draw(st.booleans()) and x.size and np.issubdtype(dtype, np.floating):
        x.flat[0] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    return x


@SETTINGS
@given(x=inputs(), act=st.sampled_from(list(gc.ACTIVATIONS)))
def test_core_functions_validate_or_agree_with_jacfwd(x, act):
    model = gc.mlp(jax.random.PRNGKey(1), 2, 3, act, sigma_w2=1.5, sigma_b2=0.1)
    try:
        hs = gc.forward(model, x)
        gx = gc.vjp_chain(model, x, jnp.ones_like(hs[-1]))[0]
    except (ValueError, TypeError) as e:
        assert _names_argument(e), str(e)
        return
    xj = jnp.asarray(x, jnp.float32)
    h = xj
    for l in range(2):  # by hand
        h = gc.get_activation(act)(h @ model.params["W"][l] + model.params["b"][l])
    np.testing.assert_allclose(hs[-1], h, rtol=1e-5, atol=1e-5)
    if np.all(np.isfinite(x)) and x.size:
        ref = jax.vjp(lambda v: gc.forward(model, v)[-1], xj)[1](jnp.ones_like(h))[0]
        assert bool(jnp.all(jnp.isfinite(gx)))
        np.testing.assert_allclose(gx, ref, rtol=1e-5, atol=1e-6)


@SETTINGS
@given(hs=st.one_of(st.just(None), st.just([]), st.just([[1.0, 2.0], [3.0]]), inputs().map(lambda a: [a, a]), inputs()))
def test_norm_functions_validate_or_match_numpy(hs):
    try:
        got = np.asarray(gc.signal_norms(hs))
    except (ValueError, TypeError) as e:
        assert _names_argument(e), str(e)
        return
    layers = hs if isinstance(hs, list) else list(np.asarray(hs))
    # reference in float64 from the values JAX holds (x64 off: a float64 input is float32 inside, so
    # 3e-76 is 0 there), never from the caller's array
    want = [np.sqrt(np.sum(np.square(np.asarray(jnp.asarray(h), np.float64)))) for h in layers]
    np.testing.assert_allclose(got, want, rtol=1e-4)


@pytest.mark.parametrize("act", list(gc.ACTIVATIONS))
def test_theory_takes_every_named_activation(act):
    assert np.isfinite(float(gc.theory.chi1(act, 1.5, 0.1)))
