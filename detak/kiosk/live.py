"""Recording jobs of the kiosk app: 10 s from a device through the Recorder in a thread, the
live trace kept for the browser (server-sent events), then the one screening pipeline.

A job holds no resident data: only the resident's store id, the device URL and the samples.

>>> job = RecordingJob("emu://ptbxl/1", resident_id=1, lang="en")
>>> job.state, job.trace_since(0)["samples"]
('starting', [])
"""

from __future__ import annotations

import tempfile
import threading
import time
import uuid
from typing import Any

import numpy as np

from detak.data.recording import Recording

TRACE_HZ = 50.0          # samples per second sent to the browser
TRACE_LEAD = "II"


class Cancelled(Exception):
    """The nurse pressed cancel."""


class RecordingJob:
    """One 10-s recording and its screening (see the module docstring)."""

    def __init__(self, device: str, *, resident_id: int, lang: str, sex: str | None = None,
                 seconds: float | None = None, dev_index: int = 0) -> None:
        from detak.kiosk.acquire import RECORD_SECONDS

        self.id = uuid.uuid4().hex
        self.device = device
        self.dev_index = dev_index       # which of the app's devices (for "record again")
        self.battery: int | None = None  # percent, when the device reports it
        self.connected = False
        self.resident_id = resident_id
        self.lang = lang
        self.sex = sex
        self.seconds = float(seconds or RECORD_SECONDS)
        self.state = "starting"          # starting, recording, screening, done, failed, cancelled
        self.error: str | None = None
        self.leads_off: list[str] = []
        self.electrodes_off_seen: set[str] = set()   # every electrode reported off
        self.progress = 0.0
        self.screening: dict[str, Any] | None = None
        self.recording: Recording | None = None
        self.saved_id: str | None = None
        self.created = time.time()
        self._trace: list[float] = []
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._lead_index: int | None = None
        self._decim = 1
        self._phase = 0

    # ---------------------------------------------------------------- browser side
    def trace_since(self, cursor: int) -> dict[str, Any]:
        """New trace samples (mV, `TRACE_HZ`) from ``cursor`` and the job's status."""
        with self._lock:
            samples = self._trace[cursor:]
            return {"cursor": cursor + len(samples), "samples": samples, "state": self.state,
                    "progress": round(self.progress, 3), "leads_off": list(self.leads_off),
                    "hz": TRACE_HZ, "error": self.error, "battery": self.battery,
                    "connected": self.connected}

    def cancel(self) -> None:
        self._cancel.set()

    # ---------------------------------------------------------------- recorder side
    def _on_event(self, rec: Any, event: Any) -> None:
        from detak.device.events import (
            BatteryStatus,
            LeadOffChange,
            LinkLost,
            LinkRestored,
            SampleBlock,
        )

        if self._cancel.is_set():
            raise Cancelled()
        if isinstance(event, BatteryStatus) and event.percent is not None:
            self.battery = int(event.percent)
        elif isinstance(event, LinkLost):
            self.connected = False
        elif isinstance(event, LinkRestored):
            self.connected = True
        elif isinstance(event, LeadOffChange):
            with self._lock:
                self.leads_off = sorted(set(event.electrodes_off) or set(event.leads_off))
                self.electrodes_off_seen.update(event.electrodes_off)
        elif isinstance(event, SampleBlock):
            self.connected = True
            info = rec.info
            if self._lead_index is None:
                chans = list(info.channels)
                self._lead_index = chans.index(TRACE_LEAD) if TRACE_LEAD in chans else 0
                self._decim = max(1, int(round(info.fs / TRACE_HZ)))
            counts = np.asarray(event.counts)
            col = counts[self._lead_index] if counts.ndim == 2 else counts
            mv = col.astype(float) * info.lsb_nv * 1e-6
            take = mv[(-self._phase) % self._decim::self._decim]
            self._phase = (self._phase + len(mv)) % self._decim
            with self._lock:
                self._trace.extend(round(float(v), 3) for v in take)
                self.progress = min(1.0, rec.end / max(1, rec.limit or 1))

    def run(self) -> None:
        """Record, then screen (in the calling thread); the outcome is in ``state``."""
        from detak.kiosk.acquire import record_device
        from detak.kiosk.screening import screen

        try:
            with tempfile.TemporaryDirectory(prefix="detak-kiosk-") as work:
                self.state = "recording"
                rec, device = record_device(self.device, work, self.seconds,
                                            on_event=self._on_event)
            self.state = "screening"
            self.progress = 1.0
            s = screen(rec, lang=self.lang, resident_id=str(self.resident_id), device=device,
                       source=self.device, sex=self.sex)
            self.recording, self.screening = rec, s.to_dict()
            self.state = "done"
        except Cancelled:
            self.state = "cancelled"
        except Exception as exc:  # noqa: BLE001 - shown to the nurse in plain words
            self.error = f"{type(exc).__name__}: {exc}"
            self.state = "failed"

    def start(self) -> RecordingJob:
        threading.Thread(target=self.run, name=f"record-{self.id[:8]}", daemon=True).start()
        return self
