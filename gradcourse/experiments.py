"""Experiments the notebooks and explorers run: random networks measured next to theory (experiments layer).

Layer: experiments. Uses the core (``gc.mlp_params``, ``gc.vjp_chain``, ``gc.signal_norms``,
``gc.jacobian_spectrum``) and theory (``gc.theory``, ``gc.rmt``); returns plain arrays and
NamedTuples that ``gc.plot`` draws and ``gc.widgets`` wires to controls. Nothing here draws.

- ``backward_profile``: ‖∂L/∂h_l‖ / ‖∂L/∂h_L‖ of one random deep MLP against mean field χ₁^{(L-l)/2}
  (Schoenholz et al. 2017).
- ``jacobian_spectra`` / ``phase_point``: singular values of ∂h_L/∂h_0 of random MLPs, with the
  predicted moments of ``gc.rmt.jacobian_moments`` (Pennington, Schoenholz & Ganguli 2017).
- ``backward_ratio_grid``: the measured per-layer gradient growth ln(‖g_(l−1)‖/‖g_l‖) on a grid of
  (σ_w², σ_b²), against ½ ln χ₁ (the order-to-chaos phase diagram).
- ``activation_curves``: φ(x) and φ'(x) (by ``jax.grad``) on a grid, for ``gc.plot.activation_derivatives``.
- ``log_norm_walk``: ln‖h_l‖² and ln‖∂L/∂h_l‖² of many random MLPs of one width, one example each:
  the finite-width random walk around mean field (Hanin & Rolnick 2018), against ``gc.theory.relu_log_norm_moments``.
- ``lsuv`` / ``preactivation_variances``: data-dependent initialisation (Mishkin & Matas 2016) of a stacked MLP:
  rescale each W_l until Var[z_l] = 1 on a batch; the per-layer variances it fixes.
- ``mean_pairwise_cosine``: how alike a batch's examples are at every layer (mean cosine over pairs).
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import theory
from .activations import ACTIVATIONS, Activation, activation_name, get_activation
from .chains import vjp_chain
from .model import Stacked
from .nets import dense_layer, mlp_params
from .norms import signal_norms
from .rmt import SpectrumMoments, jacobian_moments
from .spectrum import jacobian_spectrum
from .validate import int_at_least, non_negative_int, one_of, positive_int, real

__all__ = [
    "BackwardProfile",
    "PhasePoint",
    "activation_curves",
    "backward_profile",
    "backward_ratio_grid",
    "jacobian_spectra",
    "LogNormWalk",
    "log_norm_walk",
    "lsuv",
    "preactivation_variances",
    "mean_pairwise_cosine",
    "phase_point",
]

class BackwardProfile(NamedTuple):
    """Measured and predicted backward signal of one random network, normalised to the top layer."""

    layers: np.ndarray  # 0 ... L
    measured: np.ndarray  # ‖∂L/∂h_l‖ / ‖∂L/∂h_L‖, shape (L+1,)
    theory: np.ndarray  # χ₁^{(L-l)/2}, shape (L+1,); NaN where χ₁ is not finite
    chi1: float  # mean-field per-layer gain of the squared norm (NaN if undefined)
    q_in: float  # pre-activation variance the inputs were drawn at (q* when finite, else 1)


@functools.partial(jax.jit, static_argnums=0)
def _measure(activation: Any, params: dict, x: jax.Array, u: jax.Array) -> jax.Array:
    return signal_norms(vjp_chain(Stacked(dense_layer(activation), params), x, u))


def _input_variance(activation: Any, sigma_w2: float, sigma_b2: float) -> tuple[float, float]:
    """(χ₁, q_in): χ₁ from ``gc.theory`` and the input pre-activation variance q* (1 where q* is 0 or ∞)."""
    chi = float(theory.chi1(activation, sigma_w2, sigma_b2))
    q = float(theory.qstar(activation, sigma_w2, sigma_b2))
    q_in = q if math.isfinite(q) and 1e-6 < q < 1e6 else 1.0
    return chi, q_in


def backward_profile(
    depth: int,
    sigma_w2: float,
    sigma_b2: float = 0.0,
    activation: str = "tanh",
    *,
    width: int = 256,
    batch: int = 8,
    key: jax.Array | None = None,
    n_nets: int = 1,
) -> BackwardProfile:
    """Backward-signal norms of a random depth-L MLP, measured and as predicted by mean-field theory.

    Network: h_l = φ(h_{l-1} W_l + b_l), W ~ N(0, σ_w²/width), b ~ N(0, σ_b²). Inputs h_0 = φ(z),
    z ~ N(0, q*) per unit (shape (batch, width)), so that every layer starts at the fixed point;
    where q* is 0 or infinite, z ~ N(0, 1). Measured: ‖∂L/∂h_l‖ / ‖∂L/∂h_L‖ for L = ⟨h_L, u⟩,
    u ~ N(0, 1); theory: χ₁^{(L-l)/2}. Both have shape (L+1,).

    ``n_nets`` > 1: ``measured`` is the geometric mean of the profiles of that many independent
    networks (one per key of ``jax.random.split(key, n_nets)``; ``n_nets=1`` uses ``key`` itself).
    One network's log-profile scatters around the mean-field line (finite-width fluctuations, larger
    for deeper or narrower nets); the mean of n independent ones scatters √n times less, so a fitted
    slope or end-to-end ratio can be checked more tightly (notebook 02: 4 networks of width 256).

    >>> import jax, numpy as np
    >>> p = backward_profile(20, 1.2, 0.0, "linear", width=256, key=jax.random.PRNGKey(0), n_nets=4)
    >>> p.measured.shape, bool(abs(np.log(p.measured[0] / p.theory[0])) < 0.2)  # theory: 1.2^10 ≈ 6.2
    ((21,), True)
    """
    depth = positive_int(depth, "depth")
    width = positive_int(width, "width")
    batch = positive_int(batch, "batch")
    sigma_w2 = real(sigma_w2, "sigma_w2", low=0.0, low_open=True)
    sigma_b2 = real(sigma_b2, "sigma_b2", low=0.0)
    phi = get_activation(activation)
    n_nets = positive_int(n_nets, "n_nets")
    key = jax.random.PRNGKey(0) if key is None else key
    chi, q_in = _input_variance(activation, sigma_w2, sigma_b2)
    profiles = []
    for k in [key] if n_nets == 1 else list(jax.random.split(key, n_nets)):
        k_params, k_x, k_u = jax.random.split(k, 3)
        params = mlp_params(k_params, depth, width, sigma_w2, sigma_b2)
        x = phi(math.sqrt(q_in) * jax.random.normal(k_x, (batch, width)))
        u = jax.random.normal(k_u, (batch, width))
        norms = np.asarray(_measure(activation, params, x, u), dtype=np.float64)
        with np.errstate(all="ignore"):
            profiles.append(norms / norms[-1])
    layers = np.arange(depth + 1)
    with np.errstate(all="ignore"):
        measured = profiles[0] if n_nets == 1 else np.exp(np.mean(np.log(profiles), axis=0))
        predicted = chi ** ((depth - layers) / 2.0) if math.isfinite(chi) and chi > 0 else np.full(depth + 1, np.nan)
    return BackwardProfile(layers, measured, predicted, chi, q_in)


INITS = ("gaussian", "orthogonal")


class PhasePoint(NamedTuple):
    """One point of the phase diagram and the measured Jacobian spectrum there."""

    activation: str
    sigma_w2: float
    sigma_b2: float
    init: str
    depth: int
    singular_values: np.ndarray  # of J = ∂h_L/∂h_0 at one input, descending
    chi1: float  # mean-field χ₁ (theory)
    qstar: float  # mean-field q* (theory; inf when the pre-activations grow without bound)
    theory: SpectrumMoments | None  # predicted moments of s², None when q* is infinite

    @property
    def spread(self) -> float:
        """Measured m₂/m₁² − 1 of the squared singular values (0 for a perfectly isometric Jacobian)."""
        x = self.singular_values.astype(np.float64) ** 2
        return float(np.mean(x**2) / np.mean(x) ** 2 - 1.0)


@functools.lru_cache(maxsize=16)
def _spectrum_fn(activation: str) -> Callable[[Any, jax.Array], jax.Array]:
    f = dense_layer(activation)
    return jax.jit(lambda params, x: jacobian_spectrum(Stacked(f, params), x, method="exact"))


def _check_point(activation: str, sigma_w2: float, sigma_b2: float, init: str) -> tuple[float, float]:
    one_of(activation, "activation", tuple(ACTIVATIONS))
    one_of(init, "init", INITS)
    return real(sigma_w2, "sigma_w2", low=0.0, low_open=True), real(sigma_b2, "sigma_b2", low=0.0)


def jacobian_spectra(
    activation: str = "tanh",
    sigma_w2: float = 1.76,
    sigma_b2: float = 0.05,
    init: Literal["gaussian", "orthogonal"] = "gaussian",
    *,
    depth: int = 16,
    width: int = 256,
    n_nets: int = 1,
    seed: int = 0,
) -> np.ndarray:
    """Singular values of J = ∂h_L/∂h_0 for ``n_nets`` independent random MLPs: shape (n_nets, width), descending.

    Weights from ``jax.nn.initializers``: ``"gaussian"`` is N(0, σ_w²/width), ``"orthogonal"`` is
    ``orthogonal(scale=σ_w)``; biases N(0, σ_b²). Each net gets its own input φ(√q* ξ), ξ ~ N(0, I), so
    every layer sits at the mean-field fixed point q* (ξ itself where q* is infinite). One exact
    width×width Jacobian and SVD per net (compiled once per activation, depth and width).
    """
    sigma_w2, sigma_b2 = _check_point(activation, sigma_w2, sigma_b2, init)
    depth, n_nets = positive_int(depth, "depth"), positive_int(n_nets, "n_nets")
    width = int_at_least(width, "width", 1, expected="an int in 1 ... 1024 (one exact SVD per net)")
    if width > 1024:
        raise ValueError(f"width: expected an int in 1 ... 1024 (one exact SVD per net), got {width}")
    seed = non_negative_int(seed, "seed")
    q = float(theory.qstar(activation, sigma_w2, sigma_b2))
    scale = math.sqrt(q) if math.isfinite(q) else 1.0
    w_init = jax.nn.initializers.orthogonal(scale=math.sqrt(sigma_w2)) if init == "orthogonal" else None
    phi, spectrum = get_activation(activation), _spectrum_fn(activation)
    out = []
    for k_params, k_x in jax.random.split(jax.random.PRNGKey(seed), 2 * n_nets).reshape(n_nets, 2, -1):
        params = mlp_params(k_params, depth, width, sigma_w2, sigma_b2, init=w_init)
        out.append(np.asarray(spectrum(params, phi(scale * jax.random.normal(k_x, (width,))))))
    return np.stack(out)


def phase_point(
    activation: str = "tanh",
    sigma_w2: float = 1.76,
    sigma_b2: float = 0.05,
    init: Literal["gaussian", "orthogonal"] = "gaussian",
    *,
    depth: int = 16,
    width: int = 256,
    seed: int = 0,
) -> PhasePoint:
    """Jacobian singular values of one random ``depth``-layer MLP at (σ_w², σ_b²), with mean-field theory.

    The network and input are those of :func:`jacobian_spectra` (``n_nets=1``); ``theory`` holds the
    predicted moments (``gc.rmt.jacobian_moments``), None where q* is infinite.
    """
    sigma_w2, sigma_b2 = _check_point(activation, sigma_w2, sigma_b2, init)
    s = jacobian_spectra(activation, sigma_w2, sigma_b2, init, depth=depth, width=width, seed=seed)[0]
    q = float(theory.qstar(activation, sigma_w2, sigma_b2))
    chi = float(theory.chi1(activation, sigma_w2, sigma_b2))
    moments = jacobian_moments(activation, sigma_w2, sigma_b2, depth, init) if math.isfinite(q) else None
    return PhasePoint(activation, sigma_w2, sigma_b2, init, depth, s, chi, q, moments)


def backward_ratio_grid(
    activation: str,
    sigma_w2: Any,
    sigma_b2: Any,
    *,
    depth: int = 20,
    width: int = 512,
    batch: int = 16,
    seed: int = 0,
) -> np.ndarray:
    """Measured mean ln(‖g_(l−1)‖ / ‖g_l‖) per layer of random MLPs at each (σ_w², σ_b²) point (same shapes in, out).

    Mean-field theory predicts ½ ln χ₁: negative in the ordered phase, positive in the chaotic one.
    One draw of standard-normal weights and biases is scaled to every point (W·σ_w/√width, b·σ_b:
    common random numbers, so the points differ only by the scales); inputs are φ(√q* ξ) (ξ where q*
    is infinite) and the loss is ⟨h_L, u⟩ with u ~ N(0, I). All points run in one ``vmap``.
    """
    one_of(activation, "activation", tuple(ACTIVATIONS))
    sw = np.asarray(real(sigma_w2, "sigma_w2", low=0.0, low_open=True, array=True), dtype=np.float64)
    sb = np.asarray(real(sigma_b2, "sigma_b2", low=0.0, array=True), dtype=np.float64)
    if sw.shape != sb.shape:
        raise ValueError(f"sigma_w2, sigma_b2: expected equal shapes, got {sw.shape} and {sb.shape}")
    if sw.size == 0:
        raise ValueError("sigma_w2, sigma_b2: expected at least one point, got empty arrays")
    depth, width = positive_int(depth, "depth"), positive_int(width, "width")
    batch, seed = positive_int(batch, "batch"), non_negative_int(seed, "seed")
    phi = get_activation(activation)
    kp, kx, ku = jax.random.split(jax.random.PRNGKey(seed), 3)
    base = mlp_params(kp, depth, width, 1.0, 1.0)
    xi = jax.random.normal(kx, (batch, width))
    u = jax.random.normal(ku, (batch, width))
    q = np.asarray(jax.vmap(lambda a, b: theory.qstar(activation, a, b))(sw.ravel(), sb.ravel()), dtype=np.float64)
    q = np.where(np.isfinite(q), q, 1.0)

    def one(s_w, s_b, q_in):
        def layer(p, h):  # the scales live in the layer, so vmap never copies the weights
            return phi(jnp.sqrt(s_w) * (h @ p["W"]) + jnp.sqrt(s_b) * p["b"])

        n = signal_norms(vjp_chain(Stacked(layer, base), phi(jnp.sqrt(q_in) * xi), u))
        return jnp.log(n[0] / n[-1]) / depth

    out = jax.jit(jax.vmap(one))(jnp.asarray(sw.ravel()), jnp.asarray(sb.ravel()), jnp.asarray(q))
    return np.asarray(out, dtype=np.float64).reshape(sw.shape)


def activation_curves(
    activations: Sequence[str | Activation], x: Any = None
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """φ(x) and φ'(x) for each activation on a grid: ``{name: (x, phi, dphi)}``, each of shape (n,).

    ``x``: a 1-D grid (default 501 points on [−5, 5]); φ' is ``jax.grad`` of φ, vectorised over x
    (at a kink, e.g. ReLU at 0, it is JAX's one-sided choice).

    >>> x, phi, dphi = activation_curves(["relu"], [-1.0, 2.0])["relu"]
    >>> phi.tolist(), dphi.tolist()
    ([0.0, 2.0], [0.0, 1.0])
    """
    if isinstance(activations, (str, bytes)) or not isinstance(activations, Sequence) or not activations:
        raise TypeError("activations: expected a non-empty list of names or functions, e.g. ['tanh', 'relu']")
    grid = np.linspace(-5.0, 5.0, 501) if x is None else np.asarray(x, dtype=np.float64)
    if grid.ndim != 1 or grid.size < 2:
        raise ValueError(f"x: expected a 1-D grid of at least 2 points, got shape {grid.shape}")
    xj = jnp.asarray(grid, jnp.float32)
    out = {}
    for act in activations:
        phi = get_activation(act)
        d = jnp.vectorize(jax.grad(phi))(xj)
        out[activation_name(act)] = (grid, np.asarray(phi(xj), np.float64), np.asarray(d, np.float64))
    return out


def mean_pairwise_cosine(hs: Sequence[Any] | Any) -> np.ndarray:
    """Mean cosine similarity between the examples of a batch, at every layer: shape (L+1,).

    ``hs``: per-layer activations or gradients of shape (B, n) each (a list, or one array (L+1, B, n)
    from a stacked model), B ≥ 2. For layer l the value is the mean of cos(h_l[a], h_l[b]) over the
    B(B−1)/2 pairs a < b: about 0 for independent random directions, 1 when every example points the
    same way. It says whether per-example terms add up coherently, e.g. in ∂L/∂W_l = Σ_b h_{l−1,b} δ_{l,b}ᵀ.

    >>> hs = [jnp.array([[1.0, 0.0], [0.0, 2.0]]), jnp.array([[1.0, 1.0], [2.0, 2.0]])]
    >>> mean_pairwise_cosine(hs).round(6).tolist()
    [0.0, 1.0]
    """
    layers = list(hs) if not hasattr(hs, "ndim") else [hs[i] for i in range(hs.shape[0])]
    out = []
    for i, h in enumerate(layers):
        h = np.asarray(h, dtype=np.float64)
        if h.ndim != 2 or h.shape[0] < 2:
            raise ValueError(f"hs[{i}]: expected shape (batch, width) with batch >= 2, got {h.shape}")
        u = h / np.maximum(np.linalg.norm(h, axis=1, keepdims=True), np.finfo(np.float64).tiny)
        gram = u @ u.T
        b = h.shape[0]
        out.append((gram.sum() - np.trace(gram)) / (b * (b - 1)))
    return np.asarray(out)


class LogNormWalk(NamedTuple):
    """Per-network log-norms through depth: each row one random network (one example), each column a layer."""

    layers: np.ndarray  # 0 ... L
    forward: np.ndarray  # ln(‖h_l‖² / ‖h_0‖²), shape (n_nets, L+1)
    backward: np.ndarray  # ln(‖∂L/∂h_l‖² / ‖∂L/∂h_L‖²), shape (n_nets, L+1); 0 at l = L


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4))
def _walk(keys: jax.Array, depth: int, width: int, activation: str, sigma_w2: float) -> tuple[jax.Array, jax.Array]:
    phi = get_activation(activation)
    scale = math.sqrt(sigma_w2 / width)

    def one(key):
        k_x, k_u, k_w = jax.random.split(key, 3)
        x, u = jax.random.normal(k_x, (width,)), jax.random.normal(k_u, (width,))

        weights = scale * jax.random.normal(k_w, (depth, width, width))  # one network's W_1 ... W_L

        def forward(h, W):
            z = h @ W
            h_next, slope = jax.jvp(phi, (z,), (jnp.ones_like(z),))
            return h_next, (slope, jnp.log(jnp.sum(h_next**2)))

        def backward(g, step):
            W, slope = step
            g_prev = (g * slope) @ W.T
            return g_prev, jnp.log(jnp.sum(g_prev**2))

        _, (slopes, log_h) = jax.lax.scan(forward, x, weights)
        _, log_g = jax.lax.scan(backward, u, (weights, slopes), reverse=True)
        log_x, log_u = jnp.log(jnp.sum(x**2)), jnp.log(jnp.sum(u**2))
        return (jnp.concatenate([log_x[None], log_h]) - log_x,
                jnp.concatenate([log_g, log_u[None]]) - log_u)

    return jax.lax.map(one, keys, batch_size=32)


def log_norm_walk(
    depth: int,
    width: int,
    n_nets: int,
    *,
    activation: str = "relu",
    sigma_w2: float = 2.0,
    key: jax.Array | None = None,
) -> LogNormWalk:
    """ln‖h_l‖² and ln‖∂L/∂h_l‖² of ``n_nets`` random depth-L MLPs of one ``width``, one example each.

    Network: h_l = φ(h_{l-1} W_l), W_l ~ N(0, σ_w²/width), no biases, h_0 = x ~ N(0, I); backward from
    L = ⟨h_L, u⟩, u ~ N(0, I). Mean field predicts a flat line for ReLU at σ_w² = 2 (He); at finite
    width each network's log-norm random-walks around it, with variance ≈ 5 (L−l)/width backward
    (``gc.theory.relu_log_norm_moments``; Hanin 2018, Hanin & Rolnick 2018). Networks run 32 at a time
    (``lax.map``), so memory stays about 32 · L · width² floats.
    Returns a :class:`LogNormWalk` with arrays of shape (n_nets, L+1) in float64.
    """
    depth = positive_int(depth, "depth")
    width = positive_int(width, "width")
    n_nets = int_at_least(n_nets, "n_nets", 2)
    sigma_w2 = real(sigma_w2, "sigma_w2", low=0.0, low_open=True)
    name = one_of(activation, "activation", tuple(ACTIVATIONS))
    key = jax.random.PRNGKey(0) if key is None else key
    fwd, bwd = _walk(jax.random.split(key, n_nets), depth, width, name, sigma_w2)
    return LogNormWalk(np.arange(depth + 1), np.asarray(fwd, np.float64), np.asarray(bwd, np.float64))


def preactivation_variances(params: dict, activation: str, x: Any) -> np.ndarray:
    """Var[z_l] over a batch and units for every layer of a stacked MLP: shape (L,).

    ``params``: ``{"W": (L, n, n), "b": (L, n)}`` (``gc.mlp_params``); z_l = h_{l-1} W_l + b_l, h_l = φ(z_l),
    h_0 = ``x`` of shape (batch, n).
    """
    phi = get_activation(one_of(activation, "activation", tuple(ACTIVATIONS)))

    def step(h, p):
        z = h @ p["W"] + p["b"]
        return phi(z), jnp.var(z)

    _, var = jax.lax.scan(step, jnp.asarray(x), params)
    return np.asarray(var, np.float64)


def lsuv(params: dict, activation: str, x: Any, *, target: float = 1.0, tol: float = 0.01,
         max_iter: int = 10) -> tuple[dict, np.ndarray]:
    """Layer-sequential unit-variance initialisation (Mishkin & Matas 2016) of a stacked MLP.

    Going up from layer 1, run the batch ``x`` (shape (batch, n)) through the network and rescale W_l by
    √(target / Var[z_l]) until |Var[z_l] − target| < ``tol`` · target (at most ``max_iter`` passes per layer;
    with b_l = 0 one pass is exact for that batch). Mishkin & Matas start from orthonormal W; any start works
    here. No library ships LSUV for JAX, hence these few lines. Returns ``(new_params, rescalings per layer)``;
    the variances before and after are ``preactivation_variances(params, activation, x)``.
    """
    phi = get_activation(one_of(activation, "activation", tuple(ACTIVATIONS)))
    target = real(target, "target", low=0.0, low_open=True)
    W, b = jnp.asarray(params["W"]), jnp.asarray(params["b"])
    max_iter = positive_int(max_iter, "max_iter")
    h, iters = jnp.asarray(x), []
    for layer in range(W.shape[0]):
        Wl, rescaled = W[layer], 0
        for _ in range(max_iter):
            var = float(jnp.var(h @ Wl + b[layer]))
            if abs(var - target) < tol * target:
                break
            Wl, rescaled = Wl * math.sqrt(target / var), rescaled + 1
        iters.append(rescaled)
        W = W.at[layer].set(Wl)
        h = phi(h @ Wl + b[layer])
    return {**params, "W": W}, np.asarray(iters)
