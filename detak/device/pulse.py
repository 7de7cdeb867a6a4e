"""The 1 mV pulse procedure: drive a device's calibration pulse, measure each channel's gain
and offset, write the device profile.

`calibrate` runs it against a device URL: start the stream, switch the pulse on, let it settle,
take ``seconds`` of pulse, switch it off, stop; meanwhile it verifies the sample rate against
the host clock (`detak.calibration.rate`) when the stream is paced in real time. The levels,
gain and offset come from the pure arithmetic of `detak.calibration.pulse_levels.measure_pulse`.
It returns a `DeviceProfile` ready to save (example: `calibrate`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from detak.calibration.profile import ChannelCalibration, DeviceProfile
from detak.calibration.pulse_levels import ChannelPulse, measure_pulse
from detak.calibration.rate import DEFAULT_THRESHOLD_PPM, DriftEstimate, RateMonitor

MAX_RATE_PPM = 20000.0         # a larger "drift" is a replay or a wrong fs, not a clock error


class CalibrationError(RuntimeError):
    """The procedure could not measure what it needs; the message says what and why."""


@dataclass
class CalibrationResult:
    """What `calibrate` measured and the profile it implies."""

    profile: DeviceProfile
    pulses: list[ChannelPulse]
    drift: DriftEstimate | None
    rate_note: str
    info: Any
    samples: int
    extra: dict[str, Any] = field(default_factory=dict)


def _speed_of(device: Any) -> float | None:
    """An emulator's replay speed (None for real links)."""
    cfg = getattr(device.transport, "config", None)
    return getattr(cfg, "speed", None)


