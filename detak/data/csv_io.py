"""Read and write ECG signals as delimited text (CSV), the format spreadsheets and devices export.

Layout `read_csv` understands::

    # fs=500                      optional comment lines before the header (see below)
    # units=uV
    time_s,I,II,V1                header row: lead names, optionally one time column
    0.000,12,-30,4                one row per sample
    0.002,15,-28,5

* **Delimiter**: tab, ``;`` or ``,``, sniffed as the first of those that splits the header and
  the first data rows into the same number of fields (comma-decimal files are normally
  ``;``-separated). A file with one column needs no delimiter. Quoted fields are allowed.
* **Numbers**: parsed by `detak.data.numbers` with one decision per file (``number_format``:
  ``"auto"``, ``"point"``, ``"comma"``, ``"dot-thousands"``); empty cells and ``nan`` are missing
  samples (NaN), which `validate_recording` reports.
* **Comment lines** (``#`` before the header) hold ``key=value`` or ``key: value`` pairs,
  several per line separated by ``,`` or ``;`` (``# fs=500, units=uV``). Keys: ``fs`` (also
  ``sample_rate``, ``sampling_rate``, ``sampling_frequency``, ``samplerate``, ``hz``; a trailing
  ``Hz`` is ignored), ``units`` (``mV``, ``uV``/``µV``, ``V``, ``nV``), ``name``,
  ``device_id``, ``calibration``, ``start_time`` (ISO 8601), ``meta`` (a JSON object, alone on
  its line). Other pairs go into ``meta`` as text, other comment text into ``meta["comments"]``.
* **Time column**: the first column named ``time``, ``t``, ``time_s``, ``time_sec``, ``seconds``,
  ``sec``, ``s``, ``timestamp``, ``elapsed`` (seconds) or ``time_ms``, ``ms``, ``timestamp_ms``,
  ``t_ms``, ``elapsed_ms`` (milliseconds); ``time (ms)`` / ``time [s]`` spellings work too.
  A time column in seconds whose first value is at least 1e9 is a Unix time and sets
  ``start_time`` (UTC).

Sample rate, in order of precedence: the ``fs`` argument (the time column is then ignored),
the ``fs`` comment, the time column. A time column yields a rate only if it is regular (every
step within half a sample of 1/fs, allowing for the printed precision); otherwise
``RecordingError(problem="irregular_time")`` names the first irregular line. A comment rate
that disagrees with the time column by more than 1 % is ``sample_rate_conflict`` (pass ``fs`` to
decide). No rate at all is ``sample_rate_missing``.

``units`` (argument) > ``units`` comment > millivolts. `write_csv` writes the layout above
(``fs``, ``units=mV`` and the other fields as comments, a ``time_s`` column, values as the
shortest text that reads back to the same float32), so ``read_csv(write_csv(rec))``
round-trips exactly.

>>> import tempfile, numpy as np
>>> from pathlib import Path
>>> d = Path(tempfile.mkdtemp())
>>> _ = (d / "ecg.csv").write_text("# fs=250\\nII;V1\\n0,125;-0,5\\n1.000,25;0\\n")
>>> rec = read_csv(d / "ecg.csv")
>>> rec.leads, rec.fs, rec.signal.tolist()
(('II', 'V1'), 250.0, [[0.125, 1000.25], [-0.5, 0.0]])
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from detak.data.numbers import (
    VOLTAGE_UNITS,
    InvalidNumberError,
    millivolts_per_unit,
    parse_columns,
    resolve_number_formats,
)
from detak.data.recording import Recording
from detak.data.validation import RecordingError

DELIMITERS: tuple[str, ...] = ("\t", ";", ",")
_DELIM_NAMES = {"\t": "tab", ";": "';'", ",": "','", "": "none"}
FS_KEYS = frozenset({"fs", "sample_rate", "sampling_rate", "sampling_frequency", "samplerate",
                     "hz", "sr", "frequency"})
TIME_COLUMNS_S = frozenset({"time", "t", "time_s", "time_sec", "seconds", "sec", "s",
                            "timestamp", "elapsed", "time_seconds"})
TIME_COLUMNS_MS = frozenset({"time_ms", "ms", "timestamp_ms", "t_ms", "elapsed_ms"})
_UNIX_TIME_MIN_S = 1e9
_PAIR_SPLIT = re.compile(r"[,;]\s*(?=[A-Za-z_][\w ]*?\s*(?:=|:\s))")
_PAIR = re.compile(r"\s*([A-Za-z_][\w ]*?)\s*(?:=|:(?=\s|$))\s*(.*?)\s*")


class CsvFormatError(RecordingError):
    """The text file's layout is wrong (no header, ragged rows, undecidable delimiter...)."""


