"""Write the probability calibration into the shipped CNNs' model cards (``card.json`` →
``calibration``), fitted on PTB-XL fold 9 (never fold 10), then refresh the edge card's
operating points on the calibrated probabilities (``tools/mi_operating_point.py``).

Per class the method is the one with the lowest held-out ECE (15 equal-mass bins) of the raw
outputs (``identity``: no map), per-class temperature scaling and isotonic regression (a tie
goes to the one with fewer parameters, identity first: a map that does not beat the raw
outputs on held-out patients is not shipped), measured by 2-fold cross-fitting on
fold 9 split by patient (fit on one half, measure on the other, then swap), averaged over
`SPLITS` random patient splits (seeds 0..SPLITS-1; one split's ECE moves by about 0.01 with the
split, as much as the methods differ); the shipped calibration is that method fitted on all of
fold 9. The held-out ECEs go into the card
beside it; ``benchmarks/mi_calibration.py`` reports them with reliability diagrams.

Logits: the file each model runs on a kiosk or host — edge: ``edge.int8.onnx``
(onnxruntime); the others: their torch checkpoints (fp32). Cached by
`detak.export.fold_logits` (``$DETAK_LOGITS_CACHE``), so a re-run takes seconds.

    .venv/bin/python tools/calibrate_models.py                 # all shipped models
    .venv/bin/python tools/calibrate_models.py --models edge   # one
    .venv/bin/python tools/calibrate_models.py --dry-run       # print only
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

FOLD = 9
SEED = 0
SPLITS = 20
COMMAND = ".venv/bin/python tools/calibrate_models.py"
MODELS: tuple[str, ...] = ("edge", "resnet1d", "inceptiontime", "alexnet1d")


def load_for_calibration(name: str) -> Any:
    """The model as it runs: edge (and any exported model) int8 ONNX, else torch fp32;
    uncalibrated (the calibration is fitted on its raw logits)."""
    from detak.export.predict import load_model, resolve_model_dir
    from detak.export.runtime import find_model_file
    from detak.models.model_card import read_card

    folder = resolve_model_dir(name)
    stem = Path(str((read_card(folder / "card.json").get("weights") or {}).get("file")
                    or f"{name}.pt")).stem
    if find_model_file(folder, stem, "onnx", "int8") is not None:
        return load_model(folder, runtime="onnx", precision="int8", threads=1, calibrated=False)
    return load_model(folder, runtime="torch", precision="fp32", threads=1, calibrated=False)


def fold9_data(loaded: Any) -> dict[str, np.ndarray]:
    """Labelled fold-9 records: ``ids``, ``patients``, ``logits``, ``y``."""
    from detak.data.ptbxl import open_ptbxl
    from detak.export.fold_logits import fold_logits

    d = fold_logits(loaded, FOLD)
    keep = np.asarray(d["labelled"], bool)
    ids = d["ids"][keep]
    patients = open_ptbxl().metadata.loc[ids, "patient_id"].to_numpy(dtype=np.int64)
    return {"ids": ids, "patients": patients, "logits": d["logits"][keep].astype(np.float64),
            "y": d["y"][keep].astype(np.int64)}


def choose(mean_ece: dict[str, float]) -> str:
    """The method with the lowest mean held-out ECE; identity's is the ``uncalibrated`` one. A
    tie goes to fewer parameters (identity, then temperature, then isotonic).

    >>> choose({"uncalibrated": 0.3, "temperature": 0.025, "isotonic": 0.03})
    'temperature'
    >>> choose({"uncalibrated": 0.024, "temperature": 0.025, "isotonic": 0.03})
    'identity'
    """
    from detak.models.prob_calibration import METHODS

    def held(m: str) -> float:
        return mean_ece["uncalibrated" if m == "identity" else m]

    return min(METHODS, key=lambda m: (held(m), METHODS.index(m)))


NOT_IMPROVED = "fold-9 held-out ECE not improved"


def label_for(chosen: dict[str, str]) -> str:
    """The card's label for the methods ``chosen`` per class (in output order); classes left
    raw (identity) are named as such, and a card with no map at all says "uncalibrated".

    >>> label_for({"NORM": "identity", "MI": "temperature"})
    'temperature (MI) / raw output (NORM: fold-9 held-out ECE not improved by a map), PTB-XL fold 9'
    """
    methods = sorted(set(chosen.values()) - {"identity"})
    if not methods:
        return f"uncalibrated: {NOT_IMPROVED} by temperature or isotonic"
    if len(methods) == 1 and "identity" not in chosen.values():
        return f"{methods[0]}, PTB-XL fold 9"
    parts = [f"{m} ({', '.join(c for c in chosen if chosen[c] == m)})" for m in methods]
    raw = [c for c in chosen if chosen[c] == "identity"]
    if raw:
        parts.append(f"raw output ({', '.join(raw)}: {NOT_IMPROVED} by a map)")
    return " / ".join(parts) + ", PTB-XL fold 9"


def calibrate(name: str) -> tuple[Any, dict[str, Any]]:
    """(loaded model, the card's calibration block) for model ``name``."""
    from detak.export.fold_logits import model_file
    from detak.models.model_card import sha256_file
    from detak.models.prob_calibration import (
        Calibration,
        fit_class,
        held_out_ece,
        patient_halves,
        repeated_held_out,
    )

    loaded = load_for_calibration(name)
    d = fold9_data(loaded)
    classes = list((loaded.card.get("architecture") or {}).get("outputs"))
    half = patient_halves(d["patients"], SEED)
    per_class, held, chosen = {}, {}, {}
    for j, c in enumerate(classes):
        z, y = d["logits"][:, j], d["y"][:, j]
        held[c] = {f"split{SEED}_halves": {k: [round(v, 5) for v in vals] for k, vals in
                                          held_out_ece(z, y, half).items()},
                   f"mean_{SPLITS}_splits": repeated_held_out(z, y, d["patients"], SPLITS)}
        chosen[c] = choose(held[c][f"mean_{SPLITS}_splits"])
        held[c]["chosen"] = chosen[c]
        per_class[c] = fit_class(chosen[c], d["logits"][:, j], d["y"][:, j])
    label = label_for(chosen)
    path = model_file(loaded)
    info = {
        "fitted_on": (f"PTB-XL fold {FOLD}: all {len(d['ids'])} labelled records "
                      f"({len(np.unique(d['patients']))} patients); fold 10 never read"),
        "model_file": path.name, "model_file_sha256": sha256_file(path),
        "runtime": f"{loaded.runtime} {loaded.precision}",
        "input": "the model's logits (one per class), per 10-s window; a recording's windows "
                 "are averaged after calibration",
        "selection": (f"per class the method (identity = the raw sigmoid, temperature, "
                      f"isotonic) with the lowest mean ECE (15 equal-mass bins; a tie goes to "
                      f"fewer parameters) on held-out records: fold {FOLD} split by patient "
                      f"into two halves, fitted on one, measured on the other, then swapped; "
                      f"mean over {SPLITS} random patient splits (seeds 0-{SPLITS - 1})"),
        "held_out_ece": held,
        "halves": [int((~half).sum()), int(half.sum())],
        "command": COMMAND,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    cal = Calibration(per_class, tuple(classes), label, info)
    return loaded, cal.to_card()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    ap.add_argument("--dry-run", action="store_true", help="print, do not write the cards")
    args = ap.parse_args(argv)
    from detak.models.model_card import read_card, write_card

    for name in args.models:
        loaded, block = calibrate(name)
        held = block["held_out_ece"]
        for c, h in held.items():
            m = h[f"mean_{SPLITS}_splits"]
            print(f"{name:<14} {c:<5} held-out ECE, mean of {SPLITS} splits: uncalibrated "
                  f"{m['uncalibrated']:.4f}  temperature {m['temperature']:.4f}  isotonic "
                  f"{m['isotonic']:.4f}  -> {h['chosen']}")
        print(f"{name:<14} label: {block['label']}")
        if args.dry_run:
            print(json.dumps(block, indent=1)[:2000])
            continue
        card_path = loaded.folder / "card.json"
        card = read_card(card_path)
        card["calibration"] = block
        write_card(card, card_path)
        print(f"written: {card_path}", file=sys.stderr)
        if "operating_points" in card:
            import mi_operating_point

            mi_operating_point.main(["--model", name])
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    raise SystemExit(main())
