"""Do what a learner does, in a real browser.

For every course notebook: open it in JupyterLab (headless Debian Chromium driven by
Playwright), run all cells from the *Run* menu, wait for the kernel to go idle, and
check that no error is shown.  Then, for every interactive explorer (an ipywidgets
control -- slider or dropdown -- next to a figure image in a cell's output), move the
control and check that the figure changes.  Screenshots of each explorer before and
after go to ``test-artifacts/browser/<notebook>/``.

The fixtures ``jupyter_lab`` and ``chromium_browser`` live in ``conftest.py``; they skip
when Chromium or Playwright is missing, or fail when ``GRADCOURSE_REQUIRE_BROWSER=1``.
A harness self-test runs two throw-away notebooks (one clean with an explorer, one
with an error), so the checks are known to catch what they claim to catch independently
of the course notebooks.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from nbval_outputs import output_mismatches

pytestmark = pytest.mark.browser

REPO_ROOT = Path(__file__).resolve().parent.parent
# Last notebook first: nbval runs them first to last, so with two workers (see conftest.py) each notebook's
# programs are compiled once and loaded from the shared compilation cache by the other run.
NOTEBOOKS = sorted((p.name for p in (REPO_ROOT / "notebooks").glob("*.ipynb")), reverse=True)
ARTIFACTS = REPO_ROOT / "test-artifacts" / "browser"
# Per-notebook limit for "Run All" (each course notebook is meant to need < 60 s).
RUN_TIMEOUT_S = float(os.environ.get("GRADCOURSE_BROWSER_TIMEOUT", "300"))
FIGURE_TIMEOUT_S = float(os.environ.get("GRADCOURSE_FIGURE_TIMEOUT", "120"))
CONTROL_SELECTOR = ".widget-slider, .widget-dropdown"

# --------------------------------------------------------------------------------------
# JavaScript run in the page.  JupyterLab is started with expose_app_in_browser, so
# window.jupyterapp is the application; the notebook panel is found by its path.
# --------------------------------------------------------------------------------------
_JS_PANEL = """
(path) => {
  const app = window.jupyterapp;
  if (!app) return null;
  for (const w of Array.from(app.shell.widgets('main'))) {
    if (w.context && w.context.path === path && w.content && w.content.model) return w;
  }
  return null;
}
"""

_JS_READY = f"""
(path) => {{
  const panel = ({_JS_PANEL})(path);
  if (!panel || !panel.context.isReady || !panel.sessionContext.isReady) return 'loading';
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  if (!kernel) return 'no-kernel';
  return kernel.status;
}}
"""

_JS_PROGRESS = f"""
(path) => {{
  const panel = ({_JS_PANEL})(path);
  if (!panel) return null;
  const prompts = Array.from(panel.content.node.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt'))
      .map(n => n.textContent.trim());
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  return {{
    cells: prompts.length,
    running: prompts.filter(p => p.includes('*')).length,
    executed: prompts.filter(p => /\\d/.test(p)).length,
    status: kernel ? kernel.status : 'no-kernel',
  }};
}}
"""

# Per cell (model order): stderr/error outputs as rendered, widget rendering failures,
# widget controls and figure images found in the cell's output area.
_JS_CELLS = f"""
(path) => {{
  const panel = ({_JS_PANEL})(path);
  return panel.content.widgets.map((cell, i) => {{
    cell.node.setAttribute('data-gc-index', String(i));
    const out = cell.node.querySelector('.jp-Cell-outputArea');
    if (!out) return {{index: i, stderr: [], widgetErrors: [], controls: [], images: 0, figureAsText: false}};
    const stderr = Array.from(out.querySelectorAll(
        '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'))
        .map(n => n.textContent);
    const widgetErrors = Array.from(out.querySelectorAll('.jupyter-widgets'))
        .map(n => n.textContent).filter(t => t.includes('Error displaying widget'));
    const controls = Array.from(out.querySelectorAll('{CONTROL_SELECTOR}'))
        .map(n => n.classList.contains('widget-dropdown') ? 'dropdown' : 'slider');
    const figureAsText = /<Figure size [^>]*>/.test(out.textContent);
    return {{index: i, stderr, widgetErrors, controls, images: out.querySelectorAll('img').length, figureAsText}};
  }});
}}
"""

_JS_MODEL = f"""(path) => ({_JS_PANEL})(path).content.model.toJSON()"""

# Lines that mark a Python error in rendered stderr text (IPython tracebacks, including
# SyntaxError, which has no "Traceback" header).
_ERROR_LINE = re.compile(r"(?m)^\s*(Traceback \(most recent call last\)|[\w.]*(Error|Exception)\b(:.*)?$)")


@dataclass
class Explorer:
    cell: int
    control: str
    changed: bool = False
    before: Path | None = None
    after: Path | None = None
    detail: str = ""


@dataclass
class BrowserRun:
    """What a learner would have seen: errors, unexecuted cells and explorer behaviour."""

    path: str
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    unexecuted: list[int] = field(default_factory=list)
    explorers: list[Explorer] = field(default_factory=list)
    stderr_notes: list[str] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)  # seconds per phase: open, run, check, explorers

    def problems(self) -> list[str]:
        out = list(self.errors)
        if self.unexecuted and not self.errors:
            out.append(f"code cells never ran: {self.unexecuted}")
        for e in self.explorers:
            if not e.changed:
                out.append(f"explorer in cell {e.cell}: moving the {e.control} did not change the figure {e.detail}")
        return out


def _wait(predicate, timeout: float, interval: float = 0.5, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def _accept_dialogs(page) -> None:
    """Accept a modal dialog if one is open (e.g. kernel selection)."""
    button = page.locator(".jp-Dialog .jp-Dialog-button.jp-mod-accept")
    if button.count():
        button.first.click()


def _menu(page, menu: str, item: str) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{re.escape(menu)}$")).first.click()
    page.locator(".lm-Menu-content .lm-Menu-itemLabel", has_text=re.compile(f"^{re.escape(item)}$")).first.click()


def _image_srcs(cell_locator) -> list[str]:
    return cell_locator.locator(".jp-Cell-outputArea img").evaluate_all("els => els.map(e => e.src)")


def _move_control(cell_locator, control: str) -> str:
    """Move the first control of kind ``control``; returns a description of the move."""
    widget = cell_locator.locator(".widget-slider" if control == "slider" else ".widget-dropdown").first
    widget.scroll_into_view_if_needed()
    if control == "slider":
        handle = widget.locator(".noUi-handle").first

        def state():  # aria-valuenow alone is rounded (1.76 and 1.79 both read "1.8")
            readout = widget.locator(".widget-readout")
            text = readout.first.text_content() if readout.count() else ""
            return (text or "").strip(), handle.get_attribute("aria-valuetext"), handle.get_attribute("aria-valuenow")

        start = state()
        handle.focus()
        for key in ("ArrowRight", "ArrowLeft"):  # ArrowLeft only when the slider is at its maximum
            for _ in range(3):
                handle.press(key)
                time.sleep(0.15)
            now = state()
            if now != start:
                return f"slider {start[0] or start[1]} -> {now[0] or now[1]}"
        return f"slider stuck at {start[0] or start[1]}"
    select = widget.locator("select").first
    options = select.locator("option").evaluate_all("els => els.map(e => e.value)")
    current = select.input_value()
    others = [o for o in options if o != current]
    if not others:
        return f"dropdown has a single option {current!r}"
    select.select_option(others[0])
    return f"dropdown {current!r} -> {others[0]!r}"


class LabTab:
    """One browser tab on the module's JupyterLab, reused for every notebook the module runs.

    The first notebook is opened by loading ``lab/tree/<path>``; each later one is opened inside the already
    loaded application (``docmanager:open``, as a learner opens the next notebook from the file browser) and
    closed again afterwards, its kernel shut down.  Loading JupyterLab itself (its JavaScript bundles, the
    settings, the extensions) is then paid once per module instead of once per notebook: about 5 s each on
    an idle 2-core machine, more while the other pytest worker computes.  After a run that failed, the tab
    is thrown away and the next notebook gets a freshly loaded one, so one broken run cannot leak into the
    next.
    """

    def __init__(self, browser, lab):
        self.browser, self.lab = browser, lab
        self.context = self.page = None
        self.errors: list[str] = []  # uncaught page errors since the last `open`

    def open(self, relpath: str):
        """Show ``relpath`` in the tab (loading JupyterLab if the tab is new); returns the Playwright page."""
        self.errors = []
        if self.page is None:
            self.context = self.browser.new_context(viewport={"width": 1400, "height": 1000})
            self.page = self.context.new_page()
            self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
            self.page.goto(self.lab.url(f"lab/tree/{relpath}"), wait_until="domcontentloaded", timeout=120_000)
        else:
            self.page.evaluate(
                "(path) => window.jupyterapp.commands.execute('docmanager:open', {path, factory: 'Notebook'})"
                ".then(() => true)", relpath)
        return self.page

    def close(self, relpath: str, reset: bool = False) -> None:
        """Close ``relpath``'s panel without a save prompt and shut its kernel down; ``reset``: drop the tab."""
        if self.page is not None and not reset:
            try:
                self.page.evaluate(f"(path) => {{ const p = ({_JS_PANEL})(path); if (p) p.dispose(); return true; }}",
                                   relpath)
            except Exception:  # noqa: BLE001 - a tab that cannot close the panel is not reused
                reset = True
        if reset and self.context is not None:
            self.context.close()
            self.context = self.page = None
        self.lab.shutdown_sessions(relpath)

    def quit(self) -> None:
        if self.context is not None:
            self.context.close()
        self.context = self.page = None


def run_in_lab(tab: LabTab, relpath: str, artifacts: Path, *, errors_expected: bool = False) -> BrowserRun:
    """Open ``relpath`` in JupyterLab, Run All Cells, then exercise every explorer.

    After a run with errors the tab is replaced by a fresh one, unless ``errors_expected`` (the harness's
    deliberately broken notebooks: their errors are Python errors in a cell, not a damaged page).
    """
    artifacts.mkdir(parents=True, exist_ok=True)
    for old in artifacts.glob("*.png"):
        old.unlink()
    result = BrowserRun(relpath)
    t0 = time.monotonic()
    lab = tab.lab
    # The file as committed (the server root holds a copy of notebooks/ and never saves to it): the
    # reference for nbval's output check, which this run does in place of nbval's own (tests/conftest.py).
    reference = json.loads((lab.root / relpath).read_text())
    page = tab.open(relpath)
    try:
        def ready():
            _accept_dialogs(page)
            return page.evaluate(_JS_READY, relpath) == "idle"

        _wait(ready, 120, what=f"{relpath} to open with an idle kernel")
        result.phases["open"] = time.monotonic() - t0
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs')")

        # The learner's action: Run -> Run All Cells.
        _menu(page, "Run", "Run All Cells")
        _wait(lambda: (p := page.evaluate(_JS_PROGRESS, relpath)) and (p["running"] or p["executed"] or not p["cells"]),
              60, interval=0.2, what="execution to start")

        stable = 0

        def finished():
            nonlocal stable
            _accept_dialogs(page)
            p = page.evaluate(_JS_PROGRESS, relpath)
            done = p["running"] == 0 and p["status"] == "idle" and lab.kernel_state(relpath) == "idle"
            stable = stable + 1 if done else 0
            return stable >= 3

        timed_out = False
        try:
            _wait(finished, RUN_TIMEOUT_S, what=f"Run All Cells of {relpath} to finish")
        except TimeoutError as exc:
            result.errors.append(str(exc))
            timed_out = True
        result.seconds = time.monotonic() - t0
        result.phases["run"] = result.seconds - result.phases["open"]

        t1 = time.monotonic()
        _check_outputs(page, relpath, result, reference)
        result.phases["check"] = time.monotonic() - t1
        if not timed_out:  # explorers above a failing cell are live and still worth checking
            t1 = time.monotonic()
            _exercise_explorers(page, lab, relpath, artifacts, result)
            result.phases["explorers"] = time.monotonic() - t1
        if tab.errors:
            result.stderr_notes.append("page errors: " + " | ".join(tab.errors[:5]))
    except BaseException:
        result.errors.append("the run stopped with an exception (see the traceback)")
        raise
    finally:
        try:
            failing = re.match(r"cell (\d+):", (result.errors or [""])[0])
            if failing:
                page.locator(f'[data-gc-index="{failing.group(1)}"]').scroll_into_view_if_needed(timeout=5000)
            page.screenshot(path=str(artifacts / "page.png"))
        except Exception:  # noqa: BLE001 - a screenshot must never hide the real failure
            pass
        tab.close(relpath, reset=bool(result.errors or result.unexecuted) and not errors_expected)
    return result


def _check_outputs(page, relpath: str, result: BrowserRun, reference: dict) -> None:
    model = page.evaluate(_JS_MODEL, relpath)
    cells = page.evaluate(_JS_CELLS, relpath)
    expected = set()
    for i, cell in enumerate(model["cells"]):
        if cell["cell_type"] != "code":
            continue
        tags = cell.get("metadata", {}).get("tags", [])
        if "raises-exception" in tags:
            expected.add(i)
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                result.errors.append(f"cell {i}: {out.get('ename')}: {out.get('evalue')}")
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if source.strip() and cell.get("execution_count") is None:
            result.unexecuted.append(i)
    for info in cells:
        if info["index"] in expected:
            continue
        for text in info["stderr"]:
            if _ERROR_LINE.search(text):
                line = next(m.group(0).strip() for m in _ERROR_LINE.finditer(text))
                msg = f"cell {info['index']}: error shown on the page: {line}"
                if not any(msg.split(":")[0] == e.split(":")[0] and line in e for e in result.errors):
                    result.errors.append(msg)
            else:
                result.stderr_notes.append(f"cell {info['index']} stderr: {text.strip()[:200]}")
        for text in info["widgetErrors"]:
            result.errors.append(f"cell {info['index']}: {text.strip()[:200]}")
        if info["figureAsText"] and not info["images"]:
            result.errors.append(
                f"cell {info['index']}: a matplotlib Figure is shown as text ('<Figure size ...>') instead of an "
                "image: the inline backend's formatters are not active when it is displayed")
    # nbval's check of the NBVAL_CHECK_OUTPUT cells; after an error or a time-out later cells never ran.
    if not result.errors and not result.unexecuted:
        result.errors += output_mismatches(reference, model)


def _exercise_explorers(page, lab, relpath: str, artifacts: Path, result: BrowserRun) -> None:
    cells = page.evaluate(_JS_CELLS, relpath)
    for info in cells:
        if not info["controls"] or not info["images"]:
            continue
        i = info["index"]
        control = "slider" if "slider" in info["controls"] else "dropdown"
        cell = page.locator(f'[data-gc-index="{i}"]')
        cell.scroll_into_view_if_needed()
        exp = Explorer(i, control)
        exp.before = artifacts / f"cell{i:02d}-{control}-before.png"
        exp.after = artifacts / f"cell{i:02d}-{control}-after.png"
        output = cell.locator(".jp-Cell-outputArea")
        output.screenshot(path=str(exp.before))
        before = _image_srcs(cell)
        move = _move_control(cell, control)

        def cell_errors(i: int = i) -> list[str]:
            info_now = next(c for c in page.evaluate(_JS_CELLS, relpath) if c["index"] == i)
            return [t for t in info_now["stderr"] if _ERROR_LINE.search(t)] + info_now["widgetErrors"]

        def settled(cell=cell, before=before, cell_errors=cell_errors):
            srcs = _image_srcs(cell)
            return (srcs and srcs != before) or cell_errors()

        try:
            _wait(settled, FIGURE_TIMEOUT_S, what="the figure to change")
            _wait(lambda: lab.kernel_state(relpath) == "idle", FIGURE_TIMEOUT_S, what="the kernel to go idle")
            time.sleep(0.5)
            after_srcs = _image_srcs(cell)
            exp.changed = bool(after_srcs) and after_srcs != before
        except TimeoutError as exc:
            exp.detail = f"({move}; {exc})"
        output.screenshot(path=str(exp.after))
        exp.detail = exp.detail or f"({move})"
        result.explorers.append(exp)
        # The callback may have raised inside the widget's output area.
        for text in cell_errors():
            line = next((m.group(0).strip() for m in _ERROR_LINE.finditer(text)), text.strip()[:200])
            result.errors.append(f"cell {i}: after moving the {control}: {line}")


def _report(run: BrowserRun) -> str:
    phases = ", ".join(f"{k} {v:.1f}s" for k, v in run.phases.items())
    lines = [f"{run.path}: {run.seconds:.1f}s to run all cells, {len(run.explorers)} explorer(s) ({phases})"]
    lines += [f"  explorer cell {e.cell}: {e.control} changed={e.changed} {e.detail}" for e in run.explorers]
    lines += [f"  note: {n}" for n in run.stderr_notes]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# The course notebooks
# --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def lab_tab(jupyter_lab, chromium_browser):
    """The module's one browser tab on its JupyterLab (see `LabTab`)."""
    tab = LabTab(chromium_browser, jupyter_lab)
    yield tab
    tab.quit()


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_in_jupyterlab(name, lab_tab):
    run = run_in_lab(lab_tab, f"notebooks/{name}", ARTIFACTS / Path(name).stem)
    print(_report(run))
    problems = run.problems()
    assert not problems, f"{name} in JupyterLab:\n  " + "\n  ".join(problems) + "\n" + _report(run)


# --------------------------------------------------------------------------------------
# Harness self-test on throw-away notebooks (written into the scratch server root only)
# --------------------------------------------------------------------------------------

def _code(src: str, tags=()):
    return {"cell_type": "code", "execution_count": None, "metadata": {"tags": list(tags)},
            "outputs": [], "source": src}


def _checked(src: str, stored: str):
    """A code cell nbval compares (``# NBVAL_CHECK_OUTPUT``), stored as executed with stdout ``stored``."""
    return {"cell_type": "code", "execution_count": 1, "metadata": {},
            "outputs": [{"output_type": "stream", "name": "stdout", "text": stored}],
            "source": "# NBVAL_CHECK_OUTPUT\n" + src}


def _write_notebook(path: Path, cells) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nb = {
        "cells": cells,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                     "language_info": {"name": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    for k, cell in enumerate(nb["cells"]):
        cell["id"] = f"cell-{k}"
    path.write_text(json.dumps(nb, indent=1))


_EXPLORER_SRC = """\
def show(depth=3, act="tanh"):
    x = np.linspace(-3, 3, 101)
    y = x
    for _ in range(depth):
        y = np.tanh(2 * y) if act == "tanh" else np.maximum(y, 0) * 1.5
    fig, ax = plt.subplots(figsize=(4, 2.5))
    ax.plot(x, y)
    ax.set_title(f"depth={depth} act={act}")
    plt.show()
widgets.interact(show, depth=widgets.IntSlider(3, 1, 10, continuous_update=False),
                 act=widgets.Dropdown(options=["tanh", "relu"]));"""


def test_browser_harness_self_check(jupyter_lab, lab_tab):
    """The harness runs a clean notebook, moves its explorer, and catches errors."""
    root = jupyter_lab.root / "_harness"
    setup = _code("%matplotlib inline\nimport sys\nimport numpy as np\nimport matplotlib.pyplot as plt\n"
                  "import ipywidgets as widgets\nprint('a harmless warning', file=sys.stderr)")
    _write_notebook(root / "clean.ipynb", [
        setup,
        _code(_EXPLORER_SRC),
        _code('widgets.interact(show, depth=widgets.fixed(4), act=widgets.Dropdown(options=["tanh", "relu"]));'),
        _code("raise ValueError('expected: tagged raises-exception')", tags=["raises-exception"]),
        _code("print('still runs after an expected error')"),
        _checked("print(2 + 2)", "4\n"),
    ])
    _write_notebook(root / "broken.ipynb", [
        setup,
        _code("1 / 0"),
        _code("print('never reached')"),
    ])
    clean = run_in_lab(lab_tab, "_harness/clean.ipynb", ARTIFACTS / "_harness_clean")
    print(_report(clean))
    assert clean.problems() == []
    assert [(e.cell, e.control, e.changed) for e in clean.explorers] == [(1, "slider", True), (2, "dropdown", True)]
    assert clean.explorers[0].before.stat().st_size > 0 and clean.explorers[0].after.stat().st_size > 0
    assert any("harmless warning" in n for n in clean.stderr_notes)

    _write_notebook(root / "fragile.ipynb", [
        setup,
        _code(_EXPLORER_SRC.replace("    x = np.linspace",
                                    "    assert depth == 3, f'cannot draw depth={depth}'\n    x = np.linspace")),
    ])
    fragile = run_in_lab(lab_tab, "_harness/fragile.ipynb", ARTIFACTS / "_harness_fragile", errors_expected=True)
    print(_report(fragile))
    assert any("after moving the slider" in e and "AssertionError" in e for e in fragile.errors), fragile.errors

    _write_notebook(root / "textfig.ipynb", [
        _code("from matplotlib.figure import Figure\nfrom IPython.display import display\n"
              "fig = Figure()\nfig.add_subplot().plot([1, 2])\ndisplay(fig)"),
    ])
    textfig = run_in_lab(lab_tab, "_harness/textfig.ipynb", ARTIFACTS / "_harness_textfig", errors_expected=True)
    print(_report(textfig))
    assert any("shown as text" in e for e in textfig.errors), textfig.errors

    # nbval's output check, done by this run in place of nbval's (tests/nbval_outputs.py): a stored output
    # that the code no longer prints is caught and named; a matching one passes (clean.ipynb above).
    _write_notebook(root / "drifted.ipynb", [_checked("print(2 + 2)", "4\n"), _checked("print(0.1 + 0.2)", "0.3\n")])
    drifted = run_in_lab(lab_tab, "_harness/drifted.ipynb", ARTIFACTS / "_harness_drifted", errors_expected=True)
    print(_report(drifted))
    assert len(drifted.errors) == 1 and drifted.errors[0].startswith("cell 1: output differs"), drifted.errors
    assert "0.30000000000000004" in drifted.errors[0]

    broken = run_in_lab(lab_tab, "_harness/broken.ipynb", ARTIFACTS / "_harness_broken")
    print(_report(broken))
    assert any("ZeroDivisionError" in e for e in broken.errors), broken.errors
    assert broken.unexecuted == [2]
    assert broken.problems()


# --------------------------------------------------------------------------------------
# The first screen is the course, not the "official Jupyter news?" pop-up
# --------------------------------------------------------------------------------------

NEWS_PROMPT = "Would you like to get notified about official Jupyter news?"
NOTIFICATION_SETTINGS = "@jupyterlab/apputils-extension:notification"
START = "notebooks/00_start_here.ipynb"
_JS_CURRENT_PATH = """() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  return w && w.context ? w.context.path : null;
}"""


def _readme_launch() -> tuple[list[str], str]:
    """The options and the notebook of the README's local launch command `jupyter lab [OPTIONS] NOTEBOOK`."""
    match = re.search(r"jupyter lab ((?:--\S+\s+)*)(notebooks/\S+\.ipynb)", (REPO_ROOT / "README.md").read_text())
    assert match, "README.md has no `jupyter lab ... notebooks/NN_name.ipynb` launch command"
    return match.group(1).split(), match.group(2)


@pytest.mark.parametrize("launch", ["readme", "binder", "no-settings"])
def test_first_screen_is_the_course_not_a_news_popup(launch, chromium_browser, tmp_path_factory):
    """Start JupyterLab as a learner would (the README's local command, or with the settings postBuild
    installs into Binder's environment) with no user settings, and look at the first screen: the start
    notebook, no news pop-up.  ``no-settings`` is the control: plain JupyterLab does show the pop-up,
    so this check can fail."""
    import subprocess
    import sys
    import urllib.request

    from conftest import _prepare_root, _start_lab, _stop

    tmp = tmp_path_factory.mktemp(f"lab-{launch}")
    root = _prepare_root(tmp)
    settings = {"@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False}}
    args: list[str] = []
    env: dict[str, str] = {}
    path = f"lab/tree/{START}"
    if launch == "readme":
        args, notebook = _readme_launch()
        assert notebook == START
        path = f"lab/tree/{notebook}"
    elif launch == "binder":  # what binder/postBuild installs, into a scratch prefix
        prefix = tmp / "prefix"
        installer = REPO_ROOT / "scripts" / "install_lab_settings.py"
        subprocess.run([sys.executable, str(installer), "--prefix", str(prefix)], check=True, capture_output=True)
        args = [f"--LabApp.app_settings_dir={prefix / 'share' / 'jupyter' / 'lab' / 'settings'}"]
        env = {"JUPYTER_CONFIG_PATH": str(prefix / "etc" / "jupyter")}
        path = ""  # the server's default page (ServerApp.default_url) must be the course
    lab = _start_lab(tmp, root, settings=settings, extra_args=tuple(args), extra_env=env)
    context = chromium_browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    try:
        # What the notification plugin reads: the composite setting after overrides.
        request = urllib.request.Request(f"{lab.base_url}/lab/api/settings/{NOTIFICATION_SETTINGS}",
                                         headers={"Authorization": f"token {lab.token}"})
        with urllib.request.urlopen(request, timeout=60) as resp:
            reply = json.loads(resp.read())
        # composite = the user's value, else the schema default (which overrides.json replaces)
        composite = {k: v.get("default") for k, v in reply["schema"]["properties"].items()} | reply["settings"]
        fetch_news = composite["fetchNews"]
        page.goto(lab.url(path), wait_until="domcontentloaded", timeout=120_000)
        _wait(lambda: page.evaluate("() => !!window.jupyterapp"), 120, what="JupyterLab to load")
        page.evaluate("() => window.jupyterapp.restored.then(() => true)")
        _wait(lambda: page.evaluate(_JS_CURRENT_PATH) == START, 120, what=f"{START} to be the open document")
        prompt = page.get_by_text(NEWS_PROMPT)
        if launch == "no-settings":
            assert fetch_news == "none"
            _wait(lambda: prompt.count() > 0, 60, what="the news pop-up (control: plain JupyterLab shows it)")
        else:
            assert fetch_news == "false", composite
            time.sleep(5)  # the pop-up would come right after the app is restored
            assert prompt.count() == 0, f"{launch}: the news pop-up is shown"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"first-screen-{launch}.png"))
    finally:
        context.close()
        lab.shutdown_sessions(START)
        _stop(lab.process)
