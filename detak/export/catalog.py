"""What models this install has: the shipped ones (`detak.models.shipped`) and the signed
bundles installed beside them (`detak.export.bundle`), and what one of them is
(``detak models list|info``).

>>> isinstance(list_models(), list)
True
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from detak.models.shipped import CARD_FILE, folder_entries, list_shipped


def list_models(root: Path | str | None = None, *, include_bundles: bool = True,
                bundles: Path | str | None = None) -> list[dict[str, Any]]:
    """One entry per model file the kiosk has: the fields of
    `detak.models.shipped.list_shipped`, ``source`` (``package``: shipped in ``root``;
    ``bundle``: an installed signed bundle, with its ``bundle_version``) and ``active`` (the
    folder ``--model NAME`` loads: an installed bundle shadows the shipped model of the same
    name, as in `detak.export.predict.resolve_model_dir`) and ``runnable_here`` (this install
    has the runtime: torch only with the ``host`` extra) and ``calibration`` (the card's
    calibration label, None when its probabilities are uncalibrated). Bundles are looked up under
    ``bundles`` (default ``$DETAK_BUNDLES`` or ``cache_dir()/bundles``) unless
    ``include_bundles`` is False.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     m = Path(d) / "tiny"; m.mkdir()
    ...     _ = (m / "card.json").write_text('{"weights": {"precision": "fp16"}}')
    ...     _ = (m / "tiny.pt").write_bytes(b"abc")
    ...     [(e["name"], e["runtime"], e["precision"], e["bytes"], e["source"], e["active"])
    ...      for e in list_models(d, include_bundles=False)]
    [('tiny', 'torch', 'fp16', 3, 'package', True)]
    """
    from detak.export.available import runtimes_here
    from detak.export.bundle import active_bundles

    installed = active_bundles(bundles) if include_bundles else {}
    out = [{**entry, "active": entry["name"] not in installed} for entry in list_shipped(root)]
    for name, folder in installed.items():
        try:
            manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            manifest = {}
        for entry in folder_entries(folder, name):
            out.append({**entry, "source": "bundle", "location": "bundle", "active": True,
                        "bundle_version": manifest.get("version")})
    here = runtimes_here()
    return [{**e, "runnable_here": here[e["runtime"]] and e["path"] is not None,
             "calibration": _calibration_label(e.get("card"))} for e in out]


def _calibration_label(card: str | Path | None) -> str | None:
    """The card's calibration label ("temperature, PTB-XL fold 9", ...), None without one (a
    listing never fails on a card; loading the model checks the block)."""
    try:
        block = json.loads(Path(str(card)).read_text(encoding="utf-8")).get("calibration")
    except (OSError, TypeError, ValueError, AttributeError):
        return None
    return block.get("label") if isinstance(block, dict) else None


def model_info(name: str) -> dict[str, Any]:
    """Parameters, MACs and input shape of an architecture NAME or a trained model folder
    (counted on the torch module: `HostExtraMissingError` without the ``host`` extra); for a
    model with a folder also ``files``: each model file's runtime, precision, path and
    ``location`` (package, host-weights, folder, not installed).

    >>> info = model_info("edge")
    >>> info["input_shape"], info["parameters"] <= 150_000, info["macs"] <= 30_000_000
    ([1, 12, 1000], True, True)
    """
    from detak.export.available import require_torch

    require_torch("detak models info", "`detak models list` shows what this install can run")
    from detak.export.predict import ModelNotFoundError, resolve_model_dir
    from detak.models.cnn.registry import (
        INPUT_SHAPE,
        MODEL_NAMES,
        build_model,
        count_macs,
        count_parameters,
    )

    card, folder = None, None
    arch = name
    if name not in MODEL_NAMES:
        from detak.models.model_card import read_card

        folder = resolve_model_dir(name)
        card = read_card(folder / CARD_FILE)
        arch = card["architecture"]["name"]
    else:
        try:                              # an architecture that also ships as a model
            folder = resolve_model_dir(name)
        except ModelNotFoundError:
            folder = None
    model = build_model(arch)
    out: dict[str, Any] = {"name": name, "architecture": arch, "class": type(model).__name__,
                           "input_shape": [1, *INPUT_SHAPE], "output": "5 logits (NORM, MI, "
                           "STTC, CD, HYP)", "parameters": count_parameters(model),
                           "macs": count_macs(model)}
    if card is not None:
        out["card"] = {k: card.get(k) for k in ("weights", "command")}
        out["card"]["fold9_macro_auc"] = (card.get("metrics", {}).get("fold9") or {}).get(
            "macro_auc")
    if folder is not None:
        out["folder"] = str(folder)
        out["files"] = [{k: e[k] for k in ("runtime", "precision", "path", "location")}
                        for e in folder_entries(folder, name)]
    return out
