"""JAX's persistent compilation cache, set up for the course (infrastructure: no maths, no layer of its own).

About 70 % of a course notebook's run time is XLA compiling its jitted programs. JAX can keep every
compiled executable on disk and load it the next time the same program is compiled; importing
``gradcourse`` switches that on (:func:`enable`), so the second run of a notebook, in any kernel, skips
most of the compiling. Nothing changes in the notebooks: with the cache missing, stale, unwritable or
switched off they compile as before.

**What JAX keys an entry on** (``jax/_src/cache_key.py``, jax 0.10.2): a SHA-256 of the program's MLIR
bytecode (debug info stripped), the jaxlib version, the backend's platform name and version (``"cpu"``
and ``"cpu"`` on the CPU backend), ``XLA_FLAGS`` / ``LIBTPU_INIT_ARGS`` and ``--xla*`` arguments, the
serialised compile options, the device topology's fingerprint, the compression algorithm and a custom
hook. **Nothing in that key names the host CPU's instruction set**, yet XLA:CPU compiles for the host it
runs on (AVX-512, AMX, ... when present). A cache directory built on one machine and copied to another
(a Binder image built on one node and run on another, a home directory shared by a cluster) would hand
the second machine code for instructions it may lack. So the cache lives in one sub-directory per
*machine fingerprint* -- :func:`machine_fingerprint`: the CPU architecture, the CPU's feature flags
(``/proc/cpuinfo`` on Linux) and the jax / jaxlib versions -- and a machine only ever reads what a
machine with the same features and versions wrote. Another machine's directory is simply a cold cache.

**Settings**:

- Where: ``$GRADCOURSE_JAX_CACHE_DIR/<fingerprint>`` if that variable is set, else
  ``$XDG_CACHE_HOME/gradcourse/jax/<fingerprint>`` (``~/.cache/gradcourse/jax/<fingerprint>``).
- Off: ``GRADCOURSE_JAX_CACHE=0`` (or ``off`` / ``false`` / ``no``) before the kernel starts.
- A cache you configured yourself (``JAX_COMPILATION_CACHE_DIR`` or ``jax.config.update(
  "jax_compilation_cache_dir", ...)`` before importing gradcourse) is left exactly as you set it.
- Every program is cached, however quick its compile (``jax_persistent_cache_min_compile_time_secs``
  = :data:`MIN_COMPILE_TIME_S`; JAX's default of 1 s would skip nearly all of the course's programs,
  which compile in 0.05-0.5 s each), and however small (``jax_persistent_cache_min_entry_size_bytes``
  = 0). Programs with host callbacks (``jax.debug.print``) are never cached (JAX's rule).
- An unwritable directory switches the cache off with one warning; a corrupt entry makes JAX warn and
  recompile that program.
- Entries are written atomically (a temporary file, then ``os.replace``). JAX 0.10.2's file cache writes
  an entry in place when it runs without a size limit (``jax._src.lru_cache.LRUCache.put``), so two
  kernels compiling the same program at once (nbval and the browser tests, two pytest-xdist workers, two
  open notebooks) could leave a torn file that every later run warns about; with a size limit it locks
  instead, but then rescans the whole directory on every write. :func:`enable` swaps in the atomic put
  for unlimited local caches only (a documented work-around; anything else keeps JAX's own).

The cache is trusted code: do not point ``GRADCOURSE_JAX_CACHE_DIR`` at a directory others can write.

**Command line** (``python -m gradcourse.compile_cache``): ``--warm`` executes the course notebooks once
(outputs discarded) so that every later run starts warm; ``--info`` prints where the cache is and how big;
``--clear`` deletes this machine's entries.

>>> fp = machine_fingerprint(flags="sse2 avx2", versions="jax 0.10.2, jaxlib 0.10.2", machine="x86_64")
>>> fp == machine_fingerprint(flags="avx2 sse2", versions="jax 0.10.2, jaxlib 0.10.2", machine="x86_64")
True
>>> fp == machine_fingerprint(flags="sse2 avx2 avx512f", versions="jax 0.10.2, jaxlib 0.10.2", machine="x86_64")
False
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import platform
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import jax

__all__ = [
    "DIR_ENV", "MIN_COMPILE_TIME_S", "SWITCH_ENV", "cache_dir", "cpu_flags", "enable", "enabled_dir",
    "machine_fingerprint", "warm",
]

SWITCH_ENV = "GRADCOURSE_JAX_CACHE"
"""Environment variable: ``0`` / ``off`` / ``false`` / ``no`` switches the cache off."""
DIR_ENV = "GRADCOURSE_JAX_CACHE_DIR"
"""Environment variable: the cache's root directory (the fingerprint sub-directory goes inside it)."""
MIN_COMPILE_TIME_S = 0.0
"""Cache every program, however quickly it compiled (JAX's default threshold is 1 s)."""

