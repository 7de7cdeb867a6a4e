"""Regenerate every issue-3 table and plot into docs/results/ and print the headline numbers.

One script for the tabular side of detak (rules, interval models, S2, S3, S4). Parts, in order:

- ``s2``: S2 on its real data (`detak.models.heart_failure_study`): NB, KNN, DT, RF and LR on
  the heart-failure records with and without ``time``; 5-fold stratified CV (mean ± SD) and a
  stratified 80/20 hold-out; ROC plots. -> ``heart_failure/heart_failure.{md,json}``,
  ``heart_failure/roc_with_time.png``, ``heart_failure/roc_without_time.png``.
- ``explain``: SHAP (global beeswarm + mean |SHAP| table, and patient 5's own values) and LIME
  for patient 5 (S2's example) of every model kind without ``time``, and of the RF with ``time``
  (S2's setting) (`detak.explain.tabular`). -> ``heart_failure/explain/``.
- ``s4``: S4's comparison (KNN k = 5, Gaussian NB, entropy tree; 80/20 hold-out and 5-fold CV
  accuracy) run through the schema + case-CSV path (`detak.models.cases`), with the KNN
  neighbour table of one case and the error a bad CSV gets. S4's 240 records are not public:
  the cases are the heart-failure records written as a case CSV with a schema (in a temporary
  folder; nothing is copied into the repo) and, with the S3 part, the PTB-XL elderly interval
  rows with the bundled ``ecg_intervals`` schema. -> ``s4/s4_cases.{md,json}``.
- ``s3``: S3 on PTB-XL (`detak.models.s3_study`): the elderly records' rule labels, S3's NB
  pipeline, and the sensitivity/specificity of every rule and of the NB against the
  cardiologists' statements; SHAP/LIME of the S3 interval models. Needs the PTB-XL interval
  table of the current measuring code: when it is not cached it is measured first (about 15
  minutes on two cores, progress on stderr) and so is the RR-irregularity table (a few
  minutes). ``--skip-s3`` leaves the S3 files as they are. -> ``s3_ptbxl.{md,json}``,
  ``s3_confusion.png``, ``s3_roc.png``, ``s3_explain/``.
- ``latency``: the kiosk budget (`benchmarks/tabular_latency.py`): load + classify one record
  <= 5 ms, as ratios to a baseline timed in the same run; and the random-forest size grid that
  chose the forest's defaults (``--skip-rf-grid`` leaves it out). -> ``tabular_latency.{md,json}``.

Then ``tabular.md`` / ``tabular.json``: the headline numbers and where each file came from.
Every Markdown file starts with its provenance (the command, the git commit and any
uncommitted changes to the code, the data files and their SHA-256, for S3 the measuring code's
hash of the interval table) and every JSON file has the same under ``provenance``.

Run: ``.venv/bin/python benchmarks/tabular_report.py [--skip-s3] [--skip-rf-grid]
[--out docs/results] [--only s2,explain,s4,s3,latency]`` (``make bench-tabular``).
Runtime without S3: about 2 minutes on two cores (half of it the RF grid); with S3 and its
tables cached about 1 more, plus 15-25 minutes when the interval and RR tables must be measured.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

PARTS: tuple[str, ...] = ("s2", "explain", "s4", "s3", "latency")
PATIENT = 5  # S2's "patient 5": index 5 of the heart-failure records (0-based, file order)
S4_REPORTED = {"knn": 0.704, "nb": 0.646, "dt (C4.5)": 0.695, "multi-class meta": 0.598}
S4_K = 5
S3_EXPLAIN_CLASS = "Sangat Berpotensi Aritmia"


class ReportError(RuntimeError):
    """The report cannot be made as asked (the message says why and what to do)."""


# ------------------------------------------------------------------------------ provenance


# The code these results depend on (the uncommitted changes reported are those under these).
CODE_PATHS: tuple[str, ...] = (
    "detak/models/tabular.py", "detak/models/evaluation.py", "detak/models/model_card.py",
    "detak/models/heart_failure_study.py", "detak/models/s3_study.py", "detak/models/cases.py",
    "detak/models/rules.py", "detak/models/rulesets", "detak/models/schemas", "detak/explain",
    "detak/data", "detak/signal", "benchmarks/tabular_report.py",
    "benchmarks/tabular_latency.py", "pyproject.toml")


def git_state(repo: Path = REPO) -> dict[str, Any]:
    """``{"commit", "uncommitted"}``: HEAD's hash and the files under `CODE_PATHS` that differ
    from it (or are new); commit None outside git."""
    def run(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True,
                              check=True).stdout

    try:
        commit = run("rev-parse", "HEAD").strip()
        status = run("status", "--porcelain", "--", *CODE_PATHS)
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "uncommitted": []}
    return {"commit": commit, "uncommitted": sorted(line[3:] for line in status.splitlines())}


def provenance(command: str, data: Sequence[Mapping[str, Any]],
               extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Where a result came from: the command, date, git state, library versions, ``data``
    (each ``{"name", "path", "sha256", ...}``) and ``extra`` (e.g. the measuring code)."""
    from _provenance import library_versions as measured_libraries

    from detak.models.model_card import library_versions

    return {"command": command, "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            **{f"git_{k}": v for k, v in git_state().items()},
            "versions": {**library_versions(), **measured_libraries(("neurokit2", "pandas"))},
            "data": [dict(d) for d in data], **dict(extra or {})}


