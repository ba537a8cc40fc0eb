"""Exercises for notebook 05: LayerNorm by hand, the effective learning rate, BatchNorm's backward pass,
the gradient-explosion rate of deep BatchNorm networks, and the weight decay that sets an equilibrium angular step."""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ._core import Exercise, FunctionExercise, Sheet, as_array, diagnose, expect_function

__all__ = ["q1", "q2", "q3", "q4", "q5", "sheet"]



# --------------------------------------------------------------------------- q1: LayerNorm by hand


def _layer_norm(h: Any, eps: float = 1e-5) -> np.ndarray:
    """Each example (all axes but the last) standardised over its features: (h − mean) / sqrt(var + ε)."""
    h = np.asarray(h, dtype=np.float64)
    mean = h.mean(axis=-1, keepdims=True)
    var = ((h - mean) ** 2).mean(axis=-1, keepdims=True)
    return (h - mean) / np.sqrt(var + eps)


def _q1_inputs() -> list[tuple[np.ndarray, float]]:
    rng = np.random.default_rng(5)
    return [
        (rng.normal(3.0, 2.0, size=(6, 8)), 1e-5),
        (rng.normal(-1.0, 0.5, size=(2, 3, 5)), 1e-5),   # conv-like: still the last axis only
        (rng.normal(0.2, 1e-3, size=(4, 6)), 1e-5),      # tiny variance: where ε sits matters
    ]


def _check_q1(fn: Callable) -> str | None:
    expect_function(fn, "my_layer_norm")
    for h, eps in _q1_inputs():
        got = as_array(fn(h.copy(), eps))
        want = _layer_norm(h, eps)
        if got.shape != want.shape:
            return (f"For h of shape {h.shape} your output has shape {got.shape}; a normalisation keeps the shape "
                    "of h (use keepdims=True when you take the mean and the variance).")
        mean0 = h.mean(axis=0, keepdims=True)
        mean_all = h.mean()
        mistakes = [
            ((h - mean0) / np.sqrt(h.var(axis=0, keepdims=True) + eps),
             "You normalised over axis 0, the batch: that is BatchNorm. LayerNorm standardises each example over its "
             "own features, the last axis (axis=-1)."),
            ((h - mean_all) / np.sqrt(h.var() + eps),
             "You used one mean and variance for the whole array; LayerNorm computes them per example, over the last "
             "axis only (axis=-1, keepdims=True)."),
            (h / np.sqrt((h**2).mean(axis=-1, keepdims=True) + eps),
             "You did not subtract the mean: that is RMSNorm. LayerNorm centres each example first."),
            ((h - h.mean(axis=-1, keepdims=True)) / np.sqrt(h.var(axis=-1, ddof=1, keepdims=True) + eps),
             "You used the sample variance (ddof=1, dividing by n−1); LayerNorm uses the population variance "
             "(divide by n), so that the output has mean square exactly n/n = 1 when ε = 0."),
            ((h - h.mean(axis=-1, keepdims=True)) / (h.std(axis=-1, keepdims=True) + eps),
             "ε goes inside the square root: (h − μ)/sqrt(σ² + ε), not (h − μ)/(σ + ε). The difference shows when the "
             "variance is small (try h with standard deviation 1e-3)."),
            (h - h.mean(axis=-1, keepdims=True),
             "You centred each example but did not divide by its standard deviation."),
        ]
        problem = diagnose(got, want, mistakes, name="Your layer norm", rtol=1e-5)
        if problem is not None:
            return problem
    return None


q1 = Exercise(
    name="q1",
    template='def my_layer_norm(h, eps):\n    return None  # your code here',
    prompt=(
        "Write `my_layer_norm(h, eps)` with NumPy or jax.numpy: LayerNorm without scale and shift, for h of shape "
        "(..., n) (features on the last axis). Compare with gc.layers.layer_normalize."
    ),
    checker=_check_q1,
    hints=[
        "Per example: subtract the mean over the last axis, divide by the square root of (variance over the last "
        "axis + eps). Keep the dimensions so that broadcasting works.",
        "mu = h.mean(-1, keepdims=True); var = ((h - mu)**2).mean(-1, keepdims=True); return (h - mu) / sqrt(var + "
        "eps)",
    ],
    reference=_layer_norm,
    explanation=(
        "LayerNorm uses statistics of one example, so it behaves the same at batch size 1, in training and at test "
        "time, and needs no running averages — one reason transformers use it (Ba et al. 2016)."
    ),
)


# --------------------------------------------------------------------------- q2: effective learning rate


