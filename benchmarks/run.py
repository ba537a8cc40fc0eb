"""Measure gradcourse's overheads against plain JAX / optax baselines and write benchmarks/README.md.

    python benchmarks/run.py            # all figures, rewrites the table in benchmarks/README.md
    python benchmarks/run.py --quick    # fewer repeats, a smoke test (still writes unless --no-write)
    python benchmarks/run.py --full     # also compiles the 1000-layer unrolled model (slow)

Every figure is a ratio to a baseline measured in the same run. Candidate and baseline are timed
alternately (A B, B A, ...) so that a change in machine load hits both; each reported time is the
median of the repeats after a warm-up, and the ratio is the median over rounds of the side-by-side
ratios. Wall-clock and CPU time (``time.process_time``) are both recorded. Section 4 (training-loop
recording overhead) is a self-contained function, ``bench_train_overhead``: extend it there.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing
# Figure 3 measures compilation: gradcourse's persistent compilation cache (on by default) would serve
# the compiled programs from disk and hide exactly that, so the benchmarks run without it.
os.environ.setdefault("GRADCOURSE_JAX_CACHE", "0")
import gradcourse as gc  # noqa: E402

README = Path(__file__).resolve().parent / "README.md"
START, END = "<!-- BENCHMARK-RESULTS:START -->", "<!-- BENCHMARK-RESULTS:END -->"


# --------------------------------------------------------------------------- timing helpers


def _block(out: Any) -> Any:
    return jax.block_until_ready(out)


class T(NamedTuple):
    """One timing: wall-clock seconds and CPU seconds of this process (all its threads)."""

    wall: float
    cpu: float


def timed(fn: Callable[[], Any]) -> T:
    """Wall and CPU seconds of fn() including block_until_ready on its result."""
    w, c = time.perf_counter(), time.process_time()
    _block(fn())
    return T(time.perf_counter() - w, time.process_time() - c)


def interleaved(fns: dict[str, Callable[[], Any]], repeats: int, warmup: int = 1) -> dict[str, list[T]]:
    """Time each fn ``repeats`` times, alternating between them (order reversed every other round)."""
    names = list(fns)
    for _ in range(warmup):
        for n in names:
            _block(fns[n]())
    times: dict[str, list[T]] = {n: [] for n in names}
    for r in range(repeats):
        for n in names if r % 2 == 0 else names[::-1]:
            times[n].append(timed(fns[n]))
    return times


def med(ts: list[T]) -> T:
    """Median wall time and median CPU time (each on its own)."""
    return T(statistics.median(t.wall for t in ts), statistics.median(t.cpu for t in ts))


@dataclass
class Row:
    """One line of the results table: candidate / baseline medians, their ratio and the target."""

    number: str
    figure: str
    measured: T
    baseline: T
    target: float | None
    n: int = 0
    pairs: tuple[list[T], list[T]] | None = None  # (candidate, baseline) samples taken side by side
    busy: bool = False  # set by main() when the load average exceeded the core count
    wall_only: bool = False  # a figure about using more cores: only the wall clock can show it

    def _ratio(self, kind: str) -> float:
        """Median of the side-by-side ratios when paired samples exist (robust to load drift), else
        the ratio of the medians."""
        if self.pairs and len(self.pairs[0]) == len(self.pairs[1]) > 1:
            return statistics.median(getattr(a, kind) / getattr(b, kind) for a, b in zip(*self.pairs, strict=True))
        return getattr(self.measured, kind) / getattr(self.baseline, kind)

    @property
    def ratio(self) -> float:
        return self._ratio("wall")

    @property
    def cpu_ratio(self) -> float:
        return self._ratio("cpu")

    @property
    def result(self) -> str:
        if self.target is None:
            return "info"
        wall, cpu = self.ratio <= self.target, self.cpu_ratio <= self.target
        if self.wall_only:
            return ("PASS" if wall else "FAIL") + (" (busy machine: rerun idle)" if self.busy and not wall else "")
        if self.busy and wall != cpu:  # a loaded machine: the two clocks disagree, say so
            if cpu:
                return "PASS by CPU time, FAIL by wall (busy machine: rerun idle)"
            return "FAIL by CPU time, PASS by wall"
        return "PASS" if wall else "FAIL"


def fmt_time(s: float) -> str:
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.1f} ms"
    return f"{s * 1e6:.0f} µs"


# --------------------------------------------------------------------------- shared models


def stacked_output(f: Callable, params: Any, x: jax.Array) -> jax.Array:
    """h_L by a plain lax.scan (the baseline's forward pass, independent of gradcourse)."""
    return jax.lax.scan(lambda h, p: (f(p, h), None), x, params)[0]


def mean_square(h: jax.Array) -> jax.Array:
    return jnp.mean(jnp.square(h))


# --------------------------------------------------------------------------- 1. per-layer gradient norms


def bench_layer_norms(repeats: int) -> list[Row]:
    depth, width, batch = 32, 512, 256
    model = gc.mlp(jax.random.PRNGKey(0), depth, width, "tanh", sigma_w2=1.0, sigma_b2=0.05)
    x = jax.random.normal(jax.random.PRNGKey(1), (batch, width))

    def loss(p):
        return mean_square(stacked_output(model.f, p, x))

    per_layer = jax.jit(lambda p: gc.layer_norms(jax.grad(loss)(p), stacked=True))
    global_ = jax.jit(lambda p: optax.global_norm(jax.grad(loss)(p)))
    t = interleaved({"layer_norms": lambda: per_layer(model.params), "global": lambda: global_(model.params)}, repeats)
    return [
        Row(
            "1", f"`gc.layer_norms(jax.grad(loss)(p), stacked=True)` vs `optax.global_norm(jax.grad(loss)(p))`, "
            f"both jitted; stacked tanh MLP depth {depth}, width {width}, batch {batch}, loss = mean h_L²",
            med(t["layer_norms"]), med(t["global"]), 1.10, n=repeats, pairs=(t["layer_norms"], t["global"]),
        )
    ]


# --------------------------------------------------------------------------- 2. backward signal vs jax.grad


def bench_backward(repeats: int) -> list[Row]:
    depth, width, batch = 32, 512, 256
    model = gc.mlp(jax.random.PRNGKey(0), depth, width, "tanh", sigma_w2=1.0, sigma_b2=0.05)
    x = jax.random.normal(jax.random.PRNGKey(1), (batch, width))
    f = model.f
    # params are jit *arguments* on both sides: closing over them would embed 32 MiB of weights in
    # the compiled program as constants (a JAX compile-time cost, see section 3), not what we measure.
    signal = jax.jit(lambda p, x: gc.backward(gc.Stacked(f, p), x, mean_square))
    grad = jax.jit(lambda p, x: jax.grad(lambda p: mean_square(stacked_output(f, p, x)))(p))
    t = interleaved({"backward": lambda: signal(model.params, x), "grad": lambda: grad(model.params, x)}, repeats)
    return [
        Row(
            "2", f"`gc.backward(model, x, loss)` (∂loss/∂h_l for all l = 0…{depth}) vs `jax.grad(loss)` w.r.t. the "
            "params (what a training step computes), both jitted; same model as 1",
            med(t["backward"]), med(t["grad"]), 1.3, n=repeats, pairs=(t["backward"], t["grad"]),
        )
    ]


# --------------------------------------------------------------------------- 3. compile + first run vs depth


def _first_call(make: Callable[[], Callable], args: tuple) -> T:
    """Time from a fresh ``jax.jit`` to block_until_ready of its first result (caches cleared first)."""
    jax.clear_caches()
    return timed(lambda: make()(*args))


def bench_compile(repeats: int, unrolled_depths: tuple[int, ...], unrolled_repeats: int,
                  closure_repeats: int) -> list[Row]:
    width, batch = 128, 16
    f = gc.dense_layer("tanh")
    x = jax.random.normal(jax.random.PRNGKey(1), (batch, width))
    params = {L: gc.mlp_params(jax.random.PRNGKey(0), L, width, 1.0, 0.05)
              for L in sorted({10, 1000, *unrolled_depths})}
    _block(params)

    def stacked_args(L):  # params as jit arguments: the program does not depend on their values
        return lambda: jax.jit(lambda p, x: gc.backward(gc.Stacked(f, p), x, mean_square)), (params[L], x)

    def stacked_closure(L):  # the model closed over: JAX embeds its weights in the program as constants
        model = gc.Stacked(f, params[L])
        return lambda: jax.jit(lambda x: gc.backward(model, x, mean_square)), (x,)

    def unrolled(L):  # a Python list of L layer closures, traced layer by layer (params as arguments)
        per_layer = [jax.tree_util.tree_map(lambda a, i=i: a[i], params[L]) for i in range(L)]

        def make():
            return jax.jit(lambda ps, x: gc.backward([lambda h, p=p: f(p, h) for p in ps], x, mean_square))

        return make, (per_layer, x)

    def run(kind, L, n):
        make, args = kind(L)
        return [_first_call(make, args) for _ in range(n)]

    t10, t1000 = [], []
    for r in range(repeats):  # alternate depths
        for L in ((10, 1000) if r % 2 == 0 else (1000, 10)):
            (t10 if L == 10 else t1000).extend(run(stacked_args, L, 1))
    rows = [
        Row(
            "3", f"compile + first run of jitted `gc.backward` on a **stacked** tanh MLP (width {width}, "
            f"batch {batch}, "
            "params passed as jit arguments): 1000 layers vs 10 layers (baseline)",
            med(t1000), med(t10), 1.5, n=repeats, pairs=(t1000, t10),
        )
    ]
    c10, c1000 = [], []
    for _ in range(closure_repeats):
        c10 += run(stacked_closure, 10, 1)
        c1000 += run(stacked_closure, 1000, 1)
    rows.append(
        Row(
            "3b", "the same, written `jax.jit(lambda x: gc.backward(model, x, loss))` (weights closed over: JAX "
            "embeds 1000×128×128 floats = 62.5 MiB as constants in the program)",
            med(c1000), med(c10), None, n=closure_repeats, pairs=(c1000, c10),
        )
    )
    un, reps = {}, {}
    for L in unrolled_depths:
        reps[L] = unrolled_repeats if L <= 100 else 1  # deep unrolled compiles are slow: once
        un[L] = med(run(unrolled, L, reps[L]))
    for L in sorted(un):
        rows.append(
            Row("3u", f"unrolled alternative: a list of {L} layer closures `[lambda h, p=p: f(p, h) ...]` through "
                "jitted `gc.backward`, compile + first run, vs stacked 10 layers", un[L], med(t10), None, n=reps[L])
        )
    if 1000 not in un:
        Ls = np.array(sorted(un))
        fit_w = np.polyfit(Ls, [un[L].wall for L in Ls], 1)
        fit_c = np.polyfit(Ls, [un[L].cpu for L in Ls], 1)
        est = T(float(np.polyval(fit_w, 1000)), float(np.polyval(fit_c, 1000)))
        rows.append(
            Row("3u", f"unrolled, 1000 layers: **extrapolated**, not measured (straight line through "
                f"{', '.join(map(str, Ls))} layers: {fmt_time(fit_w[0])} per layer); `--full` measures it",
                est, med(t10), None)
        )
    return rows


# --------------------------------------------------------------------------- 4. training-loop recording overhead


def bench_train_overhead(repeats: int) -> list[Row]:
    """HOOK (section 4): steps/s of ``gc.train.fit`` with recording vs a bare jitted optax step.

    Target: recording costs ≤ 10 % of steps/s. Returns [] when ``gradcourse.train`` (or its ``fit``)
    is missing. ``fit`` builds and compiles its step afresh on every call, so its steady-state
    time per step is read from the clock stamps its callback takes as each compiled chunk's metrics
    arrive (after the first 20 steps, to the last), which leaves compilation out; the fixed cost is
    the call's time minus its steps at that rate. The bare loop builds
    a fresh jitted step each run too: its first step (compile) and the n − 1 after it are timed
    separately. Both train on one fixed batch (full-batch training, fit's ``data=batch`` form).
    """
    try:
        fit = gc.train.fit
    except (ImportError, AttributeError):
        return []
    depth, width, batch, n1, n = 16, 128, 128, 10, 300
    kx, kp, kh = jax.random.split(jax.random.PRNGKey(0), 3)
    x = jax.random.normal(kx, (batch, width))
    y = jnp.sin(x[:, 0])
    params = {"blocks": gc.mlp_params(kp, depth, width, 1.0, 0.05),
              "head": jax.random.normal(kh, (width,)) / width**0.5}
    f = gc.dense_layer("tanh")

    def loss_fn(p, b):
        xb, yb = b
        return jnp.mean((stacked_output(f, p["blocks"], xb) @ p["head"] - yb) ** 2)

    opt = optax.adam(1e-3)
    data = jax.device_put((x, y))

    def now() -> T:
        return T(time.perf_counter(), time.process_time())

    def since(t: T) -> T:
        e = now()
        return T(e.wall - t.wall, e.cpu - t.cpu)

    def bare() -> tuple[T, T]:
        """The textbook loop with a freshly built jitted step: (time per step, compile + first step)."""

        @jax.jit
        def step(p, s, b):
            loss, g = jax.value_and_grad(loss_fn)(p, b)
            u, s = opt.update(g, s, p)
            return optax.apply_updates(p, u), s, loss

        t0 = now()
        p, s = params, opt.init(params)
        p, s, loss = step(p, s, data)
        _block(loss)
        first = since(t0)
        t1 = now()
        for _ in range(n - 1):
            p, s, loss = step(p, s, data)
        _block(loss)
        rest = since(t1)
        return T(rest.wall / (n - 1), rest.cpu / (n - 1)), first

    def fitted(record: bool) -> tuple[T, T]:
        """fit's (time per step, fixed cost per call). The time per step is read inside one call: fit's
        callback (every 10 steps, i.e. once per compiled chunk) stamps the clocks as each chunk's metrics
        reach the host, and the steady state is the time between the stamp after the first 20 steps and
        the last stamp, divided by the steps in between -- compilation and the first chunks are outside
        it, so neither compile time nor its variance under load enters the ratio. The fixed cost is the
        call's total time minus n1 + n steps at that rate."""
        stamps: list[tuple[int, T]] = []

        def on_chunk(step: int, metrics: dict[str, Any]) -> None:
            stamps.append((step, now()))

        t = timed(lambda: fit(loss_fn, params, opt, data, n1 + n, stacked=("blocks",), progress=False,
                              record=record, callback=on_chunk, callback_every=10).params)
        (s0, a), (s1, b) = next(x for x in stamps if x[0] >= 2 * n1 - 1), stamps[-1]
        per = T((b.wall - a.wall) / (s1 - s0), (b.cpu - a.cpu) / (s1 - s0))
        return per, T(t.wall - (n1 + n) * per.wall, t.cpu - (n1 + n) * per.cpu)

    order = [("bare", bare), ("rec", lambda: fitted(True)), ("norec", lambda: fitted(False))]
    runs: dict[str, list[tuple[T, T]]] = {name: [] for name, _ in order}
    for r in range(repeats):
        for name, fn in order if r % 2 == 0 else order[::-1]:
            runs[name].append(fn())
    samples = {k: [a for a, _ in v] for k, v in runs.items()}
    per = {k: med(v) for k, v in samples.items()}
    fixed = {k: med([b for _, b in runs[k]]) for k in runs}
    model = f"tanh MLP depth {depth}, width {width}, batch {batch}, adam"
    return [
        Row("4", "time per step of `gc.train.fit(..., record=True)` (per-layer grad norms and update ratios) "
            "vs a bare "
            f"jitted optax step (`value_and_grad` → `update` → `apply_updates`); {model}; i.e. "
            f"{1 / per['rec'].wall:.0f} vs {1 / per['bare'].wall:.0f} steps/s. Fixed cost per call (trace, compile, "
            f"first step): fit {fmt_time(fixed['rec'].wall)}, bare loop {fmt_time(fixed['bare'].wall)}",
            per["rec"], per["bare"], 1.10, n=repeats, pairs=(samples["rec"], samples["bare"])),
        Row("4b", f"the same with `record=False`: {1 / per['norec'].wall:.0f} steps/s; fixed cost "
            f"{fmt_time(fixed['norec'].wall)}", per["norec"], per["bare"], None, n=repeats,
            pairs=(samples["norec"], samples["bare"])),
    ]


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity), else the machine's count."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def bench_fit_many_workers(repeats: int) -> list[Row]:
    """Section 4c: ``gc.train.fit_many(..., workers=2)`` against ``workers=1``, time per training step.

    Notebook 10's set-up: 6 runs of the 6-block Pre-LN transformer (d_model 32, 4 heads, 10 tokens,
    batch 32), Adam. ``fit_many`` traces and compiles afresh on every call, so the time per step is
    (T(130 steps) − T(10 steps)) / 120 from two calls timed side by side, which leaves the fixed cost
    (trace, compile, first chunk) out; it is shown beside. The work is the same (the CPU-time ratio
    stays near 1); the wall clock falls when a second core runs the second group. Target ≤ 0.75×
    with 2 or more usable cores; on one core the figure is information only.
    """
    from gradcourse.models import transformer as tf

    cfg = tf.Config(vocab=11, d_model=32, n_heads=4, n_layers=6, seq_len=10, d_ff=32, norm="pre")
    runs, short, long = 6, 10, 130
    params = jax.vmap(lambda k: tf.init(k, cfg))(jax.random.split(jax.random.PRNGKey(0), runs))
    tokens = gc.data.sequence_task(jax.random.PRNGKey(1), long * 32, length=5, n_symbols=10)
    data = tuple(np.asarray(x).reshape(long, 32, 10) for x in tokens)
    opt = optax.adam(1e-2)

    def call(workers: int, steps: int) -> Callable[[], Any]:
        return lambda: gc.train.fit_many(lambda p, b: tf.loss(p, cfg, b), params, opt,
                                         lambda t: tuple(x[t] for x in data), steps, stacked=("blocks",),
                                         progress=False, workers=workers).params

    times = interleaved({(w, n): call(w, n) for w in (2, 1) for n in (long, short)}, repeats)
    per = {w: [T((a.wall - b.wall) / (long - short), (a.cpu - b.cpu) / (long - short))
               for a, b in zip(times[w, long], times[w, short], strict=True)] for w in (2, 1)}
    fixed = {w: med(times[w, short]).wall - short * med(per[w]).wall for w in (2, 1)}
    cores = usable_cores()
    return [Row("4c", f"time per step of `gc.train.fit_many(..., workers=2)` vs `workers=1` (the same {runs} runs: "
                f"two groups of 3 on two threads vs one group of 6), Adam on notebook 10's 6-block Pre-LN "
                f"transformer (d_model 32, batch 32); fixed cost per call (trace, compile, first chunk) "
                f"{fmt_time(fixed[2])} vs {fmt_time(fixed[1])}; {cores} usable cores"
                + ("" if cores >= 2 else " (one core: information only)"),
                med(per[2]), med(per[1]), 0.75 if cores >= 2 else None, n=repeats,
                pairs=(per[2], per[1]), wall_only=True)]


