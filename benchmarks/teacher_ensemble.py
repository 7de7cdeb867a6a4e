"""The teacher ensemble (issue 18, item 1): fold-9 macro and MI AUC of each shipped CNN and of
ensembles of them, with 95 % patient-bootstrap intervals of the difference to the edge model
the kiosk runs — the target the distilled edge model has to reach.

Data: the labelled records of PTB-XL strat fold 9 (2146; fold 10 never read). Models as they
run: the shipped edge model as its int8 ONNX graph (onnxruntime, the kiosk path), ResNet-1D,
InceptionTime and AlexNet-1D as torch fp32 — uncalibrated logits, cached
(`detak.export.fold_logits`, ``$DETAK_LOGITS_CACHE``). An ensemble is the mean of its members'
sigmoid probabilities per class.

Since the distilled model ships as ``edge``, the edge model shipped before it is ``edge-v1``
(``training_state/edge-v1``, its int8 ONNX graph): the teacher ensemble it was distilled from is
ResNet-1D + InceptionTime + edge-v1 (`TEACHERS`).

Intervals: 1000 resamples of fold 9's patients (seed 0; a patient's records stay together),
percentile 95 %, of the paired difference (model − int8 edge) in macro and MI AUC; "beats edge"
when the interval lies wholly above 0.

A trained candidate (e.g. the distilled edge model, once exported) joins the table with
``--candidate NAME|DIR`` (repeatable; its int8 ONNX graph where exported, else torch fp32):
"beats edge" is then the ship rule of issue 18 — better than the shipped int8 edge model by
more than the patient-bootstrap noise.

Run: ``.venv/bin/python benchmarks/teacher_ensemble.py [--candidate DIR] [--no-results]``
(seconds once the logits are cached; minutes for AlexNet-1D's 3.4 M parameters otherwise).
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

LIBRARIES = ("onnxruntime", "torch")
RESULTS_FILE = RESULTS / "teacher_ensemble.md"
REPO = Path(__file__).resolve().parents[1]
#: the edge model shipped before the distilled one (a teacher of it), kept outside the package
PREVIOUS_EDGE = "edge-v1"
MODEL_SPECS = {"edge": "edge", "resnet1d": "resnet1d", "inceptiontime": "inceptiontime",
               "alexnet1d": "alexnet1d", PREVIOUS_EDGE: str(REPO / "training_state" / "edge-v1")}
MODELS = tuple(MODEL_SPECS)
TEACHERS = ("resnet1d", "inceptiontime", PREVIOUS_EDGE)    # the distilled edge model's teachers
ENSEMBLES: tuple[tuple[str, ...], ...] = (
    ("resnet1d", "inceptiontime"),
    TEACHERS,
    ("resnet1d", "inceptiontime", "alexnet1d"),
    ("resnet1d", "inceptiontime", PREVIOUS_EDGE, "alexnet1d"),
)
N_BOOT = 1000
SEED = 0
TARGET = {"macro": 0.937, "mi": 0.935}


def _tools() -> Any:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    import calibrate_models

    return calibrate_models


def aucs(y: np.ndarray, p: np.ndarray, mi: int) -> tuple[float, float]:
    """(macro AUC, MI AUC) of probabilities ``p``.

    >>> y = np.array([[0, 1], [1, 0], [0, 1], [1, 0]]); p = y + 0.1
    >>> aucs(y, p, 1)
    (1.0, 1.0)
    """
    from detak.models.cnn_metrics import macro_auc, roc_auc

    return float(macro_auc(y, p)), float(roc_auc(y[:, mi], p[:, mi]))


def boot_aucs(y: np.ndarray, probs: dict[str, np.ndarray], patients: np.ndarray, mi: int,
              n_boot: int = N_BOOT, seed: int = SEED) -> dict[str, np.ndarray]:
    """{name: (n_boot, 2) macro and MI AUC} of every model over the same patient resamples
    (a resample without a positive or a negative of some class is drawn again)."""
    from detak.models.bootstrap import patient_resamples

    def both_labels(idx: np.ndarray) -> bool:
        pos = y[idx].sum(axis=0)
        return bool(((pos > 0) & (pos < len(idx))).all())

    out: dict[str, list[tuple[float, float]]] = {k: [] for k in probs}
    for idx in patient_resamples(patients, n_boot, seed, valid=both_labels):
        for k in out:
            out[k].append(aucs(y[idx], probs[k][idx], mi))
    return {k: np.asarray(v) for k, v in out.items()}


def boot_diff(y: np.ndarray, probs: dict[str, np.ndarray], ref: str, patients: np.ndarray,
              mi: int, n_boot: int = N_BOOT, seed: int = SEED) -> dict[str, np.ndarray]:
    """{name: (n_boot, 2) macro and MI AUC differences to ``ref``} over the same patient
    resamples for every model."""
    boots = boot_aucs(y, probs, patients, mi, n_boot, seed)
    return {k: v - boots[ref] for k, v in boots.items() if k != ref}


def fold9_probs(names: dict[str, str]) -> tuple[dict[str, np.ndarray], dict[str, str],
                                               np.ndarray, np.ndarray, int]:
    """``(probs, runs_as, y, patients, mi)`` by label (``names``: label → model name or
    folder): each model's uncalibrated sigmoid probabilities on the labelled fold-9 records
    (as it runs: int8 ONNX where exported, else torch fp32)."""
    cm = _tools()
    probs: dict[str, np.ndarray] = {}
    how: dict[str, str] = {}
    y = patients = ids = None
    classes: list[str] = []
    for name, spec in names.items():
        loaded = cm.load_for_calibration(spec)
        d = cm.fold9_data(loaded)
        if ids is not None and not np.array_equal(ids, d["ids"]):
            raise SystemExit(f"{name}: fold-9 records differ from the other models'")
        ids, y, patients = d["ids"], d["y"], d["patients"]
        classes = list(loaded.card["architecture"]["outputs"])
        probs[name] = 1.0 / (1.0 + np.exp(-d["logits"]))
        how[name] = f"{loaded.runtime} {loaded.precision}"
    assert y is not None and patients is not None
    return probs, how, y, patients, classes.index("MI")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--no-results", action="store_true", help="print only")
    ap.add_argument("--n-boot", type=int, default=N_BOOT)
    ap.add_argument("--candidate", action="append", default=[], metavar="NAME|DIR",
                    help="a trained model to compare with the int8 edge model (repeatable)")
    args = ap.parse_args(argv)
    t0 = time.time()
    prov = provenance_line(libraries=LIBRARIES)
    raw, raw_how, y, patients, mi = fold9_probs({**MODEL_SPECS,
                                                 **{c: c for c in args.candidate}})
    label = {n: n if n in MODELS else f"candidate {n}" for n in raw}
    probs = {label[n]: p for n, p in raw.items()}
    how = {label[n]: h for n, h in raw_how.items()}
    for members in ENSEMBLES:
        probs[" + ".join(members)] = np.mean([probs[m] for m in members], axis=0)
    diffs = boot_diff(y, probs, "edge", patients, mi, n_boot=args.n_boot)
    rows = ["| model | runs as | macro AUC | MI AUC | Δ macro vs int8 edge [95 % CI] | "
            "Δ MI vs int8 edge [95 % CI] | beats edge? |", "|---|---|---|---|---|---|---|"]
    for name, p in probs.items():
        macro, mi_auc = aucs(y, p, mi)
        runs = how.get(name, "mean of probabilities")
        if name == "edge":
            rows.append(f"| edge (shipped) | {runs} | {macro:.4f} | {mi_auc:.4f} | — | — | — |")
            continue
        lo, hi = np.quantile(diffs[name], [0.025, 0.975], axis=0)
        dm, dmi = macro - aucs(y, probs["edge"], mi)[0], mi_auc - aucs(y, probs["edge"], mi)[1]
        beats = [w for w, low in (("macro", lo[0]), ("MI", lo[1])) if low > 0]
        rows.append(f"| {name} | {runs} | {macro:.4f} | {mi_auc:.4f} | {dm:+.4f} "
                    f"[{lo[0]:+.4f}, {hi[0]:+.4f}] | {dmi:+.4f} [{lo[1]:+.4f}, {hi[1]:+.4f}] | "
                    f"{', '.join(beats) or 'no'} |")
    n_pat = len(np.unique(patients))
    text = "\n".join([
        f"Fold 9: {len(y)} labelled records of {n_pat} patients, {int(y[:, mi].sum())} MI. "
        f"Issue 18's target for the distilled int8 edge model: macro AUC ≥ {TARGET['macro']}, "
        f"MI AUC ≥ {TARGET['mi']}. Intervals: {args.n_boot} patient resamples (seed {SEED}), "
        "paired with the int8 edge model on the same resample.", "", *rows, ""])
    print(prov)
    print(text)
    if not args.no_results:
        path = write_results(RESULTS_FILE, "Teacher ensemble on PTB-XL fold 9 (issue 18)",
                             prov, text + f"\n{time.time() - t0:.0f} s\n", {})
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
