"""Data for the case studies: synthetic long-range sequence tasks and scikit-learn's digits.

The sequence tasks are generated from a seed (an int or a ``jax.random`` key), batch-first
``xs: (batch, T, channels)`` float32, and are pure JAX (they work under ``jit``). ``stream`` turns
one into the ``step -> batch`` function that ``gc.train.fit`` takes: a fresh batch every step.

* Adding problem (Hochreiter & Schmidhuber 1997; the two-channel form of Le et al. 2015):
  channel 0 holds values U[0, 1], channel 1 marks two positions with 1; the target is the sum of
  the two marked values. Predicting the mean, 1, gives MSE = Var(u₁ + u₂) = 1/6.
* Copy task (Hochreiter & Schmidhuber 1997; Arjovsky et al. 2016): remember a string of symbols
  across a delay of T blanks and write it back after a delimiter.
* ``sequence_task``: token sequences for a transformer (reverse / copy / sort a random string),
  ``(tokens, targets, weights)`` for next-token prediction scored on the answer.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .validate import int_at_least, one_of

__all__ = [
    "ADDING_BASELINE_MSE", "adding_problem", "copy_task", "copy_baseline_xent", "sequence_task", "stream", "Digits",
    "load_digits",
]

ADDING_BASELINE_MSE = 1.0 / 6.0
"""MSE of always predicting 1 on the adding problem: Var(u₁ + u₂) = 2 · 1/12."""


_int_at_least = int_at_least


def _key(seed: Any) -> jax.Array:
    """A ``jax.random`` key from an int seed or a key (raw uint32 (2,) or typed)."""
    if isinstance(seed, (bool, np.bool_)):
        raise TypeError("seed: expected an int or a jax.random key, got bool")
    if isinstance(seed, (int, np.integer)):
        return jax.random.PRNGKey(int(seed))
    if hasattr(seed, "dtype") and (jnp.issubdtype(seed.dtype, jax.dtypes.prng_key) or seed.dtype == jnp.uint32):
        return seed
    raise TypeError(f"seed: expected an int or a jax.random key, got {type(seed).__name__}")


# --------------------------------------------------------------------------- adding problem


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _adding(key: jax.Array, T: int, batch: int, early: bool) -> tuple[jax.Array, jax.Array]:
    kv, k1, k2 = jax.random.split(key, 3)
    values = jax.random.uniform(kv, (batch, T))
    half = T // 2
    if early:  # two distinct positions, both in [0, T/2)
        i = jax.random.randint(k1, (batch,), 0, half)
        j = jax.random.randint(k2, (batch,), 0, half - 1)
        j = j + (j >= i)
    else:  # one in each half
        i = jax.random.randint(k1, (batch,), 0, half)
        j = jax.random.randint(k2, (batch,), half, T)
    pos = jnp.arange(T)
    markers = ((pos == i[:, None]) | (pos == j[:, None])).astype(jnp.float32)
    xs = jnp.stack([values, markers], axis=-1)
    return xs, jnp.sum(values * markers, axis=1)


def adding_problem(seed: Any, T: int, batch: int, *, placement: str = "halves") -> tuple[jax.Array, jax.Array]:
    """One batch of the adding problem: ``xs: (batch, T, 2)`` float32 and targets ``y: (batch,)``.

    xs[..., 0] ~ U[0, 1]; xs[..., 1] is 1 at two positions, 0 elsewhere; y = Σ_t xs[t, 0] xs[t, 1].
    ``placement="halves"``: one marker in each half of the sequence (the usual modern form);
    ``"early"``: both in the first half, so the answer needs a memory of at least T/2 steps
    (closer to Hochreiter & Schmidhuber's original; needs T >= 4).
    """
    T = _int_at_least(T, "T", 2)
    batch = _int_at_least(batch, "batch", 1)
    if placement not in ("halves", "early"):
        raise ValueError(f"placement: expected 'halves' or 'early', got {placement!r}")
    if placement == "early" and T < 4:
        raise ValueError(f"T: placement='early' puts two markers in the first half and needs T >= 4, got {T}")
    return _adding(_key(seed), T, batch, placement == "early")


# --------------------------------------------------------------------------- copy task


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4))
def _copy(key: jax.Array, T: int, batch: int, n_symbols: int, length: int) -> tuple[jax.Array, jax.Array]:
    total = T + 2 * length
    symbols = jax.random.randint(key, (batch, length), 1, n_symbols + 1)
    delim = n_symbols + 1
    inputs = jnp.zeros((batch, total), jnp.int32)
    inputs = inputs.at[:, :length].set(symbols).at[:, T + length - 1].set(delim)
    labels = jnp.zeros((batch, total), jnp.int32).at[:, T + length :].set(symbols)
    return jax.nn.one_hot(inputs, n_symbols + 2, dtype=jnp.float32), labels


def copy_task(seed: Any, T: int, batch: int, *, n_symbols: int = 8, length: int = 10) -> tuple[jax.Array, jax.Array]:
    """One batch of the copy task: one-hot ``xs: (batch, T + 2·length, n_symbols + 2)``, ``labels`` int32.

    Input: ``length`` random symbols from 1..n_symbols, then blanks (0), a delimiter
    (n_symbols + 1) at step T + length - 1, then blanks. Labels: blanks until step T + length, then
    the symbols again. The memoryless baseline (blanks, then uniform guesses) has cross-entropy
    ``copy_baseline_xent(T, n_symbols, length)``.
    """
    T = _int_at_least(T, "T", 1)
    batch = _int_at_least(batch, "batch", 1)
    n_symbols = _int_at_least(n_symbols, "n_symbols", 1)
    length = _int_at_least(length, "length", 1)
    return _copy(_key(seed), T, batch, n_symbols, length)


def copy_baseline_xent(T: int, n_symbols: int = 8, length: int = 10) -> float:
    """Cross-entropy per step of predicting blanks, then uniform symbols: length·log(n_symbols) / (T + 2·length)."""
    T = _int_at_least(T, "T", 1)
    n_symbols = _int_at_least(n_symbols, "n_symbols", 1)
    length = _int_at_least(length, "length", 1)
    return float(length * np.log(n_symbols) / (T + 2 * length))


def stream(task: Callable[..., Any], seed: Any, *args: Any, **kwargs: Any) -> Callable[[int], Any]:
    """``step -> task(fold_in(key, step), *args, **kwargs)``: a fresh, reproducible batch every step.

    E.g. ``gc.train.fit(loss, params, opt, stream(adding_problem, 0, T=40, batch=64), steps=500)``.
    """
    if not callable(task):
        raise TypeError(f"task: expected a data function such as adding_problem, got {type(task).__name__}")
    key = _key(seed)

    def batch_at(step: int) -> Any:
        return task(jax.random.fold_in(key, step), *args, **kwargs)

    return batch_at


# --------------------------------------------------------------------------- digits


class Digits(NamedTuple):
    """Train/test split of scikit-learn's 8×8 digits: images (N, 8, 8, 1) float32 in [0, 1], labels int32."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_digits(*, test_fraction: float = 0.25, seed: int = 0) -> Digits:
    """scikit-learn's bundled digits (1797 images, 10 classes; no download), split with a fixed seed.

    Pixels (0..16) are scaled to [0, 1]; the split is stratified by class.
    """
    from sklearn.datasets import load_digits as _sk_load_digits
    from sklearn.model_selection import train_test_split

    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float)):
        raise TypeError(f"test_fraction: expected a number in (0, 1), got {type(test_fraction).__name__}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction: expected a number in (0, 1), got {test_fraction}")
    seed = _int_at_least(seed, "seed", 0)
    d = _sk_load_digits()
    x = (d.images / 16.0).astype(np.float32)[..., None]
    y = d.target.astype(np.int32)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=y)
    return Digits(x_tr, y_tr, x_te, y_te)


