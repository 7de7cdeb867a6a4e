"""Subgroups (issue 18, item 6): fold-9 macro and MI AUC of the int8 edge model by age band,
sex, pacemaker, recording site and device, with 95 % patient-bootstrap intervals.

Data: PTB-XL strat fold 9 (fold 10 never read), the int8 edge model the kiosk runs
(onnxruntime); AUC is the same for the raw and the calibrated probabilities within a subgroup
(one monotone map per class), so the raw logits are scored. Subgroups from
``ptbxl_database.csv``: age band (< 65, 65-79, >= 80: the kiosk's residents; PTB-XL codes ages
over 89 as 300, counted as >= 80), sex, recording site (``site``) and device (``device``; a
site or device with fewer than 50 labelled records goes to "other"), and pacemaker (the
``PACE`` statement): only 2 labelled fold-9 records carry it — PTB-XL gives most paced ECGs no
diagnostic superclass — so for paced records the table shows how many the kiosk would flag for
MI (calibrated probability at or above the card's MI screening threshold) instead of an AUC.

Intervals: 1000 resamples of the subgroup's patients (seed 0), percentile 95 %; macro AUC over
the classes with both labels in the subgroup. "Weaker" marks a subgroup whose interval lies
wholly below the all-records point estimate; a paired check is the difference to the rest of
fold 9 (subgroup minus complement, both resampled by patient).

Run: ``.venv/bin/python benchmarks/mi_subgroups.py [--no-results]`` (about a minute).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import numpy as np
from _provenance import provenance_line
from readme_tables import RESULTS, write_results

LIBRARIES = ("onnxruntime",)
RESULTS_FILE = RESULTS / "mi_subgroups.md"
N_BOOT = 1000
SEED = 0
MIN_GROUP = 50
AGE_OVER_89 = 300


def _aucs(y: np.ndarray, z: np.ndarray, mi: int) -> tuple[float, float]:
    from detak.models.cnn_metrics import roc_auc

    per = [roc_auc(y[:, j], z[:, j]) for j in range(y.shape[1])
           if 0 < y[:, j].sum() < len(y)]
    m = roc_auc(y[:, mi], z[:, mi]) if 0 < y[:, mi].sum() < len(y) else float("nan")
    return float(np.mean(per)), m


def boot(y: np.ndarray, z: np.ndarray, patients: np.ndarray, mi: int,
         seed: int = SEED) -> np.ndarray:
    """(N_BOOT, 2) macro and MI AUC over patient resamples."""
    from detak.models.bootstrap import patient_resamples

    return np.asarray([_aucs(y[idx], z[idx], mi) for idx in patient_resamples(
        patients, N_BOOT, seed, valid=lambda idx: 0 < y[idx, mi].sum() < len(idx))])


def groups_of(md: Any) -> dict[str, dict[str, np.ndarray]]:
    """{dimension: {subgroup: boolean mask}} over the rows of ``md``."""
    age = md["age"].to_numpy(dtype=float)
    age = np.where(age == AGE_OVER_89, 90.0, age)
    out: dict[str, dict[str, np.ndarray]] = {
        "age": {"< 65": age < 65, "65-79": (age >= 65) & (age < 80), ">= 80": age >= 80},
        "sex": {"men": (md["sex"] == "M").to_numpy(), "women": (md["sex"] == "F").to_numpy()},
    }
    for col, name in (("site", "site"), ("device", "device")):
        vals = np.array([" ".join(str(v).split()) for v in md[col].tolist()])
        if col == "site":
            vals = np.array([v[:-2] if v.endswith(".0") else v for v in vals])
        uniq, counts = np.unique(vals, return_counts=True)
        big = [u for u, c in sorted(zip(uniq, counts, strict=True), key=lambda t: -t[1])
               if c >= MIN_GROUP]
        d = {f"{name} {u}": vals == u for u in big}
        rest = ~np.isin(vals, big)
        if rest.any():
            d[f"{name}: other ({len(uniq) - len(big)} with < {MIN_GROUP})"] = rest
        out[name] = d
    return out


def run(argv: list[str] | None = None) -> dict[str, Any]:
    """Compute, print and (unless --no-results) write the table; returns its rows for
    benchmarks/mi_model.py."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--no-results", action="store_true", help="print only")
    args = ap.parse_args(argv)
    from detak.data.ptbxl import open_ptbxl
    from detak.export.fold_logits import fold_logits
    from detak.export.predict import load_model

    t0 = time.time()
    prov = provenance_line(libraries=LIBRARIES)
    loaded = load_model("edge", runtime="onnx", precision="int8", threads=1)
    classes = list(loaded.card["architecture"]["outputs"])
    mi = classes.index("MI")
    d = fold_logits(loaded, 9)
    md_all = open_ptbxl().metadata.loc[d["ids"]]
    keep = np.asarray(d["labelled"], bool)
    z, y = d["logits"][keep].astype(float), d["y"][keep].astype(int)
    md = md_all[keep]
    patients = md["patient_id"].to_numpy(np.int64)
    overall = _aucs(y, z, mi)
    ob = boot(y, z, patients, mi)
    o_ci = np.quantile(ob, [0.025, 0.975], axis=0)
    rows = ["| subgroup | records | patients | MI | macro AUC [95 % CI] | MI AUC [95 % CI] | "
            "MI AUC − rest [95 % CI] | weaker? |", "|---|---|---|---|---|---|---|---|",
            f"| all of fold 9 | {len(y)} | {len(np.unique(patients))} | {int(y[:, mi].sum())} | "
            f"{overall[0]:.3f} [{o_ci[0, 0]:.3f}, {o_ci[1, 0]:.3f}] | {overall[1]:.3f} "
            f"[{o_ci[0, 1]:.3f}, {o_ci[1, 1]:.3f}] | — | — |"]
    weaker = []
    for groups in groups_of(md).values():
        for name, mask in groups.items():
            if mask.sum() < 20 or not 0 < y[mask, mi].sum() < mask.sum():
                rows.append(f"| {name} | {int(mask.sum())} | — | {int(y[mask, mi].sum())} | "
                            "too few | too few | — | — |")
                continue
            pt = _aucs(y[mask], z[mask], mi)
            b = boot(y[mask], z[mask], patients[mask], mi)
            rest = boot(y[~mask], z[~mask], patients[~mask], mi, seed=SEED + 1)
            ci = np.quantile(b, [0.025, 0.975], axis=0)
            diff = np.quantile(b[:, 1] - rest[:, 1], [0.025, 0.975])
            rest_pt = _aucs(y[~mask], z[~mask], mi)[1]
            flag = []
            if ci[1, 0] < overall[0]:
                flag.append("macro")
            if ci[1, 1] < overall[1]:
                flag.append("MI")
            if diff[1] < 0:
                flag.append("MI below the rest")
            if flag:
                weaker.append(f"{name} ({', '.join(flag)})")
            rows.append(f"| {name} | {int(mask.sum())} | {len(np.unique(patients[mask]))} | "
                        f"{int(y[mask, mi].sum())} | {pt[0]:.3f} [{ci[0, 0]:.3f}, "
                        f"{ci[1, 0]:.3f}] | {pt[1]:.3f} [{ci[0, 1]:.3f}, {ci[1, 1]:.3f}] | "
                        f"{pt[1] - rest_pt:+.3f} [{diff[0]:+.3f}, {diff[1]:+.3f}] | "
                        f"{', '.join(flag) or 'no'} |")
    # paced ECGs: no superclass labels in PTB-XL for most; how many would be flagged for MI
    pace = md_all["scp_codes"].map(lambda c: "PACE" in c).to_numpy()
    probs = loaded.calibrate(d["logits"][pace])
    t = loaded.card["operating_points"]["classes"]["MI"]["operating"]["threshold"]
    flagged = int((probs[:, mi] >= t).sum())
    others = loaded.calibrate(d["logits"][~pace & ~keep])
    pace_note = (f"Pacemaker (`PACE` statement): {int(pace.sum())} fold-9 records, "
                 f"{int((pace & keep).sum())} with a diagnostic superclass — no AUC. At the "
                 f"card's MI screening threshold ({t}) the kiosk would flag {flagged} of "
                 f"{int(pace.sum())} paced ECGs for MI (median calibrated MI probability "
                 f"{np.median(probs[:, mi]):.2f}; unlabelled non-paced fold-9 records: "
                 f"{int((others[:, mi] >= t).sum())} of {len(others)} flagged). On LUDB "
                 "(benchmarks/mi_ludb.py) the MI AUC rises without its 10 paced records.")
    verdict = ("Weaker: " + "; ".join(weaker) + ".") if weaker else (
        "No subgroup's interval lies wholly below the all-records estimate.")
    head = ("Fold-9 AUC of the int8 edge model by subgroup (PTB-XL metadata; labelled records). "
            "95 % intervals: 1000 patient resamples; MI AUC − rest: the subgroup minus the "
            "other fold-9 records.")
    run_line = f"_Run time {time.time() - t0:.0f} s._"
    block = [head, "", *rows, "", verdict, "", pace_note, "", prov]
    text = "\n".join([*block[:-1], run_line, "", prov])
    print(text)
    if not args.no_results:
        path = write_results(RESULTS_FILE, "Subgroups: fold-9 AUC of the int8 edge model",
                             prov, text, {"mi_subgroups": "\n".join(block)})
        print(f"\nwritten: {path}")
    return {"head": head, "rows": rows, "verdict": verdict, "pace_note": pace_note}

def main(argv: list[str] | None = None) -> int:
    run(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
