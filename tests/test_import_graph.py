"""scripts/import_graph.py reads the layering right, and the presentation layer imports no computation."""
from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "import_graph.py"


@pytest.fixture(scope="module")
def graph_module():
    spec = importlib.util.spec_from_file_location("import_graph", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_import_graph_matches_the_source(graph_module):
    """Edges checked against imports written out by hand for modules whose imports are known."""
    edges, layers, _ = graph_module.graph()
    assert {"rmt", "theory", "validate"} <= edges["experiments"]
    assert edges["rmt"] >= {"theory", "validate"} and "plot" not in edges["rmt"]
    assert {"experiments", "plot"} <= edges["widgets"]
    assert layers["plot"] == layers["widgets"] == "presentation"
    assert layers["experiments"] == "experiments" and layers["rmt"] == "theory" and layers["chains"] == "core"


def test_import_graph_flags_an_upward_import(graph_module, tmp_path, monkeypatch):
    pkg = tmp_path / "gradcourse"
    (pkg / "plot").mkdir(parents=True)
    (pkg / "plot" / "__init__.py").write_text('"""Layer: presentation."""\n')
    (pkg / "norms.py").write_text('"""Norms (core layer)."""\nfrom .plot import draw\n')
    monkeypatch.setattr(graph_module, "PACKAGE", pkg)
    edges, layers, _ = graph_module.graph()
    assert edges["norms"] == {"plot"} and layers["norms"] == "core"


def test_import_graph_command_prints_a_table():
    out = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, check=True).stdout
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines()[2:] if line and not line.startswith("(")}
    assert rows["experiments"] == "experiments" and rows["plot"] == "presentation" and rows["rmt"] == "theory"


def test_plot_imports_no_jax_or_scipy():
    for path in sorted((ROOT / "gradcourse" / "plot").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [("." * node.level) + (node.module or "")]
            for name in names:
                top = name.lstrip(".").split(".")[0]
                assert top not in {"jax", "jaxlib", "scipy", "optax"}, f"{path.name} imports {name}"
                if name.startswith(".."):  # from the package: only naming helpers of the core
                    assert top in {"activations", ""}, f"{path.name} imports {name}"


def test_the_package_has_no_upward_import():
    """Layers have one direction of use: ``--check`` fails on any import from a layer above."""
    res = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout


def test_a_display_hook_may_draw_with_plot(graph_module, tmp_path):
    """An import inside ``_repr_html_`` / ``figure`` is a display hook, listed but not an upward edge."""
    src = tmp_path / "m.py"
    src.write_text("class R:\n    def _repr_html_(self):\n        from .plot import x\n\n"
                   "def f():\n    from .theory import y\n")
    assert graph_module.display_hook_nodes(src) == {"plot"}
    src.write_text("from .plot import x\n\nclass R:\n    def figure(self):\n        from .plot import x\n")
    assert graph_module.display_hook_nodes(src) == set()  # also imported outside a hook: a real edge
