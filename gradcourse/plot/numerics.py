"""Plots for notebook 11 (numerics): format ranges, gradient magnitudes against them, loss-scale traces.

Layer: presentation. Draws given numbers (e.g. ``gc.precision.float_format(...)`` tuples,
gradient arrays already on the host, a recorded loss scale); computes nothing a notebook asserts.
Each function takes an optional ``ax`` and returns ``(fig, ax)``.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["format_bands", "layer_fraction_plot", "loss_scale_plot", "magnitude_histograms", "swamping_plot"]

_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")


def _axes(ax: Any, figsize: tuple[float, float] = (6, 4)):
    if ax is None:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
        return fig, ax
    if not hasattr(ax, "set_xscale"):
        raise TypeError(f"ax: expected a matplotlib Axes or None, got {type(ax).__name__}")
    return ax.figure, ax


def format_bands(formats: Sequence[Any], *, ax: Any = None):
    """One horizontal band per format on a log₁₀ axis: subnormals (light) from the smallest subnormal
    to the smallest normal, normal numbers (solid) up to the largest finite value, and eps (black tick).

    formats: objects with ``name``, ``smallest_subnormal``, ``smallest_normal``, ``max``, ``eps``
    (``gc.precision.FloatFormat``).
    """
    if len(formats) == 0:
        raise ValueError("formats: expected at least one format (e.g. [gc.precision.float_format(jnp.float16)])")
    fig, ax = _axes(ax, (7, 2.6))
    for i, f in enumerate(formats):
        c = _COLOURS[i % len(_COLOURS)]
        lo, mid, hi = np.log10([f.smallest_subnormal, f.smallest_normal, f.max])
        ax.barh(i, mid - lo, left=lo, height=0.5, color=c, alpha=0.3, label="subnormal" if i == 0 else None)
        ax.barh(i, hi - mid, left=mid, height=0.5, color=c, label="normal" if i == 0 else None)
        eps_label = "eps (gap above 1)" if i == 0 else None
        ax.plot([np.log10(f.eps)] * 2, [i - 0.3, i + 0.3], color="k", lw=2, label=eps_label)
    ax.set_yticks(range(len(formats)), [f.name for f in formats])
    ax.set_xlabel("log₁₀ |value|")
    ax.legend(loc="lower right", fontsize="small")
    return fig, ax


def magnitude_histograms(
    magnitudes: Mapping[str, Any], thresholds: Mapping[str, float] | None = None, *, bins: int = 60, ax: Any = None
):
    """Step histograms of log₁₀|g| for each labelled array (zeros left out), and a vertical line per threshold.

    magnitudes: label -> array of values (any shape); thresholds: label -> positive value (e.g. float16's
    smallest normal and subnormal).
    """
    if len(magnitudes) == 0:
        raise ValueError("magnitudes: expected at least one labelled array")
    fig, ax = _axes(ax)
    mags = {k: np.abs(np.asarray(v, np.float64)).ravel() for k, v in magnitudes.items()}
    logs = {k: np.log10(v[(v > 0) & np.isfinite(v)]) for k, v in mags.items()}
    allv = np.concatenate([v for v in logs.values() if v.size] or [np.zeros(1)])
    edges = np.linspace(allv.min(), allv.max(), bins + 1)
    for i, (k, v) in enumerate(logs.items()):
        ax.hist(v, bins=edges, histtype="step", lw=1.5, color=_COLOURS[i % len(_COLOURS)], label=k)
    for j, (k, t) in enumerate((thresholds or {}).items()):
        ax.axvline(np.log10(t), color="k", ls=("--", ":", "-.")[j % 3], lw=1, label=k)
    ax.set_xlabel("log₁₀ |gradient entry|")
    ax.set_ylabel("entries")
    ax.legend(fontsize="small")
    return fig, ax


def layer_fraction_plot(
    fractions: Mapping[str, Any], *, ylabel: str = "fraction of entries", layers: Any = None, ax: Any = None
):
    """Per-layer fractions (one marker series per label), layers 1 ... L on x."""
    if len(fractions) == 0:
        raise ValueError("fractions: expected at least one labelled series")
    fig, ax = _axes(ax)
    for i, (k, v) in enumerate(fractions.items()):
        v = np.asarray(v, np.float64)
        x = np.arange(1, v.size + 1) if layers is None else np.asarray(layers)
        ax.plot(x, v, "o-", ms=4, lw=1, color=_COLOURS[i % len(_COLOURS)], label=k)
    ax.set_xlabel("layer l (1 = nearest the input)")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize="small")
    return fig, ax


def loss_scale_plot(scale: Any, finite: Any, *, ax: Any = None):
    """The loss scale S per step (log₂ axis) with a red × at each step whose gradients were not finite (skipped)."""
    s = np.asarray(scale, np.float64)
    ok = np.asarray(finite, bool)
    if s.shape != ok.shape or s.ndim != 1:
        raise ValueError(f"scale, finite: expected two 1-D arrays of one length, got shapes {s.shape} and {ok.shape}")
    fig, ax = _axes(ax)
    steps = np.arange(s.size)
    ax.step(steps, np.log2(s), where="post", color="tab:blue", label="log₂ S (dynamic)")
    ax.plot(steps[~ok], np.log2(s[~ok]), "x", color="tab:red", ms=8, label="skipped: Inf/NaN gradient")
    ax.set_xlabel("step")
    ax.set_ylabel("log₂ loss scale S")
    ax.legend(fontsize="small")
    return fig, ax


def swamping_plot(ratio: Any, measured: Any, theory: Any = None, *, ax: Any = None, label: str = "measured"):
    """Fraction of weights left unchanged by an update Δ = r·|w| against r (log₂ axis): points, theory as a line."""
    r = np.asarray(ratio, np.float64)
    fig, ax = _axes(ax)
    if theory is not None:
        ax.plot(np.log2(r), np.asarray(theory, np.float64), "-", color="k", lw=1, label="theory")
    ax.plot(np.log2(r), np.asarray(measured, np.float64), "o", ms=4, label=label)
    ax.set_xlabel("log₂ (Δ / |w|)")
    ax.set_ylabel("fraction with w + Δ == w")
    ax.legend(fontsize="small")
    return fig, ax
