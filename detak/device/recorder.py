"""`Recorder`: device events -> ring buffer -> chunk journal -> `Recording` in millivolts.

Feed it every event of a session (``add(event)``). Sample blocks land in a `RingBuffer` at
their absolute index (the device's sample counter, plus an offset if the counter restarted);
each complete chunk (``chunk_seconds``) is written to the `PartsStore` journal and fsynced.
Nothing is ever joined silently:

* a block that starts after the last sample received opens a *gap* (NaN-filled samples,
  listed in ``meta["gaps"]`` as ``[start, stop, reason]``; reason ``lost`` for missing or
  corrupted frames, ``link`` across a link loss); ``StreamEnded`` with samples never received
  closes the recording with a gap too;
* a block whose counter went *back* after a reconnect (the device restarted) is placed after
  the gap the host clock measured (``meta["rebased"]``, marked approximate);
* lead-off changes become per-lead spans (``meta["lead_off"]``), the 1 mV pulse becomes
  ``meta["cal_pulse"]``; device errors, battery reports and link losses are kept as well;
* heart rates the device computed (`HeartRate`: BLE Heart Rate Service, Polar H10, PC-80B,
  OpenView) are journaled with the sample index they arrived at (the recording's length then)
  and their host time; `heart_rate_rows` reads them back (``detak record`` writes them to
  ``NAME.hr.csv``), ``meta["device_heart_rate"]`` counts them.

``finish()`` converts the journal to a `Recording` via the calibration hook (default: the LSB
the device declares). `recording_from_parts` does the same for a journal left by a crash.

>>> import numpy as np
>>> from detak.device.events import StreamInfo, SampleBlock
>>> info = StreamInfo(fs=100.0, channels=("I", "II"), lsb_nv=1000.0, model="m", serial="1")
>>> r = Recorder(info, limit=6)
>>> r.add(SampleBlock(np.array([[1, 2], [3, 4]], np.int32), 0))
>>> r.add(SampleBlock(np.array([[5, 6], [7, 8]], np.int32), 4))     # samples 2, 3 lost
>>> rec = r.finish()
>>> (rec.signal[0] * 1000).round(3).tolist(), rec.meta["gaps"]       # µV
([1.0, 2.0, nan, nan, 5.0, 6.0], [[2, 4, 'lost']])
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from detak.data.recording import Recording
from detak.device.chunks import PartsStore
from detak.device.events import (
    BatteryStatus,
    CalPulseChange,
    DeviceError,
    Event,
    HeartRate,
    LeadOffChange,
    LinkLost,
    LinkRestored,
    Reply,
    SampleBlock,
    StreamEnded,
    StreamInfo,
)
from detak.device.ringbuffer import RingBuffer
from detak.device.scaling import Calibration, DeviceInfoCalibration, scale_from_dict


class Recorder:
    """Turns one stream's events into a `Recording` (see the module docstring)."""

    def __init__(self, info: StreamInfo, parts_dir: str | Path | None = None, *,
                 limit: int | None = None, chunk_seconds: float = 1.0,
                 ring_seconds: float = 10.0, calibration: Calibration | None = None,
                 name: str = "", url: str = "", start_time: datetime | None = None) -> None:
        if not (info.fs > 0 and np.isfinite(info.fs)):
            raise ValueError(f"device {info.device_id or '?'} declares sample rate {info.fs}")
        if info.n_channels < 1:
            raise ValueError(f"device {info.device_id or '?'} ({info.model or 'unknown model'}) "
                             "streams no ECG channel (a heart-rate-only profile such as 'hrs'?): "
                             "nothing to record. A Polar H10 streams ECG too: use "
                             "ble://ADDRESS?profile=polar-h10, which also stores its heart rate "
                             "and RR beside the record (NAME.hr.csv); for heart rate alone, read "
                             "the HeartRate events of detak.device.open_device(URL)")
        self.info = info
        self.fs = float(info.fs)
        self.scale = (calibration or DeviceInfoCalibration()).scale_for(info)
        self.chunk = max(1, int(round(chunk_seconds * self.fs)))
        self.ring = RingBuffer(info.n_channels,
                               max(2 * self.chunk, int(round(ring_seconds * self.fs))))
        self.limit = limit
        self.start_time = start_time or datetime.now(UTC)
        to_journal = getattr(calibration, "to_journal", None)
        self.store = PartsStore(
            Path(parts_dir) if parts_dir is not None else None,
            {"n_channels": info.n_channels, "info": info.to_dict(), "chunk_samples": self.chunk,
             "calibration": self.scale.describe(), "url": url, "name": name,
             "start_time": self.start_time.isoformat(), "limit": limit,
             "profile": to_journal() if callable(to_journal) else None})
        self.flushed = 0
        self.end = 0
        self.offset = 0
        self.ended: str | None = None
        self.counters = {"blocks": 0, "samples": 0, "duplicate_samples": 0, "late_samples": 0}
        self._link_lost = False
        self._last_host_time: float | None = None
        self._leads_off: frozenset[str] = frozenset()
        self._cal_on = False
        self._finished: Recording | None = None

    @property
    def done(self) -> bool:
        """True once ``limit`` samples are covered (received or known lost)."""
        return self.limit is not None and self.end >= self.limit

    def _log(self, kind: str, **fields: Any) -> None:
        self.store.add_event({"kind": kind, **fields})

    def _abs(self, sample: int | None) -> int:
        return self.end if sample is None else int(sample) + self.offset

    # --- events ------------------------------------------------------------------------------

    def add(self, event: Event) -> None:
        """Take one event from the session."""
        if isinstance(event, SampleBlock):
            self._block(event)
        elif isinstance(event, LeadOffChange):
            if event.leads_off != self._leads_off:
                self._leads_off = event.leads_off
                self._log("lead_off", sample=self._abs(event.sample),
                          leads=sorted(event.leads_off), electrodes=list(event.electrodes_off))
        elif isinstance(event, CalPulseChange):
            if event.on != self._cal_on:
                self._cal_on = event.on
                self._log("cal_pulse", sample=self._abs(event.sample), on=event.on)
        elif isinstance(event, LinkLost):
            self._link_lost = True
            self._log("link_lost", sample=self.end, error=event.error)
        elif isinstance(event, LinkRestored):
            self._log("link_restored", sample=self.end, attempts=event.attempts)
        elif isinstance(event, StreamEnded):
            self.ended = event.reason
            nxt = None if event.next_sample is None else self._abs(event.next_sample)
            self._log("stream_end", sample=nxt, reason=event.reason)
            if nxt is not None and nxt > self.end:
                self._advance_gap(nxt, "lost")
        elif isinstance(event, DeviceError):
            self._log("device_error", code=event.code, text=event.text,
                      sample=None if event.sample is None else self._abs(event.sample))
        elif isinstance(event, HeartRate):
            self._log("heart_rate", sample=self.end, host_time=event.host_time, bpm=event.bpm,
                      rr_ms=list(event.rr_ms), contact=event.contact)
        elif isinstance(event, BatteryStatus):
            self._log("battery", percent=event.percent, millivolts=event.millivolts,
                      charging=event.charging, sample=self.end)
        elif isinstance(event, Reply | StreamInfo):
            pass                           # handshake traffic; the session checks identity

    def _gap(self, a: int, b: int, reason: str) -> None:
        if self.limit is not None:
            b = min(b, self.limit)
        if b > a:
            self._log("gap", start=a, stop=b, reason=reason)

    def _advance_gap(self, to: int, reason: str) -> None:
        self._gap(self.end, to, reason)
        self.end = to if self.limit is None else min(to, self.limit)
        self._flush_ready()

    def _block(self, b: SampleBlock) -> None:
        counts = np.asarray(b.counts, dtype=np.int32)
        n = counts.shape[1]
        self.counters["blocks"] += 1
        if b.first_sample is None:
            start = self.end
        else:
            start = int(b.first_sample) + self.offset
            if start < self.end and self._link_lost:
                # the device restarted its counter while we were away: place the block where
                # the host clock says it belongs
                elapsed = max(0.0, b.host_time - (self._last_host_time or b.host_time))
                new = max(self.end, self.end + int(round(elapsed * self.fs)) - n)
                self._log("rebase", sample=new, device_sample=int(b.first_sample),
                          approximate=True)
                self.offset += new - start
                start = new
        if start < self.flushed:                    # arrived after its chunk was written
            skip = self.flushed - start
            self.counters["late_samples"] += min(skip, n)
            if skip >= n:
                return
            counts, start, n = counts[:, skip:], start + skip, n - skip
        if start > self.end:
            self._gap(self.end, start, "link" if self._link_lost else "lost")
        elif start < self.end:
            self.counters["duplicate_samples"] += min(n, self.end - start)
        self._link_lost = False
        self._last_host_time = b.host_time
        if self.limit is not None:
            if start >= self.limit:
                self.end = max(self.end, self.limit)
                self._flush_ready()
                return
            if start + n > self.limit:
                counts, n = counts[:, :self.limit - start], self.limit - start
        while start + n > self.flushed + self.ring.capacity:
            self._flush_chunk()
        self.ring.write(start, counts)
        self.counters["samples"] += n
        self.end = max(self.end, start + n)
        self._flush_ready()

    def _flush_chunk(self, stop: int | None = None) -> None:
        a = self.flushed
        b = a + self.chunk if stop is None else stop
        self.store.write_chunk(a, self.ring.read(a, b))
        self.flushed = b

    def _flush_ready(self) -> None:
        while self.end - self.flushed >= self.chunk:
            self._flush_chunk()

    def recent(self, seconds: float) -> np.ndarray:
        """The last ``seconds`` of samples in mV (NaN where missing), for live views."""
        n = min(self.ring.capacity, int(round(seconds * self.fs)))
        return self.scale.to_mv(self.ring.read(max(0, self.end - n), self.end))

    # --- the end -----------------------------------------------------------------------------

    def finish(self, stats: dict[str, Any] | None = None) -> Recording:
        """Flush everything, close the journal and return the `Recording`."""
        if self._finished is not None:
            return self._finished
        end = self.end if self.limit is None else min(self.end, self.limit)
        while self.flushed < end:
            self._flush_chunk(min(self.flushed + self.chunk, end))
        self._log("finished", n_samples=end, counters=dict(self.counters),
                  stats=dict(stats or {}))
        self.store.close()
        self._finished = recording_from_parts(self.store.session, self.store.events,
                                              self.store.read(end))
        return self._finished


