#!/usr/bin/env python
"""Print which gradcourse module imports which, as a short text table (stdlib ``ast`` only; imports nothing).

    python scripts/import_graph.py            # one row per module: its layer, then the gradcourse modules it imports
    python scripts/import_graph.py --check    # also exit 1 if a module imports one from a layer above its own

A module's layer is read from its docstring ("Layer: core", "(theory layer)", ...) and, where the
docstring does not say, from the table ``LAYER_OF`` below. Packages (``plot``, ``widgets``, ``models``,
``exercises``) are shown as one row each: ``plot.spectra`` counts as ``plot``. Imports inside functions
count too (a lazy import is still a dependency), with one exception: an import inside a display
hook -- a method named ``figure``, ``_repr_html_`` (any ``_repr_*_``) or ``_ipython_display_`` -- lets a
result computed in a lower layer draw itself with ``gc.plot`` (as pandas' ``DataFrame.plot`` does with
matplotlib). Such an edge is listed as ``plot(display)`` and is not an upward import.
"""
from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "gradcourse"
LAYERS = ("core", "theory", "experiments", "presentation", "course")
# Fallback for modules whose docstring names no layer (packages are grouped into one row).
LAYER_OF = {
    "__init__": "course",
    "exercises": "course",
    "plot": "presentation",
    "widgets": "presentation",
    "experiments": "experiments",
    "theory": "theory",
    "rmt": "theory",
    "stats": "theory",
}
_PATTERNS = (
    (r"\bpresentation\b", "presentation"),
    (r"\bexperiments? layer\b|\blayer: experiments\b", "experiments"),
    (r"\btheory( and statistics)? layer\b|\bstatistics layer\b|\blayer: theory\b", "theory"),
    (r"\bcore layer\b|\blayer: core\b", "core"),
)


def node_of(path: Path) -> str:
    """``plot/spectra.py`` -> ``plot``; ``theory.py`` -> ``theory``; ``__init__.py`` -> ``__init__``."""
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


DISPLAY_HOOKS = re.compile(r"^(figure|_repr_\w+_|_ipython_display_)$")


def display_hook_nodes(path: Path) -> set[str]:
    """The gradcourse nodes imported *only* inside display hooks (see the module docstring)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    inside: set[int] = set()
    for fn in ast.walk(tree):
        if isinstance(fn, ast.FunctionDef) and DISPLAY_HOOKS.match(fn.name):
            inside.update(id(n) for n in ast.walk(fn))
    hooked, elsewhere = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            target = (node.module or "").split(".")[0]
            (hooked if id(node) in inside else elsewhere).add(target)
    return hooked - elsewhere


def imported_nodes(path: Path) -> set[str]:
    """The gradcourse nodes that ``path`` imports (relative imports and ``gradcourse.x`` absolute ones)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = path.relative_to(PACKAGE).parts[:-1]  # the package path of this module, () at top level
    out: set[str] = set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: climb node.level - 1 packages up from here
                base = list(here[: len(here) - (node.level - 1)])
                parts = base + (node.module.split(".") if node.module else [])
                if parts:
                    out.add(parts[0])
                else:  # ``from . import theory`` at top level
                    out.update(alias.name.split(".")[0] for alias in node.names)
            elif node.module and node.module.split(".")[0] == "gradcourse":
                rest = node.module.split(".")[1:]
                out.update([rest[0]] if rest else [a.name for a in node.names])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "gradcourse" and len(parts) > 1:
                    out.add(parts[1])
                elif alias.name == "gradcourse":  # ``import gradcourse as gc``: count the ``gc.x`` it uses
                    names.add(alias.asname or "gradcourse")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in names:
            out.add(node.attr)
    return out


def layer_of(node: str, files: list[Path]) -> str:
    if node in LAYER_OF:
        return LAYER_OF[node]
    for f in files:
        doc = (ast.get_docstring(ast.parse(f.read_text(encoding="utf-8"))) or "").lower()
        for pattern, layer in _PATTERNS:
            if re.search(pattern, doc):
                return layer
    return "core"


def graph() -> tuple[dict[str, set[str]], dict[str, str], dict[str, set[str]]]:
    """(edges, layers, display-hook edges) of the package."""
    files: dict[str, list[Path]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        files.setdefault(node_of(path), []).append(path)
    edges = {n: set().union(*(imported_nodes(p) for p in ps)) - {n} for n, ps in files.items()}
    edges = {n: {m for m in deps if m in files} for n, deps in edges.items()}
    display = {n: set().union(*(display_hook_nodes(p) for p in ps)) & edges[n] for n, ps in files.items()}
    layers = {n: layer_of(n, ps) for n, ps in files.items()}
    return edges, layers, display


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if any import points up a layer")
    args = parser.parse_args()
    edges, layers, display = graph()
    rank = {layer: i for i, layer in enumerate(LAYERS)}
    order = sorted(edges, key=lambda n: (rank[layers[n]], n))
    width = max(map(len, order))
    print(f"{'module':<{width}}  {'layer':<12}  imports (gradcourse modules)")
    print(f"{'-' * width}  {'-' * 12}  {'-' * 40}")
    upward = []
    for n in order:
        deps = sorted(edges[n], key=lambda m: (rank[layers[m]], m))
        marked = []
        for m in deps:
            if m in display[n]:
                marked.append(f"{m}(display)")
            elif rank[layers[m]] > rank[layers[n]]:
                upward.append((n, m))
                marked.append(f"{m}(!)")
            else:
                marked.append(m)
        print(f"{n:<{width}}  {layers[n]:<12}  {', '.join(marked) or '-'}")
    if upward:
        print(f"\n(!) imports a module from a layer above its own: {', '.join(f'{a} -> {b}' for a, b in upward)}")
    return 1 if (args.check and upward) else 0


if __name__ == "__main__":
    sys.exit(main())
