"""Operating thresholds of the kiosk's CNN, chosen on PTB-XL fold 9 (never fold 10) on the
*calibrated* probabilities the kiosk shows (the card's ``calibration``,
``tools/calibrate_models.py``), written into the model card (``card.json`` →
``operating_points``) that `detak.kiosk.urgency` reads.

* MI ``operating`` — the screening point: the highest threshold whose sensitivity on fold 9 is
  >= 0.90 (`SCREEN_SENSITIVITY`; why a screen wants this: docs/kiosk.md, "The MI operating
  point"), with specificity, PPV and NPV at PTB-XL's MI prevalence and at a nursing-home
  prevalence (`PREVALENCES`), 95 % intervals by a patient bootstrap, and the threshold chosen
  on one patient half of fold 9 and measured on the other (``cross_fitted``).
* MI ``refer`` — the lowest threshold with specificity >= 0.95 on fold 9: above it the kiosk
  says "refer today", between the two "routine review".
* MI ``youden`` and every other class's ``operating`` — the threshold maximising Youden's J
  (sensitivity + specificity - 1).

Fold 9 is the validation fold the model was selected and calibrated on (its card), so these
figures are optimistic for new residents; fold 10 (the test fold) is never read.

Re-run after retraining, re-exporting or re-calibrating the model (seconds; the fold logits
are cached; ``tools/calibrate_models.py`` runs it)::

    .venv/bin/python tools/mi_operating_point.py            # prints and writes the card
    .venv/bin/python tools/mi_operating_point.py --dry-run  # prints only
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

FOLD = 9
REFER_SPECIFICITY = 0.95
SCREEN_SENSITIVITY = 0.90
N_BOOT = 1000
SEED = 0
COMMAND = ".venv/bin/python tools/mi_operating_point.py"
#: prior / silent MI visible on the ECG among the kiosk's residents: 10.5 % = 6.4 % ECG
#: evidence of Q-wave MI without a clinical history + 4.1 % with both, at baseline in 390
#: community-dwelling people aged 75-85 (The Bronx Aging Study, Am J Cardiol 1990;66(5):533-7,
#: doi:10.1016/0002-9149(90)90477-i, PubMed 2392974; abstract read). Care-home residents are
#: older and sicker, so this is likely a lower bound for them; no care-home figure verified.
NURSING_HOME_PREVALENCE = 0.105
NURSING_HOME_SOURCE = ("10.5 %: ECG evidence of prior Q-wave MI (6.4 % unrecognised + 4.1 % "
                       "recognised) in 390 community-dwelling people aged 75-85, Bronx Aging "
                       "Study, Am J Cardiol 1990;66(5):533-7 (doi:10.1016/0002-9149(90)90477-i);"
                       " community, not care-home: likely a lower bound for residents")


def _rates(p: np.ndarray, y: np.ndarray, t: float) -> dict[str, float | int]:
    from detak.models.operating_point import rates

    return rates(p, y, t)


def operating_points(probs: np.ndarray, labels: np.ndarray,
                     classes: list[str]) -> dict[str, dict]:
    """Per class the Youden threshold; for MI the screening point (sensitivity >= 0.90) as
    ``operating``, Youden's as ``youden`` and the specificity >= 0.95 point as ``refer``.

    >>> p = np.array([[0.1], [0.4], [0.6], [0.9]]); y = np.array([[0], [0], [1], [1]])
    >>> pts = operating_points(p, y, ["MI"])["MI"]
    >>> pts["operating"]["threshold"], pts["youden"]["threshold"], pts["refer"]["threshold"]
    (0.6, 0.6, 0.6)
    """
    from detak.models.operating_point import (
        threshold_for_sensitivity,
        threshold_for_specificity,
    )

    out: dict[str, dict] = {}
    for j, name in enumerate(classes):
        p, y = probs[:, j], labels[:, j].astype(bool)
        cands = np.unique(p)
        j_best = max(cands, key=lambda t: (_rates(p, y, t)["sensitivity"]
                                           + _rates(p, y, t)["specificity"]))
        youden = _rates(p, y, j_best)
        if name == "MI":       # stored to 4 decimals: rounded towards the target's side
            t = math.floor(threshold_for_sensitivity(p, y, SCREEN_SENSITIVITY) * 1e4) / 1e4
            screen = _rates(p, y, t)
            screen["rule"] = f"highest threshold with sensitivity >= {SCREEN_SENSITIVITY}"
            t = math.ceil(threshold_for_specificity(p, y, REFER_SPECIFICITY) * 1e4) / 1e4
            out[name] = {"operating": screen, "youden": youden, "refer": _rates(p, y, t)}
        else:
            out[name] = {"operating": youden}
    return out


def prevalences(y_mi: np.ndarray) -> dict[str, float]:
    """{name: MI prevalence}: fold 9's (PTB-XL) and the nursing-home figure."""
    return {"ptbxl": round(float(np.mean(y_mi)), 4), "nursing_home": NURSING_HOME_PREVALENCE}