@dataclass
class TextTable:
    """A delimited text file split into fields: what `read_text_table` returns.

    ``rows[i]`` came from file line ``line_numbers[i]`` (1-based); ``comments`` are the ``#``
    lines before the header, without the ``#``.
    """

    source: str
    header: list[str]
    rows: list[list[str]]
    line_numbers: list[int]
    delimiter: str
    comments: list[str] = field(default_factory=list)

    def columns(self) -> dict[str, list[str]]:
        """``{header name: [field of each row]}``."""
        return {name: [row[j] for row in self.rows] for j, name in enumerate(self.header)}


def _split(line: str, delimiter: str) -> list[str]:
    if not delimiter:
        return [line.strip()]
    return next(csv.reader(io.StringIO(line), delimiter=delimiter, skipinitialspace=True))


def _trim_trailing(fields: list[str], n: int) -> list[str]:
    while len(fields) > n and fields[-1].strip() == "":
        fields = fields[:-1]
    return fields


def _sniff(header: str, data: Sequence[str], source: str, header_line: int) -> str:
    counts = {}
    for d in DELIMITERS:
        h = _trim_trailing(_split(header, d), 1)
        if len(h) < 2:
            continue
        n = len(h)
        rows = [_trim_trailing(_split(line, d), n) for line in data]
        if all(len(r) == n for r in rows):
            return d
        counts[d] = (n, sorted({len(r) for r in rows}))
    if not any(d in header for d in DELIMITERS):
        return ""
    tried = "; ".join(f"{_DELIM_NAMES[d]} gives {n} header fields but {got} in the first rows"
                      for d, (n, got) in counts.items()) or "no delimiter splits the header"
    raise CsvFormatError("ragged_rows", f"cannot tell the delimiter (tab, ';' or ','): {tried}; "
                                        f"check line {header_line} and the rows after it",
                         source=source)


def read_text_table(path: str | Path, *, delimiter: str | None = None) -> TextTable:
    """Split a delimited text file into header and rows (no number parsing).

    Leading ``#`` lines are comments; blank lines are skipped; the delimiter is sniffed unless
    given. Raises `CsvFormatError` (``no_data``, ``ragged_rows``) naming file and line.

    >>> import tempfile
    >>> from pathlib import Path
    >>> p = Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = p.write_text("# S3 export\\nRR;HR\\n1.032;58,1\\n")
    >>> t = read_text_table(p)
    >>> t.header, t.rows, t.line_numbers, t.delimiter, t.comments
    (['RR', 'HR'], [['1.032', '58,1']], [3], ';', ['S3 export'])
    """
    p = Path(path)
    source = str(p)
    if not p.is_file():
        raise FileNotFoundError(f"file not found: {p}")
    raw = p.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    comments: list[str] = []
    header: str | None = None
    header_line = 0
    data: list[tuple[int, str]] = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if header is None:
            if line.lstrip().startswith("#"):
                comments.append(line.lstrip()[1:].strip())
                continue
            header, header_line = line, n
        else:
            data.append((n, line))
    if header is None:
        raise CsvFormatError("no_data", "the file is empty (no header row)", source=source)
    if delimiter is None:
        delimiter = _sniff(header, [line for _, line in data[:50]], source, header_line)
    names = [h.strip() for h in _split(header, delimiter)]
    while len(names) > 1 and names[-1] == "":
        names.pop()
    rows, lines = [], []
    for n, line in data:
        fields = _trim_trailing(_split(line, delimiter), len(names))
        if len(fields) != len(names):
            raise CsvFormatError(
                "ragged_rows", f"line {n} has {len(fields)} fields but the header (line "
                               f"{header_line}) has {len(names)} with delimiter "
                               f"{_DELIM_NAMES[delimiter]}", source=source)
        rows.append(fields)
        lines.append(n)
    return TextTable(source, names, rows, lines, delimiter, comments)


