"""The four 12-lead CNNs side by side on PTB-XL fold 9 (and fold 10 where a full copy has it),
with the published anchors printed beside them (issue 4).

For each model (a NAME — shipped, else trained into ``cache_dir()/cnn/NAME``; ``edge-v1``, the
edge model shipped before the distilled one, from ``training_state/edge-v1`` — or a folder):
parameters and multiply-accumulates, macro AUC with its 95 % bootstrap interval, MI AUC,
Fmax, S1's Table 6 at 0.5, training seconds per epoch and epochs run (from the model card),
and inference time per record with torch on 1 thread (batch 1, median over ``--timing``
records of fold 9). The machine is shared and noisy, so inference times are also given as a
ratio to a baseline measured in the same run: one Conv1d(12→64, k7) over a 10-s record.

Anchors: S1 (test fold, their split): AlexNet-1D 0.910, ResNet 0.924, InceptionTime 0.928.
PTB-XL benchmark (Strodthoff et al. 2021, superdiagnostic, 100 Hz, fold 10): resnet1d_wang 0.930,
xresnet1d101 0.928, inception1d 0.921, fcn_wang 0.925, Wavelet+NN 0.874. Fold 9 is the
validation fold (checkpoints were selected on it), so fold-9 figures are slightly optimistic
estimates of fold 10.

Run: ``.venv/bin/python benchmarks/cnn_ptbxl.py [--models edge resnet1d ...] [--boot 1000]
[--timing 100] [--json OUT.json] [--no-results]``; a run of the default models writes
``docs/results/cnn_ptbxl.md`` (the README's table, with the library versions). The default
models are the four shipped CNNs plus ``edge-v1`` as a labelled comparison row.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

import numpy as np
from _provenance import REPO, provenance_line
from readme_tables import write_results

RESULTS_FILE = REPO / "docs" / "results" / "cnn_ptbxl.md"
LIBRARIES = ("torch",)
S1_ANCHORS = {"alexnet1d": ("S1 AlexNet-1D", 0.910), "resnet1d": ("S1 ResNet", 0.924),
              "inceptiontime": ("S1 InceptionTime", 0.928),
              "edge": ("target >= resnet1d_wang", 0.930)}
BENCHMARK_ANCHORS = [("resnet1d_wang", 0.930), ("xresnet1d101", 0.928), ("fcn_wang", 0.925),
                     ("inception1d", 0.921), ("Wavelet+NN", 0.874)]
PREVIOUS_EDGE = "edge-v1"
# NAME -> what load_model gets: edge-v1 is the edge model shipped before the distilled one,
# kept outside the package (training_state/edge-v1), shown for comparison
MODEL_SPECS = {PREVIOUS_EDGE: str(REPO / "training_state" / "edge-v1")}
DEFAULT_MODELS = ("alexnet1d", "resnet1d", "inceptiontime", "edge", PREVIOUS_EDGE)


def _median_ms(fn: Any, inputs: list[Any], repeat: int = 1) -> float:
    times = []
    for x in inputs:
        t0 = time.perf_counter()
        for _ in range(repeat):
            fn(x)
        times.append((time.perf_counter() - t0) / repeat * 1000)
    return statistics.median(times)


def time_inference(module: Any, x: np.ndarray) -> dict[str, float]:
    """Median ms per record (batch 1, torch, 1 thread) and the ratio to the baseline conv."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        base = torch.nn.Conv1d(12, 64, 7, padding=3).eval()
        records = [torch.from_numpy(np.ascontiguousarray(r[None])) for r in x]
        with torch.inference_mode():
            for r in records[:3]:  # warm-up
                module(r)
                base(r)
            # alternate model and baseline record by record, so a change of load hits both
            pairs = [(_median_ms(module, [r]), _median_ms(base, [r], repeat=5))
                     for r in records]
            model_ms = statistics.median(m for m, _ in pairs)
            base_ms = statistics.median(b for _, b in pairs)
    finally:
        torch.set_num_threads(threads)
    return {"ms_per_record": model_ms, "baseline_ms": base_ms, "ratio": model_ms / base_ms}


def evaluate_model(model: str, folds: list[int], n_boot: int, n_timing: int) -> dict[str, Any]:
    from detak.export.predict import load_model, predict_fold
    from detak.models.cnn_data import CLASSES
    from detak.models.cnn_metrics import benchmark_metrics

    # S1's metrics: the raw sigmoid outputs
    loaded = load_model(MODEL_SPECS.get(model, model), calibrated=False)
    card = loaded.card
    arch = card.get("architecture", {})
    train = card.get("training", {})
    label = model if model in MODEL_SPECS else loaded.name
    out: dict[str, Any] = {"model": label, "folder": str(loaded.folder),
                           "parameters": arch.get("parameters"), "macs": arch.get("macs"),
                           "seconds_per_epoch": train.get("seconds_per_epoch"),
                           "epochs_run": train.get("epochs_run"),
                           "best_epoch": train.get("best_epoch"),
                           "card_fold9_macro_auc": (card.get("metrics", {}).get("fold9") or {})
                           .get("macro_auc"), "folds": {}}
    from detak.data.sources import _ptbxl

    ptb = _ptbxl()
    timing_x = None
    for k in folds:
        ids, probs = predict_fold(loaded, k)
        y = ptb.labels(ids, allow_unlabelled=True)
        keep = y.sum(axis=1) > 0
        out["folds"][k] = benchmark_metrics(y[keep], probs[keep], n_boot=n_boot)
        if timing_x is None:
            from detak.models.cnn_data import fold_arrays

            fa = fold_arrays(k)
            timing_x = loaded.standardizer.transform(fa.x[:n_timing])
    if timing_x is not None and loaded.module is not None:
        out["inference"] = time_inference(loaded.module, timing_x)
    out["classes"] = list(CLASSES)
    return out


