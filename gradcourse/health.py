"""``gc.health_report``: one call that says, in plain words, whether a model's gradients are healthy (statistics layer).

It runs ``gc.capture`` (activations and backward signals at every block), one ``jax.grad`` for the
weight gradients, and the course's statistics, and returns a ``HealthReport``: a row per captured
point, a table per parameter leaf, and ``findings``, sentences with the evidence and the notebook
that explains them. In Jupyter it shows as an HTML table and a figure (drawn by
``gradcourse.plot.health``, imported only when the report is displayed).

Thresholds (``THRESHOLDS``; each finding quotes the measured value next to it). Measured on the
course's standard test model, a ReLU MLP of depth 16 and width 64 on a batch of 32 with weights
N(0, σ_w²/n), 5 seeds (``tests/test_health.py``):

* ``vanishing`` / ``exploding`` = 20: the RMS backward signal ‖∂L/∂h‖/√n changes by more than 20×
  between the first and the last captured block. The course measures a factor √(σ_w² E[φ'²]) per
  layer (notebooks 02 and 04): at He init (σ_w² = 2) it is 1, and the measured first/last ratio is
  1.2 to 5 (the last layer's ReLU masks half its units); Glorot-style σ_w² = 1 loses √½ per layer
  and measures about 100× (flagged); σ_w² = 4 gains √2 per layer and measures 420× to 960× (flagged).
  20 is 4× above the healthy spread and 5× below the mildest broken case.
* ``forward`` = 20: the same for the RMS activation ‖h‖/√n (a forward signal that dies or blows
  up): healthy 0.4× to 1.8× from first to last block, σ_w² = 1: 100× to 500× smaller, σ_w² = 4: 74×
  to 330× larger.
* ``dead`` = 0.75: the fraction of units (last axis) dead over the batch: exactly 0 for every
  example (a ReLU that is off everywhere) or with a gradient exactly 0 for every example (the
  pre-activation of such a unit). Healthy deep ReLU nets reach 45% (measured maximum over the 5
  seeds): the examples' pre-activations become correlated with depth (notebook 04's correlation
  map), so a unit tends to be off for all examples or for none, each with chance ½. A negative bias
  of −1 (notebook 03) kills 100%. 75% is 30 points above the healthy maximum.
* ``saturated`` = 0.5: with ``activation`` given for a tap (tanh, erf, sigmoid): the fraction of
  entries beyond 0.99 in the flat tails, where φ' < 0.02 (notebook 03).
* any NaN or ±Inf: reported where it first appears (forward pass in execution order, then the loss,
  then the backward pass from the output down, as ``find_nonfinite`` does); the other findings are
  then skipped (statistics of NaN arrays mean nothing).
"""
from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import numpy as np

from .capture import Capture, capture, model_kind, submodules
from .metrics import array_leaves, natural_key
from .stats import _activation_key, tap_stats

__all__ = ["HealthReport", "THRESHOLDS", "health_report"]

THRESHOLDS: dict[str, float] = {"vanishing": 20.0, "exploding": 20.0, "forward": 20.0, "dead": 0.75, "saturated": 0.5}
"""Limits of the findings (see the module docstring for where each number comes from)."""

_NOTEBOOK = {
    "vanishing": "notebooks 02 and 04",
    "exploding": "notebooks 02, 04 and 07",
    "forward": "notebooks 04 and 05",
    "dead": "notebooks 03 and 09",
    "saturated": "notebook 03",
    "nonfinite": "notebook 11",
}


# --------------------------------------------------------------------------- the report


