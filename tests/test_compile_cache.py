"""gradcourse.compile_cache: JAX's persistent compilation cache, one directory per machine fingerprint.

The in-process tests check the pure parts (fingerprint, directory choice, the atomic writer); the
subprocess tests start fresh interpreters, because JAX reads its cache settings once per process.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gradcourse import compile_cache as cc

VERSIONS = "jax 0.10.2, jaxlib 0.10.2"


# ------------------------------------------------------------------------------------------ fingerprint


def test_fingerprint_changes_with_cpu_features_versions_and_architecture():
    base = cc.machine_fingerprint(flags="sse2 avx2 fma", versions=VERSIONS, machine="x86_64")
    assert base == cc.machine_fingerprint(flags="fma avx2 sse2 sse2", versions=VERSIONS, machine="x86_64")
    others = {
        cc.machine_fingerprint(flags="sse2 avx2 fma avx512f", versions=VERSIONS, machine="x86_64"),  # more ISA
        cc.machine_fingerprint(flags="sse2 fma", versions=VERSIONS, machine="x86_64"),  # less ISA
        cc.machine_fingerprint(flags="sse2 avx2 fma", versions="jax 0.10.2, jaxlib 0.10.3", machine="x86_64"),
        cc.machine_fingerprint(flags="sse2 avx2 fma", versions=VERSIONS, machine="aarch64"),
    }
    assert base not in others and len(others) == 4
    assert len(base) == 16 and int(base, 16) >= 0


def test_fingerprint_of_this_machine_uses_its_cpu_flags():
    flags = cc.cpu_flags()
    assert cc.machine_fingerprint() == cc.machine_fingerprint(flags=flags)
    if Path("/proc/cpuinfo").exists():
        assert flags, "Linux reports CPU flags in /proc/cpuinfo"
        assert cc.machine_fingerprint() != cc.machine_fingerprint(flags=flags + " not_a_real_flag")


# ------------------------------------------------------------------------------------------ directory


def test_cache_dir_follows_the_environment(tmp_path):
    fp = "0123456789abcdef"
    assert cc.cache_dir({cc.DIR_ENV: str(tmp_path)}, fingerprint=fp) == tmp_path / fp
    assert cc.cache_dir({"XDG_CACHE_HOME": str(tmp_path)}, fingerprint=fp) == tmp_path / "gradcourse" / "jax" / fp
    assert cc.cache_dir({}, fingerprint=fp) == Path.home() / ".cache" / "gradcourse" / "jax" / fp
    for off in ("0", "off", "False", " no "):
        assert cc.cache_dir({cc.SWITCH_ENV: off, cc.DIR_ENV: str(tmp_path)}) is None
    assert cc.cache_dir({cc.SWITCH_ENV: "1", cc.DIR_ENV: str(tmp_path)}, fingerprint=fp) == tmp_path / fp
    assert cc.cache_dir({cc.DIR_ENV: str(tmp_path)}).name == cc.machine_fingerprint()


def test_atomic_put_writes_whole_entries_once(tmp_path):
    from jax._src import lru_cache

    assert getattr(lru_cache.LRUCache.put, "gradcourse_atomic", False), "enable() installs the atomic writer"
    cache = lru_cache.LRUCache(str(tmp_path), max_size=-1)
    cache.put("k", b"first")
    cache.put("k", b"second")  # JAX's rule: an existing entry is never overwritten
    assert cache.get("k") == b"first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k-cache"], "no temporary file is left behind"


# ------------------------------------------------------------------------------------------ in fresh processes

_PROBE = r"""
import json, sys, warnings
warnings.simplefilter("always")
hits = []
import jax
jax.monitoring.register_event_listener(lambda event, **kw: hits.append(event) if event.endswith("cache_hits") else None)
import jax.numpy as jnp
import gradcourse as gc
f = jax.jit(lambda x: jnp.tanh(x @ x.T).sum() * 3.0)
value = float(f(jnp.arange(12.0).reshape(3, 4) / 10))
d = gc.compile_cache.enabled_dir()
print(json.dumps({"dir": None if d is None else str(d), "value": value, "hits": len(hits)}))
"""


def _probe(tmp_path: Path, **env_overrides: str) -> tuple[dict, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRADCOURSE_JAX", "JAX_COMPILATION"))}
    env.update(env_overrides)
    proc = subprocess.run([sys.executable, "-c", _PROBE], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


def _entries(path: Path) -> list[Path]:
    return [p for p in path.rglob("*-cache") if p.is_file()]


@pytest.fixture(scope="module")
def expected_value() -> float:
    import numpy as np

    x = np.arange(12.0).reshape(3, 4) / 10
    return float(np.tanh(x @ x.T).sum() * 3.0)  # the reference is NumPy's


def test_second_process_loads_what_the_first_compiled(tmp_path, expected_value):
    root = tmp_path / "cache"
    first, _ = _probe(tmp_path, **{cc.DIR_ENV: str(root)})
    assert first["dir"] == str(root / cc.machine_fingerprint())
    written = _entries(root)
    assert written, "the first run writes its compiled programs (even sub-second ones)"
    assert all(p.parent.name == cc.machine_fingerprint() for p in written)
    second, _ = _probe(tmp_path, **{cc.DIR_ENV: str(root)})
    assert second["hits"] >= 1 and first["hits"] == 0
    assert abs(second["value"] - expected_value) < 1e-4 and second["value"] == first["value"]


def test_switched_off_by_environment_variable(tmp_path, expected_value):
    root = tmp_path / "cache"
    out, _ = _probe(tmp_path, **{cc.SWITCH_ENV: "0", cc.DIR_ENV: str(root)})
    assert out["dir"] is None and not root.exists()
    assert abs(out["value"] - expected_value) < 1e-4


def test_unwritable_directory_falls_back_to_no_cache_with_one_warning(tmp_path, expected_value):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")  # mkdir under a file fails even for root
    out, stderr = _probe(tmp_path, **{cc.DIR_ENV: str(blocker / "cache")})
    assert out["dir"] is None
    assert abs(out["value"] - expected_value) < 1e-4
    assert stderr.count("JAX compilation cache switched off") == 1, stderr


def test_cache_from_another_machine_is_ignored_and_a_corrupt_one_only_warns(tmp_path, expected_value):
    root = tmp_path / "cache"
    _probe(tmp_path, **{cc.DIR_ENV: str(root)})
    mine = root / cc.machine_fingerprint()
    # Another machine's directory (other CPU flags): same programs, same JAX keys, never read here.
    other = root / cc.machine_fingerprint(flags=cc.cpu_flags() + " avx512_imaginary")
    mine.rename(other)
    for p in _entries(other):
        p.write_bytes(b"executable for another CPU")
    out, stderr = _probe(tmp_path, **{cc.DIR_ENV: str(root)})
    assert out["hits"] == 0 and "Error reading persistent compilation cache" not in stderr
    assert abs(out["value"] - expected_value) < 1e-4
    # Our own directory, corrupted: JAX warns and recompiles; the result is still right.
    for p in _entries(mine):
        p.write_bytes(b"\x00torn entry")
    out, stderr = _probe(tmp_path, **{cc.DIR_ENV: str(root)})
    assert "Error reading persistent compilation cache" in stderr, "the torn entry was read (and rejected)"
    assert abs(out["value"] - expected_value) < 1e-4


def test_a_cache_configured_by_the_user_is_left_alone(tmp_path):
    mine = tmp_path / "users-own"
    out, _ = _probe(tmp_path, JAX_COMPILATION_CACHE_DIR=str(mine), **{cc.DIR_ENV: str(tmp_path / "ours")})
    assert out["dir"] == str(mine) and not (tmp_path / "ours").exists()
