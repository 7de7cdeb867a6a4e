"""Case tables for the expert system (S4): a schema file says which measurements and classes a
case has; `read_cases` reads a CSV of cases against it; `compare_models` runs S4's comparison
(KNN vs naive Bayes vs decision tree accuracy, stratified 80/20 hold-out and k-fold CV).

Bundled schemas (``detak/models/schemas/*.toml``): ``s4_echo`` (S4's 15 measurements, 8
classes) and ``ecg_intervals`` (the ``detak intervals`` keys, S3's labels). A schema is TOML::

    name = "..."; target = "diagnosis"
    [[features]]  key = "ef_pct"  column = "EF"  unit = "%"
    [classes]     names = ["...", ...]

A CSV names each measurement by its ``column`` (or its ``key``; case and spacing ignored) and
the class in the ``target`` column (class names match ignoring case). Empty numeric cells are
missing values (mean-imputed by the models). A bad file raises a `CasesFormatError` subclass
naming the file, the data row (1-based; line = row + 1) and the column of every bad cell.

>>> s = load_schema("s4_echo")
>>> len(s.features), len(s.classes), s.features[1].column, s.features[1].unit
(15, 8, 'ATRIUM K', 'mm')
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

SCHEMA_DIR = Path(__file__).parent / "schemas"
MAX_LISTED = 10


class SchemaError(ValueError):
    """A schema file is missing or malformed (the message names the file and field)."""


class CasesFormatError(ValueError):
    """A case CSV does not fit its schema. ``problems`` lists ``(row, column, value)`` for each
    bad cell (row: 1-based data row, None for file-level problems)."""

    def __init__(self, message: str, problems: Sequence[tuple[int | None, str | None, str]] = ()):
        super().__init__(message)
        self.problems = list(problems)


class EmptyCasesError(CasesFormatError):
    """The CSV is empty or has a header but no rows."""


class MissingColumnError(CasesFormatError):
    """A schema column (measurement or target) is not in the CSV header."""


class NonNumericValueError(CasesFormatError):
    """A measurement cell holds text that is not a number."""


class UnknownClassError(CasesFormatError):
    """A target cell is empty or names a class the schema does not list."""


@dataclass(frozen=True)
class Feature:
    key: str
    column: str
    unit: str
    description: str = ""


@dataclass(frozen=True)
class Schema:
    name: str
    description: str
    target: str
    features: tuple[Feature, ...]
    classes: tuple[str, ...]
    path: Path | None = None

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(f.key for f in self.features)


def _norm(s: str) -> str:
    return re.sub(r"[\s_]+", " ", str(s)).strip().casefold()


def load_schema(name_or_path: str | Path) -> Schema:
    """A bundled schema by name (``s4_echo``, ``ecg_intervals``) or a TOML file by path.

    >>> load_schema("ecg_intervals").keys[:3]
    ('rr_ms', 'pr_ms', 'qrs_ms')
    >>> load_schema("nope")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    detak.models.cases.SchemaError: schema 'nope' is neither a bundled schema (...) nor a file
    """
    p = Path(name_or_path)
    bundled = SCHEMA_DIR / f"{name_or_path}.toml"
    if not p.is_file():
        if bundled.is_file():
            p = bundled
        else:
            names = ", ".join(sorted(x.stem for x in SCHEMA_DIR.glob("*.toml")))
            raise SchemaError(f"schema {str(name_or_path)!r} is neither a bundled schema "
                              f"({names}) nor a file")
    try:
        doc = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SchemaError(f"{p}: not valid TOML: {exc}") from exc
    return schema_from_doc(doc, p)


def schema_from_doc(doc: dict[str, Any], source: str | Path, *,
                    allow_empty: bool = False) -> Schema:
    """A `Schema` from a parsed schema document (a TOML file's table, or the clinic server's
    case base held in the database); every problem is a `SchemaError` naming ``source``.
    ``allow_empty`` accepts a schema still being built (no features or no classes yet).

    >>> schema_from_doc({"name": "x", "target": "dx", "features": [{"key": "a"}],
    ...                  "classes": {"names": ["yes", "no"]}}, "db").keys
    ('a',)
    """
    p = source
    for field in ("name", "target", "features", "classes"):
        if field not in doc:
            raise SchemaError(f"{p}: field {field!r} missing")
    feats = []
    for i, f in enumerate(doc["features"], start=1):
        if not isinstance(f, dict) or "key" not in f:
            raise SchemaError(f"{p}: features entry {i} has no 'key'")
        feats.append(Feature(key=str(f["key"]), column=str(f.get("column", f["key"])),
                             unit=str(f.get("unit", "")), description=str(f.get("description",
                                                                                 ""))))
    classes = doc["classes"].get("names") if isinstance(doc["classes"], dict) else None
    if not feats and not allow_empty:
        raise SchemaError(f"{p}: no features")
    if classes is None or not all(isinstance(c, str) for c in classes) or (
            not classes and not allow_empty):
        raise SchemaError(f"{p}: classes.names must be a non-empty list of strings")
    for what, items in (("feature key", [f.key for f in feats]),
                        ("feature column", [_norm(f.column) for f in feats]),
                        ("class", [_norm(c) for c in classes])):
        dup = sorted({x for x in items if items.count(x) > 1})
        if dup:
            raise SchemaError(f"{p}: duplicate {what}(s): {', '.join(dup)}")
    return Schema(name=str(doc["name"]), description=str(doc.get("description", "")),
                  target=str(doc["target"]), features=tuple(feats), classes=tuple(classes),
                  path=p if isinstance(p, Path) else None)


def _listed(problems: list[tuple[int | None, str | None, str]], what: str) -> str:
    shown = "; ".join(f"row {r} (line {r + 1 if r else '?'}), column {c!r}: {v!r} {what}"
                      for r, c, v in problems[:MAX_LISTED])
    more = f"; … and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
    return shown + more


def read_cases(csv_path: str | Path, schema: Schema | str | Path) -> pd.DataFrame:
    """The cases as a DataFrame: one float column per feature ``key`` (NaN = missing), the
    target column with canonical class names, indexed by data row (1-based). ``attrs`` hold
    ``source``, ``sha256`` and ``schema``.

    >>> import tempfile, os
    >>> s = load_schema("ecg_intervals")
    >>> text = ",".join(s.keys) + ",label\\n" + "800,160,90,380,425,100,0.5,75,normal\\n"
    >>> with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as fh:
    ...     _ = fh.write(text)
    >>> df = read_cases(fh.name, s); os.unlink(fh.name)
    >>> df.loc[1, "pr_ms"], df.loc[1, "label"]
    (np.float64(160.0), 'Normal')
    """
    from detak.models.model_card import sha256_file

    schema = schema if isinstance(schema, Schema) else load_schema(schema)
    path = Path(csv_path)
    if not path.is_file():
        raise FileNotFoundError(f"case file {path} does not exist")
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise EmptyCasesError(f"{path}: empty file (no header, no rows)",
                              [(None, None, "")]) from None
    header = {_norm(c): c for c in raw.columns}
    wanted = [(f.key, f.column) for f in schema.features] + [(schema.target, schema.target)]
    found: dict[str, str] = {}
    missing = []
    for key, column in wanted:
        col = header.get(_norm(column)) or header.get(_norm(key))
        if col is None:
            missing.append(column)
        else:
            found[key] = col
    if missing:
        raise MissingColumnError(
            f"{path}: column(s) {', '.join(repr(m) for m in missing)} missing (schema "
            f"{schema.name!r}; header has {', '.join(repr(c) for c in raw.columns)})",
            [(None, m, "") for m in missing])
    if raw.empty:
        raise EmptyCasesError(f"{path}: header but no data rows", [(None, None, "")])
    out = pd.DataFrame(index=pd.RangeIndex(1, len(raw) + 1, name="row"))
    bad: list[tuple[int | None, str | None, str]] = []
    for f in schema.features:
        text = raw[found[f.key]].str.strip()
        values = pd.to_numeric(text.where(text != ""), errors="coerce")
        for i in np.flatnonzero((values.isna() & (text != "")).to_numpy()):
            bad.append((int(i) + 1, found[f.key], str(raw[found[f.key]].iloc[i])))
        out[f.key] = values.to_numpy(dtype=float)
    if bad:
        bad.sort(key=lambda b: (b[0] or 0))
        hint = (" (use a decimal point, not a comma)"
                if any(re.fullmatch(r"-?\d+,\d+", v.strip()) for _, _, v in bad) else "")
        raise NonNumericValueError(f"{path}: {len(bad)} non-numeric cell(s){hint}: "
                                   + _listed(bad, "is not a number"), bad)
    canon = {_norm(c): c for c in schema.classes}
    labels = raw[found[schema.target]].map(lambda v: canon.get(_norm(v)))
    unknown = [(int(i) + 1, found[schema.target], str(raw[found[schema.target]].iloc[i]))
               for i in np.flatnonzero(labels.isna().to_numpy())]
    if unknown:
        raise UnknownClassError(
            f"{path}: {len(unknown)} unknown class(es): "
            + _listed(unknown, "is not a class") + f" (schema {schema.name!r} classes: "
            + ", ".join(schema.classes) + ")", unknown)
    out[schema.target] = labels.to_numpy()
    out.attrs.update(source=str(path), sha256=sha256_file(path), schema=schema.name)
    return out


def _fields(problems: list[tuple[int | None, str | None, str]], what: str) -> str:
    return "; ".join(f"field {c!r}: {v!r} {what}" for _, c, v in problems)


def parse_case(schema: Schema, cells: Mapping[str, str], label: str,
               row: int = 1) -> tuple[dict[str, float | None], str]:
    """One case typed into a form, checked as `read_cases` checks a CSV row: ``cells`` maps each
    feature ``key`` (or its ``column``) to the text typed (blank = missing), ``label`` names the
    class (case and spacing ignored). Returns ``({key: float or None}, canonical class)``.

    Errors are the CSV's named errors, with ``row`` as the row: `MissingColumnError` (a feature
    not in ``cells``), `NonNumericValueError` (every non-number, infinity, or no number at
    all), `UnknownClassError`.

    >>> s = load_schema("ecg_intervals")
    >>> values, label = parse_case(s, {k: "" for k in s.keys} | {"pr_ms": "160"}, "normal")
    >>> values["pr_ms"], values["qt_ms"], label
    (160.0, None, 'Normal')
    """
    by_name = {_norm(k): v for k, v in cells.items()}
    missing = [f.column for f in schema.features
               if _norm(f.key) not in by_name and _norm(f.column) not in by_name]
    if missing:
        raise MissingColumnError(f"case: field(s) {', '.join(repr(m) for m in missing)} missing "
                                 f"(schema {schema.name!r})", [(row, m, "") for m in missing])
    values: dict[str, float | None] = {}
    bad: list[tuple[int | None, str | None, str]] = []
    for f in schema.features:
        raw = by_name.get(_norm(f.key), by_name.get(_norm(f.column)))
        text = str(raw if raw is not None else "").strip()
        if not text:
            values[f.key] = None
            continue
        try:
            v = float(text)
        except ValueError:
            v = math.nan
        if not math.isfinite(v):
            bad.append((row, f.column, text))
        values[f.key] = v
    if bad:
        hint = (" (use a decimal point, not a comma)"
                if any(re.fullmatch(r"-?\d+,\d+", v) for _, _, v in bad) else "")
        raise NonNumericValueError(f"case: {len(bad)} non-numeric value(s){hint}: "
                                   + _fields(bad, "is not a number"), bad)
    if all(v is None for v in values.values()):
        raise NonNumericValueError(f"case: no measurement given (schema {schema.name!r} needs at "
                                   "least one number)", [(row, None, "")])
    canon = {_norm(c): c for c in schema.classes}
    found = canon.get(_norm(label or ""))
    if found is None:
        problem = [(row, schema.target, str(label or ""))]
        raise UnknownClassError("case: unknown class: " + _fields(problem, "is not a class")
                                + f" (schema {schema.name!r} classes: "
                                + ", ".join(schema.classes) + ")", problem)
    return values, found


def compare_models(cases: pd.DataFrame, schema: Schema | str | Path, k: int = 5, cv: int = 5,
                   seed: int = 0, kinds: Sequence[str] = ("knn", "nb", "dt")) -> pd.DataFrame:
    """S4's accuracy table: for each model, stratified 80/20 hold-out accuracy and ``cv``-fold
    stratified CV accuracy and macro F1 (mean, SD). KNN uses ``k`` neighbours.

    Columns: ``model, holdout_accuracy, cv_accuracy_mean, cv_accuracy_sd, cv_f1_macro_mean,
    cv_f1_macro_sd``; one row per kind.
    """
    from detak.models.evaluation import cross_validate, holdout

    schema = schema if isinstance(schema, Schema) else load_schema(schema)
    X, y = cases_xy(cases, schema)
    rows: list[dict[str, Any]] = []
    for kind in kinds:
        params = {"k": k} if kind == "knn" else {}
        h = holdout(kind, X, y, test_size=0.2, seed=seed, **params)
        c = cross_validate(kind, X, y, cv=cv, seed=seed, **params)
        rows.append({"model": kind, "holdout_accuracy": h["accuracy"],
                     "cv_accuracy_mean": c["accuracy_mean"], "cv_accuracy_sd": c["accuracy_sd"],
                     "cv_f1_macro_mean": c["f1_macro_mean"], "cv_f1_macro_sd": c["f1_macro_sd"]})
    return pd.DataFrame(rows)


def cases_xy(cases: pd.DataFrame, schema: Schema) -> tuple[pd.DataFrame, pd.Series]:
    """``(X, y)``: the schema's feature columns (in schema order) and its target."""
    missing = [c for c in (*schema.keys, schema.target) if c not in cases.columns]
    if missing:
        raise MissingColumnError(f"cases frame: column(s) {', '.join(missing)} missing "
                                 f"(schema {schema.name!r})", [(None, m, "") for m in missing])
    return cases[list(schema.keys)], cases[schema.target]
