"""Record N seconds from a device URL into a WFDB record; rebuild one after a crash.

`arecord` (async) / `record` (sync): open the device, start it, feed every event to a
`Recorder` journaling into ``<out>/<name>.parts/`` until ``seconds`` x fs samples are covered
(received or known lost) — N seconds of ECG whatever the emulator's speed — then stop, write
``<out>/<name>.hea/.dat`` (millivolts, device metadata and gaps in the header) and remove the
parts folder. A live stream that goes silent for ``idle_timeout`` s is treated as a lost link
(the session reconnects). For ``emu://`` URLs the emulator's fault log is written next to the
record as ``<name>.emulator.json`` (what ``detak record`` promised to inject and where).

With ``saved_profile=True`` (what ``detak record`` does unless given ``--profile`` or
``--no-profile``) and no ``calibration``, the profile ``detak calibrate`` saved for the connected
device (by model and serial, `detak.calibration.profile.find_profile_path`) is applied, and
stderr says which file.

`recover` turns the parts folder(s) a crash left into WFDB records. Both end in
`write_record`: the device profile recorded in the journal (lead map, derived leads, clock
correction) is applied the same way to a finished recording and to a recovered one, and the
heart rates the device sent, if any, are written beside the record as ``<name>.hr.csv``
(`detak.device.hr_file`; the header's ``device_heart_rate`` names the file).

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as d:
...     path = record("emu://ptbxl/1?speed=0", 2.0, d, name="demo")
...     from detak.data.wfdb_io import read_wfdb
...     rec = read_wfdb(path)
>>> path.name, rec.signal.shape, rec.meta["gaps"]
('demo.hea', (12, 200), [])
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from detak.data.recording import Recording
from detak.device.chunks import PartsError, load_parts
from detak.device.events import SampleBlock, StreamEnded, StreamInfo
from detak.device.recorder import Recorder, heart_rate_rows, recording_from_parts
from detak.device.scaling import Calibration
from detak.device.session import open_device

IDLE_TIMEOUT_S = 5.0


def default_name(model: str, serial: str, when: datetime) -> str:
    """``model-serial-YYYYmmddTHHMMSS`` with anything WFDB dislikes replaced by ``-``.

    >>> default_name("detak emu", "ptbxl:1", datetime(2025, 1, 2, 3, 4, 5))
    'detak-emu-ptbxl-1-20250102T030405'
    """
    raw = "-".join(x for x in (model, serial, when.strftime("%Y%m%dT%H%M%S")) if x)
    return re.sub(r"[^-\w]+", "-", raw).strip("-") or "record"


def saved_profile_for(info: StreamInfo, directory: str | Path | None = None) -> Any:
    """The `DeviceProfile` saved for the device ``info`` describes (None if there is none),
    checked against it; a file that cannot be used is a `ProfileError` naming it and the way out
    (``--no-profile``). Tells stderr which file is used.

    >>> import tempfile
    >>> info = StreamInfo(fs=500.0, channels=("I",), lsb_nv=1000.0, model="m", serial="7")
    >>> with tempfile.TemporaryDirectory() as d:
    ...     saved_profile_for(info, d) is None
    True
    """
    from detak.calibration.profile import ProfileError, find_profile_path, load_profile

    path = find_profile_path(info, directory)
    if path is None:
        return None
    try:
        profile = load_profile(path)
        profile.check_device(info)
    except ProfileError as exc:
        raise ProfileError(f"the saved calibration profile {path} cannot be used: {exc} (fix "
                           "or remove it, or record raw with --no-profile)") from None
    print(f"detak record: using the saved calibration profile {path} for "
          f"{info.device_id or 'the device'} (--no-profile records raw)", file=sys.stderr)
    return profile


async def arecord(url: str, seconds: float, out_dir: str | Path, *, name: str | None = None,
                  chunk_seconds: float = 1.0, keep_parts: bool = False,
                  calibration: Calibration | None = None, saved_profile: bool = False,
                  profiles_dir: str | Path | None = None,
                  idle_timeout: float = IDLE_TIMEOUT_S, capture: str | Path | None = None,
                  on_event: Callable[[Recorder, Any], None] | None = None) -> Path:
    """Record ``seconds`` of ECG from ``url``; returns the WFDB header path. ``calibration``:
    a profile (or any `Calibration`); else, with ``saved_profile``, the device's saved profile
    from ``profiles_dir`` (default: $DETAK_PROFILES or ~/.config/detak/profiles)."""
    if not seconds > 0:
        raise ValueError(f"record length must be > 0 seconds, got {seconds}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dev = open_device(url)
    cap_fh = open(capture, "wb") if capture else None  # noqa: SIM115 - closed below
    dev.transport.capture = cap_fh
    rec: Recorder | None = None
    try:
        await dev.connect()
        info = await dev.start()
        if calibration is None and saved_profile:
            calibration = saved_profile_for(info, profiles_dir)
        started = datetime.now(UTC)
        name = name or default_name(info.model, info.serial, started.astimezone())
        rec = Recorder(info, out / f"{name}.parts", limit=int(round(seconds * info.fs)),
                       chunk_seconds=chunk_seconds, calibration=calibration, name=name,
                       url=url, start_time=started)
        last_data = time.monotonic()
        while not rec.done:
            event = await dev.next_event(timeout=0.25)
            if event is None:
                if dev.ended is not None:
                    break
                if time.monotonic() - last_data > idle_timeout and dev.interactive:
                    await dev.drop_link()
                    last_data = time.monotonic()
                continue
            if isinstance(event, SampleBlock):
                last_data = time.monotonic()
            rec.add(event)
            if on_event is not None:
                on_event(rec, event)
            if isinstance(event, StreamEnded):
                break
        await dev.stop()
    finally:
        await dev.close()
        if cap_fh is not None:
            cap_fh.close()
    recording, path = write_record(rec.finish(stats=dev.driver.stats()), rec.store.session,
                                   rec.store.events, out / name)
    emulator = getattr(dev.transport, "device", None)
    if emulator is not None and hasattr(emulator, "lost_spans"):
        (out / f"{name}.emulator.json").write_text(json.dumps(
            {"url": url, "faults": emulator.log,
             "lost_spans": [list(s) for s in emulator.lost_spans()]}, indent=1))
    if not keep_parts and rec.store.directory is not None:
        shutil.rmtree(rec.store.directory, ignore_errors=True)
    if recording.meta.get("truncated"):
        print(f"detak record: the stream ended after {recording.n_samples} of "
              f"{rec.limit} samples ({dev.ended or rec.ended or 'stopped'})", file=sys.stderr)
    return path


def record(url: str, seconds: float, out_dir: str | Path, **kwargs: Any) -> Path:
    """Synchronous `arecord`."""
    return asyncio.run(arecord(url, seconds, out_dir, **kwargs))


def apply_journal_profile(recording: Recording, session: dict[str, Any]) -> Recording:
    """``recording`` (counts already scaled by the journal's calibration) with the device
    profile the journal's ``session`` names applied: lead map, derived leads and clock
    correction. Without a profile it is returned as is.

    >>> import numpy as np
    >>> from detak.calibration.profile import DeviceProfile
    >>> p = DeviceProfile(lead_map={"CH1": "I", "CH2": "II"}, derive="12-lead", name="p")
    >>> rec = Recording(np.zeros((2, 10), np.float32), fs=100.0, leads=["CH1", "CH2"])
    >>> apply_journal_profile(rec, {"profile": p.to_journal()}).leads[:3]
    ('I', 'II', 'III')
    >>> apply_journal_profile(rec, {"profile": None}) is rec
    True
    """
    entry = session.get("profile")
    if entry is None:
        return recording
    from detak.calibration.profile import DeviceProfile

    return DeviceProfile.from_journal(entry).apply(recording)


def write_record(recording: Recording, session: dict[str, Any], events: list[dict[str, Any]],
                 base: Path) -> tuple[Recording, Path]:
    """Write a journal's recording as ``base.hea/.dat`` (and ``base.hr.csv`` if the device
    sent heart rates): the one way `arecord` and `recover` finish. Returns the recording as
    written and its header path.
    """
    from detak.data.wfdb_io import write_wfdb
    from detak.device.hr_file import SUFFIX, index_factor, write_heart_rates

    rec = apply_journal_profile(recording, session)
    rows = heart_rate_rows(events, recording.n_samples)
    if rows:
        hr_path = write_heart_rates(rows, base.with_name(base.name + SUFFIX),
                                    index_factor(rec), rec.n_samples)
        rec = rec.replace(meta={**rec.meta, "device_heart_rate": {
            **rec.meta.get("device_heart_rate", {}), "file": hr_path.name}})
    return rec, write_wfdb(rec, base)


def find_parts(directory: str | Path) -> list[Path]:
    """Parts folders in ``directory`` (or ``directory`` itself if it is one)."""
    d = Path(directory)
    if (d / "session.json").is_file():
        return [d]
    if not d.is_dir():
        raise FileNotFoundError(f"{d} does not exist")
    return sorted(p for p in d.glob("*.parts") if (p / "session.json").is_file())


def recover(directory: str | Path, out_dir: str | Path | None = None) -> list[Path]:
    """Rebuild a WFDB record from each parts folder under ``directory`` (crash recovery).

    Records are written beside the parts folders (or into ``out_dir``); the parts are kept.
    Raises `PartsError` when there is nothing to recover.
    """
    from detak.calibration.profile import ProfileError

    parts = find_parts(directory)
    if not parts:
        raise PartsError(f"no recording parts (*.parts/session.json) in {directory}")
    paths = []
    for p in parts:
        session, events, counts = load_parts(p)
        if counts.shape[1] == 0:
            raise PartsError(f"{p}: no complete chunk was written before the crash; nothing "
                             "to recover")
        name = session.get("name") or p.name.removesuffix(".parts")
        target = Path(out_dir) if out_dir is not None else p.parent
        try:
            _, path = write_record(recording_from_parts(session, events, counts), session,
                                   events, target / name)
        except ProfileError as exc:
            raise PartsError(f"{p}: the calibration profile in {p / 'session.json'}: {exc}"
                             ) from None
        paths.append(path)
    return paths
