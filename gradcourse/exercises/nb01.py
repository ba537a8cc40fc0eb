"""Exercises for notebook 01: backprop by hand, JVPs and VJPs, finite differences."""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ._core import Exercise, Sheet, ValueExercise, diagnose

__all__ = ["q1", "q2", "q3", "q4", "sheet"]


# --------------------------------------------------------------------------- q1: one layer by hand


def _dense_tanh_backward(W, b, h_prev, g_out):
    """Reference: h = tanh(h_prev @ W.T + b), W (n_out, n_in) as in PyTorch's nn.Linear."""
    import jax.numpy as jnp

    z = h_prev @ W.T + b
    delta = g_out * (1 - jnp.tanh(z) ** 2)  # ∂L/∂z
    return delta @ W, delta.T @ h_prev, delta.sum(axis=0)


def _q1_data():
    rng = np.random.default_rng(1)
    B, n_in, n_out = 5, 4, 3
    return (
        rng.normal(size=(n_out, n_in)),
        rng.normal(size=n_out),
        rng.normal(size=(B, n_in)),
        rng.normal(size=(B, n_out)),
    )


def _check_q1(fn: Callable) -> str | None:
    if not callable(fn):
        return f"Pass your function itself (dense_tanh_backward), not {type(fn).__name__}."
    W, b, h_prev, g_out = _q1_data()
    out = fn(W, b, h_prev, g_out)
    if not isinstance(out, (tuple, list)) or len(out) != 3:
        return "Return three arrays: (∂L/∂h_prev, ∂L/∂W, ∂L/∂b)."
    z = h_prev @ W.T + b
    h = np.tanh(z)
    B = h_prev.shape[0]
    delta = g_out * (1 - h**2)
    wrong_deltas = [
        (g_out, "You forgot the derivative of tanh: first form δ = ∂L/∂z = g_out * (1 - tanh(z)²), then use δ."),
        (g_out * (1 - h), "tanh'(z) = 1 - tanh(z)², with a square: you used 1 - tanh(z)."),
        (g_out * (1 - z**2), "Evaluate the derivative at the output: tanh'(z) = 1 - tanh(z)², not 1 - z²."),
        (g_out * h * (1 - h), "h(1 - h) is the derivative of the sigmoid; for tanh it is 1 - h²."),
    ]
    shape_h = (f"∂L/∂h_prev must have the shape of h_prev {h_prev.shape}, yours has {g_out.shape} (the shape of h): "
               "take one more step back, through the weights, with δ @ W.")
    transposed = (f"∂L/∂W must have W's shape {W.shape} (n_out, n_in): yours is its transpose. In this layout "
                  "(PyTorch's nn.Linear) the gradient is δᵀ @ h_prev, not h_prevᵀ @ δ.")
    not_summed = f"∂L/∂b must have b's shape {b.shape}: the bias is shared by the whole batch, so sum δ over axis 0."
    averaged = (f"You averaged over the batch: the gradient of a summed loss sums the per-example contributions, "
                f"so do not divide by the batch size {B}.")
    # (name, the gradient as a function of δ, {wrong shape: message}, [(wrong value, message)])
    parts = [
        ("∂L/∂h_prev", lambda d: d @ W, {g_out.shape: shape_h}, []),
        ("∂L/∂W", lambda d: d.T @ h_prev, {W.T.shape: transposed}, [(delta.T @ h_prev / B, averaged)]),
        ("∂L/∂b", lambda d: d.sum(axis=0), {g_out.shape: not_summed}, [(delta.mean(axis=0), averaged)]),
    ]
    for (name, of_delta, wrong_shapes, mistakes), got in zip(parts, out, strict=False):
        if np.shape(got) in wrong_shapes and np.shape(got) != np.shape(of_delta(delta)):
            return wrong_shapes[np.shape(got)]
        mistakes = mistakes + [(of_delta(d), msg) for d, msg in wrong_deltas]
        problem = diagnose(got, of_delta(delta), mistakes, name=f"Your {name}", rtol=1e-6)
        if problem is not None:
            return problem
    return None


