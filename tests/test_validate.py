"""gradcourse.validate: every helper accepts the right values in all their spellings and rejects the rest by name."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gradcourse import validate as v


@pytest.mark.parametrize("value", [3, np.int64(3), np.int32(3), jnp.int32(3), np.uint8(3)])
def test_positive_int_accepts_integer_scalars(value):
    out = v.positive_int(value, "depth")
    assert out == 3 and type(out) is int


@pytest.mark.parametrize("value, exc", [(0, ValueError), (-3, ValueError), (True, TypeError), (3.0, TypeError),
                                        (np.float32(3), TypeError), ("3", TypeError), (None, TypeError),
                                        (jnp.ones(2, jnp.int32), TypeError)])
def test_positive_int_rejects(value, exc):
    with pytest.raises(exc, match=r"^depth: expected a positive integer, got"):
        v.positive_int(value, "depth")


def test_non_negative_int_and_at_least():
    assert v.non_negative_int(np.int64(0), "n") == 0
    with pytest.raises(ValueError, match=r"n: expected an integer >= 2, got 1"):
        v.int_at_least(1, "n", 2)


@pytest.mark.parametrize("value", [2, 2.0, np.float64(2), np.float32(2), jnp.float32(2), jnp.asarray(2.0), np.int64(2)])
def test_real_accepts_scalars(value):
    out = v.real(value, "s", low=0.0, low_open=True)
    assert out == 2.0 and type(out) is float


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 0.0, -1.0, np.float32(np.nan)])
def test_real_rejects_non_finite_and_out_of_range(value):
    with pytest.raises(ValueError, match=r"^s: expected a finite real number > 0, got"):
        v.real(value, "s", low=0.0, low_open=True)


def test_real_high_and_arrays_and_tracers():
    with pytest.raises(ValueError, match="< 1"):
        v.real(1.0, "p", low=0.0, high=1.0, high_open=True)
    with pytest.raises(TypeError, match="p: expected"):
        v.real(np.ones(3), "p")
    assert v.real(np.ones(3), "p", array=True).shape == (3,)
    with pytest.raises(ValueError, match="got nan"):
        v.real(np.array([1.0, np.nan]), "p", array=True)
    # a tracer cannot be checked: it passes through, so jit works
    out = jax.jit(lambda s: v.real(s, "s", low=0.0) * 2)(3.0)
    assert float(out) == 6.0
    for bad in (True, "1", None, [1, [2, 3]]):
        with pytest.raises(TypeError, match=r"^p: expected"):
            v.real(bad, "p")


def test_one_of():
    assert v.one_of("a", "m", ("a", "b")) == "a"
    for bad in ("c", None, ["a"], True):
        with pytest.raises(ValueError, match=r"^m: expected one of 'a', 'b', got"):
            v.one_of(bad, "m", ("a", "b"))


def test_prng_key():
    raw, typed = jax.random.PRNGKey(0), jax.random.key(0)
    assert v.prng_key(raw) is raw and v.prng_key(typed) is typed
    with pytest.raises(TypeError, match=r"^key: expected a PRNG key such as jax.random.PRNGKey\(0\), got int 0$"):
        v.prng_key(0)
    for bad in (np.int64(1), 1.5, None, jnp.zeros(2), jnp.zeros(3, jnp.uint32)):
        with pytest.raises(TypeError, match="^key: expected a PRNG key"):
            v.prng_key(bad)
    with pytest.raises(ValueError, match="a batch of keys"):
        v.prng_key(jax.random.split(typed, 3))


def test_floating_array():
    x = np.ones((2, 3))
    assert v.floating_array(x) is x
    assert v.floating_array([[1.0, 2.0]]).shape == (1, 2)
    with pytest.raises(TypeError, match=r"^x: .*x.astype\(jnp.float32\)"):
        v.floating_array(np.arange(3))
    with pytest.raises(TypeError, match=r"^x: expected a floating-point array, got NoneType None"):
        v.floating_array(None)
    with pytest.raises(TypeError, match=r"^x: .*ragged"):
        v.floating_array([[1.0, 2.0], [3.0]])
    with pytest.raises(ValueError, match=r"^x: expected a non-empty array, got shape \(0, 3\)"):
        v.floating_array(np.zeros((0, 3)))
    assert v.floating_array(np.zeros((0, 3)), allow_empty=True).shape == (0, 3)


@pytest.mark.parametrize("dtype, want", [(jnp.float16, jnp.float32), (jnp.bfloat16, jnp.float32),
                                         (jnp.float32, jnp.float32), (jnp.int32, jnp.float32)])
def test_wide_float(dtype, want):
    x = jnp.full((3,), 300, dtype)
    w = v.wide_float(x)
    assert w.dtype == want
    # the point of widening: the square of 300 overflows float16 but not the widened value
    assert np.isfinite(float(jnp.sum(w * w)))


def test_stacked_depth():
    assert v.stacked_depth({"W": jnp.zeros((4, 2, 2)), "b": jnp.zeros((4, 2))}) == 4
    with pytest.raises(ValueError, match="different depths"):
        v.stacked_depth({"W": jnp.zeros((4, 2, 2)), "b": jnp.zeros((3, 2))})
    with pytest.raises(ValueError, match="no leaves"):
        v.stacked_depth({})
    with pytest.raises(ValueError, match="scalar"):
        v.stacked_depth({"a": jnp.zeros(())})
    with pytest.raises(TypeError, match="floating point"):
        v.stacked_depth({"a": jnp.zeros((2,), jnp.int32)})
    with pytest.raises(ValueError, match="depth is 0"):
        v.stacked_depth({"a": jnp.zeros((0, 2))})


def test_scalar_loss():
    assert v.scalar_loss(jnp.float32(1.0)).shape == ()
    with pytest.raises(ValueError, match=r"^loss must return a scalar, got shape \(3,\)"):
        v.scalar_loss(jnp.zeros(3))
    with pytest.raises(TypeError, match="floating-point"):
        v.scalar_loss(jnp.int32(1))
    with pytest.raises(TypeError, match="got tuple"):
        v.scalar_loss((1.0, 2.0))


def test_boolean():
    assert v.boolean(np.True_, "b") is True
    with pytest.raises(TypeError, match="b: expected True or False, got 1"):
        v.boolean(1, "b")
