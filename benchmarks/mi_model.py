"""The MI model a kiosk can trust, in one run (issue 18, item 8): the headline tables of the
shipped (distilled) int8 edge model beside the edge model shipped before it and its teachers,
written to ``docs/results/mi_model.md`` (README block ``mi_model``) with a ROC plot.

It runs the benchmark scripts that measure each part — each writes its own detailed results
file and README block as when run alone — and collects their figures (no second copy of their
code):

* fold-9 AUC: `teacher_ensemble.fold9_probs` / `teacher_ensemble.boot_aucs` — macro and MI AUC
  of the new edge (int8 ONNX), the previous edge (``edge-v1``, int8 ONNX), ResNet-1D and
  InceptionTime (torch fp32) and their teacher ensemble, 95 % intervals over 1000 patient
  resamples (paired: the same resamples for every model) and the difference to the previous
  edge model; plot ``docs/results/mi_model_roc.png``;
* calibration: `mi_calibration.run` — ECE (15 equal-mass bins) per class before/after,
  calibration fitted on one patient half of fold 9 and measured on the other (and swapped),
  never on the records it was fitted on; reliability diagrams ``mi_calibration_<model>.png``;
* the operating point: `mi_operating_point.run` — threshold, sensitivity, specificity, PPV and
  NPV at PTB-XL's and at a nursing-home MI prevalence, patient-bootstrap intervals;
* robustness: `mi_robustness.run` — the AUC drop per field condition for the previous edge, the
  new edge and the teachers (``--skip-teachers``: the edge models only, for a quick run; the
  teachers' torch passes take minutes per condition unless their logits are cached);
* subgroups: `mi_subgroups.run`; LUDB (another hospital, 500 Hz, the whole kiosk path):
  `mi_ludb.run`.

Fold 10 is never read. The figures are on fold 9, the fold the models were selected (and the
calibration and thresholds fitted) on, so they are optimistic for new residents.

Run: ``.venv/bin/python benchmarks/mi_model.py [--skip-teachers] [--no-results]``, then
``.venv/bin/python benchmarks/readme_tables.py --write``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import mi_calibration
import mi_ludb
import mi_operating_point
import mi_robustness
import mi_subgroups
import numpy as np
import teacher_ensemble
from _provenance import provenance_line
from readme_tables import RESULTS, write_results

LIBRARIES = ("onnxruntime", "torch", "matplotlib")
RESULTS_FILE = RESULTS / "mi_model.md"
ROC_PNG = RESULTS / "mi_model_roc.png"
PREVIOUS = teacher_ensemble.PREVIOUS_EDGE
AUC_MODELS = ("edge", PREVIOUS, "resnet1d", "inceptiontime")
TEACHERS = teacher_ensemble.TEACHERS
LABELS = {"edge": "edge, distilled (shipped), int8", PREVIOUS: "edge-v1 (previous), int8",
          "resnet1d": "ResNet-1D, fp32", "inceptiontime": "InceptionTime, fp32",
          "teachers": "teacher ensemble (ResNet-1D + InceptionTime + edge-v1)"}
N_BOOT = 1000


def _ci(v: float, lo: float, hi: float, signed: bool = False) -> str:
    """``v [lo, hi]`` to 4 decimals.

    >>> _ci(0.5, 0.4, 0.6), _ci(0.01, -0.002, 0.02, signed=True)
    ('0.5000 [0.4000, 0.6000]', '+0.0100 [-0.0020, +0.0200]')
    """
    f = "+.4f" if signed else ".4f"
    return f"{v:{f}} [{lo:{f}}, {hi:{f}}]"


def auc_section(n_boot: int = N_BOOT) -> tuple[list[str], dict[str, np.ndarray], np.ndarray,
                                                int]:
    """The fold-9 AUC table (rows), the probabilities by model, the labels and the MI index."""
    specs = {m: teacher_ensemble.MODEL_SPECS[m] for m in AUC_MODELS}
    probs, how, y, patients, mi = teacher_ensemble.fold9_probs(specs)
    probs["teachers"] = np.mean([probs[m] for m in TEACHERS], axis=0)
    how["teachers"] = "mean of probabilities"
    boots = teacher_ensemble.boot_aucs(y, probs, patients, mi, n_boot=n_boot)
    rows = ["| model | runs as | macro AUC [95 % CI] | MI AUC [95 % CI] | Δ macro vs edge-v1 "
            "[95 % CI] | Δ MI vs edge-v1 [95 % CI] |", "|---|---|---|---|---|---|"]
    ref = teacher_ensemble.aucs(y, probs[PREVIOUS], mi)
    for name, p in probs.items():
        pt = teacher_ensemble.aucs(y, p, mi)
        lo, hi = np.quantile(boots[name], [0.025, 0.975], axis=0)
        if name == PREVIOUS:
            diff = ["—", "—"]
        else:
            d = boots[name] - boots[PREVIOUS]
            dlo, dhi = np.quantile(d, [0.025, 0.975], axis=0)
            diff = [_ci(pt[k] - ref[k], dlo[k], dhi[k], signed=True) for k in (0, 1)]
        rows.append(f"| {LABELS[name]} | {how[name]} | {_ci(pt[0], lo[0], hi[0])} | "
                    f"{_ci(pt[1], lo[1], hi[1])} | {diff[0]} | {diff[1]} |")
    head = (f"PTB-XL fold 9: {len(y)} labelled records, {len(np.unique(patients))} patients, "
            f"{int(y[:, mi].sum())} MI; uncalibrated outputs (calibration changes no AUC). "
            f"95 % intervals: {n_boot} patient resamples, the same for every model (Δ paired).")
    return [head, "", *rows], probs, y, mi


def roc_points(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate) at every distinct threshold, from (0, 0).

    >>> fpr, tpr = roc_points(np.array([0, 0, 1, 1]), np.array([0.1, 0.6, 0.4, 0.9]))
    >>> fpr.tolist(), tpr.tolist()
    ([0.0, 0.0, 0.5, 0.5, 1.0], [0.0, 0.5, 0.5, 1.0, 1.0])
    """
    order = np.argsort(-p, kind="stable")
    ys, ps = y[order], p[order]
    last = np.r_[np.flatnonzero(np.diff(ps)), len(ps) - 1]       # end of each tied run
    tp, fp = np.cumsum(ys)[last], np.cumsum(1 - ys)[last]
    return (np.r_[0.0, fp / max(fp[-1], 1)], np.r_[0.0, tp / max(tp[-1], 1)])


