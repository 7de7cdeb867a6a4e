"""The MI operating point for screening (issue 18, item 3): threshold, sensitivity,
specificity, PPV and NPV with 95 % patient-bootstrap intervals.

Data: the labelled records of PTB-XL strat fold 9 (2146 records, 1917 patients; fold 10 never
read), the int8 edge model the kiosk runs (onnxruntime), its *calibrated* MI probability (the
card's calibration). The thresholds are the card's ``operating_points`` rules
(``tools/mi_operating_point.py``, which writes them into the card; this script recomputes
them and says whether the card holds the same):

* screening (the kiosk's ``mi_review``): the highest threshold with sensitivity ≥ 0.90;
* Youden's J (the former review threshold), for comparison;
* refer (``mi_refer``): the lowest threshold with specificity ≥ 0.95.

PPV and NPV are computed from sensitivity and specificity at two prevalences: PTB-XL's (the MI
share of fold 9) and a nursing-home figure (10.5 %, ECG evidence of prior Q-wave MI in
community-dwelling people aged 75-85, the Bronx Aging Study, Am J Cardiol 1990;66:533-7 — a
community figure, likely low for care-home residents). Intervals: 1000 resamples of patients
(seed 0), percentile. "Held out" rows: the threshold chosen on one patient half of fold 9 and
measured on the other (both ways) — the honest sensitivity of the rule, since a threshold
chosen on fold 9 reaches 0.90 on fold 9 by construction. Per 1000 residents: expected true and
false alarms and misses at the nursing-home prevalence.

Run: ``.venv/bin/python benchmarks/mi_operating_point.py [--no-results]`` (about 10 s).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _provenance import provenance_line
from readme_tables import RESULTS, write_results

LIBRARIES = ("onnxruntime",)
RESULTS_FILE = RESULTS / "mi_operating_point.md"


def _tool() -> Any:
    """tools/mi_operating_point.py, loaded by path under another name: this module has the same
    name, so ``import mi_operating_point`` from benchmarks/mi_model.py would find itself."""
    import importlib.util

    name = "tools_mi_operating_point"
    if name not in sys.modules:
        path = Path(__file__).resolve().parents[1] / "tools" / "mi_operating_point.py"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


def _ci(v: float, ci: list[float]) -> str:
    return f"{v:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"


def run(argv: list[str] | None = None) -> dict[str, Any]:
    """Compute, print and (unless --no-results) write the tables; returns their rows for
    benchmarks/mi_model.py."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="edge")
    ap.add_argument("--no-results", action="store_true", help="print only")
    args = ap.parse_args(argv)
    from detak.models.cnn_data import CLASSES
    from detak.models.operating_point import summary

    t0 = time.time()
    prov = provenance_line(libraries=LIBRARIES)
    mop = _tool()
    loaded, probs, y, patients = mop.fold9_calibrated(args.model)
    mi = list(CLASSES).index("MI")
    p, yy = probs[:, mi], y[:, mi]
    points = mop.operating_points(probs, y, list(CLASSES))["MI"]
    prev = mop.prevalences(yy)
    card = ((loaded.card.get("operating_points") or {}).get("classes") or {}).get("MI") or {}
    same = all((card.get(k) or {}).get("threshold") == points[k]["threshold"]
               for k in ("operating", "youden", "refer"))
    head = (f"MI, int8 edge model, calibrated probabilities ({loaded.probabilities}); PTB-XL fold "
            f"9: {len(yy)} records, {len(np.unique(patients))} patients, {int(yy.sum())} MI. "
            f"PPV/NPV at PTB-XL's MI prevalence ({prev['ptbxl']:.1%}) and at a nursing-home "
            f"prevalence ({prev['nursing_home']:.1%}: ECG evidence of prior Q-wave MI at 75-85, "
            "Bronx Aging Study 1990; community, likely low for care homes). 95 % intervals: "
            "1000 patient resamples.")
    rows = ["| operating point | threshold | sensitivity | specificity | PPV @ PTB-XL | "
            "NPV @ PTB-XL | PPV @ nursing home | NPV @ nursing home |",
            "|---|---|---|---|---|---|---|---|"]
    names = {"operating": "screening: sensitivity ≥ 0.90 (kiosk `mi_review`)",
             "youden": "Youden's J (former review point)",
             "refer": "refer: specificity ≥ 0.95 (kiosk `mi_refer`)"}
    per_1000 = []
    for key in ("operating", "youden", "refer"):
        t = points[key]["threshold"]
        s = summary(p, yy, patients, t, prev, n_boot=mop.N_BOOT, seed=mop.SEED,
                    target_sensitivity=mop.SCREEN_SENSITIVITY if key == "operating" else None)
        pv, ci = s["predictive_values"], s["ci95"]
        tcol = (f"{t:.4f} [{ci['threshold'][0]:.3f}, {ci['threshold'][1]:.3f}]"
                if "threshold" in ci else f"{t:.4f}")
        rows.append(f"| {names[key]} | {tcol} | {_ci(s['sensitivity'], ci['sensitivity'])} | "
                    f"{_ci(s['specificity'], ci['specificity'])} | "
                    f"{_ci(pv['ptbxl']['ppv'], ci['ppv@ptbxl'])} | "
                    f"{_ci(pv['ptbxl']['npv'], ci['npv@ptbxl'])} | "
                    f"{_ci(pv['nursing_home']['ppv'], ci['ppv@nursing_home'])} | "
                    f"{_ci(pv['nursing_home']['npv'], ci['npv@nursing_home'])} |")
        pi = prev["nursing_home"]
        tp = 1000 * pi * s["sensitivity"]
        fp = 1000 * (1 - pi) * (1 - s["specificity"])
        per_1000.append(f"| {names[key]} | {tp + fp:.0f} | {tp:.0f} | {fp:.0f} | "
                        f"{1000 * pi - tp:.0f} |")
    from detak.models.operating_point import cross_fitted
    from detak.models.prob_calibration import patient_halves

    held = cross_fitted(p, yy, patient_halves(patients, mop.SEED), mop.SCREEN_SENSITIVITY)
    held_rows = ["| threshold chosen on | threshold | held-out sensitivity | held-out "
                 "specificity | records |", "|---|---|---|---|---|"]
    for name, r in zip(("half B, measured on A", "half A, measured on B"), held, strict=True):
        n = r["tp"] + r["fn"] + r["tn"] + r["fp"]
        held_rows.append(f"| {name} | {r['threshold']:.4f} | {r['sensitivity']:.3f} "
                         f"({r['tp']}/{r['tp'] + r['fn']}) | {r['specificity']:.3f} "
                         f"({r['tn']}/{r['tn'] + r['fp']}) | {n} |")
    note = (f"The card's MI operating points ({loaded.folder.name}/card.json, "
            f"tools/mi_operating_point.py) hold the same thresholds: {'yes' if same else 'NO'}.")
    run_line = f"_Run time {time.time() - t0:.0f} s._"
    block = [head, "", *rows, "", "Per 1000 residents screened at the nursing-home prevalence "
             "(expected, from the point estimates):", "",
             "| operating point | flagged | true MI flagged | false alarms | MI missed |",
             "|---|---|---|---|---|", *per_1000, "", "The screening threshold chosen on one "
             "patient half and measured on the other (fold 9 split by patient, seed 0):", "",
             *held_rows, "", note, "", prov]
    text = "\n".join([*block[:-1], run_line, "", prov])
    print(text)
    if not args.no_results:
        path = write_results(RESULTS_FILE, "The MI operating point for screening (PTB-XL fold "
                             "9, calibrated int8 edge model)", prov, text,
                             {"mi_operating_point": "\n".join(block)})
        print(f"\nwritten: {path}")
    return {"head": head, "rows": rows, "per_1000": per_1000, "held_rows": held_rows,
            "note": note}

def main(argv: list[str] | None = None) -> int:
    run(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