def _lr_to_match(lr: float, c: float) -> float:
    """After W → cW the gradient is 1/c as large and the same angle needs a c times longer step: η · c²."""
    return lr * c**2


_Q2_POINTS = [(0.1, 2.0), (0.01, 10.0), (1.0, 0.5)]


def _check_q2(fn: Callable) -> str | None:
    expect_function(fn, "lr_to_match")
    got = np.array([as_array(fn(lr, c)) for lr, c in _Q2_POINTS])
    lr = np.array([p[0] for p in _Q2_POINTS])
    c = np.array([p[1] for p in _Q2_POINTS])
    mistakes = [
        (lr / c**2, "Inverted: a longer W gets smaller gradients *and* turns less for a given step, so it needs a "
                    "larger learning rate, η c²."),
        (lr * c, "Only one factor of c: the gradient shrinks by 1/c (so the step ‖ηg‖ shrinks by 1/c) *and* the same "
                 "step is a c times smaller angle on a c times longer W."),
        (lr / c, "The gradient shrinks by 1/c, so the learning rate must grow, not shrink — and by c², because the "
                 "step is also measured against a c times longer W."),
        (lr, "The loss is invariant to the scale of W, but plain SGD is not: the gradient shrinks by 1/c and the "
             "angle of a step shrinks by 1/c²."),
    ]
    return diagnose(got, lr * c**2, mistakes, name="Your learning rate", rtol=1e-6)


q2 = Exercise(
    name="q2",
    template='def lr_to_match(lr, c):\n    return None  # your code here',
    prompt=(
        "A weight matrix W feeds a LayerNorm, so the loss satisfies L(cW) = L(W). Plain SGD with learning rate lr "
        "turns W by some angle per step. Write `lr_to_match(lr, c)`: the learning rate that turns cW by the same "
        "angle (for the same data)."
    ),
    checker=_check_q2,
    hints=[
        "Two facts from the notebook: ∇L(cW) = ∇L(W)/c, and a step ΔW turns W by about ‖ΔW‖/‖W‖ radians.",
        "Angle at cW with learning rate η': η' ‖∇L(W)‖/c divided by c‖W‖. Set it equal to η ‖∇L(W)‖/‖W‖.",
    ],
    reference=_lr_to_match,
    explanation=(
        "η_eff = η/‖W‖²: the effective learning rate of a scale-invariant weight falls as its norm grows, and its "
        "norm grows under SGD because the gradient is orthogonal to W (van Laarhoven 2017; Hoffer et al. 2018). "
        "Weight decay shrinks ‖W‖ and so raises η_eff."
    ),
)


# --------------------------------------------------------------------------- q3: BatchNorm backward by hand


def _bn_backward(h: Any, g: Any) -> np.ndarray:
    """∂L/∂h for y = (h − μ_B)/σ_B (ε = 0), per feature: (g − mean_B(g) − ŷ · mean_B(g ⊙ ŷ)) / σ_B."""
    h, g = np.asarray(h, dtype=np.float64), np.asarray(g, dtype=np.float64)
    sigma = h.std(axis=0, keepdims=True)
    y = (h - h.mean(axis=0, keepdims=True)) / sigma
    return (g - g.mean(axis=0, keepdims=True) - y * (g * y).mean(axis=0, keepdims=True)) / sigma


def _q3_inputs() -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(7)
    return [
        (rng.normal(1.0, 2.0, size=(8, 3)), rng.normal(size=(8, 3))),
        (rng.normal(-2.0, 0.5, size=(5, 4)), rng.normal(1.0, 1.0, size=(5, 4))),
    ]


def _check_q3(fn: Callable) -> str | None:
    expect_function(fn, "bn_backward")
    for h, g in _q3_inputs():
        got = as_array(fn(h.copy(), g.copy()))
        sigma = h.std(axis=0, keepdims=True)
        y = (h - h.mean(axis=0, keepdims=True)) / sigma
        gm = g.mean(axis=0, keepdims=True)
        gy = (g * y).mean(axis=0, keepdims=True)
        mistakes = [
            (g / sigma, "You treated the batch mean and variance as constants. They are functions of every example "
                        "in the batch, and their derivatives add two terms: −mean(g) and −ŷ·mean(g ⊙ ŷ)."),
            ((g - gm) / sigma, "The mean term is right; the variance term is missing: −ŷ · mean_B(g ⊙ ŷ), all over σ."),
            ((g - y * gy) / sigma, "The variance term is right; the mean term is missing: subtract mean_B(g)."),
            ((g - gm - y * gy) * sigma, "Divide by σ_B, do not multiply: y = (h − μ)/σ, so ∂y/∂h carries 1/σ."),
            (g - gm - y * gy, "Right direction, missing the overall factor 1/σ_B (per feature)."),
            ((g - g.mean(axis=1, keepdims=True) - y * (g * y).mean(axis=1, keepdims=True)) / sigma,
             "The means in the backward pass are over the batch (axis 0), like the statistics in the forward pass."),
        ]
        problem = diagnose(got, _bn_backward(h, g), mistakes, name="Your ∂L/∂h", rtol=1e-5)
        if problem is not None:
            return problem
    return None


