"""Shared pytest fixtures.

Memory and compile-time hygiene (autouse)
-----------------------------------------
``_close_figures``   after every test, closes every matplotlib figure (only if pyplot was imported):
                     pyplot keeps each figure a test opens alive until it is closed.
``_release_jax``     after every test module, ``jax.clear_caches()``, a garbage collection and glibc's
                     ``malloc_trim(0)``: JAX keeps every compiled executable (and its traced jaxpr) for
                     the life of the process -- 2-4 MB each on CPU, measured: 150 programs of one
                     module-level ``jax.jit`` function held 540 MB, which ``gc.collect()`` alone does not
                     free and ``clear_caches`` + collect + trim gives back (424 MB) -- and that is what
                     grew the pytest process to gigabytes over the suite.  A later module that needs a
                     program again loads it from the persistent compilation cache
                     (``gradcourse.compile_cache``) in milliseconds instead of recompiling it.

The test processes compile with ``jax_disable_most_optimizations`` (see ``pytest_configure``; the notebooks'
kernels do not): ``GRADCOURSE_TEST_OPTIMIZE=1`` compiles them as a learner's kernel does.

Each notebook runs once
-----------------------
When the browser test will run a course notebook (``tests/test_browser.py`` is selected and JupyterLab,
Playwright and Chromium are all present), nbval's items for that notebook are deselected: the browser
run does nbval's whole job for it -- every cell runs without an error, and every ``# NBVAL_CHECK_OUTPUT``
cell prints what the notebook stores, compared as nbval compares (``tests/nbval_outputs.py``) -- so CI
executes each notebook once instead of twice.  Without a browser, or with ``-m "not browser"``, or for
``pytest notebooks``, nbval runs them as before.  Once nbval's items were handed over, a browser that then
fails to start is an error, never a skip.

``GRADCOURSE_TEST_PROFILE=report.md python -m pytest ...`` writes one row per test module: wall time,
programs compiled (and how many came from the persistent cache), seconds in compile, and the process's
resident memory after the module (with the clean-up above) and its peak so far.
``GRADCOURSE_TEST_KEEP_CACHES=1`` switches the two clean-ups off, to measure what they save.

Browser / JupyterLab fixtures
-----------------------------
``jupyter_lab``      one JupyterLab server per test module, on 127.0.0.1 with a random
                     free port and a random token, serving a scratch copy of the project.
``chromium_browser`` one headless Debian Chromium driven by Playwright per test module.

Both are self-contained (standard library + playwright only) and skip with a clear
reason when Chromium (``/usr/bin/chromium``, or ``$GRADCOURSE_CHROMIUM``) or the
``playwright`` package is missing -- unless ``GRADCOURSE_REQUIRE_BROWSER=1`` (set by
``.ci/run``), in which case they fail instead.

Why a scratch copy of the project is served and not the checkout itself: JupyterLab
writes ``.ipynb_checkpoints/`` as soon as a notebook is opened and would autosave the
executed outputs into the tracked notebooks.  The scratch root gets a *copy* of
``notebooks/`` and symlinks to every other top-level entry of the repository, so
relative paths used by the notebooks resolve exactly as in the checkout.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from nbval_outputs import handed_to_browser

# --------------------------------------------------------------------------------------
# Memory and compile-time hygiene for the pytest process
# --------------------------------------------------------------------------------------


_KEEP = os.environ.get("GRADCOURSE_TEST_KEEP_CACHES", "") == "1"  # measurement only: the clean-up off


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None and not _KEEP:
        pyplot.close("all")


@pytest.fixture(autouse=True, scope="module")
def _release_jax():
    yield
    if _KEEP:
        return
    jax = sys.modules.get("jax")
    if jax is not None:
        jax.clear_caches()
    import gc

    gc.collect()
    # The package's own heap trim (glibc's malloc_trim; a no-op elsewhere), the one fit_many uses: without it
    # the freed executables' memory stays resident.
    from gradcourse.train import _trim_heap

    _trim_heap()


def _rss_mib() -> tuple[float, float]:
    """(current, peak) resident set size of this process in MiB (Linux /proc; peak from getrusage)."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    try:
        with open("/proc/self/statm") as f:
            current = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        current = float("nan")
    return current, peak