@dataclass(eq=False)
class HealthReport:
    """What ``gc.health_report`` found. ``findings`` is empty for a healthy model.

    ``rows``: one dict per captured point, in execution order: ``name``, ``kind``, ``shape``, the
    ``tap_stats`` fields (``mean``, ``std``, ``rms``, ``grad_rms``, ``frac_dead``, ``frac_saturated``,
    ``nonfinite``, ``grad_nonfinite``), and ``weight_grad_norm`` / ``grad_to_param`` (‖∂L/∂W‖ and
    ‖∂L/∂W‖/‖W‖ over the parameters under that module path; NaN for a tap with none).
    ``params``: label -> {``grad_norm``, ``param_norm``, ``ratio``} per parameter leaf.
    ``loss``: the loss value. ``nonfinite``: where the first NaN / Inf appears (a sentence) or None.
    ``findings``: sentences with the evidence. ``thresholds``: the limits used.
    """

    loss: float
    rows: list[dict[str, Any]]
    params: dict[str, dict[str, float]]
    findings: list[str]
    nonfinite: str | None = None
    thresholds: dict[str, float] = field(default_factory=lambda: dict(THRESHOLDS))

    @property
    def healthy(self) -> bool:
        """True when nothing was found."""
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        """Plain Python types only (JSON-serialisable; NaN stays float('nan'))."""
        return {
            "loss": self.loss,
            "healthy": self.healthy,
            "findings": list(self.findings),
            "nonfinite": self.nonfinite,
            "rows": [dict(r, shape=list(r["shape"])) for r in self.rows],
            "params": {k: dict(v) for k, v in self.params.items()},
            "thresholds": dict(self.thresholds),
        }

    def summary(self) -> str:
        """The findings as text, or "no problems found"."""
        if not self.findings:
            return f"no problems found ({len(self.rows)} points checked, loss {self.loss:.4g})"
        return "\n".join(f"- {f}" for f in self.findings)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return f"HealthReport({len(self.rows)} points, loss {self.loss:.4g}):\n{self.summary()}"

    def figure(self, axes: Any = None):
        """Draw the report (``gradcourse.plot.health.health_profile``); returns ``(fig, axes)``."""
        from .plot.health import health_profile

        return health_profile(self.rows, self.findings, axes=axes)

    def _repr_html_(self) -> str:
        cols = [
            ("name", "point"), ("rms", "‖h‖/√n"), ("std", "std h"), ("grad_rms", "‖∂L/∂h‖/√n"),
            ("frac_dead", "dead"), ("frac_saturated", "saturated"), ("weight_grad_norm", "‖∂L/∂W‖"),
            ("grad_to_param", "‖∂L/∂W‖/‖W‖"),
        ]
        head = "".join(f"<th>{html.escape(t)}</th>" for _, t in cols)
        body = []
        for r in self.rows:
            bad = r.get("nonfinite", 0) or r.get("grad_nonfinite", 0)
            style = ' style="background:#fdd"' if bad else ""
            cells = "".join(f"<td>{html.escape(_fmt(r.get(k)))}</td>" for k, _ in cols)
            body.append(f"<tr{style}>{cells}</tr>")
        items = "".join(f"<li>{html.escape(f)}</li>" for f in self.findings) or "<li>no problems found</li>"
        img = ""
        try:
            import matplotlib.pyplot as plt

            fig, _ = self.figure()
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=72, bbox_inches="tight")
            plt.close(fig)
            img = f'<img src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}"/>'
        except Exception as e:  # a display must not raise; say why the figure is missing
            img = f"<p>(figure not drawn: {html.escape(type(e).__name__)}: {html.escape(str(e))})</p>"
        return (
            f"<div><b>Gradient health report</b> (loss {html.escape(_fmt(self.loss))})<ul>{items}</ul>{img}"
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
        )


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "–"
        return f"{v:.3g}"
    return str(v)


# --------------------------------------------------------------------------- building it


class _Blocks:
    """The default ``where``: the "blocks" of a model. Items of its module lists (``layers/3``, ``blocks/2``) not
    nested in another such item; without lists, its direct children. Linen: the calls of its direct children
    (``Dense_3``, ``Block_2``). Hashable by the chosen paths, so a repeated report reuses its compiled program."""

    def __init__(self, model: Any, kind: str):
        if kind == "linen":
            self.chosen = None
        else:
            paths = [p for p, _ in submodules(model)]
            items = [p for p in paths if p.rsplit("/", 1)[-1].isdigit()]
            items = [p for p in items if not any(q != p and p.startswith(q + "/") for q in items)]
            self.chosen = frozenset(items if items else [p for p in paths if "/" not in p])

    def __call__(self, path: str, module: Any) -> bool:
        return "/" not in path if self.chosen is None else path.split("@")[0] in self.chosen

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, _Blocks) and other.chosen == self.chosen

    def __hash__(self) -> int:
        return hash(self.chosen)


