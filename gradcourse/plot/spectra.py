"""Singular-value spectra of input-output Jacobians, drawn against random-matrix theory.

Theory (N → ∞), for J = D_L W_L ⋯ D_1 W_1 with D_l = diag φ'(z_l) (Pennington, Schoenholz &
Ganguli 2017): the eigenvalues x = s² of JJᵀ have mean m₁ = χ₁^L and normalised second moment
m₂/m₁² = 1 + L (μ₂/μ₁² − 1 + v_W), where μ_k = ∫Dz φ'(√q* z)^{2k} and v_W = 1 for Gaussian
weights, 0 for orthogonal ones. For a deep *linear* Gaussian net (φ' = 1) the x follow the
Fuss–Catalan distribution with moments FC_L(k) = C((L+1)k, k) / (Lk + 1): mean 1, second moment L+1.
"""
from __future__ import annotations

import math
from typing import Any, Literal, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from numpy.polynomial.hermite_e import hermegauss

from ..activations import Activation, activation_name, get_activation

__all__ = ["SpectrumMoments", "fuss_catalan_density", "fuss_catalan_moment", "jacobian_moments", "spectrum_histogram"]

# Gauss–Hermite rule for the standard normal; an even node count keeps z = 0 (ReLU's kink) off the grid.
_Z, _W = hermegauss(128)
_W = _W / math.sqrt(2.0 * math.pi)


def _depth(depth: Any) -> int:
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)):
        raise TypeError(f"depth: expected a positive int, got {type(depth).__name__}")
    if depth < 1:
        raise ValueError(f"depth: expected a positive int, got {depth}")
    return int(depth)


def fuss_catalan_moment(depth: int, k: int) -> int:
    """k-th moment of the Fuss–Catalan law of product depth L: C((L+1)k, k) / (Lk + 1) (an integer).

    It is E[x^k] for the squared singular values x of W_L ⋯ W_1, W_l iid N×N with entries
    N(0, 1/N), as N → ∞: mean 1, second moment L + 1, variance L.
    """
    depth = _depth(depth)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise ValueError(f"k: expected an int >= 0, got {k!r}")
    return math.comb((depth + 1) * int(k), int(k)) // (depth * int(k) + 1)


def fuss_catalan_density(depth: int, num: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Density ρ(x) of squared singular values of a product of ``depth`` Gaussian matrices (N → ∞).

    Parametric form (Haagerup & Möller 2013; Neuschel 2014), φ ∈ (0, π/(L+1)):
    x(φ) = sin((L+1)φ)^{L+1} / (sin φ · sin(Lφ)^L),   ρ(x(φ)) = sin²φ · sin(Lφ)^{L−1} / (π sin((L+1)φ)^L).
    Support (0, (L+1)^{L+1}/L^L]; ρ ~ x^{−L/(L+1)} as x → 0. L = 1 is Marchenko–Pastur √(x(4−x))/(2πx).
    Returns ``(x, rho)``, ``num`` points each, x increasing.
    """
    depth = _depth(depth)
    if isinstance(num, bool) or not isinstance(num, int) or num < 2:
        raise ValueError(f"num: expected an int >= 2, got {num!r}")
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
    weights N(0, σ_w²/N), 0 for orthogonal weights scaled by σ_w (Pennington et al. 2017).
    """
    from .. import theory  # local import: gc.theory is a sibling module

    phi = get_activation(activation)
    depth = _depth(depth)
    if weights not in ("gaussian", "orthogonal"):
        raise ValueError(f"weights: expected 'gaussian' or 'orthogonal', got {weights!r}")
    for name, v in (("sigma_w2", sigma_w2), ("sigma_b2", sigma_b2)):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.floating)) or not np.isfinite(v):
            raise TypeError(f"{name}: expected a finite number, got {v!r}")
    if sigma_w2 <= 0 or sigma_b2 < 0:
        raise ValueError(f"sigma_w2 must be > 0 and sigma_b2 >= 0, got {sigma_w2}, {sigma_b2}")
    q = float(theory.qstar(activation, sigma_w2, sigma_b2))
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


