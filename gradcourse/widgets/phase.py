"""Phase-diagram explorer: pick (σ_w², σ_b², activation, weights) and see the Jacobian spectrum there.

``phase_point`` is the plain compute (unit-tested); ``phase_point_figure`` draws it; ``phase_explorer``
wires both to ipywidgets and shows a static default figure that updates in place.
"""
from __future__ import annotations

import functools
import math
from typing import Any, Callable, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure

from ..activations import ACTIVATIONS, get_activation
from ..chains import vjp_chain
from ..model import Stacked
from ..norms import signal_norms
from ..nets import dense_layer, mlp_params
from ..plot.phase import chi1_boundary, phase_diagram
from ..plot.spectra import SpectrumMoments, jacobian_moments, spectrum_histogram
from ..spectrum import jacobian_spectrum

__all__ = [
    "PhaseExplorer", "PhasePoint", "backward_ratio_grid", "jacobian_spectra", "phase_explorer", "phase_point", "phase_point_figure",
]

INITS = ("gaussian", "orthogonal")
# GELU and SiLU are left out: where their q* is infinite, gc.theory.chi1 is NaN (their jax.grad is NaN at ±inf),
# so the χ₁ = 1 line cannot be drawn for them.
EXPLORER_ACTIVATIONS = ("tanh", "erf", "relu", "sigmoid", "selu", "linear")


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
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation: expected one of {', '.join(map(repr, ACTIVATIONS))}, got {activation!r}")
    if init not in INITS:
        raise ValueError(f"init: expected 'gaussian' or 'orthogonal', got {init!r}")
    sigma_w2, sigma_b2 = float(sigma_w2), float(sigma_b2)
    if not (sigma_w2 > 0 and math.isfinite(sigma_w2)) or not (sigma_b2 >= 0 and math.isfinite(sigma_b2)):
        raise ValueError(f"sigma_w2 must be > 0 and sigma_b2 >= 0 (finite), got {sigma_w2}, {sigma_b2}")
    return sigma_w2, sigma_b2


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
    from .. import theory

    sigma_w2, sigma_b2 = _check_point(activation, sigma_w2, sigma_b2, init)
    for name, v in (("depth", depth), ("width", width), ("n_nets", n_nets), ("seed", seed)):
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f"{name}: expected an int, got {type(v).__name__}")
    if width > 1024 or n_nets < 1:
        raise ValueError(f"width: at most 1024 (exact SVDs) and n_nets >= 1, got width={width}, n_nets={n_nets}")
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
    predicted moments (``gc.plot.jacobian_moments``), None where q* is infinite.
    """
    from .. import theory

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
    from .. import theory

    if activation not in ACTIVATIONS:
        raise ValueError(f"activation: expected one of {', '.join(map(repr, ACTIVATIONS))}, got {activation!r}")
    sw = np.asarray(sigma_w2, dtype=np.float64)
    sb = np.asarray(sigma_b2, dtype=np.float64)
    if sw.shape != sb.shape:
        raise ValueError(f"sigma_w2, sigma_b2: expected equal shapes, got {sw.shape} and {sb.shape}")
    if sw.size == 0 or not (np.all(np.isfinite(sw)) and np.all(sw > 0) and np.all(np.isfinite(sb)) and np.all(sb >= 0)):
        raise ValueError("sigma_w2, sigma_b2: expected finite values, sigma_w2 > 0 and sigma_b2 >= 0")
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


def phase_point_figure(
    point: PhasePoint,
    *,
    boundary: tuple[Any, Any] | None = None,
    sigma_w2_range: tuple[float, float] = (0.25, 4.0),
    sigma_b2_range: tuple[float, float] = (0.0, 0.5),
    fig: Figure | None = None,
) -> tuple[Figure, np.ndarray]:
    """Left: the phase diagram with ``point`` marked. Right: histogram of its singular values (log axes).

    ``boundary``: a precomputed ``(sigma_b2_grid, critical_sigma_w2)``. Draws on a pyplot-free
    ``matplotlib.figure.Figure`` (nothing is shown unless displayed). Returns ``(fig, axes)``.
    """
    if not isinstance(point, PhasePoint):
        raise TypeError(f"point: expected a PhasePoint (from phase_point), got {type(point).__name__}")
    fig = Figure(figsize=(10, 3.8)) if fig is None else fig
    fig.clear()
    axes = np.asarray(fig.subplots(1, 2))
    phase_diagram(point.activation, mark=(point.sigma_w2, point.sigma_b2), boundary=boundary,
                  sigma_w2_range=sigma_w2_range, sigma_b2_range=sigma_b2_range, ax=axes[0])
    label = f"{point.init}, L={point.depth}"
    spectrum_histogram({label: point.singular_values}, log_x=True, rel_floor=1e-6, bins=30, ax=axes[1],
                       xlabel=r"singular value $s$ of $\partial h_L/\partial h_0$")
    if math.isfinite(point.qstar):
        head = rf"$\chi_1$ = {point.chi1:.3g} (theory),  $\chi_1^{{L/2}}$ = {point.chi1 ** (point.depth / 2):.3g}"
    else:
        head = r"no finite fixed point $q^*$: the pre-activations grow with depth"
    lines = [head, rf"spread $m_2/m_1^2-1$: {point.spread:.3g} measured"]
    if point.theory is not None:
        lines[-1] += f", {point.theory.spread:.3g} theory"
    axes[1].set_title("\n".join(lines), fontsize=8)
    fig.tight_layout()
    return fig, axes


class PhaseExplorer:
    """Controls + a figure that is redrawn by :meth:`update` whenever a control moves.

    ``controls``: dict of ipywidgets (``sigma_w2``, ``sigma_b2``, ``activation``, ``init``);
    ``fig``: the current figure; ``point``: the current :class:`PhasePoint`; ``handle``: the
    display handle once :meth:`show` has run.
    """

    def __init__(self, activation: str = "tanh", sigma_w2: float = 1.76, sigma_b2: float = 0.05,
                 init: str = "gaussian", *, depth: int = 16, width: int = 256, seed: int = 0):
        import ipywidgets as w

        if activation not in EXPLORER_ACTIVATIONS:
            raise ValueError(f"activation: expected one of {', '.join(map(repr, EXPLORER_ACTIVATIONS))}, got {activation!r}")
        self.depth, self.width, self.seed = depth, width, seed
        self.sigma_b2_grid = 0.5 * np.linspace(0.0, 1.0, 13) ** 2  # dense near 0, where the tanh line bends
        self._boundaries: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.controls = {
            "sigma_w2": w.FloatSlider(value=sigma_w2, min=0.25, max=4.0, step=0.01, description="σ_w²", continuous_update=False),
            "sigma_b2": w.FloatSlider(value=sigma_b2, min=0.0, max=0.5, step=0.01, description="σ_b²", continuous_update=False),
            "activation": w.Dropdown(options=list(EXPLORER_ACTIVATIONS), value=activation, description="activation"),
            "init": w.ToggleButtons(options=list(INITS), value=init, description="weights"),
        }
        self.box = w.VBox([w.HBox([self.controls["sigma_w2"], self.controls["sigma_b2"]]),
                           w.HBox([self.controls["activation"], self.controls["init"]])])
        self.handle = None
        self.fig: Figure | None = None
        self.point: PhasePoint | None = None
        self.update()
        for c in self.controls.values():
            c.observe(self.update, names="value")

    def boundary(self, activation: str) -> tuple[np.ndarray, np.ndarray]:
        """The χ₁ = 1 line for ``activation`` (computed once, then cached)."""
        if activation not in self._boundaries:
            self._boundaries[activation] = (self.sigma_b2_grid, chi1_boundary(activation, self.sigma_b2_grid, lo=0.05, hi=16.0))
        return self._boundaries[activation]

    def update(self, change: Any = None) -> Figure:
        """Recompute at the controls' values, redraw, and update the displayed figure."""
        v = {k: c.value for k, c in self.controls.items()}
        self.point = phase_point(v["activation"], v["sigma_w2"], v["sigma_b2"], v["init"],
                                 depth=self.depth, width=self.width, seed=self.seed)
        self.fig, _ = phase_point_figure(self.point, boundary=self.boundary(v["activation"]))
        if self.handle is not None:
            self.handle.update(self.fig)
        return self.fig

    def show(self) -> "PhaseExplorer":
        """Display the controls and the figure (a static image that :meth:`update` replaces)."""
        from IPython.display import display

        display(self.box)
        self.handle = display(self.fig, display_id=True)
        return self


def phase_explorer(activation: str = "tanh", sigma_w2: float = 1.76, sigma_b2: float = 0.05,
                   init: str = "gaussian", *, depth: int = 16, width: int = 256, seed: int = 0) -> PhaseExplorer:
    """Show the explorer (controls + figure) and return it; move a slider to see the spectrum change."""
    return PhaseExplorer(activation, sigma_w2, sigma_b2, init, depth=depth, width=width, seed=seed).show()
