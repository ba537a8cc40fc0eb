"""Run the benchmarks and every notebook on whatever accelerator JAX sees; write one results file.

    bash benchmarks/gpu.sh [OUTDIR]                       # the prepared entry point (installs carried wheels)
    python benchmarks/gpu.py --out OUTDIR [--notebook-timeout 150] [--skip-bench] [NOTEBOOK ...]

Writes ``OUTDIR/gpu-results.md`` (and ``.json``), rewritten after every step so a run cut short still
leaves what it measured:

* the device (``jax.devices()``, its kind and platform), versions, the matmul precision in force;
* ``benchmarks/run.py --no-write`` (its table: every ratio on this device), with a timeout;
* every notebook executed in a fresh kernel with a per-notebook timeout (``benchmarks/learner.py --one``):
  wall time, kernel CPU time, and for a failure the failing cell, the error and the failing line (the
  ``assert``);
* every failing notebook executed again with ``JAX_DEFAULT_MATMUL_PRECISION=highest``: a notebook that
  fails with the default precision and passes with ``highest`` failed because float32 matrix products on
  the GPU ran in TF32 (10-bit mantissa) -- a tolerance that holds on CPU and not on the GPU, which is a
  finding to record in benchmarks/README.md.

It runs on CPU too (then it checks the script, not a GPU): ``python benchmarks/gpu.py --out /tmp/gpu-check
--skip-bench notebooks/00_start_here.ipynb``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def device_info() -> dict:
    code = ("import json, jax, jaxlib, numpy; d = jax.devices(); print(json.dumps({'devices': [str(x) for x in d], "
            "'kind': d[0].device_kind, 'platform': d[0].platform, 'jax': jax.__version__, "
            "'jaxlib': jaxlib.__version__, 'numpy': numpy.__version__, "
            "'matmul_precision': str(jax.config.jax_default_matmul_precision)}))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip()[-1000:]}
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    info["python"] = platform.python_version()
    try:
        info["nvidia-smi"] = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True,
                                            timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        info["nvidia-smi"] = ""
    return info


def run_benchmarks(timeout: float) -> dict:
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--no-write"],
                              capture_output=True, text=True, timeout=timeout, cwd=ROOT)
        out, status = proc.stdout + proc.stderr, f"exit {proc.returncode}"
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        status = f"timed out after {timeout:.0f} s"
    table = [ln for ln in out.splitlines() if ln.startswith("|")]
    rows = []
    for ln in table[2:]:
        cells = [c.strip() for c in ln.strip("|").split("|")]
        if len(cells) >= 8:
            rows.append({"figure": f"{cells[0]} {cells[1][:100]}", "ratio": cells[4], "target": cells[5],
                         "result": cells[6], "cpu_ratio": cells[7]})
    return {"status": status, "seconds": time.perf_counter() - t0, "table": table, "rows": rows,
            "tail": out[-3000:] if not table else ""}


def run_notebook(nb: Path, timeout: float, extra_env: dict[str, str] | None = None) -> dict:
    env = {**os.environ, **(extra_env or {})}
    cmd = [sys.executable, str(ROOT / "benchmarks" / "learner.py"), "--one", str(nb), "--timeout", str(timeout)]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 60, cwd=ROOT, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout + 60:.0f} s", "wall": time.perf_counter() - t0}
    if proc.returncode != 0:
        return {"error": f"runner exit {proc.returncode}: {proc.stderr.strip()[-600:]}",
                "wall": time.perf_counter() - t0}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


def report(results: dict) -> str:
    info = results.get("device", {})
    lines = [f"# gradcourse on {info.get('kind', '?')} ({info.get('platform', '?')})", "",
             f"Measured {results['started']} by `{results['command']}`; {results.get('seconds', 0):.0f} s so far.", "",
             f"- devices: {info.get('devices')}; nvidia-smi: {info.get('nvidia-smi') or '—'}",
             f"- versions: python {info.get('python')}, jax {info.get('jax')}, jaxlib {info.get('jaxlib')}, "
             f"numpy {info.get('numpy')}",
             f"- default matmul precision: {info.get('matmul_precision')} "
             f"(JAX_DEFAULT_MATMUL_PRECISION={os.environ.get('JAX_DEFAULT_MATMUL_PRECISION', 'unset')})"]
    if "error" in info:
        lines += ["", "JAX failed to start:", "```", info["error"], "```"]
    bench = results.get("bench")
    if bench:
        lines += ["", f"## benchmarks/run.py ({bench['status']}, {bench['seconds']:.0f} s)", "", *bench["table"]]
        if bench.get("tail"):
            lines += ["```", bench["tail"], "```"]
    nbs = results.get("notebooks", {})
    if nbs:
        lines += ["", "## Notebooks", "", "| notebook | wall s | kernel CPU s | result | with precision=highest |",
                  "|---|---:|---:|---|---|"]
        for name, r in nbs.items():
            again = r.get("highest")
            verdict = "—" if again is None else ("passes: a TF32 tolerance finding" if not again.get("error")
                                                 else f"still fails: {again['error']}")
            wall, cpu = r.get("wall", float("nan")), r.get("cpu", float("nan"))
            lines.append(f"| {name} | {wall:.1f} | {cpu:.1f} | {_cell(r.get('error') or 'ok')} | {_cell(verdict)} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/[0-9][0-9]_*.ipynb")
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or ROOT / "benchmarks" / "results"))
    ap.add_argument("--notebook-timeout", type=float, default=150.0, help="seconds per notebook (default 150)")
    ap.add_argument("--bench-timeout", type=float, default=240.0, help="seconds for benchmarks/run.py")
    ap.add_argument("--skip-bench", action="store_true", help="notebooks only")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # one process at a time, but be polite
    notebooks = [p.resolve() for p in args.notebooks] or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    t0 = time.perf_counter()
    results: dict = {"started": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
                     "command": "python benchmarks/gpu.py " + " ".join(argv if argv is not None else sys.argv[1:])}

    def save() -> None:
        results["seconds"] = time.perf_counter() - t0
        (args.out / "gpu-results.json").write_text(json.dumps(results, indent=1, default=str))
        (args.out / "gpu-results.md").write_text(report(results))

    results["device"] = device_info()
    print(json.dumps(results["device"]), flush=True)
    save()
    if not args.skip_bench:
        results["bench"] = run_benchmarks(args.bench_timeout)
        print("\n".join(results["bench"]["table"]) or results["bench"]["tail"], flush=True)
        save()
    results["notebooks"] = {}
    for nb in notebooks:
        r = run_notebook(nb, args.notebook_timeout)
        results["notebooks"][nb.name] = r
        print(f"{nb.name}: {r.get('wall', float('nan')):.1f} s {r.get('error') or 'ok'}", flush=True)
        save()
    paths = {nb.name: nb for nb in notebooks}
    for name, r in results["notebooks"].items():
        if r.get("error") and not re.match(r"timed out|runner exit", r["error"]):
            r["highest"] = run_notebook(paths[name], args.notebook_timeout,
                                        {"JAX_DEFAULT_MATMUL_PRECISION": "highest"})
            print(f"{name} with precision=highest: {r['highest'].get('error') or 'ok'}", flush=True)
            save()
    save()
    print(report(results))
    return 1 if any(r.get("error") for r in results["notebooks"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
