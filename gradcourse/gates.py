"""How gated recurrent cells pass the gradient back at initialisation (theory and statistics layer).

Linearised at h = 0 with zero biases, one step back through a GRU or an LSTM multiplies the row vector
∂L/∂h_t (GRU) or ∂L/∂c_t (LSTM) by a matrix of the form M = a I + b Qᵀ, Q an orthogonal recurrent
block:

* GRU, h_t = z h_{t-1} + (1 - z) tanh(x W_xn + (r ⊙ h_{t-1}) W_hn): a = z = ½ (the additive path),
  b = (1 - z) r tanh'(0) = ¼ (the candidate path through W_hn);
* LSTM cell state, c_t = f c_{t-1} + i tanh(g), h_t = o tanh(c_t): a = f = σ(b_f) (the cell path),
  b = σ(i) tanh'(0) σ(o) tanh'(0) = ¼ (back through h_{t-1}, W_hg and the candidate g).

M is normal with eigenvalues a + b e^{iθ}; for a Haar-random Q the phases θ are uniform (n → ∞), so
a random vector keeps E‖v M^k‖² / ‖v‖² = (1/2π) ∫ (a² + b² + 2ab cos θ)^k dθ after k steps:
``haar_power_profile``. Per step it falls like (a² + b²)^½ at first and like |a + b| for long lags.
"""
from __future__ import annotations

import numpy as np

from .validate import positive_int, real

__all__ = ["haar_power_profile"]


def haar_power_profile(a: float, b: float, T: int) -> np.ndarray:
    """√E‖v (aI + bQ)^k‖² / ‖v‖ for k = 0 ... T, Q Haar-orthogonal (n → ∞): shape (T+1,).

    (1/2π) ∫ (a² + b² + 2ab cos θ)^k dθ by the trapezoid rule on 4096 points (exact to float
    precision for a periodic integrand of this degree), in float64. ``b = 0`` gives |a|^k.

    >>> haar_power_profile(0.5, 0.25, 2).round(4)    # 1, √(a² + b²), √((a² + b²)² + 2a²b²)
    array([1.   , 0.559, 0.359])
    """
    a, b = real(a, "a"), real(b, "b")
    T = positive_int(T, "T")
    theta = np.linspace(0.0, 2.0 * np.pi, 4096, endpoint=False)
    m = a * a + b * b + 2.0 * a * b * np.cos(theta)
    k = np.arange(T + 1)
    log_m = np.log(np.maximum(m, np.finfo(np.float64).tiny))
    peak = np.max(log_m)
    # mean of m^k, factored as exp(k peak) · mean(exp(k (log m - peak))) so long lags do not underflow
    mean = np.exp(k * peak) * np.mean(np.exp(k[:, None] * (log_m[None, :] - peak)), axis=1)
    return np.sqrt(mean)
