"""How well each rhythm feature (detak.signal.rhythm) separates PTB-XL's AFIB records from the
rest: ROC AUC per feature on a bounded, seeded sample of records.

Sample: every record of the chosen folds whose ``scp_codes`` include AFIB (up to ``--n-af``)
and a seeded random draw of the other records (``--n-other``); 12 leads at 100 Hz (the shared
copy). Default folds 1-8 (selection data); fold 9 only for reporting (``--fold 9``); fold 10
never. A feature that is null for a record (too few beats, no T-Q time, ...) leaves that
record out of its AUC; the count of nulls is printed. AUC is of "AF has the larger value"
(``p_present_fraction``: the smaller, so its AUC is of the negated value).

    python benchmarks/rhythm_features.py                        # folds 1-8, 150 AF + 450 other
    python benchmarks/rhythm_features.py --fold 9 --n-af 100 --n-other 300
    python benchmarks/rhythm_features.py --lead II --n-af 100 --n-other 300
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
import warnings
from multiprocessing import get_context

import numpy as np
from _provenance import provenance_line

FEATURES = ("rr_irregularity", "nrmssd", "cosen", "prr_rel", "petrenas_irregularity",
            "p_present_fraction", "fwave_band_ratio", "fwave_rms_uv")
LOWER_IS_AF = {"p_present_fraction"}


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Mann-Whitney AUC: P(pos > neg) + 0.5 P(pos == neg).

    >>> auc(np.array([3.0, 4.0]), np.array([1.0, 3.0]))
    0.875
    """
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    gt = (pos[:, None] > neg[None, :]).mean()
    eq = (pos[:, None] == neg[None, :]).mean()
    return float(gt + 0.5 * eq)


def _one(job: tuple[int, str | None]) -> tuple[int, dict[str, float | None]]:
    from detak.data.ptbxl import open_ptbxl
    from detak.signal.rhythm import rhythm_features

    warnings.simplefilter("ignore")
    ecg_id, lead = job
    rec = open_ptbxl().record(ecg_id)
    if lead:
        rec = rec.select([lead])
    try:
        f = rhythm_features(rec)
    except Exception as err:  # noqa: BLE001 - a benchmark counts failures, it does not stop
        print(f"{ecg_id}: {type(err).__name__}: {err}", file=sys.stderr)
        return ecg_id, dict.fromkeys(FEATURES)
    return ecg_id, {k: f.values.get(k) for k in FEATURES}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fold", type=int, action="append",
                    help="strat fold(s); default 1-8; 9 for reporting only; 10 refused")
    ap.add_argument("--n-af", type=int, default=150)
    ap.add_argument("--n-other", type=int, default=450)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--lead", help="analyse this one lead only (a single-lead device's view)")
    ap.add_argument("--results", help="also append the table to this Markdown file")
    args = ap.parse_args(argv)
    folds = args.fold or list(range(1, 9))
    if 10 in folds:
        ap.error("fold 10 is the test fold: not used here")
    from detak.data.ptbxl import open_ptbxl

    m = open_ptbxl().metadata
    m = m[m["strat_fold"].isin(folds)]
    is_af = m["scp_codes"].map(lambda c: "AFIB" in c)
    rng = np.random.default_rng(args.seed)
    af_ids = np.sort(rng.permutation(m.index[is_af].to_numpy())[: args.n_af])
    other = np.sort(rng.permutation(m.index[~is_af].to_numpy())[: args.n_other])
    ids = [int(i) for i in np.r_[af_ids, other]]
    t0 = time.time()
    if args.jobs > 1:
        with get_context("spawn").Pool(args.jobs) as pool:
            res = dict(pool.map(_one, [(i, args.lead) for i in ids], chunksize=8))
    else:
        res = dict(map(_one, [(i, args.lead) for i in ids]))
    took = time.time() - t0
    af_set = set(int(i) for i in af_ids)
    cmd = "python benchmarks/rhythm_features.py " + shlex.join(argv or sys.argv[1:])
    view = f"lead {args.lead} alone" if args.lead else "12 leads"
    lines = [f"PTB-XL folds {folds}, {view} at 100 Hz: {len(af_ids)} AFIB records, "
             f"{len(other)} others (seed {args.seed}); {took:.0f} s", "",
             "| feature | AUC (AF vs other) | null AF | null other | median AF | median other |",
             "|---|---|---|---|---|---|"]
    for k in FEATURES:
        def vals(group: set[int] | None, k: str = k) -> tuple[np.ndarray, int]:
            sel = [res[i][k] for i in ids if (i in af_set) == (group is not None)]
            got = np.array([float(v) for v in sel if v is not None])
            return got, len(sel) - got.size
        pos, n_pos = vals(af_set)
        neg, n_neg = vals(None)
        sign = -1.0 if k in LOWER_IS_AF else 1.0
        a = auc(sign * pos, sign * neg)
        med = [f"{np.median(v):.3f}" if v.size else "-" for v in (pos, neg)]
        lines.append(f"| {k}{' (lower = AF)' if k in LOWER_IS_AF else ''} | {a:.3f} | "
                     f"{n_pos} | {n_neg} | {med[0]} | {med[1]} |")
    lines += ["", provenance_line(command=cmd.strip(), libraries=("numpy", "scipy",
                                                                    "neurokit2"))]
    print("\n".join(lines))
    if args.results:
        with open(args.results, "a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
