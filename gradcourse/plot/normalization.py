"""Weight decay on a scale-invariant weight: ‖W‖ and the angle per step over training, seeds as a band.

Layer: presentation. Draws given arrays (from ``gc.train.fit_many`` and ``gc.scale_invariance``); computes
nothing a notebook needs.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from matplotlib.figure import Figure

__all__ = ["weight_decay_plot"]


def _runs(values: Mapping[str, Any], name: str) -> dict[str, np.ndarray]:
    if not isinstance(values, Mapping) or not values:
        raise TypeError(f"{name}: expected a non-empty mapping label -> (seeds, steps) array")
    out = {}
    for k, v in values.items():
        a = np.asarray(v, dtype=np.float64)
        if a.ndim != 2:
            raise ValueError(f"{name}[{k!r}]: expected shape (seeds, steps), got {a.shape}")
        out[k] = a
    return out


def _panel(ax, runs: dict[str, np.ndarray], theory: Mapping[str, Any], every: int, ylabel: str) -> None:
    for i, (label, a) in enumerate(runs.items()):
        steps = np.arange(a.shape[1])
        lo, mid, hi = np.percentile(a, [0, 50, 100], axis=0)
        ax.fill_between(steps, lo, hi, color=f"C{i}", alpha=0.2, linewidth=0)
        ax.plot(steps[::every], mid[::every], "o", ms=3, color=f"C{i}", label=f"{label} (median, range over seeds)")
        if label in theory and theory[label] is not None:
            t = np.broadcast_to(np.asarray(theory[label], dtype=np.float64), steps.shape)
            ax.plot(steps, t, "-", color=f"C{i}", lw=1.2)
    ax.set_yscale("log")
    ax.set_xlabel("SGD step")
    ax.set_ylabel(ylabel)


def weight_decay_plot(norms: Mapping[str, Any], angles: Mapping[str, Any], *, norm_theory: Mapping[str, Any] = (),
                      angle_theory: Mapping[str, Any] = (), every: int = 20, fig: Figure | None = None):
    """Left: ‖W_t‖; right: the angle turned per step; one colour per configuration.

    ``norms`` / ``angles``: label -> (seeds, steps); drawn as the median over seeds (markers, every ``every``
    steps) and the full seed range (band). ``norm_theory`` / ``angle_theory``: label -> (steps,) array or a
    scalar (a horizontal line), drawn as a line in the same colour. Returns ``(fig, axes)``.
    """
    norms, angles = _runs(norms, "norms"), _runs(angles, "angles")
    norm_theory, angle_theory = dict(norm_theory), dict(angle_theory)
    if fig is None:
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    else:
        axes = fig.subplots(1, 2)
    _panel(axes[0], norms, norm_theory, every, r"$\|W_t\|$ (Frobenius)")
    _panel(axes[1], angles, angle_theory, every, "angle turned per step (radians)")
    axes[0].set_title("lines: equilibrium $(\\eta G/2\\lambda_{wd})^{1/4}$ and $(\\|W_0\\|^4 + 2\\eta^2 G t)^{1/4}$",
                      fontsize="medium")
    axes[1].set_title("lines: $\\arccos(1-\\eta\\lambda_{wd}) \\approx \\sqrt{2\\eta\\lambda_{wd}}$ and "
                      "$\\eta\\sqrt{G}/\\|W_t\\|^2$", fontsize="medium")
    axes[0].legend(fontsize="small")
    return fig, axes
