"""Train the Gaussian naive Bayes model the kiosk ships (``detak/models/tabular_weights/s3-nb``).

S3's model: mean imputation → StandardScaler → Gaussian NB (`detak.models.tabular`) on S3's
eight interval features (``rr_ms pr_ms qrs_ms qt_ms qtc_bazett_ms st_ms rs_ratio hr_bpm``),
target the ``s3`` rule label (`detak.models.s3_study.study_dataset`: PTB-XL records of age >= 60
not rejected by the quality check). Trained on the first ``--per-fold`` records of each of folds
1-8, checked on the first ``--check`` records of fold 9 (fold 10 is never read). The intervals
are measured by detak (`detak.signal.interval_table`, cached), so the model is tied to the
measuring code: its card records that code's hash; retrain when ``detak/signal`` changes.

The whole table (~19,600 records) takes 20-30 min on two cores; the default 200 records a fold
keeps the retraining to a few minutes (``--per-fold 0`` reads them all). NB learns the s3
table's thresholds from the measured values (the labels are a function of the features), so
its accuracy says how well it re-learns the rules, not how well it finds arrhythmia
(docs/results/s3_ptbxl.md).

    .venv/bin/python tools/train_kiosk_nb.py            # writes s3-nb.joblib + s3-nb.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

NAME = "s3-nb"
OUT = Path(__file__).resolve().parents[1] / "detak" / "models" / "tabular_weights" / NAME
COMMAND = ".venv/bin/python tools/train_kiosk_nb.py"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--per-fold", type=int, default=200,
                    help="records per training fold (0: every record, ~20-30 min on 2 cores)")
    ap.add_argument("--check", type=int, default=150, help="fold-9 records for the check")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)

    import numpy as np
    from sklearn.metrics import accuracy_score, f1_score

    from detak.models import s3_study
    from detak.models.tabular import TabularModel
    from detak.signal.interval_table import _code_hash, ptbxl_interval_table

    train = ptbxl_interval_table(folds=list(range(1, 9)), limit=args.per_fold or None,
                                 jobs=args.jobs, progress=True)
    X, y, counts = s3_study.study_dataset(train)
    check = ptbxl_interval_table(folds=[9], limit=args.check, jobs=args.jobs, progress=True)
    Xc, yc, counts_c = s3_study.study_dataset(check)
    tm = TabularModel.train("nb", X, y, name=NAME, description=(
        f"Gaussian NB on S3's eight interval features, target the s3 rule label; PTB-XL v1.0.3 "
        f"folds 1-8, {f'first {args.per_fold}' if args.per_fold else 'all'} records of each, "
        "age >= 60, not rejected: "
        f"{len(y)} rows ({counts['rejected']} rejected, {counts['unlabelled']} unlabelled left "
        "out)"), source="PTB-XL interval table (detak.signal.interval_table)",
        metrics={})
    pred = [tm.predict(dict(zip(X.columns, row, strict=True)))["label"]
            for row in Xc.to_numpy(dtype=float)]
    metrics = {"fold9_check": {
        "rows": len(yc), "records_read": args.check,
        "accuracy": round(float(accuracy_score(yc, pred)), 4),
        "f1_macro": round(float(f1_score(yc, pred, average="macro", zero_division=0)), 4),
        "labels": {str(k): int(v) for k, v in zip(*np.unique(yc, return_counts=True),
                                                   strict=True)}}}
    tm.card["metrics"] = metrics
    tm.card["training"] = {"folds": list(range(1, 9)), "records_per_fold": args.per_fold,
                           "check_fold": 9, "check_records": args.check,
                           "signal_code_hash": _code_hash(), "command": COMMAND,
                           "rows_by_label": {str(k): int(v) for k, v in
                                             zip(*np.unique(y, return_counts=True), strict=True)}}
    path = tm.save(args.out)
    print(json.dumps({"model": str(path), "rows": len(y), **metrics}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
