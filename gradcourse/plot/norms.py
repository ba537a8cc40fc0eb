"""Per-layer norm plots: measured norms as markers, a theory prediction as a line, log y axis.

Layer: presentation. Draws given arrays (e.g. ``gc.signal_norms(gc.backward(...))`` or a
``gc.experiments.backward_profile``); computes nothing a notebook needs as a number.

``depth_profile`` draws per-layer values (e.g. ‖∂L/∂h_l‖ for l = 0 ... L) as points with an
optional theory line (e.g. χ₁^{(L-l)/2}): one series, or several given as ``{label: values}``
mappings; call it again on the same ``ax`` to overlay more. ``weight_vs_signal_plot`` puts the
backward signal ‖∂L/∂h_l‖ and the weight gradients ‖∂L/∂W_l‖ of the same network side by side.
``log_norm_walk_plot`` shows many random networks' log-norms through depth (the finite-width random walk)
and their variance across networks against a predicted line.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ._checks import numeric_array

__all__ = ["depth_profile", "log_norm_walk_plot", "weight_vs_signal_plot"]


def _series(values: Any, name: str) -> np.ndarray:
    """``values`` as a 1-D float64 NumPy array, or a ValueError / TypeError naming ``name``."""
    return numeric_array(values, name, what=" (one value per layer)")


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


def _draw_one(ax, x, y, t, *, label, theory_label, color, marker, log):
    """One series as markers and, when ``t`` is given, its theory line in the same colour."""
    shown = _positive if log else (lambda a: np.where(np.isfinite(a), a, np.nan))
    (points,) = ax.plot(x, shown(y), linestyle="none", marker=marker, markersize=4, color=color, label=label, zorder=3)
    if t is not None:
        if t.size != y.size:
            raise ValueError(f"theory: expected {y.size} values (one per layer, like norms), got {t.size}")
        if theory_label is None and label is not None:
            theory_label = f"{label} (theory)"
        ax.plot(x, shown(t), "-", color=points.get_color(), linewidth=1.5, alpha=0.8, label=theory_label)


def depth_profile(
    norms: Any,
    theory: Any = None,
    *,
    layers: Any = None,
    start: int = 0,
    log: bool = True,
    ax: Any = None,
    label: str | None = None,
    theory_label: str | None = None,
    color: Any = None,
    marker: str = "o",
    xlabel: str = "layer $l$",
    ylabel: str = "norm",
):
    """Per-layer values as markers and, optionally, a theory prediction as a line of the same colour.

    One series: ``norms`` of shape (n,), one value per layer (e.g. ``gc.signal_norms(gc.backward(...))``,
    L+1 values), ``theory`` of shape (n,) or None. Several series: ``norms`` a mapping
    ``{label: values}`` and ``theory`` a mapping ``{label: values}`` (or None); a theory label that is
    also a measured label is drawn in that series' colour, any other (e.g. a bound) as a line of its own.
    ``layers``: the x positions (default ``start ... start + n - 1``). ``log``: log-scale y (norms,
    ratios; zero, negative and non-finite values are left out); ``log=False`` for fractions.
    Call it again on the same ``ax`` to overlay more series. Returns ``(fig, ax)``.
    """
    if isinstance(start, bool) or not isinstance(start, (int, np.integer)):
        raise TypeError(f"start: expected an int (the layer index of entry 0), got {type(start).__name__}")
    fig, ax = _axes(ax)
    if isinstance(norms, Mapping):
        if not norms:
            raise ValueError("norms: expected at least one series, got an empty mapping")
        if theory is not None and not isinstance(theory, Mapping):
            raise TypeError(f"theory: with a mapping of measured series, expected a mapping {{label: values}} or None, "
                            f"got {type(theory).__name__}")
        theo = {str(k): _series(v, f"theory[{k!r}]") for k, v in (theory or {}).items()}
        for name, values in norms.items():
            y = _series(values, f"norms[{name!r}]")
            x = _layers(layers, y.size, "layers", start)
            _draw_one(ax, x, y, theo.pop(str(name), None), label=str(name), theory_label=None, color=None,
                      marker=marker, log=log)
        for name, t in theo.items():  # lines with no measurement (bounds, references)
            x = _layers(layers, t.size, "layers", start)
            ax.plot(x, _positive(t) if log else t, "-", linewidth=1.5, alpha=0.8, label=name)
    else:
        y = _series(norms, "norms")
        x = _layers(layers, y.size, "layers", start)
        t = None if theory is None else _series(theory, "theory")
        _draw_one(ax, x, y, t, label=label, theory_label=theory_label, color=color, marker=marker, log=log)
    ax.set_yscale("log" if log else "linear")
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


def log_norm_walk_plot(
    log_sq_norms: Mapping[str, Any],
    variance_theory: Mapping[str, Any] | None = None,
    *,
    layers: Any = None,
    n_show: int = 20,
    axes: Any = None,
    quantity: str = r"\|\partial L/\partial h_l\| \,/\, \|\partial L/\partial h_L\|",
):
    """Many networks' log-norms through depth (left) and their variance across networks (right).

    ``log_sq_norms``: ``{label: array (n_nets, L+1)}`` of ln(‖s_l‖²/‖s_ref‖²) per network and layer (e.g.
    ``gc.experiments.log_norm_walk(...).backward``); ``variance_theory``: ``{label: array (L+1,)}``, a line
    drawn over the measured variance of the same label. Left: the first ``n_show`` networks of the first
    series as thin lines of ‖s_l‖/‖s_ref‖ (log axis) with the mean-field value 1; right: Var over networks
    of ln‖s_l‖² as points per series, theory as lines. Returns ``(fig, axes)``.
    """
    if not isinstance(log_sq_norms, Mapping) or not log_sq_norms:
        raise TypeError("log_sq_norms: expected a non-empty mapping {label: array of shape (n_nets, L+1)}")
    data = {}
    for name, v in log_sq_norms.items():
        arr = np.asarray(v, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[0] < 2:
            raise ValueError(f"log_sq_norms[{name!r}]: expected shape (n_nets >= 2, L+1), got {arr.shape}")
        data[str(name)] = arr
    if axes is None:
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    else:
        fig = axes[0].figure
    first, arr = next(iter(data.items()))
    x = _layers(layers, arr.shape[1], "layers")
    for i, row in enumerate(arr[:n_show]):
        axes[0].plot(x, np.exp(row / 2), "-", color="0.5", lw=0.7, alpha=0.7,
                     label=f"{first}: {min(n_show, arr.shape[0])} random networks" if i == 0 else None)
    axes[0].plot(x, np.ones_like(x), "k-", lw=2, label="mean field (infinite width)")
    axes[0].set(yscale="log", xlabel="layer $l$", ylabel=f"${quantity}$")
    axes[0].legend(fontsize="small")
    theory = dict(variance_theory or {})
    for name, arr in data.items():
        xs = _layers(layers, arr.shape[1], "layers")
        (pts,) = axes[1].plot(xs, arr.var(axis=0), "o", ms=3, label=f"{name}: measured over {arr.shape[0]} networks")
        if name in theory:
            t = _series(theory.pop(name), f"variance_theory[{name!r}]")
            if t.size != xs.size:
                raise ValueError(f"variance_theory[{name!r}]: expected {xs.size} values, got {t.size}")
            axes[1].plot(xs, t, "-", color=pts.get_color(), lw=1.5, label=f"{name}: theory")
    if theory:
        raise ValueError(f"variance_theory: labels {sorted(theory)} have no measured series")
    axes[1].set(xlabel="layer $l$", ylabel=r"variance over networks of $\ln\|\cdot\|^2$")
    axes[1].legend(fontsize="small")
    return fig, axes