def mi_screening(p: np.ndarray, y: np.ndarray, patients: np.ndarray,
                 threshold: float) -> dict[str, Any]:
    """The MI screening point with predictive values, patient-bootstrap intervals and the
    cross-fitted (held-out half) sensitivity and specificity."""
    from detak.models.operating_point import cross_fitted, summary
    from detak.models.prob_calibration import patient_halves

    prev = prevalences(y)
    out = summary(p, y, patients, threshold, prev, n_boot=N_BOOT, seed=SEED,
                  target_sensitivity=SCREEN_SENSITIVITY)
    out["prevalences"] = prev
    out["prevalence_sources"] = {"ptbxl": f"MI share of the labelled fold-{FOLD} records",
                                 "nursing_home": NURSING_HOME_SOURCE}
    out["bootstrap"] = f"{N_BOOT} resamples of patients (seed {SEED}), percentile 95 %"
    out["cross_fitted"] = cross_fitted(p, y, patient_halves(patients, SEED),
                                       SCREEN_SENSITIVITY)
    return out


def fold9_calibrated(model: str) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray]:
    """(loaded int8 model, calibrated probabilities, labels, patient ids) of fold 9's
    labelled records, from the cached logits."""
    from detak.data.ptbxl import open_ptbxl
    from detak.export.fold_logits import fold_logits
    from detak.export.predict import load_model

    loaded = load_model(model, runtime="onnx", precision="int8", threads=1)
    d = fold_logits(loaded, FOLD)
    keep = np.asarray(d["labelled"], bool)
    probs = loaded.calibrate(d["logits"][keep])
    patients = open_ptbxl().metadata.loc[d["ids"][keep], "patient_id"].to_numpy(np.int64)
    return loaded, probs, np.asarray(d["y"][keep]), patients


def calibration_digest(card: dict[str, Any]) -> str | None:
    """SHA-256 of the card's calibration block (canonical JSON), None without one: the
    operating points name the calibration they were computed on.

    >>> calibration_digest({}) is None, len(calibration_digest({"calibration": {"a": 1}}))
    (True, 64)
    """
    import hashlib

    block = card.get("calibration")
    if block is None:
        return None
    return hashlib.sha256(json.dumps(block, sort_keys=True).encode()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="edge")
    ap.add_argument("--dry-run", action="store_true", help="print, do not write the card")
    args = ap.parse_args(argv)
    from detak.models.cnn_data import CLASSES
    from detak.models.model_card import read_card, sha256_file, write_card

    model, probs, y, patients = fold9_calibrated(args.model)
    classes = list(CLASSES)
    points = operating_points(probs, y, classes)
    mi = classes.index("MI")
    points["MI"]["operating"]["screening"] = mi_screening(
        probs[:, mi], y[:, mi], patients, points["MI"]["operating"]["threshold"])
    path = Path(model.module.path)
    doc = {"fold": FOLD, "records": int(len(y)), "file": path.name,
           "file_sha256": sha256_file(path), "runtime": "onnxruntime int8",
           "probabilities": model.probabilities,
           "calibration_sha256": calibration_digest(model.card),
           "rule": (f"MI operating = highest threshold with sensitivity >= {SCREEN_SENSITIVITY}"
                    f"; MI refer = lowest threshold with specificity >= {REFER_SPECIFICITY}; "
                    "MI youden and the other classes' operating = max Youden J (fold "
                    f"{FOLD}, calibrated probabilities, never fold 10)"),
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
