"""Figures of notebook 10: Post-LN vs Pre-LN at initialisation (presentation layer).

Draws a ``gc.ln_placement.PlacementSummary`` (computed in the experiments layer); computes nothing.
"""
from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from .norms import depth_profile

__all__ = ["ln_placement_plot"]


def ln_placement_plot(
    summary: Any, *, names: tuple[str, str] = ("Post-LN", "Pre-LN"), colors: tuple[str, str] = ("C3", "C0")
) -> tuple[plt.Figure, np.ndarray]:
    """Three panels: the stream's mean square σ_l² (points) with Pre-LN's fitted line; the top block's
    ‖∂L/∂W₂‖ against depth with Pre-LN's c/σ_L line; every block's gradient norm in the deepest model.

    ``summary``: a ``PlacementSummary`` (fields ``stream_ms`` (2, L+1), ``slope``, ``intercept``,
    ``depths`` (D,), ``top`` and ``sigma_L`` (2, D), ``c_pre``, ``blocks`` (2, L)). Returns ``(fig, axes)``.
    """
    s = summary
    fig, axes = plt.subplots(1, 3, figsize=(14, 4), layout="constrained")
    ms = np.asarray(s.stream_ms)
    l = np.arange(ms.shape[1])
    ax = axes[0]
    for i in range(2):
        ax.plot(l, ms[i], "o", ms=4, color=colors[i], label=f"{names[i]} (measured)")
    ax.plot(l, s.intercept + s.slope * l, "-", color=colors[1], alpha=0.7,
            label=f"fitted line {s.intercept:.2f} + {s.slope:.2f} $l$")
    ax.set(xlabel="block $l$", ylabel=r"mean square of the stream $\sigma_l^2$",
           title="residual stream at initialisation")
    ax.legend(fontsize="small")
    ax = axes[1]
    depths = np.asarray(s.depths)
    ylabel = r"$\|\partial\mathcal{L}/\partial W_2\|$ of the top block"
    depth_profile(s.top[0], layers=depths, ax=ax, color=colors[0], label=names[0], marker="s",
                  xlabel="depth $L$", ylabel=ylabel)
    depth_profile(s.top[1], s.c_pre / np.asarray(s.sigma_L[1]), layers=depths, ax=ax, color=colors[1], label=names[1],
                  theory_label=rf"{names[1]}: $c/\sigma_L$", xlabel="depth $L$", ylabel=ylabel)
    ax.set_xscale("log")
    ax.set_xticks(depths, [str(d) for d in depths])
    ax.tick_params(axis="x", which="minor", bottom=False, labelbottom=False)
    ax.set_title("top block vs depth")
    ax = axes[2]
    blocks = np.asarray(s.blocks)
    for i in range(2):
        depth_profile(blocks[i], layers=np.arange(1, blocks.shape[1] + 1), ax=ax, color=colors[i], label=names[i],
                      xlabel="block $l$", ylabel=r"$\|\partial\mathcal{L}/\partial\theta_l\|$ (whole block)")
    ax.set_title(f"every block, depth {blocks.shape[1]}")
    return fig, axes
