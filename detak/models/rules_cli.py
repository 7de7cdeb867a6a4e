"""``detak rules INPUT... --ruleset s3|clinical|FILE.toml --json``: rule labels as JSON.

Each INPUT is either

* a **table of intervals** — a CSV/TSV/TXT file whose header holds at least one `detak
  intervals` key (``rr_ms, pr_ms, qrs_ms, qt_ms, qtc_bazett_ms, qtc_fridericia_ms, st_ms,
  rs_ratio, hr_bpm``; case ignored), optional ``sex`` (M/F, empty = unknown) and optional
  ``record``/``id``/``ecg_id``/``name`` naming the row. Every column the rule set reads must be
  present (an empty cell is a missing value; a missing *column* is an error, so a misspelt
  header is not mistaken for values never measured). Numbers go through
  `detak.data.numbers` with ``number_format`` (S3's dot-thousands files: pass
  ``"dot-thousands"`` or a per-column mapping). Other columns are ignored. Or
* a **SOURCE** as in ``detak intervals`` (``ptbxl://ID``, ``ludb://N``, ``sample://NAME``, a
  WFDB/CSV/EDF recording or a folder): each record is measured (`measure_source_record`) and
  labelled, with the sex from the record's metadata when it has one.

Output: one JSON list, one object per row/record, in input order: ``source``, ``row``/``line``
(tables) or ``record`` (sources), then `RuleResult.to_dict` (``label``, ``reasons``,
``missing``, ``within_limits``, ``summary``...). A row or record that cannot be labelled has
``"label": null`` and ``"error"``; a table that cannot be read gives one object with the error
(naming file, row/line and column). Exit status 0 if every object has a label, 1 otherwise, 2 if
the rule set cannot be loaded (nothing is printed on stdout then).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from detak.models.rules import (
    InvalidValueError,
    NoMeasurementsError,
    RuleSet,
    RuleSetError,
    load_ruleset,
    parse_sex,
)
from detak.signal.analysis import INTERVAL_KEYS

TABLE_SUFFIXES = frozenset({".csv", ".tsv", ".txt"})
ID_COLUMNS: tuple[str, ...] = ("record", "id", "ecg_id", "name")


class IntervalTableError(ValueError):
    """A table of intervals cannot be labelled: missing or duplicate column, bad value.

    ``source``, ``row`` (1-based data row), ``line`` (file line) and ``column`` say where."""

    def __init__(self, message: str, *, source: str = "", row: int | None = None,
                 line: int | None = None, column: str = "") -> None:
        self.source, self.row, self.line, self.column = source, row, line, column
        where = [source] if source else []
        if row is not None:
            where.append(f"row {row}" + (f" (line {line})" if line is not None else ""))
        if column:
            where.append(f"column {column!r}")
        super().__init__(", ".join(where) + ": " + message if where else message)


def is_interval_table(path: str | Path) -> bool:
    """True if ``path`` is a text table whose header names an interval key (not an ECG).

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> _ = (d / "iv.csv").write_text("# from S3\\nPR_ms;hr_bpm\\n200;60\\n")
    >>> _ = (d / "ecg.csv").write_text("time_s,II\\n0,0.1\\n")
    >>> is_interval_table(d / "iv.csv"), is_interval_table(d / "ecg.csv")
    (True, False)
    """
    p = Path(path)
    if p.suffix.lower() not in TABLE_SUFFIXES or not p.is_file():
        return False
    with p.open(encoding="utf-8-sig", errors="replace") as f:
        for line in f:
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            names = {t.strip().strip("\"'").lower() for t in re.split(r"[,;\t]", line)}
            return bool(names & set(INTERVAL_KEYS))
    return False


def label_interval_table(path: str | Path, ruleset: RuleSet,
                         number_format: str | Mapping[str, str] = "auto") -> list[dict[str, Any]]:
    """Label every row of a table of intervals (see the module docstring for the layout).

    Raises `IntervalTableError` (or `detak.data.numbers.NumberFormatError` /
    `detak.data.csv_io.CsvFormatError`, which name line and column) for a table that cannot be
    read; a row with no value at all gets ``"label": None`` and ``"error"``.

    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "s3.csv"
    >>> _ = p.write_text("record;rr_ms;pr_ms;qrs_ms;qt_ms;st_ms;rs_ratio;hr_bpm\\n"
    ...                  "A;1.032;236;90;400;100;0,5;58\\n")
    >>> [r["label"] for r in label_interval_table(p, load_ruleset("s3"), "comma")]
    ['Sangat Berpotensi Aritmia']
    """
    from detak.data.csv_io import read_text_table
    from detak.data.numbers import InvalidNumberError, parse_columns

    table = read_text_table(path)
    source = table.source
    lower = [h.strip().lower() for h in table.header]
    dup = next((h for h in lower if lower.count(h) > 1 and h), None)
    if dup:
        raise IntervalTableError(f"column {dup!r} appears twice in the header", source=source)
    col_of = {h: table.header[j] for j, h in enumerate(lower)}
    absent = [k for k in ruleset.keys if k not in col_of]
    if absent:
        raise IntervalTableError(
            f"missing column(s) {', '.join(map(repr, absent))} needed by rule set "
            f"{ruleset.name!r} (leave cells empty for values not measured); the header has "
            f"{', '.join(map(repr, table.header))}", source=source)
    iv_cols = {k: col_of[k] for k in INTERVAL_KEYS if k in col_of}
    columns = table.columns()
    try:
        parsed = parse_columns({col: columns[col] for col in iv_cols.values()}, number_format,
                               source=source, line_numbers=table.line_numbers)
    except InvalidNumberError as e:
        row = table.line_numbers.index(e.line) + 1 if e.line in table.line_numbers else None
        raise IntervalTableError(str(InvalidNumberError(e.token, e.number_format)),
                                 source=source, row=row, line=e.line,
                                 column=e.column) from None
    sex_col = col_of.get("sex")
    id_col = next((col_of[c] for c in ID_COLUMNS if c in col_of), None)
    out: list[dict[str, Any]] = []
    for i, line in enumerate(table.line_numbers):
        where = {"source": source, "row": i + 1, "line": line}
        if id_col is not None:
            where["record"] = columns[id_col][i].strip()
        values = {k: float(parsed[col][i]) for k, col in iv_cols.items()}
        sex = None
        if sex_col is not None:
            try:
                sex = parse_sex(columns[sex_col][i])
            except InvalidValueError as e:
                raise IntervalTableError(f"{e.problem} (got {e.value!r})", source=source,
                                         row=i + 1, line=line,
                                         column=sex_col) from None
        try:
            out.append({**where, **ruleset.label(values, sex=sex).to_dict()})
        except InvalidValueError as e:
            raise IntervalTableError(f"{e.problem} (got {e.value!r})", source=source, row=i + 1,
                                     line=line, column=iv_cols[e.parameter]) from None
        except NoMeasurementsError as e:
            out.append({**where, "ruleset": ruleset.name, "label": None, "reasons": [],
                        "missing": e.missing, "error": str(e)})
    return out


class _MetaCapturingItem:
    """A `SourceRecord` look-alike that keeps the loaded record's metadata (for its sex)."""

    def __init__(self, item: Any) -> None:
        self.source, self.record, self._item = item.source, item.record, item
        self.meta: dict[str, Any] = {}

    def load(self) -> Any:
        rec = self._item.load()
        self.meta = dict(rec.meta or {})
        return rec


