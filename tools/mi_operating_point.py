"""Operating thresholds of the kiosk's CNN, chosen on PTB-XL fold 9 (never fold 10), written
into the model card (``card.json`` → ``operating_points``) that `detak.kiosk.urgency` reads.

For each superclass the *operating* threshold maximises Youden's J (sensitivity + specificity
- 1) on fold 9's labelled records, with the model file the kiosk runs (int8 ONNX, onnxruntime).
For MI a second, stricter *refer* threshold is the lowest one with specificity >= 0.95 on fold
9: above it the kiosk says "refer today", between the two "routine review". Fold 9 is the
validation fold the model was selected on (its card), so these figures are optimistic for
new residents; fold 10 (the test fold) is never read.

Re-run after retraining or re-exporting the model (about 10 s; the fold arrays are cached)::

    .venv/bin/python tools/mi_operating_point.py            # prints and writes the card
    .venv/bin/python tools/mi_operating_point.py --dry-run  # prints only
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

import numpy as np

FOLD = 9
REFER_SPECIFICITY = 0.95
COMMAND = ".venv/bin/python tools/mi_operating_point.py"


def _rates(p: np.ndarray, y: np.ndarray, t: float) -> dict[str, float | int]:
    pred = p >= t
    tp, fn = int((pred & y).sum()), int((~pred & y).sum())
    tn, fp = int((~pred & ~y).sum()), int((pred & ~y).sum())
    return {"threshold": round(float(t), 4), "sensitivity": round(tp / max(tp + fn, 1), 4),
            "specificity": round(tn / max(tn + fp, 1), 4), "tp": tp, "fn": fn, "tn": tn,
            "fp": fp}


def operating_points(probs: np.ndarray, labels: np.ndarray,
                     classes: list[str]) -> dict[str, dict]:
    """Per class the Youden threshold; for MI also the specificity >= 0.95 threshold.

    >>> p = np.array([[0.1], [0.4], [0.6], [0.9]]); y = np.array([[0], [0], [1], [1]])
    >>> operating_points(p, y, ["MI"])["MI"]["operating"]["threshold"]
    0.6
    """
    out: dict[str, dict] = {}
    for j, name in enumerate(classes):
        p, y = probs[:, j], labels[:, j].astype(bool)
        cands = np.unique(p)
        j_best = max(cands, key=lambda t: (_rates(p, y, t)["sensitivity"]
                                           + _rates(p, y, t)["specificity"]))
        entry = {"operating": _rates(p, y, j_best)}
        if name == "MI":
            ok = [t for t in cands if _rates(p, y, t)["specificity"] >= REFER_SPECIFICITY]
            entry["refer"] = _rates(p, y, min(ok))
        out[name] = entry
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="edge")
    ap.add_argument("--dry-run", action="store_true", help="print, do not write the card")
    args = ap.parse_args(argv)
    from detak.export.predict import load_model
    from detak.models.cnn_data import CLASSES, fold_arrays
    from detak.models.model_card import read_card, sha256_file, write_card

    model = load_model(args.model, runtime="onnx", precision="int8", threads=1)
    fa = fold_arrays(FOLD)
    keep = np.asarray(fa.labelled, bool)
    x = model.standardizer.transform(np.asarray(fa.x[keep]))
    probs = np.concatenate([model.predict(x[s:s + 256]) for s in range(0, len(x), 256)])
    points = operating_points(probs, np.asarray(fa.y[keep]), list(CLASSES))
    path = Path(model.module.path)
    doc = {"fold": FOLD, "records": int(keep.sum()), "file": path.name,
           "file_sha256": sha256_file(path), "runtime": "onnxruntime int8",
           "rule": "operating = max Youden J; MI refer = lowest threshold with specificity >= "
                   f"{REFER_SPECIFICITY} (fold {FOLD}, never fold 10)",
           "command": COMMAND, "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
           "classes": points}
    print(json.dumps(doc, indent=1))
    if not args.dry_run:
        card_path = model.folder / "card.json"
        card = read_card(card_path)
        card["operating_points"] = doc
        write_card(card, card_path)
        print(f"written: {card_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