def provenance_md(prov: Mapping[str, Any]) -> list[str]:
    """The provenance as Markdown lines (a quoted block)."""
    commit = prov.get("git_commit")
    code = f"git commit `{commit[:12]}`" if commit else "no git checkout"
    if prov.get("git_uncommitted"):
        code += " plus uncommitted changes to " + ", ".join(f"`{p}`"
                                                            for p in prov["git_uncommitted"])
    lines = [f"> Produced by `{prov['command']}` on {prov['date']} from {code}.",
             "> Libraries: " + ", ".join(f"{k} {v}" for k, v in prov["versions"].items()) + "."]
    for d in prov["data"]:
        text = f"> Data: {d['name']}"
        if d.get("path"):
            text += f", `{d['path']}`"
        if d.get("sha256"):
            text += f" (SHA-256 `{d['sha256'][:16]}…`)"
        if d.get("note"):
            text += f"; {d['note']}"
        lines.append(text + ".")
    if prov.get("measuring_code"):
        lines.append(f"> Measuring code: {prov['measuring_code']}.")
    return lines + [""]


def add_provenance(md_path: Path, json_path: Path, prov: Mapping[str, Any]) -> None:
    """Put ``prov`` into files another module wrote: a ``provenance`` key first in the JSON
    object, the provenance block under the Markdown file's first line (its title)."""
    doc = json.loads(json_path.read_text(encoding="utf-8"))
    if not isinstance(doc, dict):
        raise ReportError(f"{json_path}: expected a JSON object")
    doc.pop("provenance", None)
    write_json(json_path, {"provenance": prov, **doc})
    title, _, rest = md_path.read_text(encoding="utf-8").partition("\n")
    md_path.write_text("\n".join([title, "", *provenance_md(prov), rest.lstrip("\n")]),
                       encoding="utf-8")


def heart_failure_data() -> dict[str, Any]:
    from detak.data.heart_failure import default_path
    from detak.models.model_card import sha256_file

    p = default_path()
    return {"name": "heart-failure clinical records (Chicco & Jurman 2020, UCI 519), 299 "
                    "patients", "path": str(p), "sha256": sha256_file(p)}


def ptbxl_data() -> dict[str, Any]:
    from detak.data.paths import dataset_dir
    from detak.models.model_card import sha256_file

    p = dataset_dir("ptbxl") / "ptbxl_database.csv"
    return {"name": "PTB-XL v1.0.3 (signals of strat folds 1-9)", "path": str(p),
            "sha256": sha256_file(p)}


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        return _json_safe(obj.item())
    if isinstance(obj, np.ndarray):
        return _json_safe(obj.tolist())
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(path: Path, obj: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_json_safe(obj), indent=1, ensure_ascii=False,
                               allow_nan=False) + "\n", encoding="utf-8")
    return path


