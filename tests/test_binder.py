"""binder/ must give mybinder.org users the environment the suite is tested with.

repo2docker (what mybinder.org runs) uses the files in ``binder/`` and ignores the
ones at the top level once that folder exists.  With a ``runtime.txt`` of
``python-X.Y`` it builds a Python X.Y environment; it installs ``requirements.txt``
*before* copying the repository (it may, because the file has no local reference such
as ``-e .``); then it copies the repository and runs ``postBuild`` from its root,
which installs ``gradcourse`` itself.

* ``test_pins_*``: cheap consistency checks of the pins against pyproject.toml and
  against the environment running these tests.
* ``test_fresh_binder_environment`` (marker ``binder``): replays that build in a fresh
  virtual environment made from ``binder/`` alone -- postBuild installs the JupyterLab settings
  and warms JAX's persistent compilation cache by executing ``notebooks/00_start_here.ipynb``
  (``GRADCOURSE_WARM_NOTEBOOKS``; the real build warms the whole course) -- then executes that
  notebook with the warm cache and again with the cache off, and checks the warm run is faster
  (CPU seconds of the executing processes, which other jobs on the machine do not inflate).
  About 1-2 minutes with a warm pip cache; run it on its own with ``scripts/verify_binder.sh``,
  or leave it out with ``-m "not binder"``.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO_ROOT = Path(__file__).resolve().parent.parent
BINDER = REPO_ROOT / "binder"
START_NOTEBOOK = REPO_ROOT / "notebooks" / "00_start_here.ipynb"
# Not copied into the replayed "repository" (local environments and build leftovers).
_NOT_COPIED = (".git", ".venv", ".ci-venv", "test-artifacts", "__pycache__", "*.egg-info", "build", "dist",
               ".ipynb_checkpoints", ".pytest_cache")


def _pyproject() -> dict:
    with open(REPO_ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]


def _declared() -> dict[str, Requirement]:
    """pyproject's runtime dependencies and test extra, by canonical name."""
    project = _pyproject()
    reqs = [*project["dependencies"], *project.get("optional-dependencies", {}).get("test", [])]
    return {canonicalize_name(r.name): r for r in map(Requirement, reqs)}


def _binder_lines() -> list[str]:
    lines = []
    for raw in (BINDER / "requirements.txt").read_text().splitlines():
        line = raw.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def _pins() -> dict[str, Version]:
    pins = {}
    for line in _binder_lines():
        req = Requirement(line)
        (spec,) = req.specifier
        pins[canonicalize_name(req.name)] = Version(spec.version)
    return pins


def test_binder_files_present():
    assert (BINDER / "runtime.txt").read_text().strip().startswith("python-3.")
    post_build = BINDER / "postBuild"
    assert os.access(post_build, os.X_OK), "binder/postBuild must be executable (git update-index --chmod=+x)"
    text = post_build.read_text()
    assert "pip install" in text and "-e ." in text
    assert "scripts/install_lab_settings.py" in text, "postBuild installs the JupyterLab settings"
    assert "gradcourse.compile_cache --warm" in text, "postBuild warms the compilation cache"


def test_shipped_lab_settings_turn_the_news_off_and_open_the_course():
    overrides = json.loads((BINDER / "lab-settings" / "overrides.json").read_text())
    notification = overrides["@jupyterlab/apputils-extension:notification"]
    assert notification["fetchNews"] == "false" and notification["checkForUpdates"] is False
    server = json.loads((BINDER / "jupyter_config.json").read_text())
    default = server["ServerApp"]["default_url"]
    assert default.startswith("/lab/tree/") and (REPO_ROOT / default.removeprefix("/lab/tree/")) == START_NOTEBOOK
    assert server["LabApp"]["news_url"] is None and server["LabApp"]["default_url"] == default
    readme = (REPO_ROOT / "README.md").read_text()
    assert "urlpath=lab/tree/notebooks/00_start_here.ipynb" in readme, "the Binder badge opens the course"
    assert "--LabApp.app_settings_dir=binder/lab-settings" in readme, "the local launch uses the same settings"