_COMPILED: dict[tuple, Callable] = {}  # (loss_fn, kind, Linen module, where, has_aux) -> jitted measurement


def _is_arrayish(x: Any) -> bool:
    return hasattr(x, "shape") and hasattr(x, "dtype") or isinstance(x, (int, float, bool, complex))


def _measure(loss_fn: Callable, model_or_params: Any, batch: Any, kind: str | None, model: Any,
             where: Callable | None, has_aux: bool) -> tuple[Capture, dict, dict]:
    """(capture, params, weight gradients), compiled once per (loss_fn, kind, model, where, has_aux): ``nnx.jit``
    for an NNX model, ``eqx.filter_jit`` for Equinox, ``jax.jit`` for a pytree of arrays (eagerly otherwise)."""
    def compute(m, b):
        mdl = model if kind == "linen" else (m if kind is not None else None)
        cap = capture(loss_fn, m, b, model=mdl, where=where, has_aux=has_aux, grads=True)
        params, grads = _weight_grads(loss_fn, m, b, kind, has_aux)
        return cap, params, grads

    if kind is None or kind == "linen":
        if not all(_is_arrayish(x) for x in jax.tree_util.tree_leaves((model_or_params, batch))):
            return compute(model_or_params, batch)
    key = (loss_fn, kind, id(model) if kind == "linen" else None, where, has_aux)
    try:
        jitted = _COMPILED.get(key)
    except TypeError:  # an unhashable where
        key, jitted = None, None
    if jitted is None:
        if kind == "nnx":
            from flax import nnx

            jitted = nnx.jit(compute)
        elif kind == "equinox":
            import equinox as eqx

            jitted = eqx.filter_jit(compute)
        else:
            jitted = jax.jit(compute)
        if key is not None:
            if len(_COMPILED) >= 16:
                _COMPILED.pop(next(iter(_COMPILED)))
            _COMPILED[key] = jitted
    return jitted(model_or_params, batch)


def _weight_grads(loss_fn: Callable, model_or_params: Any, batch: Any, kind: str | None, has_aux: bool):
    """(params, grads) as label -> array dicts, for any model kind."""
    def scalar(out):
        return out[0] if has_aux else out

    if kind == "equinox":
        import equinox as eqx

        params, static = eqx.partition(model_or_params, eqx.is_inexact_array)
        grads = jax.grad(lambda p: scalar(loss_fn(eqx.combine(p, static), batch)))(params)
        return array_leaves(params), array_leaves(grads)
    if kind == "nnx":
        from flax import nnx

        state = nnx.state(model_or_params, nnx.Param)
        grads = nnx.grad(lambda m: scalar(loss_fn(m, batch)))(model_or_params)
        return array_leaves(state), array_leaves(grads)
    params = model_or_params
    grads = jax.grad(lambda p: scalar(loss_fn(p, batch)))(params)
    return array_leaves(params), array_leaves(grads)


def _rms_ratio(rows: list[dict], key: str) -> tuple[float, int, int] | None:
    """value(first)/value(last) over the rows with a finite positive ``key``: (ratio, i_first, i_last)."""
    idx = [i for i, r in enumerate(rows) if np.isfinite(r.get(key, np.nan)) and r.get(key, 0) > 0]
    if len(idx) < 2:
        return None
    return rows[idx[0]][key] / rows[idx[-1]][key], idx[0], idx[-1]


def _orders(x: float) -> str:
    e = math.log10(x)
    return f"10^{e:.1f}" if abs(e) >= 3 else f"{x:.3g}"