def label_source_record(item: Any, ruleset: RuleSet) -> dict[str, Any]:
    """Measure one `detak.data.sources.SourceRecord` and label it; never raises for the record.

    >>> from detak.data.sources import expand_sources
    >>> d = label_source_record(expand_sources(["sample://ptbxl-00102"])[0],
    ...                         load_ruleset("clinical"))
    >>> d["label"], d["sex"], "first_degree_av_block" in [r["finding"] for r in d["reasons"]]
    ('abnormal', 'M', True)
    """
    from detak.signal.intervals_cli import measure_source_record

    wrapped = _MetaCapturingItem(item)
    measured = measure_source_record(wrapped)  # type: ignore[arg-type]  # duck-typed item
    head = {"source": item.source, "record": item.record}
    if "error" in measured:
        return {**head, "ruleset": ruleset.name, "label": None, "reasons": [],
                "error": measured["error"]}
    sex = parse_sex(wrapped.meta.get("sex"), strict=False)
    quality = (measured.get("quality") or {}).get("verdict")
    why = {k: v for k, v in (measured.get("reasons") or {}).items() if k in ruleset.keys}
    try:
        res = {**head, **ruleset.label(measured, sex=sex).to_dict()}
    except NoMeasurementsError as e:
        rejected = (measured.get("quality") or {}).get("reasons") if quality == "reject" else None
        res = {**head, "ruleset": ruleset.name, "label": None, "reasons": [],
               "missing": e.missing,
               "error": f"{e}; rejected: {'; '.join(rejected)}" if rejected else str(e)}
    except InvalidValueError as e:
        res = {**head, "ruleset": ruleset.name, "label": None, "reasons": [],
               "error": f"measured value unusable: {e}"}
    res["quality"] = quality
    if why:
        res["missing_reasons"] = why
    return res


def run_rules_command(inputs: Sequence[str], ruleset: str = "s3", *,
                      number_format: str | Mapping[str, str] = "auto",
                      out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Print the JSON list of labels for ``inputs``; returns the exit status (0, 1 or 2).

    >>> import io, json, tempfile
    >>> p = Path(tempfile.mkdtemp()) / "iv.csv"
    >>> _ = p.write_text("hr_bpm,pr_ms,qrs_ms,qtc_bazett_ms,sex\\n45,150,90,455,F\\n")
    >>> buf = io.StringIO()
    >>> run_rules_command([str(p)], "clinical", out=buf)
    0
    >>> [(o["row"], o["label"]) for o in json.loads(buf.getvalue())]
    [(1, 'abnormal')]
    """
    from detak.errors import report

    out = out or sys.stdout
    err = err or sys.stderr
    try:
        rs = load_ruleset(ruleset)
    except RuleSetError as e:
        return report("rules", e, file=err)
    from detak.data.csv_io import CsvFormatError
    from detak.data.numbers import NumberFormatError
    from detak.data.sources import SourceError, expand_sources
    from detak.errors import error_line

    results: list[dict[str, Any]] = []
    for inp in inputs:
        if is_interval_table(inp):
            try:
                results.extend(label_interval_table(inp, rs, number_format))
            except (IntervalTableError, CsvFormatError, NumberFormatError, KeyError,
                    OSError) as e:
                msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
                results.append({"source": inp, "ruleset": rs.name, "label": None,
                                "reasons": [], "error": msg})
            continue
        try:
            items = expand_sources([inp])
        except (SourceError, OSError, ValueError) as e:
            results.append({"source": inp, "ruleset": rs.name, "label": None, "reasons": [],
                            "error": str(e)})
            continue
        results.extend(label_source_record(it, rs) for it in items)
    status = 0
    for r in results:
        if r.get("label") is None:
            status = 1
            where = r.get("record") or r["source"]
            if "row" in r:
                where = f"{r['source']} row {r['row']}"
            print(error_line("rules", str(r.get("error")), str(where)), file=err)
    out.write(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    out.flush()
    return status
