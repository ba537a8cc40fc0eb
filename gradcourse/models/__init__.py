"""gradcourse.models: ready-made networks for the case-study notebooks.

One submodule per family (``rnn``, ``cnn``, ``transformer``); every name in a submodule's
``__all__`` is re-exported here, so ``gc.models.unroll`` is ``gc.models.rnn.unroll``. Submodules
are found on disk, so a family that is not there yet does not break the import. Two submodules
exporting the same name is an error (raised at import), not a silent overwrite.
"""
import importlib as _importlib
import pkgutil as _pkgutil

__all__: list[str] = []
_owner: dict[str, str] = {}
for _info in sorted(_pkgutil.iter_modules(__path__), key=lambda i: i.name):
    if _info.name.startswith("_"):
        continue
    _mod = _importlib.import_module(f"{__name__}.{_info.name}")
    for _name in getattr(_mod, "__all__", []):
        if _name in _owner:
            raise ImportError(
                f"gradcourse.models: {_name!r} is exported by both {_owner[_name]} and {_info.name}; rename one"
            )
        _owner[_name] = _info.name
        globals()[_name] = getattr(_mod, _name)
        __all__.append(_name)
