"""Sharded arrays on 8 simulated CPU devices: values equal the one-device values and outputs keep the input shardings.

JAX fixes its device count when it starts, and this test process already runs on one CPU device,
so the checks run in a subprocess started with ``XLA_FLAGS=--xla_force_host_platform_device_count=8``
(``tests/sharding_worker.py``, one process for all checks; data-parallel and model-sharded, with
Explicit and Auto mesh axes, eager and jitted).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).resolve().parent / "sharding_worker.py"
sys.path.insert(0, str(WORKER.parent))
from sharding_worker import CHECKS  # noqa: E402  (only the names; jax is not re-initialised by importing)


@pytest.fixture(scope="module")
def results() -> dict[str, str]:
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, str(WORKER)], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("check", list(CHECKS))
def test_on_eight_devices(results, check):
    assert results[check] == "ok", results[check]
