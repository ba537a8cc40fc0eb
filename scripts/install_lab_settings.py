"""Install the course's JupyterLab settings into a Python environment (what binder/postBuild runs).

    python scripts/install_lab_settings.py [--prefix PREFIX]     # default: this interpreter's sys.prefix

Two files from binder/ land where JupyterLab reads environment-wide settings:

* ``binder/lab-settings/overrides.json`` -> ``PREFIX/share/jupyter/lab/settings/overrides.json``
  (JupyterLab's *app settings* directory): "Fetch official Jupyter news" = Never and no update check,
  so the first screen is the course, not "Would you like to get notified about official Jupyter news?".
  Merged into an existing overrides.json (ours win), never replacing other plugins' keys.
* ``binder/jupyter_config.json``: its ``ServerApp`` section -> ``PREFIX/etc/jupyter/jupyter_server_config.d/
  gradcourse.json`` and its ``LabApp`` section merged into ``PREFIX/etc/jupyter/jupyter_lab_config.json``
  (JupyterLab reads its own options only from that file, not from a ``.d`` folder): the server opens
  ``notebooks/00_start_here.ipynb`` at ``/`` (``default_url``; LabApp's wins when ``jupyter lab`` is the
  app started), and JupyterLab neither fetches news nor checks for updates (``news_url = None``).

A local clone needs none of this: the README's launch command passes
``--LabApp.app_settings_dir=binder/lab-settings`` and the notebook path.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

BINDER = Path(__file__).resolve().parent.parent / "binder"
OVERRIDES = BINDER / "lab-settings" / "overrides.json"
JUPYTER_CONFIG = BINDER / "jupyter_config.json"


def _merge(target: Path, ours: dict) -> None:
    current: dict = {}
    if target.exists():
        try:
            current = json.loads(target.read_text() or "{}")
        except json.JSONDecodeError:
            print(f"warning: {target} is not valid JSON; replacing it", file=sys.stderr)
    for section, values in ours.items():
        current.setdefault(section, {}).update(values)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(current, indent=2) + "\n")


def install(prefix: Path) -> list[Path]:
    """Write the three files under ``prefix``; returns their paths."""
    overrides = prefix / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    _merge(overrides, json.loads(OVERRIDES.read_text()))
    config = json.loads(JUPYTER_CONFIG.read_text())
    etc = prefix / "etc" / "jupyter"
    server = etc / "jupyter_server_config.d" / "gradcourse.json"
    server.parent.mkdir(parents=True, exist_ok=True)
    server.write_text(json.dumps({"ServerApp": config["ServerApp"]}, indent=2) + "\n")
    lab = etc / "jupyter_lab_config.json"
    _merge(lab, {"LabApp": config["LabApp"]})
    return [overrides, server, lab]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prefix", type=Path, default=Path(sys.prefix), help="environment prefix (default sys.prefix)")
    args = parser.parse_args(argv)
    for path in install(args.prefix):
        print(f"installed {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