def write_md(path: Path, title: str, prov: Mapping[str, Any], body: Sequence[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([f"# {title}", "", *provenance_md(prov), *body]) + "\n",
                    encoding="utf-8")
    return path


def _num(v: Any) -> str:
    """A measurement for a table: integers as such, else 4 significant digits; None as –."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return str(int(v)) if float(v).is_integer() else f"{v:.4g}"


def _f(v: Any, digits: int = 3) -> str:
    return "–" if v is None or (isinstance(v, float) and not math.isfinite(v)) \
        else f"{v:.{digits}f}"


# ------------------------------------------------------------------------------ S2


def part_s2(out: Path, command: str, cv: int = 5) -> dict[str, Any]:
    """S2's CV table and ROC plots (see the module docstring)."""
    from detak.models.heart_failure_study import markdown_table, plot_roc, run_study

    res = run_study(None, cv=cv)
    folder = out / "heart_failure"
    folder.mkdir(parents=True, exist_ok=True)
    prov = provenance(command, [heart_failure_data()])
    write_json(folder / "heart_failure.json", {"provenance": prov, **res})
    for with_time in (True, False):
        plot_roc(res, with_time, folder / f"roc_{'with' if with_time else 'without'}_time.png")
    write_md(folder / "heart_failure.md", "S2 on its real data: heart-failure records", prov,
             [markdown_table(res), "",
              "ROC curves of RF, LR and DT on the hold-out: `roc_with_time.png`, "
              "`roc_without_time.png`. `time` is the follow-up period: it is known only after "
              "the outcome, so the rows without it are the ones that say what a screening "
              "model can do."])
    rf_t, rf = res["with_time"]["rf"]["cv"], res["without_time"]["rf"]["cv"]
    return {"files": ["heart_failure/heart_failure.md", "heart_failure/heart_failure.json",
                      "heart_failure/roc_with_time.png", "heart_failure/roc_without_time.png"],
            "headline": {
                "rf_with_time_cv_accuracy": [rf_t["accuracy_mean"], rf_t["accuracy_sd"]],
                "rf_with_time_cv_auc": [rf_t["roc_auc_mean"], rf_t["roc_auc_sd"]],
                "rf_without_time_cv_accuracy": [rf["accuracy_mean"], rf["accuracy_sd"]],
                "rf_without_time_cv_auc": [rf["roc_auc_mean"], rf["roc_auc_sd"]],
                "cv_auc_without_time": {k: v["cv"]["roc_auc_mean"]
                                        for k, v in res["without_time"].items()},
                "s2_reported_rf_with_time": {"accuracy": 0.833, "auc": 0.90}}}


# ------------------------------------------------------------------------------ explanations


def explain_models(models: Sequence[tuple[str, Any, pd.DataFrame]], folder: Path,
                   record: Any, class_label: Any = None) -> list[dict[str, Any]]:
    """For each ``(tag, model, X)``: SHAP summary over X, SHAP of ``record`` against X, LIME of
    ``record`` (training rows X); files in ``folder``. ``class_label`` defaults to the last
    class."""
    from detak.explain.tabular import lime_explain, shap_record, shap_summary

    rows = []
    for tag, m, X in models:
        s = shap_summary(m, X, folder, name=tag, class_label=class_label)
        rec = shap_record(m, X, record, class_label=class_label)
        lime = lime_explain(m, X, record, out_dir=folder, name=tag, class_label=class_label)
        rows.append({"model": tag, "kind": m.kind, "class": rec["class"],
                     "explainer": s["explainer"], "output": s["output"], "rows": s["rows"],
                     "mean_abs_shap": s["table"], "record": rec,
                     "lime": {k: lime[k] for k in ("row", "class", "probabilities", "weights",
                                                   "intercept", "local_prediction", "score")},
                     "files": [Path(p).name for p in (s["png"], s["csv"], lime["png"],
                                                      lime["json"])]})
    return rows


def explain_md(rows: Sequence[Mapping[str, Any]], record_name: str) -> list[str]:
    lines = ["| model | explainer (units) | rows | top features by mean abs SHAP | "
             f"{record_name}: largest SHAP contributions | {record_name}: LIME top weights |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        top = ", ".join(f"{t['feature']} {t['mean_abs_shap']:.3f}"
                        for t in r["mean_abs_shap"][:4])
        rec = ", ".join(f"{c['feature']} {c['shap']:+.3f}"
                        for c in r["record"]["contributions"][:3])
        lime = "; ".join(f"{w['condition']} {w['weight']:+.3f}"
                         for w in r["lime"]["weights"][:3])
        lines.append(f"| {r['model']} | {r['explainer']} ({r['output']}) | {r['rows']} | {top} | "
                     f"{rec} (base {r['record']['base_value']:.3f} -> "
                     f"{r['record']['prediction']:.3f}) | {lime} |")
    lines += ["", "Files per model: `MODEL_shap_beeswarm.png`, `MODEL_shap_importance.csv` "
              f"(global), `MODEL_lime_{record_name.split()[-1]}.png` and `.json` (local). SHAP "
              "units: probability of the explained class for trees, NB and KNN (Kernel SHAP), "
              "log-odds for logistic regression; base value + contributions = the model's "
              "output."]
    return lines


def part_explain(out: Path, command: str) -> dict[str, Any]:
    """SHAP and LIME on S2's models (see the module docstring)."""
    from detak.data.heart_failure import load_heart_failure, split_xy
    from detak.models.tabular import KINDS, TabularModel

    df = load_heart_failure()
    folder = out / "heart_failure" / "explain"
    models = []
    for with_time, kinds in ((False, KINDS), (True, ("rf",))):
        X, y = split_xy(df, with_time=with_time)
        for kind in kinds:
            tag = f"hf_{kind}_{'with' if with_time else 'without'}_time"
            m = TabularModel.train(kind, X, y, name=tag, description="heart failure, all rows")
            models.append((tag, m, X))
    rows = explain_models(models, folder, PATIENT)
    prov = provenance(command, [heart_failure_data()])
    write_json(folder / "explain.json", {"provenance": prov, "patient": PATIENT,
                                         "class": "DEATH_EVENT = 1", "models": rows})
    write_md(folder / "explain.md", "SHAP and LIME on S2's models", prov, [
        f"Every model trained on all 299 records; explained class DEATH_EVENT = 1; patient "
        f"{PATIENT} = row index {PATIENT} of the file (S2's example). Kernel SHAP (NB, KNN) "
        "summarises 100 sampled records against 50 background records; tree and linear SHAP "
        "use all records.", "", *explain_md(rows, f"patient {PATIENT}")])
    files = ["heart_failure/explain/explain.md", "heart_failure/explain/explain.json"]
    files += [f"heart_failure/explain/{f}" for r in rows for f in r["files"]]
    rf = next(r for r in rows if r["model"] == "hf_rf_without_time")
    return {"files": files, "headline": {
        "rf_without_time_top_features": [t["feature"] for t in rf["mean_abs_shap"][:3]],
        "patient_5_rf_without_time_p_death": rf["lime"]["probabilities"].get("1")}}


# ------------------------------------------------------------------------------ S4


HF_SCHEMA = """# Heart-failure records as S4-style cases (written by benchmarks/tabular_report.py)
name = "heart_failure_cases"
description = "heart-failure clinical records -> outcome during follow-up"
target = "outcome"
{features}
[classes]
names = ["survived", "died"]
"""


def heart_failure_cases(folder: Path) -> tuple[Path, Path, str]:
    """Write the heart-failure records (without ``time``) as a case CSV with a schema TOML in
    ``folder``; returns ``(csv, schema, schema_text)``."""
    from detak.data.heart_failure import load_heart_failure, split_xy

    X, y = split_xy(load_heart_failure(), with_time=False)
    feats = "".join(f'\n[[features]]\nkey = "{c}"\ncolumn = "{c}"\n' for c in X.columns)
    text = HF_SCHEMA.format(features=feats)
    schema = folder / "heart_failure_cases.toml"
    schema.write_text(text, encoding="utf-8")
    cases = X.copy()
    cases["outcome"] = np.where(y.to_numpy() == 1, "died", "survived")
    csv = folder / "heart_failure_cases.csv"
    cases.to_csv(csv, index=False)
    return csv, schema, text


def interval_cases(folder: Path, lab: pd.DataFrame) -> tuple[Path, str]:
    """Write the elderly PTB-XL interval rows with their s3 label as an ``ecg_intervals``
    case CSV in ``folder``."""
    from detak.models.cases import load_schema

    s = load_schema("ecg_intervals")
    cases = lab[list(s.keys)].copy()
    cases[s.target] = lab["s3_label"].to_numpy()
    csv = folder / "ptbxl_elderly_intervals.csv"
    cases.to_csv(csv, index=False)
    return csv, "ecg_intervals"


def s4_case_study(csv: Path, schema: str | Path, query_row: int, seed: int = 0, cv: int = 5
                  ) -> dict[str, Any]:
    """S4's accuracy table on ``csv`` and the KNN neighbour table of data row ``query_row``
    (the KNN is trained on every other case)."""
    from detak.models.cases import cases_xy, compare_models, load_schema, read_cases
    from detak.models.tabular import TabularModel

    sch = load_schema(schema)
    cases = read_cases(csv, sch)
    table = compare_models(cases, sch, k=S4_K, cv=cv, seed=seed)
    X, y = cases_xy(cases, sch)
    rest = X.index != query_row
    knn = TabularModel.train("knn", X[rest], y[rest], name="s4-knn",
                             description=f"{csv.name} without row {query_row}", k=S4_K)
    query = {k: (None if pd.isna(v) else float(v)) for k, v in X.loc[query_row].items()}
    return {"schema": sch.name, "rows": len(cases), "features": list(sch.keys),
            "class_counts": {str(k): int(v) for k, v in y.value_counts().items()},
            "comparison": table.to_dict("records"), "query_row": query_row,
            "query": query, "query_true_class": y.loc[query_row],
            "prediction": knn.predict(query), "neighbours": knn.neighbours(query)}


def bad_csv_message(csv: Path, schema: str | Path, folder: Path) -> dict[str, str]:
    """The error a case CSV gets with text in a numeric field (data row 6) and an unknown class
    (data row 9)."""
    from detak.models.cases import CasesFormatError, load_schema, read_cases

    sch = load_schema(schema)
    df = pd.read_csv(csv, dtype=str, keep_default_na=False)
    first = sch.features[0].column
    df.loc[5, first] = "sixty"
    bad = folder / "bad_cases.csv"
    df.to_csv(bad, index=False)
    out = {}
    try:
        read_cases(bad, sch)
    except CasesFormatError as exc:
        out["non_numeric"] = str(exc).replace(str(folder) + "/", "")
    df = pd.read_csv(csv, dtype=str, keep_default_na=False)
    df.loc[8, sch.target] = "unsure"
    df.to_csv(bad, index=False)
    try:
        read_cases(bad, sch)
    except CasesFormatError as exc:
        out["unknown_class"] = str(exc).replace(str(folder) + "/", "")
    if set(out) != {"non_numeric", "unknown_class"}:
        raise ReportError("a bad case CSV was accepted; detak.models.cases lost its checks")
    return out


def s4_md(study: Mapping[str, Any], title: str) -> list[str]:
    lines = [f"## {title}", "",
             f"{study['rows']} cases, schema `{study['schema']}` ({len(study['features'])} "
             f"measurements), classes: " + ", ".join(f"{k} {v}" for k, v in
                                                      study["class_counts"].items()) + ".", "",
             "| model | hold-out 80/20 accuracy | 5-fold CV accuracy (mean ± SD) | "
             "5-fold CV macro F1 (mean ± SD) |", "|---|---|---|---|"]
    for r in study["comparison"]:
        lines.append(f"| {r['model']} | {r['holdout_accuracy']:.3f} | "
                     f"{r['cv_accuracy_mean']:.3f} ± {r['cv_accuracy_sd']:.3f} | "
                     f"{r['cv_f1_macro_mean']:.3f} ± {r['cv_f1_macro_sd']:.3f} |")
    q = study["query"]
    p = study["prediction"]
    lines += ["", f"KNN (k = {S4_K}) neighbour table for data row {study['query_row']} "
              f"(true class: {study['query_true_class']}; the KNN is trained on every other "
              f"case): predicted **{p['label']}** (" + ", ".join(
                  f"{k} {v:.2f}" for k, v in p["probabilities"].items()) + ").", "",
              "Query: " + ", ".join(f"{k} {_num(v)}" for k, v in q.items()) + ".", "",
              "| rank | distance (min-max scaled) | class | case row | " +
              " | ".join(study["features"]) + " |",
              "|---|---|---|---|" + "---|" * len(study["features"])]
    for n in study["neighbours"]:
        vals = " | ".join(_num(v) for v in n["values"].values())
        lines.append(f"| {n['rank']} | {n['distance']:.4f} | {n['label']} | {n['index']} | "
                     f"{vals} |")
    return lines + [""]


def part_s4(out: Path, command: str, lab: pd.DataFrame | None = None,
            interval_data_note: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """S4's comparison through the case-CSV path (see the module docstring)."""
    studies: dict[str, Any] = {}
    data = [heart_failure_data()]
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        csv, schema, schema_text = heart_failure_cases(folder)
        studies["heart_failure"] = s4_case_study(csv, schema, PATIENT + 1)
        errors = bad_csv_message(csv, schema, folder)
        if lab is not None:
            icsv, isch = interval_cases(folder, lab)
            studies["ptbxl_intervals"] = s4_case_study(icsv, isch, 6)
            data.append({**ptbxl_data(), **(interval_data_note or {})})
    prov = provenance(command, data)
    folder = out / "s4"
    write_json(folder / "s4_cases.json", {"provenance": prov, "s4_reported": S4_REPORTED,
                                          "studies": studies, "bad_csv_errors": errors,
                                          "heart_failure_schema": schema_text})
    body = ["S4 (a KNN expert system on 240 hospital records, 15 echo + ECG measurements, 8 "
            "heart-disease classes) reported accuracy KNN 70.4 %, NB 64.6 %, C4.5 69.5 %, "
            "multi-class meta classifier 59.8 %. Its records are not public, so the same "
            "comparison (KNN with min-max scaling and Euclidean distance, Gaussian NB, entropy "
            "decision tree; stratified 80/20 hold-out and 5-fold CV, seed 0) runs here through "
            "the schema + case-CSV path on public records. The numbers are not comparable "
            "with S4's: other data, other classes.", "",
            *s4_md(studies["heart_failure"], "Heart-failure records as cases (without time)")]
    body += ["The case CSV and this schema were written to a temporary folder (the data are not "
             "copied into the repo); S2's patient 5 is data row 6:", "", "```toml",
             schema_text.strip(), "```", ""]
    if "ptbxl_intervals" in studies:
        body += s4_md(studies["ptbxl_intervals"],
                      "PTB-XL elderly interval rows as cases (bundled ecg_intervals schema)")
        body += ["The class is the s3 rule label, itself a function of these measurements: the "
                 "table says how well each model re-learns the rule table (see "
                 "`../s3_ptbxl.md`), not how well it finds arrhythmia.", ""]
    body += ["## A bad case CSV", "", "Text in a numeric field (data row 6):", "",
             f"    {errors['non_numeric']}", "", "An unknown class (data row 9):", "",
             f"    {errors['unknown_class']}"]
    write_md(folder / "s4_cases.md", "S4's KNN / NB / decision-tree comparison on case CSVs",
             prov, body)
    hf = {r["model"]: r["cv_accuracy_mean"] for r in studies["heart_failure"]["comparison"]}
    return {"files": ["s4/s4_cases.md", "s4/s4_cases.json"],
            "headline": {"heart_failure_cv_accuracy": hf,
                         "ptbxl_intervals_cv_accuracy": {
                             r["model"]: r["cv_accuracy_mean"]
                             for r in studies["ptbxl_intervals"]["comparison"]}
                         if "ptbxl_intervals" in studies else None}}


# ------------------------------------------------------------------------------ S3


def s3_table(allow_build: bool = True) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The PTB-XL interval table of the current measuring code (built if missing and
    ``allow_build``) and a note on it for the provenance."""
    from tabular_latency import interval_table_path

    from detak.models import s3_study
    from detak.signal.interval_table import _code_hash

    path = interval_table_path()
    if path is None:
        if not allow_build:
            raise ReportError("the PTB-XL interval table of the current measuring code is not "
                              "cached; run without --no-build (about 15 minutes) or with "
                              "--skip-s3")
        print("S3: the interval table of the current measuring code is not cached: measuring "
              "every PTB-XL record (about 15 minutes on two cores)...", file=sys.stderr)
    table = s3_study.load_table(progress=True)
    path = interval_table_path()
    note = {"interval_table": path.name if path else None,
            "measuring_code": f"interval table measured by the detak/signal modules whose "
                              f"hash is {_code_hash()} (detak.signal.interval_table; the "
                              f"table is re-measured whenever they change), RR irregularity "
                              f"by code version {s3_study._rr_version()}"}
    return table, note


def part_s3(out: Path, command: str, allow_build: bool = True,
            table: tuple[pd.DataFrame, dict[str, Any]] | None = None, rr: bool = True
            ) -> tuple[dict[str, Any], pd.DataFrame]:
    """S3 on PTB-XL and SHAP/LIME of its interval models (see the module docstring). Returns
    the part's summary and the labelled elderly rows (for S4). ``table`` (the interval table
    and its note) defaults to `s3_table`; ``rr`` measures the RR irregularity (AF row)."""
    from sklearn.model_selection import train_test_split

    from detak.models import s3_study
    from detak.models.tabular import TabularModel

    table, note = table if table is not None else s3_table(allow_build)
    res = s3_study.run_study(table, out, command=command, rr=rr)
    prov = provenance(command, [{**ptbxl_data(), "note": f"interval table "
                                 f"{note['interval_table']}"}],
                      {"measuring_code": note["measuring_code"]})
    add_provenance(out / "s3_ptbxl.md", out / "s3_ptbxl.json", prov)
    # SHAP / LIME of S3's interval models (NB as S3, and the RF) on the NB's 70/30 split
    X, y, _ = s3_study.study_dataset(table)
    tr, te = train_test_split(np.arange(len(y)), test_size=s3_study.TEST_SIZE,
                              stratify=y.to_numpy(), random_state=s3_study.SEED)
    Xtr, ytr, Xte = X.iloc[tr], y.iloc[tr], X.iloc[te]
    record = Xte.index[(y.iloc[te] == S3_EXPLAIN_CLASS).to_numpy()][0]
    models = [(f"s3_{k}", TabularModel.train(k, Xtr, ytr, name=f"s3_{k}",
                                             description="PTB-XL elderly, 70 % split"), Xte)
              for k in ("nb", "rf")]
    folder = out / "s3_explain"
    rows = explain_models(models, folder, record, S3_EXPLAIN_CLASS)
    write_json(folder / "s3_explain.json", {"provenance": prov, "record": int(record),
                                            "class": S3_EXPLAIN_CLASS, "models": rows})
    write_md(folder / "s3_explain.md", "SHAP and LIME on S3's interval models", prov, [
        f"NB (S3's model) and RF trained on the 70 % split of the elderly PTB-XL records (s3 "
        f"labels, seed {s3_study.SEED}), explained on the 30 % test split for class "
        f"{S3_EXPLAIN_CLASS!r}; the single record is PTB-XL ecg_id {record}, the first test "
        f"record with that s3 label. Kernel SHAP (NB) "
        "summarises 100 sampled test records.", "",
        *explain_md(rows, f"ecg_id {record}")])
    lab = s3_study.label_records(s3_study.elderly_subset(table)[0], ("s3",))
    lab = lab[lab["s3_label"].notna()]
    agreement = {r["test"]: r for r in res["agreement"]}

    def pick(prefix: str) -> dict[str, Any]:
        r = next(v for k, v in agreement.items() if k.startswith(prefix))
        return {k: r[k] for k in ("test", "n", "sensitivity", "sensitivity_ci", "specificity",
                                  "specificity_ci", "ppv")}

    files = ["s3_ptbxl.md", "s3_ptbxl.json", "s3_confusion.png", "s3_roc.png",
             "s3_explain/s3_explain.md", "s3_explain/s3_explain.json"]
    files += [f"s3_explain/{f}" for r in rows for f in r["files"]]
    return ({"files": files, "interval_table": note["interval_table"],
             "measuring_code": note["measuring_code"],
             "headline": {"records_labelled": res["meta"]["counts"]["labelled"],
                          "nb_accuracy": res["nb"]["accuracy"],
                          "nb_f1_macro": res["nb"]["f1_macro"],
                          "s3_reported": s3_study.S3_REPORTED,
                          "pr_over_200_vs_1avb": pick("PR > 200 ms (s3"),
                          "qrs_wide_vs_bbb": pick("QRS >= 120 ms (clinical"),
                          "s3_label_vs_any_arrhythmia": pick("s3 record label"),
                          "clinical_label_vs_any_arrhythmia": pick("clinical record label"),
                          "nb_vs_any_arrhythmia": {
                              k: res["nb_agreement"][0][k] for k in
                              ("n", "sensitivity", "specificity", "ppv")}}},
            lab)


def s3_previous(out: Path) -> dict[str, Any] | None:
    """What the existing ``s3_ptbxl.json`` says (when the S3 part is skipped)."""
    p = out / "s3_ptbxl.json"
    if not p.is_file():
        return None
    doc = json.loads(p.read_text(encoding="utf-8"))
    meta = doc.get("meta", {})
    prov = doc.get("provenance") or {}
    return {"regenerated": False, "date": prov.get("date") or meta.get("date"),
            "command": prov.get("command") or meta.get("command"),
            "git_commit": prov.get("git_commit"),
            "measuring_code": prov.get("measuring_code"),
            "headline": {"records_labelled": meta.get("counts", {}).get("labelled"),
                         "nb_accuracy": doc.get("nb", {}).get("accuracy"),
                         "nb_f1_macro": doc.get("nb", {}).get("f1_macro")}}


# ------------------------------------------------------------------------------ latency


def part_latency(out: Path, command: str, repeat: int, grid: bool,
                 interval_table: str) -> dict[str, Any]:
    """The kiosk budget and the RF grid (`benchmarks/tabular_latency.py`)."""
    import tabular_latency as tl

    res = tl.run(repeat, interval_table, grid, compare=True)
    data = [heart_failure_data()]
    if res["interval_table"]:
        data.append({**ptbxl_data(), "note": f"interval table {res['interval_table']}"})
    prov = provenance(command, data)
    write_json(out / "tabular_latency.json", {"provenance": prov, **res})
    body = [f"Random-forest defaults: {res['rf_defaults']}. Each model is trained on the "
            "records below, saved, and then loaded + used on one record, repeatedly (median and "
            "90th percentile). The machine is shared: read the ratios to the baseline more than "
            "the milliseconds.", "", *tl.latency_markdown(res)]
    if res["interval_table"] is None:
        body += ["", "The PTB-XL interval rows were left out: no interval table of the current "
                 "measuring code is cached."]
    body += ["", "## The two fixes against what came before (same run)", "",
             "Random forest: scikit-learn's default forest in the first file layout (joblib "
             "unpickled the Pipeline with its pure-Python unpickler), the same forest in the "
             "current layout (the Pipeline as one standard pickle inside the joblib file, read "
             "by the C unpickler), and the current default forest. KNN: one row classified by "
             "scikit-learn's pipeline (OpenMP threads on both cores) and by detak's one-thread "
             "path, while a busy-looping process occupies a core.", "",
             *tl.before_after_markdown(res["before_after"])]
    if "rf_grid" in res:
        body += ["", "## Random-forest size grid (how the defaults were chosen)", "",
                 *tl.grid_markdown(res["rf_grid"])]
    write_md(out / "tabular_latency.md", "Kiosk latency of the tabular models", prov, body)
    worst = max(res["latency"], key=lambda r: r["load_classify_ms"])
    return {"files": ["tabular_latency.md", "tabular_latency.json"],
            "headline": {"budget_ms": res["budget_ms"],
                         "worst": {k: worst[k] for k in ("dataset", "model", "file_kb",
                                                         "load_classify_ms",
                                                         "load_classify_x_base", "base_ms")},
                         "all_within_budget": all(r["within_budget"] for r in res["latency"]),
                         "rf_defaults": res["rf_defaults"],
                         "interval_table": res["interval_table"]}}


# ------------------------------------------------------------------------------ index


def _stale(part: Mapping[str, Any]) -> list[str]:
    if part.get("regenerated") is False:
        return [f"- *Not regenerated in this run: these figures are from {part.get('date')}.*"]
    return []


def index_md(summary: Mapping[str, Any]) -> list[str]:
    """The headline numbers of ``tabular.md``."""
    L: list[str] = []
    parts = summary["parts"]
    if "s2" in parts:
        h = parts["s2"]["headline"]
        a, auc = h["rf_with_time_cv_accuracy"], h["rf_with_time_cv_auc"]
        a0, auc0 = h["rf_without_time_cv_accuracy"], h["rf_without_time_cv_auc"]
        L += ["## S2: heart-failure records", "",
              f"- RF with time, 5-fold CV: accuracy {a[0]:.3f} ± {a[1]:.3f}, ROC AUC "
              f"{auc[0]:.3f} ± {auc[1]:.3f} (S2 reported 0.833 and 0.90).",
              f"- RF without time (what screening can use): accuracy {a0[0]:.3f} ± {a0[1]:.3f}, "
              f"ROC AUC {auc0[0]:.3f} ± {auc0[1]:.3f}; CV AUC without time by model: "
              + ", ".join(f"{k} {v:.3f}" for k, v in h["cv_auc_without_time"].items()) + ".",
              "- Table and ROC plots: `heart_failure/heart_failure.md`."]
        L += [*_stale(parts["s2"]), ""]
    if "explain" in parts:
        h = parts["explain"]["headline"]
        L += ["## Explanations", "",
              "- RF without time, largest mean |SHAP|: " + ", ".join(
                  h["rf_without_time_top_features"]) + f"; patient {PATIENT}: p(death) = "
              f"{_f(h['patient_5_rf_without_time_p_death'], 2)}.",
              "- All models: `heart_failure/explain/explain.md`."]
        L += [*_stale(parts["explain"]), ""]
    s3 = parts.get("s3")
    L += ["## S3: PTB-XL elderly records", ""]
    if s3 is None:
        L += ["- Not available: no `s3_ptbxl.json`.", ""]
    elif s3.get("regenerated") is False:
        h = s3["headline"]
        L += [f"- **Not regenerated in this run** (`--skip-s3`). The files in place are from "
              f"{s3['date']} (`{s3['command']}`"
              + (f", commit {s3['git_commit'][:12]}" if s3.get("git_commit") else "")
              + f"): {h['records_labelled']} records labelled, NB accuracy "
              f"{_f(h['nb_accuracy'])}, macro F1 {_f(h['nb_f1_macro'])}. "
              "See `s3_ptbxl.md` for which measuring code produced its interval table.", ""]
    else:
        h = s3["headline"]

        def ss(r: Mapping[str, Any]) -> str:
            return (f"sensitivity {100 * r['sensitivity']:.1f} %, specificity "
                    f"{100 * r['specificity']:.1f} % (n = {r['n']})")

        L += [f"- {h['records_labelled']} elderly records labelled; S3's NB pipeline: accuracy "
              f"{h['nb_accuracy']:.3f}, macro F1 {h['nb_f1_macro']:.3f} against the s3 labels "
              f"(S3 reported {h['s3_reported']['accuracy']} on 30 records).",
              f"- Against the cardiologists: {h['pr_over_200_vs_1avb']['test']} vs 1AVB: "
              f"{ss(h['pr_over_200_vs_1avb'])}; {h['qrs_wide_vs_bbb']['test']} vs "
              f"CLBBB/CRBBB/IVCD: {ss(h['qrs_wide_vs_bbb'])}.",
              f"- Record label vs any arrhythmia statement: s3 "
              f"{ss(h['s3_label_vs_any_arrhythmia'])}; clinical "
              f"{ss(h['clinical_label_vs_any_arrhythmia'])}; NB (test split) "
              f"{ss(h['nb_vs_any_arrhythmia'])}.",
              f"- Measuring code: {s3['measuring_code']}.",
              "- Tables and plots: `s3_ptbxl.md`; SHAP/LIME: `s3_explain/s3_explain.md`.", ""]
    if "s4" in parts:
        h = parts["s4"]["headline"]
        L += ["## S4: KNN / NB / tree on case CSVs", "",
              "- Heart-failure records as cases, 5-fold CV accuracy: " + ", ".join(
                  f"{k} {v:.3f}" for k, v in h["heart_failure_cv_accuracy"].items()) + "."]
        if h.get("ptbxl_intervals_cv_accuracy"):
            L.append("- PTB-XL elderly intervals as cases (s3 labels), 5-fold CV accuracy: "
                     + ", ".join(f"{k} {v:.3f}" for k, v in
                                 h["ptbxl_intervals_cv_accuracy"].items()) + ".")
        L += ["- S4 reported (its own 240 records): KNN 0.704, NB 0.646, C4.5 0.695. Tables, "
              "neighbour table, bad-CSV errors: `s4/s4_cases.md`.", *_stale(parts["s4"]), ""]
    if "latency" in parts:
        h = parts["latency"]["headline"]
        w = h["worst"]
        L += ["## Kiosk latency", "",
              f"- Load + classify one record, worst model: {w['model']} on {w['dataset']} "
              f"({w['file_kb']:.0f} KB) {w['load_classify_ms']:.2f} ms = "
              f"{w['load_classify_x_base']:.0f} x the baseline ({w['base_ms']:.3f} ms); "
              f"budget {h['budget_ms']} ms: "
              f"{'all models within' if h['all_within_budget'] else '**not all within**'}.",
              f"- Random-forest defaults {h['rf_defaults']}; table and grid: "
              "`tabular_latency.md`."]
        L += [*_stale(parts["latency"]), ""]
    return L


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(REPO / "docs" / "results"),
                    help="results folder (default docs/results)")
    ap.add_argument("--only", default=",".join(PARTS),
                    help=f"comma-separated parts to run (default all: {','.join(PARTS)})")
    ap.add_argument("--skip-s3", action="store_true",
                    help="leave the S3 files as they are (no PTB-XL interval table needed)")
    ap.add_argument("--no-build", action="store_true",
                    help="fail instead of measuring the PTB-XL interval table when it is not "
                         "cached for the current measuring code")
    ap.add_argument("--skip-rf-grid", action="store_true",
                    help="leave out the random-forest size grid (saves ~2 minutes)")
    ap.add_argument("--repeat", type=int, default=200, help="latency repetitions")
    args = ap.parse_args(argv)
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        raise ReportError(f"unknown part(s) {', '.join(unknown)}; choose from "
                          f"{', '.join(PARTS)}")
    if args.skip_s3 and "s3" in parts:
        parts.remove("s3")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ReportError(f"--out {out} is a file, not a folder")
    out.mkdir(parents=True, exist_ok=True)
    shown = sys.argv[1:] if argv is None else list(argv)
    command = " ".join(["python benchmarks/tabular_report.py", *map(shlex.quote, shown)])
    summary: dict[str, Any] = {"command": command, "parts": {}}
    timings: dict[str, float] = {}
    lab = None
    ivl_note = None
    for part in ("s3", "s2", "explain", "s4", "latency"):  # S3 first: S4 reuses its rows
        if part not in parts:
            continue
        t0 = time.perf_counter()
        print(f"[{part}] ...", file=sys.stderr)
        if part == "s2":
            summary["parts"]["s2"] = part_s2(out, command)
        elif part == "explain":
            summary["parts"]["explain"] = part_explain(out, command)
        elif part == "s3":
            summary["parts"]["s3"], lab = part_s3(out, command, allow_build=not args.no_build)
            ivl_note = {"note": f"interval table {summary['parts']['s3']['interval_table']}"}
        elif part == "s4":
            summary["parts"]["s4"] = part_s4(out, command, lab, ivl_note)
        elif part == "latency":
            summary["parts"]["latency"] = part_latency(
                out, command, args.repeat, not args.skip_rf_grid, "auto")
        timings[part] = time.perf_counter() - t0
        summary["parts"][part]["date"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
        print(f"[{part}] done in {timings[part]:.0f} s", file=sys.stderr)
    if "s3" not in parts:
        prev = s3_previous(out)
        if prev is not None:
            summary["parts"]["s3"] = prev
    data = [heart_failure_data()]
    if lab is not None:
        data.append(ptbxl_data())
    prov = provenance(command, data)
    summary["seconds"] = timings
    index_path = out / "tabular.json"
    previous = json.loads(index_path.read_text(encoding="utf-8")) if index_path.is_file() \
        else {}
    for p, v in (previous.get("parts") or {}).items():  # keep the parts not run this time
        if p not in summary["parts"]:
            summary["parts"][p] = {**v, "regenerated": False}
    write_json(index_path, {"provenance": prov, **summary})
    body = ["Issue 3's results: rule labels and interval models (S3), S2's clinical-records "
            "models with SHAP and LIME, S4's KNN expert-system comparison, and the kiosk's "
            "latency budget. Everything here is written by `benchmarks/tabular_report.py` "
            "(`make bench-tabular`); each file says which data, command, commit and measuring "
            "code produced it.", "", *index_md(summary),
            "Parts run this time: " + ", ".join(f"{p} ({timings[p]:.0f} s)" for p in timings)
            + "."]
    write_md(out / "tabular.md", "Tabular models, rules and studies (issue 3): results", prov,
             body)
    print("\n".join(index_md(summary)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
