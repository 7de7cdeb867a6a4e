"""Read and write WFDB records (PhysioNet's header + signal-file format) as `Recording`.

Reading (`read_wfdb`) takes ``rec``, ``rec.hea`` or ``rec.dat``, any sample rate and number of
signals (multi-segment records are merged by wfdb), converts each signal's physical units
(``mV``, ``uV``/``µV``, ``V``, ``nV``) to millivolts — any other unit is an error naming the file
and the lead, unless ``leads=`` leaves that signal out — and normalises lead names (``MLII``
stays ``MLII``; ``Recording.index("II")`` finds it). WFDB invalid samples become NaN.

Header comments go into ``meta``:

* ``<key>: value`` (LUDB: ``#<age>: 51``) → ``meta["age"] = 51``; a ``<key>:`` with no value
  starts a list filled by the following lines (LUDB's ``#<diagnoses>:``);
* ``Key: value`` (PhysioNet challenges: ``#Age: 74``) → ``meta["age"] = 74``;
  numbers become int/float, the rest stays text;
* other lines (MIT-BIH: ``69 M 1085 1629 x1``) → ``meta["comments"]``;
* signals whose header gives no gain or gain 0 (uncalibrated: WFDB assumes 200 adu/unit) are
  listed in ``meta["uncalibrated_leads"]``;
* ``detak.<field>: <json>`` lines, written by `write_wfdb`, restore ``name``, ``device_id``,
  ``calibration``, ``start_time`` and ``meta`` exactly (they win over the lines above).

Writing (`write_wfdb`) produces a standard single-segment record that rdsamp, WAVE, LightWAVE
or wfdb-python open: format 16 at 1000 adu/mV (1 µV resolution, ±32.767 mV) — or format 32 at
the same gain when a lead exceeds that range — baseline 0, units ``mV``, checksums. NaN samples
are written as the WFDB invalid sample (-32768, or -2**31 in format 32) and read back as NaN.
``start_time`` also goes into the header's base date/time (wall-clock, as WFDB has no zone).
Long ``detak.`` values are cut into several comment lines (``detak.<field>+: "<json string>"``)
so that no header line exceeds 255 characters.

>>> import tempfile, numpy as np
>>> from detak.data.recording import Recording
>>> rec = Recording(np.array([[0.0, 0.5, np.nan, -1.25]] * 2), 360.0, ["MLII", "V5"],
...                 name="demo", device_id="emu-1", meta={"age": 70})
>>> with tempfile.TemporaryDirectory() as d:
...     _ = write_wfdb(rec, f"{d}/demo")
...     back = read_wfdb(f"{d}/demo.hea")
>>> back.leads, back.fs, back.device_id, back.meta, back.lead("II").tolist()
(('MLII', 'V5'), 360.0, 'emu-1', {'age': 70}, [0.0, 0.5, nan, -1.25])
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import numpy as np

from detak.data.leads import normalize_lead_name
from detak.data.numbers import VOLTAGE_UNITS, millivolts_per_unit
from detak.data.recording import Recording
from detak.data.validation import RecordingError

WRITE_GAIN_ADU_PER_MV = 1000.0          # 1 µV per digital unit
_FMT16_MAX = 32767                        # -32768 is WFDB's invalid sample in format 16
_FMT32_MAX = 2**31 - 1                    # -2**31 is the invalid sample in format 32
_INVALID = {"16": -(2**15), "32": -(2**31)}
_CHUNK = 200                              # characters of JSON per header comment line (< 255)
_DETAK_FIELDS = ("name", "device_id", "calibration", "start_time", "meta")
_RECORD_NAME = re.compile(r"[-\w]+")
_ANGLE_FIELD = re.compile(r"<([^<>]+)>\s*:\s*(.*)")
_PLAIN_FIELD = re.compile(r"([A-Za-z][A-Za-z0-9_ ]{0,30}?)\s*:\s*(.+)")
_DETAK_LINE = re.compile(r"detak\.([a-z_]+)(\+?)\s*:\s*(.*)")


def record_base(path: str | Path) -> Path:
    """The record path without extension: ``1.hea``, ``1.dat`` and ``1`` all give ``1``.

    >>> record_base("ludb/data/1.hea").as_posix()
    'ludb/data/1'
    """
    p = Path(path)
    if p.suffix.lower() in (".hea", ".dat"):
        return p.with_suffix("")
    return p


def _convert(value: str) -> Any:
    v = value.strip()
    if re.fullmatch(r"[+-]?\d+", v):
        return int(v)
    if re.fullmatch(r"[+-]?(\d+\.\d*|\.\d+)([eE][+-]?\d+)?", v):
        x = float(v)
        return x if math.isfinite(x) else v
    return v


def _meta_key(key: str) -> str:
    return "_".join(key.strip().lower().split())


def parse_header_comments(comments: Sequence[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split WFDB header comments into (detak fields, meta) — rules in the module docstring.

    >>> parse_header_comments(["<age>: 51", "<sex>: F", "<diagnoses>:", "Rhythm: Sinus rhythm."])
    ({}, {'age': 51, 'sex': 'F', 'diagnoses': ['Rhythm: Sinus rhythm.']})
    """
    meta: dict[str, Any] = {}
    chunks: dict[str, list[str]] = {}
    whole: dict[str, str] = {}
    list_key: str | None = None
    free: list[str] = []
    for raw in comments:
        line = raw.strip()
        m = _DETAK_LINE.fullmatch(line)
        if m and m.group(1) in _DETAK_FIELDS:
            field, cont, text = m.groups()
            if cont:
                chunks.setdefault(field, []).append(text)
            else:
                whole[field] = text
            continue
        if not line:
            continue
        m = _ANGLE_FIELD.fullmatch(line)
        if m:
            key, value = _meta_key(m.group(1)), m.group(2).strip()
            if value:
                meta[key] = _convert(value)
                list_key = None
            else:
                meta[key] = []
                list_key = key
            continue
        if list_key is not None:
            meta[list_key].append(line)
            continue
        m = _PLAIN_FIELD.fullmatch(line)
        if m:
            meta[_meta_key(m.group(1))] = _convert(m.group(2))
        else:
            free.append(line)
    if free:
        meta["comments"] = free
    detak: dict[str, Any] = {}
    for field, text in whole.items():
        detak[field] = json.loads(text)
    for field, parts in chunks.items():
        detak[field] = json.loads("".join(json.loads(p) for p in parts))
    return detak, meta