def parse_comment_metadata(comments: Sequence[str]) -> dict[str, str]:
    """``key=value`` / ``key: value`` pairs of the comment lines (keys lower-case, ``_`` for
    spaces); text without a key is collected under ``"comments"`` (joined by newlines).

    >>> parse_comment_metadata(["fs=500, units=uV", 'meta={"age": 70, "sex": "F"}', "hello"])
    {'fs': '500', 'units': 'uV', 'meta': '{"age": 70, "sex": "F"}', 'comments': 'hello'}
    """
    out: dict[str, str] = {}
    free: list[str] = []
    for line in comments:
        m = re.fullmatch(r"\s*meta\s*[=:]\s*(\{.*\})\s*", line)
        if m:
            out["meta"] = m.group(1)
            continue
        for part in _PAIR_SPLIT.split(line):
            pm = _PAIR.fullmatch(part)
            if pm:
                out["_".join(pm.group(1).lower().split())] = pm.group(2)
            elif part.strip():
                free.append(part.strip())
    if free:
        out["comments"] = "\n".join(free)
    return out


def _time_unit(name: str) -> float | None:
    """Seconds per unit of a time column named ``name``, or None if it is not a time column."""
    key = name.strip().lower()
    m = re.fullmatch(r"(.*?)\s*[\(\[]\s*(s|sec|ms)\s*[\)\]]", key)
    if m and m.group(1) in {"time", "t", "timestamp", "elapsed"}:
        return 1e-3 if m.group(2) == "ms" else 1.0
    key = "_".join(key.split())
    if key in TIME_COLUMNS_S:
        return 1.0
    if key in TIME_COLUMNS_MS:
        return 1e-3
    return None


def _decimals(tokens: Sequence[str], number_format: str) -> int:
    mark = "," if number_format == "comma" else "."
    if number_format == "dot-thousands":
        return 0
    best = 0
    for t in tokens:
        t = t.strip()
        if "e" in t.lower():
            return 9          # exponent notation: treat as precise
        if mark in t:
            best = max(best, len(t) - t.index(mark) - 1)
    return best


def _fs_from_time(t: np.ndarray, unit_s: float, decimals: int, column: str,
                  lines: Sequence[int], source: str) -> tuple[float, float]:
    """(fs, t0 in s) from a time column; `RecordingError` if irregular."""
    if np.isnan(t).any():
        i = int(np.argmax(np.isnan(t)))
        raise RecordingError("irregular_time", f"time column {column!r} is empty at line "
                                               f"{lines[i]}", source=source)
    if t.size < 2:
        raise RecordingError("sample_rate_missing", f"time column {column!r} has fewer than 2 "
                                                    f"values: sample rate missing; pass fs=",
                             source=source)
    ts = t * unit_s
    span = float(ts[-1] - ts[0])
    if not span > 0:
        raise RecordingError("irregular_time", f"time column {column!r} does not increase "
                                               f"(first {t[0]:g}, last {t[-1]:g})",
                             source=source)
    fs = (ts.size - 1) / span
    q = (10.0 ** -decimals) * unit_s              # printed time resolution, in s
    steps = np.diff(ts) * fs
    tol = 0.5 + q * fs
    bad = np.flatnonzero(np.abs(steps - 1.0) > tol)
    if bad.size:
        i = int(bad[0])
        raise RecordingError(
            "irregular_time",
            f"time column {column!r} is irregular: step from line {lines[i]} to line "
            f"{lines[i + 1]} is {np.diff(t)[i]:g} where the average is "
            f"{span / unit_s / (ts.size - 1):g} ({bad.size} irregular step(s)); resample the "
            f"data or pass fs= to ignore the "
            f"time column", source=source)
    near = round(fs)
    if near > 0 and abs(fs - near) <= fs * q / span + 1e-9 * fs:
        fs = float(near)
    return fs, float(ts[0])