def spectrum_histogram(
    values: Mapping[str, Any] | Any,
    *,
    theory: Mapping[str, tuple[Any, Any]] | None = None,
    bins: int = 40,
    log_x: bool = False,
    rel_floor: float | None = None,
    xlabel: str = "singular value $s$",
    ax: plt.Axes | None = None,
) -> tuple[plt.Figure, plt.Axes]:
    """Histogram densities of spectra as points (one series per key), theory densities as lines.

    ``values``: an array, or ``{label: array}``. ``theory``: ``{label: (x, density per unit x)}``,
    drawn as lines (same colour as the measured series of the same label), clipped to the range of
    the bins. ``log_x=False``: linear bins, density per unit x on a log y-axis. ``log_x=True``:
    log-spaced bins, and the y-axis is the density per decade, ρ(x)·x·ln 10 (theory transformed
    alike), on a linear scale — readable when x spans many decades. ``rel_floor``: drop values
    below ``rel_floor`` × the series' maximum (e.g. 1e-6 for float32 singular values, whose
    smaller values are rounding noise); the legend says how many. Returns ``(fig, ax)``.
    """
    series = dict(values) if isinstance(values, Mapping) else {"measured": values}
    if not series:
        raise ValueError("values: expected at least one spectrum, got an empty mapping")
    if rel_floor is not None and not (isinstance(rel_floor, (int, float)) and 0 <= rel_floor < 1):
        raise ValueError(f"rel_floor: expected None or a number in [0, 1), got {rel_floor!r}")
    arrays, dropped = {}, {}
    for label, v in series.items():
        a = np.asarray(v, dtype=np.float64).ravel()
        if a.size == 0 or not np.all(np.isfinite(a)):
            raise ValueError(f"values[{label!r}]: expected a non-empty array of finite numbers")
        if rel_floor is not None:
            keep = a > rel_floor * a.max()
            dropped[label], a = int(a.size - keep.sum()), a[keep]
        if log_x and (a.size == 0 or np.any(a <= 0)):
            raise ValueError(f"values[{label!r}]: log_x=True needs positive values (pass rel_floor to drop zeros)")
        arrays[label] = a
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ValueError(f"bins: expected a positive int, got {bins!r}")
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6, 4))
    lo = min(a.min() for a in arrays.values())
    hi = max(a.max() for a in arrays.values())
    if hi <= lo:
        hi = lo + 1e-6 * max(abs(lo), 1.0)
    edges = np.geomspace(lo, hi, bins + 1) if log_x else np.linspace(min(lo, 0.0), hi, bins + 1)
    centres = np.sqrt(edges[:-1] * edges[1:]) if log_x else 0.5 * (edges[:-1] + edges[1:])
    per_decade = (lambda x, d: d * x * np.log(10.0)) if log_x else (lambda x, d: d)  # noqa: E731  (theory only)
    colours = {label: f"C{i}" for i, label in enumerate(arrays)}
    lowest = np.inf
    for label, a in arrays.items():
        if log_x:  # density per decade: histogram of log10 x
            dens, _ = np.histogram(np.log10(a), bins=np.log10(edges), density=True)
        else:
            dens, _ = np.histogram(a, bins=edges, density=True)
        lowest = min(lowest, float(np.min(dens[dens > 0])))
        keep = dens > 0
        note = f"; {dropped[label]} < {rel_floor:g}·max hidden" if dropped.get(label) else ""
        ax.plot(centres[keep], dens[keep], "o", ms=4, color=colours[label], label=f"{label} (measured{note})")
    for label, (x, rho) in (theory or {}).items():
        x, rho = np.asarray(x, dtype=np.float64), np.asarray(rho, dtype=np.float64)
        inside = (x >= centres[0]) & (x <= edges[-1])
        colour = colours.setdefault(label, f"C{len(colours)}")
        ax.plot(x[inside], per_decade(x[inside], rho[inside]), "-", color=colour, lw=1.6, label=f"{label} (theory)")
    if log_x:
        ax.set_xscale("log")
        ax.set_ylabel("density per decade")
        ax.set_ylim(bottom=0)
    else:
        ax.set_yscale("log")
        ax.set_ylim(bottom=0.3 * lowest)  # theory densities vanishing at an edge would stretch the axis
        ax.set_ylabel("density")
    ax.set_xlabel(xlabel)
    ax.legend(fontsize=8)
    return fig, ax
