"""The expected values of the interval regression test (tests/signal/test_intervals.py), and the
command that rewrites them after a deliberate change to beat detection or delineation:

    PYTHONPATH=. .venv/bin/python -m tests.signal.interval_fixture      # writes the JSON fixture

Records: LUDB 1-20 — ten odd (tuning half) and ten even (held out, never used for tuning),
all rhythms as they come (sinus, atrial fibrillation, ...). Values: ``measure_intervals`` on
the 12-lead record, overall and lead II, in ms (None where detak returns no value).

>>> sorted(RECORDS)[:4], KEYS
([1, 2, 3, 4], ('rr_ms', 'pr_ms', 'qrs_ms', 'qt_ms'))
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

FIXTURE = Path(__file__).with_name("data") / "interval_regression.json"
RECORDS: tuple[int, ...] = tuple(range(1, 21))
KEYS: tuple[str, ...] = ("rr_ms", "pr_ms", "qrs_ms", "qt_ms")


def measure(n: int) -> dict[str, dict[str, float | None]]:
    """``{"overall": {...}, "II": {...}}`` of LUDB record ``n`` (ms, rounded to 0.01)."""
    from detak.data.ludb import load_ludb
    from detak.signal.intervals import measure_intervals

    d = measure_intervals(load_ludb(n).recording).to_dict()

    def pick(src: dict[str, Any]) -> dict[str, float | None]:
        return {k: None if src[k] is None else round(float(src[k]), 2) for k in KEYS}

    return {"overall": pick(d), "II": pick(d["per_lead"]["II"])}


def write(path: Path = FIXTURE) -> Path:
    """Measure every record of `RECORDS` and write the fixture."""
    from importlib import metadata

    doc = {"command": "PYTHONPATH=. .venv/bin/python -m tests.signal.interval_fixture",
           "versions": {k: metadata.version(k) for k in ("detak", "numpy", "scipy", "neurokit2")},
           "records": {str(n): measure(n) for n in RECORDS}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return path


if __name__ == "__main__":
    print(f"written: {write()}", file=sys.stderr)
