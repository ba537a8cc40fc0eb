"""Clipping experiments: training over many seeds in one program, and one outlier example's influence.

Layer: experiments. Uses optax for every optimiser and every kind of clipping (``optax.clip``,
``clip_by_global_norm``, ``adaptive_grad_clip`` and, for per-example clipping as in DP-SGD
(Abadi et al. 2016), ``optax.contrib.differentially_private_aggregate`` with noise multiplier 0);
returns NumPy arrays and NamedTuples that ``gc.plot`` draws. Nothing here draws.

- ``per_example_grads``: ∂ℓ_b/∂θ for every example b of a batch, one ``jax.vmap`` (leaves (B, ...)).
- ``outlier_influence``: how far one corrupted example moves the (clipped) update, with no
  clipping, clipping the batch gradient, and clipping every example's gradient.
- ``train_seeds``: one optax training loop run for several seeds at once (``jax.vmap`` over the
  seeds of a ``lax.scan`` loop, one compiled program), recording the loss, the raw gradient norm and
  the share of the gradient the clipping changed at every step.
"""
from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .train import _trim_heap
from .validate import positive_int, prng_key, real

__all__ = [
    "Influence",
    "Method",
    "SeedRuns",
    "outlier_influence",
    "per_example_grads",
    "train_seeds",
]

Loss = Callable[[Any, Any], jax.Array]


def _check_loss(loss_fn: Any) -> Loss:
    if not callable(loss_fn):
        raise TypeError(
            f"loss_fn: expected a function (params, batch) -> mean loss over the batch, got {type(loss_fn).__name__}"
        )
    return loss_fn


def _one_example_loss(loss_fn: Loss) -> Callable[[Any, Any], jax.Array]:
    # the loss of a single example, as a batch of one (loss_fn averages over its batch axis)
    return lambda params, example: loss_fn(params, jax.tree.map(lambda a: a[None], example))


def per_example_grads(loss_fn: Loss, params: Any, batch: Any) -> Any:
    """Gradients of every example's loss: a pytree like ``params`` whose leaves have a leading batch axis B.

    ``loss_fn(params, batch)`` is the *mean* loss over the batch (every leaf of ``batch`` has a
    leading axis B); example b's gradient is that of ``loss_fn`` on the batch of one {b}. Their mean
    over b is the batch gradient. One ``jax.vmap`` of ``jax.grad`` (JAX's per-example idiom).

    >>> loss = lambda p, b: jnp.mean((b[0] * p - b[1]) ** 2)
    >>> per_example_grads(loss, jnp.array(1.0), (jnp.array([1.0, 2.0]), jnp.array([0.0, 0.0]))).tolist()
    [2.0, 8.0]
    """
    loss_fn = _check_loss(loss_fn)
    return jax.vmap(jax.grad(_one_example_loss(loss_fn)), in_axes=(None, 0))(params, batch)


def _flat(tree: Any) -> jax.Array:
    return jnp.concatenate([jnp.ravel(x) for x in jax.tree.leaves(tree)])


class Influence(NamedTuple):
    """One corrupted example's effect on the update, for each way of clipping (dicts keyed by method name).

    ``example_norms``: ‖∂ℓ_b/∂θ‖ of every example of the corrupted batch, shape (B,).
    ``shift``: ‖u(corrupted) − u(clean)‖ / ‖u(clean)‖, how far the corruption moved the update u.
    ``change``: ‖u(corrupted) − u(clean)‖ (per-example clipping at C bounds it by 2C/B).
    ``cosine``: cos(u(corrupted), u(clean)). ``norm``: ‖u(corrupted)‖.
    """

    example_norms: np.ndarray
    shift: dict[str, float]
    change: dict[str, float]
    cosine: dict[str, float]
    norm: dict[str, float]


METHODS = ("no clipping", "batch clipping", "per-example clipping")


