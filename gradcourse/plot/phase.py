"""The order-to-chaos phase diagram in the (σ_w², σ_b²) plane, with measured points on top.

Layer: presentation. Draws given arrays: the edge of chaos χ₁(σ_w², σ_b²) = 1 from
``gc.theory.edge_of_chaos`` (Poole et al. 2016, Schoenholz et al. 2017) and measured points from
``gc.experiments.backward_ratio_grid``. Left of it (χ₁ < 1, ordered) gradients vanish with depth,
right of it (χ₁ > 1, chaotic) they explode.
"""
from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import TwoSlopeNorm

from ..activations import Activation, activation_name

__all__ = ["phase_diagram"]


def _range(value: Any, name: str, low: float) -> tuple[float, float]:
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a pair (min, max) of numbers, got {value!r}") from None
    if not (np.isfinite(a) and np.isfinite(b)) or a < low or b <= a:
        raise ValueError(f"{name}: expected {low} <= min < max, got ({a}, {b})")
    return a, b


def phase_diagram(
    activation: str | Activation,
    *,
    boundary: tuple[Any, Any],
    sigma_w2: Any = None,
    sigma_b2: Any = None,
    values: Any = None,
    mark: tuple[float, float] | None = None,
    sigma_w2_range: tuple[float, float] = (0.5, 4.0),
    sigma_b2_range: tuple[float, float] = (0.0, 0.5),
    value_label: str = r"measured $\ln(\|g_{l-1}\| / \|g_l\|)$ per layer",
    ax: plt.Axes | None = None,
) -> tuple[plt.Figure, plt.Axes]:
    """Draw the χ₁ = 1 line (theory) and, optionally, measured points coloured by ``values``.

    ``sigma_w2``, ``sigma_b2``, ``values``: equal-length arrays of measured points (colour:
    diverging map centred at 0, each side stretched to its own extreme, so blue = gradients shrink,
    red = they grow). ``mark``: one
    (σ_w², σ_b²) point to highlight. ``boundary``: ``(sigma_b2_grid, critical_sigma_w2)``, two arrays
    of shape (n,), e.g. ``(sb, gc.theory.edge_of_chaos(activation, sb))``; NaN where there is no
    crossing. ``activation`` names the title. Returns ``(fig, ax)``; x-axis σ_w², y-axis σ_b².
    """
    xr = _range(sigma_w2_range, "sigma_w2_range", 0.0)
    yr = _range(sigma_b2_range, "sigma_b2_range", 0.0)
    name = activation_name(activation)
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6, 4))
    try:
        grid, crit = (np.asarray(a, dtype=np.float64) for a in boundary)
    except (TypeError, ValueError):
        raise TypeError(
            "boundary: expected a pair (sigma_b2_grid, critical_sigma_w2), "
            "e.g. (sb, gc.theory.edge_of_chaos(activation, sb))"
        ) from None
    if grid.ndim != 1 or grid.shape != crit.shape:
        raise ValueError(f"boundary: sigma_b2 grid and critical sigma_w2 differ in shape: {grid.shape} vs {crit.shape}")
    if np.any(np.isfinite(crit)):
        ax.plot(crit, grid, "k-", lw=2, label=r"edge of chaos $\chi_1 = 1$ (theory)")
        mid = np.nanmedian(crit)
        ax.text(xr[0] + 0.03 * (xr[1] - xr[0]), yr[1] - 0.06 * (yr[1] - yr[0]),
                r"ordered $\chi_1<1$" "\ngradients vanish",
                va="top", fontsize=8, color="#1f4e99")
        if mid < xr[1]:
            ax.text(xr[1] - 0.03 * (xr[1] - xr[0]), yr[0] + 0.6 * (yr[1] - yr[0]),
                    r"chaotic $\chi_1>1$" "\ngradients explode",
                    ha="right", fontsize=8, color="#a11d1d")
    else:
        ax.text(0.5, 0.5, rf"no $\chi_1 = 1$ crossing for {name} here", transform=ax.transAxes, ha="center", fontsize=9)
    if values is not None or sigma_w2 is not None or sigma_b2 is not None:
        try:
            if any(a is None for a in (sigma_w2, sigma_b2, values)):
                raise TypeError
            sw, sb, v = (np.asarray(a, dtype=np.float64).ravel() for a in (sigma_w2, sigma_b2, values))
        except (TypeError, ValueError):
            raise TypeError("sigma_w2, sigma_b2, values: expected three arrays of numbers (all or none)") from None
        if not (sw.shape == sb.shape == v.shape):
            raise ValueError(f"sigma_w2, sigma_b2, values: expected equal lengths, got {sw.size}, {sb.size}, {v.size}")
        lo, hi = min(float(np.nanmin(v)), -1e-12), max(float(np.nanmax(v)), 1e-12)
        pts = ax.scatter(sw, sb, c=v, cmap="RdBu_r", norm=TwoSlopeNorm(0.0, lo, hi), s=45, edgecolors="k",
                         linewidths=0.5, label="measured", zorder=3)
        fig.colorbar(pts, ax=ax, label=value_label)
    if mark is not None:
        mx, my = (float(m) for m in mark)
        ax.plot([mx], [my], "*", ms=16, color="gold", mec="k", zorder=4,
                label=rf"$\sigma_w^2={mx:.3g}$, $\sigma_b^2={my:.3g}$")
    ax.set_xlim(*xr)
    ax.set_ylim(*yr)
    ax.set_xlabel(r"weight variance $\sigma_w^2$ (W ~ N(0, $\sigma_w^2/n$))")
    ax.set_ylabel(r"bias variance $\sigma_b^2$")
    ax.set_title(f"{name}: order-to-chaos phase diagram")
    if ax.get_legend_handles_labels()[1]:
        ax.legend(fontsize=8, loc="lower right")
    return fig, ax