class _ModuleProfile:
    """Per test module: wall time, compiles, compile seconds, persistent-cache hits, RSS (see docstring)."""

    def __init__(self, path: str):
        self.path = path
        self.rows: list[tuple] = []
        self.compiles = 0
        self.hits = 0
        self.compile_s = 0.0
        self.current: str | None = None
        self.t0 = time.monotonic()
        self._listening = False

    def _listen(self) -> None:
        if self._listening or "jax" not in sys.modules:
            return
        import jax

        def on_duration(event: str, duration: float, **_kw) -> None:
            if event == "/jax/core/compile/backend_compile_duration":
                self.compiles += 1
                self.compile_s += duration

        def on_event(event: str, **_kw) -> None:
            if event == "/jax/compilation_cache/cache_hits":
                self.hits += 1

        jax.monitoring.register_event_duration_secs_listener(on_duration)
        jax.monitoring.register_event_listener(on_event)
        self._listening = True

    def start(self, module: str) -> None:
        self._listen()
        if module != self.current:
            self.finish()
            self.current, self.t0 = module, time.monotonic()
            self.compiles, self.hits, self.compile_s = 0, 0, 0.0

    def finish(self) -> None:
        if self.current is not None:
            self.rows.append((self.current, time.monotonic() - self.t0, self.compiles, self.hits, self.compile_s,
                              *_rss_mib()))
            self.current = None

    def write(self) -> None:
        self.finish()
        lines = ["| test module | wall s | programs compiled | from persistent cache | compile s | RSS after MiB "
                 "| peak RSS MiB |", "|---|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| {m} | {w:.1f} | {c} | {h} | {cs:.1f} | {r:.0f} | {pk:.0f} |"
                  for m, w, c, h, cs, r, pk in self.rows]
        Path(self.path).write_text("\n".join(lines) + "\n")


_PROFILE: _ModuleProfile | None = None


# The test processes compile with XLA's optimisations mostly off (``jax_disable_most_optimizations``: LLVM
# at -O0, no expensive passes).  A unit test runs each of its small programs once or twice, so compiling is
# most of its time: measured on tests/test_models_cnn.py + tests/test_core.py, 97 s -> 70 s.  XLA's HLO
# passes (simplification, fusion) still run; what is switched off is the machine-code optimisation of the
# fused kernels, and every tolerance in the suite holds with the flag on and off.  Only this process: the
# notebooks' kernels (nbval, the browser test) are separate processes and compile as a learner's kernel
# does, fully optimised.
# GRADCOURSE_TEST_OPTIMIZE=1 compiles the tests fully optimised too.
_OPTIMIZE = os.environ.get("GRADCOURSE_TEST_OPTIMIZE", "") == "1"


def pytest_configure(config):
    global _PROFILE
    # pytest-xdist >= 3.6 sorts files by their number of tests before handing them out (--loadscope-reorder,
    # on by default), which undid the run order below: the browser test started ~200 s into the run and the
    # Binder replay near its end. Keep the order of the collection instead.
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False
    if not _OPTIMIZE:
        import jax

        jax.config.update("jax_disable_most_optimizations", True)
    path = os.environ.get("GRADCOURSE_TEST_PROFILE")
    if path:
        worker = os.environ.get("PYTEST_XDIST_WORKER")
        _PROFILE = _ModuleProfile(f"{path}.{worker}" if worker else path)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    if _PROFILE is not None:
        _PROFILE.start(item.nodeid.split("::")[0])
    yield


# Run order (also the order pytest-xdist's --dist loadfile hands files to workers, see pytest_configure): the
# two longest files first, so they do not end up as a lone tail on one core, then the notebooks (nbval, when
# the browser test does not run them: see "Each notebook runs once" above), then everything else. The browser
# test executes the notebooks in reverse order, so when nbval runs them too (a selection such as
# `pytest tests/test_browser.py notebooks`), it works up from the first one on the other worker and each
# notebook is compiled once and found in the shared persistent compilation cache by the other run.
_FIRST = ("tests/test_browser.py", "tests/test_binder.py")