@functools.partial(jax.jit, static_argnums=0)
def _influence(loss_fn: Loss, params: Any, batch: Any, clean: Any, batch_clip: jax.Array, example_clip: jax.Array):
    by_norm = optax.clip_by_global_norm(batch_clip)
    per_example = optax.contrib.differentially_private_aggregate(example_clip, 0.0, jax.random.key(0))

    def updates(b):
        g_each = per_example_grads(loss_fn, params, b)
        g = jax.tree.map(lambda a: jnp.mean(a, axis=0), g_each)
        return {
            "no clipping": _flat(g),
            "batch clipping": _flat(by_norm.update(g, by_norm.init(params))[0]),
            "per-example clipping": _flat(per_example.update(g_each, per_example.init(params))[0]),
        }, jax.vmap(_flat)(g_each)

    u_bad, each = updates(batch)
    u_good, _ = updates(clean)
    out = {}
    for name in METHODS:
        a, b = u_bad[name], u_good[name]
        out[name] = (jnp.linalg.norm(a - b) / jnp.linalg.norm(b), jnp.linalg.norm(a - b),
                     jnp.vdot(a, b) / (jnp.linalg.norm(a) * jnp.linalg.norm(b)), jnp.linalg.norm(a))
    return jnp.linalg.norm(each, axis=1), out


def outlier_influence(loss_fn: Loss, params: Any, batch: Any, clean_batch: Any, *, batch_clip: float,
                      example_clip: float) -> Influence:
    """What one corrupted example does to the update, with three ways of clipping.

    ``batch`` and ``clean_batch`` differ only in the corrupted example(s). For each method the update
    u is: the mean gradient g = (1/B) Σ_b g_b (``"no clipping"``); g clipped to global norm
    ``batch_clip`` (``"batch clipping"``, ``optax.clip_by_global_norm``); the mean of the examples'
    gradients each clipped to norm ``example_clip``, (1/B) Σ_b g_b min(1, C/‖g_b‖) (``"per-example
    clipping"``, ``optax.contrib.differentially_private_aggregate`` without noise: DP-SGD's
    aggregation, Abadi et al. 2016). Per-example clipping bounds the corrupted example's share of u
    by C/B; batch clipping bounds only ‖u‖, so a dominant example still sets its direction.
    """
    loss_fn = _check_loss(loss_fn)
    batch_clip = real(batch_clip, "batch_clip", low=0.0, low_open=True)
    example_clip = real(example_clip, "example_clip", low=0.0, low_open=True)
    if jax.tree.structure(batch) != jax.tree.structure(clean_batch):
        raise ValueError("clean_batch: expected the same structure as batch (the same examples, uncorrupted)")
    norms, out = _influence(loss_fn, params, batch, clean_batch, jnp.float32(batch_clip), jnp.float32(example_clip))
    out = {name: out[name] for name in METHODS}  # jit returns dicts with sorted keys: back to the order above
    return Influence(
        np.asarray(norms, np.float64),
        {k: float(v[0]) for k, v in out.items()},
        {k: float(v[1]) for k, v in out.items()},
        {k: float(v[2]) for k, v in out.items()},
        {k: float(v[3]) for k, v in out.items()},
    )


