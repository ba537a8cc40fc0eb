"""Activations and per-layer statistics: φ and φ' curves, histograms of h_l per layer, per-layer profiles.

Measurements are drawn as points (markers), theory as lines, as everywhere in ``gc.plot``.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from scipy import integrate, special

from ..activations import Activation, activation_name, get_activation
from .norms import _series as one_series

__all__ = ["activation_comparison", "activation_derivatives", "activation_histograms", "layer_profile", "relu_dead_fraction"]


def _series(data: Any, name: str) -> dict[str, np.ndarray]:
    """``{label: 1-D float array}`` from a mapping (or a single array, labelled 'measured')."""
    items = dict(data) if isinstance(data, Mapping) else {"measured": data}
    if not items:
        raise ValueError(f"{name}: expected at least one series, got an empty mapping")
    return {str(label): one_series(v, f"{name}[{label!r}]") for label, v in items.items()}


def layer_profile(
    measured: Mapping[str, Any] | Any,
    theory: Mapping[str, Any] | None = None,
    *,
    ylabel: str,
    log: bool = True,
    start: int = 0,
    xlabel: str = "layer $l$",
    ax: plt.Axes | None = None,
) -> tuple[plt.Figure, plt.Axes]:
    """Per-layer values: measured series as points, theory series as lines (same colour for the same label).

    ``measured`` / ``theory``: ``{label: values}`` with one value per layer (or one array); entry i
    is drawn at layer ``start + i``. A theory label not among the measured ones gets its own
    colour (e.g. a bound). ``log``: log-scale y (norms, ratios). Non-positive values are skipped
    on a log scale. Returns ``(fig, ax)``.
    """
    meas = _series(measured, "measured")
    theo = _series(theory, "theory") if theory is not None else {}
    if isinstance(start, bool) or not isinstance(start, int):
        raise TypeError(f"start: expected an int (the layer index of entry 0), got {type(start).__name__}")
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6, 4))
    colours = {label: f"C{i}" for i, label in enumerate(meas)}
    for label, y in theo.items():
        colour = colours.setdefault(label, f"C{len(colours)}")
        ax.plot(start + np.arange(y.size), y, "-", color=colour, lw=1.5, label=f"{label} (theory)")
    for label, y in meas.items():
        x = start + np.arange(y.size)
        keep = np.isfinite(y) & ((y > 0) if log else True)
        ax.plot(x[keep], y[keep], "o", ms=4, color=colours[label], label=f"{label} (measured)")
    if log:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    return fig, ax


def activation_derivatives(
    activations: Sequence[str | Activation],
    *,
    x: Any = None,
    axes: Sequence[plt.Axes] | None = None,
) -> tuple[plt.Figure, np.ndarray]:
    """φ(x) (left) and φ'(x) (right, by ``jax.grad``) for each activation, as lines. Returns ``(fig, axes)``."""
    if isinstance(activations, (str, bytes)) or not isinstance(activations, Sequence) or not activations:
        raise TypeError("activations: expected a non-empty list of names or functions, e.g. ['tanh', 'relu']")
    x = np.linspace(-5.0, 5.0, 501) if x is None else np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or x.size < 2:
        raise ValueError(f"x: expected a 1-D grid of at least 2 points, got shape {x.shape}")
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    else:
        axes = np.asarray(axes)
        if axes.size != 2:
            raise ValueError(f"axes: expected two axes (for φ and φ'), got {axes.size}")
        fig = axes.flat[0].figure
    xj = jnp.asarray(x, jnp.float32)
    for i, act in enumerate(activations):
        phi = get_activation(act)
        d = jnp.vectorize(jax.grad(phi))(xj)
        axes[0].plot(x, np.asarray(phi(xj)), color=f"C{i}", label=activation_name(act))
        axes[1].plot(x, np.asarray(d), color=f"C{i}", label=activation_name(act))
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
        arrays.append(np.asarray(hs[l], dtype=np.float64).ravel())
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ValueError(f"bins: expected a positive int, got {bins!r}")
    if range is None:
        range = (min(a.min() for a in arrays), max(a.max() for a in arrays))
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6, 4))
    for i, (l, a) in enumerate(zip(layers, arrays)):
        dens, edges = np.histogram(a, bins=bins, range=range, density=True)
        centres = 0.5 * (edges[:-1] + edges[1:])
        keep = dens > 0
        ax.plot(centres[keep], dens[keep], "o", ms=3.5, color=plt.cm.viridis(i / max(len(layers) - 1, 1)), label=f"layer {l} (measured)")
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


def relu_dead_fraction(c: Any, batch: int) -> np.ndarray:
    """Probability that a ReLU unit is off (z ≤ 0) for all ``batch`` examples, at pre-activation correlation c.

    For jointly Gaussian z_1 ... z_B with unit variance and equal pairwise correlation c ≥ 0, write
    z_b = √c g + √(1−c) e_b; then P(all z_b ≤ 0) = ∫Dg Φ(−g √(c/(1−c)))^B: 2^(−B) at c = 0, 1/2 at c = 1.
    This is the mean-field ``frac_dead`` of ``gc.stats.activation_stats`` for a batch of B inputs.
    """
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
        raise ValueError(f"batch: expected a positive int, got {batch!r}")
    cs = np.asarray(c, dtype=np.float64)
    if not np.all(np.isfinite(cs)) or np.any(cs < 0) or np.any(cs > 1):
        raise ValueError("c: expected correlations in [0, 1]")
    out = np.empty(cs.shape)
    for i, ci in np.ndenumerate(cs):
        if ci >= 1.0:
            out[i] = 0.5
            continue
        a = np.sqrt(ci / (1.0 - ci))
        f = lambda g: np.exp(-0.5 * g * g) / np.sqrt(2 * np.pi) * special.ndtr(-a * g) ** batch  # noqa: E731
        out[i] = integrate.quad(f, -np.inf, np.inf, epsabs=1e-12, limit=200)[0]
    return out
