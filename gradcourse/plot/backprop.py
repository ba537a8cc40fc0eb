"""Figures of notebook 01 (backprop by hand): the finite-difference V and the cost of a gradient.

Layer: presentation. Draws given arrays (errors of central differences, FLOP ratios from XLA's
``cost_analysis``); computes nothing a notebook asserts.

- ``finite_difference_plot``: measured relative error of central differences against the step ε,
  one series per float type, with the truncation line ε²|f'''|/6 and each type's rounding line u|f|/ε.
- ``cost_plot``: measured cost ratios as markers and their predictions as lines, one colour per series.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ._checks import numeric_array

__all__ = ["cost_plot", "finite_difference_plot"]


def _series(series: Any, name: str, n: int) -> dict[str, np.ndarray]:
    if not isinstance(series, Mapping) or not series:
        raise TypeError(f"{name}: expected a non-empty dict label -> array")
    out = {k: numeric_array(v, f"{name}[{k!r}]") for k, v in series.items()}
    for k, v in out.items():
        if v.shape != (n,):
            raise ValueError(f"{name}[{k!r}]: expected shape ({n},) like the x values, got {v.shape}")
    return out


def _axes(ax: Any, size: tuple[float, float]):
    if ax is None:
        import matplotlib.pyplot as plt

        return plt.subplots(figsize=size, layout="constrained")
    return ax.figure, ax


def finite_difference_plot(eps: Any, errors: Mapping[str, Any], rounding: Mapping[str, Any], truncation: Any, *,
                           ax: Any = None):
    """Relative error of the central difference against ε (log–log): markers measured, lines predicted.

    ``eps``: shape (n,); ``errors``: float type name -> measured relative error, shape (n,) (zeros are
    left out); ``rounding``: the same names -> u|f|/ε, shape (n,), dotted in the series' colour;
    ``truncation``: ε²|f'''|/6, shape (n,), a black line. Returns ``(fig, ax)``.
    """
    eps = numeric_array(eps, "eps")
    errors = _series(errors, "errors", eps.size)
    rounding = _series(rounding, "rounding", eps.size)
    truncation = numeric_array(truncation, "truncation")
    if set(rounding) != set(errors):
        raise ValueError(f"rounding: expected the same float types as errors {sorted(errors)}, got {sorted(rounding)}")
    fig, ax = _axes(ax, (6, 4))
    for i, (name, err) in enumerate(errors.items()):
        color = f"C{i}"
        shown = np.where(err > 0, err, np.nan)
        ax.loglog(eps, shown, "o", color=color, markersize=4, label=f"measured (median), {name}")
        ax.loglog(eps, rounding[name], ":", color=color, label=f"rounding $u|f|/\\varepsilon$, {name}")
    ax.loglog(eps, truncation, "k-", label=r"truncation $\varepsilon^2 |f'''|/6$ (exact)")
    ax.set(xlabel=r"step $\varepsilon$", ylabel="relative error of the central difference", ylim=(1e-14, 10))
    ax.legend(fontsize="small")
    return fig, ax


def cost_plot(x: Any, measured: Mapping[str, Any], theory: Mapping[str, Any], *, xlabel: str,
              ylabel: str = "FLOPs / FLOPs of one evaluation", theory_labels: Mapping[str, str] | None = None,
              logx: bool = True, logy: bool = True, ax: Any = None):
    """Measured cost ratios (markers) and their predictions (lines of the same colour), one series per key.

    ``x``: shape (n,); ``measured`` and ``theory``: label -> shape (n,), the same labels;
    ``theory_labels``: legend text per label for the lines (default ``"theory, <label>"``).
    Returns ``(fig, ax)``.
    """
    x = numeric_array(x, "x")
    measured = _series(measured, "measured", x.size)
    theory = _series(theory, "theory", x.size)
    if set(theory) != set(measured):
        raise ValueError(f"theory: expected the same labels as measured {sorted(measured)}, got {sorted(theory)}")
    fig, ax = _axes(ax, (6, 4))
    for i, (name, values) in enumerate(measured.items()):
        color = f"C{i}"
        ax.plot(x, values, "o", color=color, label=f"measured, {name}")
        text = (theory_labels or {}).get(name, f"theory, {name}")
        ax.plot(x, theory[name], "-", color=color, alpha=0.7, label=text)
    ax.set_xscale("log" if logx else "linear")
    ax.set_yscale("log" if logy else "linear")
    ax.set(xlabel=xlabel, ylabel=ylabel)
    ax.legend(fontsize="small")
    return fig, ax