class SeedRuns(NamedTuple):
    """``train_seeds``'s record, one row per seed: arrays of shape (n_seeds, steps) unless said otherwise.

    ``loss``: the training loss of each step's batch. ``grad_norm``: the raw global gradient norm.
    ``clipped``: the share of gradient entries the clipping changed at that step (for per-example
    clipping: the share of examples whose gradient was clipped); 0 without clipping.
    ``final``: the ``evaluate`` value of the final parameters, shape (n_seeds,) (NaN without ``evaluate``), or a
    dict of such arrays when ``evaluate`` returns a dict. ``probes``: ``probe(batch)`` at every step, leaves
    (n_seeds, steps, ...) (the same batches for every method; None without ``probe``).
    ``params``: the final parameters, leaves with a leading seed axis. ``seconds``: wall time of the
    compiled program that ran them (compile included; shared by every method run in it).
    """

    loss: np.ndarray
    grad_norm: np.ndarray
    clipped: np.ndarray
    final: Any
    params: Any
    seconds: float
    probes: Any = None

    def summary(self, name: str = "", *, timing: bool = True) -> str:
        """One line: seeds, steps done, wall time (unless ``timing=False``), median final loss and evaluation."""
        n, steps = self.loss.shape
        tail = np.median(self.loss[:, -max(1, steps // 20):], axis=1)
        took = f" in {self.seconds:.1f} s" if timing else ""
        line = f"{name + ': ' if name else ''}{n} seeds x {steps} steps{took}; " \
               f"median training loss over the last {max(1, steps // 20)} steps {np.median(tail):.3g}"
        finals = self.final if isinstance(self.final, dict) else {"evaluation": self.final}
        for k, v in finals.items():
            if np.all(np.isfinite(v)):
                line += f", median final {k} {np.median(v):.3g}"
        bad = int(np.sum(~np.isfinite(self.loss[:, -1])))
        return line + (f"; {bad} seeds ended non-finite" if bad else "")


def _changed(raw: Any, clipped: Any) -> jax.Array:
    a, b = _flat(raw), _flat(clipped)
    return jnp.mean(jnp.abs(a - b) > 1e-6 * jnp.abs(a))


class Method(NamedTuple):
    """One way to train in ``train_seeds``: an optax optimiser and at most one kind of clipping before it.

    ``clip``: a stateless optax clipping transform applied to the batch gradient (``optax.clip(c)``,
    ``optax.clip_by_global_norm(c)``, ``optax.adaptive_grad_clip(λ)``); ``example_clip``: C for DP-SGD's
    per-example clipping (every example's gradient clipped to norm C, then averaged).
    """

    optimizer: optax.GradientTransformation
    clip: optax.GradientTransformation | None = None
    example_clip: float | None = None


def _check_method(name: str, m: Any) -> Method:
    if not isinstance(m, Method):
        raise TypeError(f"methods[{name!r}]: expected gc.clipping.Method(optimizer, clip=None, example_clip=None), "
                        f"got {type(m).__name__}")
    if not isinstance(m.optimizer, optax.GradientTransformation):
        raise TypeError(
            f"methods[{name!r}].optimizer: expected an optax.GradientTransformation, got {type(m.optimizer).__name__}"
        )
    if m.clip is not None and m.example_clip is not None:
        raise ValueError(f"methods[{name!r}]: give one kind of clipping (clip or example_clip), not both")
    if m.clip is not None and not isinstance(m.clip, optax.GradientTransformation):
        raise TypeError(f"methods[{name!r}].clip: expected an optax clipping transformation such as "
                        f"optax.clip_by_global_norm(1.0), got {type(m.clip).__name__}")
    if m.example_clip is not None:
        real(m.example_clip, f"methods[{name!r}].example_clip", low=0.0, low_open=True)
    return m


def train_seeds(
    loss_fn: Loss,
    init: Callable[[jax.Array], tuple[Any, Any]],
    batch: Callable[[Any, jax.Array], Any],
    methods: dict[str, Method],
    steps: int,
    keys: jax.Array,
    *,
    evaluate: Callable[[Any, Any], Any] | None = None,
    probe: Callable[[Any], Any] | None = None,
) -> dict[str, SeedRuns]:
    """Train one model per key with every method, all seeds and methods in one compiled program.

    ``init(key) -> (params, problem)``: the initial parameters and a pytree the data depends on (a
    teacher, a data key...). ``batch(problem, step) -> batch`` (traceable in ``step``).
    ``loss_fn(params, batch)``: the mean loss over the batch. ``methods``: name -> ``Method``.
    ``keys``: shape (n_seeds, 2) (or typed keys), from ``jax.random.split``. For each seed every
    method starts from the same parameters and sees the same batches (a paired comparison). Each
    step: raw gradient g; then the method's ``clip``, or with ``example_clip = C`` DP-SGD's per-example
    clipping and averaging (``optax.contrib.differentially_private_aggregate``, noise multiplier 0);
    then its optimiser. ``evaluate(params, problem)`` (e.g. a test loss) is applied to the final
    parameters (a scalar, or a dict of scalars); ``probe(batch)`` is recorded at every step (e.g. whether the
    batch holds an outlier). Returns name -> ``SeedRuns`` (``seconds`` is the wall time of the whole program).
    ``gc.train.fit`` is the one-run loop with per-layer records and a progress bar; this one trades
    those for many seeds at once (``vmap`` over seeds of one ``lax.scan``), so a claim is checked on all.
    """
    loss_fn = _check_loss(loss_fn)
    steps = positive_int(steps, "steps")
    if not isinstance(methods, dict) or not methods:
        raise TypeError("methods: expected a non-empty dict name -> gc.clipping.Method(optimizer, clip=...)")
    methods = {name: _check_method(name, m) for name, m in methods.items()}
    keys = keys if hasattr(keys, "shape") else jnp.asarray(keys)
    if keys.ndim < 1 or keys.shape[0] < 1:
        raise ValueError(f"keys: expected a stack of PRNG keys (jax.random.split(key, n)), got shape {keys.shape}")
    prng_key(keys[0], "keys[0]")
    names = list(methods)

    def clip_step(m: Method, params: Any, b: Any):
        # (loss, raw gradient, gradient after clipping, share clipped) for one method
        if m.example_clip is None:
            loss, g = jax.value_and_grad(loss_fn)(params, b)
            clip = optax.identity() if m.clip is None else m.clip
            g_used, _ = clip.update(g, clip.init(params), params)
            return loss, g, g_used, _changed(g, g_used)
        aggregate = optax.contrib.differentially_private_aggregate(m.example_clip, 0.0, jax.random.key(0))
        g_each = per_example_grads(loss_fn, params, b)
        g = jax.tree.map(lambda a: jnp.mean(a, axis=0), g_each)
        g_used, _ = aggregate.update(g_each, aggregate.init(params))
        share = jnp.mean(jax.vmap(lambda e: jnp.linalg.norm(_flat(e)))(g_each) > m.example_clip)
        return loss_fn(params, b), g, g_used, share

    def one_seed(key):
        params0, problem = init(key)
        states = tuple((params0, methods[n].optimizer.init(params0)) for n in names)

        def step(states, t):
            b = batch(problem, t)
            new, rec = [], [probe(b) if probe is not None else None]
            for n, (params, opt_state) in zip(names, states, strict=True):
                m = methods[n]
                loss, g, g_used, share = clip_step(m, params, b)
                updates, opt_state = m.optimizer.update(g_used, opt_state, params)
                new.append((optax.apply_updates(params, updates), opt_state))
                rec.append((loss, jnp.linalg.norm(_flat(g)), share))
            return tuple(new), tuple(rec)

        states, (probes, *rec) = jax.lax.scan(step, states, jnp.arange(steps))
        finals = tuple(evaluate(p, problem) if evaluate is not None else jnp.nan for p, _ in states)
        return rec, finals, tuple(p for p, _ in states), probes

    _trim_heap()  # what earlier cells freed but the C heap still holds: not under this compile's peak
    start = time.perf_counter()
    rec, finals, params, probes = jax.block_until_ready(jax.jit(jax.vmap(one_seed))(keys))
    seconds = time.perf_counter() - start
    _trim_heap()  # the compiler's freed scratch goes back to the system
    f64 = functools.partial(np.asarray, dtype=np.float64)
    probes = None if probe is None else jax.tree.map(np.asarray, probes)
    return {n: SeedRuns(f64(rec[i][0]), f64(rec[i][1]), f64(rec[i][2]), jax.tree.map(f64, finals[i]), params[i],
                        seconds, probes) for i, n in enumerate(names)}
