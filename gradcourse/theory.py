"""Mean-field signal propagation in wide random fully connected networks.

Poole et al. (2016), "Exponential expressivity in deep neural networks through transient chaos";
Schoenholz et al. (2017), "Deep Information Propagation".

Convention: ``z_l = W_l h_{l-1} + b_l``, ``h_l = phi(z_l)`` with ``W_ij ~ N(0, sigma_w2 / fan_in)`` and
``b_i ~ N(0, sigma_b2)``.  At infinite width the pre-activation variance ``q`` and the correlation ``c``
between two inputs obey deterministic one-layer maps; their fixed points ``q*``, ``c*`` and the slopes of
the maps there (``chi1``, the depth scales) decide whether signals and gradients vanish, explode or
survive with depth.  ``chi1 = 1`` is the order-to-chaos boundary ("edge of chaos").

Gaussian integrals ``∫Dz f(z)`` (``Dz`` the standard normal measure) use a fixed quadrature rule split at
``z = 0``, where ReLU-like activations have their kink; the two-dimensional ones use polar coordinates with
the angle split where ``u1`` or ``u2`` changes sign.  Both are exact to float64 rounding for the usual
activations up to ``q ~ 100`` (a plain Gauss-Hermite rule is off by ~1% for SELU's ``chi1``).
Derivatives of ``phi`` come from ``jax.grad``.

Everything except :func:`critical_sigma_w2` is a pure JAX function of ``sigma_w2`` / ``sigma_b2`` / ``q``
/ ``c``: it works under ``jax.jit`` (with the activation static or closed over) and ``jax.vmap``::

    grid = jnp.linspace(0.5, 4.0, 64)
    chi = jax.vmap(lambda s: chi1("tanh", s, 0.05))(grid)

Accuracy is that of the default float dtype (float32 unless ``jax_enable_x64``): about 1e-5 relative.
"""
from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from numpy.polynomial.legendre import leggauss

from .activations import ACTIVATIONS, Activation, get_activation
from .validate import real

__all__ = [
    "DepthScales",
    "cstar",
    "chi1",
    "correlation_map",
    "critical_sigma_w2",
    "depth_scales",
    "length_map",
    "chi1_grid",
    "edge_of_chaos",
    "relu_dead_fraction",
    "relu_log_norm_moments",
    "qstar",
]

ArrayLike = jax.typing.ArrayLike

# --------------------------------------------------------------------------------- quadrature


