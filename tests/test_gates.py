"""gc.gates.haar_power_profile against closed forms and a Monte Carlo over Haar-orthogonal matrices."""
import numpy as np
import pytest
from scipy.stats import ortho_group

import gradcourse as gc


def test_closed_forms():
    # b = 0: |a|^k; k = 1: √(a² + b²); k = 2: √((a² + b²)² + 2a²b²) (E cos² = ½)
    np.testing.assert_allclose(gc.gates.haar_power_profile(0.7, 0.0, 30), 0.7 ** np.arange(31), rtol=1e-12)
    a, b = 0.6, 0.3
    p = gc.gates.haar_power_profile(a, b, 2)
    np.testing.assert_allclose(p, [1.0, np.sqrt(a * a + b * b), np.sqrt((a * a + b * b) ** 2 + 2 * a * a * b * b)],
                               rtol=1e-12)


def test_long_lags_do_not_underflow_and_rate_tends_to_a_plus_b():
    p = gc.gates.haar_power_profile(0.5, 0.25, 1000)
    assert np.all(np.isfinite(p)) and np.all(p > 0)
    rate = p[1000] / p[999]
    assert 0.74 < rate < 0.75          # → |a + b| = 0.75 from below (the sqrt(k) prefactor)


def test_monte_carlo_haar():
    # E‖v (aI + bQ)^k‖² / ‖v‖² over Haar Q (n = 200) and random v, against the quadrature
    rng = np.random.default_rng(0)
    a, b, n, T, draws = 0.5, 0.25, 200, 12, 20
    acc = np.zeros(T + 1)
    for _ in range(draws):
        M = a * np.eye(n) + b * ortho_group.rvs(n, random_state=rng).T
        v = rng.standard_normal(n)
        v /= np.linalg.norm(v)
        for k in range(T + 1):
            acc[k] += v @ v
            v = v @ M
    mc = np.sqrt(acc / draws)
    np.testing.assert_allclose(mc, gc.gates.haar_power_profile(a, b, T), rtol=0.03)


def test_validation():
    with pytest.raises(ValueError, match="T"):
        gc.gates.haar_power_profile(0.5, 0.25, 0)
    with pytest.raises((TypeError, ValueError), match="a"):
        gc.gates.haar_power_profile("x", 0.25, 3)
