"""Monitoring a training run: per-layer histograms of log-magnitudes, and the initial-loss check (statistics layer).

Pure functions of given arrays (JAX, so they run inside a ``gc.train.fit_many`` probe, recorded every step):

* ``layer_log_histograms(xs, edges)``: for stacked per-layer arrays ``xs`` (L, ...), the fraction of each
  layer's entries whose log10|x| falls in each bin (L, bins), and the fraction that are exactly 0 (L,).
  Stacked over steps, one layer's rows form the "colorful dimension" picture (a histogram per step, drawn as
  an image; fastai's ``ActivationStats.color_dim``). Entries below the first edge go to the first bin and
  above the last to the last, so every row sums to 1 − zero fraction.
* ``initial_loss(n_classes, logit_std)``: the cross-entropy at initialisation when the logits are
  independent N(0, s²) and independent of the label: E[logsumexp(z)] − E[z_y] ≈ log C + (1 − 1/C)·s²/2 for small s
  (second order in s; for large s it tends to s·√(2 log C), the expected maximum of C Gaussians).
"""
from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from .validate import positive_int, real

__all__ = ["layer_log_histograms", "initial_loss"]


def layer_log_histograms(xs: Any, edges: Any) -> tuple[Any, Any]:
    """(L, ...) arrays and (bins + 1,) increasing edges of log10|x| -> ((L, bins) fractions, (L,) zero fractions).

    >>> import numpy as np
    >>> h, z = layer_log_histograms(np.array([[0.0, 0.01, 0.1, 1.0]]), np.array([-3.0, -1.5, 0.5]))
    >>> np.asarray(h).tolist(), np.asarray(z).tolist()
    ([[0.25, 0.5]], [0.25])
    """
    xs = jnp.asarray(xs)
    edges = jnp.asarray(edges)
    flat = xs.reshape(xs.shape[0], -1)
    zero = flat == 0
    logs = jnp.log10(jnp.where(zero, 1.0, jnp.abs(flat)))
    idx = jnp.clip(jnp.searchsorted(edges, logs, side="right") - 1, 0, edges.shape[0] - 2)
    onehot = (idx[..., None] == jnp.arange(edges.shape[0] - 1)) & ~zero[..., None]
    n = flat.shape[1]
    return jnp.sum(onehot, axis=1) / n, jnp.mean(zero, axis=1)


def initial_loss(n_classes: int, logit_std: Any) -> np.ndarray:
    """Small-s prediction of the cross-entropy at initialisation: log C + (1 − 1/C)·s²/2 (logits i.i.d. N(0, s²)).

    To second order in s: logsumexp(z) = log C + z̄ + ½·(1/C)Σ_i(z_i − z̄)² + O(s³), whose mean is
    log C + (1 − 1/C)·s²/2 (the spread of C values around their own mean), and E[z_y] = 0. The label's own
    logit is one of the C, which is where 1/C comes from; log C + s²/2 overstates the excess by s²/(2C)
    (10 % for C = 10).

    >>> round(float(initial_loss(10, 0.0)), 4)      # log 10
    2.3026
    >>> round(float(initial_loss(10, 0.5)), 3)      # log 10 + 0.9 * 0.125; sampled: 2.414 (400 000 draws)
    2.415
    """
    C = positive_int(n_classes, "n_classes")
    s = np.asarray(logit_std, dtype=np.float64)
    if s.ndim == 0:
        real(float(s), "logit_std", low=0.0)
    elif np.any(s < 0):
        raise ValueError("logit_std: expected numbers >= 0 (a standard deviation)")
    return np.log(C) + (1.0 - 1.0 / C) * s**2 / 2
