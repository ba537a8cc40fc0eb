"""Random-matrix predictions for the singular-value spectra of input-output Jacobians (theory layer).

Layer: theory and statistics. Depends on the core (``gc.activations``) and on mean-field theory
(``gc.theory.qstar``); ``gc.experiments`` measures spectra and ``gc.plot.spectrum_histogram`` draws
them against these predictions.

For J = D_L W_L ⋯ D_1 W_1 with D_l = diag φ'(z_l), free probability at infinite width
(Pennington, Schoenholz & Ganguli 2017, "Resurrecting the sigmoid in deep learning through
dynamical isometry: theory and practice", NeurIPS; 2018, "The emergence of spectral universality
in deep networks", AISTATS) gives the moments of the eigenvalues x = s² of JJᵀ: mean m₁ = χ₁^L and
normalised second moment m₂/m₁² = 1 + L (μ₂/μ₁² − 1 + v_W), with μ_k = ∫Dz φ'(√q* z)^{2k} and
v_W = 1 for Gaussian weights, 0 for orthogonal ones. For a deep *linear* Gaussian net (φ' = 1) the x
follow the Fuss–Catalan distribution with moments FC_L(k) = C((L+1)k, k) / (Lk + 1): mean 1,
second moment L + 1.

>>> fuss_catalan_moment(2, 2)
3
>>> round(jacobian_moments("linear", 1.0, 0.0, 4, "orthogonal").spread, 12)
0.0
"""
from __future__ import annotations

import math
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from numpy.polynomial.hermite_e import hermegauss

from .activations import Activation, activation_name, get_activation
from .theory import qstar
from .validate import int_at_least, non_negative_int, one_of, positive_int, real

__all__ = ["SpectrumMoments", "fuss_catalan_density", "fuss_catalan_moment", "jacobian_moments"]

# Gauss–Hermite rule for the standard normal; an even node count keeps z = 0 (ReLU's kink) off the grid.
_Z, _W = hermegauss(128)
_W = _W / math.sqrt(2.0 * math.pi)


def fuss_catalan_moment(depth: int, k: int) -> int:
    """k-th moment of the Fuss–Catalan law of product depth L: C((L+1)k, k) / (Lk + 1) (an integer).

    It is E[x^k] for the squared singular values x of W_L ⋯ W_1, W_l iid N×N with entries
    N(0, 1/N), as N → ∞: mean 1, second moment L + 1, variance L.
    """
    depth = positive_int(depth, "depth")
    k = non_negative_int(k, "k")
    return math.comb((depth + 1) * int(k), int(k)) // (depth * int(k) + 1)


def fuss_catalan_density(depth: int, num: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Density ρ(x) of squared singular values of a product of ``depth`` Gaussian matrices (N → ∞).

    Parametric form (Haagerup & Möller 2013; Neuschel 2014), φ ∈ (0, π/(L+1)):
    x(φ) = sin((L+1)φ)^{L+1} / (sin φ · sin(Lφ)^L),   ρ(x(φ)) = sin²φ · sin(Lφ)^{L−1} / (π sin((L+1)φ)^L).
    Support (0, (L+1)^{L+1}/L^L]; ρ ~ x^{−L/(L+1)} as x → 0. L = 1 is Marchenko–Pastur √(x(4−x))/(2πx).
    Returns ``(x, rho)``, ``num`` points each, x increasing.
    """
    depth = positive_int(depth, "depth")
    num = int_at_least(num, "num", 2)
    L = depth
    # cosine spacing puts points near both ends, where x -> x_max (phi -> 0) and x -> 0 (phi -> pi/(L+1))
    t = 0.5 * (1.0 - np.cos(np.linspace(0.0, np.pi, num + 2)[1:-1]))
    phi = t * np.pi / (L + 1)
    s, sl, sl1 = np.sin(phi), np.sin(L * phi), np.sin((L + 1) * phi)
    x = sl1 ** (L + 1) / (s * sl**L)
    rho = s**2 * sl ** (L - 1) / (np.pi * sl1**L)
    order = np.argsort(x)
    return x[order], rho[order]


class SpectrumMoments(NamedTuple):
    """Moments of the eigenvalues x = s² of JJᵀ predicted at infinite width."""

    mean: float  # m₁ = E[x] = χ₁^L
    second: float  # m₂ = E[x²]
    spread: float  # m₂ / m₁² − 1: the variance of x / m₁ (0 means all singular values equal)


def jacobian_moments(
    activation: str | Activation,
    sigma_w2: float,
    sigma_b2: float,
    depth: int,
    weights: Literal["gaussian", "orthogonal"] = "gaussian",
) -> SpectrumMoments:
    """Mean, second moment and spread of the squared singular values of ∂h_L/∂h_0 (N → ∞).

    Inputs at the fixed point q* (``gc.theory.qstar``). With μ_k = ∫Dz φ'(√q* z)^{2k} and
    χ₁ = σ_w² μ₁: m₁ = χ₁^L and m₂/m₁² − 1 = L (μ₂/μ₁² − 1 + v_W), v_W = 1 for Gaussian
    weights N(0, σ_w²/N), 0 for orthogonal weights scaled by σ_w (Pennington, Schoenholz & Ganguli 2017, 2018).
    """
    phi = get_activation(activation)
    depth = positive_int(depth, "depth")
    one_of(weights, "weights", ("gaussian", "orthogonal"))
    sigma_w2 = real(sigma_w2, "sigma_w2", low=0.0, low_open=True)
    sigma_b2 = real(sigma_b2, "sigma_b2", low=0.0)
    q = float(qstar(activation, sigma_w2, sigma_b2))
    if not np.isfinite(q):
        raise ValueError(
            f"jacobian_moments: no finite fixed point q* for {activation_name(activation)!r} at "
            f"sigma_w2={sigma_w2}, sigma_b2={sigma_b2} (the pre-activations grow without bound)"
        )
    d2 = np.asarray(jnp.vectorize(jax.grad(phi))(jnp.asarray(math.sqrt(q) * _Z, jnp.float32)), np.float64) ** 2
    mu1, mu2 = float(_W @ d2), float(_W @ d2**2)
    mean = (sigma_w2 * mu1) ** depth
    spread = depth * (mu2 / mu1**2 - 1.0 + (1.0 if weights == "gaussian" else 0.0))
    return SpectrumMoments(mean, mean**2 * (1.0 + spread), spread)