async def calibrate(url: str, seconds: float = 4.0, *, settle: float = 0.5,
                    external: bool = False, pulse_mv: float = 1.0, measure_rate: bool = True,
                    lead_map: Mapping[str, str] | None = None, derive: str = "none",
                    resample_above_ppm: float = DEFAULT_THRESHOLD_PPM,
                    timeout: float | None = None) -> CalibrationResult:
    """Run the pulse procedure on ``url`` (see the module docstring).

    >>> import asyncio
    >>> r = asyncio.run(calibrate("emu://ptbxl/1?speed=0&loop=1&gain=1.25&offset=-40", 2.0))
    >>> round(r.profile.channels["V1"].gain * 1.25, 6), r.profile.channels["V1"].offset
    (1.0, -40.0)
    """
    from detak.device.drivers import DeviceCommandError
    from detak.device.events import CalPulseChange, SampleBlock, StreamEnded
    from detak.device.session import open_device
    from detak.device.transports import TransportClosed

    if not seconds > 0 or not settle >= 0 or not pulse_mv > 0:
        raise ValueError(f"seconds ({seconds}), settle ({settle}) and pulse_mv ({pulse_mv}) "
                         "must be positive")
    dev = open_device(url)
    speed = None
    try:
        await dev.connect()
        speed = _speed_of(dev)
        info = await dev.start()
        if not info.channels:
            raise CalibrationError(f"{url}: the device streams no ECG channels "
                                   f"({info.model or info.driver})")
        fs = info.fs
        monitor = RateMonitor(fs)
        pulse_at: int | None = 0 if external else None
        if not external:
            try:
                await dev.set_cal_pulse(True)
            except DeviceCommandError as exc:
                raise CalibrationError(
                    f"{url}: {exc}. Connect a 1 mV square-wave calibrator to the inputs and "
                    "run again with --external-pulse") from None
        need = int(round(seconds * fs))
        skip = int(round(settle * fs))
        data = np.full((info.n_channels, need), np.nan)
        next_index = 0
        limit = timeout if timeout is not None else 20.0 + 3 * (seconds + settle)
        deadline = time.monotonic() + limit
        while pulse_at is None or next_index < pulse_at + skip + need:
            if time.monotonic() > deadline:
                got = int(np.isfinite(data[0]).sum())
                why = ("the device never reported its calibration pulse on"
                       if pulse_at is None else f"only {got} of {need} pulse samples arrived")
                raise CalibrationError(f"{url}: {why} within {limit:g} s")
            event = await dev.next_event(timeout=0.25)
            if event is None:
                if dev.ended is not None:
                    raise CalibrationError(f"{url}: the stream ended ({dev.ended}) before "
                                           f"{need} pulse samples arrived")
                continue
            if isinstance(event, StreamEnded):
                got = 0 if pulse_at is None else max(0, next_index - pulse_at - skip)
                raise CalibrationError(
                    f"{url}: the device ended its stream ({event.reason}) after {next_index} "
                    + ("samples, before its calibration pulse came on" if pulse_at is None else
                       f"samples, with {min(got, need)} of the {need} pulse samples needed"))
            if isinstance(event, CalPulseChange):
                if event.on:
                    pulse_at = event.sample if event.sample is not None else next_index
                elif pulse_at is not None and not external:
                    raise CalibrationError(f"{url}: the device switched its pulse off during "
                                           "the measurement")
            if not isinstance(event, SampleBlock):
                continue
            monitor.add(event)
            first = next_index if event.first_sample is None else int(event.first_sample)
            next_index = max(next_index, first + event.n_samples)
            if pulse_at is None:
                continue
            a = pulse_at + skip
            lo, hi = max(first, a), min(first + event.n_samples, a + need)
            if hi > lo:
                data[:, lo - a:hi - a] = event.counts[:, lo - first:hi - first]
        if not external:
            with contextlib.suppress(DeviceCommandError, TransportClosed):
                await dev.set_cal_pulse(False)
        await dev.stop()
    finally:
        await dev.close()
    received = float(np.isfinite(data).all(axis=0).mean())
    if received < 0.5:
        raise CalibrationError(f"{url}: only {received:.0%} of the pulse samples arrived "
                               "(lost frames?); run again")
    pulses = measure_pulse(data, info.lsb_nv, info.channels, pulse_mv)
    bad = [p for p in pulses if not p.ok]
    if bad:
        raise CalibrationError(f"{url}: no usable 1 mV pulse on "
                               + "; ".join(f"{p.channel}: {p.problem}" for p in bad))
    drift, note = None, ""
    if not measure_rate:
        note = "not measured (--no-rate)"
    elif speed is not None and speed != 1:
        note = f"not measured: the emulator replays at speed {speed:g}, not in real time"
    elif not dev.interactive:
        note = "not measured: a replayed capture has no real-time clock"
    else:
        try:
            drift = monitor.estimate()
        except ValueError as exc:
            note = f"not measured: {exc}"
        else:
            if abs(drift.ppm) > MAX_RATE_PPM:
                note = (f"measured {drift.ppm:+.0f} ppm, too large for a clock error (a replay, "
                        "or a wrong declared sample rate?); not written to the profile")
                drift = None
            else:
                note = (f"{drift.ppm:+.0f} ppm (95 % {drift.low_ppm:+.0f}..{drift.high_ppm:+.0f})"
                        f" over {drift.seconds:.1f} s")
    mapped = [(lead_map or {}).get(c, c) for c in info.channels]
    if derive == "12-lead" and not {"I", "II"} <= set(mapped):
        raise CalibrationError(f"{url}: deriving the 12 leads needs channels mapped to I and "
                               f"II; the channels would be {', '.join(mapped)} "
                               "(give a lead map, e.g. --lead-map CH1=I,CH2=II,...)")
    profile = DeviceProfile(
        model=info.model, serial=info.serial, driver=info.driver or dev.driver.name,
        channels={p.channel: ChannelCalibration(gain=p.gain, offset=p.low, lsb_nv=p.lsb_nv)
                  for p in pulses},
        nominal_hz=fs, drift_ppm=drift.ppm if drift is not None else 0.0,
        resample_above_ppm=resample_above_ppm, lead_map=dict(lead_map or {}), derive=derive,
        method="external 1 mV pulse" if external else "1 mV pulse",
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        notes={"url": url, "pulse_mv": pulse_mv, "pulse_seconds": seconds,
               "sample_rate_check": note,
               **({"drift": drift.to_dict()} if drift is not None else {})})
    profile.check_device(info)                  # the lead map names real channels
    return CalibrationResult(profile, pulses, drift, note, info, need)
