"""Residual stacks: the stream's mean square per layer (log and linear axes) and shattered input-gradients.

Layer: presentation. Draws given arrays (from ``gc.forward`` / ``gc.mean_square`` and ``gc.shattering``);
computes nothing a notebook needs.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .norms import depth_profile

__all__ = ["shattering_plot", "stream_variance_plot"]


def _subplots(fig):
    if fig is None:
        import matplotlib.pyplot as plt

        return plt.subplots(1, 2, figsize=(11, 4))
    return fig, fig.subplots(1, 2)


def stream_variance_plot(q: Mapping[str, Any], theory: Mapping[str, Any], *, linear_skip: tuple[str, ...] = (),
                         title: str = "", fig=None):
    """Left: every stream's mean square q_l (markers) and its theory (line), log axis; right: the same on a linear
    axis, leaving out the labels in ``linear_skip`` (e.g. a geometric one). ``q``, ``theory``: label -> (L + 1,).
    Returns ``(fig, axes)``."""
    fig, axes = _subplots(fig)
    markers = "os^vD<>p"
    for i, (name, values) in enumerate(q.items()):
        values = np.asarray(values, dtype=np.float64)
        depth_profile(values, theory[name], ax=axes[0], label=name, marker=markers[i % len(markers)], theory_label="",
                      ylabel=r"mean square of the stream $h_l$")
        if name not in linear_skip:
            colour = axes[0].lines[-1].get_color()
            layers = np.arange(values.size)
            axes[1].plot(layers, values, markers[i % len(markers)], markersize=4, color=colour, label=name)
            axes[1].plot(layers, np.asarray(theory[name], dtype=np.float64), "-", color=colour, linewidth=1)
    axes[0].set_title(title, fontsize="medium")
    axes[1].set_xlabel("layer $l$")
    axes[1].set_ylabel(r"mean square of the stream $h_l$ (linear axis)")
    axes[1].legend(fontsize="small")
    return fig, axes


def shattering_plot(xs: Any, curves: Mapping[str, Any], acf: Mapping[str, Any], *, fig=None):
    """Left: one input-gradient curve per network along ``xs`` (standardised); right: the lag-1 autocorrelation per
    layer, median over seeds (markers) and the seed range (band). ``curves``: label -> (P,); ``acf``: label ->
    (seeds, L + 1). Returns ``(fig, axes)``."""
    fig, axes = _subplots(fig)
    xs = np.asarray(xs, dtype=np.float64)
    for i, (name, a) in enumerate(acf.items()):
        colour = f"C{i}"
        if name in curves:
            c = np.asarray(curves[name], dtype=np.float64)
            axes[0].plot(xs, c / c.std(), linewidth=1, color=colour, label=name)
        a = np.asarray(a, dtype=np.float64)
        depth = np.arange(a.shape[1])
        lo, mid, hi = np.percentile(a, [0, 50, 100], axis=0)
        axes[1].fill_between(depth, lo, hi, color=colour, alpha=0.2, linewidth=0)
        axes[1].plot(depth, mid, "o", markersize=3, color=colour, label=f"{name} (median of {a.shape[0]} seeds)")
    axes[0].set_xlabel("input $x$")
    axes[0].set_ylabel(r"$\partial f/\partial x$ (standardised)")
    axes[0].set_title("input-gradient along the line, last layer", fontsize="medium")
    axes[1].set_xlabel("depth $l$")
    axes[1].set_ylabel("lag-1 autocorrelation of $\\partial h_l/\\partial x$")
    axes[1].set_ylim(0, 1.02)
    axes[1].set_title("1 = smooth, 0 = white noise; band: range over seeds", fontsize="medium")
    for ax in axes:
        ax.legend(fontsize="small")
    return fig, axes