def _merge_gaps(gaps: list[tuple[int, int, str]]) -> list[list[Any]]:
    out: list[list[Any]] = []
    for a, b, reason in sorted(gaps):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
            if reason != out[-1][2]:
                out[-1][2] = "link" if "link" in (reason, out[-1][2]) else reason
        else:
            out.append([a, b, reason])
    return out


def summarize_events(events: list[dict[str, Any]], n_samples: int) -> dict[str, Any]:
    """The recording metadata the event journal implies (gaps, lead-off and pulse spans...).

    >>> ev = [{"kind": "lead_off", "sample": 5, "leads": ["V2"]},
    ...       {"kind": "gap", "start": 8, "stop": 9, "reason": "lost"},
    ...       {"kind": "lead_off", "sample": 7, "leads": []}]
    >>> s = summarize_events(ev, 10)
    >>> s["lead_off"], s["gaps"], s["gap_samples"]
    ({'V2': [[5, 7]]}, [[8, 9, 'lost']], 1)
    """
    gaps: list[tuple[int, int, str]] = []
    lead_off: dict[str, list[list[int]]] = {}
    open_off: dict[str, int] = {}
    cal: list[list[int]] = []
    cal_from: int | None = None
    errors, rebased, links = [], [], {"lost": 0, "restored": 0}
    battery = None
    final: dict[str, Any] = {}
    for e in events:
        kind = e.get("kind")
        if kind == "gap":
            a, b = int(e["start"]), min(int(e["stop"]), n_samples)
            if b > a:
                gaps.append((a, b, str(e.get("reason", "lost"))))
        elif kind == "lead_off":
            now, at = set(e.get("leads", [])), min(int(e["sample"]), n_samples)
            for lead in now - set(open_off):
                open_off[lead] = at
            for lead in set(open_off) - now:
                start = open_off.pop(lead)
                if at > start:
                    lead_off.setdefault(lead, []).append([start, at])
        elif kind == "cal_pulse":
            at = min(int(e["sample"]), n_samples)
            if e.get("on") and cal_from is None:
                cal_from = at
            elif not e.get("on") and cal_from is not None:
                if at > cal_from:
                    cal.append([cal_from, at])
                cal_from = None
        elif kind == "device_error":
            errors.append({k: e.get(k) for k in ("code", "text", "sample")})
        elif kind == "rebase":
            rebased.append(int(e["sample"]))
        elif kind == "link_lost":
            links["lost"] += 1
        elif kind == "link_restored":
            links["restored"] += 1
        elif kind == "battery":
            battery = {k: e.get(k) for k in ("percent", "millivolts", "charging")}
        elif kind == "finished":
            final = e
    for lead, start in open_off.items():
        if n_samples > start:
            lead_off.setdefault(lead, []).append([start, n_samples])
    if cal_from is not None and n_samples > cal_from:
        cal.append([cal_from, n_samples])
    merged = _merge_gaps(gaps)
    out: dict[str, Any] = {
        "gaps": merged, "gap_samples": int(sum(b - a for a, b, _ in merged)),
        "lead_off": {k: v for k, v in sorted(lead_off.items())}, "cal_pulse": cal,
        "link": links,
    }
    if errors:
        out["device_errors"] = errors
    if rebased:
        out["rebased"] = rebased
    if battery is not None:
        out["battery"] = battery
    if final:
        out["counters"] = final.get("counters", {})
        out["link_stats"] = final.get("stats", {})
    return out