def roc_plot(probs: dict[str, np.ndarray], y: np.ndarray, mi: int, path: Path = ROC_PNG) -> Path:
    """MI ROC curves of every model on fold 9 (full and zoomed on the screening region)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from detak.models.cnn_metrics import roc_auc

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4), dpi=100)
    for name, p in probs.items():
        fpr, tpr = roc_points(y[:, mi], p[:, mi])
        for ax in axes:
            ax.plot(fpr, tpr, lw=1.6 if name == "edge" else 1.0,
                    label=f"{LABELS[name]} ({roc_auc(y[:, mi], p[:, mi]):.4f})")
    for ax, (x0, x1, y0, y1) in zip(axes, ((0, 1, 0, 1), (0, 0.4, 0.7, 1.0)), strict=True):
        ax.plot([0, 1], [0, 1], color="grey", lw=0.6)
        ax.axhline(0.9, color="grey", lw=0.6, ls=":")
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.set_xlabel("1 − specificity", fontsize=9)
        ax.set_ylabel("sensitivity", fontsize=9)
    axes[0].legend(fontsize=7, loc="lower right", title="MI AUC", title_fontsize=7)
    axes[1].set_title("zoom: the screening region (dotted: sensitivity 0.90)", fontsize=9)
    fig.suptitle("MI on PTB-XL fold 9 (2146 labelled records; fold 10 never read)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def robustness_rows(res: dict[str, Any], models: list[str]) -> list[str]:
    """Macro and MI AUC drop (95 % CI) per condition and model; one-lead rows folded into the
    worst lead per model."""
    base, results = res["base"], res["results"]

    def cell(m: str, cname: str | None, k: int) -> str:
        if cname is None or m not in results[cname]:
            return "not run"
        (aucs_), d, _g = results[cname][m]
        lo, hi = np.quantile(d[:, k], [0.025, 0.975])
        return f"{base[m][k] - aucs_[k]:+.3f} [{-hi:+.3f}, {-lo:+.3f}]"

    names = [LABELS[m].split(",")[0].split(" (")[0] for m in models]
    out = ["| condition | " + " | ".join(f"macro drop, {n}" for n in names) + " | "
           + " | ".join(f"MI drop, {n}" for n in names) + " |",
           "|---" * (1 + 2 * len(models)) + "|"]
    for cname, per in results.items():
        if per[models[0]][2] == "lead":
            continue
        out.append(f"| {cname} | " + " | ".join(cell(m, cname, 0) for m in models) + " | "
                   + " | ".join(cell(m, cname, 1) for m in models) + " |")
    leads = [c for c, per in results.items() if per[models[0]][2] == "lead"]
    if leads:
        worst = {m: max((c for c in leads if m in results[c]), default=None,
                        key=lambda c, m=m: base[m][0] - results[c][m][0][0]) for m in models}

        def lead(m: str, k: int) -> str:
            c = worst[m]
            return "not run" if c is None else f"{c.split()[1]} {cell(m, c, k)}"

        out.append("| one lead at 0 mV: the worst lead (by macro drop) | "
                   + " | ".join(lead(m, 0) for m in models) + " | "
                   + " | ".join(lead(m, 1) for m in models) + " |")
    clean = "; ".join(f"{n} {base[m][0]:.4f} / {base[m][1]:.4f}" for n, m in
                      zip(names, models, strict=True))
    return [f"Clean fold 9, macro / MI AUC: {clean}. Drop = clean − perturbed (positive: "
            "worse), 95 % interval of the paired difference over 1000 patient resamples; "
            "the torch teachers are not run under the poor-lead, gain and one-lead conditions "
            "(CPU: `mi_robustness.TEACHER_CONDITIONS`).", "", *out]


def subgroup_rows(sub: dict[str, Any]) -> list[str]:
    """The subgroup table's header, overall, age, sex and weaker rows, and its verdict."""
    keep = ("all of fold 9", "< 65", "65-79", ">= 80", "men", "women")
    rows = [r for r in sub["rows"][2:] if r.split(" | ")[0].lstrip("| ") in keep
            or not (r.rstrip(" |").endswith("| no") or "too few" in r)]
    return [*sub["rows"][:2], *rows, "", sub["verdict"], "", sub["pace_note"]]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--skip-teachers", action="store_true",
                    help="robustness of the two edge models only (quick run; the committed "
                         "results include the teachers)")
    ap.add_argument("--n-boot", type=int, default=N_BOOT)
    ap.add_argument("--no-results", action="store_true",
                    help="print only (the scripts it runs do not write either)")
    args = ap.parse_args(argv)
    t0 = time.time()
    prov = provenance_line(libraries=LIBRARIES)
    sub_args = ["--no-results"] if args.no_results else []
    auc_rows, probs, y, mi = auc_section(args.n_boot)
    png = roc_plot(probs, y, mi) if not args.no_results else None
    cal = mi_calibration.run(["--models", "edge", "resnet1d", "inceptiontime", "alexnet1d",
                              *sub_args])
    op = mi_operating_point.run(sub_args)
    rob_models = ["edge", PREVIOUS] + ([] if args.skip_teachers else
                                       ["resnet1d", "inceptiontime"])
    rob = mi_robustness.run(["--models", *rob_models, *sub_args])
    sub = mi_subgroups.run(sub_args)
    ludb = mi_ludb.run(sub_args)
    order = [PREVIOUS, "edge", *rob_models[2:]]
    block = [
        "**Fold-9 AUC** (`benchmarks/teacher_ensemble.py` functions; ROC: "
        "`docs/results/mi_model_roc.png`):", "", *auc_rows, "",
        "**Calibration, edge int8** — ECE before/after per class; the calibration is fitted on "
        "one patient half of fold 9 and measured on the other half, then swapped, so no ECE "
        "here is on records it was fitted on (`benchmarks/mi_calibration.py`; reliability "
        "diagram `docs/results/mi_calibration_edge.png`):", "", *cal["rows"], "", cal["verdict"]
        .split("; missed by")[0] + ".", "",
        "**Operating point, MI** (`benchmarks/mi_operating_point.py`; the kiosk's "
        "`mi_review` / `mi_refer` read it from the card):", "", op["head"], "", *op["rows"], "",
        "**Field robustness** (`benchmarks/mi_robustness.py`; "
        f"{'teachers not run (--skip-teachers)' if args.skip_teachers else 'with the teachers'}"
        "):", "", *robustness_rows(rob, order), "",
        "**Subgroups, edge int8** (`benchmarks/mi_subgroups.py`; rows: all, age, sex and "
        "every weaker subgroup):", "", *subgroup_rows(sub), "",
        "**LUDB, the whole kiosk path** (`benchmarks/mi_ludb.py`):", "", *ludb["rows"][:3], "",
        *ludb["notes"][:1], "", prov]
    text = "\n".join([*block[:-1], f"_Run time {time.time() - t0:.0f} s._", "", prov])
    print(text)
    if not args.no_results:
        path = write_results(RESULTS_FILE, "The MI model: fold-9 AUC, calibration, operating "
                             "point, robustness, subgroups, LUDB (issue 18)", prov, text,
                             {"mi_model": "\n".join(block)})
        print(f"\nwritten: {path} and {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