# --------------------------------------------------------------------------- string tasks for a transformer


_SEQUENCE_TASKS = ("reverse", "copy", "sort")


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4))
def _sequence(key: jax.Array, task: str, batch: int, length: int, n_symbols: int):
    # drawn 1-D and reshaped: faster to compile
    symbols = jax.random.randint(key, (batch * length,), 1, n_symbols + 1).reshape(batch, length)
    if task == "reverse":
        answer = symbols[:, ::-1]
    elif task == "sort":
        answer = jnp.sort(symbols, axis=1)
    else:
        answer = symbols
    sep = jnp.zeros((batch, 1), symbols.dtype)
    seq = jnp.concatenate([symbols, sep, answer], axis=1).astype(jnp.int32)  # (B, 2·length + 1)
    weights = (jnp.arange(2 * length) >= length).astype(jnp.float32)
    return seq[:, :-1], seq[:, 1:], jnp.broadcast_to(weights, (batch, 2 * length))


def sequence_task(
    seed: Any, batch: int, *, task: Literal["reverse", "copy", "sort"] = "reverse", length: int = 8, n_symbols: int = 10
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """One batch ``(tokens, targets, weights)``, each (batch, 2·length), of a string task.

    A sequence is ``length`` random symbols from 1..n_symbols, the separator 0, then the answer:
    the symbols reversed (``task="reverse"``), copied (``"copy"``) or sorted (``"sort"``).
    tokens = sequence[:-1], targets = sequence[1:] (next-token prediction), weights 1 on the
    ``length`` answer positions. A model needs vocab = n_symbols + 1 and seq_len ≥ 2·length.
    Guessing a uniform symbol costs log(n_symbols) nats per answer token. ``seed``: an int or a
    ``jax.random`` key (pure JAX: use ``jax.random.fold_in(key, step)`` for a fresh batch per step).

    >>> tokens, targets, weights = sequence_task(0, 2, length=3)
    >>> tokens.shape, bool((targets[:, 3:] == tokens[:, 2::-1]).all()), weights[0].tolist()
    ((2, 6), True, [0.0, 0.0, 0.0, 1.0, 1.0, 1.0])
    """
    one_of(task, "task", _SEQUENCE_TASKS)
    batch = _int_at_least(batch, "batch", 1)
    length = _int_at_least(length, "length", 1)
    n_symbols = _int_at_least(n_symbols, "n_symbols", 1)
    return _sequence(_key(seed), task, batch, length, n_symbols)
