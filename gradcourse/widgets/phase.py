"""Phase-diagram explorer: pick (σ_w², σ_b², activation, weights) and see the Jacobian spectrum there.

Layer: presentation (widgets). The compute is ``gc.experiments.phase_point`` (measured singular
values and ``gc.rmt`` moments) and ``gc.theory.edge_of_chaos`` (the χ₁ = 1 line);
``phase_point_figure`` draws a point with ``gc.plot.phase_diagram`` and ``gc.plot.spectrum_histogram``;
``phase_explorer`` wires both to ipywidgets and shows a static default figure that updates in place.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ..experiments import INITS, PhasePoint, phase_point
from ..plot.phase import phase_diagram
from ..plot.spectra import spectrum_histogram
from ..theory import edge_of_chaos
from ._display import figure_image, guarded

__all__ = ["PhaseExplorer", "phase_explorer", "phase_point_figure"]

# GELU and SiLU are left out: where their q* is infinite, gc.theory.chi1 is NaN (their jax.grad is NaN at ±inf),
# so the χ₁ = 1 line cannot be drawn for them.
EXPLORER_ACTIVATIONS = ("tanh", "erf", "relu", "sigmoid", "selu", "linear")


def phase_point_figure(
    point: PhasePoint,
    *,
    boundary: tuple[Any, Any] | None = None,
    sigma_w2_range: tuple[float, float] = (0.25, 4.0),
    sigma_b2_range: tuple[float, float] = (0.0, 0.5),
    fig: Figure | None = None,
) -> tuple[Figure, np.ndarray]:
    """Left: the phase diagram with ``point`` marked. Right: histogram of its singular values (log axes).

    ``boundary``: a precomputed ``(sigma_b2_grid, critical_sigma_w2)`` (else ``gc.theory.edge_of_chaos``
    on 13 points). Draws on a pyplot-free
    ``matplotlib.figure.Figure`` (nothing is shown unless displayed). Returns ``(fig, axes)``.
    """
    if not isinstance(point, PhasePoint):
        raise TypeError(f"point: expected a PhasePoint (from phase_point), got {type(point).__name__}")
    if boundary is None:
        grid = sigma_b2_range[0] + (sigma_b2_range[1] - sigma_b2_range[0]) * np.linspace(0.0, 1.0, 13) ** 2
        boundary = (grid, edge_of_chaos(point.activation, grid))
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
            choices = ", ".join(map(repr, EXPLORER_ACTIVATIONS))
            raise ValueError(f"activation: expected one of {choices}, got {activation!r}")
        self.depth, self.width, self.seed = depth, width, seed
        self.sigma_b2_grid = 0.5 * np.linspace(0.0, 1.0, 13) ** 2  # dense near 0, where the tanh line bends
        self._boundaries: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.controls = {
            "sigma_w2": w.FloatSlider(value=sigma_w2, min=0.25, max=4.0, step=0.01, description="σ_w²",
                                      continuous_update=False),
            "sigma_b2": w.FloatSlider(value=sigma_b2, min=0.0, max=0.5, step=0.01, description="σ_b²",
                                      continuous_update=False),
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
            c.observe(guarded(self.update, lambda: self.handle), names="value")

    def boundary(self, activation: str) -> tuple[np.ndarray, np.ndarray]:
        """The χ₁ = 1 line for ``activation`` (computed once, then cached)."""
        if activation not in self._boundaries:
            crit = edge_of_chaos(activation, self.sigma_b2_grid, lo=0.05, hi=16.0)
            self._boundaries[activation] = (self.sigma_b2_grid, crit)
        return self._boundaries[activation]

    def update(self, change: Any = None) -> Figure:
        """Recompute at the controls' values, redraw, and update the displayed figure."""
        v = {k: c.value for k, c in self.controls.items()}
        self.point = phase_point(v["activation"], v["sigma_w2"], v["sigma_b2"], v["init"],
                                 depth=self.depth, width=self.width, seed=self.seed)
        self.fig, _ = phase_point_figure(self.point, boundary=self.boundary(v["activation"]))
        if self.handle is not None:
            self.handle.update(figure_image(self.fig))
        return self.fig

    def show(self) -> PhaseExplorer:
        """Display the controls and the figure (a static image that :meth:`update` replaces)."""
        from IPython.display import display

        display(self.box)
        self.handle = display(figure_image(self.fig), display_id=True)
        return self


def phase_explorer(activation: str = "tanh", sigma_w2: float = 1.76, sigma_b2: float = 0.05,
                   init: str = "gaussian", *, depth: int = 16, width: int = 256, seed: int = 0) -> PhaseExplorer:
    """Show the explorer (controls + figure) and return it; move a slider to see the spectrum change."""
    return PhaseExplorer(activation, sigma_w2, sigma_b2, init, depth=depth, width=width, seed=seed).show()
