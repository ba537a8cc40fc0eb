"""Histograms of singular-value spectra, measured as points and predicted densities as lines (presentation layer).

Layer: presentation. Draws given arrays only; the spectra come from ``gc.experiments.jacobian_spectra``
or ``gc.jacobian_spectrum``, the predicted densities and moments from ``gc.rmt``
(e.g. ``gc.rmt.fuss_catalan_density``).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

__all__ = ["spectrum_histogram"]


def spectrum_histogram(
    values: Mapping[str, Any] | Any,
    *,
    theory: Mapping[str, tuple[Any, Any]] | None = None,
    bins: int = 40,
    log_x: bool = False,
    rel_floor: float | None = None,
    xlabel: str = "singular value $s$",
    ax: plt.Axes | None = None,
) -> tuple[plt.Figure, plt.Axes]:
    """Histogram densities of spectra as points (one series per key), theory densities as lines.

    ``values``: an array, or ``{label: array}``. ``theory``: ``{label: (x, density per unit x)}``,
    drawn as lines (same colour as the measured series of the same label), clipped to the range of
    the bins. ``log_x=False``: linear bins, density per unit x on a log y-axis. ``log_x=True``:
    log-spaced bins, and the y-axis is the density per decade, ρ(x)·x·ln 10 (theory transformed
    alike), on a linear scale — readable when x spans many decades. ``rel_floor``: drop values
    below ``rel_floor`` × the series' maximum (e.g. 1e-6 for float32 singular values, whose
    smaller values are rounding noise); the legend says how many. Returns ``(fig, ax)``.
    """
    series = dict(values) if isinstance(values, Mapping) else {"measured": values}
    if not series:
        raise ValueError("values: expected at least one spectrum, got an empty mapping")
    if rel_floor is not None and not (isinstance(rel_floor, (int, float)) and 0 <= rel_floor < 1):
        raise ValueError(f"rel_floor: expected None or a number in [0, 1), got {rel_floor!r}")
    arrays, dropped = {}, {}
    for label, v in series.items():
        a = np.asarray(v, dtype=np.float64).ravel()
        if a.size == 0 or not np.all(np.isfinite(a)):
            raise ValueError(f"values[{label!r}]: expected a non-empty array of finite numbers")
        if rel_floor is not None:
            keep = a > rel_floor * a.max()
            dropped[label], a = int(a.size - keep.sum()), a[keep]
        if log_x and (a.size == 0 or np.any(a <= 0)):
            raise ValueError(f"values[{label!r}]: log_x=True needs positive values (pass rel_floor to drop zeros)")
        arrays[label] = a
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ValueError(f"bins: expected a positive int, got {bins!r}")
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6, 4))
    lo = min(a.min() for a in arrays.values())
    hi = max(a.max() for a in arrays.values())
    if hi <= lo:
        hi = lo + 1e-6 * max(abs(lo), 1.0)
    edges = np.geomspace(lo, hi, bins + 1) if log_x else np.linspace(min(lo, 0.0), hi, bins + 1)
    centres = np.sqrt(edges[:-1] * edges[1:]) if log_x else 0.5 * (edges[:-1] + edges[1:])
    per_decade = (lambda x, d: d * x * np.log(10.0)) if log_x else (lambda x, d: d)  # noqa: E731  (theory only)
    colours = {label: f"C{i}" for i, label in enumerate(arrays)}
    lowest = np.inf
    for label, a in arrays.items():
        if log_x:  # density per decade: histogram of log10 x
            dens, _ = np.histogram(np.log10(a), bins=np.log10(edges), density=True)
        else:
            dens, _ = np.histogram(a, bins=edges, density=True)
        lowest = min(lowest, float(np.min(dens[dens > 0])))
        keep = dens > 0
        note = f"; {dropped[label]} < {rel_floor:g}·max hidden" if dropped.get(label) else ""
        ax.plot(centres[keep], dens[keep], "o", ms=4, color=colours[label], label=f"{label} (measured{note})")
    for label, (x, rho) in (theory or {}).items():
        x, rho = np.asarray(x, dtype=np.float64), np.asarray(rho, dtype=np.float64)
        inside = (x >= centres[0]) & (x <= edges[-1])
        colour = colours.setdefault(label, f"C{len(colours)}")
        ax.plot(x[inside], per_decade(x[inside], rho[inside]), "-", color=colour, lw=1.6, label=f"{label} (theory)")
    if log_x:
        ax.set_xscale("log")
        ax.set_ylabel("density per decade")
        ax.set_ylim(bottom=0)
    else:
        ax.set_yscale("log")
        ax.set_ylim(bottom=0.3 * lowest)  # theory densities vanishing at an edge would stretch the axis
        ax.set_ylabel("density")
    ax.set_xlabel(xlabel)
    ax.legend(fontsize=8)
    return fig, ax
