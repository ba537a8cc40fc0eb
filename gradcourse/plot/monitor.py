"""Histograms over training steps: the "colorful dimension" picture (presentation layer).

Draws per-step histograms recorded by ``gc.monitor.layer_log_histograms`` (e.g. in a ``fit_many``
probe) as one image per layer: step on x, log10|x| on y, the fraction of entries as colour (log scale).
Computes nothing.
"""
from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LogNorm

__all__ = ["histogram_over_steps"]


def histogram_over_steps(
    hist: Any,
    edges: Any,
    *,
    ax: Any = None,
    title: str | None = None,
    ylabel: str = r"$\log_{10}|x|$",
    reference: float | None = None,
    reference_label: str | None = None,
    colorbar: bool = True,
) -> tuple[plt.Figure, Any]:
    """``hist``: (steps, bins) fractions of one layer's entries per log10|x| bin; ``edges``: (bins + 1,).

    Empty bins are left blank; ``reference``: a horizontal line at that log10 value (e.g. a rule of
    thumb). Returns ``(fig, ax)``.
    """
    hist = np.asarray(hist, dtype=np.float64)
    edges = np.asarray(edges, dtype=np.float64)
    if hist.ndim != 2 or edges.shape != (hist.shape[1] + 1,):
        raise ValueError(f"hist, edges: expected (steps, bins) and (bins + 1,), got {hist.shape} and {edges.shape}")
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6, 4))
    shown = np.ma.masked_less_equal(hist.T, 0)
    if shown.count() == 0:
        raise ValueError("hist: every bin is empty (all entries exactly zero?), nothing to draw")
    image = ax.imshow(shown, aspect="auto", origin="lower", interpolation="nearest", cmap="viridis",
                      extent=(0, hist.shape[0], edges[0], edges[-1]), norm=LogNorm(vmin=shown.min(), vmax=1))
    if reference is not None:
        ax.axhline(reference, color="w", ls="--", lw=0.8, label=reference_label)
        if reference_label:
            ax.legend(fontsize="x-small", loc="upper right")
    ax.set(xlabel="training step", ylabel=ylabel)
    if title:
        ax.set_title(title, fontsize="medium")
    if colorbar:
        fig.colorbar(image, ax=ax, label="fraction of entries")
    return fig, ax

