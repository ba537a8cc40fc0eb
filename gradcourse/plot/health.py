"""The figure of a ``gc.health_report`` (presentation layer: draws given numbers, imports no JAX)."""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

__all__ = ["health_profile"]


def health_profile(rows: Sequence[dict[str, Any]], findings: Sequence[str] = (), *, axes: Any = None):
    """Two panels over the captured points (in execution order): RMS activation ‖h‖/√n and RMS backward
    signal ‖∂L/∂h‖/√n (log scale), and the dead-unit fraction. Points with a NaN / Inf are marked with a red x.

    ``rows``: ``HealthReport.rows``. Returns ``(fig, axes)``.
    """
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), constrained_layout=True)
    else:
        fig = np.ravel(axes)[0].figure
    ax1, ax2 = np.ravel(axes)[:2]
    names = [r["name"] for r in rows]
    x = np.arange(len(rows))

    def col(key: str) -> np.ndarray:
        return np.array([r.get(key, math.nan) for r in rows], dtype=float)

    for key, label, marker in (("rms", "activation ‖h‖/√n", "o"), ("grad_rms", "backward signal ‖∂L/∂h‖/√n", "s")):
        v = col(key)
        ok = np.isfinite(v) & (v > 0)
        ax1.plot(x[ok], v[ok], marker=marker, linestyle="-", label=label)
    bad = [i for i, r in enumerate(rows) if r.get("nonfinite", 0) or r.get("grad_nonfinite", 0)]
    if bad:
        ax1.scatter(bad, [1.0] * len(bad), marker="x", color="red", s=60, zorder=5, label="NaN / Inf here")
    ax1.set_yscale("log")
    ax1.set_ylabel("RMS value")
    ax1.set_title("signals through the model" + (" — problems found" if findings else ""))
    ax1.legend(fontsize=8)
    dead = col("frac_dead")
    ax2.bar(x, np.nan_to_num(dead, nan=0.0), color="tab:gray", label="dead units")
    ax2.set_ylim(0, 1)
    ax2.set_ylabel("fraction of units dead")
    ax2.set_title("dead units over the batch")
    step = max(1, len(rows) // 16)
    for ax in (ax1, ax2):
        ax.set_xticks(x[::step])
        ax.set_xticklabels(names[::step], rotation=60, ha="right", fontsize=7)
        ax.set_xlabel("captured point (execution order)")
    return fig, axes
