"""Figures of notebook 07 (gradient clipping): the cliff, runs over seeds, an outlier's influence.

Layer: presentation. Draws given arrays (from ``jax.vmap`` of a loss over w, ``gc.clipping.train_seeds``,
``gc.clipping.outlier_influence``, ``gc.train.fit`` Histories); computes nothing a notebook asserts.

- ``cliff_plot``: a loss and its |gradient| over one parameter, whole range and a zoom on the wall.
- ``seed_runs_plot``: training-loss curves (median and interquartile band over seeds) and the final
  value of every seed (one point each, median as a bar), one colour per method.
- ``influence_plot``: per-example gradient norms of one batch (the outlier marked, the clip level as
  a line) and, per clipping method, how far the outlier moved the update in every seed.
- ``shared_heatmaps``: ``history_heatmap`` of several runs side by side on one colour scale.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ._checks import numeric_array
from .training import history_heatmap

__all__ = ["cliff_plot", "influence_plot", "seed_runs_plot", "shared_heatmaps"]


def _subplots(ncols: int, width: float, height: float = 3.6):
    import matplotlib.pyplot as plt

    return plt.subplots(1, ncols, figsize=(width, height), layout="constrained")


def cliff_plot(w: Any, loss: Any, grad: Any, w_cliff: float, *, zoom: float = 0.004,
               xlabel: str = "recurrent weight $w$", ylabel: str = "loss"):
    """Two panels: loss (left axis) and |∂L/∂w| (right axis, log) over all of ``w``, then ±``zoom`` around ``w_cliff``.

    ``w``, ``loss``, ``grad``: shape (n,). Returns ``(fig, axes)``; the twin gradient axes are
    ``axes[i].right`` for restyling.
    """
    w, loss, grad = numeric_array(w, "w"), numeric_array(loss, "loss"), numeric_array(grad, "grad")
    if not (w.shape == loss.shape == grad.shape):
        raise ValueError(f"w, loss, grad: expected equal shapes, got {w.shape}, {loss.shape}, {grad.shape}")
    import matplotlib.pyplot as plt

    fig, axes = _subplots(2, 11, 3.8)
    for ax, shown in zip(axes, (np.ones_like(w, dtype=bool), np.abs(w - w_cliff) <= zoom), strict=True):
        ax.plot(w[shown], loss[shown], color="C0")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel, color="C0")
        right = ax.twinx()
        right.semilogy(w[shown], np.abs(grad[shown]), color="C3", linewidth=0.8)
        right.set_ylabel(r"$|\partial L/\partial w|$ (log scale)", color="C3")
        ax.right = right
    axes[1].xaxis.set_major_locator(plt.MaxNLocator(5))
    axes[0].set_title(f"the loss over w: a wall at w ≈ {w_cliff:.3f}")
    axes[1].set_title(f"zoom: ±{zoom:g} around the wall")
    return fig, axes


def _runs(runs: Mapping[str, Any], name: str, ndim: int) -> dict[str, np.ndarray]:
    if not isinstance(runs, Mapping) or not runs:
        raise TypeError(f"{name}: expected a non-empty dict method name -> array")
    return {k: numeric_array(v, f"{name}[{k!r}]", ndim=ndim) for k, v in runs.items()}


def seed_runs_plot(curves: Mapping[str, Any], finals: Mapping[str, Any], *, curve_label: str = "training loss",
                   final_label: str = "test loss", smooth: int = 20, log_final: bool = True):
    """Left: each method's curve over steps, median over seeds (line) and 25–75 % band; right: each seed's final value.

    ``curves``: method -> (n_seeds, steps) (a running median over ``smooth`` steps first, so single outlier
    batches do not dominate the line);
    ``finals``: method -> (n_seeds,), drawn as one point per seed and a bar at the median.
    Returns ``(fig, axes)``.
    """
    curves, finals = _runs(curves, "curves", 2), _runs(finals, "finals", 1)
    fig, axes = _subplots(2, 11, 3.8)
    width = max(1, int(smooth))
    for i, (name, c) in enumerate(curves.items()):
        width = min(width, c.shape[1])
        sm = np.median(np.lib.stride_tricks.sliding_window_view(c, width, axis=1), axis=-1)
        steps = np.arange(sm.shape[1]) + width - 1
        lo, mid, hi = np.percentile(sm, [25, 50, 75], axis=0)
        axes[0].semilogy(steps, mid, color=f"C{i}", label=name)
        axes[0].fill_between(steps, lo, hi, color=f"C{i}", alpha=0.2, linewidth=0)
    axes[0].set(xlabel="step", ylabel=f"{curve_label}\n(running median of {width} steps)")
    axes[0].legend(fontsize="small")
    rng = np.random.default_rng(0)  # horizontal jitter only, so points of equal value stay visible
    for i, (name, f) in enumerate(finals.items()):
        colour = f"C{list(curves).index(name)}" if name in curves else f"C{i}"
        axes[1].plot(i + 0.08 * rng.standard_normal(f.size), f, "o", color=colour, ms=4, alpha=0.8)
        axes[1].plot([i - 0.3, i + 0.3], [np.median(f)] * 2, "-", color="k", lw=2)
    axes[1].set_xticks(range(len(finals)))
    axes[1].set_xticklabels(list(finals), rotation=25, ha="right", fontsize="small")
    axes[1].set_ylabel(f"{final_label}, one point per seed (bar: median)")
    if log_final:
        axes[1].set_yscale("log")
    return fig, axes


def influence_plot(example_norms: Any, outlier: int, example_clip: float, shifts: Mapping[str, Any]):
    """Left: ‖∂ℓ_b/∂θ‖ of every example b of one batch (the outlier in red) and the per-example clip level C.

    Right: for each method, the relative shift ‖u(corrupted) − u(clean)‖ / ‖u(clean)‖ of the update
    in every seed (``shifts``: method -> (n_seeds,)), log scale. Returns ``(fig, axes)``.
    """
    norms = numeric_array(example_norms, "example_norms")
    shifts = _runs(shifts, "shifts", 1)
    if not 0 <= int(outlier) < norms.size:
        raise ValueError(f"outlier: expected an example index in [0, {norms.size}), got {outlier}")
    fig, axes = _subplots(2, 11, 3.6)
    idx = np.arange(norms.size)
    others = idx != int(outlier)
    axes[0].semilogy(idx[others], norms[others], "o", color="C0", ms=4, label="clean examples")
    axes[0].semilogy([outlier], [norms[outlier]], "o", color="C3", ms=7, label="corrupted example")
    axes[0].axhline(example_clip, color="k", ls="--", lw=1, label=f"per-example clip C = {example_clip:g}")
    axes[0].set(xlabel="example b in the batch", ylabel=r"$\|\partial \ell_b/\partial\theta\|$")
    axes[0].legend(fontsize="small")
    rng = np.random.default_rng(0)
    for i, s in enumerate(shifts.values()):
        axes[1].plot(i + 0.08 * rng.standard_normal(s.size), s, "o", color=f"C{i}", ms=4, alpha=0.8)
        axes[1].plot([i - 0.3, i + 0.3], [np.median(s)] * 2, "-", color="k", lw=2)
    axes[1].set_xticks(range(len(shifts)))
    axes[1].set_xticklabels(list(shifts), fontsize="small")
    axes[1].set_yscale("symlog", linthresh=1e-2)
    axes[1].set_ylim(bottom=0)
    axes[1].set_ylabel("update moved by the outlier, one point per seed\n"
                       r"$\|u - u_\mathrm{clean}\| / \|u_\mathrm{clean}\|$")
    return fig, axes


def shared_heatmaps(histories: Mapping[str, Any], kind: str = "grad_norms"):
    """``gc.plot.history_heatmap`` of each History side by side (titles: the dict keys), on one common log colour scale.

    Returns ``(fig, axes)``.
    """
    if not isinstance(histories, Mapping) or not histories:
        raise TypeError("histories: expected a non-empty dict title -> gc.train.History")
    fig, axes = _subplots(len(histories), 5.5 * len(histories), 3.6)
    axes = np.atleast_1d(axes)
    for ax, (title, h) in zip(axes, histories.items(), strict=True):
        history_heatmap(h, kind, ax=ax)
        ax.set_title(title)
    images = [ax.images[0] for ax in axes]
    lo = min(float(im.norm.vmin) for im in images)
    hi = max(float(im.norm.vmax) for im in images)
    for im in images:
        im.set_clim(lo, hi)
    return fig, axes
