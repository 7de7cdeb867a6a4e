"""``NAME.hr.csv``: the heart rates a device computed, written beside its WFDB record.

Devices such as the Polar H10 (Heart Rate Service), the PC-80B and ProtoCentral OpenView boards
send a heart rate (and the H10 its RR intervals) next to the ECG. The `Recorder` journals them
(`detak.device.recorder.heart_rate_rows`); `write_heart_rates` stores them as CSV, one row per
measurement:

======== =========================================================================================
sample   index in the record of the next sample when the measurement arrived (after a clock
         correction that resampled the record, on the corrected grid)
host_time_s  arrival time on the host's monotonic clock, seconds
hr_bpm   the device's heart rate, beats per minute
rr_ms    the RR intervals it carried, ms, oldest first, separated by spaces (empty: none)
contact  sensor contact: 1 yes, 0 no, empty when the device cannot tell
======== =========================================================================================

>>> import tempfile, pathlib
>>> rows = [{"sample": 130, "host_time_s": 12.5, "hr_bpm": 61, "rr_ms": [1000.0, 976.5625],
...          "contact": True}]
>>> with tempfile.TemporaryDirectory() as d:
...     p = write_heart_rates(rows, pathlib.Path(d) / "r.hr.csv")
...     print(p.read_text(), end="")
sample,host_time_s,hr_bpm,rr_ms,contact
130,12.5,61,1000.0 976.5625,1
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from detak.data.recording import Recording
from detak.device.chunks import write_atomic

COLUMNS = ("sample", "host_time_s", "hr_bpm", "rr_ms", "contact")
SUFFIX = ".hr.csv"


def index_factor(rec: Recording) -> float:
    """How sample indices of the device's stream map onto ``rec``: ``nominal / true`` rate when
    a clock correction resampled it (``meta["sample_rate"]``), else 1.

    >>> import numpy as np
    >>> sr = {"resampled": True, "nominal_fs": 250.0, "true_fs": 250.5}
    >>> index_factor(Recording(np.zeros((1, 4)), 250.0, ["II"], meta={"sample_rate": sr}))
    0.998003992015968
    """
    sr = rec.meta.get("sample_rate") or {}
    if sr.get("resampled") and sr.get("true_fs"):
        return float(sr["nominal_fs"]) / float(sr["true_fs"])
    return 1.0


def write_heart_rates(rows: list[dict[str, Any]], path: Path, factor: float = 1.0,
                      n_samples: int | None = None) -> Path:
    """Write ``rows`` (`heart_rate_rows`) to ``path``, sample indices times ``factor`` (clipped
    to ``n_samples``); the file is written whole or not at all."""
    buf = io.StringIO(newline="")
    w = csv.writer(buf)
    w.writerow(COLUMNS)
    for r in rows:
        sample = int(round(r["sample"] * factor))
        if n_samples is not None:
            sample = min(sample, n_samples)
        contact = "" if r["contact"] is None else int(bool(r["contact"]))
        w.writerow([sample, repr(float(r["host_time_s"])), int(r["hr_bpm"]),
                    " ".join(repr(float(x)) for x in r["rr_ms"]), contact])
    write_atomic(path, buf.getvalue().encode("utf-8"))
    return path
