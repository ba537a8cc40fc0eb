"""What ``gc.train.fit``'s per-step recording costs, against a bare jitted optax step.

Run standalone (``python benchmarks/train_overhead.py [wall|cpu]``) or call ``main()``, which returns one row
(a dict) per model: steps/s of the bare loop and of ``fit(..., progress=False)`` (recording
everything), and the relative slowdown (``overhead`` 0.05 = fit takes 5 % longer per step).

The bare loop is the textbook one: ``params, opt_state, loss = step(params, opt_state, batch)``
with ``step`` jitted (value_and_grad -> optimizer.update -> optax.apply_updates), blocked on at
the end. Both loops train the same stacked tanh MLP on one fixed batch with
``optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-3))``. Compilation is left out of
both: the bare loop is warmed up first, and ``fit`` (which runs compiled chunks of
``gc.train.CHUNK`` steps and compiles on its first chunk) is timed from its request for the batch
of step ``2·CHUNK`` to its return. ``fit`` asks for that batch right after it has read the metrics
of chunk 0 (so chunk 0 is done and chunk 1, already queued, starts running): the time covers steps
CHUNK ... n-1, the transfer of the metrics and the building of the History. The bare loop is
timed over as many steps after a warm-up step. Runs are interleaved (bare, fit, bare, fit, ...) and
the best of ``repeats`` is kept, which is robust on a shared machine. ``data`` is a function
``step -> batch`` (the general path of ``fit``; a fixed batch is faster still).
"""
from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import optax

import gradcourse as gc

CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
_clock = time.perf_counter

SIZES = (  # (depth, width, batch, steps): dispatch-bound, small, medium
    (2, 16, 32, 3000),
    (8, 64, 128, 1000),
    (8, 256, 256, 100),
)


def _problem(depth: int, width: int, batch: int):
    kx, kp, kh = jax.random.split(jax.random.PRNGKey(0), 3)
    x = jax.random.normal(kx, (batch, width))
    y = jnp.sin(x[:, 0])
    params = {
        "blocks": gc.mlp_params(kp, depth, width, sigma_w2=1.0, sigma_b2=0.01),
        "head": {"W": jax.random.normal(kh, (width,)) / jnp.sqrt(width), "b": jnp.zeros(())},
    }
    f = gc.dense_layer("tanh")

    def loss_fn(p, b):
        xb, yb = b
        h = jax.lax.scan(lambda h, q: (f(q, h), None), xb, p["blocks"])[0]
        return jnp.mean((h @ p["head"]["W"] + p["head"]["b"] - yb) ** 2)

    return loss_fn, params, jax.device_put((x, y))


def _bare_seconds(step, params, opt_state, batch, steps: int) -> float:
    """Seconds for steps CHUNK ... steps-1 of the bare loop (``step`` already compiled)."""
    params, opt_state, loss = step(params, opt_state, batch)
    loss.block_until_ready()
    t = _clock()
    for _ in range(steps - gc.train.CHUNK):
        params, opt_state, loss = step(params, opt_state, batch)
    loss.block_until_ready()
    return _clock() - t


def _fit_seconds(loss_fn, params, optimizer, batch, steps: int) -> float:
    """Seconds for steps CHUNK ... steps-1 of ``gc.train.fit`` (see the module docstring)."""
    start = []

    def data(i):
        if i == 2 * gc.train.CHUNK:
            start.append(_clock())
        return batch

    gc.train.fit(loss_fn, params, optimizer, data, steps, stacked=("blocks",), progress=False)
    return _clock() - start[0]


def measure(depth: int, width: int, batch: int, steps: int, repeats: int = 3) -> dict:
    """One row: bare vs ``fit`` steps/s on a depth × width tanh MLP (see the module docstring)."""
    loss_fn, params, data = _problem(depth, width, batch)
    optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-3))

    @jax.jit
    def step(params, opt_state, batch):
        loss, grads = jax.value_and_grad(loss_fn)(params, batch)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    opt_state = optimizer.init(params)
    jax.block_until_ready(step(params, opt_state, data))  # compile
    bare, rec = [], []
    for _ in range(repeats):
        bare.append(_bare_seconds(step, params, opt_state, data, steps))
        rec.append(_fit_seconds(loss_fn, params, optimizer, data, steps))
    n = steps - gc.train.CHUNK
    b, r = min(bare), min(rec)
    return {
        "benchmark": "train_overhead",
        "model": f"tanh MLP depth {depth} width {width} batch {batch}, clip_by_global_norm + adam",
        "steps": steps,
        "bare_steps_per_s": n / b,
        "fit_steps_per_s": n / r,
        "overhead": r / b - 1.0,
        "device": jax.devices()[0].device_kind,
    }


def main(repeats: int = 5, clock: str = "wall") -> list[dict]:
    """One row per model in ``SIZES``; ``overhead`` is fit's slowdown relative to the bare loop.

    ``clock="wall"`` times steps/s as a user sees them; ``clock="cpu"`` (``time.process_time``, all
    threads of this process) counts the work done and is steadier on a machine shared with others.
    """
    global _clock
    if clock not in CLOCKS:
        raise ValueError(f"clock: expected 'wall' or 'cpu', got {clock!r}")
    _clock = CLOCKS[clock]
    rows = [measure(d, w, b, s, repeats) for d, w, b, s in SIZES]
    for row in rows:
        row["clock"] = clock
    return rows


if __name__ == "__main__":
    import sys

    for row in main(clock=sys.argv[1] if len(sys.argv) > 1 else "wall"):
        print(
            f"{row['model']} ({row['device']}, {row['clock']} clock): bare {row['bare_steps_per_s']:.0f} steps/s, "
            f"fit {row['fit_steps_per_s']:.0f} steps/s, overhead {100 * row['overhead']:+.1f} %"
        )
