"""gc.rmt: Fuss–Catalan density and moments checked by quadrature and closed forms, free-probability moments."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate

import gradcourse as gc


@pytest.mark.parametrize("L", [1, 2, 3, 5, 10])
def test_fuss_catalan_parametrisation_is_a_normalised_density_with_the_right_moments(L):
    """Integrate ρ(x(φ)) |dx/dφ| dφ over φ ∈ (0, π/(L+1)) (smooth in φ): mass 1, moments FC_L(k)."""

    def x(p):
        return math.sin((L + 1) * p) ** (L + 1) / (math.sin(p) * math.sin(L * p) ** L)

    def rho(p):
        return math.sin(p) ** 2 * math.sin(L * p) ** (L - 1) / (math.pi * math.sin((L + 1) * p) ** L)

    def dx(p, h=1e-7):
        return (x(p + h) - x(p - h)) / (2 * h)

    end = math.pi / (L + 1)
    for k in range(4):
        got = integrate.quad(lambda p, k=k: rho(p) * x(p) ** k * abs(dx(p)), 1e-6, end - 1e-6, limit=400)[0]
        assert got == pytest.approx(gc.rmt.fuss_catalan_moment(L, k), rel=2e-4)
    xs, rs = gc.rmt.fuss_catalan_density(L, num=50)
    np.testing.assert_allclose(rs, [rho(p) for p in _phi_of(xs, x, end)], rtol=1e-6)


def _phi_of(xs, x, end):
    """Invert the decreasing map φ -> x(φ) by bisection."""
    out = []
    for target in xs:
        a, b = 1e-12, end - 1e-12
        for _ in range(200):
            m = 0.5 * (a + b)
            a, b = (m, b) if x(m) > target else (a, m)
        out.append(0.5 * (a + b))
    return out


def test_fuss_catalan_l1_is_marchenko_pastur():
    x, rho = gc.rmt.fuss_catalan_density(1, num=200)
    np.testing.assert_allclose(rho, np.sqrt(x * (4 - x)) / (2 * np.pi * x), rtol=1e-8)
    assert x.max() == pytest.approx(4.0) and np.all(np.diff(x) > 0)


def test_fuss_catalan_moments():
    assert [gc.rmt.fuss_catalan_moment(2, k) for k in range(5)] == [1, 1, 3, 12, 55]
    assert all(gc.rmt.fuss_catalan_moment(L, 2) == L + 1 for L in range(1, 20))
    with pytest.raises(ValueError, match="depth"):
        gc.rmt.fuss_catalan_moment(0, 1)
    with pytest.raises(ValueError, match="k"):
        gc.rmt.fuss_catalan_moment(2, -1)


def test_jacobian_moments_closed_forms():
    lin = gc.rmt.jacobian_moments("linear", 1.0, 0.0, 7)
    assert lin.mean == pytest.approx(1.0) and lin.second == pytest.approx(8.0)  # Fuss–Catalan: L + 1
    assert gc.rmt.jacobian_moments("linear", 1.0, 0.0, 7, "orthogonal").spread == pytest.approx(0.0, abs=1e-12)
    relu_o = gc.rmt.jacobian_moments("relu", 2.0, 0.0, 10, "orthogonal")
    relu_g = gc.rmt.jacobian_moments("relu", 2.0, 0.0, 10, "gaussian")
    # ReLU: μ₂/μ₁² = 2, so the spread is L (orthogonal) and 2L (Gaussian)
    assert relu_o.spread == pytest.approx(10.0, rel=1e-6) and relu_g.spread == pytest.approx(20.0, rel=1e-6)
    scaled = gc.rmt.jacobian_moments("relu", 1.0, 0.0, 4)
    assert scaled.mean == pytest.approx(0.5**4, rel=1e-6)  # m₁ = χ₁^L


def test_jacobian_moments_validate():
    with pytest.raises(ValueError, match="weights"):
        gc.rmt.jacobian_moments("tanh", 1.0, 0.1, 3, "uniform")
    with pytest.raises(ValueError, match="no finite fixed point"):
        gc.rmt.jacobian_moments("relu", 3.0, 0.1, 3)
    with pytest.raises(TypeError, match="depth"):
        gc.rmt.jacobian_moments("tanh", 1.0, 0.1, 3.0)
