"""gradcourse: see how gradients flow through deep networks.

Core API (imported here): ``forward``, ``backward``, ``jvp_chain``, ``vjp_chain``, ``layer_norms``,
``signal_norms``, ``jacobian_spectrum``, ``mlp``. The submodules, by layer (each uses only layers
above it in this list; ``python scripts/import_graph.py`` prints who imports whom):

- core: ``blas_threads`` (one thread for the BLAS under ``jnp.linalg``), ``activations``, ``model``,
  ``chains``, ``norms``, ``spectrum``, ``nets``, ``layers``, ``models``,
  ``data``, ``train``, ``loss_scaling`` (static and dynamic loss scaling for float16), and ``validate``
  (argument checks used everywhere)
- theory and statistics: ``theory`` (mean field), ``rmt`` (random-matrix spectra), ``stats``, ``gates``
  (gradients through gated recurrent cells at initialisation), ``precision`` (float formats, underflow)
- experiments: ``experiments`` (the sweeps and profiles notebooks and explorers run), ``clipping``
  (training over many seeds at once, an outlier example's influence; notebook 07)
- presentation: ``plot`` (draws given arrays), ``widgets`` (controls wired to experiments and plots)
- course material: ``exercises``
"""
from . import (
    blas_threads,
    compile_cache,  # noqa: F401  (switches on JAX's persistent compilation cache: see its docstring)
)
from .activations import ACTIVATIONS, get_activation
from .capture import Capture, capture, jacobian_between
from .chains import backward, jvp_chain, vjp_chain
from .health import HealthReport, health_report
from .model import Stacked, forward, layer_shapes
from .nets import dense_layer, mlp, mlp_params
from .norms import l2, layer_norms, mean_square, path_label, signal_norms, stacked_norms
from .spectrum import jacobian_spectrum
from .tap import tap

__version__ = "0.1.0"

blas_threads.configure()  # one BLAS thread under jnp.linalg on CPU: QR/SVD/eigh 1.6-3.7x faster (see its docstring)

# Imported on first use (``gc.theory``, ``gc.plot``, ...) so that ``import gradcourse`` stays fast.
_SUBMODULES = (
    # core
    "validate",
    "nets",
    "layers",
    "models",
    "data",
    "train",
    "loss_scaling",
    # theory and statistics
    "theory",
    "rmt",
    "stats",
    "gates",
    "monitor",
    "scale_invariance",
    "precision",
    # experiments
    "experiments",
    "ln_placement",
    "shattering",
    "clipping",
    # presentation
    "plot",
    "widgets",
    # course material
    "exercises",
)


def __getattr__(name: str):
    """Import submodules on first use (``gc.theory``, ``gc.plot``, ...) so ``import gradcourse`` stays fast."""
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'gradcourse' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_SUBMODULES])


__all__ = [
    "ACTIVATIONS", "Stacked", "backward", "dense_layer", "forward", "get_activation", "jacobian_spectrum",
    "jvp_chain", "l2", "layer_norms", "layer_shapes", "mean_square", "mlp", "mlp_params", "path_label",
    "signal_norms", "stacked_norms", "vjp_chain",
    "Capture", "HealthReport", "capture", "health_report", "jacobian_between", "tap",
]
