"""Kiosk latency of the tabular models: load + classify one record, and classify alone; and the
random-forest size grid that chose the forest's defaults.

Latency: each model kind is trained on the heart-failure records (without time; 11 features)
and, when the PTB-XL interval table is available, on the elderly PTB-XL interval rows (S3's 8
interval features, s3 labels; the kiosk's real input), saved to a temporary folder, then timed
(median and 90th percentile of --repeat runs): ``load_model(path).predict(row)`` (what the kiosk
does per record, file hash check included) and ``model.predict(row)``. The machine is shared
and noisy, so every figure is also given as a ratio to a baseline measured in the same process:
scikit-learn's own ``LogisticRegression.predict_proba`` on a 1-row numpy array (no pipeline,
no detak code). Budget: load + classify <= 5 ms. Not in the budget, reported once: the cold
start of a fresh process (imports).

``--rf-grid``: random forests of n_estimators x min_samples_leaf. Heart failure (with and
without time): 5-fold stratified CV repeated with seeds 0-4 (mean over the 25 folds) and the
seed-0 CV that ``detak tabular evaluate`` prints. PTB-XL intervals: trained on folds 1-8,
validated on fold 9 (PTB-XL's protocol). Plus file size and load + classify time per
configuration.

The interval table: ``--interval-table auto`` (default) uses the cached table of the current
measuring code if there is one and otherwise skips the interval rows (building it takes ~15
minutes; ``python -m detak.signal.interval_table`` builds it); ``PATH`` reads that cached pickle
(e.g. one measured by an earlier commit: fine for timing and model size); ``none`` skips.

``--before-after``: the two fixes for the budget timed against what came before, in the same
run (see `before_after`): the random forest's file layout and size, and one-row KNN on one
OpenMP thread while the other core is busy (a busy-looping helper process).

Run: ``.venv/bin/python benchmarks/tabular_latency.py [--repeat 200] [--rf-grid]
[--before-after] [--interval-table auto|none|PATH] [--json OUT.json]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _provenance import provenance, provenance_line

BUDGET_MS = 5.0
GRID_TREES: tuple[int, ...] = (100, 50, 30, 20)
GRID_LEAF: tuple[int, ...] = (1, 3, 5, 10)
GRID_SEEDS: tuple[int, ...] = (0, 1, 2, 3, 4)


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """(median, 90th percentile) wall time of ``fn()`` in ms over ``repeat`` calls (one warm-up
    call first)."""
    fn()
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts) * 1e3, float(np.percentile(ts, 90)) * 1e3


class Baseline:
    """scikit-learn's bare ``LogisticRegression.predict_proba`` on one heart-failure row: the
    yardstick for this machine at this moment. `ratio` times a function interleaved with the
    baseline (call, baseline, call, ...) so that load changes on a shared machine hit both."""

    def __init__(self) -> None:
        from sklearn.linear_model import LogisticRegression

        from detak.data.heart_failure import load_heart_failure, split_xy

        X, y = split_xy(load_heart_failure(), with_time=False)
        Xa = X.to_numpy(float)
        Xa = (Xa - Xa.mean(axis=0)) / Xa.std(axis=0)  # standardised: the fit converges fast
        model = LogisticRegression(max_iter=2000).fit(Xa, y.to_numpy())
        x1 = Xa[:1]
        self.fn = lambda: model.predict_proba(x1)

    def ratio(self, fn: Callable[[], Any], repeat: int) -> dict[str, float]:
        """``{"ms", "p90_ms", "mean_ms", "base_ms", "x_base"}``: median, 90th percentile and
        mean of ``fn``, the interleaved baseline's median, and the ratio of the medians."""
        fn()
        self.fn()
        ts, bs = [], []
        for _ in range(repeat):
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
            t = time.perf_counter()
            self.fn()
            bs.append(time.perf_counter() - t)
        ms, base = statistics.median(ts) * 1e3, statistics.median(bs) * 1e3
        return {"ms": ms, "p90_ms": float(np.percentile(ts, 90)) * 1e3,
                "mean_ms": statistics.fmean(ts) * 1e3, "base_ms": base, "x_base": ms / base}


def interval_table_path() -> Path | None:
    """The cached PTB-XL interval table of the current measuring code, or None if it is not
    built. (Mirrors the cache key of `detak.signal.interval_table.ptbxl_interval_table`.)"""
    from detak.data.paths import cache_dir
    from detak.data.sources import _ptbxl
    from detak.signal.interval_table import _code_hash, _data_hash

    ptb = _ptbxl()
    key = f"{_data_hash(ptb, ptb.folds_with_signals())}-{_code_hash()}"
    path = cache_dir() / "intervals" / f"ptbxl_intervals_{key}.pkl"
    return path if path.is_file() else None