def health_report(
    loss_fn: Callable[[Any, Any], Any],
    model_or_params: Any,
    batch: Any,
    *,
    model: Any = None,
    where: Callable[[str, Any], bool] | None = None,
    activation: Any = None,
    has_aux: bool = False,
) -> HealthReport:
    """Check the gradients of ``loss_fn(model_or_params, batch)`` in one call; returns a ``HealthReport``.

    ``model_or_params``: an Equinox or Flax NNX module (its submodule calls are captured), or a
    pytree of parameters (Flax Linen variables with ``model=`` the Linen module, or plain JAX with
    ``gc.tap`` inside ``loss_fn``). ``where(path, module)`` picks the submodule calls; by default the
    blocks: the items of the model's module lists (``layers/3``, ``blocks/2``), or its direct children.
    ``activation``: None (dead units found from exact zeros), one activation for every point, or a
    dict name -> activation (names or functions such as ``jax.nn.relu``; points without one use the
    default rule). Thresholds and their justification: ``gradcourse.health`` module docstring.

    The measurement (one ``gc.capture`` and one ``jax.grad`` for the weight gradients) is compiled:
    with ``nnx.jit`` for an NNX model, ``eqx.filter_jit`` for Equinox, ``jax.jit`` for a pytree, and
    reused by later calls with the same ``loss_fn`` (define it once, not as a new lambda per call).

    Findings (each with the numbers): the backward signal vanishing or exploding across the blocks,
    the forward signal dying or blowing up, dead units, saturated units, and the first NaN / Inf
    (forward, loss or backward, with the point's path). A healthy model gives "no problems found".
    """
    if not callable(loss_fn):
        got = type(loss_fn).__name__
        raise TypeError(f"loss_fn: expected a function (model_or_params, batch) -> scalar loss, got {got}")
    kind = None
    if model is not None:
        kind = model_kind(model)
        if kind != "linen" and model is not model_or_params:
            raise ValueError(
                "model: for an Equinox or NNX module pass the module itself as model_or_params and leave model=None"
            )
    else:
        try:
            kind = model_kind(model_or_params)
        except TypeError:
            kind = None
        if kind == "linen":
            raise TypeError(
                "model_or_params: a Flax Linen module holds no parameters; pass its variables (module.init(...)) "
                "and model=<the Linen module>"
            )
        model = model_or_params if kind is not None else None
    if where is None and model is not None:
        where = _Blocks(model, kind)
    if activation is not None and not isinstance(activation, dict):
        _activation_key(activation)  # validates

    cap, params, grads = _measure(loss_fn, model_or_params, batch, kind, model, where, has_aux)
    params = {k: params[k] for k in sorted(params, key=natural_key)}  # a dict returned by jit is key-sorted
    loss = float(np.asarray(cap.value))

    def act_for(name: str) -> Any:
        if isinstance(activation, dict):
            return activation.get(name)
        return activation

    prefix = "params/" if kind == "linen" else ""
    points = []  # (row name, tap name, h, g): a tap in a lax.scan body gives one row per iteration, "name[i]"
    for name, h in cap.acts.items():
        g = cap.grads.get(name) if cap.grads is not None else None
        if cap.axes.get(name, ())[:1] == ("scan",):
            points += [(f"{name}[{i}]", name, h[i], None if g is None else g[i]) for i in range(np.shape(h)[0])]
        else:
            points.append((name, name, h, g))
    rows = []
    for row_name, name, h, g in points:
        r = {"name": row_name, "kind": cap.kinds.get(name, "tap"), "shape": tuple(np.shape(h))}
        r.update(tap_stats(h, g, act_for(name)))
        base = prefix + name.split("@")[0] + "/"
        under = [k for k in params if k.startswith(base)]
        if under:
            gn = math.sqrt(sum(float(np.sum(np.square(np.asarray(grads[k], np.float64)))) for k in under))
            pn = math.sqrt(sum(float(np.sum(np.square(np.asarray(params[k], np.float64)))) for k in under))
            r["weight_grad_norm"], r["grad_to_param"] = gn, (gn / pn if pn > 0 else math.inf)
        else:
            r["weight_grad_norm"] = r["grad_to_param"] = math.nan
        rows.append(r)
    table = {}
    for k in params:
        gn = float(np.sqrt(np.sum(np.square(np.asarray(grads[k], np.float64)))))
        pn = float(np.sqrt(np.sum(np.square(np.asarray(params[k], np.float64)))))
        table[k] = {"grad_norm": gn, "param_norm": pn, "ratio": gn / pn if pn > 0 else math.inf}
    findings, nonfinite = _findings(rows, loss, THRESHOLDS)
    return HealthReport(loss, rows, table, findings, nonfinite)


