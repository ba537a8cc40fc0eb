"""Activations and per-layer statistics: φ and φ' curves, histograms of h_l per layer.

Per-layer profiles are drawn by ``norms.depth_profile``.

Layer: presentation. Draws given arrays (the φ, φ' curves come from ``gc.experiments.activation_curves``,
the dead-unit prediction from ``gc.theory.relu_dead_fraction``). Measurements are drawn as points
(markers), theory as lines, as everywhere in ``gc.plot``.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from .norms import _series as one_series

__all__ = ["activation_comparison", "activation_derivatives", "activation_histograms"]


def _series(data: Any, name: str) -> dict[str, np.ndarray]:
    """``{label: 1-D float array}`` from a mapping (or a single array, labelled 'measured')."""
    items = dict(data) if isinstance(data, Mapping) else {"measured": data}
    if not items:
        raise ValueError(f"{name}: expected at least one series, got an empty mapping")
    return {str(label): one_series(v, f"{name}[{label!r}]") for label, v in items.items()}


def activation_derivatives(
    curves: Mapping[str, tuple[Any, Any, Any]],
    *,
    axes: Sequence[plt.Axes] | None = None,
) -> tuple[plt.Figure, np.ndarray]:
    """φ(x) (left) and φ'(x) (right) for each activation, as lines. Returns ``(fig, axes)``.

    ``curves``: ``{name: (x, phi, dphi)}``, three arrays of shape (n,) each, as returned by
    ``gc.experiments.activation_curves(["tanh", "relu"])``.
    """
    if not isinstance(curves, Mapping) or not curves:
        raise TypeError(
            "curves: expected a non-empty {name: (x, phi, dphi)} mapping, "
            "e.g. gc.experiments.activation_curves(['tanh', 'relu'])"
        )
    arrays = {}
    for name, value in curves.items():
        try:
            x, phi, dphi = (np.asarray(a, dtype=np.float64) for a in value)
        except (TypeError, ValueError):
            raise TypeError(f"curves[{name!r}]: expected a tuple (x, phi, dphi) of arrays") from None
        if not (x.ndim == 1 and x.size >= 2 and x.shape == phi.shape == dphi.shape):
            raise ValueError(f"curves[{name!r}]: expected x, phi, dphi of equal 1-D shapes, got "
                             f"{x.shape}, {phi.shape}, {dphi.shape}")
        arrays[str(name)] = (x, phi, dphi)
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    else:
        axes = np.asarray(axes)
        if axes.size != 2:
            raise ValueError(f"axes: expected two axes (for φ and φ'), got {axes.size}")
        fig = axes.flat[0].figure
    for i, (name, (x, phi, dphi)) in enumerate(arrays.items()):
        axes[0].plot(x, phi, color=f"C{i}", label=name)
        axes[1].plot(x, dphi, color=f"C{i}", label=name)
    axes[0].set_ylabel(r"$\varphi(x)$")
    axes[1].set_ylabel(r"$\varphi'(x)$")
    for a in axes:
        a.axhline(0, color="0.8", lw=0.8, zorder=0)
        a.set_xlabel("pre-activation $x$")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    return fig, np.asarray(axes)


def activation_histograms(
    hs: Any,
    layers: Sequence[int],
    *,
    bins: int = 60,
    range: tuple[float, float] | None = None,
    theory: tuple[Any, Any, str] | None = None,
    xlabel: str = "activation value $h_l$",
    ax: plt.Axes | None = None,
) -> tuple[plt.Figure, plt.Axes]:
    """Density histograms of the entries of h_l for the chosen layers, drawn as points (log-scale y).

    ``hs``: the output of ``gc.forward`` (a list or a stacked array, index l = layer). ``layers``:
    which l to show. ``theory``: an optional ``(x, density, label)`` drawn as a black line (e.g. the
    density of φ(z) at the fixed point q*). Returns ``(fig, ax)``.
    """
    if isinstance(layers, (str, bytes)) or not isinstance(layers, Sequence) or not layers:
        raise TypeError("layers: expected a non-empty list of layer indices, e.g. [1, 5, 20]")
    n = len(hs)
    arrays = []
    for l in layers:
        if isinstance(l, bool) or not isinstance(l, (int, np.integer)) or not -n <= l < n:
            raise ValueError(f"layers: {l!r} is not a layer index in 0 ... {n - 1}")
        a = np.asarray(hs[l], dtype=np.float64).ravel()
        if a.size == 0:
            raise ValueError(f"hs: layer {l} has no entries; nothing to histogram")
        if not np.all(np.isfinite(a)):
            bad = int(np.sum(~np.isfinite(a)))
            raise ValueError(
                f"hs: layer {l} has {bad} non-finite (NaN/Inf) entries of {a.size}; a histogram needs finite values "
                f"(gc.stats.find_nonfinite(model, x) says where they start), or pick earlier layers"
            )
        arrays.append(a)
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ValueError(f"bins: expected a positive int, got {bins!r}")
    if range is None:
        range = (min(a.min() for a in arrays), max(a.max() for a in arrays))
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6, 4))
    for i, (l, a) in enumerate(zip(layers, arrays, strict=True)):
        dens, edges = np.histogram(a, bins=bins, range=range, density=True)
        centres = 0.5 * (edges[:-1] + edges[1:])
        keep = dens > 0
        colour = plt.cm.viridis(i / max(len(layers) - 1, 1))
        ax.plot(centres[keep], dens[keep], "o", ms=3.5, color=colour, label=f"layer {l} (measured)")
    if theory is not None:
        try:
            tx, ty, tlabel = theory
        except (TypeError, ValueError):
            raise TypeError("theory: expected a tuple (x, density, label)") from None
        ax.plot(np.asarray(tx), np.asarray(ty), "k-", lw=1.4, label=f"{tlabel} (theory)")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    return fig, ax


def activation_comparison(
    names: Sequence[str],
    measured: Any,
    theory: Any,
    *,
    ylabel: str,
    reference: float | None = 1.0,
    log: bool = True,
    ax: plt.Axes | None = None,
) -> tuple[plt.Figure, plt.Axes]:
    """One value per activation: theory as a short horizontal line, measured as a point on it.

    ``names``: the x-axis categories; ``measured``, ``theory``: one number per name. ``reference``:
    a dashed horizontal line (e.g. χ₁ = 1), or None. Returns ``(fig, ax)``.
    """
    if isinstance(names, (str, bytes)) or not isinstance(names, Sequence) or not names:
        raise TypeError("names: expected a non-empty list of labels")
    m = _series({"measured": measured}, "measured")["measured"]
    t = _series({"theory": theory}, "theory")["theory"]
    if not (m.size == t.size == len(names)):
        raise ValueError(f"measured, theory: expected one value per name ({len(names)}), got {m.size} and {t.size}")
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6, 4))
    x = np.arange(len(names))
    ax.hlines(t, x - 0.3, x + 0.3, colors="k", lw=2, label="theory")
    ax.plot(x, m, "o", ms=7, color="C1", label="measured", zorder=3)
    if reference is not None:
        ax.axhline(reference, color="0.5", ls="--", lw=1)
    ax.set_xticks(x, [str(n) for n in names])
    if log:
        ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    return fig, ax