def interval_data(choice: str) -> tuple[pd.DataFrame, pd.Series, pd.Series, str] | None:
    """``(X, y, strat_fold, description)`` of the elderly s3-labelled PTB-XL interval rows, or
    None (``choice`` is ``none``, or ``auto`` and the table is not cached)."""
    from detak.models import s3_study

    if choice == "none":
        return None
    path = interval_table_path() if choice == "auto" else Path(choice)
    if path is None:
        return None
    if not path.is_file():
        raise FileNotFoundError(f"--interval-table {path}: no such file")
    table = pd.read_pickle(path)
    X, y, _ = s3_study.study_dataset(table)
    return X, y, table.loc[X.index, "strat_fold"], f"{path.name} ({len(y)} elderly rows)"


def latency_rows(X: pd.DataFrame, y: pd.Series, dataset: str, repeat: int, base: Baseline,
                 kinds: Sequence[str] | None = None, **params: Any) -> list[dict[str, Any]]:
    """Load + classify and classify-only times for each kind trained on (X, y); ``params`` go
    to the random forest."""
    from detak.models.tabular import KINDS, TabularModel, load_model

    row = {k: (None if pd.isna(v) else float(v)) for k, v in X.iloc[5].items()}
    out = []
    with tempfile.TemporaryDirectory() as d:
        for kind in kinds or KINDS:
            p = params if kind == "rf" else {}
            m = TabularModel.train(kind, X, y, name=f"{dataset}-{kind}", description="latency",
                                   **p)
            path = m.save(Path(d))
            loaded = load_model(path)
            cls = base.ratio(lambda lm=loaded: lm.predict(row), repeat)
            full = base.ratio(lambda p=path: load_model(p).predict(row), max(20, repeat // 4))
            out.append({"dataset": dataset, "model": kind, "rows": len(y),
                        "file_kb": path.stat().st_size / 1024,
                        "load_classify_ms": full["ms"], "load_classify_p90_ms": full["p90_ms"],
                        "load_classify_x_base": full["x_base"], "classify_ms": cls["ms"],
                        "classify_p90_ms": cls["p90_ms"], "classify_x_base": cls["x_base"],
                        "base_ms": full["base_ms"], "within_budget": full["ms"] <= BUDGET_MS})
    return out


def cold_start_ms(X: pd.DataFrame, y: pd.Series, kind: str = "nb") -> float:
    """A fresh interpreter: import detak's tabular module (and scikit-learn), load, classify."""
    from detak.models.tabular import TabularModel

    row = {k: float(v) for k, v in X.iloc[5].items()}
    with tempfile.TemporaryDirectory() as d:
        path = TabularModel.train(kind, X, y, name="cold", description="cold").save(Path(d))
        code = ("import time; t=time.perf_counter(); "
                "from detak.models.tabular import load_model; "
                f"m=load_model({str(path)!r}); m.predict({row!r}); "
                "print((time.perf_counter()-t)*1e3)")
        return float(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                    text=True, check=True).stdout.strip())


def rf_grid(repeat: int, base: Baseline, ivl: tuple | None,
            trees: Sequence[int] = GRID_TREES, leaves: Sequence[int] = GRID_LEAF,
            seeds: Sequence[int] = GRID_SEEDS) -> list[dict[str, Any]]:
    """One row per (n_estimators, min_samples_leaf): CV metrics and load + classify time."""
    from detak.data.heart_failure import load_heart_failure, split_xy
    from detak.models.evaluation import cross_validate, scores
    from detak.models.tabular import make_model

    hf = load_heart_failure()
    variants = {t: split_xy(hf, with_time=t) for t in (False, True)}
    rows = []
    for n in trees:
        for leaf in leaves:
            params = {"n_estimators": n, "min_samples_leaf": leaf}
            r: dict[str, Any] = dict(params)
            for with_time, (X, y) in variants.items():
                tag = "hf_time" if with_time else "hf"
                runs = [cross_validate("rf", X, y, cv=5, seed=s, **params) for s in seeds]
                for m in ("roc_auc", "accuracy", "f1"):
                    r[f"{tag}_{m}_seed0"] = runs[0][f"{m}_mean"]
                    r[f"{tag}_{m}_repeated"] = float(np.mean([v for run in runs
                                                              for v in run["per_fold"][m]]))
            lat = latency_rows(*variants[False], "heart-failure", repeat, base, ("rf",),
                               **params)[0]
            r["hf_file_kb"], r["hf_load_classify_ms"] = lat["file_kb"], lat["load_classify_ms"]
            r["hf_load_classify_x_base"] = lat["load_classify_x_base"]
            if ivl is not None:
                X, y, fold = ivl[:3]
                tr, va = (fold <= 8).to_numpy(), (fold == 9).to_numpy()
                pipe = make_model("rf", **params).fit(X[tr].to_numpy(float), y[tr].to_numpy())
                s = scores(y[va].to_numpy(), pipe.predict_proba(X[va].to_numpy(float)),
                           pipe.classes_)
                r["ivl_fold9_accuracy"], r["ivl_fold9_f1_macro"] = s["accuracy"], s["f1_macro"]
                r["ivl_fold9_roc_auc"] = s["roc_auc"]
                lat = latency_rows(X, y, "ptbxl-intervals", repeat, base, ("rf",), **params)[0]
                r["ivl_file_kb"] = lat["file_kb"]
                r["ivl_load_classify_ms"] = lat["load_classify_ms"]
                r["ivl_load_classify_x_base"] = lat["load_classify_x_base"]
            rows.append(r)
            print(f"  rf n_estimators={n} min_samples_leaf={leaf} done", file=sys.stderr)
    return rows


REFERENCE_RF = (100, 1)  # scikit-learn's default forest: 100 trees grown to purity
RULE = ("the fewest trees (then the smallest file) among the forests whose repeated-CV ROC AUC "
        "and accuracy on the heart-failure records, with and without time, are not below those "
        "of scikit-learn's default forest (100 trees, min_samples_leaf 1) and whose PTB-XL "
        "fold-9 accuracy (when measured) is within 0.001 of it")


def choose_rf(rows: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The grid row `RULE` picks (None if the reference forest is not in the grid)."""
    ref = next((r for r in rows if (r["n_estimators"], r["min_samples_leaf"]) == REFERENCE_RF),
               None)
    if ref is None:
        return None
    keys = [f"{v}_{m}_repeated" for v in ("hf", "hf_time") for m in ("roc_auc", "accuracy")]

    def ok(r: dict[str, Any]) -> bool:
        if any(r[k] < ref[k] for k in keys):
            return False
        return "ivl_fold9_accuracy" not in r or \
            r["ivl_fold9_accuracy"] >= ref["ivl_fold9_accuracy"] - 0.001

    return min((r for r in rows if ok(r)), key=lambda r: (r["n_estimators"], r["hf_file_kb"]))


def latency_markdown(res: dict[str, Any]) -> list[str]:
    """The latency table as Markdown lines."""
    lines = [f"Baseline: scikit-learn's LogisticRegression.predict_proba on 1 row, timed "
             f"interleaved with each measurement (median {res['baseline_ms']:.3f} ms at the "
             f"start); 'x baseline' = median / interleaved baseline median. Budget: load + "
             f"classify <= {BUDGET_MS} ms.", "",
             "| data | model | rows | file KB | load + classify ms (p90) | x baseline | "
             "classify ms (p90) | x baseline | within budget |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in res["latency"]:
        lines.append(f"| {r['dataset']} | {r['model']} | {r['rows']} | {r['file_kb']:.0f} | "
                     f"{r['load_classify_ms']:.2f} ({r['load_classify_p90_ms']:.2f}) | "
                     f"{r['load_classify_x_base']:.1f} | {r['classify_ms']:.2f} "
                     f"({r['classify_p90_ms']:.2f}) | {r['classify_x_base']:.1f} | "
                     f"{'yes' if r['within_budget'] else '**no**'} |")
    lines += ["", f"Cold start, not in the budget (fresh process: import scikit-learn and "
              f"detak.models.tabular, load, classify): {res['cold_start_ms']:.0f} ms."]
    return lines


def grid_markdown(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The RF grid as Markdown lines."""
    ivl = any("ivl_fold9_accuracy" in r for r in rows)
    head = ("| trees | min leaf | HF AUC rep. | HF acc rep. | HF F1 rep. | HF AUC seed 0 | "
            "HF+time AUC rep. | HF+time acc rep. | HF+time acc seed 0 | HF KB | HF load+cls ms "
            "(x base) |")
    sep = "|---|---|---|---|---|---|---|---|---|---|---|"
    if ivl:
        head += " PTB-XL fold 9 acc | F1 macro | PTB-XL KB | PTB-XL load+cls ms (x base) |"
        sep += "---|---|---|---|"
    lines = [head, sep]
    for r in rows:
        s = (f"| {r['n_estimators']} | {r['min_samples_leaf']} | {r['hf_roc_auc_repeated']:.3f}"
             f" | {r['hf_accuracy_repeated']:.3f} | {r['hf_f1_repeated']:.3f} | "
             f"{r['hf_roc_auc_seed0']:.3f} | {r['hf_time_roc_auc_repeated']:.3f} | "
             f"{r['hf_time_accuracy_repeated']:.3f} | {r['hf_time_accuracy_seed0']:.3f} | "
             f"{r['hf_file_kb']:.0f} | {r['hf_load_classify_ms']:.2f} "
             f"({r['hf_load_classify_x_base']:.0f}) |")
        if ivl:
            s += (f" {r['ivl_fold9_accuracy']:.4f} | {r['ivl_fold9_f1_macro']:.4f} | "
                  f"{r['ivl_file_kb']:.0f} | {r['ivl_load_classify_ms']:.2f} "
                  f"({r['ivl_load_classify_x_base']:.0f}) |")
        lines.append(s)
    lines += ["", "HF = heart-failure records without time, HF+time with time; 'rep.' = mean "
              "over 5-fold stratified CV repeated with seeds " + ", ".join(map(str, GRID_SEEDS))
              + " (25 folds); 'seed 0' = the CV `detak tabular evaluate` prints."]
    pick = choose_rf(rows)
    if pick is not None:
        from detak.models.tabular import RF_DEFAULTS

        chosen = {"n_estimators": pick["n_estimators"],
                  "min_samples_leaf": pick["min_samples_leaf"]}
        lines += ["", f"Rule: {RULE}. It picks n_estimators = {pick['n_estimators']}, "
                  f"min_samples_leaf = {pick['min_samples_leaf']}: "
                  + ("detak's defaults (`RF_DEFAULTS`)." if chosen == RF_DEFAULTS else
                     f"**not** detak's defaults {RF_DEFAULTS}: revisit `RF_DEFAULTS`.")]
    return lines


def _save_first_format(m: Any, path: Path) -> None:
    """Rewrite a saved model in the ``detak-tabular/1`` layout (the Pipeline pickled by joblib
    itself, as before the C-unpickler change) with a matching card hash."""
    import joblib

    from detak.models.model_card import read_card, sha256_file, write_card

    joblib.dump({"format": "detak-tabular/1", "pipeline": m.pipeline,
                 "features": list(m.features), "classes": list(m.classes), "kind": m.kind,
                 "train_values": m.train_values, "train_ids": m.train_ids,
                 "train_labels": m.train_labels}, path)
    card = read_card(path.with_suffix(".json"))
    card["model_file"]["sha256"] = sha256_file(path)
    write_card(card, path.with_suffix(".json"))


class BusyCore:
    """A context running one busy-looping process (the other core busy, as when the kiosk
    measures a recording while it classifies the previous one)."""

    def __enter__(self) -> BusyCore:
        self.proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(0.2)
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.kill()
        self.proc.wait()


def before_after(X: pd.DataFrame, y: pd.Series, dataset: str, repeat: int, base: Baseline
                 ) -> list[dict[str, Any]]:
    """The two kiosk-latency fixes, each against what came before, in one run:

    - random forest, load + classify: scikit-learn's default forest (100 trees grown to
      purity) in the old file layout (joblib unpickles the Pipeline in pure Python), the same
      forest in the current layout, and the current default forest;
    - KNN, classify one row with the other core busy: scikit-learn's pipeline as is (OpenMP
      threads on every core) and detak's one-thread path.
    """
    from detak.models.tabular import TabularModel, load_model

    row = {k: (None if pd.isna(v) else float(v)) for k, v in X.iloc[5].items()}
    out = []
    with tempfile.TemporaryDirectory() as d:
        for what, layout, params in (
                ("rf 100 trees, leaf 1 (before)", "detak-tabular/1",
                 {"n_estimators": 100, "min_samples_leaf": 1}),
                ("rf 100 trees, leaf 1", "detak-tabular/2",
                 {"n_estimators": 100, "min_samples_leaf": 1}),
                ("rf defaults (after)", "detak-tabular/2", {})):
            m = TabularModel.train("rf", X, y, name="rf", description="latency", **params)
            path = m.save(Path(d) / layout.replace("/", "-"))
            if layout.endswith("/1"):
                _save_first_format(m, path)
            assert load_model(path).predict(row) == m.predict(row)
            r = base.ratio(lambda p=path: load_model(p).predict(row), max(20, repeat // 4))
            out.append({"dataset": dataset, "case": what, "measure": "load + classify",
                        "file_format": layout, "file_kb": path.stat().st_size / 1024, **r})
        knn = TabularModel.train("knn", X, y, name="knn", description="latency")
        x = knn.row_array(row)
        with BusyCore():
            for what, fn in (("knn, scikit-learn pipeline (before)",
                              lambda: knn.pipeline.predict_proba(x)),
                             ("knn, detak one-thread path (after)", lambda: knn.predict(row))):
                r = base.ratio(fn, max(20, repeat // 4))
                out.append({"dataset": dataset, "case": what,
                            "measure": "classify, other core busy", "file_format": None,
                            "file_kb": None, **r})
    return out


def before_after_markdown(rows: Sequence[dict[str, Any]]) -> list[str]:
    lines = ["| data | case | measure | file KB | median ms | p90 ms | mean ms | median x "
             "baseline |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        kb = "" if r["file_kb"] is None else f"{r['file_kb']:.0f}"
        lines.append(f"| {r['dataset']} | {r['case']} | {r['measure']} | {kb} | "
                     f"{r['ms']:.2f} | {r['p90_ms']:.2f} | {r['mean_ms']:.2f} | "
                     f"{r['x_base']:.1f} |")
    return lines


def run(repeat: int = 200, interval_table: str = "auto", grid: bool = False,
        compare: bool = False) -> dict[str, Any]:
    """Everything this script measures, as a dict (see the module docstring)."""
    from detak.data.heart_failure import load_heart_failure, split_xy
    from detak.models.tabular import make_model

    X, y = split_xy(load_heart_failure(), with_time=False)
    base = Baseline()
    ivl = interval_data(interval_table)
    rf = make_model("rf").named_steps["model"]
    res: dict[str, Any] = {
        "budget_ms": BUDGET_MS, "baseline_ms": timed(base.fn, repeat)[0],
        "numpy": np.__version__,
        "rf_defaults": {"n_estimators": rf.n_estimators,
                        "min_samples_leaf": rf.min_samples_leaf},
        "interval_table": ivl[3] if ivl is not None else None,
        "latency": latency_rows(X, y, "heart-failure", repeat, base)}
    if ivl is not None:
        res["latency"] += latency_rows(ivl[0], ivl[1], "ptbxl-intervals", repeat, base)
    res["cold_start_ms"] = cold_start_ms(X, y)
    if compare:
        res["before_after"] = before_after(X, y, "heart-failure", repeat, base)
        if ivl is not None:
            res["before_after"] += before_after(ivl[0], ivl[1], "ptbxl-intervals", repeat, base)
    if grid:
        res["rf_grid"] = rf_grid(max(40, repeat // 4), base, ivl)
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=200)
    ap.add_argument("--interval-table", default="auto",
                    help="auto (cached table of the current code, else skip), none, or a PATH")
    ap.add_argument("--rf-grid", action="store_true",
                    help="also the random-forest size grid (a few minutes)")
    ap.add_argument("--before-after", action="store_true",
                    help="also time the two fixes against what came before (see before_after)")
    ap.add_argument("--json", default=None, help="write the results as JSON here")
    args = ap.parse_args(argv)
    res = run(args.repeat, args.interval_table, args.rf_grid, args.before_after)
    print(f"RF defaults: {res['rf_defaults']}; interval table: "
          f"{res['interval_table'] or 'not used (not cached for this code)'}")
    print("\n".join(latency_markdown(res)))
    if "before_after" in res:
        print()
        print("\n".join(before_after_markdown(res["before_after"])))
    if "rf_grid" in res:
        print()
        print("\n".join(grid_markdown(res["rf_grid"])))
    worst = max(r["load_classify_ms"] for r in res["latency"])
    print(f"\nworst load+classify: {worst:.2f} ms "
          f"({'within' if worst <= BUDGET_MS else 'OVER'} the {BUDGET_MS} ms budget)")
    res["provenance"] = provenance(libraries=("scikit-learn", "joblib", "pandas"))
    print(provenance_line(res["provenance"]))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
