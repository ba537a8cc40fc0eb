"""What ``gc.train.fit`` recorded, drawn: a layer × step heatmap and curves against the step.

Layer: presentation. Draws a given ``gc.train.History``; computes nothing.

``history_heatmap`` shows per-layer gradient norms (or update-to-parameter ratios) of one run as an
image, one row per layer (a stacked leaf gives one row per depth index), with a log colour scale:
a layer that stops learning is a dark band, a gradient spike a bright column. ``history_curves``
draws the loss, the global gradient norm, the global update norm or one layer's gradient norm of
one run or several (a dict name -> History) against the step, on a log y axis.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .norms import _axes, _positive

__all__ = ["history_heatmap", "history_curves"]

_KIND_LABEL = {
    "grad_norms": r"gradient norm $\|g_l\|$",
    "update_ratios": r"update ratio $\|\Delta\theta_l\| / \|\theta_l\|$",
}
_CURVE_LABEL = {"loss": "loss", "grad_norm": r"gradient norm $\|g\|$", "update_norm": r"update norm $\|\Delta\theta\|$"}


def _figure(ax: Any):
    """A new 6×4 in figure with constrained layout (long layer labels fit), or the given Axes' figure."""
    if ax is None:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
        return fig, ax
    return _axes(ax)


def _check_history(history: Any, name: str = "history") -> Any:
    if not all(hasattr(history, a) for a in ("loss", "grad_norm", "update_norm", "grad_norms", "matrix")):
        raise TypeError(
            f"{name}: expected a gc.train.History (what gc.train.fit returns), got {type(history).__name__}"
        )
    return history


def history_heatmap(history: Any, kind: str = "grad_norms", ax: Any = None):
    """Layer × step image of ``history.matrix(kind)`` with a log colour scale and a labelled colourbar.

    ``kind``: ``"grad_norms"`` (raw per-layer gradient norms) or ``"update_ratios"``
    (‖Δθ_l‖/‖θ_l‖). Rows are layers in the order of ``history.matrix`` (first layer on top), columns
    steps. Non-positive or non-finite entries (e.g. the ratio of a zero-initialised bias at step 0)
    are left blank. Returns ``(fig, ax)``.
    """
    from matplotlib.colors import LogNorm

    history = _check_history(history)
    if kind not in _KIND_LABEL:
        raise ValueError(f"kind: expected 'grad_norms' or 'update_ratios', got {kind!r}")
    labels, values = history.matrix(kind)
    if values.shape[1] == 0:
        raise ValueError("history: no steps were recorded, nothing to draw")
    fig, ax = _figure(ax)
    shown = np.ma.masked_invalid(_positive(np.asarray(values, dtype=np.float64)))
    if shown.count() == 0:
        raise ValueError(f"history: no positive finite {kind} to draw on a log colour scale")
    n_layers, n_steps = values.shape
    image = ax.imshow(
        shown,
        aspect="auto",
        interpolation="nearest",
        norm=LogNorm(vmin=shown.min(), vmax=shown.max()),
        cmap="viridis",
        extent=(-0.5, n_steps - 0.5, n_layers - 0.5, -0.5),
    )
    fig.colorbar(image, ax=ax, label=_KIND_LABEL[kind])
    every = max(1, int(np.ceil(n_layers / 20)))  # at most about 20 labelled rows
    ticks = np.arange(0, n_layers, every)
    ax.set_yticks(ticks)
    ax.set_yticklabels([labels[i] for i in ticks], fontsize="small")
    ax.set_xlabel("step")
    ax.set_ylabel("layer (parameter)")
    ax.set_title(_KIND_LABEL[kind].split(" $")[0] + " per layer and step")
    return fig, ax


def _curve(history: Any, key: str) -> np.ndarray:
    if key in _CURVE_LABEL:
        return np.asarray(getattr(history, key), dtype=np.float64)
    if key in history.grad_norms:
        values = np.asarray(history.grad_norms[key], dtype=np.float64)
        return values if values.ndim == 1 else np.sqrt(np.sum(values**2, axis=1))  # all depths together
    options = ", ".join([*map(repr, _CURVE_LABEL), *map(repr, history.grad_norms)])
    raise ValueError(f"keys: unknown key {key!r}; expected one of {options}")


def history_curves(history: Any, keys: str | Sequence[str] = ("loss", "grad_norm"), ax: Any = None):
    """Curves against the step, log y axis: ``keys`` of one History, or of several (dict name -> History).

    ``keys``: any of ``"loss"``, ``"grad_norm"`` (global ‖g‖ of the raw gradients), ``"update_norm"``
    (‖Δθ‖ of what was applied), or a label of ``history.grad_norms`` (that layer's gradient norm;
    a stacked leaf's norm over all depths). A run that stopped on a non-finite value is marked
    with a cross at its last finite point. Each run has one colour, each key one line style.
    Values ≤ 0 are not drawn (log scale). Returns ``(fig, ax)``.
    """
    runs = dict(history) if isinstance(history, Mapping) else {None: history}
    if not runs:
        raise ValueError("history: expected a History or a non-empty dict name -> History")
    for name, run in runs.items():
        _check_history(run, "history" if name is None else f"history[{name!r}]")
    keys = (keys,) if isinstance(keys, str) else tuple(keys)
    if not keys:
        raise ValueError("keys: expected at least one key, e.g. 'loss'")
    fig, ax = _figure(ax)
    styles = ["-", "--", ":", "-."]
    for i, (name, run) in enumerate(runs.items()):
        color = f"C{i}"
        for j, key in enumerate(keys):
            y = _curve(run, key)
            label = " ".join(x for x in (name, key if len(keys) > 1 or name is None else None) if x)
            ax.plot(np.arange(y.size), _positive(y), styles[j % len(styles)], color=color, linewidth=1.2, label=label)
            if getattr(run, "stopped_at", None) is not None:
                finite = np.flatnonzero(np.isfinite(_positive(y)))
                if finite.size:
                    ax.plot([finite[-1]], [y[finite[-1]]], "x", color=color, markersize=8)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(_CURVE_LABEL.get(keys[0], f"gradient norm of {keys[0]}") if len(keys) == 1 else "value")
    ax.legend(fontsize="small")
    return fig, ax