# --------------------------------------------------------------------------- report


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            m = re.search(r"^model name\s*:\s*(.+)$", fh.read(), re.M)
            cpu = m.group(1).strip() if m else cpu
    except OSError:
        pass
    cores = os.cpu_count()
    usable = usable_cores()
    import jaxlib

    return {
        "CPU": f"{cpu}, {cores} logical cores ({usable} usable by this process)",
        "OS": platform.platform(),
        "versions": f"python {platform.python_version()}, jax {jax.__version__}, jaxlib {jaxlib.__version__}, "
        f"optax {optax.__version__}, numpy {np.__version__}, gradcourse {gc.__version__}",
        "JAX backend": f"{jax.default_backend()} ({len(jax.devices())} device)",
    }


def table(rows: list[Row], info: dict[str, str], load: tuple, load_after: tuple, seconds: float, argv: str) -> str:
    lines = [
        f"Measured {_dt.datetime.now().strftime('%Y-%m-%d %H:%M')} by `python benchmarks/run.py{argv}` "
        f"in {seconds:.0f} s.",
        "",
        *(f"- **{k}**: {v}" for k, v in info.items()),
        f"- **load average** (1 min) before / after: {load[0]:.2f} / {load_after[0]:.2f} on "
        f"{os.cpu_count()} cores" + (
            " — **the machine was busy: wall times are inflated and noisy; the CPU-time ratio (CPU seconds this "
            "process used, which waiting for a core does not inflate) is the steadier figure**"
            if max(load[0], load_after[0]) > (os.cpu_count() or 1) else ""),
        "",
        "| # | figure | measured | baseline | ratio | target | result | CPU-time ratio |",
        "|---|---|---:|---:|---:|---:|:---:|---:|",
    ]
    for r in rows:
        target = f"≤ {r.target:.2f}×" if r.target is not None else "—"
        reps = f" (median of {r.n})" if r.n > 1 else ""
        lines.append(
            f"| {r.number} | {r.figure}{reps} | {fmt_time(r.measured.wall)} | {fmt_time(r.baseline.wall)} "
            f"| {r.ratio:.2f}× | {target} | {r.result} | {r.cpu_ratio:.2f}× |"
        )
    return "\n".join(lines)


