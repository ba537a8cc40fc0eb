"""Every third-party module the project imports comes from a distribution that pyproject.toml declares.

A module that only arrives as someone else's dependency (``hypothesis`` through a developer's own
venv, ``nbformat`` through JupyterLab) works on the machine that wrote the import and fails on a
fresh one -- the README's install command is the only thing CI and learners run.  The scan reads
the imports of ``gradcourse/`` and the notebooks (which need the runtime dependencies) and of
``tests/``, ``scripts/`` and ``benchmarks/`` (which may also use the ``test`` extra) with ``ast``.

A few modules are parts of a declared distribution's own hard requirements and are allowed
through it (``COMES_WITH``); the test checks that the parent really requires them, so the
allowance cannot outlive the fact.
"""

from __future__ import annotations

import ast
import json
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from test_binder import _pyproject

REPO_ROOT = Path(__file__).resolve().parent.parent
LOCAL_FOLDERS = ["tests", "scripts", "benchmarks"]  # their modules import one another by file name
LOCAL = {"gradcourse"} | {p.stem for folder in LOCAL_FOLDERS for p in (REPO_ROOT / folder).glob("*.py")}
# module -> (its distribution, the declared distribution that hard-requires it)
COMES_WITH = {
    "jaxlib": ("jaxlib", "jax"),
    "ml_dtypes": ("ml_dtypes", "jax"),
    "PIL": ("pillow", "matplotlib"),
}


def _declared() -> tuple[set[str], set[str]]:
    """(runtime dependencies, runtime + test extra), canonical names."""
    project = _pyproject()
    runtime = {canonicalize_name(Requirement(r).name) for r in project["dependencies"]}
    test = {canonicalize_name(Requirement(r).name) for r in project["optional-dependencies"]["test"]}
    return runtime, runtime | test


def _top_level_imports(source: str) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _notebook_source(path: Path) -> str:
    cells = json.loads(path.read_text())["cells"]
    lines = []
    for cell in cells:
        if cell["cell_type"] == "code":
            src = "".join(cell["source"])
            lines += [ln for ln in src.splitlines() if not ln.lstrip().startswith(("%", "!"))]
    return "\n".join(lines)


def _imports(folders: list[str], notebooks: bool = False) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    files = [p for folder in folders for p in (REPO_ROOT / folder).rglob("*.py")]
    for path in files:
        for name in _top_level_imports(path.read_text()):
            found.setdefault(name, set()).add(str(path.relative_to(REPO_ROOT)))
    if notebooks:
        for path in (REPO_ROOT / "notebooks").glob("*.ipynb"):
            for name in _top_level_imports(_notebook_source(path)):
                found.setdefault(name, set()).add(str(path.relative_to(REPO_ROOT)))
    return {k: v for k, v in found.items() if k not in sys.stdlib_module_names and k not in LOCAL}


def _undeclared(found: dict[str, set[str]], allowed: set[str]) -> list[str]:
    dists = metadata.packages_distributions()
    bad = []
    for module, where in sorted(found.items()):
        if module in COMES_WITH:
            continue
        names = {canonicalize_name(d) for d in dists.get(module, [module])}
        if not names & allowed:
            bad.append(f"{module} (distribution {sorted(names)}) imported in {sorted(where)[:3]}")
    return bad


def test_package_and_notebooks_import_only_runtime_dependencies():
    runtime, _ = _declared()
    bad = _undeclared(_imports(["gradcourse"], notebooks=True), runtime)
    fix = "add these to [project].dependencies in pyproject.toml (and pin in binder/requirements.txt)"
    assert not bad, fix + ":\n  " + "\n  ".join(bad)


def test_tests_scripts_and_benchmarks_import_only_declared_dependencies():
    _, everything = _declared()
    bad = _undeclared(_imports(LOCAL_FOLDERS), everything)
    assert not bad, "add these to the `test` extra in pyproject.toml:\n  " + "\n  ".join(bad)


def test_modules_allowed_through_a_parent_are_its_hard_requirements():
    runtime, _ = _declared()
    for module, (dist, parent) in COMES_WITH.items():
        assert canonicalize_name(parent) in runtime, f"{parent} (parent of {module}) is not a runtime dependency"
        hard = {
            canonicalize_name(Requirement(r).name)
            for r in metadata.requires(parent) or []
            if Requirement(r).marker is None or "extra" not in str(Requirement(r).marker)
        }
        assert canonicalize_name(dist) in hard, f"{parent} no longer requires {dist}: declare {dist} directly"


def test_the_scan_sees_a_missing_declaration():
    """The check can fail: a module provided by no declared distribution is reported."""
    runtime, _ = _declared()
    bad = _undeclared({"hypothesis": {"x.py"}, "numpy": {"x.py"}}, runtime)
    assert len(bad) == 1 and bad[0].startswith("hypothesis")
