#!/usr/bin/env bash
# Reproducibility and flakiness report for the notebooks (slow: kept out of the default test run).
#
#   bash scripts/check_reproducible.sh [RUNS] [-j WORKERS] [--cache warm|fresh|off] [--report FILE] [NOTEBOOK ...]
#
# Runs the notebooks (default: all of notebooks/) through nbval RUNS times in a row (default 5). nbval
# re-executes every cell, so every assert runs each time, and compares the text output of every cell marked
# `# NBVAL_CHECK_OUTPUT` with the committed output. The report (default benchmarks/reproducibility.md)
# gives per notebook the runs that failed, and per run how many compared cells matched, so "every compared
# text output identical in every run" is read off the table, not assumed.
#
#   -j WORKERS  pytest-xdist workers (`-n WORKERS --dist loadfile`: one notebook per worker at a time)
#   --cache     JAX's persistent compilation cache for these runs, always in a private directory:
#               warm  (default) one cache for all runs: run 1 compiles, runs 2.. load the executables, so
#                     the report also shows that cached executables give the same outputs;
#               fresh a new empty cache for every run (every run compiles everything: slowest);
#               off   GRADCOURSE_JAX_CACHE=0.
#
# Parallel-safe: everything a run writes (JUnit XML, logs, the compilation cache) goes to its own temporary
# directory, the notebooks are never written (nbval does not save), pytest's cache provider is off; two
# copies of this script, or this script and the test suite, can run at the same time. Exit 0 when every run
# of every notebook passed.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

runs=5
workers=""
cache="warm"
report="benchmarks/reproducibility.md"
notebooks=()
while [ $# -gt 0 ]; do
    case "$1" in
        -j) workers="$2"; shift 2 ;;
        --cache) cache="$2"; shift 2 ;;
        --report) report="$2"; shift 2 ;;
        -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
        *.ipynb) notebooks+=("$1"); shift ;;
        *) runs="$1"; shift ;;
    esac
done
case "$cache" in warm|fresh|off) ;; *) echo "--cache: expected warm, fresh or off, got '$cache'" >&2; exit 2 ;; esac
[ ${#notebooks[@]} -gt 0 ] || notebooks=(notebooks)

work="$(mktemp -d "${TMPDIR:-/tmp}/reproducible.XXXXXX")"
trap 'rm -rf "$work"' EXIT
xdist=()
[ -z "$workers" ] || xdist=(-n "$workers" --dist loadfile)

start=$(date +%s)
for i in $(seq 1 "$runs"); do
    case "$cache" in
        warm) export GRADCOURSE_JAX_CACHE_DIR="$work/cache"; unset GRADCOURSE_JAX_CACHE ;;
        fresh) export GRADCOURSE_JAX_CACHE_DIR="$work/cache-$i"; unset GRADCOURSE_JAX_CACHE ;;
        off) export GRADCOURSE_JAX_CACHE=0 ;;
    esac
    t0=$(date +%s)
    python -m pytest "${notebooks[@]}" -q -p no:cacheprovider -rf "${xdist[@]}" \
        --junitxml="$work/run-$i.xml" >"$work/run-$i.log" 2>&1
    echo "== run $i/$runs ($(( $(date +%s) - t0 )) s): $(tail -n 1 "$work/run-$i.log")"
done

REPRO_WORKERS="$workers" python - "$work" "$runs" "$report" "$cache" "$(( $(date +%s) - start ))" "${notebooks[@]}" <<'PY'
import collections, datetime, json, os, re, sys, xml.etree.ElementTree as ET
from pathlib import Path

work, runs, report, cache, seconds, targets = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]), sys.argv[4], int(sys.argv[5]), sys.argv[6:]
failed_runs = collections.defaultdict(set)      # notebook -> runs with any failure
kinds = collections.defaultdict(collections.Counter)  # notebook -> kind of failure -> count
first_message = {}
checked_total = collections.Counter()           # run -> compared cells that passed
notebooks = set()

def checked_cells(nb_path):
    nb = json.loads(Path(nb_path).read_text())
    source = lambda c: c["source"] if isinstance(c["source"], str) else "".join(c["source"])
    return {i for i, c in enumerate(c for c in nb["cells"] if c["cell_type"] == "code")  # nbval's "Cell i"
            if any(line.strip() == "# NBVAL_CHECK_OUTPUT" for line in source(c).splitlines())}

compared = {}
for i in range(1, runs + 1):
    xml = work / f"run-{i}.xml"
    if not xml.exists():
        failed_runs["(pytest did not run)"].add(i)
        continue
    for case in ET.parse(xml).getroot().iter("testcase"):
        classname, name = case.get("classname") or "", case.get("name") or ""
        # nbval's classname is the path with "/" written as ".": notebooks.04_initialization.ipynb
        nb_file = classname.removesuffix(".ipynb").replace(".", "/") + ".ipynb" if classname.endswith(".ipynb") \
            else classname
        notebooks.add(nb_file)
        cell = re.search(r"Cell (\d+)", name)
        bad = case.find("failure") if case.find("failure") is not None else case.find("error")
        if nb_file not in compared and nb_file.endswith(".ipynb") and Path(nb_file).exists():
            compared[nb_file] = checked_cells(nb_file)
        if bad is not None:
            failed_runs[nb_file].add(i)
            text = (bad.get("message") or "") + (bad.text or "")
            kind = "outputs differ" if "Cell outputs differ" in text else "timeout" if "Timeout" in text else "error"
            kinds[nb_file][kind] += 1
            text = re.sub(r"(#x1B|\x1b)\[[0-9;]*m", "", text)  # nbval colours its messages
            first_message.setdefault(nb_file, f"run {i}, {name}: " + " ".join(text.split())[:300])
        elif cell and int(cell.group(1)) in compared.get(nb_file, set()):
            checked_total[i] += 1

n_checked = sum(len(v) for v in compared.values())
ok = not failed_runs and all(checked_total[i] == n_checked for i in range(1, runs + 1))
lines = [
    f"# Notebook reproducibility: {runs} consecutive nbval runs",
    "",
    f"Measured {datetime.datetime.now():%Y-%m-%d %H:%M} by `bash scripts/check_reproducible.sh {runs}"
    + (f" -j {os.environ['REPRO_WORKERS']}" if os.environ.get("REPRO_WORKERS") else "") + f" --cache {cache}` "
    f"in {seconds / 60:.1f} min (load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores); "
    f"compilation cache: {cache}.",
    "",
    f"Cells whose text output is compared (`# NBVAL_CHECK_OUTPUT`): {n_checked}. Compared cells that matched, "
    "per run: " + ", ".join(f"run {i}: {checked_total[i]}/{n_checked}" for i in range(1, runs + 1)) + ".",
    "",
    "| notebook | runs failed | kinds of failure | first failure |",
    "|---|---:|---|---|",
]
for nb in sorted(notebooks | set(failed_runs)):
    kind = ", ".join(f"{k} ×{n}" for k, n in kinds.get(nb, {}).items()) or "—"
    msg = first_message.get(nb, "—").replace("|", "\\|")
    lines.append(f"| {nb} | {len(failed_runs.get(nb, ()))}/{runs} | {kind} | {msg} |")
lines += ["", "**Every run passed and every compared text output was identical to the committed one.**" if ok
          else "**Not reproducible as committed: see the failures above.**"]
report.parent.mkdir(parents=True, exist_ok=True)
report.write_text("\n".join(lines) + "\n")
print("\n".join(lines))
print(f"\nwrote {report}")
sys.exit(0 if ok else 1)
PY