def test_binder_requirements_are_exact_pins():
    """Every line is `name==version`: nothing floats and nothing local (repo2docker then
    installs the file before copying the repository, and the build is reproducible)."""
    for line in _binder_lines():
        assert not line.startswith("-"), f"option or local reference in binder/requirements.txt: {line!r}"
        req = Requirement(line)
        specs = list(req.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", f"not an exact pin: {line!r}"
        assert not req.url and not req.extras, f"unexpected URL/extras: {line!r}"


def test_every_runtime_dependency_is_pinned():
    pins = _pins()
    missing = [r.name for r in map(Requirement, _pyproject()["dependencies"]) if canonicalize_name(r.name) not in pins]
    assert not missing, f"runtime dependencies without a pin in binder/requirements.txt: {missing}"


def test_pins_satisfy_pyproject_ranges():
    declared = _declared()
    bad = [
        f"{name}=={version} is outside pyproject's {declared[name]}"
        for name, version in _pins().items()
        if name in declared and not declared[name].specifier.contains(version, prereleases=True)
    ]
    assert not bad, "binder/requirements.txt disagrees with pyproject.toml:\n  " + "\n  ".join(bad)


def test_pins_match_the_environment_running_the_suite():
    """The versions pinned for Binder are the ones these tests run with.  The README test
    command installs with `-c binder/requirements.txt`, which guarantees it."""
    wrong = []
    for name, version in _pins().items():
        try:
            installed = Version(metadata.version(name))
        except metadata.PackageNotFoundError:
            wrong.append(f"{name}: pinned {version}, not installed")
            continue
        if installed != version:
            wrong.append(f"{name}: pinned {version}, installed {installed}")
    assert not wrong, (
        "binder/ pins differ from this environment (install with "
        "`python -m pip install -e \".[test]\" -c binder/requirements.txt`, or bump the pins):\n  "
        + "\n  ".join(wrong)
    )


# --------------------------------------------------------------------------------------
# Replay of the repo2docker build
# --------------------------------------------------------------------------------------

def _runtime_python() -> str:
    runtime = (BINDER / "runtime.txt").read_text().strip()
    assert runtime.startswith("python-"), runtime
    wanted = tuple(int(x) for x in runtime.removeprefix("python-").split(".")[:2])
    if sys.version_info[: len(wanted)] == wanted:
        return sys.executable
    exe = shutil.which("python" + ".".join(map(str, wanted)))
    if exe is None:
        pytest.skip(f"binder/runtime.txt asks for {runtime}; no such interpreter here")
    return exe


def _run(cmd, *, cwd, env, timeout, what, log):
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=cwd, env=env, timeout=timeout, capture_output=True, text=True)
    took = time.monotonic() - t0
    log.append(f"{what}: {took:.1f}s")
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr)[-4000:]
        done = "\n".join(log)
        pytest.fail(f"{what} failed (exit {proc.returncode}); steps so far:\n{done}\n--- output tail ---\n{tail}",
                    pytrace=False)
    return proc