def _fmt(v: Any, spec: str = ".4f") -> str:
    return "-" if v is None else format(v, spec)


def table_lines(results: list[dict[str, Any]], folds: list[int]) -> list[str]:
    """The printed table, one string per line."""
    out = []
    for k in folds:
        role = ("validation: early stopping and checkpoint selection — not a test fold"
                if k == 9 else "test: held out, never used for training or selection")
        out += ["", f"PTB-XL fold {k} ({role}), 5 superclasses, 100 Hz",
                f"{'model':<15}{'params':>10}{'MMACs':>8}  {'macro AUC [95% CI]':<26}"
                f"{'MI AUC':>7}{'Fmax':>7}{'F1@.5':>7}{'acc@.5':>7}{'s/epoch':>9}{'epochs':>7}"
                f"{'ms/rec':>8}{'×base':>7}  anchor"]
        for r in results:
            if "error" in r:
                out.append(f"{r['model']:<15}  {r['error']}")
                continue
            m = r["folds"].get(k)
            if m is None:
                continue
            lo, hi = m["macro_auc_ci"]
            inf = r.get("inference", {})
            anchor = S1_ANCHORS.get(r["model"])
            out.append(
                f"{r['model']:<15}{r['parameters'] or 0:>10,}{(r['macs'] or 0) / 1e6:>8.1f}  "
                f"{m['macro_auc']:.4f} [{lo:.4f}, {hi:.4f}]  {m['mi_auc']:>7.4f}"
                f"{m['fmax']:>7.4f}{m['table6']['f1']:>7.4f}{m['table6']['accuracy']:>7.4f}"
                f"{_fmt(r['seconds_per_epoch'], '.0f'):>9}{_fmt(r['epochs_run'], 'd'):>7}"
                f"{_fmt(inf.get('ms_per_record'), '.2f'):>8}{_fmt(inf.get('ratio'), '.1f'):>7}"
                f"  {anchor[0] + ' ' + format(anchor[1], '.3f') if anchor else ''}")
    if any(r["model"] == PREVIOUS_EDGE for r in results):
        out += ["", f"{PREVIOUS_EDGE}: the edge model shipped before the distilled edge "
                "(training_state/edge-v1), for comparison; edge is distilled from ResNet-1D, "
                f"InceptionTime and {PREVIOUS_EDGE} (its s/epoch: one student epoch with the "
                "teachers' logits cached)"]
    if 10 not in folds:
        out += ["", "Fold 10 (the held-out test fold) is not in this data copy: no test figures."]
    out += ["", "Anchors (macro AUC): S1 test: " + ", ".join(f"{n} {v:.3f}" for n, v in
                                                          list(S1_ANCHORS.values())[:3]),
            "PTB-XL benchmark, fold 10 (Strodthoff et al. 2021): " +
            ", ".join(f"{n} {v:.3f}" for n, v in BENCHMARK_ANCHORS)]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    ap.add_argument("--boot", type=int, default=1000)
    ap.add_argument("--timing", type=int, default=100, help="records timed per model")
    ap.add_argument("--json", default=None, help="also write the results as JSON here")
    ap.add_argument("--no-results", action="store_true",
                    help="do not write docs/results/cnn_ptbxl.md (written when the default "
                         "models are run)")
    args = ap.parse_args(argv)

    from detak.data.sources import _ptbxl
    from detak.export.predict import ModelNotFoundError

    folds = [k for k in (9, 10) if k in _ptbxl().folds_with_signals()]
    results = []
    for name in args.models:
        try:
            results.append(evaluate_model(name, folds, args.boot, args.timing))
        except ModelNotFoundError as err:
            results.append({"model": name, "error": f"not available: {err}"})
        print(f"done: {name}", file=sys.stderr, flush=True)
    prov = provenance_line(libraries=LIBRARIES)
    lines = table_lines(results, folds)
    print("\n".join([*lines, "", prov]))
    if set(args.models) == set(DEFAULT_MODELS) and not args.no_results:
        block = ["```", *lines[1:], "```", "", prov]
        path = write_results(RESULTS_FILE, "The four CNNs on PTB-XL", prov, "\n".join(lines),
                             {"cnn_ptbxl": "\n".join(block)})
        print(f"\nwritten: {path} (make readme copies its table into README.md)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"folds": folds, "results": results}, fh, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
