"""gc.precision: format numbers from closed forms, underflow fractions and swamping against independent counts."""
from __future__ import annotations

import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

from gradcourse import precision


@pytest.mark.parametrize("dtype, p, e_min", [(jnp.float32, 24, -126), (jnp.float16, 11, -14), (jnp.bfloat16, 8, -126)])
def test_float_format_closed_forms(dtype, p, e_min):
    f = precision.float_format(dtype)
    assert f.significand_bits == p
    assert (f.eps, f.smallest_normal, f.smallest_subnormal) == (2.0 ** (1 - p), 2.0**e_min, 2.0 ** (e_min + 1 - p))
    assert f.max == (2 - 2.0 ** (1 - p)) * 2.0 ** (127 if e_min == -126 else 15)


def test_underflow_fractions_against_numpy_thresholds():
    rng = np.random.default_rng(0)
    g = (rng.choice([-1, 1], (5, 300)) * 2.0 ** rng.uniform(-30, -5, (5, 300))).astype(np.float32)
    g[:, :20] = 0.0
    zero, sub = precision.underflow_fractions(g, jnp.float16, per_layer=True)
    a, nz = np.abs(g.astype(np.float64)), g != 0
    want_zero = ((a <= 2.0**-25) & nz).sum(1) / nz.sum(1)   # half the smallest subnormal rounds (ties-even) to 0
    want_sub = ((a > 2.0**-25) & (a < 2.0**-14 * (1 - 2.0**-12))).sum(1) / nz.sum(1)
    np.testing.assert_allclose(zero, want_zero, atol=1 / 280)
    np.testing.assert_allclose(sub, want_sub, atol=1 / 280)
    z0, s0 = precision.underflow_fractions(g, jnp.bfloat16)          # bfloat16 has float32's range
    assert float(z0) == 0.0 and float(s0) == 0.0


def test_swamped_and_half_ulp():
    w = np.array([1.0, 1.0, 1.5, 1.5, -1.0, 3.0], np.float32)
    d = np.array([2.0**-9, 2.0**-8 * 1.02, 2.0**-8 * 0.9, 2.0**-8 * 1.1, -(2.0**-9), 2.0**-7 * 0.9], np.float32)
    got = np.asarray(precision.swamped(w, d, jnp.bfloat16))
    wb = w.astype(ml_dtypes.bfloat16)
    want = (wb + d.astype(ml_dtypes.bfloat16)) == wb                  # NumPy's own bfloat16 arithmetic
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got, [True, False, True, False, True, True])
    h = np.asarray(precision.half_ulp(np.array([1.0, 1.5, 3.0, 0.25], np.float32), jnp.bfloat16))
    np.testing.assert_array_equal(h, [2.0**-8, 2.0**-8, 2.0**-7, 2.0**-10])


def test_errors():
    with pytest.raises(TypeError, match="dtype"):
        precision.float_format(jnp.int32)
    with pytest.raises(TypeError, match="x"):
        precision.underflow_fractions(np.arange(3))
