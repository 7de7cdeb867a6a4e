"""Train the rhythm classifier a kiosk ships (``detak/models/tabular_weights/rhythm-<view>``).

Input: the shared feature cache (``benchmarks/rhythm_cache.py``; default /work/rhythm-cache):
``<view>-100/fold1..8.jsonl`` (the subsample: every record with a rhythm statement other than
SR or an AV block, plus 1500 seeded SR-only records) for training, ``fold9.jsonl`` (whole) for
selection. A cache file without its ``.done`` marker is computed (resumed) first by running
``benchmarks/rhythm_cache.py``, so one command reproduces the weights. Fold 10 is never read.

Model: per class (`detak.models.rhythm_clf_data.CLASS_GROUPS`; classes with fewer than 30
training records left to the rules) one binary `HistGradientBoostingClassifier` on the rhythm
features + intervals (`detak.models.rhythm_classifier.FEATURES`). Training rows:
each record twice, with and without its intervals (so a caller without intervals is served);
SR-only records weighted by (SR-only records of folds 1-8) / (those in the cache) so the
class balance is PTB-XL's again. Selected on fold 9 (log loss): learning rate x leaf count
(`GRID`) and the number of trees (staged predictions, up to `MAX_ITER`). The threshold a
finding is shown from comes from out-of-fold predictions within folds 1-8 (folds {1,2,3},
{4,5,6}, {7,8}) on a 0.05 grid within [0.05, 0.8] — not tuned on fold 9: for AF the lowest
threshold whose out-of-fold specificity reaches the issue's target (`SPEC_TARGETS`), for the
other classes the F1-best one.

    .venv/bin/python tools/train_rhythm_clf.py --view 12lead    # ~6 min, shared 2 cores
    .venv/bin/python tools/train_rhythm_clf.py --view II

(``RHYTHM_CLF_MAX_ITER=40`` shortens the tree-count search for a smoke test; the card records
the value used.)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CACHE = Path("/work/rhythm-cache")
TRAIN_FOLDS = tuple(range(1, 9))
SELECT_FOLD = 9
GRID: tuple[dict[str, float], ...] = (
    {"learning_rate": 0.05, "max_leaf_nodes": 8}, {"learning_rate": 0.05, "max_leaf_nodes": 16},
    {"learning_rate": 0.1, "max_leaf_nodes": 8}, {"learning_rate": 0.1, "max_leaf_nodes": 16})
MAX_ITER = int(os.environ.get("RHYTHM_CLF_MAX_ITER", "300"))
FIXED = {"min_samples_leaf": 20, "l2_regularization": 1.0, "early_stopping": False,
         "random_state": 0}
CV_GROUPS = ((1, 2, 3), (4, 5, 6), (7, 8))
THRESHOLD_RANGE = (0.05, 0.8)
# The AF targets (sensitivity >= 0.95 at specificity >= 0.97 on 12 leads; >= 0.90 at
# >= 0.95 on one lead): AF's threshold is the lowest whose out-of-fold specificity reaches the
# target (the most sensitive one that keeps it); the other classes take the F1-best threshold.
SPEC_TARGETS: dict[str, dict[str, float]] = {"12lead": {"AFIB": 0.97}, "II": {"AFIB": 0.95},
                                            "I": {"AFIB": 0.95}}


def code_hash() -> str:
    """SHA-256 (16 hex) of the code that makes the features (detak/signal/*.py) and of the
    model's input and class definitions (`FEATURES`, `CLASS_GROUPS`): retrain when it changes."""
    from detak.models.rhythm_classifier import FEATURES
    from detak.models.rhythm_clf_data import CLASS_GROUPS

    h = hashlib.sha256()
    for p in sorted((REPO / "detak" / "signal").glob("*.py")):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    h.update(repr((FEATURES, sorted(CLASS_GROUPS.items()))).encode())
    return h.hexdigest()[:16]


def ensure_cache(cache: Path, view: str, fold: int) -> Path:
    """The cache file of ``fold``, computed first (resumed) when its .done is missing."""
    folder = cache / f"{view}-100"
    if not (folder / f"fold{fold}.done").exists():
        cmd = [sys.executable, str(REPO / "benchmarks" / "rhythm_cache.py"), "--out", str(cache),
               "--view", view, "--folds", str(fold)] + (["--subsample"] if fold != 9 else [])
        print("computing missing features:", shlex.join(cmd), file=sys.stderr, flush=True)
        subprocess.run(cmd, check=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    return folder / f"fold{fold}.jsonl"


def sr_only_weight(train_lines: list[dict[str, Any]]) -> tuple[float, int, int]:
    """(weight of an SR-only row, SR-only records in folds 1-8, SR-only rows in the cache)."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from rhythm_cache import subsample_rule

    from detak.data.ptbxl import open_ptbxl

    meta = open_ptbxl().metadata
    pool = int((meta[meta["strat_fold"].isin(TRAIN_FOLDS)]["scp_codes"].map(subsample_rule)
                == "sr_only").sum())
    have = sum(subsample_rule(ln["statements"]) == "sr_only" for ln in train_lines)
    return (pool / have if have else 1.0), pool, have


def _hgb(**params: Any) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(**{**FIXED, **params})


def _logloss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def select(X: np.ndarray, y: np.ndarray, w: np.ndarray, Xv: np.ndarray,
           yv: np.ndarray) -> tuple[dict[str, Any], float]:
    """Best grid point and tree count by fold-9 log loss."""
    best: tuple[float, dict[str, Any]] = (np.inf, {})
    for g in GRID:
        est = _hgb(max_iter=MAX_ITER, **g).fit(X, y, sample_weight=w)
        for k, pv in enumerate(est.staged_predict_proba(Xv), 1):
            loss = _logloss(yv, pv[:, 1])
            if loss < best[0]:
                best = (loss, {**g, "max_iter": k})
    return best[1], best[0]


def oof_threshold(X: np.ndarray, y: np.ndarray, w: np.ndarray, folds: np.ndarray,
                  params: dict[str, Any], spec_target: float | None = None) -> float:
    """Threshold from out-of-fold predictions within folds 1-8 (weighted counts): the lowest
    reaching ``spec_target`` specificity when given, else the F1-best."""
    p = np.zeros(y.size)
    for grp in CV_GROUPS:
        out = np.isin(folds, grp)
        if not out.any() or y[~out].sum() == 0:
            continue
        p[out] = _hgb(**params).fit(X[~out], y[~out], sample_weight=w[~out]).predict_proba(
            X[out])[:, 1]
    grid = np.arange(THRESHOLD_RANGE[0], THRESHOLD_RANGE[1] + 1e-9, 0.05)
    if spec_target is not None:
        neg = y == 0
        for t in grid:
            if (w * (neg & (p < t))).sum() / (w * neg).sum() >= spec_target:
                return round(float(t), 2)
    best = (-1.0, 0.5)
    for t in grid:
        hit = p >= t
        tp, fp = (w * (hit & (y == 1))).sum(), (w * (hit & (y == 0))).sum()
        fn = (w * (~hit & (y == 1))).sum()
        f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
        if f1 > best[0] + 1e-9:
            best = (f1, round(float(t), 2))
    return best[1]


def train_view(view: str, cache: Path, out: Path | None, command: str) -> dict[str, Any]:
    from detak.models import rhythm_clf_data as D
    from detak.models.model_card import library_versions, sha256_rows
    from detak.models.rhythm_classifier import FEATURES, RhythmModel, model_path, save_model

    t0 = time.time()
    train_lines: list[dict[str, Any]] = []
    paths = {}
    for k in TRAIN_FOLDS:
        paths[k] = ensure_cache(cache, view, k)
        train_lines += D.read_cache(paths[k])
    paths[SELECT_FOLD] = ensure_cache(cache, view, SELECT_FOLD)
    val_lines = D.read_cache(paths[SELECT_FOLD])
    w_sr, pool, have = sr_only_weight(train_lines)
    sys.path.insert(0, str(REPO / "benchmarks"))
    from rhythm_cache import subsample_rule

    w1 = np.array([w_sr if subsample_rule(ln["statements"]) == "sr_only" else 1.0
                   for ln in train_lines])
    folds1 = np.array([ln["fold"] for ln in train_lines])
    X = np.vstack([D.matrix(train_lines), D.matrix(train_lines, with_intervals=False)])
    w = np.r_[w1, w1]
    folds = np.r_[folds1, folds1]
    Xv, Xv_noiv = D.matrix(val_lines), D.matrix(val_lines, with_intervals=False)
    Y = D.label_matrix(train_lines, D.CLASS_GROUPS)
    Yv = D.label_matrix(val_lines, D.CLASS_GROUPS)
    medians = {f: float(np.nanmedian(X[: len(train_lines), j]))
               if np.isfinite(X[: len(train_lines), j]).any() else float("nan")
               for j, f in enumerate(FEATURES)}

    estimators, chosen, thresholds, metrics, left = {}, {}, {}, {}, {}
    for cls, codes in D.CLASS_GROUPS.items():
        n_pos = int(Y[cls].sum())
        if n_pos < D.MIN_TRAIN_POSITIVES:
            left[cls] = {"codes": list(codes), "train_positives": n_pos,
                         "fold9_positives": int(Yv[cls].sum()),
                         "why": f"fewer than {D.MIN_TRAIN_POSITIVES} training records: left "
                                "to the rules"}
            print(f"{view} {cls}: {n_pos} training records, left to the rules", file=sys.stderr)
            continue
        y = np.r_[Y[cls], Y[cls]]
        params, loss = select(X, y, w, Xv, Yv[cls])
        est = _hgb(**params).fit(X, y, sample_weight=w)
        thr = oof_threshold(X, y, w, folds, params, SPEC_TARGETS.get(view, {}).get(cls))
        estimators[cls], chosen[cls], thresholds[cls] = est, {**params, "fold9_logloss":
                                                             round(loss, 5)}, thr
        pv, pn = est.predict_proba(Xv)[:, 1], est.predict_proba(Xv_noiv)[:, 1]
        metrics[cls] = {"codes": list(codes), "train_positives": n_pos,
                        "threshold": thr,
                        "fold9": D.binary_metrics(Yv[cls], pv, thr),
                        "fold9_without_intervals": D.binary_metrics(Yv[cls], pn, thr)}
        m9 = metrics[cls]["fold9"]
        print(f"{view} {cls}: {params} thr {thr} | fold 9 sens {m9['sensitivity']} spec "
              f"{m9['specificity']} ppv {m9['ppv']} F1 {m9['f1']} AUC {m9['auc']} "
              f"({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)

    name = f"rhythm-{view}"
    y_any = np.array(["+".join(c for c in estimators if Y[c][i]) or "none"
                      for i in range(len(train_lines))])
    card: dict[str, Any] = {
        "format": "detak-rhythm-clf-card/1", "name": name, "kind": "hgb-ovr", "view": view,
        "pipeline": "one-vs-rest HistGradientBoostingClassifier per class (NaN = missing)",
        "features": list(FEATURES), "classes": list(estimators),
        "groups": {c: list(D.CLASS_GROUPS[c]) for c in estimators},
        "left_to_rules": left, "thresholds": thresholds, "selected": chosen,
        "fixed_params": dict(FIXED), "grid": list(GRID),
        "threshold_rule": {"range": list(THRESHOLD_RANGE), "step": 0.05,
                           "specificity_targets": SPEC_TARGETS.get(view, {}),
                           "otherwise": "F1-best on out-of-fold predictions, folds 1-8"},
        "max_iter_searched": MAX_ITER,
        "training_data": {
            "description": (f"PTB-XL v1.0.3 strat folds {list(TRAIN_FOLDS)}, {view} view at "
                            "100 Hz, the rhythm feature cache's subsample (rhythm/AV-block "
                            "records + a seeded SR-only draw); each record twice (with and "
                            "without intervals); SR-only rows weighted "
                            f"{w_sr:.3f} = {pool} SR-only records / {have} in the cache"),
            "source": {str(k): str(p) for k, p in paths.items() if k in TRAIN_FOLDS},
            "records": len(train_lines), "rows": int(X.shape[0]),
            "rows_sha256": sha256_rows(X, np.r_[y_any, y_any]),
            "class_counts": {c: int(Y[c].sum()) for c in D.CLASS_GROUPS},
            "sr_only_weight": round(w_sr, 4)},
        "selection_data": {"fold": SELECT_FOLD, "source": str(paths[SELECT_FOLD]),
                           "records": len(val_lines),
                           "class_counts": {c: int(Yv[c].sum()) for c in D.CLASS_GROUPS},
                           "note": "fold 9 chose the tree count and size (log loss); its "
                                   "figures below are therefore optimistic"},
        "metrics": metrics,
        "code_hash": code_hash(), "command": command, "seed": 0,
        "versions": library_versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    model = RhythmModel(estimators, FEATURES, medians, card)
    path = out / name / f"{name}.joblib" if out else model_path(view)
    save_model(model, path)
    print(f"{view}: wrote {path} ({path.stat().st_size / 1024:.0f} kB) in "
          f"{time.time() - t0:.0f} s", file=sys.stderr)
    return card


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--view", choices=("12lead", "II", "I"), action="append",
                    help="repeatable; default 12lead")
    ap.add_argument("--cache", type=Path, default=CACHE)
    ap.add_argument("--out", type=Path, help="weights folder (default: the shipped one)")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    for view in args.view or ["12lead"]:
        cmd = f".venv/bin/python tools/train_rhythm_clf.py --view {view}"
        if args.cache != CACHE:
            cmd += f" --cache {args.cache}"
        card = train_view(view, args.cache, args.out, cmd)
        print(json.dumps({"view": view, "classes": card["classes"],
                          "left_to_rules": sorted(card["left_to_rules"])}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
