"""LUDB as an external test of the whole kiosk path (issue 18, item 5): MI and the other
superclasses' AUC on 200 recordings from another hospital, through `detak.kiosk.screening`.

Data: LUDB 1.0.1 — 200 ten-second 12-lead records at 500 Hz (Schiller Cardiovit AT-101,
Nizhny Novgorod; one record per subject), diagnoses by the database's cardiologists. Nothing of
LUDB was used for training, selection or calibration.

Path: each record goes through `detak.kiosk.screening.screen` as the kiosk runs it (validation,
quality gate, 500 → 100 Hz polyphase resampling and the model's filters in
`preprocess_recording`, the int8 edge model on onnxruntime, the card's calibration). Records the
quality gate rejects, or whose leads it rejects one by one, get no MI probability on the kiosk;
the table gives AUC on the records the kiosk screened ("kiosk") and on all 200 with the model
run regardless of the gate (`mi_screen` without the per-lead verdicts, "all").

Labels (LUDB ``ludb.csv`` columns → PTB-XL superclasses):

* MI: "Scar formation", "STEMI" or "Undefined ischemia/scar/supp.NSTEMI" (any wall) — 37
  records (the definition of the earlier figure "MI 0.907 with 37 positives of 200"); a second
  row counts any entry of the Ischemia column (plus "Ischemia: <wall>" alone: 51).
* STTC: "Ischemia: <wall>" or a non-specific repolarization abnormality.
* CD: any conduction abnormality (AV blocks, bundle-branch blocks, hemiblocks, IVCD, SA block).
* HYP: any entry of the Hypertrophies column (ventricular or atrial hypertrophy/overload).
* NORM: a sinus rhythm, a normal/vertical/horizontal axis, and no entry in any diagnosis column
  (conduction, extrasystoles, hypertrophies, pacing, ischemia, repolarization, other states).

Intervals: 1000 bootstrap resamples of records (= subjects), percentile 95 %. Calibration:
the AUC of the raw and the calibrated probability (a monotone map; isotonic's flat ends can tie
records), the mean predicted probability against the observed rate, and the ECE (15 equal-mass
bins, ~13 records a bin) with the floor a perfectly calibrated model would show on 200 records
— a rough check only.

The per-record outputs are cached in ``$DETAK_LOGITS_CACHE`` (key: model file, calibration,
LUDB csv), so a re-run takes seconds. Run: ``.venv/bin/python benchmarks/mi_ludb.py
[--no-results]`` (about 90 s the first time).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _provenance import provenance_line
from readme_tables import RESULTS, write_results

LIBRARIES = ("onnxruntime", "neurokit2", "wfdb")
RESULTS_FILE = RESULTS / "mi_ludb.md"
N_BOOT = 1000
SEED = 0
MI_PREFIXES = ("scar formation", "stemi", "undefined ischemia")
SINUS = ("sinus rhythm", "sinus bradycardia", "sinus tachycardia", "sinus arrhythmia")
DIAGNOSIS_COLUMNS = ("Conduction abnormalities", "Extrasystolies", "Hypertrophies",
                     "Cardiac pacing", "Ischemia", "Non-specific repolarization abnormalities",
                     "Other states")


def _lines(cell: str | None) -> list[str]:
    return [x.strip().lower() for x in (cell or "").replace("\r", "").split("\n") if x.strip()]


def ludb_labels(root: Path) -> dict[int, dict[str, int]]:
    """Per LUDB record the superclass labels of the module docstring (and ``MI_any``,
    ``paced``).

    >>> row = {"ID": "1", "Rhythms": "Sinus rhythm", "Ischemia": "Stemi: septal",
    ...        "Electric axis of the heart": "Electric axis of the heart: normal"}
    >>> _labels_of(row)["MI"], _labels_of(row)["NORM"], _labels_of(row)["STTC"]
    (1, 0, 0)
    """
    with open(root / "ludb.csv", newline="", encoding="utf-8") as fh:
        return {int(r["ID"]): _labels_of(r) for r in csv.DictReader(fh)}


def _labels_of(r: dict[str, str]) -> dict[str, int]:
    isch = _lines(r.get("Ischemia"))
    axis = " ".join(_lines(r.get("Electric axis of the heart")))
    rhythm = _lines(r.get("Rhythms"))
    mi = any(x.startswith(MI_PREFIXES) for x in isch)
    sttc = any(x.startswith("ischemia:") for x in isch) or bool(
        _lines(r.get("Non-specific repolarization abnormalities")))
    norm = (bool(rhythm) and all(x in SINUS for x in rhythm)
            and any(a in axis for a in ("normal", "vertical", "horizontal"))
            and not any(_lines(r.get(c)) for c in DIAGNOSIS_COLUMNS))
    return {"NORM": int(norm), "MI": int(mi), "STTC": int(sttc),
            "CD": int(bool(_lines(r.get("Conduction abnormalities")))),
            "HYP": int(bool(_lines(r.get("Hypertrophies")))), "MI_any": int(bool(isch)),
            "paced": int(bool(_lines(r.get("Cardiac pacing")))), "age": _age(r.get("Age"))}


def _age(cell: str | None) -> int:
    digits = "".join(c for c in (cell or "") if c.isdigit())
    return int(digits) if digits else -1


def run_records(ids: list[int]) -> list[dict[str, Any]]:
    """Per record: the kiosk screening's verdict and probabilities, and the ungated raw logits
    (mean over windows is taken after calibration, as the kiosk does)."""
    from detak.data.ludb import load_ludb
    from detak.export.predict import load_model
    from detak.kiosk.screening import mi_recording, mi_screen, screen
    from detak.models.cnn_data import CLASSES, preprocess_recording

    raw = load_model("edge", runtime="onnx", precision="int8", threads=1, calibrated=False)
    out = []
    for n in ids:
        rec = load_ludb(n).recording
        s = screen(rec, lang="en", source=f"ludb://{n}")
        ungated, why = mi_screen(rec, "edge", "en")
        twelve, _ = mi_recording(rec, "en")
        logits = raw.module.run(preprocess_recording(twelve, raw.standardizer)).logits
        out.append({"record": n, "verdict": s.quality["verdict"],
                    "kiosk": (s.mi or {}).get("probabilities"),
                    "kiosk_reason": s.mi_reason,
                    "ungated": (ungated or {}).get("probabilities"), "why": why,
                    "calibration": (ungated or {}).get("calibration"),
                    "logits": np.asarray(logits, float).tolist(), "classes": list(CLASSES)})
    return out


def cached_records(ids: list[int], root: Path) -> list[dict[str, Any]]:
    from detak.export.fold_logits import logits_cache_dir
    from detak.export.predict import resolve_model_dir
    from detak.models.model_card import read_card, sha256_file

    folder = resolve_model_dir("edge")
    card = read_card(folder / "card.json")
    key = hashlib.sha256((sha256_file(folder / "edge.int8.onnx")
                          + json.dumps(card.get("calibration"), sort_keys=True)
                          + json.dumps((card.get("operating_points") or {}).get("classes"),
                                       sort_keys=True)
                          + sha256_file(root / "ludb.csv")).encode()).hexdigest()[:16]
    path = logits_cache_dir() / f"ludb_kiosk_{key}.json"
    if path.is_file():
        return json.loads(path.read_text())
    out = run_records(ids)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out))
    return out


def boot_auc(y: np.ndarray, s: np.ndarray, n_boot: int = N_BOOT,
             seed: int = SEED) -> tuple[float, float, float]:
    """AUC with a percentile bootstrap interval over records (each its own "patient": LUDB has
    one record per person)."""
    from detak.models.bootstrap import patient_resamples
    from detak.models.cnn_metrics import roc_auc

    stats = [roc_auc(y[idx], s[idx]) for idx in patient_resamples(
        np.arange(len(y)), n_boot, seed, valid=lambda idx: 0 < y[idx].sum() < len(idx))]
    lo, hi = np.quantile(stats, [0.025, 0.975])
    return roc_auc(y, s), float(lo), float(hi)


def run(argv: list[str] | None = None) -> dict[str, Any]:
    """Compute, print and (unless --no-results) write the tables; returns their rows for
    benchmarks/mi_model.py."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--no-results", action="store_true", help="print only")
    args = ap.parse_args(argv)
    from detak.data.ludb import ludb_ids, ludb_root
    from detak.export.predict import card_calibration, resolve_model_dir
    from detak.models.model_card import read_card
    from detak.models.prob_calibration import ece, ece_floor, sigmoid

    t0 = time.time()
    prov = provenance_line(libraries=LIBRARIES)
    root = ludb_root()
    labels = ludb_labels(root)
    ids = ludb_ids()
    recs = cached_records(ids, root)
    classes = recs[0]["classes"]
    folder = resolve_model_dir("edge")
    cal = card_calibration(folder, read_card(folder / "card.json"))
    raw = np.array([sigmoid(np.asarray(r["logits"])).mean(axis=0) for r in recs])
    calp = np.array([cal.probabilities(np.asarray(r["logits"])).mean(axis=0) for r in recs])
    ung = np.array([[r["ungated"][c] for c in classes] for r in recs])
    same = float(np.abs(calp - ung).max())            # the kiosk's numbers, recomputed
    kiosk = np.array([r["kiosk"] is not None for r in recs])
    y = {c: np.array([labels[r["record"]][c] for r in recs]) for c in
         (*classes, "MI_any", "paced")}
    stopped = sorted({(r["kiosk_reason"] or "")[:60] for r in recs if r["kiosk"] is None})
    head = (f"LUDB (200 records, 500 Hz, another hospital) through the kiosk path "
            f"(`screen`: quality gate, 500 → 100 Hz, int8 edge model, {recs[0]['calibration']})"
            f". kiosk = the {int(kiosk.sum())} records the quality gate let the model see "
            f"({int((~kiosk).sum())} stopped{': ' + '; '.join(stopped) if stopped else ''}); "
            "all = the model on all 200. 95 % intervals: 1000 bootstrap resamples of records.")
    rows = ["| class (LUDB labels) | positives (all) | AUC all [95 % CI] | positives (kiosk) | "
            "AUC kiosk [95 % CI] |", "|---|---|---|---|---|"]
    label_text = {"MI": "MI (scar, STEMI, undefined ischemia/scar/NSTEMI)",
                  "MI_any": "MI vs any Ischemia-column entry", "NORM": "NORM (no diagnosis)",
                  "STTC": "STTC (ischemia, non-specific repolarization)",
                  "CD": "CD (conduction abnormalities)", "HYP": "HYP (hypertrophy/overload)"}
    for c in ("MI", "MI_any", "NORM", "STTC", "CD", "HYP"):
        col = classes.index("MI" if c == "MI_any" else c)
        a = boot_auc(y[c], calp[:, col])
        k = boot_auc(y[c][kiosk], calp[kiosk, col])
        rows.append(f"| {label_text[c]} | {int(y[c].sum())} | {a[0]:.3f} [{a[1]:.3f}, "
                    f"{a[2]:.3f}] | {int(y[c][kiosk].sum())} | {k[0]:.3f} [{k[1]:.3f}, "
                    f"{k[2]:.3f}] |")
    mi = classes.index("MI")
    unpaced = y["paced"] == 0
    a_np = boot_auc(y["MI"][unpaced], calp[unpaced, mi])
    from detak.models.cnn_metrics import roc_auc

    cal_rows = ["| class | AUC raw → calibrated (all) | mean probability raw → calibrated | "
                "observed rate | ECE raw → calibrated | ECE floor (200 records) |",
                "|---|---|---|---|---|---|"]
    for c in classes:
        j = classes.index(c)
        floor = ece_floor(calp[:, j], draws=200, seed=1)[0]
        cal_rows.append(
            f"| {c} | {roc_auc(y[c], raw[:, j]):.4f} → {roc_auc(y[c], calp[:, j]):.4f} | "
            f"{raw[:, j].mean():.3f} → {calp[:, j].mean():.3f} | {y[c].mean():.3f} | "
            f"{ece(raw[:, j], y[c]):.3f} → {ece(calp[:, j], y[c]):.3f} | {floor:.3f} |")
    notes = [f"MI without the {int(y['paced'].sum())} paced records: AUC {a_np[0]:.3f} "
             f"[{a_np[1]:.3f}, {a_np[2]:.3f}] ({int(y['MI'][unpaced].sum())} positives).",
             f"The kiosk's own probabilities (`mi_screen`) equal the raw logits through the "
             f"card's calibration to {same:.1e}."]
    run_line = f"_Run time {time.time() - t0:.0f} s._"
    block = [head, "", *rows, "", *notes, "", "Calibration on LUDB (labels mapped as above; "
             "LUDB's prevalences differ from PTB-XL's, so the mean probability against the "
             "observed rate shows the shift as much as the calibration):", "", *cal_rows, "",
             prov]
    text = "\n".join([*block[:-1], run_line, "", prov])
    print(text)
    if not args.no_results:
        path = write_results(RESULTS_FILE, "LUDB: an external test of the whole kiosk path",
                             prov, text, {"mi_ludb": "\n".join(block)})
        print(f"\nwritten: {path}")
    return {"head": head, "rows": rows, "notes": notes}

def main(argv: list[str] | None = None) -> int:
    run(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