def _uncalibrated_signals(hea: Path, n_sig: int) -> set[int]:
    """Signals whose header gives no gain or a gain of 0 ("uncalibrated": WFDB then assumes
    200 adu per unit, and the amplitudes mean nothing)."""
    lines = [ln for ln in hea.read_text(errors="replace").splitlines()
             if ln.strip() and not ln.lstrip().startswith("#")]
    out: set[int] = set()
    if not lines or "/" in lines[0].split()[0]:       # multi-segment: gains are per segment
        return out
    for i, line in enumerate(lines[1:1 + n_sig]):
        fields = line.split()
        gain = re.match(r"[-+0-9.eE]+", fields[2]) if len(fields) > 2 else None
        try:
            if gain is None or float(gain.group(0)) == 0:
                out.add(i)
        except ValueError:
            continue
    return out


def read_wfdb(path: str | Path, *, leads: Sequence[str] | None = None) -> Recording:
    """Read a WFDB record into a `Recording` in millivolts.

    ``leads`` keeps only those signals (by normalised name, in the file's order) — use it to
    skip non-ECG signals such as blood pressure. Raises `FileNotFoundError` if the header is
    missing and `RecordingError` for unknown units (``unknown_units``), unreadable files
    (``corrupt_file``) or absent leads (``missing_lead``).

    >>> from detak.data.paths import data_root
    >>> rec = read_wfdb(data_root() / "ludb" / "data" / "1")
    >>> rec.leads[:3], rec.fs, rec.signal.shape, rec.meta["age"]
    (('I', 'II', 'III'), 500.0, (12, 5000), 51)
    """
    import wfdb

    base = record_base(path)
    hea = Path(f"{base}.hea")
    if not hea.is_file():
        raise FileNotFoundError(f"WFDB header not found: {hea}")
    source = str(hea)
    try:
        record = wfdb.rdrecord(str(base), physical=True)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{source}: signal file missing: {exc.filename or exc}") from exc
    except Exception as exc:   # wfdb raises bare Exceptions and ValueErrors on bad files
        raise RecordingError("corrupt_file", f"cannot read WFDB record: {exc}",
                             source=source) from exc
    p = record.p_signal
    n_sig = int(record.n_sig or 0)
    if p is None or p.ndim != 2 or p.shape[1] != n_sig or n_sig == 0:
        raise RecordingError("corrupt_file", "WFDB record has no readable signal",
                             source=source)
    given = list(record.sig_name or [None] * n_sig)
    names = [str(n) if n else f"ch{i + 1}" for i, n in enumerate(given)]
    norm = [normalize_lead_name(n) for n in names]
    if leads is not None:
        wanted = [normalize_lead_name(x) for x in leads]
        missing = [w for w in wanted if w not in norm]
        if missing:
            raise RecordingError("missing_lead", f"leads {', '.join(missing)} not in record; "
                                                 f"it has {', '.join(norm)}", source=source)
        channels = [i for i, n in enumerate(norm) if n in wanted]
    else:
        channels = list(range(n_sig))
    units = list(record.units or ["mV"] * n_sig)
    scales = []
    for ch in channels:
        unit = units[ch] or "mV"
        scale = millivolts_per_unit(unit)
        if scale is None:
            raise RecordingError(
                "unknown_units",
                f"lead {names[ch]!r} has units {unit!r}, not a voltage "
                f"({', '.join(VOLTAGE_UNITS)}); pass leads=[...] to read only the ECG signals",
                source=source)
        scales.append(scale)
    signal = (p[:, channels].T * np.asarray(scales, dtype=np.float64)[:, None]).astype(
        np.float32)

    detak, meta = parse_header_comments(record.comments or [])
    uncal = [norm[ch] for ch in channels if ch in _uncalibrated_signals(hea, n_sig)]
    if uncal:
        meta.setdefault("uncalibrated_leads", uncal)
    start = None
    if getattr(record, "base_date", None) and getattr(record, "base_time", None):
        start = datetime.combine(record.base_date, record.base_time)
    if "start_time" in detak:
        st = detak["start_time"]
        start = datetime.fromisoformat(st) if st else None
    return Recording(
        signal=signal,
        fs=float(record.fs),
        leads=[names[ch] for ch in channels],
        name=detak.get("name", base.name),
        start_time=start,
        device_id=detak.get("device_id"),
        calibration=detak.get("calibration"),
        meta=detak.get("meta", meta),
    )


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, datetime | date | time):
        return obj.isoformat()
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")