def _run_rank(nodeid: str) -> int:
    path = nodeid.split("::")[0]
    if path in _FIRST:
        return _FIRST.index(path)
    return len(_FIRST) + (0 if path.endswith(".ipynb") else 1)


_HANDED_TO_BROWSER: set[str] = set()  # notebooks whose nbval items were deselected (see the docstring)


def browser_available() -> bool:
    """JupyterLab, Playwright and an executable Chromium are all present (the browser tests can run)."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("jupyterlab", "playwright")) and _chromium_found()


@pytest.hookimpl(trylast=True)  # after -m / -k have deselected what they deselect
def pytest_collection_modifyitems(session, config, items):
    items.sort(key=lambda item: _run_rank(item.nodeid))  # stable: the order inside a file is kept
    handed_ids = set(handed_to_browser([item.nodeid for item in items]))
    if handed_ids and browser_available():
        handed = [item for item in items if item.nodeid in handed_ids]
        _HANDED_TO_BROWSER.update(item.nodeid.split("::")[0] for item in handed)
        config.hook.pytest_deselected(items=handed)
        items[:] = [item for item in items if item.nodeid not in handed_ids]


def pytest_sessionfinish(session, exitstatus):
    if _PROFILE is not None:
        _PROFILE.write()

# --------------------------------------------------------------------------------------
# Browser / JupyterLab fixtures (owned by the browser-test work; keep self-contained)
# --------------------------------------------------------------------------------------

REPO_ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_PATH = os.environ.get("GRADCOURSE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-dev-shm-usage",
]


def _chromium_found() -> bool:
    """An executable file at CHROMIUM_PATH."""
    return os.path.isfile(CHROMIUM_PATH) and os.access(CHROMIUM_PATH, os.X_OK)


# Entries of the repository that are not mirrored into the scratch server root.
_NOT_SERVED = {".git", ".venv", ".ci-venv", "test-artifacts", "notebooks", "__pycache__"}

# JupyterLab user settings for the test server: never write back to the notebooks,
# render every cell (no virtual scrolling, so the DOM holds all cells), no news pop-up.
_LAB_SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


def browser_required() -> bool:
    """True when browser tests must run (CI sets GRADCOURSE_REQUIRE_BROWSER=1)."""
    return os.environ.get("GRADCOURSE_REQUIRE_BROWSER", "").strip().lower() in {"1", "true", "yes"}


def skip_or_fail(reason: str):
    """Skip the test -- or fail it when browser tests are required, or nbval's run was handed to them."""
    if browser_required():
        pytest.fail(f"{reason} (GRADCOURSE_REQUIRE_BROWSER=1, so this is an error)", pytrace=False)
    if _HANDED_TO_BROWSER:
        pytest.fail(f"{reason}; nbval's run of {len(_HANDED_TO_BROWSER)} notebook(s) was handed to the browser "
                    "test, so this is an error (run `python -m pytest notebooks` for nbval alone)", pytrace=False)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class JupyterLabServer:
    """Handle on a running JupyterLab server (see the ``jupyter_lab`` fixture)."""

    base_url: str
    token: str
    root: Path
    process: subprocess.Popen
    log_path: Path
    _started: float = field(default_factory=time.monotonic)

    def url(self, path: str) -> str:
        """Browser URL for a server path such as ``lab/tree/notebooks/x.ipynb``."""
        sep = "&" if "?" in path else "?"
        return f"{self.base_url}/{path.lstrip('/')}{sep}token={self.token}"

    def api(self, path: str, method: str = "GET", body=None, timeout: float = 10):
        """Call the Jupyter REST API; returns the decoded JSON (or None)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.base_url}/api/{path.lstrip('/')}",
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def sessions_for(self, relpath: str) -> list[dict]:
        return [s for s in self.api("sessions") if s.get("path") == relpath]

    def kernel_state(self, relpath: str) -> str | None:
        """execution_state of the kernel attached to notebook ``relpath`` (None if none)."""
        for s in self.sessions_for(relpath):
            kernel = s.get("kernel") or {}
            return kernel.get("execution_state")
        return None

    def shutdown_sessions(self, relpath: str) -> None:
        for s in self.sessions_for(relpath):
            try:
                self.api(f"sessions/{s['id']}", method="DELETE")
            except urllib.error.URLError:
                pass

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def _prepare_root(tmp: Path) -> Path:
    root = tmp / "served"
    root.mkdir()
    src_nb = REPO_ROOT / "notebooks"
    if src_nb.is_dir():
        shutil.copytree(src_nb, root / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    else:
        (root / "notebooks").mkdir()
    for entry in REPO_ROOT.iterdir():
        if entry.name in _NOT_SERVED:
            continue
        (root / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    return root


def _start_lab(tmp: Path, root: Path, settings: dict | None = None, extra_args: tuple[str, ...] = (),
               extra_env: dict[str, str] | None = None) -> JupyterLabServer:
    """Start JupyterLab on ``root`` with user ``settings`` (default ``_LAB_SETTINGS``), extra command-line
    options and environment variables; wait until its REST API answers."""
    settings = _LAB_SETTINGS if settings is None else settings
    jdirs = {name: tmp / name for name in ("config", "data", "runtime", "settings", "workspaces")}
    for d in jdirs.values():
        d.mkdir(exist_ok=True)
    for rel, content in settings.items():
        f = jdirs["settings"] / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps(content))
    env = dict(os.environ)
    env.update(
        JUPYTER_CONFIG_DIR=str(jdirs["config"]),
        JUPYTER_DATA_DIR=str(jdirs["data"]),
        JUPYTER_RUNTIME_DIR=str(jdirs["runtime"]),
        JUPYTERLAB_SETTINGS_DIR=str(jdirs["settings"]),
        JUPYTERLAB_WORKSPACES_DIR=str(jdirs["workspaces"]),
        PYTHONUNBUFFERED="1",
    )
    env.pop("JUPYTER_PATH", None)
    env.pop("JUPYTER_CONFIG_PATH", None)
    env.update(extra_env or {})
    token = secrets.token_hex(16)
    last_error = ""
    for attempt in range(3):  # the free port can be taken between probe and bind
        port = _free_port()
        log_path = tmp / f"jupyterlab-{attempt}.log"
        cmd = [
            sys.executable, "-m", "jupyter", "lab",
            "--no-browser",
            "--allow-root",
            f"--ServerApp.token={token}",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--ServerApp.root_dir={root}",
            "--LabApp.expose_app_in_browser=True",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--MappingKernelManager.default_kernel_name=python3",
            *extra_args,
        ]
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
        server = JupyterLabServer(f"http://127.0.0.1:{port}", token, root, proc, log_path)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                server.api("status", timeout=3)
                return server
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.3)
        last_error = server.log_tail()
        _stop(proc)
    raise RuntimeError(f"JupyterLab did not start; last log:\n{last_error}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def jupyter_lab(tmp_path_factory):
    """A JupyterLab server for the module, serving a scratch mirror of the project."""
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        skip_or_fail("jupyterlab is not installed")
    tmp = tmp_path_factory.mktemp("jupyterlab")
    root = _prepare_root(tmp)
    server = _start_lab(tmp, root)
    try:
        yield server
    finally:
        _stop(server.process)


@pytest.fixture(scope="module")
def chromium_browser():
    """Headless Debian Chromium driven by Playwright (no browser download)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("the 'playwright' package is not installed (pip install -e '.[test]')")
    if not _chromium_found():
        skip_or_fail(f"Chromium not found at {CHROMIUM_PATH} (Debian: apt-get install chromium)")
    pw = sync_playwright().start()
    try:
        browser = pw.chromium.launch(executable_path=CHROMIUM_PATH, headless=True, args=CHROMIUM_ARGS)
    except Exception as exc:  # noqa: BLE001 - report any launch failure the same way
        pw.stop()
        skip_or_fail(f"Chromium at {CHROMIUM_PATH} failed to start: {exc}")
    try:
        yield browser
    finally:
        browser.close()
        pw.stop()