_OFF = {"0", "off", "false", "no"}
_enabled: Path | None = None


def cpu_flags() -> str:
    """The host CPU's feature flags as one space-separated, sorted string ('' when unknown).

    Linux: the ``flags`` (x86) or ``Features`` (ARM) line of ``/proc/cpuinfo``; elsewhere
    ``platform.processor()`` (macOS reports the architecture only, which JAX's wheels target anyway).
    """
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip().lower() in {"flags", "features"}:
                    return " ".join(sorted(set(value.split())))
    except OSError:
        pass
    return platform.processor()


def _versions() -> str:
    import jaxlib

    return f"jax {jax.__version__}, jaxlib {jaxlib.__version__}"


def machine_fingerprint(*, flags: str | None = None, versions: str | None = None,
                        machine: str | None = None) -> str:
    """A 16-hex-digit name for "executables compiled here run there": architecture, CPU flags, versions.

    Each argument defaults to this machine's (``platform.machine()``, :func:`cpu_flags`, the jax and
    jaxlib versions); the order of the flags does not matter.
    """
    flags = " ".join(sorted(set((cpu_flags() if flags is None else flags).split())))
    parts = [platform.machine() if machine is None else machine, flags, _versions() if versions is None else versions]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def cache_dir(env: Mapping[str, str] | None = None, *, fingerprint: str | None = None) -> Path | None:
    """This machine's cache directory under the settings in ``env`` (default ``os.environ``); None when off."""
    env = os.environ if env is None else env
    if env.get(SWITCH_ENV, "").strip().lower() in _OFF:
        return None
    root = env.get(DIR_ENV, "").strip()
    if root:
        base = Path(root).expanduser()
    else:
        xdg = env.get("XDG_CACHE_HOME", "").strip()
        base = (Path(xdg) if xdg else Path.home() / ".cache") / "gradcourse" / "jax"
    return base / (fingerprint or machine_fingerprint())


def _writable(path: Path) -> str | None:
    """None when ``path`` can be created and written to, else why not."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".probe-"):
            pass
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _atomic_put(original):
    """Wrap ``LRUCache.put`` so an unlimited local cache writes each entry atomically (see the docstring)."""
    from jax._src import lru_cache

    suffix = getattr(lru_cache, "_CACHE_SUFFIX", None)

    def put(self, key: str, value: bytes) -> None:
        if suffix is None or getattr(self, "eviction_enabled", True) or not isinstance(self.path, Path) or not key:
            return original(self, key, value)
        target = self.path / f"{key}{suffix}"
        if target.exists():
            return None
        fd, tmp = tempfile.mkstemp(dir=self.path, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(value)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return None

    put.__wrapped__ = original
    put.gradcourse_atomic = True
    return put


def _install_atomic_put() -> None:
    try:
        from jax._src import lru_cache
    except ImportError:  # another jax layout: keep JAX's own writer
        return
    cls = getattr(lru_cache, "LRUCache", None)
    if cls is not None and callable(getattr(cls, "put", None)) and not getattr(cls.put, "gradcourse_atomic", False):
        cls.put = _atomic_put(cls.put)


def enabled_dir() -> Path | None:
    """The directory JAX's persistent cache uses in this process (whoever set it), or None."""
    value = jax.config.jax_compilation_cache_dir
    return Path(value) if value and jax.config.jax_enable_compilation_cache else None


