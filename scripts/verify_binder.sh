#!/usr/bin/env bash
# Replay the mybinder.org (repo2docker) build from binder/ alone in a fresh virtual
# environment and execute notebooks/00_start_here.ipynb in it; also check the pins
# against pyproject.toml and the current environment.  Run from an environment that
# has the test extra installed:  bash scripts/verify_binder.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
set -x
exec python -m pytest tests/test_binder.py -v -s "$@"