q3 = Exercise(
    name="q3",
    template='def bn_backward(h, g):\n    return None  # your code here',
    prompt=(
        "Write `bn_backward(h, g)`: the gradient ∂L/∂h of a loss through y = batch_normalize(h) with ε = 0 and no "
        "scale/shift, given h of shape (B, n) and g = ∂L/∂y of the same shape. Check it against "
        "jax.vjp(lambda h: gc.layers.batch_normalize(h, eps=0.0), h)."
    ),
    checker=_check_q3,
    hints=[
        "Work per feature (one column). y_i = (h_i − μ)/σ with μ = mean(h), σ² = mean((h − μ)²). Then "
        "∂μ/∂h_j = 1/B and ∂σ/∂h_j = y_j/B.",
        "∂y_i/∂h_j = (δ_ij − 1/B − y_i y_j / B)/σ, so ∂L/∂h_j = (g_j − mean(g) − y_j · mean(g ⊙ y)) / σ.",
    ],
    reference=_bn_backward,
    explanation=(
        "The backward pass removes the components of g along 1 and along ŷ (a projection) and divides by σ_B. "
        "Both pieces matter for the explosion: the projection takes away a little, the 1/σ_B gives back more when "
        "σ_B is small — and after a ReLU, σ_B is the *centred* spread, smaller than the root mean square."
    ),
)


# --------------------------------------------------------------------------- q4: the explosion-rate estimate


def _moments(phi: Callable) -> tuple[float, float, float]:
    """(E[φ'²], E[φ²], Var[φ]) for z ~ N(0, 1), by 100-point Gauss–Hermite quadrature (an even number of
    nodes, so that no node sits on ReLU's kink at 0)."""
    import jax
    import jax.numpy as jnp

    z, w = np.polynomial.hermite_e.hermegauss(100)
    w = w / w.sum()
    f = np.asarray(jax.vmap(phi)(jnp.asarray(z)), dtype=np.float64)
    d = np.asarray(jax.vmap(jax.grad(phi))(jnp.asarray(z)), dtype=np.float64)
    return float(np.sum(w * d**2)), float(np.sum(w * f**2)), float(np.sum(w * f**2) - np.sum(w * f) ** 2)


def _bn_rate(phi: Callable) -> float:
    """λ ≈ E[φ'(z)²] / Var[φ(z)], z ~ N(0, 1)."""
    d2, _, var = _moments(phi)
    return d2 / var


def _q4_cases() -> list[tuple[str, Callable]]:
    import jax
    import jax.numpy as jnp

    return [("tanh", jnp.tanh), ("relu", jax.nn.relu), ("gelu", lambda z: jax.nn.gelu(z, approximate=False)),
            ("sin", jnp.sin)]


def _check_q4(fn: Callable) -> str | None:
    expect_function(fn, "bn_rate")
    for name, phi in _q4_cases():
        value = fn(phi)
        got = as_array(value)
        if got.shape != ():
            return f"bn_rate should return one number, got an array of shape {got.shape}."
        d2, f2, var = _moments(phi)
        want = d2 / var
        mistakes = [
            (d2 / f2, "You divided by the mean square E[φ²]; BatchNorm divides by the *centred* spread, Var[φ] = "
                      "E[φ²] − E[φ]². That difference is the whole effect (for ReLU, E[φ²] = 1/2 but Var[φ] = 1/2 − "
                      "1/(2π))."),
            (d2, "Only the numerator: the backward gain E[φ'²] must be compared with the forward variance Var[φ] that "
                 "the next BatchNorm divides by."),
            (var / d2, "Inverted: the backward signal gains E[φ'²] through φ and 1/Var[φ] through the next BatchNorm."),
            (np.sqrt(want), "That is the rate for the norm; the question asks for the squared norm's rate per layer."),
        ]
        # 2% tolerance: a Monte Carlo estimate with 10^5 - 10^6 samples is fine
        problem = diagnose(got, want, mistakes, name=f"Your rate for {name}", rtol=2e-2)
        if problem is not None:
            return problem
    return None