def _findings(rows: list[dict], loss: float, t: dict[str, float]) -> tuple[list[str], str | None]:
    findings: list[str] = []
    bad_fwd = [r for r in rows if r["nonfinite"]]
    bad_bwd = [r for r in rows if r.get("grad_nonfinite", 0)]
    nonfinite = None
    if bad_fwd:
        r = bad_fwd[0]
        before = "every point before it is finite" if r is not rows[0] else "it is the first captured point"
        nonfinite = (
            f"NaN/Inf first appears in the forward pass at `{r['name']}` ({r['nonfinite']} of "
            f"{math.prod(r['shape'])} entries); {before}"
        )
    elif not math.isfinite(loss):
        nonfinite = f"the loss itself is the first non-finite value (loss = {loss}); every captured point is finite"
    elif bad_bwd:
        r = bad_bwd[-1]
        nonfinite = (
            f"NaN/Inf first appears in the backward pass at `{r['name']}` (∂L/∂h has {r['grad_nonfinite']} non-finite "
            f"entries); the forward pass, the loss and the points after it are finite"
        )
    if nonfinite:
        findings.append(f"{nonfinite} — see {_NOTEBOOK['nonfinite']} (find the operation with jax.debug_nans)")
        return findings, nonfinite  # statistics of NaN arrays mean nothing

    back = _rms_ratio(rows, "grad_rms")
    if back is not None:
        ratio, i, j = back
        first, last = rows[i]["name"], rows[j]["name"]
        if ratio < 1 / t["vanishing"]:
            findings.append(
                f"backward signal shrinks {_orders(1 / ratio)}× from `{last}` to `{first}` (RMS ∂L/∂h "
                f"{rows[j]['grad_rms']:.3g} → {rows[i]['grad_rms']:.3g}): vanishing gradients — "
                f"see {_NOTEBOOK['vanishing']}"
            )
        elif ratio > t["exploding"]:
            findings.append(
                f"backward signal grows {_orders(ratio)}× from `{last}` to `{first}` (RMS ∂L/∂h "
                f"{rows[j]['grad_rms']:.3g} → {rows[i]['grad_rms']:.3g}): exploding gradients — "
                f"see {_NOTEBOOK['exploding']}"
            )
    fwd = _rms_ratio(rows, "rms")
    if fwd is not None:
        ratio, i, j = fwd
        if ratio > t["forward"] or ratio < 1 / t["forward"]:
            verb = "shrinks" if ratio > 1 else "grows"
            factor = ratio if ratio > 1 else 1 / ratio
            findings.append(
                f"forward signal {verb} {_orders(factor)}× from `{rows[i]['name']}` to `{rows[j]['name']}` (RMS h "
                f"{rows[i]['rms']:.3g} → {rows[j]['rms']:.3g}) — see {_NOTEBOOK['forward']}"
            )
    for r in rows:
        if np.isfinite(r["frac_dead"]) and r["frac_dead"] > t["dead"]:
            findings.append(
                f"{100 * r['frac_dead']:.0f}% of units in `{r['name']}` are dead (zero output or zero gradient for "
                f"every example of the batch) — see {_NOTEBOOK['dead']}"
            )
        if np.isfinite(r["frac_saturated"]) and r["frac_saturated"] > t["saturated"]:
            findings.append(
                f"{100 * r['frac_saturated']:.0f}% of the entries of `{r['name']}` are saturated (in the flat tails "
                f"of the activation, derivative < 0.02) — see {_NOTEBOOK['saturated']}"
            )
    return findings, None
