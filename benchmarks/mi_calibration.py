"""Calibration of the shipped CNNs' probabilities (issue 18, item 2): ECE before/after on
held-out records, reliability diagrams.

Data: the labelled records of PTB-XL strat fold 9 (2146; fold 10 never read). Models: the int8
edge model the kiosk runs (onnxruntime) and, with ``--models``, the other shipped CNNs (torch
fp32). Logits are cached (`detak.export.fold_logits`, ``$DETAK_LOGITS_CACHE``).

What is measured, per class:

* fold 9 is split by patient (``patient_id``; seed 0) into halves A and B. Each calibration
  method (per-class temperature, isotonic) is fitted on one half and measured on the other,
  then the halves swap (2-fold cross-fitting): every ECE in the tables is on records the
  calibration was not fitted on. ECE: 15 equal-mass bins.
* the method the card ships (``tools/calibrate_models.py``) is, per class, the one with the
  lowest held-out ECE averaged over 20 such patient splits (shown as "mean of 20 splits") of
  ``identity`` (the raw sigmoid: no map), temperature and isotonic — a tie goes to fewer
  parameters, so a map ships only if it beats the raw outputs on held-out patients;
  the shipped calibration is that method fitted on *all* of fold 9 — so it is never measured
  here, only the same method fitted on the other half.
* the floor: the ECE a perfectly calibrated model with the same probabilities would show on
  the same number of records from sampling alone (labels drawn as Bernoulli(p), 200 draws):
  with ~1070 records per half it is about 0.02, so "ECE ≤ 0.02 on a held-out half" is at the
  limit of what ~1070 records can show.
* AUC before/after on each half (one map per half): a monotone map keeps the ranking; the
  isotonic map's flat ends can tie records, the only way it can move the AUC. (Pooled over
  both halves the AUC would move, because the two halves get two different maps.)
* "all held out (2146)": the ECE of the cross-fitted probabilities of both halves together.

Reliability diagrams: ``docs/results/mi_calibration_<model>.png`` (per class the equal-mass
bins of the uncalibrated and the cross-fitted calibrated probabilities, all 2146 records).

Run: ``.venv/bin/python benchmarks/mi_calibration.py [--models edge resnet1d ...]
[--no-results]`` (seconds once the logits are cached).
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

LIBRARIES = ("onnxruntime", "torch", "matplotlib")
RESULTS_FILE = RESULTS / "mi_calibration.md"
FOLD = 9
SEED = 0
SPLITS = 20
TARGET = 0.02


def _tools() -> Any:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    import calibrate_models

    return calibrate_models


def evaluate(name: str) -> dict[str, Any]:
    """Every figure of one model (see the module docstring)."""
    from detak.models.cnn_metrics import roc_auc
    from detak.models.prob_calibration import (
        Calibration,
        cross_fit,
        ece,
        ece_floor,
        fit_class,
        held_out_ece,
        patient_halves,
        repeated_held_out,
        sigmoid,
    )

    cm = _tools()
    loaded = cm.load_for_calibration(name)
    d = cm.fold9_data(loaded)
    classes = list((loaded.card.get("architecture") or {}).get("outputs"))
    z, y, patients = d["logits"], d["y"], d["patients"]
    half = patient_halves(patients, SEED)
    block = loaded.card.get("calibration")
    shipped = Calibration.from_card(block, classes) if block else None
    rows, curves = [], {}
    for j, c in enumerate(classes):
        held = held_out_ece(z[:, j], y[:, j], half)
        rep = repeated_held_out(z[:, j], y[:, j], patients, SPLITS)
        held["identity"], rep["identity"] = held["uncalibrated"], rep["uncalibrated"]
        chosen = cm.choose(rep)
        p_cal = cross_fit(z[:, j], y[:, j], half, chosen)
        floors = [ece_floor(p_cal[m], draws=200, seed=1)[0] for m in (~half, half)]
        refit = fit_class(chosen, z[:, j], y[:, j]).probabilities(z[:, j])
        card_same = (shipped is not None and shipped.per_class[c].method == chosen and
                     float(np.abs(shipped.per_class[c].probabilities(z[:, j]) - refit).max())
                     < 1e-5)
        rows.append({
            "class": c, "n": [int((~half).sum()), int(half.sum())],
            "positives": [int(y[~half, j].sum()), int(y[half, j].sum())],
            "uncalibrated": held["uncalibrated"], "temperature": held["temperature"],
            "isotonic": held["isotonic"], "chosen": chosen, "calibrated": held[chosen],
            "floor": floors, "mean_splits": rep,
            "pooled_uncalibrated": ece(sigmoid(z[:, j]), y[:, j]),
            "pooled_calibrated": ece(p_cal, y[:, j]),
            "auc_uncalibrated": [roc_auc(y[m, j], z[m, j]) for m in (~half, half)],
            "auc_calibrated": [roc_auc(y[m, j], p_cal[m]) for m in (~half, half)],
            "card_reproduced": card_same,
        })
        curves[c] = (sigmoid(z[:, j]), p_cal, y[:, j])
    return {"model": name, "file": loaded.module.path.name if hasattr(loaded.module, "path")
            else f"{name}.pt (torch fp32)", "runtime": f"{loaded.runtime} {loaded.precision}",
            "records": int(len(y)), "patients": int(len(np.unique(patients))), "rows": rows,
            "curves": curves, "label": (shipped.label if shipped else "none")}


def diagram(res: dict[str, Any], path: Path) -> Path:
    """Reliability diagrams, one panel per class."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from detak.models.prob_calibration import reliability

    classes = list(res["curves"])
    fig, axes = plt.subplots(1, len(classes), figsize=(3.1 * len(classes), 3.4), dpi=100)
    for ax, c, row in zip(axes, classes, res["rows"], strict=True):
        raw, cal, y = res["curves"][c]
        for probs, label, style in ((raw, f"uncalibrated ({row['pooled_uncalibrated']:.3f})",
                                     "o--"),
                                    (cal, f"{row['chosen']} ({row['pooled_calibrated']:.3f})",
                                     "s-")):
            rel = reliability(probs, y)
            ax.plot([m for m, _, _ in rel], [r for _, r, _ in rel], style, ms=3.5, lw=1.2,
                    label=label)
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8)
        ax.set_title(c, fontsize=10)
        ax.set_xlabel("mean predicted probability", fontsize=8)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6.5, loc="upper left", title="ECE, all held out", title_fontsize=6.5)
    axes[0].set_ylabel("observed rate (15 equal-mass bins)", fontsize=8)
    fig.suptitle(f"{res['model']} ({res['runtime']}), PTB-XL fold 9: each record calibrated "
                 "by the fit on the other patient half", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _pair(v: list[float]) -> str:
    return f"{v[0]:.4f} / {v[1]:.4f}"


def table(results: list[dict[str, Any]]) -> list[str]:
    """The README table: ECE per class before/after on each held-out half."""
    out = ["| model | class | positives A / B | ECE uncalibrated A / B | method | ECE calibrated "
           "A / B | floor A / B | ≤ 0.02 on both | mean of 20 splits: uncal → cal |",
           "|---|---|---|---|---|---|---|---|---|"]
    for res in results:
        for r in res["rows"]:
            ok = "yes" if max(r["calibrated"]) <= TARGET else "no"
            ms = r["mean_splits"]
            out.append(f"| {res['model']} | {r['class']} | {r['positives'][0]} / "
                       f"{r['positives'][1]} | {_pair(r['uncalibrated'])} | {r['chosen']} | "
                       f"{_pair(r['calibrated'])} | {_pair(r['floor'])} | {ok} | "
                       f"{ms['uncalibrated']:.4f} → {ms[r['chosen']]:.4f} |")
    return out


def detail(res: dict[str, Any]) -> list[str]:
    out = [f"### {res['model']} — {res['file']}, {res['runtime']}; {res['records']} records, "
           f"{res['patients']} patients; halves A / B = {res['rows'][0]['n'][0]} / "
           f"{res['rows'][0]['n'][1]} records; shipped: {res['label']}", "",
           "| class | uncalibrated | temperature | isotonic | chosen | all held out (2146): "
           "uncal → cal | AUC A / B uncal → cal | card = chosen method fitted on all of fold 9 |",
           "|---|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        out.append(f"| {r['class']} | {_pair(r['uncalibrated'])} | {_pair(r['temperature'])} | "
                   f"{_pair(r['isotonic'])} | {r['chosen']} | {r['pooled_uncalibrated']:.4f} → "
                   f"{r['pooled_calibrated']:.4f} | {_pair(r['auc_uncalibrated'])} → "
                   f"{_pair(r['auc_calibrated'])} | {'yes' if r['card_reproduced'] else 'NO'} |")
    return out


def run(argv: list[str] | None = None) -> dict[str, Any]:
    """Compute, print and (unless --no-results) write the tables and diagrams; returns the
    results for benchmarks/mi_model.py."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["edge"])
    ap.add_argument("--no-results", action="store_true", help="print only")
    args = ap.parse_args(argv)
    t0 = time.time()
    prov = provenance_line(libraries=LIBRARIES)
    results = [evaluate(m) for m in args.models]
    pngs = [diagram(r, RESULTS / f"mi_calibration_{r['model']}.png") for r in results]
    head = ("ECE (15 equal-mass bins) per class on PTB-XL fold 9, halves A / B split by patient "
            "(seed 0): each half calibrated by the fit on the other (2-fold cross-fitting). "
            "Floor: the ECE a perfectly calibrated model shows on that many records by chance.")
    rows = table(results)
    readme_rows = table(results[:1])       # the README shows the kiosk's model
    misses = [f"{res['model']} {r['class']}" for res in results for r in res["rows"]
              if max(r["calibrated"]) > TARGET]
    verdict = (f"Target ECE ≤ {TARGET} on both held-out halves: met by "
               f"{sum(len(r['rows']) for r in results) - len(misses)} of "
               f"{sum(len(r['rows']) for r in results)} model-classes; missed by "
               f"{', '.join(misses) or 'none'}.")
    run_line = f"_Run time {time.time() - t0:.0f} s._"
    full = [head, "", *rows, "", verdict, ""]
    for res in results:
        full += [*detail(res), ""]
    full += ["Reliability diagrams: " + ", ".join(f"`docs/results/{p.name}`" for p in pngs),
             "", run_line, "", prov]
    text = "\n".join(full)
    print(text)
    if not args.no_results:
        path = write_results(RESULTS_FILE, "Calibrated probabilities: ECE before and after, "
                             "held-out halves of PTB-XL fold 9", prov, text,
                             {"mi_calibration": "\n".join([head, "", *readme_rows, "",
                                                           verdict, "", prov])})
        print(f"\nwritten: {path}")
    return {"head": head, "results": results, "rows": readme_rows, "verdict": verdict,
            "pngs": pngs}

def main(argv: list[str] | None = None) -> int:
    run(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
