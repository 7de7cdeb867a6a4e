"""Source strings used everywhere on the command line, resolved to recordings.

=====================  ==============================================================
``ptbxl://ECG_ID``     one PTB-XL record (100 Hz, 12 leads) from ``DETAK_DATA``
``ptbxl://foldK``      every record of stratified fold K (1–10; fold 10 needs a full copy)
``ludb://N``           LUDB record N (1–200, 500 Hz, 12 leads)
``sample://NAME``      a record bundled inside the package (``detak.data.samples``)
``PATH``               a WFDB record (``rec``, ``rec.hea``), ``.csv``, ``.edf``, or a
                       directory of WFDB records
=====================  ==============================================================

`expand_sources` turns arguments into `SourceRecord` items without reading signals (a fold is
thousands of records); each item's `load` reads one `Recording`. Items are small and picklable,
so they can be shipped to worker processes.

>>> [item.record for item in expand_sources(["ludb://7", "ptbxl://1"])]
['ludb:7', 'ptbxl:1']
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from detak.data.recording import Recording

if TYPE_CHECKING:
    from detak.data.ptbxl import PtbXl

_PTBXL_FOLD = re.compile(r"^ptbxl://fold0*(\d+)$", re.IGNORECASE)
_PTBXL_ID = re.compile(r"^ptbxl://0*(\d+)$", re.IGNORECASE)
_LUDB = re.compile(r"^ludb://0*(\d+)$", re.IGNORECASE)
_SAMPLE = re.compile(r"^sample://(.+)$", re.IGNORECASE)


class SourceError(ValueError):
    """A source string names nothing detak can read."""


@cache
def _ptbxl() -> PtbXl:
    """One PTB-XL handle per process: its metadata is parsed once, not once per record."""
    from detak.data.ptbxl import open_ptbxl

    return open_ptbxl()


@dataclass(frozen=True)
class SourceRecord:
    """One record named by a source argument.

    ``source`` is the argument as the user gave it (``ptbxl://fold9``), ``record`` names this
    record (``ptbxl:12345``, a file path...), ``kind``/``key`` say how to load it.
    """

    source: str
    record: str
    kind: str
    key: str

    def load(self) -> Recording:
        """Read the recording (signals in mV)."""
        if self.kind == "ptbxl":
            return _ptbxl().record(int(self.key))
        if self.kind == "ludb":
            from detak.data.ludb import load_ludb

            return load_ludb(int(self.key)).recording
        if self.kind == "sample":
            from detak.data.samples import load_sample

            return load_sample(self.key)
        from detak.data.io import read_recording

        return read_recording(self.key)


def _is_wfdb_header(p: Path) -> bool:
    return p.suffix.lower() == ".hea"


def expand_source(source: str) -> list[SourceRecord]:
    """The records one source argument names (no signal is read).

    >>> expand_source("ptbxl://00042")[0].record
    'ptbxl:42'
    >>> expand_source("nonsense://1")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    detak.data.sources.SourceError: unknown source 'nonsense://1': use ptbxl://ECG_ID, ...
    """
    s = source.strip()
    if m := _PTBXL_FOLD.match(s):
        from detak.data.ptbxl import FoldNotAvailableError

        k = int(m.group(1))
        if not 1 <= k <= 10:
            raise SourceError(f"{source!r}: PTB-XL has strat folds 1–10, not {k}")
        ptb = _ptbxl()
        try:
            ids, _ = ptb.load_fold(k)  # decoded once into the cache; workers read it mapped
        except FoldNotAvailableError as err:
            raise SourceError(f"{source!r}: {err}") from err
        return [SourceRecord(source, f"ptbxl:{i}", "ptbxl", str(i)) for i in ids]
    if m := _PTBXL_ID.match(s):
        return [SourceRecord(source, f"ptbxl:{int(m.group(1))}", "ptbxl", m.group(1))]
    if m := _LUDB.match(s):
        n = int(m.group(1))
        if not 1 <= n <= 200:
            raise SourceError(f"{source!r}: LUDB records are numbered 1–200, not {n}")
        return [SourceRecord(source, f"ludb:{n}", "ludb", str(n))]
    if m := _SAMPLE.match(s):
        return [SourceRecord(source, f"sample:{m.group(1)}", "sample", m.group(1))]
    if "://" in s:
        raise SourceError(f"unknown source {source!r}: use ptbxl://ECG_ID, ptbxl://foldK, "
                          "ludb://N, sample://NAME, or a WFDB/CSV/EDF file or folder")
    path = Path(s)
    if path.is_dir():
        headers = sorted(p for p in path.rglob("*") if _is_wfdb_header(p))
        if not headers:
            raise SourceError(f"{source!r}: folder holds no WFDB records (*.hea)")
        return [SourceRecord(source, str(h.with_suffix("")), "file", str(h)) for h in headers]
    return [SourceRecord(source, s, "file", s)]


def expand_sources(sources: Iterable[str]) -> list[SourceRecord]:
    """`expand_source` over several arguments, in order."""
    return [item for s in sources for item in expand_source(s)]


def iter_recordings(sources: Iterable[str]) -> Iterator[tuple[SourceRecord, Recording]]:
    """Load every record the sources name, one at a time.

    >>> item, rec = next(iter_recordings(["ludb://1"]))
    >>> item.record, rec.fs, rec.n_leads
    ('ludb:1', 500.0, 12)
    """
    for item in expand_sources(sources):
        yield item, item.load()
