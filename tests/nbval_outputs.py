"""nbval's output check, applied to a notebook that was executed somewhere else (in JupyterLab).

When the browser test runs a course notebook (a learner's *Run All Cells* in JupyterLab), that run also
does nbval's job for it, so CI executes each notebook once instead of twice (see ``tests/conftest.py``):
every cell must run without an error (the browser test checks that), and every cell that nbval would
check -- a ``# NBVAL_CHECK_OUTPUT`` comment or an ``nbval-check-output`` tag, found with nbval's own marker
parsers -- must print what the committed notebook stores.

The comparison follows ``nbval.plugin.IPyNbCell.compare_outputs`` (nbval 0.11), written out here because
that is a method of nbval's pytest item: it needs the item's kernel, config and reporting hooks. The rule:
stream outputs are merged per stream with nbval's ``coalesce_streams`` (which also applies ``\\r`` and
``\\b``); every output is flattened into ``{key: [values in order]}`` where a display's MIME types become
keys, leaving out the keys nbval skips (metadata, traceback, execution counts, widget model ids, images
-- this project uses no ``--nbdime`` and no sanitize patterns); the two dictionaries must be equal. A
reference cell that was never executed is not checked, as in nbval. ``tests/test_nbval_outputs.py``
checks this function's verdict against nbval's own method on the cases that matter.
"""

from __future__ import annotations

from collections import defaultdict

import nbformat
from nbval.plugin import coalesce_streams, find_comment_markers, find_metadata_tags

BROWSER_NOTEBOOK_TEST = "tests/test_browser.py::test_notebook_in_jupyterlab["


def handed_to_browser(nodeids: list[str]) -> list[str]:
    """The nbval items (``notebooks/NAME.ipynb::Cell k``) of every notebook that the browser test also runs
    in this selection (``tests/test_browser.py::test_notebook_in_jupyterlab[NAME.ipynb]``): those the browser
    run checks in their place (see ``tests/conftest.py``)."""
    in_browser = {i[len(BROWSER_NOTEBOOK_TEST):-1] for i in nodeids if i.startswith(BROWSER_NOTEBOOK_TEST)}
    return [i for i in nodeids
            if i.startswith("notebooks/") and i.split("::")[0][len("notebooks/"):] in in_browser]


# IPyNbFile.skip_compare in nbval 0.11, without --nbdime.
SKIP_COMPARE = (
    "metadata",
    "traceback",
    "prompt_number",
    "output_type",
    "name",
    "execution_count",
    "application/vnd.jupyter.widget-view+json",
    "image/png",
    "image/jpeg",
)


def checks_output(cell) -> bool:
    """True for a code cell whose outputs nbval compares under ``--nbval-lax``."""
    if cell.get("cell_type") != "code":
        return False
    options = dict(find_metadata_tags(cell.get("metadata", {})))
    source = cell.get("source", "")
    options.update(find_comment_markers("".join(source) if isinstance(source, list) else source))
    return bool(options.get("check", False))


def _flatten(outputs) -> dict[str, list]:
    flat: dict[str, list] = defaultdict(list)
    for out in outputs:
        if out.get("output_type") == "stream":
            out = {"output_type": "stream", out["name"]: out["text"]}
        for key, value in out.items():
            if key in SKIP_COMPARE:
                continue
            if key == "data":
                for mime, data in value.items():
                    if mime not in SKIP_COMPARE:
                        flat[mime].append(data)
            else:
                flat[key].append(value)
    return dict(flat)


def _joined(value):
    """A multi-line string stored as a list of lines (the on-disk form) as one string (nbformat's read)."""
    return "".join(value) if isinstance(value, list) and all(isinstance(v, str) for v in value) else value


def _outputs(cell) -> list:
    outs = []
    for out in cell.get("outputs", []):
        out = dict(out)
        if "text" in out:
            out["text"] = _joined(out["text"])
        if "data" in out:
            out["data"] = {mime: _joined(v) for mime, v in out["data"].items()}
        outs.append(nbformat.from_dict(out))
    return coalesce_streams(outs)


def outputs_match(reference_cell, executed_cell) -> tuple[bool, str]:
    """(equal, what differs) for one cell's outputs, compared as nbval compares them."""
    ref, test = _flatten(_outputs(reference_cell)), _flatten(_outputs(executed_cell))
    if set(ref) != set(test):
        missing, extra = sorted(set(ref) - set(test)), sorted(set(test) - set(ref))
        return False, f"output fields missing {missing}, unexpected {extra}"
    for key, ref_values in ref.items():
        test_values = test[key]
        if len(ref_values) != len(test_values):
            return False, f"{len(test_values)} outputs of {key!r} where the notebook stores {len(ref_values)}"
        for r, t in zip(ref_values, test_values, strict=True):
            if r != t:
                return False, f"{key!r} differs:\n  stored:   {r!r}\n  computed: {t!r}"
    return True, ""


def output_mismatches(reference_nb: dict, executed_nb: dict) -> list[str]:
    """One message per checked cell whose executed outputs differ from the reference notebook's.

    Cells are matched by position (the executed notebook is the reference one, run); a different cell
    count is itself reported. Indices are positions among all cells, as the browser test reports them.
    """
    ref_cells, test_cells = reference_nb["cells"], executed_nb["cells"]
    if len(ref_cells) != len(test_cells):
        return [f"the executed notebook has {len(test_cells)} cells, the committed one {len(ref_cells)}"]
    problems = []
    for i, (ref, test) in enumerate(zip(ref_cells, test_cells, strict=True)):
        if not checks_output(ref) or ref.get("execution_count") is None:
            continue
        equal, detail = outputs_match(ref, test)
        if not equal:
            problems.append(f"cell {i}: output differs from the committed notebook (NBVAL_CHECK_OUTPUT): {detail}")
    return problems