def _comment_lines(field: str, value: Any, source: str) -> list[str]:
    try:
        text = json.dumps(value, ensure_ascii=True, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise RecordingError("meta_not_json", f"cannot store {field} in the WFDB header: {exc}",
                             source=source) from exc
    if len(text) <= _CHUNK:
        return [f"detak.{field}: {text}"]
    # Cut the JSON text into pieces, each stored as a JSON string (so that the spaces wfdb
    # strips from comment ends survive) no longer than _CHUNK characters once escaped.
    lines, piece, size = [], [], 2
    for ch in text:
        n = len(json.dumps(ch)) - 2
        if size + n > _CHUNK:
            lines.append(f"detak.{field}+: {json.dumps(''.join(piece))}")
            piece, size = [], 2
        piece.append(ch)
        size += n
    lines.append(f"detak.{field}+: {json.dumps(''.join(piece))}")
    return lines


def write_wfdb(rec: Recording, path: str | Path) -> Path:
    """Write ``rec`` as a WFDB record ``path`` (``dir/name``, ``dir/name.hea`` or ``.dat``).

    Returns the header path. The record name (file stem) must be letters, digits, ``-`` and
    ``_``. Raises `RecordingError` for duplicate lead names, a missing sample rate, inf samples
    or meta that cannot be stored as JSON.

    >>> import tempfile, numpy as np
    >>> from detak.data.recording import Recording
    >>> rec = Recording(np.zeros((3, 500)), 250.0, ["I", "II", "V1"])
    >>> with tempfile.TemporaryDirectory() as d:
    ...     print(write_wfdb(rec, f"{d}/zero").name)
    zero.hea
    """
    import wfdb

    base = record_base(path)
    source = f"{base}.hea"
    name = base.name
    if not _RECORD_NAME.fullmatch(name):
        raise RecordingError("bad_record_name", f"WFDB record name {name!r} may only contain "
                                                f"letters, digits, '-' and '_'", source=source)
    if rec.n_leads == 0 or rec.n_samples == 0:
        raise RecordingError("no_leads" if rec.n_leads == 0 else "too_short",
                             "nothing to write: the recording has no samples", source=source)
    if not (math.isfinite(rec.fs) and rec.fs > 0):
        raise RecordingError("sample_rate_missing", f"sample rate missing or invalid ({rec.fs})",
                             source=source)
    if len(set(rec.leads)) != len(rec.leads):
        dupes = sorted({x for x in rec.leads if rec.leads.count(x) > 1})
        raise RecordingError("duplicate_leads", f"duplicate lead names {', '.join(dupes)} "
                                                f"cannot be written to WFDB", source=source)
    x = rec.signal.astype(np.float64)
    inf_rows = np.flatnonzero(np.isinf(x).any(axis=1))
    if inf_rows.size:
        raise RecordingError("nonfinite_samples", "inf samples cannot be written, in lead(s) "
                             + ", ".join(rec.leads[i] for i in inf_rows), source=source)
    nan = np.isnan(x)
    digital = np.rint(np.where(nan, 0.0, x) * WRITE_GAIN_ADU_PER_MV)
    peak = float(np.abs(digital).max())
    if peak <= _FMT16_MAX:
        fmt, dtype = "16", np.int16
    elif peak <= _FMT32_MAX:
        fmt, dtype = "32", np.int32
    else:
        row = int(np.abs(digital).max(axis=1).argmax())
        raise RecordingError("out_of_range", f"lead {rec.leads[row]} reaches "
                                             f"{peak / WRITE_GAIN_ADU_PER_MV:g} mV, beyond what "
                                             f"WFDB format 32 stores at 1 µV", source=source)
    digital[nan] = _INVALID[fmt]
    d_signal = digital.astype(dtype).T.copy()

    comments: list[str] = []
    fields: dict[str, Any] = {
        "name": rec.name if rec.name and rec.name != name else None,
        "device_id": rec.device_id,
        "calibration": rec.calibration,
        "start_time": rec.start_time.isoformat() if rec.start_time else None,
        "meta": rec.meta or None,
    }
    for field, value in fields.items():
        if value is not None:
            comments += _comment_lines(field, value, source)

    kwargs: dict[str, Any] = {}
    if rec.start_time is not None:
        kwargs["base_date"] = rec.start_time.date()
        # whole seconds: the plain HH:MM:SS every WFDB reader parses (detak.start_time is exact)
        kwargs["base_time"] = rec.start_time.time().replace(tzinfo=None, microsecond=0)
    base.parent.mkdir(parents=True, exist_ok=True)
    try:
        wfdb.wrsamp(name, fs=float(rec.fs), units=["mV"] * rec.n_leads,
                    sig_name=list(rec.leads), d_signal=d_signal, fmt=[fmt] * rec.n_leads,
                    adc_gain=[WRITE_GAIN_ADU_PER_MV] * rec.n_leads, baseline=[0] * rec.n_leads,
                    comments=comments or None, write_dir=str(base.parent), **kwargs)
    except Exception as exc:  # wfdb raises bare Exceptions for invalid fields
        raise RecordingError("unwritable", f"wfdb refused the record: {exc}",
                             source=source) from exc
    return Path(source)
