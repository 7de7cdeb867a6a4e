"""A trained model's folder on disk: where `detak train` writes it and how its torch weights
load. Inference on top of it (runtime choice, bundles, ``detak predict``) is `detak.export.predict`;
this module imports nothing of `detak.export` and no torch until a function needs it.

>>> default_models_dir().name
'cnn'
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from detak.models.cnn_data import CLASSES


class ModelNotFoundError(FileNotFoundError):
    """No model folder for the NAME or path given."""


def default_models_dir() -> Path:
    """Where `detak train` writes models by default: ``cache_dir()/cnn``."""
    from detak.data.paths import cache_dir

    return cache_dir() / "cnn"


def torch_weights_file(folder: Path, card: dict[str, Any]) -> Path | None:
    """The card's torch weights (``weights.file``) for the model in ``folder``, if present: in
    the folder, or — for a model shipped in the package, whose checkpoint is not in the wheel —
    in `detak.models.shipped.host_weights_dirs`.

    >>> torch_weights_file(Path("no-such-folder"), {"weights": {"file": "m.pt"}}) is None
    True
    """
    file = (card.get("weights") or {}).get("file")
    if not file:
        return None
    from detak.models.shipped import is_shipped_folder, shipped_torch_weights

    path = Path(folder) / file
    if path.is_file():
        return path
    return shipped_torch_weights(Path(folder).name, file) if is_shipped_folder(folder) else None


def load_torch_module(folder: Path, card: dict[str, Any]) -> Any:
    """Build the card's architecture and load ``weights.file`` (fp16 weights are cast back to
    fp32); eval mode."""
    import torch

    from detak.models.cnn.registry import build_model

    arch = card["architecture"]["name"]
    path = torch_weights_file(folder, card)
    if path is None:
        from detak.models.shipped import host_weights_dirs, is_shipped_folder

        where = (" (the torch checkpoints of shipped models are not in the package: put "
                 f"{folder.name}/{card['weights']['file']} in one of "
                 f"{', '.join(map(str, host_weights_dirs()))})") if is_shipped_folder(
                     folder) else ""
        raise ModelNotFoundError(f"{folder}: weights file {card['weights']['file']} is "
                                 f"missing{where}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
    outputs = card["architecture"].get("outputs") or CLASSES
    module = build_model(arch, n_classes=len(outputs))
    module.load_state_dict(state)
    return module.eval()


def torch_predictor(module: Any, batch_size: int = 256,
                    logits: bool = False) -> Callable[[np.ndarray], np.ndarray]:
    """Standardised (N, 12, 1000) float32 → sigmoid probabilities (N, classes) with a torch
    module, ``batch_size`` records at a time (``logits``: the raw outputs instead)."""
    import torch

    def run(x: np.ndarray) -> np.ndarray:
        parts = []
        with torch.inference_mode():
            for s in range(0, len(x), batch_size):
                xb = torch.from_numpy(np.ascontiguousarray(x[s:s + batch_size], np.float32))
                z = module(xb)
                parts.append((z if logits else torch.sigmoid(z)).numpy().astype(np.float32))
        return np.concatenate(parts) if parts else np.empty((0, len(CLASSES)), np.float32)

    return run
