"""Per-layer norm plots: measured norms as markers, a theory prediction as a line, log y axis.

Layer: presentation. Draws given arrays (e.g. ``gc.signal_norms(gc.backward(...))`` or a
``gc.experiments.backward_profile``); computes nothing a notebook needs as a number.

``depth_profile`` draws one series of per-layer norms (e.g. ‖∂L/∂h_l‖ for l = 0 ... L) with an
optional theory line (e.g. χ₁^{(L-l)/2}); call it again on the same ``ax`` to overlay more
series. ``weight_vs_signal_plot`` puts the backward signal ‖∂L/∂h_l‖ and the weight gradients
‖∂L/∂W_l‖ of the same network side by side.
"""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["depth_profile", "weight_vs_signal_plot"]


def _series(values: Any, name: str) -> np.ndarray:
    """``values`` as a 1-D float64 NumPy array, or a ValueError / TypeError naming ``name``."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a 1-D array of numbers, got {type(values).__name__}") from None
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name}: expected a non-empty 1-D array (one value per layer), got shape {arr.shape}")
    return arr


def _layers(layers: Any, n: int, name: str, start: int = 0) -> np.ndarray:
    if layers is None:
        return np.arange(start, start + n)
    arr = _series(layers, name)
    if arr.size != n:
        raise ValueError(f"{name}: expected {n} layer indices (one per value), got {arr.size}")
    return arr


def _axes(ax: Any):
    if ax is None:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        return fig, ax
    if not hasattr(ax, "semilogy"):
        raise TypeError(f"ax: expected a matplotlib Axes or None, got {type(ax).__name__}")
    return ax.figure, ax


def _positive(arr: np.ndarray) -> np.ndarray:
    """Non-positive or non-finite values cannot sit on a log axis: NaN hides them."""
    return np.where(np.isfinite(arr) & (arr > 0), arr, np.nan)


def depth_profile(
    norms: Any,
    theory: Any = None,
    *,
    layers: Any = None,
    ax: Any = None,
    label: str | None = None,
    theory_label: str | None = None,
    color: Any = None,
    marker: str = "o",
    xlabel: str = "layer $l$",
    ylabel: str = "norm",
):
    """Per-layer norms as markers and, optionally, a theory prediction as a line of the same colour.

    ``norms``: shape (n,), one value per layer (e.g. ``gc.signal_norms(gc.backward(...))``, L+1
    values); ``theory``: shape (n,) or None; ``layers``: the x positions (default 0 ... n-1).
    Zero, negative and non-finite values are left out (log y axis). Returns ``(fig, ax)``.
    """
    y = _series(norms, "norms")
    x = _layers(layers, y.size, "layers")
    fig, ax = _axes(ax)
    (points,) = ax.plot(x, _positive(y), linestyle="none", marker=marker, markersize=4, color=color, label=label)
    if theory is not None:
        t = _series(theory, "theory")
        if t.size != y.size:
            raise ValueError(f"theory: expected {y.size} values (one per layer, like norms), got {t.size}")
        if theory_label is None and label is not None:
            theory_label = f"{label} (theory)"
        ax.plot(x, _positive(t), "-", color=points.get_color(), linewidth=1.5, alpha=0.8, label=theory_label)
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if ax.get_legend_handles_labels()[1]:
        ax.legend(fontsize="small")
    return fig, ax


def weight_vs_signal_plot(
    signal: Any,
    weight_grads: Any,
    *,
    signal_theory: Any = None,
    ax: Any = None,
    signal_label: str = r"backward signal $\|\partial L/\partial h_l\|$",
    weight_label: str = r"weight gradient $\|\partial L/\partial W_l\|$",
):
    """The backward signal ‖∂L/∂h_l‖ (l = 0 ... L) next to the weight gradients ‖∂L/∂W_l‖ (l = 1 ... L).

    ``signal``: shape (L+1,); ``weight_grads``: shape (L,), entry l-1 belongs to W_l (layer l maps
    h_{l-1} to h_l); ``signal_theory``: an optional line for the signal, shape (L+1,).
    Returns ``(fig, ax)``.
    """
    s = _series(signal, "signal")
    w = _series(weight_grads, "weight_grads")
    if w.size != s.size - 1:
        raise ValueError(
            f"weight_grads: expected {s.size - 1} values (one per weight matrix W_1 ... W_L, with signal "
            f"holding L+1 = {s.size} values), got {w.size}"
        )
    fig, ax = depth_profile(s, signal_theory, ax=ax, label=signal_label, marker="o", ylabel="norm")
    depth_profile(w, layers=np.arange(1, s.size), ax=ax, label=weight_label, marker="s", ylabel="norm")
    return fig, ax