def read_csv(path: str | Path, fs: float | None = None, units: str | None = None,
             number_format: str = "auto") -> Recording:
    """Read an ECG from a delimited text file (layout in the module docstring).

    ``fs`` (Hz) overrides the file; ``units`` (``"mV"``, ``"uV"``, ``"V"``) overrides the
    ``units`` comment (default mV); ``number_format``: see `detak.data.numbers`. Raises
    `FileNotFoundError`, `RecordingError` (``sample_rate_missing``, ``irregular_time``,
    ``sample_rate_conflict``, ``unknown_units``, ``no_header``, ``ragged_rows``...) and
    `detak.data.numbers.NumberFormatError` (invalid or ambiguous numbers, with line and column).

    >>> import tempfile
    >>> from pathlib import Path
    >>> p = Path(tempfile.mkdtemp()) / "ecg.csv"
    >>> _ = p.write_text("time_ms,MLII\\n0,100\\n4,250\\n8,-50\\n")
    >>> rec = read_csv(p, units="uV")
    >>> rec.fs, rec.leads, rec.signal.tolist()
    (250.0, ('MLII',), [[0.10000000149011612, 0.25, -0.05000000074505806]])
    """
    table = read_text_table(path)
    source = table.source
    info = parse_comment_metadata(table.comments)
    header = table.header
    if any(h == "" for h in header):
        raise CsvFormatError("no_header", f"the header row has an empty column name: "
                                          f"{header}", source=source)
    try:
        resolve_number_formats({h: [h] for h in header}, "auto")
        looks_numeric = True
    except (InvalidNumberError, ValueError):
        looks_numeric = False
    if looks_numeric:
        raise CsvFormatError("no_header", f"the first line {header} holds numbers, not lead "
                                          f"names: add a header row (e.g. I,II,V1)",
                             source=source)
    if not table.rows:
        raise CsvFormatError("no_data", "no data rows after the header", source=source)

    time_cols = [h for h in header if _time_unit(h) is not None]
    time_col = time_cols[0] if time_cols else None
    lead_cols = [h for h in header if h != time_col]
    if not lead_cols:
        raise CsvFormatError("no_leads", f"no signal columns besides the time column "
                                         f"{time_col!r}", source=source)
    columns = table.columns()
    formats = resolve_number_formats(columns, number_format, source=source,
                                     line_numbers=table.line_numbers)
    values = parse_columns(columns, formats, source=source, line_numbers=table.line_numbers)

    unit = units if units is not None else info.get("units", "mV")
    scale = millivolts_per_unit(unit)
    if scale is None:
        where = "units argument" if units is not None else "'units' comment"
        raise RecordingError("unknown_units", f"{where} {unit!r} is not a voltage unit "
                                              f"({', '.join(VOLTAGE_UNITS)})", source=source)

    meta: dict[str, Any] = {}
    if "meta" in info:
        try:
            meta = json.loads(info["meta"])
        except json.JSONDecodeError as exc:
            raise CsvFormatError("bad_header_metadata", f"'meta' comment is not JSON: {exc}",
                                 source=source) from exc
        if not isinstance(meta, dict):
            raise CsvFormatError("bad_header_metadata", "'meta' comment must be a JSON object",
                                 source=source)
    known = FS_KEYS | {"units", "unit", "name", "device_id", "calibration", "start_time", "meta"}
    for key, value in info.items():
        if key not in known:
            meta.setdefault(key, value)

    comment_fs = None
    fs_keys = [k for k in info if k in FS_KEYS]
    if fs_keys:
        text = info[fs_keys[0]]
        m = re.fullmatch(r"([0-9]+(?:[.,][0-9]+)?)\s*(?:hz)?", text.strip().lower())
        comment_fs = float(m.group(1).replace(",", ".")) if m else math.nan
        if not (math.isfinite(comment_fs) and comment_fs > 0):
            raise CsvFormatError("bad_header_metadata", f"'{fs_keys[0]}' comment {text!r} is "
                                                        f"not a sample rate in Hz",
                                 source=source)

    start_time = None
    if info.get("start_time"):
        try:
            start_time = datetime.fromisoformat(info["start_time"])
        except ValueError as exc:
            raise CsvFormatError("bad_header_metadata", f"'start_time' comment "
                                                        f"{info['start_time']!r} is not ISO "
                                                        f"8601", source=source) from exc

    if fs is not None:
        if not (math.isfinite(float(fs)) and fs > 0):
            raise ValueError(f"{source}: fs must be a positive number of Hz, got {fs!r}")
        rate = float(fs)
    else:
        time_fs = None
        if time_col is not None:
            unit_s = _time_unit(time_col) or 1.0
            time_fs, t0 = _fs_from_time(values[time_col], unit_s,
                                        _decimals(columns[time_col], formats[time_col]),
                                        time_col, table.line_numbers, source)
            if time_fs < 1.0:
                raise RecordingError(
                    "irregular_time", f"time column {time_col!r} gives {time_fs:g} Hz: if it "
                                      f"is in milliseconds name it '{time_col}_ms', or pass fs=",
                    source=source)
            if unit_s == 1.0 and t0 >= _UNIX_TIME_MIN_S and start_time is None:
                start_time = datetime.fromtimestamp(t0, tz=UTC)
            elif t0 != 0.0:
                meta.setdefault("time_offset_s", t0)
        if comment_fs is not None:
            if time_fs is not None and abs(time_fs - comment_fs) > 0.01 * comment_fs:
                raise RecordingError(
                    "sample_rate_conflict", f"the '{fs_keys[0]}' comment says {comment_fs:g} Hz "
                                            f"but time column {time_col!r} gives {time_fs:g} Hz;"
                                            f" pass fs= to choose", source=source)
            rate = comment_fs
        elif time_fs is not None:
            rate = time_fs
        else:
            raise RecordingError(
                "sample_rate_missing", "sample rate missing: pass fs=..., add a '# fs=500' line "
                                       "before the header, or a time column (time_s or time_ms)",
                source=source)

    signal = np.vstack([values[c] for c in lead_cols]) * scale
    return Recording(
        signal=signal.astype(np.float32), fs=rate, leads=lead_cols,
        name=info.get("name") or Path(source).stem, start_time=start_time,
        device_id=info.get("device_id") or None, calibration=info.get("calibration") or None,
        meta=meta)


