"""Post-LN vs Pre-LN at initialisation: the numbers notebook 10 reads off ``models.transformer.gradients_at_init``.

Layer: experiments. Pure NumPy over the arrays that ``gradients_at_init`` returns (C = 2 placements,
Post-LN first; K initialisations; D depths; L = the deepest model's blocks):

* the residual stream's mean square σ_l² (mean over initialisations), and for Pre-LN the straight line
  σ_l² = v₀ + v·l fitted by least squares, with its R²;
* the top block's ‖∂L/∂W₂‖ of each depth-D model, and σ_L at that depth;
* Pre-LN's prediction ‖∂L/∂W₂‖ = c/σ_L with c fitted once (geometric mean of top·σ_L over depths),
  and the depth-D_max / depth-D_min ratio of the top-block gradient per initialisation, measured and
  predicted, so a notebook can state the agreement and its spread across initialisations.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

__all__ = ["PlacementSummary", "placement_summary"]


class PlacementSummary(NamedTuple):
    """What ``placement_summary`` returns (index 0: Post-LN, 1: Pre-LN)."""

    depths: np.ndarray  # (D,) model depths
    stream_ms: np.ndarray  # (2, L+1) mean square of h_0 ... h_L, mean over initialisations
    slope: float  # Pre-LN: v in σ_l² = v₀ + v·l
    intercept: float  # Pre-LN: v₀
    r2: float  # R² of that line
    top: np.ndarray  # (2, D) top block's ‖∂L/∂W₂‖ of each depth-D model, mean over initialisations
    sigma_L: np.ndarray  # (2, D) σ_L (root mean square of the last stream) at each depth
    c_pre: float  # Pre-LN fit: top ≈ c_pre / σ_L
    blocks: np.ndarray  # (2, L) ‖∂L/∂θ_l‖ of every block of the deepest model, mean over initialisations
    top_ratio: np.ndarray  # (2, K) top-block gradient, deepest / shallowest model, per initialisation
    predicted_ratio: np.ndarray  # (K,) Pre-LN's 1/σ_L prediction for that ratio, per initialisation


def placement_summary(prof: dict[str, Any], depths: Any) -> PlacementSummary:
    """Summarise ``gradients_at_init(keys, [post, pre], batch, depths)`` (arrays (2, K, D, L) and (2, K, L+1)).

    >>> L, D = 4, (2, 4)
    >>> ms = 0.5 + 1.5 * np.arange(L + 1)                       # an exactly linear Pre-LN stream
    >>> rms = np.stack([np.ones(L + 1), np.sqrt(ms)])[:, None]  # (2, K=1, L+1)
    >>> w2 = np.ones((2, 1, 2, L))
    >>> w2[1, 0, 0, 1], w2[1, 0, 1, 3] = 2 / rms[1, 0, 2], 2 / rms[1, 0, 4]    # Pre-LN top = 2 / sigma_L
    >>> s = placement_summary({"W2": w2, "blocks": w2, "stream_rms": rms}, D)
    >>> round(s.slope, 6), round(s.intercept, 6), round(s.r2, 6), round(s.c_pre, 6)
    (1.5, 0.5, 1.0, 2.0)
    """
    w2, blocks, rms = (np.asarray(prof[k], dtype=np.float64) for k in ("W2", "blocks", "stream_rms"))
    depths = np.asarray(depths, dtype=int)
    if w2.ndim != 4 or w2.shape[0] != 2 or w2.shape[2] != depths.size:
        raise ValueError(f"prof['W2']: expected shape (2, K, {depths.size}, L) (Post-LN, Pre-LN), got {w2.shape}")
    if rms.shape != (2, w2.shape[1], w2.shape[3] + 1):
        raise ValueError(f"prof['stream_rms']: expected shape {(2, w2.shape[1], w2.shape[3] + 1)}, got {rms.shape}")
    per_init_top = w2[:, :, np.arange(depths.size), depths - 1]        # (2, K, D)
    ms = np.mean(rms**2, axis=1)                                       # (2, L+1)
    l = np.arange(ms.shape[1])
    slope, intercept = np.polyfit(l, ms[1], 1)
    resid = ms[1] - intercept - slope * l
    r2 = 1.0 - np.sum(resid**2) / np.sum((ms[1] - ms[1].mean()) ** 2)
    top = per_init_top.mean(axis=1)
    sigma_L = np.sqrt(ms[:, depths])
    c_pre = float(np.exp(np.mean(np.log(top[1] * sigma_L[1]))))
    sigma_per_init = rms[1][:, depths]                                 # (K, D)
    return PlacementSummary(
        depths=depths, stream_ms=ms, slope=float(slope), intercept=float(intercept), r2=float(r2), top=top,
        sigma_L=sigma_L, c_pre=c_pre, blocks=blocks[:, :, -1].mean(axis=1),
        top_ratio=per_init_top[:, :, -1] / per_init_top[:, :, 0],
        predicted_ratio=sigma_per_init[:, 0] / sigma_per_init[:, -1],
    )
