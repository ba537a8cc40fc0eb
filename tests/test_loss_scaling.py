"""gc.loss_scaling: the dynamic rule against a hand-written reference; scaling recovers float16 gradients."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gradcourse import loss_scaling as lsc


def reference_scales(init, period, factor, min_scale, finite_flags):
    """The dynamic loss-scaling rule written out with Python floats (Micikevicius et al. 2018; jmp's docstring)."""
    scale, good, out = init, 0, []
    for finite in finite_flags:
        if finite:
            good += 1
            if good == period:  # grow, unless float32 would overflow (then keep the scale)
                scale, good = (scale * factor if scale * factor <= np.finfo(np.float32).max else scale), 0
        else:
            scale, good = max(scale / factor, min_scale), 0
        out.append(scale)
    return out


@pytest.mark.parametrize("period, factor, min_scale", [(3, 2.0, 1.0), (1, 4.0, 8.0), (5, 2.0, 2.0**10)])
def test_dynamic_rule_matches_reference_under_jit_and_scan(period, factor, min_scale):
    flags = np.random.default_rng(period).random(200) < 0.8
    flags[50:130] = False                                 # a long run of overflows: the scale must stop at min_scale
    ls0 = lsc.dynamic_loss_scale(2.0**15, period=period, factor=factor, min_scale=min_scale)

    def body(ls, f):
        ls = lsc.update_scale(ls, f)
        return ls, ls.scale

    last, scales = jax.jit(lambda ls, fl: jax.lax.scan(body, ls, fl))(ls0, jnp.asarray(flags))
    want = reference_scales(2.0**15, period, factor, min_scale, flags)
    np.testing.assert_array_equal(np.asarray(scales), np.asarray(want, np.float32))
    assert float(last.min_scale) == min_scale           # the floor survives jit (jmp loses it)
    assert min(want) == min_scale


def test_static_scale_never_changes_and_growth_never_overflows():
    ls = lsc.static_loss_scale(1024.0)
    for f in (True, False, True):
        ls = lsc.update_scale(ls, jnp.asarray(f))
    assert float(ls.scale) == 1024.0
    big = lsc.dynamic_loss_scale(2.0**127, period=1)
    assert float(lsc.update_scale(big, jnp.asarray(True)).scale) == 2.0**127   # ×2 would be inf: kept


def test_scaled_gradients_equal_float32_and_rescue_float16_underflow():
    """A float16 toy: unscaled gradients of 1e-8·w underflow to 0; scaled ones equal the float32 gradient."""
    w = jnp.linspace(0.5, 2.0, 16)
    x = jnp.linspace(-1.0, 1.0, 16)

    def loss(w, dtype):  # the product in `dtype`, the loss (and S·loss) in float32: dL/dw = 1e-8 x
        return jnp.sum(1e-8 * (w.astype(dtype) * x.astype(dtype)).astype(jnp.float32))

    g32 = jax.grad(loss)(w, jnp.float32)
    _, g16, fin16 = lsc.scaled_value_and_grad(loss, lsc.static_loss_scale(1.0), w, jnp.float16)
    value, g16s, fin16s = lsc.scaled_value_and_grad(loss, lsc.static_loss_scale(2.0**20), w, jnp.float16)
    assert bool(fin16) and bool(fin16s)
    assert float(jnp.max(jnp.abs(g16))) < 1e-7 * 0.1 + 6e-8          # nothing left but subnormal crumbs
    assert int(jnp.sum(g16 == 0)) >= 8
    np.testing.assert_allclose(g16s, g32, rtol=2e-3, atol=0)         # float16 rounding of S·g only
    assert float(value) == pytest.approx(float(loss(w, jnp.float32)), rel=2e-3)


def test_overflow_is_reported_and_training_with_skips_matches_reference():
    """A float16 toy run with optax.apply_if_finite: overflowing steps are skipped and halve the scale."""
    w0 = jnp.array([3.0, -2.0, 1.0])

    def loss(w):
        return 0.5 * jnp.sum(w.astype(jnp.float16) ** 2).astype(jnp.float32)

    opt = optax.apply_if_finite(optax.sgd(0.1), 1000)
    ls, w, state = lsc.dynamic_loss_scale(2.0**16, period=2), w0, opt.init(w0)
    flags = []
    for _ in range(12):
        _, g, fin = lsc.scaled_value_and_grad(loss, ls, w)
        updates, state = opt.update(g, state, w)
        w = optax.apply_updates(w, updates)
        ls = lsc.update_scale(ls, fin)
        flags.append(bool(fin))
    assert flags[0] is False                             # 2^16 · 3 overflows float16 (max 65504)
    n_applied = sum(flags)
    np.testing.assert_allclose(w, w0 * 0.9**n_applied, rtol=3e-3)      # only the finite steps moved w
    assert float(ls.scale) == reference_scales(2.0**16, 2, 2.0, 1.0, flags)[-1]


def test_all_finite_and_errors():
    assert bool(lsc.all_finite({"a": jnp.ones(2), "b": [jnp.zeros(3)]}))
    assert not bool(lsc.all_finite([jnp.array([1.0, jnp.nan])]))
    assert bool(lsc.all_finite({}))
    with pytest.raises(ValueError, match="scale"):
        lsc.static_loss_scale(0.0)
    with pytest.raises(ValueError, match="factor"):
        lsc.dynamic_loss_scale(factor=1.0)
    with pytest.raises(ValueError, match="init"):
        lsc.dynamic_loss_scale(0.5, min_scale=1.0)
    with pytest.raises(TypeError, match="LossScale"):
        lsc.scale_loss(2.0, jnp.ones(()))
