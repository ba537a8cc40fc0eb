"""gradcourse.widgets: interactive explorers (presentation layer).

Each explorer wires ipywidgets controls to one ``gc.experiments`` function and one ``gc.plot``
figure, and shows a static default figure that live Jupyter redraws in place.
"""
from .depth import DepthExplorer, depth_explorer
from .phase import PhaseExplorer, phase_explorer, phase_point_figure

__all__ = ["DepthExplorer", "PhaseExplorer", "depth_explorer", "phase_explorer", "phase_point_figure"]
