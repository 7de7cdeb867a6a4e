"""The CNN models shipped inside the package: ``detak/models/weights/NAME/``.

Each folder holds the model file(s) — ``NAME.pt`` (a torch state_dict, fp32 or fp16) and the
exports ``NAME.fp32.onnx``, ``NAME.int8.onnx``, ``NAME.fp32.tflite``, ``NAME.int8.tflite``
(``detak export``; their card is ``export.json``) — its ``card.json`` (written by
`detak.models.training`) and ``standardizer.json``. This module only reads files: it never
imports torch, so the kiosk can list what it has (`detak.export.catalog` adds the signed
bundles installed on it, which `--model NAME` prefers).

>>> isinstance(list_shipped(), list)
True
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from detak.models.model_card import sha256_file

WEIGHTS_DIR = Path(__file__).parent / "weights"
CARD_FILE = "card.json"
STANDARDIZER_FILE = "standardizer.json"
EXPORT_CARD_FILE = "export.json"  # written by `detak export` (detak.export.pipeline)
# file suffix → runtime that loads it
RUNTIME_SUFFIXES: dict[str, str] = {".pt": "torch", ".onnx": "onnx", ".tflite": "tflite"}


def weights_dir() -> Path:
    """The folder of shipped models (may not exist before the first model ships)."""
    return WEIGHTS_DIR


def shipped_model_dir(name: str, root: Path | str | None = None) -> Path | None:
    """``weights/NAME`` if a model of that name ships (has a card), else None.

    >>> shipped_model_dir("no-such-model") is None
    True
    """
    folder = Path(root or WEIGHTS_DIR) / name
    return folder if (folder / CARD_FILE).is_file() else None


def _precision(path: Path, runtime: str, card: dict[str, Any]) -> str:
    if runtime == "torch":
        return str(card.get("weights", {}).get("precision", "fp32"))
    return "int8" if "int8" in path.stem.lower() else "fp32"


def folder_entries(folder: Path, name: str) -> list[dict[str, Any]]:
    """One entry per model file in a model folder (shipped or an installed bundle)."""
    try:
        card = json.loads((folder / CARD_FILE).read_text(encoding="utf-8"))
        export = (json.loads((folder / EXPORT_CARD_FILE).read_text(encoding="utf-8"))
                  if (folder / EXPORT_CARD_FILE).is_file() else {})
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{folder}: unreadable model or export card ({err})") from err
    out = []
    for f in sorted(folder.iterdir()):
        runtime = RUNTIME_SUFFIXES.get(f.suffix.lower())
        if runtime is None or not f.is_file():
            continue
        entry = {"name": name, "runtime": runtime,
                 "precision": _precision(f, runtime, card), "path": str(f),
                 "bytes": f.stat().st_size, "sha256": sha256_file(f),
                 "card": str(folder / CARD_FILE)}
        if runtime != "torch" and export:
            entry["cam"] = bool((export.get("cam") or {}).get("kind"))
            entry["export_card"] = str(folder / EXPORT_CARD_FILE)
        out.append(entry)
    return out


def list_shipped(root: Path | str | None = None) -> list[dict[str, Any]]:
    """One entry per model file shipped in ``root`` (default: the package's weights folder):
    ``name``, ``runtime`` (torch / onnx / tflite), ``precision`` (fp32 / fp16 / int8), ``path``,
    ``bytes``, ``sha256``, the ``card`` path and ``source`` ``package``. Exported files of a
    folder with an ``export.json`` also get ``cam`` (fused Grad-CAM outputs or not) and
    ``export_card``. The installed bundles beside them: `detak.export.catalog.list_models`.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     m = Path(d) / "tiny"; m.mkdir()
    ...     _ = (m / "card.json").write_text('{"weights": {"precision": "fp16"}}')
    ...     _ = (m / "tiny.pt").write_bytes(b"abc")
    ...     [(e["name"], e["runtime"], e["precision"], e["bytes"], e["source"])
    ...      for e in list_shipped(d)]
    [('tiny', 'torch', 'fp16', 3, 'package')]
    """
    base = Path(root or WEIGHTS_DIR)
    out = []
    if base.is_dir():
        for folder in sorted(p for p in base.iterdir() if (p / CARD_FILE).is_file()):
            out.extend({**entry, "source": "package"}
                       for entry in folder_entries(folder, folder.name))
    return out