q4 = Exercise(
    name="q4",
    template='def bn_rate(phi):\n    return None  # your code here',
    prompt=(
        "Write `bn_rate(phi)`: the notebook's estimate λ ≈ E[φ'(z)²] / Var[φ(z)], z ~ N(0, 1), of the per-layer "
        "growth of ‖∂L/∂h_l‖² in a deep network of layers φ(BN(hW)), for any activation function phi (a JAX "
        "function of a scalar). Monte Carlo (10^6 samples) or quadrature are both fine; 2% accuracy is enough. "
        "Then evaluate it for jnp.sin and jnp.tanh."
    ),
    checker=_check_q4,
    hints=[
        "φ'(z) for a scalar function: jax.grad(phi); for many z at once: jax.vmap(jax.grad(phi))(z).",
        "z = jax.random.normal(key, (10**6,)); d = jax.vmap(jax.grad(phi))(z); f = phi(z); "
        "return float(jnp.mean(d**2) / jnp.var(f))",
    ],
    reference=_bn_rate,
    explanation=(
        "The Gaussian Poincaré inequality says Var[φ(z)] ≤ E[φ'(z)²] for every differentiable φ, with equality only "
        "for linear φ: so this estimate is ≥ 1 for *every* activation — no choice of nonlinearity removes the "
        "explosion, as Yang et al. (2019) found; it only shrinks towards 1 as φ becomes more linear."
    ),
)



# --------------------------------------------------------------------------- q5: weight decay for a target angular step


def _weight_decay_for_angle(lr: float, angle: float) -> float:
    """Equilibrium of SGD + L2 decay wd on a scale-invariant W: cos θ* = 1 − η·wd  ⇔  wd = (1 − cos θ)/η."""
    return (1.0 - math.cos(angle)) / lr


q5 = FunctionExercise(
    name="q5",
    prompt=(
        "Design choice: a weight matrix feeds a LayerNorm and is trained with SGD at learning rate lr and L2 weight "
        "decay (optax.add_decayed_weights then optax.sgd). You want it to turn by `angle` radians per step once its "
        "norm has settled. Write `weight_decay_for_angle(lr, angle)`: the weight decay wd that gives that equilibrium "
        "angle (exactly, not only for small angles). Then check it with gc.scale_invariance.equilibrium_angle."
    ),
    cases=[(1.0, 0.1), (0.1, 0.5), (0.01, 0.3), (0.5, 1.0)],
    mistakes=[
        (lambda lr, a: a**2 / (2 * lr), "That is the small-angle form θ ≈ √(2η·wd); it is off for large angles (try "
                                        "angle = 1). Use the exact balance cos θ* = 1 − η·wd."),
        (lambda lr, a: a / lr, "The angle grows as the square root of η·wd (θ ≈ √(2η·wd)), so wd grows as the angle "
                               "squared: solve cos θ = 1 − η·wd for wd."),
        (lambda lr, a: (1 - math.cos(a)) * lr, "The balance involves the product η·wd: wd = (1 − cos θ)/η, so a larger "
                                               "learning rate needs *less* decay for the same angle."),
        (lambda lr, a: a**2 / lr, "A factor 2: θ ≈ √(2η·wd), so wd ≈ θ²/(2η); exactly, wd = (1 − cos θ)/η."),
    ],
    signature="weight_decay_for_angle(lr, angle)",
    template="def weight_decay_for_angle(lr, angle):\n    ...  # return the weight decay",
    reference=_weight_decay_for_angle,
    hints=[
        "At equilibrium ‖W_{t+1}‖ = ‖W_t‖, and W_{t+1} = (1 − η·wd)W_t − ηg with g ⟂ W_t: draw the right triangle with "
        "legs (1 − η·wd)‖W‖ and η‖g‖ and hypotenuse ‖W‖.",
        "cos θ* = (1 − η·wd)‖W‖ / ‖W‖ = 1 − η·wd, so wd = (1 − cos θ)/η.",
    ],
    explanation=(
        "The equilibrium angular step depends on η·wd only, not on the loss or the gradient size: for normalised "
        "weights, weight decay and learning rate act through their product (van Laarhoven 2017; Zhang et al. 2019)."
    ),
)

sheet = Sheet("Notebook 05: normalisation", q1, q2, q3, q4, q5)
