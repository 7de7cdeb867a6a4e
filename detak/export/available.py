"""What this install can run: torch (the ``host`` extra) and the kiosk's runtimes, checked
without importing them, and the named error for a command that needs what is missing.

``pip install detak`` (the kiosk) has onnxruntime and a LiteRT/TFLite interpreter, not torch;
``pip install "detak[host]"`` adds torch, zennit, shap, lime and litert-torch.

>>> sorted(runtimes_here())
['onnx', 'tflite', 'torch']
>>> str(HostExtraMissingError("detak explain"))  # doctest: +ELLIPSIS
'detak explain needs torch, which this install does not have: pip install "detak[host]"...'
"""

from __future__ import annotations

import importlib.util

HOST_EXTRA = 'pip install "detak[host]"'
# runtime → the modules that provide it (any one will do)
_PROVIDERS: dict[str, tuple[str, ...]] = {
    "torch": ("torch",),
    "onnx": ("onnxruntime",),
    "tflite": ("ai_edge_litert", "tflite_runtime"),
}


class HostExtraMissingError(RuntimeError):
    """A command (or runtime) needs torch, which only the ``host`` extra installs."""

    def __init__(self, what: str, hint: str = "") -> None:
        super().__init__(f"{what} needs torch, which this install does not have: "
                         f"{HOST_EXTRA}{'; ' + hint if hint else ''}")


def module_here(name: str) -> bool:
    """Whether ``name`` can be imported here, found without importing it.

    >>> module_here("numpy"), module_here("no_such_module_here")
    (True, False)
    """
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def runtimes_here() -> dict[str, bool]:
    """``torch``, ``onnx``, ``tflite`` → whether this install has a backend for it."""
    return {rt: any(module_here(m) for m in mods) for rt, mods in _PROVIDERS.items()}


def require_torch(what: str, hint: str = "") -> None:
    """Raise `HostExtraMissingError` naming ``what`` when torch is not installed."""
    if not module_here("torch"):
        raise HostExtraMissingError(what, hint)
