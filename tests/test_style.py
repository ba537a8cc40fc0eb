"""The repository is ruff-clean: `ruff check .` with the configuration in pyproject.toml (line length 120;
pyflakes, pycodestyle, isort, bugbear, pyupgrade; notebooks included)."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def _ruff() -> list[str]:
    try:
        import ruff  # noqa: F401  (the PyPI package ships the binary and a `python -m ruff` entry point)
    except ImportError:
        exe = shutil.which("ruff")
        if exe is None:
            pytest.skip("ruff is not installed (pip install -e '.[test]')")
        return [exe]
    return [sys.executable, "-m", "ruff"]


def test_ruff_check_is_clean():
    proc = subprocess.run([*_ruff(), "check", "--output-format", "concise", "."], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"ruff check . found problems (`ruff check --fix` fixes some):\n{proc.stdout[-6000:]}"