def write_readme(block: str) -> None:
    text = README.read_text() if README.exists() else "# Benchmarks\n"
    new = f"{START}\n{block}\n{END}"
    if START in text and END in text:
        text = re.sub(re.escape(START) + r".*?" + re.escape(END), lambda _: new, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n## Results\n\n" + new + "\n"
    README.write_text(text)


def main(argv: list[str] | None = None) -> list[Row]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats (a smoke test)")
    ap.add_argument("--full", action="store_true", help="also compile the 1000-layer unrolled model")
    ap.add_argument("--no-write", action="store_true", help="print the table, leave README.md alone")
    args = ap.parse_args(argv)
    reps = 3 if args.quick else 11
    t0, load = time.perf_counter(), os.getloadavg()
    rows: list[Row] = []
    sections = [
        ("1 per-layer gradient norms", lambda: bench_layer_norms(reps)),
        ("2 backward signal", lambda: bench_backward(reps)),
        ("3 compile vs depth", lambda: bench_compile(
            3 if args.quick else 7, (10, 100, 300, 1000) if args.full else (10, 100, 300),
            1 if args.quick else 3, 1 if args.quick else 2)),
        ("4 training-loop recording", lambda: bench_train_overhead(3 if args.quick else 5)),
        ("4c fit_many on several cores", lambda: bench_fit_many_workers(2 if args.quick else 3)),
        ("5 your own model", lambda: __import__("own_model").bench_own_model(3 if args.quick else 7)),
    ]
    for name, bench in sections:
        ts = time.perf_counter()
        new = bench()
        rows += new
        for r in new:
            r.busy = max(load[0], os.getloadavg()[0]) > (os.cpu_count() or 1)
            print(f"[{r.number}] {fmt_time(r.measured.wall)} vs {fmt_time(r.baseline.wall)} = {r.ratio:.2f}x "
                  f"{r.result} "
                  f"(CPU time {r.cpu_ratio:.2f}x)", flush=True)
        print(f"    ({name}: {time.perf_counter() - ts:.0f} s)", flush=True)
    busy = max(load[0], os.getloadavg()[0]) > (os.cpu_count() or 1)
    for r in rows:
        r.busy = busy
    flags = "".join(f" --{k.replace('_', '-')}" for k in ("quick", "full") if getattr(args, k))
    block = table(rows, machine(), load, os.getloadavg(), time.perf_counter() - t0, flags)
    print(block)
    if not args.no_write:
        write_readme(block)
    return rows


if __name__ == "__main__":
    main()
