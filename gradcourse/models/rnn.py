"""Recurrent networks unrolled over time with ``lax.scan``: Elman RNN, LSTM and GRU (core layer).

The model convention of ``gradcourse.models``: a frozen ``Config``, ``init(key, config)``,
``apply(params, config, xs)``, ``loss(params, config, batch)`` and ``states(params, config, xs)``.

Row-vector convention, inputs batch-first ``xs: (batch, T, n_in)``:

* Elman (vanilla) RNN (``cell="rnn"``: φ = tanh; ``"linear"``: φ = identity):
  h_t = φ(x_t W_x + h_{t-1} W_h + b), so ∂h_t/∂h_{t-1} = diag(φ'(·)) W_hᵀ and, for a linear RNN,
  ∂h_T/∂h_0 is the transpose of W_h^T (the T-th power), whose norm grows or shrinks like ρ(W_h)^T.
* LSTM (Hochreiter & Schmidhuber 1997; forget gate of Gers et al. 2000):
  [i, f, g, o] = x_t W_x + h_{t-1} W_h + b; c_t = σ(f) c_{t-1} + σ(i) tanh(g); h_t = σ(o) tanh(c_t).
* GRU (Cho et al. 2014): z, r = σ(x_t W_x + h_{t-1} W_h + b) (first two blocks);
  ñ = tanh(x_t W_xn + (r ⊙ h_{t-1}) W_hn + b_n); h_t = z ⊙ h_{t-1} + (1 - z) ⊙ ñ.

Parameters are a plain pytree ``{"cell": {"W_x": (n_in, k·n), "W_h": (n, k·n), "b": (k·n,)},
"readout": {"W": (n, n_out), "b": (n_out,)}}`` with k = 1, 4, 3 gate blocks (no ``"readout"`` when
``n_out=None``), ready for ``jax.grad``, optax and ``gc.train.fit``.

``states`` returns the hidden states **time-major**, ``hs: (T+1, batch, n)`` with ``hs[t] = h_t``
(h_0 first), the layout of ``gc.forward``: time plays the role of depth. ``hidden_state_grads``
gives ∂loss/∂h_t for every t from one reverse pass (the zero-perturbation trick of
``gradcourse.chains``), ``cell_state_grads`` the LSTM's ∂loss/∂c_t; ``state_jacobian_norms`` gives ‖∂h_t/∂h_0‖.

>>> import jax
>>> config = Config(cell="gru", n_in=2, n_hidden=8, n_out=1)
>>> params = init(jax.random.PRNGKey(0), config)
>>> xs = jax.numpy.ones((4, 5, 2))
>>> apply(params, config, xs).shape, states(params, config, xs).shape
((4, 1), (6, 4, 8))
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ..activations import get_activation
from ..model import Stacked, check_input
from ..validate import one_of, positive_int, prng_key, real

__all__ = [
    "Config", "init", "apply", "loss", "states",
    "hidden_state_grads", "cell_state_grads", "unrolled", "state_jacobian_norms", "power_norm_bounds",
]

CellName = Literal["rnn", "linear", "lstm", "gru"]
_CELL_NAMES = ("rnn", "linear", "lstm", "gru")
_RECURRENT_INITS = ("normal", "orthogonal", "identity")


class _Cell(NamedTuple):
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


def _elman(activation: str = "tanh") -> _Cell:
    """Elman cell h_t = φ(x_t W_x + h_{t-1} W_h + b); ``activation="linear"`` gives a linear RNN."""
    phi = get_activation(activation)

    def step(p: dict, h: jax.Array, x: jax.Array) -> jax.Array:
        return phi(x @ p["W_x"] + h @ p["W_h"] + p["b"])

    name = "rnn" if activation == "tanh" else str(activation)
    return _Cell(name, 1, step, _identity_state, _identity_state, _replace)


def _lstm_step(p: dict, state: tuple, x: jax.Array, e_c: jax.Array | float = 0.0) -> tuple:
    """One LSTM step (h, c) -> (h, c); ``e_c`` is added to the new cell state *before* h = σ(o) tanh(c)
    reads it, so ∂loss/∂e_c is the total ∂loss/∂c_t (through c_{t+1} and through h_t)."""
    h, c = state
    i, f, g, o = jnp.split(x @ p["W_x"] + h @ p["W_h"] + p["b"], 4, axis=-1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g) + e_c
    return jax.nn.sigmoid(o) * jnp.tanh(c), c


def _lstm() -> _Cell:
    """LSTM cell with state (h, c); gate blocks ordered [input, forget, candidate, output]."""
    return _Cell("lstm", 4, _lstm_step, lambda h0: (h0, jnp.zeros_like(h0)), lambda s: s[0], lambda s, h: (h, s[1]))


def _gru() -> _Cell:
    """GRU cell (Cho et al. 2014); gate blocks ordered [update z, reset r, candidate]."""

    def step(p: dict, h: jax.Array, x: jax.Array) -> jax.Array:
        n = h.shape[-1]
        zx = x @ p["W_x"] + p["b"]
        zr = jax.nn.sigmoid(zx[..., : 2 * n] + h @ p["W_h"][:, : 2 * n])
        z, r = zr[..., :n], zr[..., n:]
        cand = jnp.tanh(zx[..., 2 * n :] + (r * h) @ p["W_h"][:, 2 * n :])
        return z * h + (1.0 - z) * cand

    return _Cell("gru", 3, step, _identity_state, _identity_state, _replace)


_CELLS: dict[str, Callable[[], _Cell]] = {"rnn": _elman, "linear": lambda: _elman("linear"), "lstm": _lstm, "gru": _gru}


@functools.lru_cache(maxsize=len(_CELLS))
def _cell(name: str) -> _Cell:
    """One cell object per name (four at most), so every traced function sees the same step function."""
    return _CELLS[name]()


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class Config:
    """What ``init`` builds and ``apply`` runs; frozen and hashable (a static ``jit`` argument).

    ``cell``: ``"rnn"`` (tanh Elman), ``"linear"`` (linear Elman), ``"lstm"`` or ``"gru"``;
    ``n_in`` input channels, ``n_hidden`` units, ``n_out`` readout outputs (``None``: no readout,
    ``apply`` returns hidden states). ``output``: ``"last"``: ``apply`` reads out h_T, (batch,
    n_out), and ``loss`` is the mean squared error against targets y (batch,) or (batch, n_out)
    (sequence regression, e.g. the adding problem); ``"all"``: ``apply`` reads out h_1..h_T,
    (batch, T, n_out), and ``loss`` is softmax cross-entropy against int labels (batch, T),
    averaged over batch and steps (e.g. the copy task).

    Initialisation: W_x Glorot-uniform; each (n, n) block of W_h is ``scale`` times
    ``recurrent_init``: ``"normal"`` (N(0, 1/n), spectral radius ≈ 1; default for the Elman cell),
    ``"orthogonal"`` (Saxe et al. 2014; default for LSTM / GRU), ``"identity"`` (IRNN, Le et al.
    2015) or a ``jax.nn.initializers`` initializer. ``spectral_radius`` (Elman cells only) rescales
    W_h so that ρ(W_h) is exactly this value. Biases zero, except the LSTM forget gate:
    ``forget_bias`` (+1, Gers et al. 2000; Jozefowicz et al. 2015). The readout is Glorot-uniform
    with zero bias.

    >>> Config(cell="gru", n_hidden=0)
    Traceback (most recent call last):
    ...
    ValueError: n_hidden: expected a positive integer, got 0
    """

    cell: CellName = "rnn"
    n_in: int = 1
    n_hidden: int = 32
    n_out: int | None = 1
    output: Literal["last", "all"] = "last"
    recurrent_init: Literal["normal", "orthogonal", "identity"] | Callable | None = None
    scale: float = 1.0
    spectral_radius: float | None = None
    forget_bias: float = 1.0

    def __post_init__(self) -> None:
        one_of(self.cell, "cell", _CELL_NAMES)
        for name in ("n_in", "n_hidden"):
            object.__setattr__(self, name, positive_int(getattr(self, name), name))
        if self.n_out is not None:
            object.__setattr__(self, "n_out", positive_int(self.n_out, "n_out"))
        one_of(self.output, "output", ("last", "all"))
        if self.recurrent_init is None:
            object.__setattr__(self, "recurrent_init", "normal" if self.cell in ("rnn", "linear") else "orthogonal")
        elif not callable(self.recurrent_init):
            one_of(self.recurrent_init, "recurrent_init", _RECURRENT_INITS)
        object.__setattr__(self, "scale", real(self.scale, "scale", low=0.0))
        object.__setattr__(self, "forget_bias", real(self.forget_bias, "forget_bias"))
        if self.spectral_radius is not None:
            object.__setattr__(self, "spectral_radius", real(self.spectral_radius, "spectral_radius", low=0.0))
            if self.cell not in ("rnn", "linear"):
                raise ValueError(
                    f"spectral_radius: only the Elman cells ('rnn', 'linear') have a single recurrent matrix; "
                    f"got cell {self.cell!r}"
                )


def _check_config(config: Any) -> Config:
    if not isinstance(config, Config):
        raise TypeError(f"config: expected a gc.models.rnn.Config, got {type(config).__name__}")
    return config


class _Arch(NamedTuple):
    """The fields of a Config that the computation depends on (not the initialisation): the static
    argument of the jitted functions, so configs that differ only in how they initialise share one
    compilation (e.g. a sweep over ``scale``)."""

    cell: str
    output: str
    n_out: int | None


def _arch(c: Config) -> _Arch:
    return _Arch(c.cell, c.output, c.n_out)


# --------------------------------------------------------------------------- initialisation


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
    T = positive_int(T, "T")
    lam, V = np.linalg.eig(W)
    rho = float(np.max(np.abs(lam)))
    kappa = float(np.linalg.cond(V))
    powers = rho ** np.arange(T + 1, dtype=np.float64)
    return powers, kappa * powers


def _rho(W: Any) -> float:
    """ρ(W) = max |eigenvalue| of a square matrix (NumPy, outside ``jit``)."""
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
    raise ValueError(f"recurrent_init: expected 'normal', 'orthogonal', 'identity' or an initializer, got {init!r}")


def _init_cell(key: jax.Array, c: Config, dtype: Any) -> dict[str, jax.Array]:
    k, n = _cell(c.cell).n_blocks, c.n_hidden
    kx, kh = jax.random.split(key)
    W_x = jax.nn.initializers.glorot_uniform()(kx, (c.n_in, k * n), dtype)
    W_h = jnp.concatenate([_recurrent_block(kb, n, c.recurrent_init, dtype) for kb in jax.random.split(kh, k)], axis=1)
    W_h = c.scale * W_h
    if c.spectral_radius is not None:
        rho = _rho(W_h)
        if rho == 0.0:
            raise ValueError(
                "spectral_radius: W_h is nilpotent (ρ = 0) and cannot be rescaled; use another init or scale > 0"
            )
        W_h = W_h * (c.spectral_radius / rho)
    b = jnp.zeros((k * n,), dtype)
    if c.cell == "lstm":
        b = b.at[n : 2 * n].set(c.forget_bias)
    return {"W_x": W_x, "W_h": W_h.astype(dtype), "b": b}


def init(key: jax.Array, config: Config, *, dtype: Any = jnp.float32) -> dict:
    """Random parameters ``{"cell": ..., "readout": ...}`` (see ``Config`` for the initialisation).

    With ``n_out=None`` the cell is drawn from ``key`` itself; otherwise ``key`` is split into the
    cell's key and the readout's. ``spectral_radius`` uses NumPy (not jittable).
    """
    c = _check_config(config)
    key = prng_key(key)
    if c.n_out is None:
        return {"cell": _init_cell(key, c, dtype)}
    kc, kr = jax.random.split(key)
    W = jax.nn.initializers.glorot_uniform()(kr, (c.n_hidden, c.n_out), dtype)
    return {"cell": _init_cell(kc, c, dtype), "readout": {"W": W, "b": jnp.zeros((c.n_out,), dtype)}}


# --------------------------------------------------------------------------- running


def _check_params(params: Any, c: Config) -> None:
    if not isinstance(params, dict) or not isinstance(params.get("cell"), dict):
        raise TypeError(
            f"params: expected the dict from gc.models.rnn.init (keys 'cell'[, 'readout']), got {type(params).__name__}"
        )
    missing = {"W_x", "W_h", "b"} - set(params["cell"])
    if missing:
        raise ValueError(f"params: cell is missing {sorted(missing)}; build the params with init(key, config)")
    want = (c.n_hidden, _cell(c.cell).n_blocks * c.n_hidden)
    if tuple(params["cell"]["W_h"].shape) != want:
        raise ValueError(
            f"params: cell['W_h'] has shape {tuple(params['cell']['W_h'].shape)}, but config (cell={c.cell!r}, "
            f"n_hidden={c.n_hidden}) needs {want}; build the params with init(key, config)"
        )
    if (c.n_out is None) != ("readout" not in params):
        built = "with" if "readout" in params else "without"
        raise ValueError(f"params: config.n_out={c.n_out} but the params were built {built} a readout")


def _check_xs(c: Config, xs: Any) -> jax.Array:
    xs = check_input(xs, "xs")
    if xs.ndim != 3:
        raise ValueError(f"xs: expected shape (batch, T, n_in), got {tuple(xs.shape)}")
    if xs.shape[1] < 1:
        raise ValueError("xs: the sequence is empty (T = 0)")
    if xs.shape[2] != c.n_in:
        raise ValueError(f"xs: has {xs.shape[2]} input channels, but config.n_in = {c.n_in}")
    return xs


def _h0(c: Config, xs: jax.Array, h0: Any) -> jax.Array:
    if h0 is None:
        return jnp.zeros((xs.shape[0], c.n_hidden), xs.dtype)
    h0 = check_input(h0, "h0")
    if tuple(h0.shape) != (xs.shape[0], c.n_hidden):
        raise ValueError(f"h0: expected shape (batch, n_hidden) = {(xs.shape[0], c.n_hidden)}, got {tuple(h0.shape)}")
    return h0


def _checked(params: Any, config: Any, xs: Any, h0: Any) -> tuple[Config, jax.Array, jax.Array]:
    c = _check_config(config)
    _check_params(params, c)
    xs = _check_xs(c, xs)
    return c, xs, _h0(c, xs, h0)


def _scan(c: _Arch, cp: dict, xs: jax.Array, h0: jax.Array, e: jax.Array | None = None) -> jax.Array:
    """Hidden states h_0 ... h_T, time-major (T+1, batch, n); ``e[t]`` (if given) is added to h_t."""
    cell = _cell(c.cell)
    if e is not None:
        h0 = h0 + e[0]

    def body(state, inp):
        x, e_t = inp
        state = cell.step(cp, state, x)
        if e_t is not None:
            state = cell.replace_hidden(state, cell.hidden(state) + e_t)
        return state, cell.hidden(state)

    _, hs = lax.scan(body, cell.zeros(h0), (jnp.swapaxes(xs, 0, 1), None if e is None else e[1:]))
    return jnp.concatenate([h0[None], hs])


def _output(params: dict, c: _Arch, hs: jax.Array) -> jax.Array:
    """The readout of h_1..h_T (``output="all"``) or of h_T (``"last"``; ``hs`` may be h_T itself, (batch, n))."""
    if c.output == "all":
        hs = jnp.swapaxes(hs[1:], 0, 1)
    elif hs.ndim == 3:
        hs = hs[-1]
    if c.n_out is None:
        return hs
    return hs @ params["readout"]["W"] + params["readout"]["b"]


def _loss_of_output(c: _Arch, out: jax.Array, target: jax.Array) -> jax.Array:
    if c.output == "last":
        return jnp.mean(jnp.square(out - jnp.reshape(target, out.shape)))
    logp = jax.nn.log_softmax(out, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, target[..., None], axis=-1))


@functools.partial(jax.jit, static_argnums=(1,))
def _states(params: dict, c: _Arch, xs: jax.Array, h0: jax.Array) -> jax.Array:
    return _scan(c, params["cell"], xs, h0)


@functools.partial(jax.jit, static_argnums=(1,))
def _apply(params: dict, c: _Arch, xs: jax.Array, h0: jax.Array) -> jax.Array:
    return _output(params, c, _scan(c, params["cell"], xs, h0))


def states(params: dict, config: Config, xs: jax.Array, *, h0: jax.Array | None = None) -> jax.Array:
    """Hidden states h_0 ... h_T for inputs ``xs: (batch, T, n_in)``, time-major: (T+1, batch, n).

    h_0 defaults to zeros (``h0``: (batch, n) to start elsewhere); for the LSTM h_t is the output state.
    """
    c, xs, h0 = _checked(params, config, xs, h0)
    return _states(params, _arch(c), xs, h0)


def apply(params: dict, config: Config, xs: jax.Array, *, h0: jax.Array | None = None) -> jax.Array:
    """The network's output for ``xs: (batch, T, n_in)``: readout(h_T), (batch, n_out), with
    ``output="last"``; readout(h_t) for t = 1..T, (batch, T, n_out), with ``output="all"``.

    Without a readout (``n_out=None``) the hidden state(s) themselves, (batch, n) or (batch, T, n).
    """
    c, xs, h0 = _checked(params, config, xs, h0)
    return _apply(params, _arch(c), xs, h0)


def _check_batch(batch: Any, c: Config) -> tuple[Any, jax.Array]:
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise TypeError(f"batch: expected a pair (xs, targets), got {type(batch).__name__}")
    xs, target = batch
    target = jnp.asarray(target)
    if c.output == "all" and not jnp.issubdtype(target.dtype, jnp.integer):
        raise TypeError(f"batch: output='all' needs int labels (batch, T), got dtype {jnp.dtype(target.dtype).name}")
    return xs, target


def loss(params: dict, config: Config, batch: tuple) -> jax.Array:
    """``batch = (xs, targets)``: mean squared error of ``apply`` against y (batch,) or (batch, n_out)
    (``output="last"``), or softmax cross-entropy against labels (batch, T) int, averaged over batch
    and steps (``output="all"``). For ``gc.train.fit``: ``fit(lambda p, b: loss(p, config, b), ...)``.
    """
    c = _check_config(config)
    xs, target = _check_batch(batch, c)
    return _loss_of_output(_arch(c), apply(params, c, xs), target)


@functools.partial(jax.jit, static_argnums=(1,))
def _hidden_grads(params: dict, c: _Arch, xs: jax.Array, h0: jax.Array, target: jax.Array) -> jax.Array:
    def total(e):
        return _loss_of_output(c, _output(params, c, _scan(c, params["cell"], xs, h0, e)), target)

    return jax.grad(total)(jnp.zeros((xs.shape[1] + 1,) + h0.shape, h0.dtype))


def hidden_state_grads(params: dict, config: Config, batch: tuple, *, h0: jax.Array | None = None) -> jax.Array:
    """∂loss/∂h_t for t = 0 ... T, time-major (T+1, batch, n), with loss = ``loss(params, config, batch)``.

    One reverse pass: a zero e_t is added to every h_t inside the scan and ∂loss/∂e_t = ∂loss/∂h_t.
    (For the LSTM, h_t is the output state; the cell state c_t carries gradient alongside it.)
    """
    c = _check_config(config)
    xs, target = _check_batch(batch, c)
    c, xs, h0 = _checked(params, c, xs, h0)
    return _hidden_grads(params, _arch(c), xs, h0, target)


@functools.partial(jax.jit, static_argnums=(1,))
def _cell_grads(params: dict, c: _Arch, xs: jax.Array, h0: jax.Array, target: jax.Array) -> jax.Array:
    def total(e_c):
        def body(state, inp):
            state = _lstm_step(params["cell"], state, *inp)
            return state, state[0]

        _, hs = lax.scan(body, (h0, e_c[0]), (jnp.swapaxes(xs, 0, 1), e_c[1:]))
        return _loss_of_output(c, _output(params, c, jnp.concatenate([h0[None], hs])), target)

    return jax.grad(total)(jnp.zeros((xs.shape[1] + 1,) + h0.shape, h0.dtype))


def cell_state_grads(params: dict, config: Config, batch: tuple, *, h0: jax.Array | None = None) -> jax.Array:
    """LSTM only: ∂loss/∂c_t of the cell state for t = 0 ... T, time-major (T+1, batch, n).

    The total derivative (through c_{t+1} and through h_t = σ(o_t) tanh(c_t)), from one reverse pass:
    a zero e_t is added to every c_t inside the scan (c_0 = 0 is the initial cell state). Backwards,
    δc_{t-1} = δc_t ⊙ f_t + δh_{t-1} ⊙ σ(o_{t-1}) tanh'(c_{t-1}): the first term alone (the cell path)
    multiplies by the forget gate f_t per step; the second feeds back through W_h and the gates.

    >>> import jax, jax.numpy as jnp
    >>> config = Config(cell="lstm", n_in=1, n_hidden=4, n_out=1)
    >>> params = init(jax.random.PRNGKey(0), config)
    >>> cell_state_grads(params, config, (jnp.ones((2, 5, 1)), jnp.zeros(2))).shape
    (6, 2, 4)
    """
    c = _check_config(config)
    if c.cell != "lstm":
        raise ValueError(f"config: cell_state_grads needs cell='lstm' (only the LSTM has a cell state), got {c.cell!r}")
    xs, target = _check_batch(batch, c)
    c, xs, h0 = _checked(params, c, xs, h0)
    return _cell_grads(params, _arch(c), xs, h0, target)


def unrolled(
    params: dict, config: Config, batch: tuple, *, h0: jax.Array | None = None
) -> tuple[Stacked, jax.Array, Callable[[jax.Array], jax.Array]]:
    """Time as depth: ``(model, h0, loss_of_h_T)`` for the tools written for deep networks.

    ``model = gc.Stacked(step, xs)``: layer t applies the cell to h_{t-1} with "layer parameters"
    x_t (time-major, (T, batch, n_in)), so ``gc.forward(model, h0)`` equals ``states`` and
    ``gc.backward(model, h0, loss_of_h_T)`` equals ``hidden_state_grads``; ``gc.stats.find_nonfinite(
    model, h0, loss_of_h_T)`` names the first time step whose h_t or ∂loss/∂h_t is NaN / Inf.
    Cells whose state is h alone (``"rnn"``, ``"linear"``, ``"gru"``) with ``output="last"``.

    >>> import jax, jax.numpy as jnp
    >>> config = Config(cell="rnn", n_in=1, n_hidden=4, n_out=1)
    >>> params = init(jax.random.PRNGKey(0), config)
    >>> model, h0, loss_of_h_T = unrolled(params, config, (jnp.ones((2, 5, 1)), jnp.zeros(2)))
    >>> model.params.shape, h0.shape
    ((5, 2, 1), (2, 4))
    """
    c = _check_config(config)
    if c.cell == "lstm" or c.output != "last":
        raise ValueError(
            f"config: unrolled needs a cell whose state is h alone ('rnn', 'linear', 'gru') and output='last', "
            f"got cell={c.cell!r}, output={c.output!r}"
        )
    xs, target = _check_batch(batch, c)
    c, xs, h0 = _checked(params, c, xs, h0)
    arch, step, cp = _arch(c), _cell(c.cell).step, params["cell"]

    def layer(x_t: jax.Array, h: jax.Array) -> jax.Array:
        return step(cp, h, x_t)

    def loss_of_h_T(h_T: jax.Array) -> jax.Array:
        return _loss_of_output(arch, _output(params, arch, h_T), target)

    return Stacked(layer, jnp.swapaxes(xs, 0, 1)), h0, loss_of_h_T


@functools.partial(jax.jit, static_argnums=(1, 4))
def _jacobian_norms(params: dict, c: _Arch, xs: jax.Array, h0: jax.Array, method: str, key: jax.Array) -> jax.Array:
    def one(x, h):  # a single sequence: x (T, n_in), h (n,) -> (T+1, n)
        return _scan(c, params["cell"], x[None], h[None])[:, 0]

    if method == "exact":
        jac = jax.vmap(jax.jacfwd(one, argnums=1))(xs, h0)  # (batch, T+1, n, n)
        return jnp.linalg.norm(jac, ord=2, axis=(-2, -1))
    v = jax.random.normal(key, h0.shape, h0.dtype)
    v = v / jnp.linalg.norm(v, axis=-1, keepdims=True)
    _, tang = jax.vmap(lambda x, h, t: jax.jvp(lambda h_: one(x, h_), (h,), (t,)))(xs, h0, v)
    return jnp.linalg.norm(tang, axis=-1)


def state_jacobian_norms(
    params: dict,
    config: Config,
    xs: jax.Array,
    *,
    h0: jax.Array | None = None,
    method: Literal["exact", "jvp"] = "exact",
    key: jax.Array | None = None,
) -> jax.Array:
    """‖∂h_t/∂h_0‖ for t = 0 ... T and every sequence of the batch: shape (batch, T+1).

    ``method="exact"``: the spectral norm (largest singular value) of the n×n Jacobian, built with
    ``jax.jacfwd`` (n forward tangents; fine up to a few hundred units).
    ``method="jvp"``: ‖(∂h_t/∂h_0) v‖ for one random unit vector v per sequence (one ``jax.jvp``,
    any size) — a lower bound on the spectral norm; for W = ρQ (Q orthogonal) both equal ρ^t.
    """
    c, xs, h0 = _checked(params, config, xs, h0)
    one_of(method, "method", ("exact", "jvp"))
    key = jax.random.PRNGKey(0) if key is None else prng_key(key)
    return _jacobian_norms(params, _arch(c), xs, h0, method, key)
