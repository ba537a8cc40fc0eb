#!/usr/bin/env bash
# One prepared GPU check: benchmarks/run.py and every notebook on whatever accelerator JAX sees.
#   bash benchmarks/gpu.sh [OUTDIR]        (default: $OUT, else benchmarks/results)
# Results: OUTDIR/gpu-results.md and .json (see benchmarks/gpu.py).  Extra arguments after OUTDIR go
# to gpu.py (e.g. --skip-bench, --notebook-timeout 120, a list of notebooks).
#
# The packages the course needs beyond what the accelerator machine has (JupyterLab's kernel stack,
# ipywidgets, tqdm, ...) travel as wheels in .whl/ (see benchmarks/README.md, "GPU"): they are installed
# into /tmp/site here.  gradcourse itself runs from this checkout (PYTHONPATH), nothing is built.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUTDIR="${1:-${OUT:-benchmarks/results}}"
shift || true
PY="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1
if compgen -G ".whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi -L 2>/dev/null || echo "(no nvidia-smi)"
"$PY" -c 'import jax; print("JAX", jax.__version__, jax.devices())' || exit 1
missing="$("$PY" - <<'PY'
import importlib.util as u
need = ["nbclient", "nbformat", "ipykernel", "ipywidgets", "IPython", "matplotlib", "optax", "tqdm", "sklearn", "scipy"]
print(" ".join(n for n in need if u.find_spec(n) is None))
PY
)"
[ -z "$missing" ] || echo "missing Python packages (carry them as wheels in .whl/): $missing"
"$PY" benchmarks/gpu.py --out "$OUTDIR" "$@"
