"""One entry point for record files: `read_recording` picks the reader from the path.

========================  ===========================================  ==================
format                    path                                         reader
========================  ===========================================  ==================
WFDB                      ``rec.hea``, ``rec.dat``, or ``rec`` when    `read_wfdb`
                          ``rec.hea`` exists
CSV / delimited text      ``.csv``, ``.tsv``, ``.txt``                 `read_csv`
EDF, EDF+, BDF            ``.edf``, ``.bdf``                           `read_edf`
========================  ===========================================  ==================

A missing file is `FileNotFoundError` naming the path; any other suffix is
`UnsupportedFormatError` (a `RecordingError`, ``problem="unsupported_format"``) listing these
formats. `write_recording` writes WFDB (``.hea``/``.dat``/no suffix) or CSV (``.csv``,
``.tsv``, ``.txt``).

>>> import tempfile, numpy as np
>>> from detak.data.recording import Recording
>>> d = tempfile.mkdtemp()
>>> rec = Recording(np.zeros((2, 1000)), 500.0, ["I", "II"], name="r")
>>> _ = write_recording(rec, f"{d}/r.csv")
>>> _ = write_recording(rec, f"{d}/r")
>>> read_recording(f"{d}/r.csv").fs, read_recording(f"{d}/r").leads
(500.0, ('I', 'II'))
>>> read_recording(f"{d}/r.json")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
FileNotFoundError: no such record file: .../r.json
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from detak.data.recording import Recording
from detak.data.validation import RecordingError, validate_recording

SUPPORTED_FORMATS: dict[str, tuple[str, ...]] = {
    "WFDB": (".hea", ".dat", "(record name without suffix)"),
    "CSV": (".csv", ".tsv", ".txt"),
    "EDF": (".edf", ".bdf"),
}
_CSV_SUFFIXES = (".csv", ".tsv", ".txt")
_EDF_SUFFIXES = (".edf", ".bdf")
_WFDB_SUFFIXES = (".hea", ".dat")


class UnsupportedFormatError(RecordingError):
    """The path's format is not one detak reads or writes."""

    def __init__(self, path: str | Path, action: str = "read") -> None:
        listing = "; ".join(f"{name}: {' '.join(sfx)}" for name, sfx in SUPPORTED_FORMATS.items())
        super().__init__("unsupported_format", f"cannot {action} this format "
                                               f"({Path(path).suffix or 'no suffix'}); "
                                               f"supported: {listing}", source=str(path))


def recording_format(path: str | Path) -> str:
    """``"WFDB"``, ``"CSV"`` or ``"EDF"`` for an existing record path.

    Raises `FileNotFoundError` naming the path, or `UnsupportedFormatError`.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in _WFDB_SUFFIXES:
        header = p.with_suffix(".hea")
        if not header.is_file():
            raise FileNotFoundError(f"no such record file: {header}")
        return "WFDB"
    if Path(f"{p}.hea").is_file():
        return "WFDB"
    if not p.exists():
        raise FileNotFoundError(f"no such record file: {p}")
    if p.is_dir():
        raise UnsupportedFormatError(p)
    if suffix in _CSV_SUFFIXES:
        return "CSV"
    if suffix in _EDF_SUFFIXES:
        return "EDF"
    raise UnsupportedFormatError(p)


def read_recording(path: str | Path, *, validate: bool = False, **kw: Any) -> Recording:
    """Read a WFDB, CSV or EDF record as a `Recording` (millivolts), chosen by the path.

    ``kw`` go to the reader (``fs=``, ``units=``, ``number_format=`` for CSV; ``leads=`` for
    WFDB; ``signals=``, ``allow_truncated=`` for EDF). With ``validate=True`` the result goes
    through `validate_recording`, which raises `RecordingError` on errors.

    >>> from detak.data.paths import data_root
    >>> read_recording(data_root() / "ludb" / "data" / "1.dat").signal.shape
    (12, 5000)
    """
    fmt = recording_format(path)
    if fmt == "WFDB":
        from detak.data.wfdb_io import read_wfdb

        rec = read_wfdb(path, **kw)
    elif fmt == "CSV":
        from detak.data.csv_io import read_csv

        rec = read_csv(path, **kw)
    else:
        from detak.data.edf_io import read_edf

        rec = read_edf(path, **kw)
    if validate:
        validate_recording(rec)
    return rec


def write_recording(rec: Recording, path: str | Path) -> Path:
    """Write ``rec`` as WFDB (``.hea``, ``.dat`` or no suffix) or CSV (``.csv``, ``.tsv`` with
    tabs, ``.txt``); returns the written header/CSV path."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in _CSV_SUFFIXES:
        from detak.data.csv_io import write_csv

        return write_csv(rec, p, delimiter="\t" if suffix == ".tsv" else ",")
    if suffix in _WFDB_SUFFIXES or suffix == "":
        from detak.data.wfdb_io import write_wfdb

        return write_wfdb(rec, p)
    raise UnsupportedFormatError(p, action="write")
