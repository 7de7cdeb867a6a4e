"""What one gap does to the kiosk CNN (issue 13, item 2): fill method × gap length → AUC.

Data: every labelled record of PTB-XL strat fold 9 (100 Hz, 10 s; fold 9 is the early-stopping
and calibration fold; fold 10 is never used). Model: the int8 edge model through the kiosk
runtime (onnxruntime; `load_model(NAME, runtime="onnx", precision="int8", calibrated=False)`:
the raw sigmoid outputs the card's AUCs are computed on, so the no-gap row is the card's fold-9
AUC whatever calibration the card holds; |Δp| is likewise of the raw MI output).

Per record, one gap of ``L`` seconds (0.1, 0.5, 1 s) at a seeded random position (uniform over
the 10 s; the same position for every fill method), in every lead at once as the `Recorder`
marks a dropped frame: the samples become NaN, the gap is filled by `detak.data.gaps.fill_array`
(``linear``, ``baseline`` = the lead's median, ``zero`` = 0 mV) on the raw millivolts, then the
record goes through the model's own filters and standardisation (`preprocess_array`,
`Standardizer`) — the path `detak predict` takes (`detak.data.gaps.model_window`).

Printed: fill × gap length → macro AUC, MI AUC, the paired change against the same records
without a gap (Δ, with a 95 % bootstrap interval over records, ``--boot`` resamples), how much
each record's MI probability moved (median and 95th percentile of |Δp|), and the library
versions.

Run: ``.venv/bin/python benchmarks/gap_fill_auc.py [--model edge] [--fold 9] [--seed 13]
[--boot 1000] [--gaps 0.1,0.5,1] [--json OUT.json]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
from _provenance import library_versions, provenance_line
from readme_tables import RESULTS, write_results

GAP_S = (0.1, 0.5, 1.0)
LIBRARIES = ("onnxruntime",)
RESULTS_FILE = RESULTS / "gap_fill_auc.md"



def gapped(raw_mv: np.ndarray, gap_n: int, starts: np.ndarray, method: str) -> np.ndarray:
    """Records (N, 12, n) with one gap of ``gap_n`` samples at ``starts[i]`` filled by
    ``method`` (the gap's samples NaN first, as the recorder leaves them)."""
    from detak.data.gaps import fill_array

    out = np.empty(raw_mv.shape, dtype=np.float32)
    for i, s in enumerate(starts):
        x = np.array(raw_mv[i], dtype=np.float64)
        x[:, s:s + gap_n] = np.nan
        out[i] = fill_array(x, [(int(s), int(s) + gap_n)], method)
    return out


def _aucs(y: np.ndarray, p: np.ndarray, idx: np.ndarray | None = None) -> tuple[float, float]:
    from detak.models.cnn_data import CLASSES
    from detak.models.cnn_metrics import roc_auc

    if idx is not None:
        y, p = y[idx], p[idx]
    per = [roc_auc(y[:, j], p[:, j]) for j in range(y.shape[1])]
    return float(np.mean(per)), float(per[list(CLASSES).index("MI")])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="edge")
    ap.add_argument("--fold", type=int, default=9)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--boot", type=int, default=1000)
    ap.add_argument("--methods", default="linear,baseline,zero")
    ap.add_argument("--gaps", default=",".join(f"{g:g}" for g in GAP_S),
                    help="gap lengths in seconds (default 0.1,0.5,1)")
    ap.add_argument("--json", default=None)
    ap.add_argument("--no-results", action="store_true",
                    help=f"do not write {RESULTS_FILE.name} (its README block)")
    args = ap.parse_args(argv)
    if args.fold == 10:
        ap.error("fold 10 is held out and never used")

    from detak.export.predict import load_model
    from detak.models.cnn_data import CLASSES, _default_ptb, preprocess_array

    t0 = time.time()
    ptb = _default_ptb()
    ids, raw = ptb.load_fold(args.fold)
    y = ptb.labels(ids, allow_unlabelled=True)
    lab = y.sum(axis=1) > 0
    raw_mv = np.asarray(raw[lab], dtype=np.float32) / 1000.0
    y = y[lab]
    n, n_samp = len(raw_mv), raw_mv.shape[-1]
    fs = 100.0 * n_samp / 1000.0
    loaded = load_model(args.model, runtime="onnx", precision="int8", threads=2,
                        calibrated=False)

    def probs(x_mv: np.ndarray) -> np.ndarray:
        return loaded.predict(loaded.standardizer.transform(preprocess_array(x_mv)))

    base = probs(raw_mv)
    mi_col = list(CLASSES).index("MI")
    rng = np.random.default_rng(args.seed)
    boot = np.random.default_rng(args.seed + 1).integers(0, n, (args.boot, n))
    base_boot = np.array([_aucs(y, base, b) for b in boot])
    b_macro, b_mi = _aucs(y, base)
    rows = [{"method": "none", "gap_s": 0.0, "macro_auc": b_macro, "mi_auc": b_mi}]
    methods = [m for m in args.methods.split(",") if m]
    for gap_s in (float(g) for g in args.gaps.split(",") if g):
        gap_n = int(round(gap_s * fs))
        starts = rng.integers(0, n_samp - gap_n + 1, n)
        for method in methods:
            p = probs(gapped(raw_mv, gap_n, starts, method))
            macro, mi = _aucs(y, p)
            dp = np.abs(p[:, mi_col] - base[:, mi_col])
            d = np.array([_aucs(y, p, b) for b in boot]) - base_boot
            lo, hi = np.percentile(d, [2.5, 97.5], axis=0)
            rows.append({"method": method, "gap_s": gap_s, "macro_auc": macro, "mi_auc": mi,
                         "d_macro": macro - b_macro, "d_macro_ci": [lo[0], hi[0]],
                         "d_mi": mi - b_mi, "d_mi_ci": [lo[1], hi[1]],
                         "dp_mi_median": float(np.median(dp)),
                         "dp_mi_p95": float(np.percentile(dp, 95))})
            print(f"  {method} {gap_s:g} s done ({time.time() - t0:.0f} s)", file=sys.stderr)

    head = (f"PTB-XL fold {args.fold}: {n} labelled records; model {loaded.name} "
            f"(onnxruntime int8, raw sigmoid outputs); one gap per record in every lead at a "
            f"seeded random position "
            f"(seed {args.seed}); Δ against no gap, 95 % paired bootstrap CI ({args.boot} "
            f"resamples)")
    table = ["| fill | gap | macro AUC | Δ macro [95 % CI] | MI AUC | Δ MI [95 % CI] "
             "| p(MI) change: median / p95 |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["method"] == "none":
            table.append(f"| none | 0 s | {r['macro_auc']:.4f} | — | {r['mi_auc']:.4f} | — | — |")
            continue
        table.append(
            f"| {r['method']} | {r['gap_s']:g} s | {r['macro_auc']:.4f} | "
            f"{r['d_macro']:+.4f} [{r['d_macro_ci'][0]:+.4f}, {r['d_macro_ci'][1]:+.4f}] | "
            f"{r['mi_auc']:.4f} | {r['d_mi']:+.4f} [{r['d_mi_ci'][0]:+.4f}, "
            f"{r['d_mi_ci'][1]:+.4f}] | {r['dp_mi_median']:.4f} / {r['dp_mi_p95']:.4f} |")
    versions = library_versions(LIBRARIES)
    prov = provenance_line(libraries=LIBRARIES)
    run_line = f"_Run time {time.time() - t0:.0f} s._"
    full = "\n".join([head, "", *table, "", run_line, "", prov])
    print(full)
    if not args.no_results:
        path = write_results(RESULTS_FILE, "Recordings with gaps: what one filled gap does to "
                             "the int8 edge CNN", prov, full,
                             {"gap_fill_auc": "\n".join([*table, "", run_line, "", prov])})
        print(f"\nwritten: {path} (make readme copies its table into README.md)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"fold": args.fold, "records": n, "model": loaded.name, "seed": args.seed,
                       "boot": args.boot, "rows": rows, "versions": versions}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
