"""Plots for the recurrent case study: several training runs side by side (presentation layer: draws given data).

``compare_runs`` draws the loss and the global gradient norm of each run (a ``gc.train.History``
or anything with ``loss`` and ``grad_norm`` arrays) against the step, on log axes, with an optional
baseline loss (e.g. the adding problem's 1/6) and clipping threshold as horizontal lines, and a
cross where a run stopped on a non-finite value.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .norms import _positive

__all__ = ["compare_runs"]


def _run_arrays(run: Any, label: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        loss = np.asarray(run.loss, dtype=np.float64)
        grad = np.asarray(run.grad_norm, dtype=np.float64)
    except AttributeError:
        raise TypeError(
            f"runs[{label!r}]: expected a History (with .loss and .grad_norm), got {type(run).__name__}"
        ) from None
    if loss.ndim != 1 or grad.shape != loss.shape:
        raise ValueError(
            f"runs[{label!r}]: loss and grad_norm must be 1-D arrays of equal length, got {loss.shape} and {grad.shape}"
        )
    return loss, grad


def compare_runs(
    runs: Mapping[str, Any],
    *,
    baseline: float | None = None,
    baseline_label: str = "baseline",
    clip: float | None = None,
    smooth: int = 1,
    loss_ylim: tuple[float, float] | None = None,
    axes: Any = None,
):
    """Loss (left) and global gradient norm ‖g‖ (right) per step for each run in ``runs`` (label -> History).

    ``smooth``: a running mean over this many steps (1 = raw): arithmetic for the loss, geometric
    for the gradient norm. ``baseline``: a loss
    level drawn as a dashed line; ``clip``: a gradient-norm threshold drawn as a dashed line;
    ``loss_ylim``: the loss axis range, so that a diverging run does not flatten the others (a
    triangle on the top edge marks where a run leaves it).
    Returns ``(fig, axes)``.
    """
    if not isinstance(runs, Mapping) or not runs:
        raise TypeError("runs: expected a non-empty dict label -> History")
    if isinstance(smooth, bool) or not isinstance(smooth, int) or smooth < 1:
        raise ValueError(f"smooth: expected a positive int, got {smooth!r}")
    if axes is None:
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    else:
        if len(axes) != 2 or not all(hasattr(a, "semilogy") for a in axes):
            raise TypeError("axes: expected two matplotlib Axes (loss, gradient norm) or None")
        fig = axes[0].figure
    ax_loss, ax_grad = axes
    for label, run in runs.items():
        loss, grad = _run_arrays(run, label)
        steps = np.arange(loss.size)
        shown, shown_grad = loss, grad
        if smooth > 1 and loss.size >= smooth:
            window = np.ones(smooth) / smooth
            shown = np.convolve(loss, window, mode="valid")
            log_grad = np.log(np.maximum(grad, np.finfo(np.float64).tiny))
            shown_grad = np.exp(np.convolve(log_grad, window, mode="valid"))  # geometric mean: fair on a log axis
        start = steps.size - shown.size
        (line,) = ax_loss.plot(steps[start:], _positive(shown), linewidth=1.2, label=label)
        ax_grad.plot(steps[start:], _positive(shown_grad), linewidth=1.0, color=line.get_color(), label=label)
        stopped = getattr(run, "stopped_at", None)
        if stopped is not None:
            for ax, y in ((ax_loss, shown), (ax_grad, shown_grad)):
                finite = y[np.isfinite(y)]
                if finite.size:
                    ax.plot([stopped], [finite[-1]], "x", color=line.get_color(), markersize=8)
    if baseline is not None:
        ax_loss.axhline(baseline, color="0.3", linestyle="--", linewidth=1, label=baseline_label)
    if clip is not None:
        ax_grad.axhline(clip, color="0.3", linestyle="--", linewidth=1, label=f"clip threshold {clip:g}")
    suffix = f" ({smooth}-step mean)" if smooth > 1 else ""
    for ax, ylabel in ((ax_loss, "training loss" + suffix), (ax_grad, r"gradient norm $\|g\|$" + suffix)):
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize="small")
    if loss_ylim is not None:
        ax_loss.set_ylim(*loss_ylim)
        for line in list(ax_loss.get_lines()):  # mark where a run leaves the top of the range
            x, y = np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
            above = np.flatnonzero(np.isfinite(y) & (y > loss_ylim[1]))
            if line.get_label().startswith("_") or not above.size:
                continue
            ax_loss.plot([x[above[0]]], [loss_ylim[1]], "^", color=line.get_color(), markersize=8, clip_on=False)
            ax_loss.annotate(f"{line.get_label()}: above {loss_ylim[1]:g} from step {x[above[0]]:.0f}",
                             (x[above[0]], loss_ylim[1]), xytext=(6, -12), textcoords="offset points",
                             color=line.get_color(), fontsize="small")
    fig.tight_layout()
    return fig, axes
