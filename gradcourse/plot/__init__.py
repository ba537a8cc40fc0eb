"""gradcourse.plot: figures from given data (presentation layer).

Every function takes arrays (or a ``History``, a ``BackwardProfile``, ...) computed by the core,
``gc.theory`` / ``gc.rmt`` or ``gc.experiments``, draws them with matplotlib and returns
``(fig, ax)`` or ``(fig, axes)``. Nothing here imports JAX or computes a number a notebook needs.
"""
from .activations import activation_comparison, activation_derivatives, activation_histograms
from .backprop import cost_plot, finite_difference_plot
from .clipping import cliff_plot, influence_plot, seed_runs_plot, shared_heatmaps
from .health import health_profile
from .monitor import histogram_over_steps
from .normalization import weight_decay_plot
from .norms import depth_profile, log_norm_walk_plot, weight_vs_signal_plot
from .numerics import format_bands, layer_fraction_plot, loss_scale_plot, magnitude_histograms, swamping_plot
from .phase import phase_diagram
from .residuals import shattering_plot, stream_variance_plot
from .rnn import compare_runs
from .spectra import spectrum_histogram
from .training import history_curves, history_heatmap
from .transformer import ln_placement_plot

__all__ = [
    "activation_comparison",
    "activation_derivatives",
    "activation_histograms",
    "cliff_plot",
    "compare_runs",
    "cost_plot",
    "depth_profile",
    "finite_difference_plot",
    "format_bands",
    "health_profile",
    "histogram_over_steps",
    "history_curves",
    "history_heatmap",
    "influence_plot",
    "layer_fraction_plot",
    "log_norm_walk_plot",
    "ln_placement_plot",
    "loss_scale_plot",
    "magnitude_histograms",
    "phase_diagram",
    "seed_runs_plot",
    "shared_heatmaps",
    "shattering_plot",
    "spectrum_histogram",
    "stream_variance_plot",
    "swamping_plot",
    "weight_decay_plot",
    "weight_vs_signal_plot",
]
