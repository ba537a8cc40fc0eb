"""Regenerate the README's course map with a thumbnail of each notebook's key figure.

The key figure is the image output of the code cell tagged ``thumbnail`` (cell metadata
``tags``), or the notebook's first image if no cell is tagged. Thumbnails are written to
``docs/thumbnails/`` and the table between ``<!-- course-map -->`` markers in README.md is
rewritten. Run from anywhere: ``python scripts/make_thumbnails.py``.
"""
from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
WIDTH = 220

# one line per notebook: what the learner will be able to do
GOALS = {
    "00_start_here": "find your way around the course and measure a forward and backward signal with `gradcourse`",
    "01_backprop_basics": "write reverse-mode backprop for an MLP by hand; explain JVP vs VJP and what each costs",
    "02_vanishing_vs_exploding": (
        "predict how gradient norms scale with depth; tell the backward signal from weight gradients"
    ),
    "03_activations": "choose activations knowing their derivative statistics; spot saturation and dead units",
    "04_initialization": "derive Glorot / He / LeCun / orthogonal rules and read the order-to-chaos phase diagram",
    "05_normalization": "explain what BatchNorm / LayerNorm / RMSNorm do to forward statistics and to gradients",
    "06_residuals": "reason about residual Jacobians I + ∂F and branch scaling",
    "07_clipping": "use value, global-norm and adaptive clipping, knowing what each does to the update direction",
    "08_rnn_case": "diagnose exploding and vanishing gradients through time; see why gates help",
    "09_cnn_case": "debug a deep CNN with per-layer gradient norms, update ratios and dead units",
    "10_transformer_case": "explain Post-LN vs Pre-LN gradients, warm-up, and attention-logit growth",
    "11_numerics": (
        "say where gradients fall in float16 / bfloat16; train with loss scaling; find the operation that makes a NaN"
    ),
    "12_your_own_model": "diagnose and fix your own Flax or Equinox model with taps, capture and a health report",
}


def key_figure(nb: dict) -> bytes | None:
    """PNG bytes of the tagged cell's image, else of the first image in the notebook."""
    cells = [c for c in nb["cells"] if c["cell_type"] == "code"]
    tagged = [c for c in cells if "thumbnail" in c.get("metadata", {}).get("tags", [])]
    for cell in tagged + cells:
        for out in cell.get("outputs", []):
            png = out.get("data", {}).get("image/png")
            if png:
                return base64.b64decode(png if isinstance(png, str) else "".join(png))
    return None


def thumbnail(png: bytes, path: Path) -> None:
    img = Image.open(io.BytesIO(png)).convert("RGB")
    img = img.resize((WIDTH, max(1, round(img.height * WIDTH / img.width))), Image.LANCZOS)
    img.save(path, optimize=True)


def main() -> None:
    out_dir = ROOT / "docs" / "thumbnails"
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = ["| # | notebook | after it you can… | key figure |", "|---|---|---|---|"]
    for name, goal in GOALS.items():
        path = ROOT / "notebooks" / f"{name}.ipynb"
        if not path.exists():
            continue
        png = key_figure(json.loads(path.read_text()))
        thumb = ""
        if png is not None:
            thumbnail(png, out_dir / f"{name}.png")
            thumb = f'<img src="docs/thumbnails/{name}.png" width="{WIDTH}">'
        title = name[3:].replace("_", " ")
        rows.append(f"| {name[:2]} | [{title}](notebooks/{name}.ipynb) | {goal} | {thumb} |")
    readme = ROOT / "README.md"
    text = readme.read_text()
    table = "<!-- course-map -->\n" + "\n".join(rows) + "\n<!-- /course-map -->"
    new, n = re.subn(r"<!-- course-map -->.*?<!-- /course-map -->", table, text, flags=re.S)
    if n != 1:
        raise SystemExit("README.md needs exactly one <!-- course-map --> ... <!-- /course-map --> block")
    readme.write_text(new)
    print(f"wrote {len(rows) - 2} rows and thumbnails to {out_dir.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
