"""The CNN models shipped with detak: ``detak/models/weights/NAME/`` in the package, and their
torch checkpoints beside it for the host.

Each package folder holds the kiosk's files: the exports ``NAME.fp32.onnx``,
``NAME.int8.onnx``, ``NAME.fp32.tflite``, ``NAME.int8.tflite`` (``detak export``; their card is
``export.json``), ``card.json`` (written by `detak.models.training`) and ``standardizer.json``.
The torch checkpoint ``NAME.pt`` (a state_dict, fp32 or fp16) is not in the package — the
kiosk cannot use it (no torch) and it would be most of the wheel: it is looked for in
`host_weights_dirs` (``$DETAK_WEIGHTS``, the source checkout's ``weights/NAME/`` — the host's
``make install`` is an editable install of it — and ``cache_dir()/weights/NAME/``, where the
release's weights archive unpacks). Every listed file says where it lives (``location``).

This module only reads files: it never imports torch, so the kiosk can list what it has
(`detak.export.catalog` adds the signed bundles installed on it, which `--model NAME` prefers).

>>> isinstance(list_shipped(), list)
True
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from detak.models.model_card import sha256_file

WEIGHTS_DIR = Path(__file__).parent / "weights"
CARD_FILE = "card.json"
STANDARDIZER_FILE = "standardizer.json"
EXPORT_CARD_FILE = "export.json"  # written by `detak export` (detak.export.pipeline)
# file suffix → runtime that loads it
RUNTIME_SUFFIXES: dict[str, str] = {".pt": "torch", ".onnx": "onnx", ".tflite": "tflite"}
WEIGHTS_ENV = "DETAK_WEIGHTS"   # a folder of NAME/NAME.pt (the host's torch checkpoints)
_ROOT = Path(__file__).resolve().parents[2]     # the source checkout (or site-packages)
CHECKOUT_WEIGHTS = _ROOT / "weights"            # used only where _ROOT is a source checkout


def weights_dir() -> Path:
    """The folder of shipped models (may not exist before the first model ships)."""
    return WEIGHTS_DIR


def host_weights_dirs() -> list[Path]:
    """Where the shipped models' torch checkpoints are looked for, in order: ``$DETAK_WEIGHTS``,
    the source checkout's ``weights/`` (next to the ``detak`` folder), ``cache_dir()/weights``.

    >>> host_weights_dirs()[-1].name
    'weights'
    """
    from detak.data.paths import cache_dir

    env = os.environ.get(WEIGHTS_ENV)
    dirs = [Path(env).expanduser()] if env else []
    if (CHECKOUT_WEIGHTS.parent / "pyproject.toml").is_file():   # not site-packages/weights
        dirs.append(CHECKOUT_WEIGHTS)
    return [*dirs, cache_dir() / "weights"]


def shipped_torch_weights(name: str, file: str) -> Path | None:
    """The torch checkpoint ``file`` of the shipped model ``name`` (``DIR/NAME/file`` in the
    first of `host_weights_dirs` that has it), or None where none is installed (a kiosk).

    >>> shipped_torch_weights("no-such-model", "x.pt") is None
    True
    """
    for d in host_weights_dirs():
        path = d / name / file
        if path.is_file():
            return path
    return None


def is_shipped_folder(folder: Path | str) -> bool:
    """Whether ``folder`` is a model folder of the package (``weights_dir()/NAME``)."""
    try:
        return Path(folder).resolve().parent == WEIGHTS_DIR.resolve()
    except OSError:
        return False


def location_of(path: Path | str) -> str:
    """Where a model file lives, for ``detak models list``: ``package`` (inside the installed
    detak), ``host-weights`` (one of `host_weights_dirs`) or ``folder`` (anywhere else).

    >>> location_of(WEIGHTS_DIR / "edge" / "edge.int8.onnx")
    'package'
    """
    p = Path(path).resolve()
    if p.is_relative_to(WEIGHTS_DIR.resolve()):
        return "package"
    if any(p.is_relative_to(d.resolve()) for d in host_weights_dirs()):
        return "host-weights"
    return "folder"


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


def _entry(f: Path, name: str, runtime: str, folder: Path, card: dict[str, Any],
           export: dict[str, Any]) -> dict[str, Any]:
    entry = {"name": name, "runtime": runtime, "precision": _precision(f, runtime, card),
             "path": str(f), "bytes": f.stat().st_size, "sha256": sha256_file(f),
             "card": str(folder / CARD_FILE), "location": location_of(f)}
    if runtime != "torch" and export:
        entry["cam"] = bool((export.get("cam") or {}).get("kind"))
        entry["export_card"] = str(folder / EXPORT_CARD_FILE)
    return entry


def folder_entries(folder: Path, name: str) -> list[dict[str, Any]]:
    """One entry per model file of a model folder (shipped or an installed bundle); for a
    shipped folder also its torch checkpoint, from `host_weights_dirs` — or, where none is
    installed, an entry with ``path`` None and ``location`` ``not installed``."""
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
        out.append(_entry(f, name, runtime, folder, card, export))
    file = (card.get("weights") or {}).get("file")
    if file and is_shipped_folder(folder) and not (folder / file).is_file():
        path = shipped_torch_weights(name, file)
        if path is not None:
            out.append(_entry(path, name, "torch", folder, card, export))
        else:
            out.append({"name": name, "runtime": "torch",
                        "precision": _precision(Path(file), "torch", card), "path": None,
                        "bytes": None, "sha256": None, "card": str(folder / CARD_FILE),
                        "location": "not installed"})
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