def _text(x: np.ndarray) -> list[str]:
    return ["nan" if v != v else str(v) for v in x]


def write_csv(rec: Recording, path: str | Path, *, delimiter: str = ",",
              time_column: bool = True) -> Path:
    """Write ``rec`` as CSV (millivolts; fs and the other fields as ``#`` comments).

    Values are written as the shortest decimal text that reads back to the same float32, with
    ``.`` decimals; NaN as ``nan``. Raises `RecordingError` if the sample rate is missing or
    ``meta`` is not JSON-serialisable.

    >>> import tempfile, numpy as np
    >>> from pathlib import Path
    >>> from detak.data.recording import Recording
    >>> p = write_csv(Recording(np.array([[0.1, -0.25]]), 500.0, ["V1"]),
    ...               Path(tempfile.mkdtemp()) / "v1.csv")
    >>> print(p.read_text().strip())
    # fs=500
    # units=mV
    time_s,V1
    0,0.1
    0.002,-0.25
    """
    p = Path(path)
    source = str(p)
    if delimiter not in DELIMITERS:
        raise ValueError(f"delimiter must be one of tab, ';', ',' (got {delimiter!r})")
    if not (math.isfinite(rec.fs) and rec.fs > 0):
        raise RecordingError("sample_rate_missing", f"sample rate missing or invalid "
                                                    f"({rec.fs})", source=source)
    lines = [f"# fs={rec.fs:g}" if float(f"{rec.fs:g}") == rec.fs else f"# fs={rec.fs!r}",
             "# units=mV"]
    if rec.name and rec.name != p.stem:
        lines.append(f"# name={rec.name}")
    for key in ("device_id", "calibration"):
        value = getattr(rec, key)
        if value is not None:
            lines.append(f"# {key}={value}")
    if rec.start_time is not None:
        lines.append(f"# start_time={rec.start_time.isoformat()}")
    if rec.meta:
        from detak.data.wfdb_io import _json_default

        try:
            lines.append(f"# meta={json.dumps(rec.meta, default=_json_default)}")
        except (TypeError, ValueError) as exc:
            raise RecordingError("meta_not_json", f"cannot store meta as JSON: {exc}",
                                 source=source) from exc
    cols = [_text(row) for row in rec.signal]
    names = list(rec.leads)
    if time_column:
        t = np.arange(rec.n_samples) / rec.fs
        cols.insert(0, [f"{v:.9g}" for v in t])
        names.insert(0, "time_s")
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator="\n")
    writer.writerow(names)
    writer.writerows(zip(*cols, strict=True))
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("\n".join(lines) + "\n" + buf.getvalue(), encoding="utf-8")
    return p
