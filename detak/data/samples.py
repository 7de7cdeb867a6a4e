"""Sample records bundled inside the package for the demo and fast tests.

A handful of PTB-XL (CC BY 4.0) and LUDB (ODC-By 1.0) records, stored as WFDB files in
``detak/data/sample_records/`` with their licence notice and citations (``NOTICE.md``) and an
index (``index.json``). ``tools/make_samples.py`` rebuilds them from ``DETAK_DATA``.

>>> "ludb-1" in sample_names()
True
>>> load_sample("ludb-1").leads[:3]
('I', 'II', 'III')
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from detak.data.recording import Recording

SAMPLES_DIR = Path(__file__).with_name("sample_records")


class SampleNotFoundError(KeyError):
    """No bundled sample has that name."""

    def __str__(self) -> str:
        return str(self.args[0])


@cache
def sample_index() -> dict[str, dict[str, Any]]:
    """name → {dataset, id, description, licence, citation} of every bundled record."""
    return json.loads((SAMPLES_DIR / "index.json").read_text(encoding="utf-8"))


def sample_names() -> list[str]:
    """Names of the bundled records, in index order."""
    return list(sample_index())


def sample_path(name: str) -> Path:
    """WFDB record path (without suffix) of a bundled sample."""
    if name not in sample_index():
        raise SampleNotFoundError(
            f"no bundled sample {name!r}; available: {', '.join(sample_names())}")
    return SAMPLES_DIR / name


def load_sample(name: str) -> Recording:
    """Read a bundled sample as a `Recording` (its index entry goes into ``meta``)."""
    from detak.data.wfdb_io import read_wfdb

    rec = read_wfdb(sample_path(name))
    info = sample_index()[name]
    return rec.replace(name=f"sample:{name}", meta={**rec.meta, "sample": info})
