"""LUDB (Lobachevsky University Electrocardiography Database) loader with wave annotations.

LUDB 1.0.1: 200 ten-second 12-lead records at 500 Hz, with cardiologists' P/QRS/T onset, peak
and offset annotations per lead (WFDB annotation files ``data/N.i``, ``.ii``, … ``.v6``).

`load_ludb` returns a `LudbRecord`: the `Recording` (mV, float32, 500 Hz, standard lead names,
name ``ludb:N``, meta = age/sex/rhythm/diagnoses/pacemaker) and, separately, ``waves``: per
standard lead name a list of annotated `Wave` (kind ``P``/``QRS``/``T``; onset, peak, offset as
sample indices at 500 Hz; onset/offset ``None`` where the annotator left them out).

>>> rec = load_ludb(1)
>>> rec.recording.name, rec.recording.fs, rec.recording.leads[:3]
('ludb:1', 500.0, ('I', 'II', 'III'))
>>> rec.waves["II"][0].kind
'QRS'
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from detak.data.leads import normalize_lead_name
from detak.data.recording import Recording

N_RECORDS = 200
LUDB_FS = 500.0
WFDB_LEADS: tuple[str, ...] = ("i", "ii", "iii", "avr", "avl", "avf",
                               "v1", "v2", "v3", "v4", "v5", "v6")
_KINDS = {"p": "P", "N": "QRS", "t": "T"}


class LudbError(FileNotFoundError):
    """A LUDB record or its files cannot be found or read."""


@dataclass(frozen=True)
class Wave:
    """One annotated wave: ``kind`` P/QRS/T, sample indices (500 Hz) of onset, peak, offset."""

    kind: str
    onset: int | None
    peak: int
    offset: int | None


@dataclass
class LudbRecord:
    """A LUDB record: the signal as a `Recording` and the per-lead wave annotations."""

    recording: Recording
    waves: dict[str, list[Wave]] = field(default_factory=dict)

    @property
    def meta(self) -> dict[str, Any]:
        return self.recording.meta

    def waves_of(self, lead: str, kind: str) -> list[Wave]:
        """Annotated waves of one ``kind`` (P, QRS, T) in ``lead``."""
        return [w for w in self.waves.get(normalize_lead_name(lead), []) if w.kind == kind]


def ludb_root(root: str | Path | None = None) -> Path:
    """The LUDB folder: ``root`` if given, else ``data_root()/"ludb"``."""
    from detak.data.paths import data_root

    return Path(root) if root is not None else data_root() / "ludb"


def ludb_ids() -> list[int]:
    """Record numbers of LUDB: 1..200.

    >>> ids = ludb_ids(); ids[0], ids[-1], len(ids)
    (1, 200, 200)
    """
    return list(range(1, N_RECORDS + 1))


def parse_annotations(samples: np.ndarray, symbols: list[str]) -> list[Wave]:
    """Waves from a WFDB annotation stream of ``(`` peak ``)`` triplets.

    >>> parse_annotations(np.array([10, 20, 30, 50, 60]), ["(", "N", ")", "t", ")"])
    [Wave(kind='QRS', onset=10, peak=20, offset=30), Wave(kind='T', onset=None, peak=50, offset=60)]
    """
    waves: list[Wave] = []
    n = len(symbols)
    for i, sym in enumerate(symbols):
        kind = _KINDS.get(sym)
        if kind is None:
            continue
        onset = int(samples[i - 1]) if i > 0 and symbols[i - 1] == "(" else None
        offset = int(samples[i + 1]) if i + 1 < n and symbols[i + 1] == ")" else None
        waves.append(Wave(kind, onset, int(samples[i]), offset))
    return waves


def _clean_cell(value: str | None) -> list[str]:
    if not value:
        return []
    return [line.strip() for line in value.replace("\r", "").split("\n") if line.strip()]


def _read_table(root: Path) -> dict[int, dict[str, Any]]:
    path = root / "ludb.csv"
    if not path.exists():
        raise LudbError(f"LUDB metadata file not found: {path}")
    table: dict[int, dict[str, Any]] = {}
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            table[int(row["ID"])] = row
    return table


def _meta_from_row(row: dict[str, Any]) -> dict[str, Any]:
    age_txt = " ".join(_clean_cell(row.get("Age")))
    try:
        age: int | None = int(age_txt)
    except ValueError:  # ">89" and the like
        digits = "".join(c for c in age_txt if c.isdigit())
        age = int(digits) if digits else None
    sex = " ".join(_clean_cell(row.get("Sex"))) or None
    rhythm = _clean_cell(row.get("Rhythms"))
    diagnoses: list[str] = []
    for key, value in row.items():
        if key in ("ID", "Sex", "Age", "Rhythms"):
            continue
        diagnoses += _clean_cell(value)
    pacing = _clean_cell(row.get("Cardiac pacing"))
    return {
        "age": age,
        "sex": sex,
        "rhythm": rhythm,
        "diagnoses": diagnoses,
        "pacemaker": bool(pacing),
        "pacing": pacing,
        "atrial_fibrillation": any("fibrillation" in r.lower() for r in rhythm),
        "atrial_flutter": any("flutter" in r.lower() for r in rhythm),
    }


def load_ludb(n: int, root: str | Path | None = None) -> LudbRecord:
    """Load LUDB record ``n`` (1..200) with its meta data and per-lead wave annotations.

    Raises `LudbError` naming the record and file when it is not there.

    >>> r = load_ludb(1)
    >>> r.recording.signal.shape, r.meta["rhythm"]
    ((12, 5000), ['Sinus bradycardia'])
    """
    import wfdb

    if not isinstance(n, int | np.integer) or not 1 <= int(n) <= N_RECORDS:
        raise LudbError(f"LUDB record {n!r} does not exist: records are numbered 1..{N_RECORDS}")
    n = int(n)
    base = ludb_root(root)
    stem = base / "data" / str(n)
    hea = stem.with_suffix(".hea")
    if not hea.exists():
        raise LudbError(f"LUDB record {n}: header file not found: {hea} "
                        f"(set DETAK_DATA to the folder holding ludb/)")
    try:
        wrec = wfdb.rdrecord(str(stem))
    except Exception as exc:  # corrupt or missing .dat
        raise LudbError(f"LUDB record {n}: cannot read {stem}.dat: {exc}") from exc
    signal = np.asarray(wrec.p_signal, dtype=np.float32).T
    leads = [normalize_lead_name(s) for s in wrec.sig_name]
    units = {u.lower() for u in (wrec.units or [])}
    if units - {"mv"}:
        raise LudbError(f"LUDB record {n}: unexpected units {sorted(units)} (expected mV)")

    row = _read_table(base).get(n)
    meta: dict[str, Any] = _meta_from_row(row) if row else {}
    meta.update({"source": str(stem), "dataset": "ludb", "record": n,
                 "header_comments": list(wrec.comments or [])})

    waves: dict[str, list[Wave]] = {}
    for wname, lead in zip(wrec.sig_name, leads, strict=True):
        ext = wname.lower()
        if not stem.with_suffix("." + ext).exists():
            raise LudbError(f"LUDB record {n}: annotation file for lead {lead} not found: "
                            f"{stem}.{ext}")
        ann = wfdb.rdann(str(stem), ext)
        waves[lead] = parse_annotations(np.asarray(ann.sample), list(ann.symbol))

    rec = Recording(signal, fs=float(wrec.fs), leads=leads, name=f"ludb:{n}", meta=meta)
    return LudbRecord(recording=rec, waves=waves)
