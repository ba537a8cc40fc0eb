"""gradcourse: see how gradients flow through deep networks.

Core API: ``forward``, ``backward``, ``jvp_chain``, ``vjp_chain``, ``layer_norms``,
``jacobian_spectrum``; submodules ``theory``, ``stats``, ``nets``, ``plot``, ``widgets``,
``exercises``, ``train``, ``models``, ``data``.
"""
from .activations import ACTIVATIONS, get_activation
from .chains import backward, jvp_chain, vjp_chain
from .model import Stacked, forward, layer_shapes
from .nets import dense_layer, mlp, mlp_params
from .norms import l2, layer_norms, mean_square, path_label, signal_norms, stacked_norms
from .spectrum import jacobian_spectrum

__version__ = "0.1.0"

_SUBMODULES = ("theory", "stats", "nets", "plot", "widgets", "exercises", "train", "models", "data", "layers")


def __getattr__(name: str):
    """Import submodules on first use (``gc.theory``, ``gc.plot``, ...) so ``import gradcourse`` stays fast."""
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'gradcourse' has no attribute {name!r}")


__all__ = [
    "ACTIVATIONS", "Stacked", "backward", "dense_layer", "forward", "get_activation", "jacobian_spectrum",
    "jvp_chain", "l2", "layer_norms", "layer_shapes", "mean_square", "mlp", "mlp_params", "path_label",
    "signal_norms", "stacked_norms", "vjp_chain",
]