q1 = Exercise(
    name="q1",
    template='def dense_tanh_backward(W, b, h_prev, g_out):\n    # return (dL/dh_prev, dL/dW, dL/db)\n    raise '
             'NotImplementedError  # your code here',
    prompt=(
        "Write `dense_tanh_backward(W, b, h_prev, g_out)` for one layer in PyTorch's layout, "
        "h = tanh(h_prev @ W.T + b) with W of shape (n_out, n_in), h_prev of shape (batch, n_in), "
        "and g_out = ∂L/∂h of shape (batch, n_out). Return (∂L/∂h_prev, ∂L/∂W, ∂L/∂b)."
    ),
    checker=_check_q1,
    hints=[
        "Go through z = h_prev @ W.T + b first: δ = ∂L/∂z = g_out * tanh'(z). Everything else is a product with δ.",
        "Each gradient has the shape of the thing it differentiates: ∂L/∂W is (n_out, n_in), so it is δᵀ @ h_prev; "
        "∂L/∂h_prev is (batch, n_in), so δ @ W; ∂L/∂b sums δ over the batch.",
    ],
    reference=_dense_tanh_backward,
    explanation="Every gradient is δ = ∂L/∂z multiplied by what z was multiplied by in the forward pass; shapes tell "
                "you the order.",
)


# --------------------------------------------------------------------------- q2: counting passes


def _passes(n: int, m: int) -> tuple[int, int]:
    """Full Jacobian of f: R^n -> R^m: n JVPs (one column each) or m VJPs (one row each)."""
    return n, m


_Q2_POINTS = [(1000, 1), (1, 50), (7, 3), (20, 20)]


def _check_q2(fn: Callable) -> str | None:
    if not callable(fn):
        return f"Pass your function passes(n, m), not {type(fn).__name__}."
    got = []
    for n, m in _Q2_POINTS:
        out = fn(n, m)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            return "Return a pair (number of JVPs, number of VJPs)."
        got.append(out)
    pts = np.array(_Q2_POINTS, dtype=np.float64)
    n, m = pts[:, 0], pts[:, 1]
    mistakes = [
        (np.stack([m, n], 1), "You swapped them. A JVP pushes one *input* direction forward and returns one column "
                              "J v of the Jacobian, so you need n of them; a VJP pulls one *output* direction back and "
                              "returns one row uᵀ J, so m of them."),
        (np.ones_like(pts), "One pass is not enough in general: a JVP gives one column J v (for a scalar loss, the "
                            "directional derivative ∇L·v, a single number), a VJP one row uᵀ J."),
        (np.stack([n * m, n * m], 1), "One pass gives a whole column (JVP) or a whole row (VJP) of the Jacobian, not a "
                                      "single entry."),
        (np.stack([n, n], 1), "The VJP count depends on the number of outputs m, not inputs: each VJP gives a row of "
                              "length n at once. For a scalar loss one VJP is the whole gradient."),
        (np.stack([m, m], 1), "The JVP count depends on the number of inputs n: each JVP gives one column, and J has n "
                              "columns."),
    ]
    problem = diagnose(np.array(got, dtype=np.float64), np.stack([n, m], 1), mistakes, name="Your counts")
    if problem is None or not problem.startswith("Your counts"):
        return problem
    (n0, m0), out = next((p, o) for p, o in zip(_Q2_POINTS, got, strict=False) if tuple(o) != p)
    return (f"passes({n0}, {m0}) returned {tuple(out)}. Count the columns of the {m0} × {n0} Jacobian that one JVP "
            "gives, and the rows that one VJP gives.")


q2 = Exercise(
    name="q2",
    template='def passes(n, m):\n    # return (number of JVPs, number of VJPs)\n    return None  # your code here',
    prompt=(
        "Write `passes(n, m)` returning (number of JVPs, number of VJPs) needed to build the full Jacobian of a "
        "function f: Rⁿ → Rᵐ. For a scalar loss of n parameters (m = 1), what do you get?"
    ),
    checker=_check_q2,
    hints=[
        "What does one `jax.jvp(f, (x,), (v,))` return: a number, a column of J, or a row of J? And one VJP?",
        "J is m × n. J e_i (a JVP with the i-th input basis vector) is column i; e_jᵀ J (a VJP) is row j.",
    ],
    reference=_passes,
    explanation=(
        "passes(n, 1) = (n, 1): for a scalar loss, reverse mode gives the whole gradient in one pass, forward mode "
        "needs one pass per parameter. That is why deep learning runs backprop."
    ),
)


# --------------------------------------------------------------------------- q3: a Jacobian from VJPs


def _jacobian_by_vjps(f, x):
    """Full Jacobian (m, n) of f: R^n -> R^m from m VJPs, one per output basis vector."""
    import jax
    import jax.numpy as jnp

    y, pull = jax.vjp(f, x)
    rows = jax.vmap(lambda u: pull(u)[0])(jnp.eye(y.size, dtype=y.dtype))  # row j = e_jᵀ J
    return rows


def _q3_function():
    import jax.numpy as jnp

    A = jnp.asarray(np.random.default_rng(3).normal(size=(3, 4)), dtype=jnp.float32)

    def f(x):  # R^4 -> R^3
        return jnp.tanh(A @ x) * jnp.sum(x**2)

    return f, jnp.array([0.3, -1.0, 0.5, 2.0], dtype=jnp.float32)


