#!/usr/bin/env bash
# Reproducibility and flakiness report for the notebooks (kept out of the default test run: slow).
# Runs every notebook through nbval N times in a row (default 5). nbval compares each run's text
# output with the committed output for every cell marked `# NBVAL_CHECK_OUTPUT`, and every cell's
# asserts run each time, so N green runs mean identical compared outputs and no flaky notebook.
# Usage: bash scripts/check_reproducible.sh [N]   (from the repository root, test extra installed)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
runs="${1:-5}"
declare -A fails
for i in $(seq 1 "$runs"); do
    echo "== run $i/$runs"
    out="$(python -m pytest notebooks -q -p no:cacheprovider -rf 2>&1)"
    echo "$out" | tail -n 1
    while read -r nb; do
        [ -n "$nb" ] && fails["$nb"]=$(( ${fails["$nb"]:-0} + 1 ))
    done < <(echo "$out" | grep -oE '^FAILED notebooks/[^:]+' | sed 's/^FAILED //' | sort -u)
done
echo
echo "notebook                                  failed runs (of $runs)"
status=0
for nb in notebooks/*.ipynb; do
    n="${fails[$nb]:-0}"
    printf '%-42s %s\n' "$nb" "$n"
    [ "$n" -eq 0 ] || status=1
done
exit "$status"
