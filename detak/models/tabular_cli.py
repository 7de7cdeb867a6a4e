"""Functions behind ``detak tabular train|evaluate`` and ``detak classify``.

Datasets: ``heart-failure`` (S2's records; ``with_time`` adds the leaking follow-up time),
``ptbxl-intervals`` (S3 on PTB-XL: the elderly records' intervals with their ``s3`` rule label,
see `_ptbxl_intervals`), or a CSV of cases read against a schema (default
``ecg_intervals``; see `detak.models.cases`).

Where models live: ``tabular_train`` writes ``OUT/NAME.joblib`` + ``OUT/NAME.json``; OUT
defaults to ``models_dir()/NAME`` = ``cache_dir()/models/NAME`` (``$DETAK_CACHE``), and NAME
defaults to ``DATASET-MODEL`` (``heart-failure-rf``, ``heart-failure-time-rf``, ``cases-knn`` for
``cases.csv``). ``--model NAME`` of ``detak classify`` resolves as: an existing path (the
``.joblib``, the ``.json``, their common stem, or a folder holding one model), else
``models_dir()/NAME/NAME.joblib``.

>>> r = tabular_evaluate("heart-failure", "lr", cv=3, json_out=False)
>>> r["model"], r["folds"], 0.5 < r["auc_mean"] < 1.0
('lr', 3, True)
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

DATASETS: tuple[str, ...] = ("heart-failure", "ptbxl-intervals")


class DatasetNotBuiltError(RuntimeError):
    """The named dataset exists in the contract but its table has not been built."""


@dataclass
class Dataset:
    slug: str
    X: pd.DataFrame
    y: pd.Series
    description: str
    source: str | None
    sha256: str | None


def load_dataset(dataset: str, *, with_time: bool = False,
                 schema: str | Path | None = None) -> Dataset:
    """``heart-failure``, ``ptbxl-intervals`` or a CSV path (read with ``schema``, default
    ``ecg_intervals``)."""
    from detak.models.model_card import sha256_file

    if dataset == "heart-failure":
        from detak.data.heart_failure import default_path, load_heart_failure, split_xy

        path = default_path()
        X, y = split_xy(load_heart_failure(path), with_time=with_time)
        return Dataset("heart-failure-time" if with_time else "heart-failure", X, y,
                       "heart-failure clinical records (Chicco & Jurman 2020), 299 patients, "
                       f"target DEATH_EVENT, {'with' if with_time else 'without'} follow-up time",
                       str(path), sha256_file(path))
    if dataset == "ptbxl-intervals":
        return _ptbxl_intervals()
    path = Path(dataset)
    if not path.is_file():
        if path.exists():
            raise IsADirectoryError(f"{dataset}: is a folder; give a CSV file of cases")
        if path.suffix or "/" in dataset or "\\" in dataset:
            raise FileNotFoundError(f"{dataset}: no such file")
        raise ValueError(f"unknown dataset {dataset!r}: give {', '.join(DATASETS)} or a CSV file")
    from detak.models.cases import cases_xy, load_schema, read_cases

    sch = load_schema(schema or "ecg_intervals")
    cases = read_cases(path, sch)
    X, y = cases_xy(cases, sch)
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", path.stem) or "cases"
    return Dataset(slug, X, y, f"{path.name}: {len(cases)} cases, schema {sch.name}",
                   str(path), sha256_file(path))


def _ptbxl_intervals() -> Dataset:
    """``ptbxl-intervals``: the rows of the S3 study (`detak.models.s3_study`): PTB-XL records
    of age >= 60 (300 = over 89 included) not rejected by the quality check and with at least
    one measured value; features = S3's eight interval keys (``rr_ms pr_ms qrs_ms qt_ms
    qtc_bazett_ms st_ms rs_ratio hr_bpm``, NaN where not measured: the pipelines impute);
    target = the ``s3`` rule label. The interval table is cached; if it is not, the first call
    measures every record (~20-30 min on two cores, progress on stderr)."""
    import hashlib

    from detak.models import s3_study

    table = s3_study.load_table()
    X, y, counts = s3_study.study_dataset(table)
    h = hashlib.sha256(pd.util.hash_pandas_object(X.join(y), index=True).to_numpy().tobytes())
    folds = sorted(int(f) for f in table["strat_fold"].unique())
    desc = (f"PTB-XL v1.0.3 folds {', '.join(map(str, folds))}: {len(y)} records of age >= 60 "
            f"({counts['rejected']} rejected by the quality check and {counts['unlabelled']} "
            "without any measured value left out); intervals measured by detak; target = the "
            "s3 rule label (detak.models.rulesets/s3.toml)")
    return Dataset("ptbxl-intervals", X, y, desc, "ptbxl interval table "
                   "(detak.signal.interval_table, cache_dir()/intervals)", h.hexdigest())


def models_dir() -> Path:
    """``cache_dir()/models`` (not created until a model is saved)."""
    from detak.data.paths import cache_dir

    return cache_dir() / "models"


def resolve_model(name_or_path: str | Path) -> Path:
    """The ``.joblib`` path of a model given by path or by NAME (see the module docstring)."""
    from detak.models.tabular import ModelFileError, model_paths

    p = Path(name_or_path)
    if p.exists() or p.with_suffix(".joblib").exists() or p.suffix in (".joblib", ".json"):
        return model_paths(p)[0]
    candidate = models_dir() / str(name_or_path) / f"{name_or_path}.joblib"
    if candidate.is_file():
        return candidate
    raise ModelFileError(f"model {str(name_or_path)!r} not found: no such file and no "
                         f"{candidate} (train one with `detak tabular train`)")


def _print(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=1, default=str, allow_nan=False)
    sys.stdout.write("\n")


def _clean(d: Mapping[str, Any]) -> dict[str, Any]:
    """NaN -> None so the JSON is valid."""
    return {k: (None if isinstance(v, float) and v != v else v) for k, v in d.items()}


def tabular_evaluate(dataset: str, model: str, cv: int = 5, *, with_time: bool = False,
                     schema: str | Path | None = None, k: int | None = None,
                     json_out: bool = True) -> dict[str, Any]:
    """Stratified ``cv``-fold CV of ``model`` on ``dataset``; prints (``json_out``) and returns
    ``{"dataset", "model", "folds", "rows", "auc_mean", "auc_sd", "accuracy_mean",
    "accuracy_sd", "f1_mean", "f1_sd", "precision_mean", "precision_sd", "recall_mean",
    "recall_sd", "f1_macro_mean", ..., "per_fold"}`` (binary: precision/recall/F1 of the larger
    label; multi-class: support-weighted)."""
    from detak.models.evaluation import cross_validate

    ds = load_dataset(dataset, with_time=with_time, schema=schema)
    params = {"k": k} if (k is not None and model == "knn") else {}
    res = cross_validate(model, ds.X, ds.y, cv=cv, **params)
    out: dict[str, Any] = {"dataset": ds.slug, "model": model, "rows": len(ds.y),
                           "features": list(ds.X.columns)}
    out["auc_mean"], out["auc_sd"] = res.pop("roc_auc_mean"), res.pop("roc_auc_sd")
    out.update(res)
    out["per_fold"]["auc"] = out["per_fold"].pop("roc_auc")
    out = _clean(out)
    if json_out:
        _print(out)
    return out


def tabular_train(dataset: str, model: str, cv: int = 5, out: str | Path | None = None,
                  json_out: bool = True, *, name: str | None = None, with_time: bool = False,
                  schema: str | Path | None = None, k: int | None = None) -> int:
    """CV-evaluate (metrics go into the card), fit on all rows, save to ``out`` (default
    ``models_dir()/NAME``); print ``{"name", "model_path", "card_path", "metrics"}``. Returns 0.
    """
    from detak.models.evaluation import cross_validate
    from detak.models.tabular import TabularModel

    ds = load_dataset(dataset, with_time=with_time, schema=schema)
    params = {"k": k} if (k is not None and model == "knn") else {}
    name = name or f"{ds.slug}-{model}"
    metrics = _clean({key: v for key, v in cross_validate(model, ds.X, ds.y, cv=cv,
                                                          **params).items()
                      if key != "per_fold"})
    tm = TabularModel.train(model, ds.X, ds.y, name=name, description=ds.description,
                            source=ds.source, source_sha256=ds.sha256,
                            metrics={"cv": metrics}, **params)
    model_path = tm.save(Path(out) if out is not None else models_dir() / name)
    result = {"name": name, "model_path": str(model_path),
              "card_path": str(model_path.with_suffix(".json")), "metrics": metrics}
    if json_out:
        _print(result)
    return 0


def _rows_from_source(source: str, features: tuple[str, ...]) -> list[dict[str, Any]]:
    p = Path(source)
    if p.suffix.lower() == ".json" and p.is_file():
        doc = json.loads(p.read_text(encoding="utf-8"))
        return doc if isinstance(doc, list) else [doc]
    if p.suffix.lower() == ".csv" and p.is_file():
        try:
            head = pd.read_csv(p, nrows=0).columns
        except pd.errors.EmptyDataError:  # read below as a recording, which names the problem
            head = pd.Index([])
        if set(features) <= set(map(str, head)):
            df = pd.read_csv(p)
            if df.empty:
                raise ValueError(f"{p}: header but no rows")
            return [{f: (None if pd.isna(r[f]) else float(r[f])) for f in features}
                    for _, r in df.iterrows()]
    # an ECG recording: measure its intervals
    from detak.signal.intervals import KEYS

    not_intervals = [f for f in features if f not in KEYS]
    if not_intervals:
        raise ValueError(f"{source!r} is read as an ECG recording, but the model needs "
                         f"{', '.join(not_intervals)}, which are not interval keys; give a JSON "
                         "object or a CSV whose columns are the model's features")
    from detak.data.sources import expand_source
    from detak.signal.intervals import measure_intervals

    rows = []
    for item in expand_source(source):
        d = measure_intervals(item.load()).to_dict()
        if all(d[k] is None or d[k] != d[k] for k in KEYS):  # nothing measured (None or NaN)
            why = next(iter((d.get("reasons") or {}).values()), "no beats found")
            raise ValueError(f"{item.record}: no interval could be measured ({why})")
        rows.append({"source": item.record, **{k: d[k] for k in KEYS}})
    return rows


def classify(source_or_row: str | Path | Mapping[str, Any], model_path: str | Path,
             k: int | None = None) -> dict[str, Any]:
    """Classify one record with a saved model: ``{"model", "kind", "label", "probabilities",
    "imputed", "input"}`` plus ``"neighbours"`` (S4's table) for KNN. ``source_or_row`` is a
    mapping of feature values, a ``.json`` file holding one, a CSV whose columns include the
    features (several rows give ``{"model", "results": [...]}``), or an ECG SOURCE (as in
    ``detak intervals``) for interval models."""
    from detak.models.tabular import load_model

    tm = load_model(resolve_model(model_path))
    rows = ([dict(source_or_row)] if isinstance(source_or_row, Mapping)
            else _rows_from_source(str(source_or_row), tm.features))
    results = []
    for row in rows:
        r: dict[str, Any] = {"model": tm.name, "kind": tm.kind, **tm.predict(row),
                             "input": {f: row.get(f) for f in tm.features}}
        if "source" in row:
            r["source"] = row["source"]
        if tm.kind == "knn":
            r["neighbours"] = tm.neighbours(row, k=k)
        results.append(r)
    return results[0] if len(results) == 1 else {"model": tm.name, "results": results}
