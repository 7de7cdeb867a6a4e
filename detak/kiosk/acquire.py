"""What ``detak screen`` and the app screen: recordings named by a SOURCE, or 10 s recorded
from a device URL first.

A SOURCE is anything ``detak intervals`` reads (``ptbxl://ID``, ``ludb://N``,
``sample://NAME``, a WFDB/CSV/EDF file or a folder of records). A device URL (``emu://…``,
``serial://…``, ``socket://…``, ``file://…``, ``ble://…``; `detak.device.urls`) is recorded for
`RECORD_SECONDS` through the Recorder (`detak.device.record.record`, with the device's saved
calibration profile as ``detak record`` applies it) into a working folder, then read back.

>>> is_device_url("emu://ptbxl/1?speed=20"), is_device_url("ptbxl://1"), is_device_url("a.hea")
(True, False, False)
>>> [r.record for r in acquire("sample://ptbxl-00286", "/tmp")]
['sample:ptbxl-00286']
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from detak.data.recording import Recording

RECORD_SECONDS = 10.0


#: emulator faults a nurse's retake removes: the electrode pressed back on (``leadoff``), the
#: resident lying still (``noise``); link faults (drop, corrupt, disconnect ...) stay
PRACTICE_FAULTS = ("leadoff", "noise")


def without_practice_faults(url: str) -> str:
    """The training device's URL as it plays once the nurse fixed what she was shown: the
    same ``emu://`` record without `PRACTICE_FAULTS`; any other URL unchanged.

    >>> without_practice_faults("emu://ptbxl/286?speed=2&leadoff=0.5:9:RA&drop=0.01")
    'emu://ptbxl/286?speed=2&drop=0.01'
    >>> without_practice_faults("serial:///dev/ttyUSB0?baud=115200&leadoff=1")
    'serial:///dev/ttyUSB0?baud=115200&leadoff=1'
    """
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.scheme != "emu":
        return url
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if k not in PRACTICE_FAULTS]
    return urlunsplit(parts._replace(query=urlencode(kept, safe=":/,")))


def is_device_url(source: str) -> bool:
    """True for a device URL (its scheme is one `detak.device.urls` opens)."""
    from detak.device.urls import SCHEMES

    s = source.strip()
    return "://" in s and s.split("://", 1)[0].lower() in SCHEMES


@dataclass
class Acquired:
    """One recording to screen: the ``source`` argument, the ``record`` name, and how to load
    it (``load()`` raises for an unreadable record: a failed source); ``device`` says what
    recorded it (device URLs only)."""

    source: str
    record: str
    _load: Any
    device: dict[str, Any] | None = None

    def load(self) -> Recording:
        return self._load()


def record_device(url: str, workdir: str | Path, seconds: float = RECORD_SECONDS,
                  **kwargs: Any) -> tuple[Recording, dict[str, Any]]:
    """Record ``seconds`` from the device ``url`` into ``workdir``; the recording and what
    recorded it (URL, model, serial, firmware, driver). ``kwargs`` go to
    `detak.device.record.arecord` (the app passes ``on_event`` for its live trace)."""
    from detak.data.wfdb_io import read_wfdb
    from detak.device.record import record

    path = record(url, seconds, workdir, saved_profile=True, **kwargs)
    rec = read_wfdb(path)
    info = dict(rec.meta.get("device") or {})
    device = {"url": url, **{k: info[k] for k in ("model", "serial", "firmware", "driver")
                             if k in info}}
    if rec.device_id:
        device["id"] = rec.device_id
    return rec, device


def acquire(source: str, workdir: str | Path) -> Iterator[Acquired]:
    """The recordings ``source`` names, lazily: a device URL is recorded when loaded. A source
    that names nothing raises (`detak.data.sources.SourceError`, ``ValueError``)."""
    if is_device_url(source):
        item = Acquired(source, source, None)

        def load() -> Recording:
            rec, item.device = record_device(source, workdir)
            return rec

        item._load = load
        yield item
        return
    from detak.data.sources import expand_sources

    for it in expand_sources([source]):
        yield Acquired(source, it.record, it.load)
