"""Explorer: how the backward signal ‖∂L/∂h_l‖ changes with depth, weight scale, bias scale and activation.

Layer: presentation (widgets). The compute is ``gc.experiments.backward_profile`` (measured
‖∂L/∂h_l‖ / ‖∂L/∂h_L‖ of a random deep MLP and the mean-field line χ₁^{(L-l)/2}); the drawing is
``gc.plot.depth_profile``. ``depth_explorer`` wires both to ipywidgets controls.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from ..activations import activation_name, get_activation
from ..experiments import BackwardProfile, backward_profile
from ..plot.norms import depth_profile
from ._display import figure_image, guarded

__all__ = ["DepthExplorer", "depth_explorer"]

DEFAULT_ACTIVATIONS = ("tanh", "relu", "linear", "erf", "sigmoid", "gelu", "selu")


def _phase(chi: float) -> str:
    if not math.isfinite(chi):
        return "no finite $\\chi_1$"
    if abs(chi - 1.0) < 0.01:
        return "critical"
    return "vanishing" if chi < 1 else "exploding"


def draw_profile(profile: BackwardProfile, ax: Any, title: str = "") -> None:
    """Draw a ``BackwardProfile`` on ``ax``: measured points, the χ₁ line, and a title."""
    depth = profile.layers[-1]
    chi = profile.chi1
    depth_profile(
        profile.measured,
        profile.theory if np.all(np.isfinite(profile.theory)) else None,
        ax=ax,
        label="measured",
        theory_label=f"mean field $\\chi_1^{{(L-l)/2}}$, $\\chi_1$ = {chi:.3g}",
        ylabel=r"$\|\partial L/\partial h_l\| \,/\, \|\partial L/\partial h_L\|$",
    )
    # keep the axis readable when a signal under- or overflows
    finite = np.concatenate([v[np.isfinite(v) & (v > 0)] for v in (profile.measured, profile.theory)])
    if finite.size:
        ax.set_ylim(max(finite.min() / 3, 1e-40), min(finite.max() * 3, 1e40))
    ax.set_xlim(-0.5, depth + 0.5)
    ax.set_title(f"{title}{_phase(chi)}", fontsize="medium")


class DepthExplorer:
    """Controls (depth, σ_w², σ_b², activation) and a figure of ``backward_profile`` that follows them.

    ``controls``: dict of the ipywidgets; ``widget``: their box; ``figure`` / ``ax``; ``profile``:
    the last ``BackwardProfile`` drawn; ``update()`` recomputes and redraws (the controls call it).
    """

    def __init__(
        self,
        depth: int,
        sigma_w2: float,
        sigma_b2: float,
        activation: str,
        *,
        width: int,
        activations: Sequence[str],
        seed: int,
        show: bool,
    ):
        import ipywidgets as w
        from matplotlib.figure import Figure

        self.width, self.seed, self.handle = width, seed, None
        style = {"description_width": "60px"}
        self.controls = {
            "depth": w.IntSlider(value=depth, min=2, max=200, step=1, description="depth L", style=style),
            "sigma_w2": w.FloatSlider(
                value=sigma_w2, min=0.1, max=4.0, step=0.02, description="σ_w²", readout_format=".2f", style=style
            ),
            "sigma_b2": w.FloatSlider(
                value=sigma_b2, min=0.0, max=0.5, step=0.01, description="σ_b²", readout_format=".2f", style=style
            ),
            "activation": w.Dropdown(options=list(activations), value=activation, description="φ", style=style),
        }
        self.widget = w.HBox([w.VBox([self.controls["depth"], self.controls["sigma_w2"]]),
                              w.VBox([self.controls["sigma_b2"], self.controls["activation"]])])
        self.figure = Figure(figsize=(6, 4))
        self.ax = self.figure.add_subplot()
        self.profile: BackwardProfile | None = None
        self.update()
        for c in self.controls.values():
            c.observe(guarded(self.update, lambda: self.handle), names="value")
        if show:
            from IPython.display import display

            display(self.widget)
            self.handle = display(figure_image(self.figure), display_id=True)

    @property
    def values(self) -> dict[str, Any]:
        """The controls' current values, by name."""
        return {name: c.value for name, c in self.controls.items()}

    def update(self) -> None:
        """Recompute the profile for the controls' values and redraw (and refresh the display)."""
        v = self.values
        self.profile = backward_profile(
            v["depth"], v["sigma_w2"], v["sigma_b2"], v["activation"],
            width=self.width, key=jax.random.PRNGKey(self.seed),
        )
        self.ax.clear()
        title = (f"{activation_name(v['activation'])}, $L$={v['depth']}, $\\sigma_w^2$={v['sigma_w2']:.2f}, "
                 f"$\\sigma_b^2$={v['sigma_b2']:.2f}: ")
        draw_profile(self.profile, self.ax, title)
        self.figure.tight_layout()
        if self.handle is not None:
            self.handle.update(figure_image(self.figure))


def depth_explorer(
    depth: int = 50,
    sigma_w2: float = 1.0,
    sigma_b2: float = 0.0,
    activation: str = "tanh",
    *,
    width: int = 256,
    activations: Sequence[str] = DEFAULT_ACTIVATIONS,
    seed: int = 0,
    show: bool = True,
) -> DepthExplorer:
    """Interactive ``backward_profile``: sliders for depth, σ_w², σ_b² and a menu of activations.

    Shows the controls and a figure (measured ‖∂L/∂h_l‖ / ‖∂L/∂h_L‖ as points, the mean-field line
    χ₁^{(L-l)/2}) that is redrawn in place when a control moves; with ``show=False`` nothing is
    displayed (for tests). Returns the ``DepthExplorer``.
    """
    if activation not in activations:
        raise ValueError(f"activation: {activation!r} is not among activations {tuple(activations)}")
    for a in activations:
        if not isinstance(a, str):
            raise TypeError(f"activations: expected activation names (str), got {type(a).__name__}")
        get_activation(a)
    return DepthExplorer(
        depth, sigma_w2, sigma_b2, activation, width=width, activations=activations, seed=seed, show=show
    )
