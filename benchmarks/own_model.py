"""Section 5 of ``benchmarks/run.py``: gradcourse on your own model (``capture``, ``step_metrics``, ``health_report``).

    python benchmarks/own_model.py          # this section alone, prints its rows (run.py writes the table)

* 5a / 5b: ``gc.capture`` with gradients at every block, jitted, vs a jitted ``jax.grad`` of the same loss
  w.r.t. the parameters (what a training step computes): a 12-block Pre-LN transformer in plain JAX (one
  ``gc.tap`` per block in a ``lax.scan`` body) and a 32-layer Equinox MLP (every ``Linear`` captured
  through ``model=``, ``eqx.filter_jit``). Target ≤ 1.15×.
* 5c: a jitted optax step that also returns ``gc.train.step_metrics(grads, params, updates)`` vs the bare
  step (same transformer). Target ≤ 1.05×.
* 5d: ``gc.health_report`` on the 12-block transformer after a first (compiling) call, against the
  budget of 3 s (ratio = time / 3 s, target ≤ 1).
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from run import Row, T, interleaved, med, timed  # noqa: E402

import gradcourse as gc  # noqa: E402

DEPTH, D, SEQ, BATCH = 12, 64, 32, 8


def transformer_params(key: jax.Array, depth: int = DEPTH, d: int = D) -> dict[str, jax.Array]:
    ks = jax.random.split(key, 4)
    return {
        "qkv": jax.random.normal(ks[0], (depth, d, 3 * d)) / math.sqrt(d),
        "o": jax.random.normal(ks[1], (depth, d, d)) / math.sqrt(d),
        "up": jax.random.normal(ks[2], (depth, d, 4 * d)) / math.sqrt(d),
        "down": jax.random.normal(ks[3], (depth, 4 * d, d)) / math.sqrt(4 * d),
    }


def _ln(h: jax.Array) -> jax.Array:
    return (h - h.mean(-1, keepdims=True)) / jnp.sqrt(h.var(-1, keepdims=True) + 1e-5)


def _block(h: jax.Array, p: dict[str, jax.Array]) -> tuple[jax.Array, None]:
    d = h.shape[-1]
    q, k, v = jnp.split(_ln(h) @ p["qkv"], 3, axis=-1)
    a = jax.nn.softmax(q @ k.swapaxes(-1, -2) / math.sqrt(d), axis=-1)
    h = h + (a @ v) @ p["o"]
    h = h + jax.nn.gelu(_ln(h) @ p["up"]) @ p["down"]
    return gc.tap(h, "block"), None


def transformer_loss(params: dict[str, jax.Array], x: jax.Array) -> jax.Array:
    """A 12-block Pre-LN transformer (one head) with a tap at every block output; loss = mean of the final LN²·c."""
    h, _ = jax.lax.scan(_block, x, params)
    return jnp.mean(_ln(h) ** 2 * jnp.linspace(0.0, 1.0, h.shape[-1]))


class MLP(eqx.Module):
    layers: list

    def __init__(self, key: jax.Array, depth: int = 32, width: int = 256):
        self.layers = [eqx.nn.Linear(width, width, key=k) for k in jax.random.split(key, depth)]

    def __call__(self, x: jax.Array) -> jax.Array:
        for layer in self.layers:
            x = jnp.tanh(layer(x))
        return x


def bench_own_model(repeats: int) -> list[Row]:
    rows = []
    params = transformer_params(jax.random.PRNGKey(0))
    x = jax.random.normal(jax.random.PRNGKey(1), (BATCH, SEQ, D))

    cap = jax.jit(lambda p, x: gc.capture(transformer_loss, p, x).grads)
    grad = jax.jit(jax.grad(transformer_loss))
    t = interleaved({"capture": lambda: cap(params, x), "grad": lambda: grad(params, x)}, repeats)
    rows.append(Row(
        "5a", f"`gc.capture(loss, p, x)`: ∂L/∂h at all {DEPTH} blocks (a `gc.tap` per block in a `lax.scan` body) vs "
        f"`jax.grad(loss)` w.r.t. the params, both jitted; Pre-LN transformer, d = {D}, {SEQ} tokens, batch {BATCH}",
        med(t["capture"]), med(t["grad"]), 1.15, n=repeats, pairs=(t["capture"], t["grad"]),
    ))

    mlp = MLP(jax.random.PRNGKey(2))
    xm = jax.random.normal(jax.random.PRNGKey(3), (64, 256))
    mse = lambda m, x: jnp.mean(jax.vmap(m)(x) ** 2)
    cap_m = eqx.filter_jit(lambda m, x: gc.capture(mse, m, x, model=m).grads)
    grad_m = eqx.filter_jit(eqx.filter_grad(mse))
    t = interleaved({"capture": lambda: cap_m(mlp, xm), "grad": lambda: grad_m(mlp, xm)}, repeats)
    rows.append(Row(
        "5b", "`gc.capture(loss, model, x, model=model)`: ∂L/∂h at every `Linear` of a 32-layer Equinox tanh MLP "
        "(width 256, batch 64, `jax.vmap(model)`) vs `eqx.filter_grad(loss)`, both `eqx.filter_jit`",
        med(t["capture"]), med(t["grad"]), 1.15, n=repeats, pairs=(t["capture"], t["grad"]),
    ))

    opt = optax.adam(1e-3)
    state = opt.init(params)

    def bare(p, s, x):
        g = jax.grad(transformer_loss)(p, x)
        u, s = opt.update(g, s, p)
        return optax.apply_updates(p, u), s

    def logged(p, s, x):
        g = jax.grad(transformer_loss)(p, x)
        u, s = opt.update(g, s, p)
        return optax.apply_updates(p, u), s, gc.train.step_metrics(g, p, u, stacked=True)

    bare_j, logged_j = jax.jit(bare), jax.jit(logged)
    xb = jax.random.normal(jax.random.PRNGKey(4), (32, SEQ, D))  # a training batch of 32 sequences
    t = interleaved({"logged": lambda: logged_j(params, state, xb), "bare": lambda: bare_j(params, state, xb)},
                    repeats * 2)
    rows.append(Row(
        "5c", "a jitted adam step that also returns `gc.train.step_metrics(grads, params, updates, stacked=True)` "
        f"({DEPTH} × 4 leaves: norms, ratios, non-finite count) vs the bare step; the transformer of 5a, batch 32",
        med(t["logged"]), med(t["bare"]), 1.05, n=repeats * 2, pairs=(t["logged"], t["bare"]),
    ))

    report = lambda: gc.health_report(transformer_loss, params, x)
    report()  # compile
    times = [timed(report) for _ in range(max(3, repeats // 2))]
    budget = T(3.0, 3.0)
    rows.append(Row(
        "5d", f"`gc.health_report(loss, params, x)` on the {DEPTH}-block transformer after a first (compiling) call, "
        "vs the budget of 3 s (ratio = time / 3 s)",
        med(times), budget, 1.0, n=len(times),
    ))
    return rows


if __name__ == "__main__":
    from run import fmt_time

    for r in bench_own_model(int(sys.argv[1]) if len(sys.argv) > 1 else 5):
        print(f"[{r.number}] {fmt_time(r.measured.wall)} vs {fmt_time(r.baseline.wall)} = {r.ratio:.2f}x {r.result} "
              f"(CPU {r.cpu_ratio:.2f}x)")
