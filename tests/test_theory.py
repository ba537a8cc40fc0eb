"""Tests for gradcourse.theory against independent references.

References: closed forms (linear, ReLU, erf, SELU), float64 ``scipy.integrate.quad`` with hand-written
numpy derivatives, Poole et al. / Schoenholz et al. (2017) published numbers, and a measurement on a wide
random tanh network.  Nothing here is a number produced by the module itself.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, optimize, special

from gradcourse.theory import (
    DepthScales,
    chi1,
    chi1_grid,
    correlation_map,
    critical_sigma_w2,
    cstar,
    depth_scales,
    length_map,
    qstar,
)

# float32 results: the fixed points converge to ~16 eps relative; quadrature is exact to float64 rounding.
RTOL = 2e-5

# ------------------------------------------------------------------- float64 references (numpy/scipy)

_SELU_L, _SELU_A = 1.0507009873554804934193349852946, 1.6732632423543772848170429916717

NP_ACT = {  # (phi, phi') written out by hand
    "tanh": (np.tanh, lambda x: 1.0 - np.tanh(x) ** 2),
    "gelu": (
        lambda x: x * special.ndtr(x),
        lambda x: special.ndtr(x) + x * np.exp(-x * x / 2) / math.sqrt(2 * math.pi),
    ),
    "silu": (lambda x: x * special.expit(x), lambda x: special.expit(x) * (1 + x * (1 - special.expit(x)))),
    "selu": (
        lambda x: _SELU_L * (x if x > 0 else _SELU_A * math.expm1(x)),
        lambda x: _SELU_L * (1.0 if x > 0 else _SELU_A * math.exp(x)),
    ),
}


def gauss(f) -> float:
    """∫Dz f(z) by adaptive quadrature, split at the kink z = 0."""
    pdf = lambda z: f(z) * math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    return sum(
        integrate.quad(pdf, a, b, epsabs=1e-14, epsrel=1e-12, limit=200)[0] for a, b in [(-np.inf, 0), (0, np.inf)]
    )


def ref_length_map(name, q, sw, sb) -> float:
    phi, _ = NP_ACT[name]
    return sw * gauss(lambda z: phi(math.sqrt(q) * z) ** 2) + sb


def ref_qstar(name, sw, sb) -> float:
    return optimize.brentq(lambda q: ref_length_map(name, q, sw, sb) - q, 1e-6, 100.0, xtol=1e-14, rtol=1e-13)


def ref_chi1(name, sw, sb) -> float:
    _, dphi = NP_ACT[name]
    q = ref_qstar(name, sw, sb)
    return sw * gauss(lambda z: dphi(math.sqrt(q) * z) ** 2)


def erf_sq(q):  # E[erf(√q z)²]
    return 2 / np.pi * np.arcsin(2 * q / (1 + 2 * q))


def erf_cross(q, c):  # E[erf(u1) erf(u2)], Var u = q, Corr = c
    return 2 / np.pi * np.arcsin(2 * q * c / (1 + 2 * q))


def erf_qstar(sw, sb):
    return optimize.brentq(lambda q: sw * erf_sq(q) + sb - q, 1e-9, 100.0, xtol=1e-14)


def erf_cmap(c, sw, sb, q):
    return (sw * erf_cross(q, c) + sb) / (sw * erf_sq(q) + sb)


def relu_cross(q, c):  # arc-cosine kernel (Cho & Saul 2009): E[relu(u1) relu(u2)]
    return q / (2 * np.pi) * (np.sqrt(1 - c * c) + (np.pi - np.arccos(c)) * c)


# ------------------------------------------------------------------------------------ closed forms


@pytest.mark.parametrize("sw", [0.3, 0.5, 0.9])
def test_linear_closed_forms(sw):
    sb = 0.1
    np.testing.assert_allclose(qstar("linear", sw, sb), sb / (1 - sw), rtol=RTOL)
    np.testing.assert_allclose(chi1("linear", sw, sb), sw, rtol=1e-6)
    np.testing.assert_allclose(length_map("linear", 2.5, sw, sb), sw * 2.5 + sb, rtol=1e-6)
    assert np.isinf(qstar("linear", 1.2, sb))


def test_relu_closed_forms():
    sb = 0.1
    for sw in [0.5, 1.0, 1.5, 1.9]:
        np.testing.assert_allclose(qstar("relu", sw, sb), sb / (1 - sw / 2), rtol=RTOL)
        np.testing.assert_allclose(length_map("relu", 3.0, sw, sb), sw * 3.0 / 2 + sb, rtol=1e-6)
    for sw in [0.5, 1.5, 3.0]:  # chi1 = sw/2 even where q* diverges
        np.testing.assert_allclose(chi1("relu", sw, sb), sw / 2, rtol=1e-6)
    assert np.isinf(qstar("relu", 2.5, sb))


@pytest.mark.parametrize("sb", [0.0, 0.05, 0.5])
def test_relu_critical_point_is_two(sb):
    assert critical_sigma_w2("relu", sb) == pytest.approx(2.0, rel=2e-6)


def test_erf_closed_forms():
    for q in [0.1, 1.0, 5.0, 50.0]:
        np.testing.assert_allclose(length_map("erf", q, 1.7, 0.2), 1.7 * erf_sq(q) + 0.2, rtol=1e-6)
    for sw, sb in [(0.8, 0.1), (2.0, 0.05), (4.0, 0.5)]:
        np.testing.assert_allclose(qstar("erf", sw, sb), erf_qstar(sw, sb), rtol=RTOL)
    for c in [-1.0, -0.6, 0.0, 0.3, 0.9, 0.999, 1.0]:
        np.testing.assert_allclose(correlation_map("erf", c, 2.0, 0.1, q=3.0), erf_cmap(c, 2.0, 0.1, 3.0), atol=1e-6)


def test_relu_correlation_map_is_arc_cosine_kernel():
    sw, sb, q = 1.5, 0.1, 2.0
    for c in [-1.0, -0.5, 0.0, 0.5, 0.99, 1.0]:
        expected = (sw * relu_cross(q, c) + sb) / (sw * q / 2 + sb)
        np.testing.assert_allclose(correlation_map("relu", c, sw, sb, q=q), expected, atol=1e-6)


def test_selu_self_normalising_fixed_point():
    # SELU's constants make E[selu(z)^2] = 1 for z ~ N(0, 1) (Klambauer et al. 2017): q* = 1 at sw2=1, sb2=0.
    np.testing.assert_allclose(qstar("selu", 1.0, 0.0), 1.0, rtol=RTOL)


# ----------------------------------------------------------------- scipy.integrate.quad in float64


@pytest.mark.parametrize("name", ["tanh", "gelu", "silu", "selu"])
def test_length_map_matches_quad(name):
    for q in [0.3, 1.0, 4.0, 25.0]:
        np.testing.assert_allclose(length_map(name, q, 1.5, 0.05), ref_length_map(name, q, 1.5, 0.05), rtol=1e-6)


@pytest.mark.parametrize(
    "name, sw, sb",
    [("tanh", 1.5, 0.05), ("tanh", 3.0, 0.3), ("gelu", 1.8, 0.1), ("silu", 1.8, 0.05), ("selu", 1.2, 0.1)],
)
def test_qstar_and_chi1_match_quad(name, sw, sb):
    np.testing.assert_allclose(qstar(name, sw, sb), ref_qstar(name, sw, sb), rtol=RTOL)
    np.testing.assert_allclose(chi1(name, sw, sb), ref_chi1(name, sw, sb), rtol=RTOL)


# ------------------------------------------------------------------------ order-to-chaos boundary


def ref_tanh_critical(sb) -> float:
    """Independent route: at the boundary sw2 = 1/E[phi'^2] and q = sw2 E[phi^2] + sb2; solve for q."""
    phi, dphi = NP_ACT["tanh"]
    e = lambda f, q: gauss(lambda z: f(math.sqrt(q) * z) ** 2)  # noqa: E731
    q = optimize.brentq(lambda q: e(phi, q) / e(dphi, q) + sb - q, sb, 10.0, xtol=1e-14)
    return 1.0 / e(dphi, q)


def test_tanh_critical_point_published_value():
    got = critical_sigma_w2("tanh", 0.05)
    assert abs(got - 1.76) < 0.01  # Schoenholz et al. (2017) Fig. 1 / Poole et al. (2016)
    assert got == pytest.approx(ref_tanh_critical(0.05), rel=2e-6)  # 1.7609546...
    np.testing.assert_allclose(chi1("tanh", got, 0.05), 1.0, atol=1e-5)


def test_tanh_critical_point_without_bias_is_one():
    # sb2 = 0: q* = 0 is stable up to sw2 = 1 / phi'(0)^2 = 1 (Poole et al. 2016).
    assert critical_sigma_w2("tanh", 0.0) == pytest.approx(1.0, abs=1e-5)


def test_no_crossing_raises():
    with pytest.raises(ValueError, match="no order-to-chaos transition"):
        critical_sigma_w2("tanh", 0.05, lo=0.1, hi=1.5)


# ------------------------------------------------------------------------------------ jit / vmap


def test_vmap_and_jit_match_python_loop():
    grid = jnp.linspace(0.5, 4.0, 8)
    looped = np.array([chi1("tanh", float(s), 0.05) for s in grid])
    np.testing.assert_allclose(jax.vmap(lambda s: chi1("tanh", s, 0.05))(grid), looped, rtol=1e-5)
    np.testing.assert_allclose(jax.jit(lambda s: chi1("tanh", s, 0.05))(grid[3]), looped[3], rtol=1e-5)
    sb_grid = jnp.array([0.0, 0.05, 0.3])
    diagram = chi1_grid("tanh", grid, sb_grid)
    assert diagram.shape == (8, 3)
    np.testing.assert_allclose(diagram[:, 1], looped, rtol=1e-5)
    np.testing.assert_allclose(diagram[2, 2], chi1("tanh", float(grid[2]), 0.3), rtol=1e-5)


# --------------------------------------------------------------------- measurement on a wide MLP


_tanh_layer = jax.jit(lambda h, W, b: jnp.tanh(h @ W.T + b))


def _measured_gain(sw, sb, *, width=1000, depth=10, batch=8, skip=4, seed=0):
    """Mean of |dL/dh_{l-1}|^2 / |dL/dh_l|^2 over layers l >= skip of a random tanh MLP, and q at the top."""
    rng = np.random.default_rng(seed)
    normal = lambda *shape: rng.standard_normal(shape, dtype=np.float32)  # noqa: E731
    h = jnp.asarray(normal(batch, width))  # inputs with q0 = 1
    vjps = []
    for _ in range(depth):
        W = jnp.asarray(normal(width, width) * np.float32(math.sqrt(sw / width)))
        b = jnp.asarray(normal(width) * np.float32(math.sqrt(sb)))
        q = np.mean((np.asarray(h) @ np.asarray(W).T + np.asarray(b)) ** 2)
        h, vjp = jax.vjp(lambda h, W=W, b=b: _tanh_layer(h, W, b), h)
        vjps.append(vjp)
    g = jnp.asarray(normal(batch, width))  # dL/dh_depth of a random linear readout
    ratios = []
    for l in reversed(range(depth)):
        (g_prev,) = vjps[l](g)
        if l >= skip:
            ratios.append(np.sum(np.square(g_prev), axis=1) / np.sum(np.square(g), axis=1))
        g = g_prev
    return float(np.mean(ratios)), float(q)


@pytest.mark.parametrize("sw", [1.5, 3.0])  # ordered, chaotic
def test_chi1_matches_wide_network(sw):
    gain, q = _measured_gain(sw, 0.05)
    assert gain == pytest.approx(float(chi1("tanh", sw, 0.05)), rel=0.04)
    assert q == pytest.approx(float(qstar("tanh", sw, 0.05)), rel=0.08)


# ------------------------------------------------------------------------------ c* and depth scales


def test_cstar_phases():
    np.testing.assert_allclose(cstar("tanh", 1.0, 0.05), 1.0, atol=1e-4)  # ordered
    c = float(cstar("tanh", 4.0, 0.05))  # chaotic
    assert c < 0.9
    np.testing.assert_allclose(correlation_map("tanh", c, 4.0, 0.05), c, atol=1e-5)
    # erf, chaotic: against the closed-form arcsin map iterated in float64
    sw, sb = 4.0, 0.05
    q, c_ref = erf_qstar(sw, sb), 0.5
    for _ in range(500):
        c_ref = erf_cmap(c_ref, sw, sb, q)
    np.testing.assert_allclose(cstar("erf", sw, sb), c_ref, atol=1e-5)


def test_depth_scales_against_finite_differences():
    # ordered tanh: xi_q from the slope of the float64 length map at q*; xi_c = xi_grad since c* = 1
    sw, sb = 1.5, 0.05
    ds = depth_scales("tanh", sw, sb)
    assert isinstance(ds, DepthScales)
    q, h = ref_qstar("tanh", sw, sb), 1e-4
    slope = (ref_length_map("tanh", q + h, sw, sb) - ref_length_map("tanh", q - h, sw, sb)) / (2 * h)
    np.testing.assert_allclose(ds.xi_q, -1 / math.log(slope), rtol=1e-4)
    np.testing.assert_allclose(ds.xi_grad, -1 / math.log(ref_chi1("tanh", sw, sb)), rtol=1e-4)
    np.testing.assert_allclose(ds.xi_c, ds.xi_grad, rtol=1e-3)
    assert ds.xi_grad > 0

    # chaotic erf: xi_c from the slope of the closed-form correlation map at c*; gradients explode
    sw, sb = 4.0, 0.05
    ds = depth_scales("erf", sw, sb)
    q, c = erf_qstar(sw, sb), float(cstar("erf", sw, sb))
    slope = (erf_cmap(c + 1e-5, sw, sb, q) - erf_cmap(c - 1e-5, sw, sb, q)) / 2e-5
    np.testing.assert_allclose(ds.xi_c, -1 / math.log(slope), rtol=1e-3)
    assert ds.xi_grad < 0


def test_xi_c_diverges_at_edge_of_chaos():
    crit = critical_sigma_w2("tanh", 0.05)
    at_edge = depth_scales("tanh", crit, 0.05).xi_c
    assert at_edge > 100
    assert at_edge > 10 * max(depth_scales("tanh", 1.0, 0.05).xi_c, depth_scales("tanh", 4.0, 0.05).xi_c)


# -------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan")])
def test_bad_sigma_w2(bad):
    for call in (
        lambda: qstar("tanh", bad, 0.05),
        lambda: chi1("tanh", bad, 0.05),
        lambda: length_map("tanh", 1.0, bad, 0.05),
        lambda: correlation_map("tanh", 0.5, bad, 0.05),
        lambda: cstar("tanh", bad, 0.05),
        lambda: depth_scales("tanh", bad, 0.05),
        lambda: chi1_grid("tanh", np.array([1.0, bad]), np.array([0.05])),
    ):
        with pytest.raises(ValueError, match="sigma_w2"):
            call()


def test_bad_arguments():
    with pytest.raises(ValueError, match="sigma_b2"):
        chi1("tanh", 1.5, -0.1)
    with pytest.raises(ValueError, match="sigma_b2"):
        critical_sigma_w2("tanh", -0.1)
    with pytest.raises(ValueError, match="q0"):
        qstar("tanh", 1.5, 0.05, q0=0.0)
    with pytest.raises(ValueError, match="c: expected a correlation in"):
        correlation_map("tanh", 1.5, 1.5, 0.05)
    with pytest.raises(ValueError, match="unknown name 'tanhh'"):
        chi1("tanhh", 1.5, 0.05)
    with pytest.raises(TypeError, match="sigma_w2"):
        chi1("tanh", "1.5", 0.05)
    with pytest.raises(TypeError, match="sigma_b2"):
        qstar("tanh", 1.5, None)


# ------------------------------------------------------------------ learner activations and tolerances (issue 12)


@pytest.mark.parametrize("bad", [np.tanh, math.tanh, jax.nn.softmax, lambda x: jnp.round(x).astype(jnp.int32)])
def test_theory_rejects_non_jax_or_non_elementwise_activations(bad):
    with pytest.raises(TypeError, match="activation: must be a differentiable, elementwise JAX function"):
        chi1(bad, 1.5, 0.1)


def test_theory_warns_when_the_derivative_vanishes_almost_everywhere():
    with pytest.warns(UserWarning, match="derivative of sign is 0 almost everywhere"):
        assert float(chi1(jnp.sign, 1.5, 0.1)) == 0.0


def test_theory_accepts_a_learner_lambda_like_the_named_activation():
    np.testing.assert_allclose(chi1(lambda x: jnp.tanh(x), 1.5, 0.1), chi1("tanh", 1.5, 0.1), rtol=1e-6)


@pytest.mark.parametrize("xtol", [0, -1e-3, 1e-20, float("nan")])
def test_critical_sigma_w2_rejects_a_tolerance_it_cannot_reach(xtol):
    with pytest.raises(ValueError, match="xtol: expected a relative tolerance"):
        critical_sigma_w2("tanh", 0.1, xtol=xtol)


def test_relu_log_norm_moments_match_one_sampled_step():
    """One He ReLU step: R = (2/n) Σ relu(ξ)², sampled; n·Var[R] → 5 and n·E[ln R] → -5/2 (leading order in 1/n)."""
    from gradcourse.theory import relu_log_norm_moments

    n = 256
    xi = jax.random.normal(jax.random.PRNGKey(0), (200_000, n))
    R = np.asarray(2.0 / n * jnp.sum(jax.nn.relu(xi) ** 2, axis=1), np.float64)
    mean, var = relu_log_norm_moments(1, n)
    assert np.var(np.log(R)) == pytest.approx(var, rel=0.03)
    assert np.mean(np.log(R)) == pytest.approx(mean, rel=0.05)
    assert relu_log_norm_moments(np.arange(3), n)[1].shape == (3,)
    with pytest.raises(ValueError, match="width"):
        relu_log_norm_moments(1, 0)
    with pytest.raises(ValueError, match="steps"):
        relu_log_norm_moments(-1, 4)
