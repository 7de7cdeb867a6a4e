"""``detak replay``: a live terminal view of a device stream (rate, quality, gaps).

One status line per ``interval`` (rewritten in place on a terminal)::

    t   4.0 s | 500.0 Hz (x1.00) | frames 200 | gaps 2 (0.04 s) | bad frames 3 | off: V2 | ok

"t" is signal time (samples / fs); the rate is samples per wall-clock second (x speed of
an emulator); quality is `detak.signal.quality.assess_quality` (without neurokit, to stay
light) on the last 5 s, refreshed every 2 s.

>>> line = status_line(4.0, 500.0, 500.0, 200, 2, 0.04, 3, ["V2"], "ok")
>>> line.split(" | ")[1]
'500.0 Hz (x1.00)'
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

QUALITY_EVERY_S = 2.0
QUALITY_WINDOW_S = 5.0


def status_line(t: float, rate: float, fs: float, frames: int, gaps: int, gap_s: float,
                bad: int, leads_off: Sequence[str], quality: str) -> str:
    off = ", ".join(leads_off) if leads_off else "-"
    return (f"t {t:5.1f} s | {rate:.1f} Hz (x{rate / fs:.2f}) | frames {frames} | gaps {gaps} "
            f"({gap_s:.2f} s) | bad frames {bad} | off: {off} | {quality}")


def _quality(rec: Any) -> str:
    from detak.data.recording import Recording
    from detak.signal.quality import assess_quality

    x = rec.recent(QUALITY_WINDOW_S)
    if x.shape[1] < rec.fs * 2:
        return "quality: (waiting)"
    try:
        q = assess_quality(Recording(x, rec.fs, list(rec.info.channels)), neurokit=False)
    except Exception as exc:  # noqa: BLE001 - a live view must keep running
        return f"quality: n/a ({type(exc).__name__})"
    return f"quality: {q.verdict}"


async def replay(url: str, seconds: float | None = None, interval: float = 0.5,
                 out: Any = None) -> int:
    """Stream ``url`` and print status lines until ``seconds`` of signal or the stream ends."""
    from detak.device.events import LeadOffChange, SampleBlock, StreamEnded
    from detak.device.recorder import Recorder
    from detak.device.session import open_device

    out = out or sys.stdout
    tty = hasattr(out, "isatty") and out.isatty()
    dev = open_device(url)
    await dev.connect()
    try:
        info = await dev.start()
        limit = None if seconds is None else int(round(seconds * info.fs))
        rec = Recorder(info, None, limit=limit, chunk_seconds=1.0,
                       ring_seconds=QUALITY_WINDOW_S + 1)
        print(f"{info.model} {info.serial} firmware {info.firmware}: {info.n_channels} "
              f"channels {', '.join(info.channels)} at {info.fs:g} Hz, LSB {info.lsb_nv:g} nV",
              file=out, flush=True)
        t_wall = last_print = last_q = time.monotonic()
        last_end, quality = 0, "quality: (waiting)"
        current_off: set[str] = set()
        seen_off: set[str] = set()            # leads off at any time since the last line
        line = ""
        while not rec.done:
            event = await dev.next_event(timeout=interval)
            if event is None and dev.ended is not None:
                break
            if event is not None:
                rec.add(event)
                if isinstance(event, LeadOffChange):
                    seen_off |= set(event.leads_off)
                    current_off = set(event.leads_off)
                if isinstance(event, StreamEnded):
                    break
                if not isinstance(event, SampleBlock):
                    continue
            now = time.monotonic()
            if now - last_q >= QUALITY_EVERY_S:
                quality, last_q = _quality(rec), now
            if now - last_print >= interval:
                rate = (rec.end - last_end) / (now - last_print)
                last_end, last_print = rec.end, now
                line = _line(rec, dev, rate, sorted(seen_off), quality)
                seen_off = set(current_off)
                print(("\r" + line) if tty else line, end="" if tty else "\n", file=out,
                      flush=True)
        await dev.stop()
        elapsed = max(1e-9, time.monotonic() - t_wall)
        line = _line(rec, dev, rec.end / elapsed, sorted(seen_off), quality)
        print(("\r" if tty else "") + line, file=out, flush=True)
        rec.finish(stats=dev.driver.stats())
    finally:
        await dev.close()
    return 0


def _line(rec: Any, dev: Any, rate: float, off: list[str], quality: str) -> str:
    from detak.device.recorder import summarize_events

    s = summarize_events(rec.store.events, rec.end)
    st = dev.driver.stats()
    bad = sum(st.get(k, 0) for k in ("crc_errors", "cobs_errors", "short_frames",
                                      "oversize_frames"))
    return status_line(rec.end / rec.fs, rate, rec.fs, rec.counters["blocks"], len(s["gaps"]),
                       s["gap_samples"] / rec.fs, bad, off, quality)