def _check_q3(fn: Callable) -> str | None:
    import jax

    if not callable(fn):
        return f"Pass your function jacobian_by_vjps(f, x), not {type(fn).__name__}."
    f, x = _q3_function()
    got = fn(f, x)
    want = np.asarray(jax.jacfwd(f)(x), dtype=np.float64)
    mistakes = [
        (want.T, f"Your Jacobian is transposed: each VJP e_jᵀ J is a *row* (one per output, length n = "
                 f"{want.shape[1]}), "
                 f"so stack them as rows to get shape (m, n) = {want.shape}."),
    ]
    return diagnose(got, want, mistakes, name="Your Jacobian", rtol=1e-4)


q3 = Exercise(
    name="q3",
    template='def jacobian_by_vjps(f, x):\n    raise NotImplementedError  # your code here',
    prompt=(
        "Write `jacobian_by_vjps(f, x)` that builds the full Jacobian of f: Rⁿ → Rᵐ (x and f(x) 1-D) from VJPs only, "
        "with `jax.vjp`: shape (m, n). It must equal `jax.jacfwd(f)(x)`."
    ),
    checker=_check_q3,
    hints=[
        "`y, pull = jax.vjp(f, x)` does the forward pass once; `pull(u)` returns a tuple whose first entry is uᵀ J.",
        "Pull back each basis vector e_j of the output space (rows of jnp.eye(m)): a Python loop, or jax.vmap over the "
        "rows.",
    ],
    reference=_jacobian_by_vjps,
    explanation="This is what `jax.jacrev` does: m VJPs sharing one forward pass. `jax.jacfwd` uses n JVPs instead.",
)


# --------------------------------------------------------------------------- q4: the finite-difference step

_U32 = 2.0**-24  # float32 unit roundoff
_EPS_STAR = (3 * _U32) ** (1 / 3)


_Q4_MISTAKES = [
    (_U32 ** (1 / 3), "You dropped the factor 3: setting the derivative of ε²|f\'\'\'|/6 + u|f|/ε to zero gives "
                      "ε|f\'\'\'|/3 = u|f|/ε², so ε³ = 3u."),
    ((1.5 * _U32) ** (1 / 3), "Check the derivative of the truncation term: d/dε (ε²/6) = ε/3, not ε/6 · ... "
                              "The optimum is ε³ = 3u|f|/|f\'\'\'|."),
    ((6 * _U32) ** (1 / 3), "You used u = 2⁻²³ (the machine epsilon, the gap above 1). The question gives the unit "
                            "roundoff u = 2⁻²⁴ ≈ 6e-8, half of it."),
    (math.sqrt(_U32), "√u ≈ 2e-4 is the best step for the one-sided difference (f(x+ε) - f(x))/ε, whose truncation "
                      "error is O(ε). The central difference's error is O(ε²), which moves the balance point to ε ∝ "
                      "u^(1/3)."),
    ((3 * 2.0**-53) ** (1 / 3), "That is float64's best step (u = 2⁻⁵³). The question is about float32, u = 2⁻²⁴ ≈ "
                                "6e-8."),
]


q4 = ValueExercise(
    name="q4",
    template='best_step = None  # your answer here',
    prompt=(
        "The central difference (f(x+ε) - f(x-ε)) / 2ε has error ≈ ε²|f'''(x)|/6 + u|f(x)|/ε, with u = 2⁻²⁴ ≈ 6e-8 "
        "the unit roundoff of float32. Give the step ε (a number) that minimises it for f = exp at x = 0."
    ),
    mistakes=_Q4_MISTAKES,
    what="eps",
    rtol=0.05,  # ±5 %: the optimum is flat, but (1.5u)^(1/3) (-21 %) and (6u)^(1/3) (+26 %) must read as wrong
    hints=[
        "Set the derivative with respect to ε to zero: ε|f'''|/3 - u|f|/ε² = 0.",
        "ε* = (3u|f|/|f'''|)^(1/3); for exp at 0, f = f''' = 1.",
    ],
    reference=_EPS_STAR,
    explanation=(
        "ε* = (3u)^(1/3) ≈ 5.6e-3 in float32, where the best achievable relative error is about u^(2/3) ≈ 1e-5. In "
        "float64 the same formula gives ε* ≈ 7e-6 and errors near 1e-11, which is why gradient checkers run in float64."
    ),
)

sheet = Sheet("Notebook 01: backprop by hand", q1, q2, q3, q4)
