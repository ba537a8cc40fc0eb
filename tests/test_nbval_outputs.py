"""The browser test's copy of nbval's output check agrees with nbval (see tests/nbval_outputs.py)."""

import copy
import inspect
import json
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest
from nbval.plugin import IPyNbCell, IPyNbFile, coalesce_streams, nocolors
from nbval_outputs import SKIP_COMPARE, checks_output, handed_to_browser, output_mismatches, outputs_match

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def _stream(text, name="stdout"):
    return {"output_type": "stream", "name": name, "text": text}


def _result(plain, png=None, count=1):
    data = {"text/plain": plain}
    if png is not None:
        data["image/png"] = png
    return {"output_type": "execute_result", "execution_count": count, "metadata": {}, "data": data}


def _cell(outputs, source="# NBVAL_CHECK_OUTPUT\nprint(1)", count=1, tags=()):
    return {"cell_type": "code", "execution_count": count, "metadata": {"tags": list(tags)},
            "source": source, "outputs": outputs}


def _nbval_verdict(reference_outputs, test_outputs) -> bool:
    """nbval's own IPyNbCell.compare_outputs, called on a stand-in for its pytest item."""
    item = SimpleNamespace(colors=nocolors, parent=SimpleNamespace(skip_compare=SKIP_COMPARE),
                           sanitize=lambda s: s, comparison_traceback=[])
    item.format_output_compare = lambda key, left, right: item.comparison_traceback.append(key)

    def as_read(outputs):  # what nbformat.read / the kernel messages give nbval: strings, NotebookNodes
        return coalesce_streams([nbformat.from_dict(json.loads(json.dumps(o))) for o in outputs])

    return IPyNbCell.compare_outputs(item, as_read(test_outputs), as_read(reference_outputs))


CASES = {
    "identical": ([_stream("loss 0.52\n")], [_stream("loss 0.52\n")], True),
    "one digit": ([_stream("loss 0.52\n")], [_stream("loss 0.53\n")], False),
    "stream split in two": ([_stream("a\nb\n")], [_stream("a\n"), _stream("b\n")], True),
    "image differs, text equal": ([_result("<Figure>", "AAA")], [_result("<Figure>", "BBB", count=7)], True),
    "result text differs": ([_result("0.5")], [_result("0.6")], False),
    "unexpected stderr": ([_stream("x\n")], [_stream("x\n"), _stream("warning\n", "stderr")], False),
    "missing output": ([_stream("x\n"), _result("1")], [_stream("x\n")], False),
    "carriage return": ([_stream("done\n")], [_stream("10%\rdone\n")], True),
    "one output more": ([_result("1")], [_result("1"), _result("1")], False),
}


@pytest.mark.parametrize("name", CASES)
def test_verdict_agrees_with_nbval(name):
    reference, executed, expected = CASES[name]
    assert _nbval_verdict(reference, executed) is expected  # the case is what we think it is
    equal, detail = outputs_match(_cell(reference), _cell(executed))
    assert equal is expected, detail
    assert bool(detail) is not expected


def test_lines_as_list_equal_one_string():
    """The committed file stores text as a list of lines; JupyterLab's model gives one string."""
    stored = _cell([{"output_type": "stream", "name": "stdout", "text": ["a\n", "b\n"]},
                    {"output_type": "execute_result", "execution_count": 1, "metadata": {},
                     "data": {"text/plain": ["x", "y"]}}])
    live = _cell([_stream("a\nb\n"), _result("xy")])
    assert outputs_match(stored, live) == (True, "")


def test_skip_list_is_nbvals():
    source = inspect.getsource(IPyNbFile.__init__)
    for key in SKIP_COMPARE:
        assert repr(key) in source or f'"{key}"' in source, key


def test_which_cells_are_checked():
    assert checks_output(_cell([], source="x = 1\n# NBVAL_CHECK_OUTPUT\nprint(x)"))
    assert checks_output(_cell([], source="print(1)", tags=["nbval-check-output"]))
    assert not checks_output(_cell([], source="print(1)"))
    assert not checks_output({"cell_type": "markdown", "source": "# NBVAL_CHECK_OUTPUT", "metadata": {}})


def test_mismatches_name_the_cell_and_skip_what_nbval_skips():
    reference = {"cells": [
        {"cell_type": "markdown", "metadata": {}, "source": "text"},
        _cell([_stream("1\n")]),                            # checked, will differ
        _cell([_stream("2\n")], source="print(2)"),         # not marked: never compared
        _cell([_stream("3\n")], count=None),                # never executed in the reference: not compared
        _cell([_stream("4\n")]),                            # checked, equal
    ]}
    executed = copy.deepcopy(reference)
    for cell, text in zip(executed["cells"][1:], ["9\n", "8\n", "7\n", "4\n"], strict=True):
        cell["outputs"] = [_stream(text)]
    problems = output_mismatches(reference, executed)
    assert len(problems) == 1 and problems[0].startswith("cell 1:") and "'1\\n'" in problems[0], problems
    assert output_mismatches(reference, {"cells": executed["cells"][:-1]}) == [
        "the executed notebook has 4 cells, the committed one 5"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_each_course_notebook_agrees_with_itself_and_has_checked_cells(path):
    nb = json.loads(path.read_text())
    assert output_mismatches(nb, nb) == []
    checked = [c for c in nb["cells"] if checks_output(c) and c.get("execution_count") is not None]
    assert checked, f"{path.name} has no NBVAL_CHECK_OUTPUT cell with stored outputs"
    changed = copy.deepcopy(nb)
    i = nb["cells"].index(checked[0])
    changed["cells"][i]["outputs"] = [_stream("something else\n")]
    assert output_mismatches(nb, changed)[0].startswith(f"cell {i}:")


def test_only_the_notebooks_the_browser_runs_are_handed_over():
    ids = ["tests/test_browser.py::test_notebook_in_jupyterlab[04_initialization.ipynb]",
           "tests/test_browser.py::test_browser_harness_self_check",
           "notebooks/04_initialization.ipynb::Cell 0", "notebooks/04_initialization.ipynb::Cell 1",
           "notebooks/01_backprop_basics.ipynb::Cell 0", "tests/test_core.py::test_x",
           "notebooks/00_start_here.ipynb::Cell 0"]
    assert handed_to_browser(ids) == ["notebooks/04_initialization.ipynb::Cell 0",
                                      "notebooks/04_initialization.ipynb::Cell 1"]
    assert handed_to_browser([i for i in ids if "test_notebook_in_jupyterlab" not in i]) == []
    assert handed_to_browser(ids[:1]) == []  # the browser test without nbval's items: nothing to hand over
