"""Weight decay on a scale-invariant weight: where ‖W‖ settles and the angle each SGD step turns.

Layer: theory. Closed forms and a NumPy recursion.

A weight W that feeds a normalisation (L(cW) = L(W)) has a gradient g ⟂ W with ‖g‖ = ‖g₁‖/‖W‖, where
g₁ = ∇L(W/‖W‖) is the gradient at the unit-norm direction. SGD with L2 weight decay λ (what
``optax.chain(optax.add_decayed_weights(λ), optax.sgd(η))`` applies),

    W ← (1 − ηλ) W − η g,    so by Pythagoras    ‖W'‖² = (1 − ηλ)² ‖W‖² + η² ‖g₁‖² / ‖W‖².

With G = E‖g₁‖² held fixed, x = ‖W‖² follows x' = (1 − ηλ)² x + η² G / x (``norm_trajectory``), whose
fixed point is ‖W‖⁴ = η G / (λ (2 − ηλ)) ≈ η G / (2λ) (``equilibrium_norm``; van Laarhoven 2017,
Zhang et al. 2019). There the angle turned per step, tan θ = η‖g‖ / ((1 − ηλ)‖W‖), is θ* = arccos(1 − ηλ)
≈ √(2ηλ), whatever G is (``equilibrium_angle``): the effective learning rate η/‖W‖² settles at a value
set by η·λ alone. Without decay (λ = 0) the norm grows as ‖W_t‖⁴ ≈ ‖W_0‖⁴ + 2η² G t.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .validate import positive_int, real

__all__ = ["equilibrium_angle", "equilibrium_norm", "norm_trajectory"]


def _pos(v: Any, name: str) -> float:
    return real(v, name, low=0.0, low_open=True)


def _nonneg(v: Any, name: str) -> float:
    return real(v, name, low=0.0)


def _check_lr_wd(lr: Any, weight_decay: Any) -> tuple[float, float]:
    lr, weight_decay = _pos(lr, "lr"), _nonneg(weight_decay, "weight_decay")
    if lr * weight_decay >= 1:
        raise ValueError(f"lr * weight_decay: expected < 1 (each step shrinks W by 1 - lr * weight_decay), "
                         f"got {lr * weight_decay}; lower the learning rate or the decay")
    return lr, weight_decay


def equilibrium_norm(lr: float, weight_decay: float, grad_sq: float) -> float:
    """‖W‖ at which decay and gradient growth balance: (η G / (λ (2 − ηλ)))^(1/4).

    ``grad_sq`` = G = E‖∇L(W/‖W‖)‖², the mean squared gradient at the unit-norm direction (measure it as
    ‖g‖²·‖W‖² during training). ``weight_decay`` must be > 0 (without decay there is no equilibrium).

    >>> round(equilibrium_norm(0.1, 0.05, 0.2), 4)   # (0.1 * 0.2 / (0.05 * 1.995)) ** 0.25
    0.6692
    """
    lr, weight_decay = _check_lr_wd(lr, weight_decay)
    grad_sq = _pos(grad_sq, "grad_sq")
    if weight_decay == 0:
        raise ValueError("weight_decay: expected > 0; without decay ||W|| grows for ever (see norm_trajectory)")
    return float((lr * grad_sq / (weight_decay * (2 - lr * weight_decay))) ** 0.25)


def equilibrium_angle(lr: float, weight_decay: float) -> float:
    """Angle (radians) one SGD step turns W through at the equilibrium norm: arccos(1 − ηλ) ≈ √(2ηλ).

    >>> round(equilibrium_angle(1.0, 0.005), 5)
    0.10004
    """
    lr, weight_decay = _check_lr_wd(lr, weight_decay)
    return float(np.arccos(1 - lr * weight_decay))


def norm_trajectory(w0: float, lr: float, weight_decay: float, grad_sq: float, steps: int) -> np.ndarray:
    """‖W_t‖ for t = 0 … steps from the recursion x' = (1 − ηλ)² x + η² G / x, x = ‖W‖² (G fixed). Shape (steps + 1,).

    >>> t = norm_trajectory(1.0, 0.1, 0.0, 1.0, 100)
    >>> round(float(t[-1] ** 4), 3)        # without decay: about w0^4 + 2 lr^2 G t = 3
    3.006
    """
    w0 = _pos(w0, "w0")
    lr, weight_decay = _check_lr_wd(lr, weight_decay)
    grad_sq = _nonneg(grad_sq, "grad_sq")
    steps = positive_int(steps, "steps")
    x = np.empty(steps + 1)
    x[0] = w0**2
    shrink = (1 - lr * weight_decay) ** 2
    for t in range(steps):
        x[t + 1] = shrink * x[t] + lr**2 * grad_sq / x[t]
    return np.sqrt(x)