def enable(env: Mapping[str, str] | None = None) -> Path | None:
    """Point JAX's persistent compilation cache at :func:`cache_dir`; returns the directory in use, or None.

    Idempotent. Leaves a cache the user configured alone (returns its directory). Switched off by
    ``GRADCOURSE_JAX_CACHE=0``; a directory that cannot be created or written to switches it off with
    one ``RuntimeWarning`` and the course runs without a cache.
    """
    global _enabled
    if _enabled is not None:
        return _enabled
    if jax.config.jax_compilation_cache_dir:  # the user's own choice: keep it
        return enabled_dir()
    path = cache_dir(env)
    if path is None:
        return None
    problem = _writable(path)
    if problem is not None:
        warnings.warn(f"gradcourse: JAX compilation cache switched off, {path} is not writable ({problem}); "
                      f"set {DIR_ENV} to a writable directory, or {SWITCH_ENV}=0 to silence this",
                      RuntimeWarning, stacklevel=2)
        return None
    _install_atomic_put()
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_TIME_S)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    jax.config.update("jax_compilation_cache_dir", str(path))
    _enabled = path
    return path


# --------------------------------------------------------------------------- command line


def _entries(path: Path) -> list[Path]:
    return [p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")] if path.is_dir() else []


def _course_notebooks() -> list[Path]:
    here = Path(__file__).resolve().parents[2] / "notebooks"
    return sorted(here.glob("[0-9][0-9]_*.ipynb"))


def warm(notebooks: Sequence[str | os.PathLike] | None = None, *, timeout: float = 600.0,
         log=print) -> list[str]:
    """Execute ``notebooks`` (default: the course's) in fresh kernels so their programs land in the cache.

    The notebooks on disk are not modified. Returns the failures as ``"name: error"`` lines.
    """
    import nbformat
    from nbclient import NotebookClient

    paths = [Path(p) for p in notebooks] if notebooks else _course_notebooks()
    failures = []
    for nb_path in paths:
        t0 = time.perf_counter()
        nb = nbformat.read(nb_path, as_version=4)
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(nb_path.parent)}})
        try:
            client.execute()
            status = "ok"
        except Exception as exc:  # noqa: BLE001 - report and go on: the cache still holds what compiled
            status = f"FAILED ({type(exc).__name__}: {str(exc).strip().splitlines()[-1][:200] if str(exc) else ''})"
            failures.append(f"{nb_path.name}: {status}")
        log(f"{nb_path.name}: {time.perf_counter() - t0:.1f} s {status}")
    return failures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gradcourse.compile_cache", description=__doc__.split("\n")[0])
    parser.add_argument("--warm", nargs="*", metavar="NOTEBOOK",
                        help="execute the course notebooks (or the ones given) once, filling the cache")
    parser.add_argument("--info", action="store_true", help="print the cache directory, entries and size")
    parser.add_argument("--clear", action="store_true", help="delete this machine's cache directory")
    args = parser.parse_args(argv)
    path = enable()
    if path is None:
        print(f"the compilation cache is off ({SWITCH_ENV}={os.environ.get(SWITCH_ENV, '')!r}, or not writable)")
        return 1 if args.warm is not None else 0
    ours = path == cache_dir()
    if args.clear:
        if not ours:
            print(f"refusing to clear {path}: configured outside gradcourse")
            return 1
        shutil.rmtree(path, ignore_errors=True)
        print(f"cleared {path}")
    failures: list[str] = []
    if args.warm is not None:
        if ours:  # the kernels use this very directory
            os.environ[DIR_ENV] = str(path.parent)
        failures = warm(args.warm or None)
    if args.info or args.warm is not None or not args.clear:
        files = _entries(path)
        size = sum(p.stat().st_size for p in files)
        print(f"{path}: {len(files)} entries, {size / 2**20:.1f} MiB (fingerprint {path.name}, {_versions()})")
    for line in failures:
        print(line, file=sys.stderr)
    return 1 if failures else 0


enable()  # importing gradcourse (which imports this module) switches the cache on