def heart_rate_rows(events: list[dict[str, Any]], n_samples: int) -> list[dict[str, Any]]:
    """The device's heart-rate measurements in a journal, oldest first, up to sample
    ``n_samples``: ``sample`` (the recording's length when it arrived, i.e. the index of the
    next sample), ``host_time_s`` (arrival, the session's monotonic clock), ``hr_bpm``,
    ``rr_ms`` (the RR intervals it carried, oldest first) and sensor ``contact`` (None: unknown).

    >>> heart_rate_rows([{"kind": "heart_rate", "sample": 5, "host_time": 1.5, "bpm": 60,
    ...                   "rr_ms": [1000.0]}], 10)
    [{'sample': 5, 'host_time_s': 1.5, 'hr_bpm': 60, 'rr_ms': [1000.0], 'contact': None}]
    """
    return [{"sample": int(e["sample"]), "host_time_s": float(e.get("host_time", 0.0)),
             "hr_bpm": int(e["bpm"]), "rr_ms": [float(x) for x in e.get("rr_ms", [])],
             "contact": e.get("contact")}
            for e in events if e.get("kind") == "heart_rate" and int(e["sample"]) <= n_samples]


def recording_from_parts(session: dict[str, Any], events: list[dict[str, Any]],
                         counts: np.ndarray) -> Recording:
    """Build the `Recording` from a journal (``session.json``, events, counts)."""
    info = StreamInfo.from_dict(session["info"])
    scale = scale_from_dict(session["calibration"])
    n = counts.shape[1]
    meta = summarize_events(events, n)
    if not any(e.get("kind") == "finished" for e in events):
        meta["recovered"] = True
    hr = heart_rate_rows(events, n)
    if hr:
        meta["device_heart_rate"] = {"measurements": len(hr),
                                     "rr_intervals": sum(len(r["rr_ms"]) for r in hr)}
    limit = session.get("limit")
    meta.update({
        "device": {"model": info.model, "serial": info.serial, "firmware": info.firmware,
                   "driver": info.driver, "adc_bits": info.adc_bits, "lsb_nv": info.lsb_nv,
                   "electrodes": list(info.electrodes), **info.extra},
        "calibration": scale.describe(),
        "source_url": session.get("url", ""),
        "requested_samples": limit,
        "truncated": bool(limit is not None and n < limit),
    })
    start = session.get("start_time")
    return Recording(scale.to_mv(counts), fs=info.fs, leads=info.channels,
                     name=session.get("name", ""),
                     start_time=datetime.fromisoformat(start) if start else None,
                     device_id=info.device_id or None, calibration=scale.name, meta=meta)