def _half_line_rule(n: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Composite Gauss-Legendre rule for ∫_0^9 g(r) dr, panels refined toward 0 (down to width 1/32) so
    that sharp features of ``phi(√q r)`` at ``r ~ 1/√q`` are resolved.  Beyond r = 9 a Gaussian weighs < 1e-17."""
    edges = np.concatenate([[0.0], 2.0 ** np.arange(-5, 0), np.arange(1.0, 10.0)])
    x, w = leggauss(n)
    lo, hi = edges[:-1, None], edges[1:, None]
    return ((lo + hi) / 2 + (hi - lo) / 2 * x).ravel(), ((hi - lo) / 2 * w).ravel()


_R, _WR = _half_line_rule()
# 1-D: ∫Dz f(z) ≈ Σ _W f(_Z), the two half-lines z < 0 and z > 0 (z = 0 is never a node).
_Z = np.concatenate([-_R[::-1], _R])
_W = np.concatenate([_WR[::-1], _WR]) * np.exp(-_Z**2 / 2) / math.sqrt(2 * math.pi)
# 2-D, polar: radial weight r exp(-r²/2) dr (integrates to 1); angles: Gauss-Legendre on [0, 1] per sector.
_W_RADIAL = _WR * _R * np.exp(-_R**2 / 2)
_T, _WT = leggauss(24)
_T, _WT = (_T + 1) / 2, _WT / 2

_MAX_ITER = 10_000  # iterations of a map before giving up
_Q_MAX = 1e12  # q beyond this counts as diverged


# ----------------------------------------------------------------------------------- helpers


@functools.lru_cache(maxsize=64)
def _checked_callable(phi: Activation) -> Activation:
    """``phi`` if it is a differentiable, elementwise JAX function of a float array; else a TypeError.

    Checked once per function (cached) on a few points: traceable by JAX (``np.tanh`` / ``math.tanh``
    are not), float in float out of the same shape, elementwise (each output depends only on its own
    input), and a warning when its derivative is 0 at every test point (``jnp.sign``, ``jnp.round``:
    then χ₁ = 0 and no gradient flows).
    """
    fix = "must be a differentiable, elementwise JAX function such as jnp.tanh or jax.nn.relu"
    name = getattr(phi, "__name__", type(phi).__name__)
    x = jnp.linspace(-2.7, 2.3, 7)
    try:
        out = jax.eval_shape(phi, jax.ShapeDtypeStruct(x.shape, x.dtype))
    except Exception as e:  # noqa: BLE001 - any failure to trace is the learner's activation
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise TypeError(
            f"activation: {fix} (not np.tanh or math.tanh); calling {name} on a JAX array failed: {first}"
        ) from None
    if not isinstance(out, jax.ShapeDtypeStruct) or out.shape != x.shape or not jnp.issubdtype(out.dtype, jnp.floating):
        got = f"shape {tuple(out.shape)} and dtype {out.dtype}" if hasattr(out, "shape") else type(out).__name__
        raise TypeError(f"activation: {fix}; {name} maps a float array of shape {x.shape} to {got}")
    whole = phi(x)
    each = jnp.stack([phi(x[i : i + 1])[0] for i in range(x.size)])
    if not bool(jnp.allclose(whole, each, rtol=1e-5, atol=1e-6, equal_nan=True)):
        raise TypeError(f"activation: {fix}; {name} is not elementwise (an output depends on other inputs)")
    try:
        slopes = jax.vmap(jax.grad(lambda v: phi(v[None])[0]))(x)
    except Exception as e:  # noqa: BLE001
        raise TypeError(f"activation: {fix}; jax.grad of {name} failed: {str(e).splitlines()[0]}") from None
    if bool(jnp.all(slopes == 0)):
        warnings.warn(
            f"activation: the derivative of {name} is 0 almost everywhere (as for jnp.sign or jnp.round), so "
            f"chi1 = 0 and no gradient flows through it; use a differentiable activation",
            UserWarning,
            stacklevel=4,
        )
    return phi


def _activation(activation: str | Activation) -> Activation:
    """``get_activation``, plus the checks of ``_checked_callable`` for a learner's own function."""
    phi = get_activation(activation)
    if phi in ACTIVATIONS.values():
        return phi
    try:
        return _checked_callable(phi)
    except TypeError as e:
        if "unhashable" in str(e):  # e.g. a callable object without __hash__: check it uncached
            return _checked_callable.__wrapped__(phi)
        raise


def _deriv(phi: Activation) -> Activation:
    """Elementwise derivative of an elementwise ``phi``, by ``jax.grad``."""
    return jnp.vectorize(jax.grad(phi))


def _float(x: ArrayLike) -> jax.Array:
    return jnp.asarray(x, dtype=jnp.result_type(float))


def _rtol(x: jax.Array) -> float:
    return 16 * float(jnp.finfo(x.dtype).eps)


def _check(name: str, value, *, lo: float, hi: float = math.inf, lo_open: bool = False, expected: str):
    """Raise for a concrete bad value (scalar or array); tracers (under jit/vmap) pass through unchecked."""
    real(value, name, low=lo, high=hi, low_open=lo_open, array=True, expected=expected)


def _check_sigmas(sigma_w2, sigma_b2) -> None:
    _check("sigma_w2", sigma_w2, lo=0.0, lo_open=True, expected="a finite weight variance > 0")
    _check("sigma_b2", sigma_b2, lo=0.0, expected="a finite bias variance >= 0")


def _xi(chi: jax.Array) -> jax.Array:
    """Depth scale ξ = -1 / log χ (+inf at χ = 1)."""
    return jnp.where(chi == 1.0, jnp.inf, -1.0 / jnp.log(chi))


def _gauss(f: Callable, q: jax.Array) -> jax.Array:
    """∫Dz f(√q z)."""
    z, w = jnp.asarray(_Z, q.dtype), jnp.asarray(_W, q.dtype)
    u = jnp.sqrt(q)[..., None] * z
    return jnp.sum(w * f(u), axis=-1)


def _gauss2(f1: Callable, f2: Callable, q: jax.Array, c: jax.Array) -> jax.Array:
    """∫Dz1 Dz2 f1(u1) f2(u2) with u1 = √q z1, u2 = √q (c z1 + √(1-c²) z2).

    In polar coordinates z = r (cos θ, sin θ) and c = cos θc: u1 = √q r cos θ, u2 = √q r cos(θ - θc).  The
    angle runs over [π/2, 5π/2] in four sectors cut where u1 or u2 changes sign.
    """
    dt = q.dtype
    r, w_r, t, w_t = (jnp.asarray(a, dt) for a in (_R, _W_RADIAL, _T, _WT))
    tc = jnp.arccos(jnp.clip(c, -1.0, 1.0))
    half = jnp.full_like(tc, jnp.pi / 2)
    starts = jnp.stack([half, half + tc, 3 * half, 3 * half + tc], axis=-1)  # (..., 4)
    widths = jnp.stack([tc, 2 * half - tc, tc, 2 * half - tc], axis=-1)
    theta = (starts[..., None] + widths[..., None] * t).reshape(*tc.shape, -1)  # (..., 4 n_t)
    w_theta = (widths[..., None] * w_t).reshape(theta.shape) / (2 * jnp.pi)
    rho = jnp.sqrt(q)[..., None, None] * r[:, None]  # (..., n_r, 1)
    u1 = rho * jnp.cos(theta)[..., None, :]
    u2 = rho * jnp.cos(theta - tc[..., None])[..., None, :]
    return jnp.sum(w_r[:, None] * w_theta[..., None, :] * f1(u1) * f2(u2), axis=(-2, -1))


def _iterate(step: Callable, x0: jax.Array, rtol: float, atol: float, stop: Callable | None = None):
    """Iterate ``x, r <- step(x)`` (``r`` the residual ``map(x) - x``) until ``|r| <= rtol |x| + atol``,
    ``stop(x)``, or ``_MAX_ITER`` steps.  Returns the last iterate, its residual and whether it converged.
    """
    stop = stop or (lambda x: jnp.zeros(jnp.shape(x), bool))

    def done(x, r):
        return jnp.abs(r) <= rtol * jnp.abs(x) + atol

    def cond(state):
        i, x, r = state
        return (i < _MAX_ITER) & jnp.any(~done(x, r) & ~stop(x))

    def body(state):
        i, x, _ = state
        return i + 1, *step(x)

    _, x, r = lax.while_loop(cond, body, (0, x0, jnp.full_like(x0, jnp.inf)))
    return x, r, done(x, r)


# ------------------------------------------------------------------------- jitted cores


@functools.partial(jax.jit, static_argnums=0)
def _length_map(phi, q, sigma_w2, sigma_b2):
    return sigma_w2 * _gauss(lambda u: phi(u) ** 2, q) + sigma_b2


@functools.partial(jax.jit, static_argnums=0)
def _qstar(phi, sigma_w2, sigma_b2, q0):
    q0 = jnp.broadcast_to(q0, jnp.broadcast_shapes(*map(jnp.shape, (sigma_w2, sigma_b2, q0))))

    def residual(q):  # L(q) - q, with sigma_b2 added last so that it is not lost against a huge q
        return (sigma_w2 * _gauss(lambda u: phi(u) ** 2, q) - q) + sigma_b2

    def step(q):
        # A plain step q -> L(q), or the Newton step on L(q) = q where L is contracting (0 <= L' < 1): same
        # direction, further by 1/(1 - L').  It keeps convergence fast near the edge of chaos (L' -> 1).
        r, dr = jax.jvp(residual, (q,), (jnp.ones_like(q),))
        newton = q - r / dr
        ok = (dr >= -1) & (dr < 0) & jnp.isfinite(newton) & (newton > 0) & (newton >= sigma_b2)
        return jnp.where(ok, newton, q + r), r

    q, r, converged = _iterate(step, q0, rtol=_rtol(q0), atol=1e-30, stop=lambda q: ~(q < _Q_MAX))  # ~: nan
    # Past _Q_MAX, or unconverged and still growing: no finite fixed point reached -> +inf.
    # Unconverged but shrinking (slow approach to a fixed point): keep the last iterate.
    diverged = ~(q < _Q_MAX) | (~converged & (r > 0))
    return jnp.where(diverged & ~jnp.isnan(q), jnp.inf, q)


@functools.partial(jax.jit, static_argnums=0)
def _chi1_at(phi, sigma_w2, q):
    return sigma_w2 * _gauss(lambda u: _deriv(phi)(u) ** 2, q)


def _q_eval(phi, sigma_w2, sigma_b2):
    """q* at which to evaluate integrals; where q* = inf, q = _Q_MAX stands in for the limit q -> inf."""
    return jnp.minimum(_qstar(phi, sigma_w2, sigma_b2, jnp.ones_like(sigma_w2)), _Q_MAX)


def _chi1(phi, sigma_w2, sigma_b2):  # not jitted as a whole: reuses the compiled _qstar
    return _chi1_at(phi, sigma_w2, _q_eval(phi, sigma_w2, sigma_b2))


@functools.partial(jax.jit, static_argnums=0)
def _correlation_map(phi, c, sigma_w2, sigma_b2, q):
    cross = sigma_w2 * _gauss2(phi, phi, q, c) + sigma_b2
    return jnp.clip(cross / _length_map(phi, q, sigma_w2, sigma_b2), -1.0, 1.0)


@functools.partial(jax.jit, static_argnums=0)
def _cstar(phi, sigma_w2, sigma_b2, q, c0):
    c0 = jnp.broadcast_to(c0, jnp.broadcast_shapes(*map(jnp.shape, (sigma_w2, sigma_b2, c0))))

    def step(c):
        new = _correlation_map(phi, c, sigma_w2, sigma_b2, q)
        return new, new - c

    c, _, _ = _iterate(step, c0, rtol=0.0, atol=_rtol(c0))
    return c


# ----------------------------------------------------------------------------- public API


def length_map(activation: str | Activation, q: ArrayLike, sigma_w2: ArrayLike, sigma_b2: ArrayLike) -> jax.Array:
    """One layer of the length (variance) map: ``q_l = σ_w² ∫Dz φ(√q_{l-1} z)² + σ_b²``.

    >>> round(float(length_map("linear", 2.0, 1.5, 0.1)), 4)  # σ_w² q + σ_b²
    3.1
    """
    phi = _activation(activation)
    _check("q", q, lo=0.0, expected="a finite pre-activation variance >= 0")
    _check_sigmas(sigma_w2, sigma_b2)
    return _length_map(phi, _float(q), _float(sigma_w2), _float(sigma_b2))


def qstar(activation: str | Activation, sigma_w2: ArrayLike, sigma_b2: ArrayLike, q0: ArrayLike = 1.0) -> jax.Array:
    """Fixed point ``q* = σ_w² ∫Dz φ(√q* z)² + σ_b²`` of :func:`length_map`, reached by iterating from ``q0``.

    Iterates the map (taking a Newton step instead wherever the map is contracting, ``0 <= dL/dq < 1``, so
    that it also converges quickly near the edge of chaos) until the residual ``L(q) - q`` is at the float
    resolution, for at most 10 000 steps.  Returns ``+inf`` where the iterates grow without bound (ReLU
    with ``σ_w² > 2``, linear with ``σ_w² > 1``).  Exactly on such a boundary (ReLU at ``σ_w² = 2``) float32
    stalls at a huge finite ``q ~ σ_b² / eps`` instead.

    >>> round(float(qstar("linear", 0.5, 1.0)), 4)  # q* = σ_b² / (1 − σ_w²)
    2.0
    """
    phi = _activation(activation)
    _check_sigmas(sigma_w2, sigma_b2)
    _check("q0", q0, lo=0.0, lo_open=True, expected="a finite starting variance > 0")
    return _qstar(phi, _float(sigma_w2), _float(sigma_b2), _float(q0))


def chi1(activation: str | Activation, sigma_w2: ArrayLike, sigma_b2: ArrayLike) -> jax.Array:
    """``χ₁ = σ_w² ∫Dz φ'(√q* z)²``: the mean per-layer gain of squared gradient norms.

    At large width ``‖∂L/∂h_{l-1}‖² / ‖∂L/∂h_l‖² → χ₁``; ``χ₁ < 1`` is the ordered phase (vanishing
    gradients), ``χ₁ > 1`` the chaotic phase (exploding gradients), ``χ₁ = 1`` the edge of chaos.  Where
    ``q* = ∞`` this is the limit ``q -> ∞`` (``σ_w² / 2`` for ReLU).

    >>> round(float(chi1("relu", 2.0, 0.0)), 4)  # He initialisation is critical
    1.0
    """
    phi = _activation(activation)
    _check_sigmas(sigma_w2, sigma_b2)
    return _chi1(phi, _float(sigma_w2), _float(sigma_b2))


def correlation_map(
    activation: str | Activation,
    c: ArrayLike,
    sigma_w2: ArrayLike,
    sigma_b2: ArrayLike,
    q: ArrayLike | None = None,
) -> jax.Array:
    """One layer of the correlation map between two inputs of equal variance ``q`` (default ``q*``).

    ``c_l = (σ_w² ∫Dz1Dz2 φ(u1) φ(u2) + σ_b²) / q_l`` with ``u1 = √q z1``, ``u2 = √q (c z1 + √(1-c²) z2)``
    and ``q_l`` = :func:`length_map` of ``q`` (which is ``q*`` itself when ``q = q*``), so ``c = 1`` maps to 1.

    >>> round(float(correlation_map("linear", 0.5, 1.0, 0.0)), 4)
    0.5
    """
    phi = _activation(activation)
    _check("c", c, lo=-1.0, hi=1.0, expected="a correlation in [-1, 1]")
    _check_sigmas(sigma_w2, sigma_b2)
    sigma_w2, sigma_b2 = _float(sigma_w2), _float(sigma_b2)
    if q is None:
        q = _q_eval(phi, sigma_w2, sigma_b2)
    else:
        _check("q", q, lo=0.0, expected="a finite pre-activation variance >= 0")
    return _correlation_map(phi, _float(c), sigma_w2, sigma_b2, _float(q))


def cstar(activation: str | Activation, sigma_w2: ArrayLike, sigma_b2: ArrayLike, c0: ArrayLike = 0.5) -> jax.Array:
    """Stable fixed point ``c*`` of :func:`correlation_map` at ``q = q*``, reached by iterating from ``c0``.

    ``c = 1`` is always a fixed point; it is the attracting one in the ordered phase (``χ₁ < 1``: inputs
    become identical with depth), while in the chaotic phase iterates settle at some ``c* < 1``.  Starting
    away from 1 (default 0.5) finds whichever is attracting.  Near ``χ₁ = 1`` convergence is slow and the
    result is the iterate after 10 000 layers.

    >>> round(float(cstar("relu", 2.0, 0.0)), 2)  # at criticality correlations go to 1
    1.0
    """
    phi = _activation(activation)
    _check_sigmas(sigma_w2, sigma_b2)
    _check("c0", c0, lo=-1.0, hi=1.0, expected="a starting correlation in [-1, 1]")
    sigma_w2, sigma_b2 = _float(sigma_w2), _float(sigma_b2)
    return _cstar(phi, sigma_w2, sigma_b2, _q_eval(phi, sigma_w2, sigma_b2), _float(c0))


class DepthScales(NamedTuple):
    """Depth scales (in layers) of Schoenholz et al. (2017): deviations decay as ``exp(-l / ξ)``."""

    xi_q: jax.Array  # approach of q_l to q*
    xi_c: jax.Array  # approach of c_l to c* (diverges at the edge of chaos)
    xi_grad: jax.Array  # gradients: ‖∂L/∂h_{L-l}‖² ∝ exp(-l / ξ_∇); negative (growth) in the chaotic phase


@functools.partial(jax.jit, static_argnums=0)
def _depth_scales_at(phi, sigma_w2, q, c):
    dphi = _deriv(phi)
    chi_1 = sigma_w2 * _gauss(lambda u: dphi(u) ** 2, q)
    chi_q = sigma_w2 * _gauss(lambda u: _deriv(dphi)(u) * phi(u) + dphi(u) ** 2, q)
    chi_c = sigma_w2 * _gauss2(dphi, dphi, q, c)
    return DepthScales(_xi(jnp.abs(chi_q)), _xi(jnp.abs(chi_c)), _xi(chi_1))


def depth_scales(activation: str | Activation, sigma_w2: ArrayLike, sigma_b2: ArrayLike) -> DepthScales:
    """Depth scales ``ξ = 1 / -log χ`` of Schoenholz et al. (2017), evaluated at ``q*`` and ``c*``.

    ``χ_q = σ_w² ∫Dz [φ''(√q* z) φ(√q* z) + φ'(√q* z)²]`` (slope of the length map at ``q*``),
    ``χ_c = σ_w² ∫Dz1Dz2 φ'(u1) φ'(u2)`` at ``c*`` (slope of the correlation map; equals ``χ₁`` when
    ``c* = 1``) and ``χ₁``; ``ξ_q`` and ``ξ_c`` use ``|χ|`` (an oscillating approach decays as ``|χ|^l``).
    ``ξ_c`` diverges at the edge of chaos.  ``ξ_grad`` is positive in the ordered phase (squared gradient
    norms shrink as ``exp(-l/ξ_grad)`` going back ``l`` layers) and negative in the chaotic phase (they grow
    as ``exp(l/|ξ_grad|)``).  Where ``q* = ∞`` (ReLU, ``σ_w² > 2``) the integrals are taken in the limit
    ``q -> ∞``: ``ξ_q < 0`` and ``ξ_grad < 0`` then give the growth rates; ``ξ_c`` is not meaningful there.
    """
    phi = _activation(activation)
    _check_sigmas(sigma_w2, sigma_b2)
    sigma_w2, sigma_b2 = _float(sigma_w2), _float(sigma_b2)
    q = _q_eval(phi, sigma_w2, sigma_b2)
    c = _cstar(phi, sigma_w2, sigma_b2, q, jnp.full_like(q, 0.5))
    return _depth_scales_at(phi, sigma_w2, q, c)


def chi1_grid(activation: str | Activation, sigma_w2_grid: ArrayLike, sigma_b2_grid: ArrayLike) -> jax.Array:
    """``χ₁`` on a grid, for ``gc.plot.phase_diagram`` to draw.

    Entry ``[i, j]`` is ``chi1(activation, sigma_w2_grid[i], sigma_b2_grid[j])``.

    >>> chi1_grid("relu", jnp.array([1.0, 2.0]), jnp.array([0.0])).shape  # (len(sigma_w2_grid), len(sigma_b2_grid))
    (2, 1)
    """
    phi = _activation(activation)
    _check_sigmas(sigma_w2_grid, sigma_b2_grid)
    sw, sb = _float(sigma_w2_grid), _float(sigma_b2_grid)
    if sw.ndim != 1 or sb.ndim != 1:
        raise ValueError(f"sigma_w2_grid, sigma_b2_grid: expected 1-D grids, got shapes {sw.shape}, {sb.shape}")
    row = jax.vmap(lambda s_w, s_b: _chi1(phi, s_w, s_b), in_axes=(None, 0))
    return jax.vmap(row, in_axes=(0, None))(sw, sb)


def critical_sigma_w2(
    activation: str | Activation, sigma_b2: float, lo: float = 1e-3, hi: float = 100.0, xtol: float = 1e-6
) -> float:
    """The ``σ_w²`` where ``χ₁ = 1`` (order-to-chaos boundary) at bias variance ``sigma_b2``.

    Bisection, to relative width ``xtol``, on the first sign change of ``χ₁(σ_w²) - 1`` on a log-spaced grid
    over ``[lo, hi]``; ``χ₁`` is evaluated in float64 (``jax.enable_x64``), since ``χ₁ - 1`` can be tiny
    near the boundary (quadratic in the distance to it at ``σ_b² = 0``).  Plain Python, not jittable.
    Raises ``ValueError`` if ``χ₁ - 1`` does not change sign in ``[lo, hi]``.  For GELU / SiLU at small
    ``σ_b²`` the crossing is a jump: ``χ₁ < 1`` until the finite ``q*`` disappears and ``q* = ∞`` beyond.

    >>> round(float(critical_sigma_w2("tanh", 0.0)), 4)
    1.0
    """
    phi = _activation(activation)
    _check("sigma_b2", sigma_b2, lo=0.0, expected="a finite bias variance >= 0")
    _check("lo", lo, lo=0.0, lo_open=True, expected="a lower search bound > 0")
    _check("hi", hi, lo=lo, lo_open=True, expected=f"an upper search bound > lo = {lo}")
    # bisection halves b - a until b - a <= xtol * b; below float64's resolution that never happens
    xtol = real(xtol, "xtol", low=1e-15, high=1.0, expected="a relative tolerance in [1e-15, 1] (e.g. 1e-6)")

    def f(sigma_w2: float) -> float:
        with jax.enable_x64(True):  # chi1 - 1 is tiny near the boundary: resolve its sign in float64
            return float(_chi1(phi, jnp.float64(sigma_w2), jnp.float64(sigma_b2))) - 1.0

    grid = np.geomspace(lo, hi, 25)
    signs = [f(s) > 0 for s in grid]
    flips = [i for i in range(len(grid) - 1) if signs[i] != signs[i + 1]]
    if not flips:
        side = "above" if signs[0] else "below"
        raise ValueError(
            f"critical_sigma_w2: chi1 stays {side} 1 for all sigma_w2 in [{lo}, {hi}] at sigma_b2={sigma_b2} "
            f"with activation {activation!r}; no order-to-chaos transition in that range"
        )
    a, b = grid[flips[0]], grid[flips[0] + 1]
    a_chaotic = signs[flips[0]]
    while b - a > xtol * b:
        m = 0.5 * (a + b)
        if (f(m) > 0) == a_chaotic:
            a = m
        else:
            b = m
    return 0.5 * (a + b)


def edge_of_chaos(
    activation: str | Activation, sigma_b2: ArrayLike, *, lo: float = 0.05, hi: float = 20.0
) -> np.ndarray:
    """The χ₁ = 1 line: critical σ_w² for each σ_b² in ``sigma_b2`` (shape (n,)); NaN where χ₁ does not cross 1.

    :func:`critical_sigma_w2` (a bisection in ``[lo, hi]``) at each σ_b²; ``gc.plot.phase_diagram`` draws the
    result as ``boundary=(sigma_b2, edge_of_chaos(...))``. For tanh at σ_b² = 0.05 it is ≈ 1.76; for ReLU 2.

    >>> edge_of_chaos("relu", [0.0, 0.1]).round(4).tolist()
    [2.0, 2.0]
    """
    sb = np.atleast_1d(np.asarray(sigma_b2, dtype=np.float64))
    if sb.ndim != 1 or not np.all(np.isfinite(sb)) or np.any(sb < 0):
        raise ValueError(f"sigma_b2: expected finite bias variances >= 0 (a number or a 1-D array), got {sigma_b2!r}")
    out = np.full(sb.shape, np.nan)
    for i, s in enumerate(sb):
        try:
            out[i] = critical_sigma_w2(activation, float(s), lo=lo, hi=hi)
        except ValueError:
            pass  # no transition in [lo, hi]
    return out


def relu_log_norm_moments(steps: ArrayLike, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of ln(‖s_k‖² / ‖s_0‖²) after ``steps`` = k He-initialised ReLU layers of ``width`` n.

    Finite-width correction to mean field (Hanin & Rolnick 2018; Hanin 2018). With σ_w² = 2, given the
    layer's input, one forward step multiplies the squared norm by R = (2/n) Σ_j relu(ξ_j)², ξ_j iid N(0, 1):
    E[R] = 1 and Var[R] = (4/n)(E[relu⁴] − E[relu²]²) = (4/n)(3/2 − 1/4) = 5/n. The steps are independent, so
    ln ‖h_k‖² random-walks: variance 5k/n and, since E[ln R] ≈ −Var[R]/2, mean −5k/(2n) (to leading order in
    1/n). Backward, ‖∂L/∂h‖² is multiplied by (2/n)‖g ⊙ m‖²/‖g‖² · χ²_n: the mask fraction contributes 3/n and
    the χ² factor 2/n, again 5/n per layer. Mean field (n → ∞) says 0 and 0: He init is flat only on average.
    Returns ``(mean, variance)``, each with the shape of ``steps``.

    >>> [a.tolist() for a in relu_log_norm_moments([0, 64], 64)]
    [[0.0, -2.5], [0.0, 5.0]]
    """
    k = np.asarray(steps, dtype=np.float64)
    if not np.all(np.isfinite(k)) or np.any(k < 0):
        raise ValueError(f"steps: expected numbers of layers >= 0, got {steps!r}")
    if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or width < 1:
        raise ValueError(f"width: expected a positive integer, got {width!r}")
    return -2.5 * k / width + 0.0, 5.0 * k / width  # + 0.0: no -0.0 at k = 0


def relu_dead_fraction(c: ArrayLike, batch: int) -> np.ndarray:
    """Probability that a ReLU unit is off (z ≤ 0) for all ``batch`` inputs, at pre-activation correlation c.

    For jointly Gaussian z_1 ... z_B with unit variance and equal pairwise correlation c ≥ 0, write
    z_b = √c g + √(1−c) e_b; then P(all z_b ≤ 0) = ∫Dg Φ(−g √(c/(1−c)))^B: 2^(−B) at c = 0, 1/2 at c = 1.
    This is the mean-field ``frac_dead`` of ``gc.stats.activation_stats`` for a batch of B inputs.
    Output has the shape of ``c``. Adaptive quadrature (``scipy.integrate.quad``), not jittable.

    >>> relu_dead_fraction([0.0, 1.0], 3).round(6).tolist()
    [0.125, 0.5]
    """
    from scipy import integrate, special

    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
        raise ValueError(f"batch: expected a positive int, got {batch!r}")
    cs = np.asarray(c, dtype=np.float64)
    if not np.all(np.isfinite(cs)) or np.any(cs < 0) or np.any(cs > 1):
        raise ValueError("c: expected correlations in [0, 1]")
    out = np.empty(cs.shape)
    for i, ci in np.ndenumerate(cs):
        if ci >= 1.0:
            out[i] = 0.5
            continue
        a = np.sqrt(ci / (1.0 - ci))

        def integrand(g: float, a: float = a) -> float:
            return np.exp(-0.5 * g * g) / np.sqrt(2 * np.pi) * special.ndtr(-a * g) ** batch

        out[i] = integrate.quad(integrand, -np.inf, np.inf, epsabs=1e-12, limit=200)[0]
    return out
