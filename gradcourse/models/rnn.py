"""Recurrent networks unrolled over time with ``lax.scan``: Elman RNN, LSTM and GRU.

Row-vector convention, inputs batch-first ``xs: (batch, T, n_in)``:

* Elman (vanilla) RNN: h_t = φ(x_t W_x + h_{t-1} W_h + b), so ∂h_t/∂h_{t-1} = diag(φ'(·)) W_hᵀ and,
  for a linear RNN, ∂h_T/∂h_0 = (W_hᵀ)^T whose norm grows or shrinks like ρ(W_h)^T.
* LSTM (Hochreiter & Schmidhuber 1997; forget gate of Gers et al. 2000):
  [i, f, g, o] = x_t W_x + h_{t-1} W_h + b; c_t = σ(f) c_{t-1} + σ(i) tanh(g); h_t = σ(o) tanh(c_t).
* GRU (Cho et al. 2014): z, r = σ(x_t W_x + h_{t-1} W_h + b) (first two blocks);
  ñ = tanh(x_t W_xn + (r ⊙ h_{t-1}) W_hn + b_n); h_t = z ⊙ h_{t-1} + (1 - z) ⊙ ñ.

Cell parameters are a dict {"W_x": (n_in, k·n), "W_h": (n, k·n), "b": (k·n,)} with k = 1, 4, 3 gate
blocks; a full model adds a linear readout of the hidden state: {"cell": ..., "readout": {"W", "b"}}.
Both are plain pytrees, ready for ``jax.grad``, optax and ``gc.train.fit``.

Hidden states are returned **time-major**, ``hs: (T+1, batch, n)`` with ``hs[t] = h_t`` (h_0 first),
the layout of ``gc.forward``: time plays the role of depth. ∂L/∂h_t for every t comes from one
reverse pass with the zero-perturbation trick of ``gradcourse.chains``.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ..activations import Activation, activation_name, get_activation
from ..model import check_input
from ..nets import _non_negative, _positive_int

__all__ = [
    "Cell", "elman", "lstm", "gru", "get_cell", "CELLS",
    "init_cell", "init_rnn", "unroll", "apply_rnn", "hidden_state_grads", "state_jacobian_norms",
    "spectral_radius", "power_norm_bounds", "rnn_mse_loss", "rnn_xent_loss",
]


class Cell(NamedTuple):
    """One recurrent cell: ``step(p, state, x) -> state``, how to read / replace h in the state."""

    name: str
    n_blocks: int
    step: Callable[[dict, Any, jax.Array], Any]
    zeros: Callable[[jax.Array], Any]  # h0 (batch, n) -> initial state
    hidden: Callable[[Any], jax.Array]
    replace_hidden: Callable[[Any, jax.Array], Any]


def _identity_state(h: jax.Array) -> jax.Array:
    return h


def _replace(state: Any, h: jax.Array) -> jax.Array:
    return h


def elman(activation: str | Activation = "tanh") -> Cell:
    """Elman cell h_t = φ(x_t W_x + h_{t-1} W_h + b); ``activation="linear"`` gives a linear RNN."""
    phi = get_activation(activation)

    def step(p: dict, h: jax.Array, x: jax.Array) -> jax.Array:
        return phi(x @ p["W_x"] + h @ p["W_h"] + p["b"])

    name = "rnn" if activation == "tanh" else f"rnn_{activation_name(activation)}"
    return Cell(name, 1, step, _identity_state, _identity_state, _replace)


def lstm() -> Cell:
    """LSTM cell with state (h, c); gate blocks ordered [input, forget, candidate, output]."""

    def step(p: dict, state: tuple, x: jax.Array) -> tuple:
        h, c = state
        i, f, g, o = jnp.split(x @ p["W_x"] + h @ p["W_h"] + p["b"], 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        return jax.nn.sigmoid(o) * jnp.tanh(c), c

    return Cell("lstm", 4, step, lambda h0: (h0, jnp.zeros_like(h0)), lambda s: s[0], lambda s, h: (h, s[1]))


def gru() -> Cell:
    """GRU cell (Cho et al. 2014); gate blocks ordered [update z, reset r, candidate]."""

    def step(p: dict, h: jax.Array, x: jax.Array) -> jax.Array:
        n = h.shape[-1]
        zx = x @ p["W_x"] + p["b"]
        zr = jax.nn.sigmoid(zx[..., : 2 * n] + h @ p["W_h"][:, : 2 * n])
        z, r = zr[..., :n], zr[..., n:]
        cand = jnp.tanh(zx[..., 2 * n :] + (r * h) @ p["W_h"][:, 2 * n :])
        return z * h + (1.0 - z) * cand

    return Cell("gru", 3, step, _identity_state, _identity_state, _replace)


CELLS: dict[str, Callable[[], Cell]] = {
    "rnn": elman,
    "linear": lambda: elman("linear"),
    "lstm": lstm,
    "gru": gru,
}


@functools.lru_cache(maxsize=None)
def _named_cell(name: str) -> Cell:
    """One Cell per name, so jitted functions see the same static argument and compile once."""
    return CELLS[name]()


def get_cell(cell: str | Cell) -> Cell:
    """A ``Cell`` from a name (``"rnn"`` = tanh Elman, ``"linear"``, ``"lstm"``, ``"gru"``) or a ``Cell``."""
    if isinstance(cell, Cell):
        return cell
    if isinstance(cell, str):
        try:
            return _named_cell(cell)
        except KeyError:
            names = ", ".join(repr(n) for n in CELLS)
            raise ValueError(f"cell: unknown name {cell!r}; expected one of {names}, or a Cell (e.g. elman('relu'))") from None
    raise TypeError(f"cell: expected a name (str) or a Cell, got {type(cell).__name__}")


# --------------------------------------------------------------------------- initialisation


def spectral_radius(W: Any) -> float:
    """ρ(W) = max |eigenvalue| of a square matrix (computed with NumPy, outside ``jit``)."""
    return _rho(W)


def power_norm_bounds(W: Any, T: int) -> tuple[np.ndarray, np.ndarray]:
    """Bounds on the spectral norm of W^t for t = 0 ... T: ρ^t ≤ ‖W^t‖₂ ≤ κ(V) ρ^t, each of shape (T+1,).

    ρ is the spectral radius (a norm is at least the spectral radius, and ρ(W^t) = ρ^t); with the
    eigendecomposition W = V Λ V⁻¹, ‖W^t‖ = ‖V Λ^t V⁻¹‖ ≤ κ(V) ρ^t, κ(V) = ‖V‖ ‖V⁻¹‖ (unit-norm
    eigenvectors). For a normal W (orthogonal, symmetric) κ = 1 and ‖W^t‖ = ρ^t exactly.
    Computed in float64 with NumPy (outside ``jit``).
    """
    W = np.asarray(W, dtype=np.float64)
    if W.ndim != 2 or W.shape[0] != W.shape[1]:
        raise ValueError(f"W: expected a square matrix, got shape {W.shape}")
    T = _positive_int(T, "T")
    lam, V = np.linalg.eig(W)
    rho = float(np.max(np.abs(lam)))
    kappa = float(np.linalg.cond(V))
    powers = rho ** np.arange(T + 1, dtype=np.float64)
    return powers, kappa * powers


def _rho(W: Any) -> float:
    W = np.asarray(W, dtype=np.float64)
    if W.ndim != 2 or W.shape[0] != W.shape[1]:
        raise ValueError(f"W: expected a square matrix, got shape {W.shape}")
    return float(np.max(np.abs(np.linalg.eigvals(W))))


def _recurrent_block(key: jax.Array, n: int, init: str | Callable, dtype: Any) -> jax.Array:
    if callable(init):
        return init(key, (n, n), dtype)
    if init == "normal":  # N(0, 1/n): spectral radius -> 1 as n grows (circular law)
        return jax.nn.initializers.variance_scaling(1.0, "fan_in", "normal")(key, (n, n), dtype)
    if init == "orthogonal":  # Saxe et al. 2014: all singular values 1
        return jax.nn.initializers.orthogonal()(key, (n, n), dtype)
    if init == "identity":  # Le et al. 2015 (IRNN)
        return jnp.eye(n, dtype=dtype)
    raise ValueError(
        f"recurrent_init: expected 'normal', 'orthogonal', 'identity' or a jax.nn.initializers initializer, got {init!r}"
    )


def init_cell(
    key: jax.Array,
    cell: str | Cell,
    n_in: int,
    n_hidden: int,
    *,
    recurrent_init: str | Callable | None = None,
    scale: float = 1.0,
    spectral_radius: float | None = None,
    forget_bias: float = 1.0,
    dtype: Any = jnp.float32,
) -> dict[str, jax.Array]:
    """Cell params {"W_x": (n_in, k·n), "W_h": (n, k·n), "b": (k·n,)}, k = number of gate blocks.

    W_x is Glorot-uniform (``jax.nn.initializers.glorot_uniform``). Each (n, n) block of W_h is
    ``scale`` times ``recurrent_init``: ``"normal"`` (N(0, 1/n), spectral radius ≈ 1; the default
    for the Elman cell), ``"orthogonal"`` (Saxe et al. 2014; default for LSTM/GRU), ``"identity"``
    (IRNN, Le et al. 2015) or any ``jax.nn.initializers`` initializer. ``spectral_radius``
    (Elman cell only) rescales W_h so that ρ(W_h) is exactly this value (NumPy, not jittable).
    Biases are zero, except the LSTM forget gate: ``forget_bias`` (+1, Gers et al. 2000;
    Jozefowicz et al. 2015).
    """
    c = get_cell(cell)
    n_in = _positive_int(n_in, "n_in")
    n = _positive_int(n_hidden, "n_hidden")
    scale = _non_negative(scale, "scale")
    if isinstance(forget_bias, bool) or not isinstance(forget_bias, (int, float)):
        raise TypeError(f"forget_bias: expected a number, got {type(forget_bias).__name__}")
    if spectral_radius is not None:
        spectral_radius = _non_negative(spectral_radius, "spectral_radius")
        if c.n_blocks != 1:
            raise ValueError(f"spectral_radius: only the Elman cell has a single recurrent matrix; got cell {c.name!r}")
    if recurrent_init is None:
        recurrent_init = "normal" if c.n_blocks == 1 else "orthogonal"
    k = c.n_blocks
    kx, kh = jax.random.split(key)
    W_x = jax.nn.initializers.glorot_uniform()(kx, (n_in, k * n), dtype)
    W_h = jnp.concatenate([_recurrent_block(kb, n, recurrent_init, dtype) for kb in jax.random.split(kh, k)], axis=1)
    W_h = scale * W_h
    if spectral_radius is not None:
        rho = _rho(W_h)
        if rho == 0.0:
            raise ValueError("spectral_radius: W_h is nilpotent (ρ = 0) and cannot be rescaled; use another init or scale > 0")
        W_h = W_h * (spectral_radius / rho)
    b = jnp.zeros((k * n,), dtype)
    if c.name == "lstm":
        b = b.at[n : 2 * n].set(forget_bias)
    return {"W_x": W_x, "W_h": W_h.astype(dtype), "b": b}


def init_rnn(key: jax.Array, cell: str | Cell, n_in: int, n_hidden: int, n_out: int, **cell_kwargs: Any) -> dict:
    """Model params {"cell": init_cell(...), "readout": {"W": (n, n_out), "b": (n_out,)}}.

    The readout y = h W + b is Glorot-uniform with zero bias; ``cell_kwargs`` go to ``init_cell``.
    """
    n_out = _positive_int(n_out, "n_out")
    kc, kr = jax.random.split(key)
    cp = init_cell(kc, cell, n_in, n_hidden, **cell_kwargs)
    dtype = cp["W_h"].dtype
    W = jax.nn.initializers.glorot_uniform()(kr, (cp["W_h"].shape[0], n_out), dtype)
    return {"cell": cp, "readout": {"W": W, "b": jnp.zeros((n_out,), dtype)}}


# --------------------------------------------------------------------------- running


def _split_params(params: Any) -> tuple[dict, dict | None]:
    if not isinstance(params, dict):
        raise TypeError(f"params: expected a dict from init_cell or init_rnn, got {type(params).__name__}")
    if "cell" in params:
        if "readout" not in params:
            raise ValueError("params: a model dict needs both 'cell' and 'readout' (see init_rnn)")
        return params["cell"], params["readout"]
    missing = {"W_x", "W_h", "b"} - set(params)
    if missing:
        raise ValueError(f"params: missing {sorted(missing)}; expected init_cell(...) or init_rnn(...) params")
    return params, None


def _check_xs(cp: dict, xs: Any) -> jax.Array:
    xs = check_input(xs, "xs")
    if xs.ndim != 3:
        raise ValueError(f"xs: expected shape (batch, T, n_in), got {tuple(xs.shape)}")
    if xs.shape[1] < 1:
        raise ValueError("xs: the sequence is empty (T = 0)")
    if xs.shape[2] != cp["W_x"].shape[0]:
        raise ValueError(f"xs: has {xs.shape[2]} input channels, but the cell's W_x expects n_in = {cp['W_x'].shape[0]}")
    return xs


def _h0(cp: dict, xs: jax.Array, h0: Any) -> jax.Array:
    n = cp["W_h"].shape[0]
    if h0 is None:
        return jnp.zeros((xs.shape[0], n), xs.dtype)
    h0 = check_input(h0, "h0")
    if tuple(h0.shape) != (xs.shape[0], n):
        raise ValueError(f"h0: expected shape (batch, n_hidden) = {(xs.shape[0], n)}, got {tuple(h0.shape)}")
    return h0


def _scan(c: Cell, cp: dict, xs: jax.Array, h0: jax.Array, e: jax.Array | None = None) -> jax.Array:
    """Hidden states h_0 ... h_T, time-major (T+1, batch, n); ``e[t]`` (if given) is added to h_t."""
    if e is not None:
        h0 = h0 + e[0]

    def body(state, inp):
        x, e_t = inp
        state = c.step(cp, state, x)
        if e_t is not None:
            state = c.replace_hidden(state, c.hidden(state) + e_t)
        return state, c.hidden(state)

    xs_tm = jnp.swapaxes(xs, 0, 1)
    _, hs = lax.scan(body, c.zeros(h0), (xs_tm, None if e is None else e[1:]))
    return jnp.concatenate([h0[None], hs])


@functools.partial(jax.jit, static_argnums=(0,))
def _unroll_jit(c: Cell, cp: dict, xs: jax.Array, h0: jax.Array) -> jax.Array:
    return _scan(c, cp, xs, h0)


def unroll(cell: str | Cell, params: dict, xs: jax.Array, *, h0: jax.Array | None = None) -> jax.Array:
    """Hidden states h_0 ... h_T for inputs ``xs: (batch, T, n_in)``; returns (T+1, batch, n).

    ``params`` are cell params or model params (the readout is ignored); h_0 defaults to zeros.
    """
    c = get_cell(cell)
    cp, _ = _split_params(params)
    xs = _check_xs(cp, xs)
    return _unroll_jit(c, cp, xs, _h0(cp, xs, h0))


def _output(readout: dict | None, hs: jax.Array, all_steps: bool) -> jax.Array:
    if all_steps:
        hs = jnp.swapaxes(hs[1:], 0, 1)  # (batch, T, n)
    else:
        hs = hs[-1]
    if readout is None:
        return hs
    return hs @ readout["W"] + readout["b"]


@functools.partial(jax.jit, static_argnums=(0, 5))
def _apply_jit(c: Cell, cp: dict, readout: dict | None, xs: jax.Array, h0: jax.Array, all_steps: bool) -> jax.Array:
    return _output(readout, _scan(c, cp, xs, h0), all_steps)


def apply_rnn(
    cell: str | Cell, params: dict, xs: jax.Array, *, all_steps: bool = False, h0: jax.Array | None = None
) -> jax.Array:
    """The network's output: readout(h_T), shape (batch, n_out), or at every step (batch, T, n_out).

    With cell params only (no readout) the output is h_T (batch, n) or h_1..h_T (batch, T, n).
    """
    c = get_cell(cell)
    cp, readout = _split_params(params)
    xs = _check_xs(cp, xs)
    return _apply_jit(c, cp, readout, xs, _h0(cp, xs, h0), bool(all_steps))


@functools.partial(jax.jit, static_argnums=(0, 3, 6))
def _hidden_grads_jit(c: Cell, cp: dict, readout: dict | None, loss: Callable, xs: jax.Array, h0: jax.Array, all_steps: bool):
    def total(e):
        out = loss(_output(readout, _scan(c, cp, xs, h0, e), all_steps))
        if jnp.shape(out) != ():
            raise ValueError(f"loss: must return a scalar (shape ()), got {jnp.shape(out)}; reduce it, e.g. with jnp.mean")
        return out

    return jax.grad(total)(jnp.zeros((xs.shape[1] + 1,) + h0.shape, h0.dtype))


def hidden_state_grads(
    cell: str | Cell,
    params: dict,
    xs: jax.Array,
    loss: Callable[[jax.Array], jax.Array],
    *,
    all_steps: bool = False,
    h0: jax.Array | None = None,
) -> jax.Array:
    """∂L/∂h_t for t = 0 ... T, time-major (T+1, batch, n), with L = ``loss(apply_rnn(cell, params, xs))``.

    One reverse pass: a zero e_t is added to every h_t inside the scan and ∂L/∂e_t = ∂L/∂h_t.
    (For the LSTM, h_t is the output state; the cell state c_t carries gradient alongside it.)
    Jitted with ``loss`` static: reuse the same loss function object to avoid recompiling.
    """
    c = get_cell(cell)
    cp, readout = _split_params(params)
    xs = _check_xs(cp, xs)
    if not callable(loss):
        raise TypeError(f"loss: expected a function output -> scalar, got {type(loss).__name__}")
    return _hidden_grads_jit(c, cp, readout, loss, xs, _h0(cp, xs, h0), bool(all_steps))


@functools.partial(jax.jit, static_argnums=(0, 4))
def _jacobian_norms_jit(c: Cell, cp: dict, xs: jax.Array, h0: jax.Array, method: str, key: jax.Array) -> jax.Array:
    def one(x, h):  # a single sequence: x (T, n_in), h (n,) -> (T+1, n)
        return _scan(c, cp, x[None], h[None])[:, 0]

    if method == "exact":
        jac = jax.vmap(jax.jacfwd(one, argnums=1))(xs, h0)  # (batch, T+1, n, n)
        return jnp.linalg.norm(jac, ord=2, axis=(-2, -1))
    v = jax.random.normal(key, h0.shape, h0.dtype)
    v = v / jnp.linalg.norm(v, axis=-1, keepdims=True)
    _, tang = jax.vmap(lambda x, h, t: jax.jvp(lambda h_: one(x, h_), (h,), (t,)))(xs, h0, v)
    return jnp.linalg.norm(tang, axis=-1)


def state_jacobian_norms(
    cell: str | Cell,
    params: dict,
    xs: jax.Array,
    *,
    h0: jax.Array | None = None,
    method: str = "exact",
    key: jax.Array | None = None,
) -> jax.Array:
    """‖∂h_t/∂h_0‖ for t = 0 ... T and every sequence of the batch: shape (batch, T+1).

    ``method="exact"``: the spectral norm (largest singular value) of the n×n Jacobian, built with
    ``jax.jacfwd`` (n forward tangents; fine up to a few hundred units).
    ``method="jvp"``: ‖(∂h_t/∂h_0) v‖ for one random unit vector v per sequence (one ``jax.jvp``,
    any size) — a lower bound on the spectral norm; for W = ρQ (Q orthogonal) both equal ρ^t.
    """
    c = get_cell(cell)
    cp, _ = _split_params(params)
    xs = _check_xs(cp, xs)
    h0 = _h0(cp, xs, h0)
    if method not in ("exact", "jvp"):
        raise ValueError(f"method: expected 'exact' or 'jvp', got {method!r}")
    key = jax.random.PRNGKey(0) if key is None else key
    return _jacobian_norms_jit(c, cp, xs, h0, method, key)


# --------------------------------------------------------------------------- losses for gc.train.fit


def rnn_mse_loss(cell: str | Cell) -> Callable[[dict, tuple], jax.Array]:
    """``loss_fn(params, (xs, y))`` = mean (apply_rnn(cell, params, xs)[:, 0] - y)², for one-output regression."""
    c = get_cell(cell)

    def loss_fn(params: dict, batch: tuple) -> jax.Array:
        xs, y = batch
        return jnp.mean(jnp.square(apply_rnn(c, params, xs)[:, 0] - y))

    return loss_fn


def rnn_xent_loss(cell: str | Cell) -> Callable[[dict, tuple], jax.Array]:
    """``loss_fn(params, (xs, labels))``: softmax cross-entropy averaged over batch and every time step.

    ``labels: (batch, T)`` int; the readout gives logits at every step (``all_steps=True``).
    """
    c = get_cell(cell)

    def loss_fn(params: dict, batch: tuple) -> jax.Array:
        xs, labels = batch
        logits = apply_rnn(c, params, xs, all_steps=True)
        logp = jax.nn.log_softmax(logits, axis=-1)
        return -jnp.mean(jnp.take_along_axis(logp, labels[..., None], axis=-1))

    return loss_fn