def _copy_repository(dest: Path) -> None:
    """Copy what a clone would hold: git's tracked files plus untracked, not-ignored ones
    (so work in progress is included); without git, everything but local environments."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                                cwd=REPO_ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        shutil.copytree(REPO_ROOT, dest, symlinks=True, ignore=shutil.ignore_patterns(*_NOT_COPIED))
        return
    for rel in filter(None, listed.decode().split("\0")):
        src = REPO_ROOT / rel
        if not src.exists() and not src.is_symlink():  # deleted in the work tree
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target, follow_symlinks=False)


@pytest.mark.binder
def test_fresh_binder_environment(tmp_path):
    if not START_NOTEBOOK.exists():
        pytest.skip("notebooks/00_start_here.ipynb is missing from this checkout")
    python = _runtime_python()
    log: list[str] = []
    venv = tmp_path / "venv"
    bindir = venv / "bin"
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"}}
    env.update(
        PATH=f"{bindir}{os.pathsep}{env.get('PATH', '')}",
        VIRTUAL_ENV=str(venv),
        JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"),
        JUPYTER_DATA_DIR=str(tmp_path / "jupyter-data"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "jupyter-runtime"),
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        GRADCOURSE_JAX_CACHE_DIR=str(tmp_path / "jax-cache"),
        GRADCOURSE_WARM_NOTEBOOKS="notebooks/00_start_here.ipynb",
    )
    env.pop("GRADCOURSE_JAX_CACHE", None)
    cache = tmp_path / "jax-cache"
    env.pop("JUPYTER_PATH", None)
    env.pop("PIP_CONSTRAINT", None)

    # 1. runtime.txt: an interpreter of that version, in a fresh environment.
    _run([python, "-m", "venv", str(venv)], cwd=tmp_path, env=env, timeout=300, what="venv", log=log)
    version = subprocess.run([bindir / "python", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    assert f"python-{version}" == (BINDER / "runtime.txt").read_text().strip()

    # 2. requirements.txt, before the repository is there: only binder/ is visible.
    pre = tmp_path / "preassemble"
    (pre / "binder").mkdir(parents=True)
    shutil.copy2(BINDER / "requirements.txt", pre / "binder" / "requirements.txt")
    # --no-compile: skip byte-compiling every installed .py file up front (Python compiles what it imports
    # on first use), which only costs the replay time.
    _run([bindir / "python", "-m", "pip", "install", "-q", "--no-compile", "-r", "binder/requirements.txt"],
         cwd=pre, env=env, timeout=1200, what="pip install -r binder/requirements.txt", log=log)

    # 3. The repository is copied, then postBuild runs from its root.
    repo = tmp_path / "repo"
    _copy_repository(repo)
    _run([repo / "binder" / "postBuild"], cwd=repo, env=env, timeout=600, what="binder/postBuild", log=log)

    # The image as a learner gets it: consistent, gradcourse importable from the copy.
    _run([bindir / "python", "-m", "pip", "check"], cwd=tmp_path, env=env, timeout=120, what="pip check", log=log)
    where = _run([bindir / "python", "-c", "import gradcourse, os; print(os.path.realpath(gradcourse.__path__[0]))"],
                 cwd=tmp_path, env=env, timeout=300, what="import gradcourse", log=log).stdout.strip()
    assert Path(where) == (repo / "gradcourse").resolve()

    # postBuild installed the JupyterLab settings into the environment ...
    overrides = json.loads((venv / "share" / "jupyter" / "lab" / "settings" / "overrides.json").read_text())
    assert overrides["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"
    etc = venv / "etc" / "jupyter"
    server_config = json.loads((etc / "jupyter_server_config.d" / "gradcourse.json").read_text())
    assert server_config["ServerApp"]["default_url"].endswith("00_start_here.ipynb")
    assert json.loads((etc / "jupyter_lab_config.json").read_text())["LabApp"]["news_url"] is None
    # ... and warmed the compilation cache, in this machine's fingerprint directory.
    entries = [p for p in cache.rglob("*-cache") if p.is_file()]
    assert entries, f"postBuild left no compiled programs in {cache}"
    fingerprints = {p.parent.name for p in entries}
    assert len(fingerprints) == 1, fingerprints

    execute = [bindir / "jupyter", "nbconvert", "--to", "notebook", "--execute", "--stdout",
               "--ExecutePreprocessor.kernel_name=python3", "--ExecutePreprocessor.timeout=600",
               "notebooks/00_start_here.ipynb"]

    def timed_run(what: str, **extra: str) -> tuple[float, float]:
        """(wall s, CPU s of nbconvert and its kernel: both are reaped children by the time run returns)."""
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        proc = _run(execute, cwd=repo, env={**env, **extra}, timeout=900, what=what, log=log)
        wall = time.monotonic() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        assert '"cell_type"' in proc.stdout
        return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

    n_before = len(entries)
    warm_wall, warm_cpu = timed_run("execute 00_start_here.ipynb, cache warmed by postBuild")
    n_after = len([p for p in cache.rglob("*-cache") if p.is_file()])
    cold_wall, cold_cpu = timed_run("execute 00_start_here.ipynb, cache off", GRADCOURSE_JAX_CACHE="0")
    summary = (f"warm: {warm_wall:.1f} s wall, {warm_cpu:.1f} s CPU ({n_after - n_before} programs compiled anew); "
               f"cold: {cold_wall:.1f} s wall, {cold_cpu:.1f} s CPU; {len(entries)} cached programs")
    log.append(summary)
    print("\n".join(log))
    # Measured 0.56 (6.9 s vs 12.3 s CPU, 2 busy cores): compiling is most of the cold run's work.
    assert warm_cpu < 0.8 * cold_cpu, summary
