"""Write a model card's ``runtimes`` block from a `detak export` output folder's export card.

For models whose exported files are not packaged (ResNet-1D, InceptionTime: torch checkpoints on
the host only), the card still says which runtimes and precisions the model exports to and with
what fold-9 figures, so nobody has to rediscover a converter failure (issue 18 item 7):

    detak export tflite --source SRC --out /tmp/it          # SRC: card, standardizer, NAME.pt
    .venv/bin/python tools/card_runtimes.py --model inceptiontime --export /tmp/it [DIR ...] \\
        --note "text on what was fixed or what fails"

Per kind and precision: whether the export worked, size, fold-9 macro and MI AUC, the AUC
change against fp32, the fused MI map's agreement (mean Pearson r per MI-positive record), or
the converter's error; the export command and the library versions.

>>> card = {"exports": {"tflite": {"fp32": {"file": "m.fp32.tflite", "bytes": 2000,
...     "macro_auc": 0.93, "mi_auc": 0.92, "cam_mi_vs_torch": {"mean_r": 1.0}},
...     "int8": {"error": "refused"}, "torch_fp32": {"macro_auc": 0.93, "mi_auc": 0.92},
...     "command": "detak export tflite ...", "versions": {"litert-torch": "0.10.0"},
...     "evaluation": {"fold": 9, "records": 2146}}}}
>>> block = runtimes_block(card)
>>> block["tflite"]["fp32"]["status"], block["tflite"]["int8"]["status"]
('works', 'fails')
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
KEYS = ("file", "bytes", "macro_auc", "mi_auc", "macro_auc_change_vs_fp32",
        "max_abs_prob_diff_vs_torch", "max_abs_prob_diff_vs_fp32", "scheme")


def _entry(e: dict[str, Any]) -> dict[str, Any]:
    if "error" in e:
        return {"status": "fails", "error": e["error"]}
    out = {"status": "works", **{k: e[k] for k in KEYS if k in e}}
    for key in ("cam_mi_vs_torch", "cam_mi_vs_fp32"):
        if key in e:
            out[key + "_mean_r"] = e[key].get("mean_r")
            out[key + "_p05_r"] = e[key].get("p05_r")
    return out


def runtimes_block(export_card: dict[str, Any], note: str | None = None) -> dict[str, Any]:
    """The card's ``runtimes`` block from an export card (`detak.export.pipeline`)."""
    block: dict[str, Any] = {}
    for kind, e in export_card.get("exports", {}).items():
        block[kind] = {prec: _entry(e[prec]) for prec in ("fp32", "int8") if prec in e}
        block[kind]["torch_fp32"] = {k: e["torch_fp32"].get(k) for k in ("macro_auc", "mi_auc")}
        block[kind]["evaluation"] = e.get("evaluation")
        block[kind]["command"] = e.get("command")
        block[kind]["versions"] = {k: v for k, v in e.get("versions", {}).items()
                                   if k in ("torch", "litert-torch", "ai-edge-litert", "onnx",
                                            "onnxruntime")}
        block[kind]["created"] = e.get("created")
    if note:
        block["note"] = note
    return block


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="shipped model name (detak/models/weights)")
    ap.add_argument("--export", required=True, nargs="+", metavar="DIR",
                    help="folders `detak export --out` wrote (each holds export.json); "
                    "a later folder's kinds replace an earlier one's")
    ap.add_argument("--note", default=None, help="what works, what fails and why")
    ap.add_argument("--dry-run", action="store_true", help="print, do not write the card")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from detak.models.model_card import read_card, write_card

    exports: dict = {}
    for folder in args.export:
        card = json.loads((Path(folder) / "export.json").read_text(encoding="utf-8"))
        exports.update(card.get("exports", {}))
    block = runtimes_block({"exports": exports}, args.note)
    print(json.dumps(block, indent=1))
    if not args.dry_run:
        path = REPO / "detak" / "models" / "weights" / args.model / "card.json"
        card = read_card(path)
        card["runtimes"] = block
        write_card(card, path)
        print(f"wrote runtimes into {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
