"""What drivers emit: device-neutral events that the `Recorder` and the CLI understand.

A driver turns the bytes of one device family into these; everything after the driver (the
session, the recorder, calibration) sees only them. Sample values stay raw integer counts here;
`StreamInfo` says how to scale them (``lsb_nv``), and calibration turns them into millivolts.

>>> info = StreamInfo(fs=500.0, channels=("I", "II"), lsb_nv=1000.0, model="x", serial="1")
>>> info.device_id, info.n_channels
('x:1', 2)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class StreamInfo:
    """A device's stream: sample rate, channel (lead) names, count size, identity.

    ``lsb_nv`` is nanovolts per count as the device declares it (before any calibration
    profile); ``electrodes`` are the names lead-off reports refer to.
    """

    fs: float
    channels: tuple[str, ...]
    lsb_nv: float
    model: str = ""
    serial: str = ""
    firmware: str = ""
    adc_bits: int = 0
    electrodes: tuple[str, ...] = ()
    driver: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_channels(self) -> int:
        return len(self.channels)

    @property
    def device_id(self) -> str:
        return f"{self.model}:{self.serial}" if self.serial else self.model

    def to_dict(self) -> dict[str, Any]:
        return {"fs": self.fs, "channels": list(self.channels), "lsb_nv": self.lsb_nv,
                "model": self.model, "serial": self.serial, "firmware": self.firmware,
                "adc_bits": self.adc_bits, "electrodes": list(self.electrodes),
                "driver": self.driver, "extra": dict(self.extra)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StreamInfo:
        return cls(fs=float(d["fs"]), channels=tuple(d["channels"]), lsb_nv=float(d["lsb_nv"]),
                   model=d.get("model", ""), serial=d.get("serial", ""),
                   firmware=d.get("firmware", ""), adc_bits=int(d.get("adc_bits", 0)),
                   electrodes=tuple(d.get("electrodes", ())), driver=d.get("driver", ""),
                   extra=dict(d.get("extra", {})))


@dataclass(frozen=True, eq=False)
class SampleBlock:
    """Consecutive samples: ``counts`` int32 (channels, n). ``first_sample`` is the index of the
    first one since the stream started (None if the device has no counter: the recorder then
    appends the block right after the previous one). ``device_time_us``: the device clock at
    the first sample, if it sends one; ``host_time``: when the bytes arrived (monotonic s)."""

    counts: np.ndarray
    first_sample: int | None = None
    device_time_us: int | None = None
    host_time: float = 0.0

    @property
    def n_samples(self) -> int:
        return int(self.counts.shape[1])


@dataclass(frozen=True)
class LeadOffChange:
    """From ``sample`` on, exactly the leads in ``leads_off`` are spoilt by an electrode off
    (``electrodes_off`` names the electrodes, as the device reported them)."""

    sample: int | None
    leads_off: frozenset[str]
    electrodes_off: tuple[str, ...] = ()


@dataclass(frozen=True)
class CalPulseChange:
    """The device's 1 mV calibration pulse is ``on`` from ``sample`` on."""

    sample: int | None
    on: bool


@dataclass(frozen=True)
class BatteryStatus:
    percent: int | None
    millivolts: int | None = None
    charging: bool = False


@dataclass(frozen=True)
class DeviceError:
    """The device reported a problem (``code`` as the device numbers it, ``text`` human)."""

    code: int
    text: str
    sample: int | None = None


@dataclass(frozen=True)
class StreamEnded:
    """The device stopped streaming; it had produced samples up to ``next_sample`` - 1
    (None if unknown). ``reason`` is a short word: stopped, end_of_source, battery, error."""

    next_sample: int | None
    reason: str


@dataclass(frozen=True)
class HeartRate:
    """A heart rate the device computed (BLE Heart Rate Service, PC-80B, OpenView): ``bpm``,
    sensor ``contact`` (None when the sensor cannot tell), ``energy_kj`` if sent, the RR
    intervals it covers in ms (oldest first) and the arrival ``host_time`` (monotonic s)."""

    bpm: int
    contact: bool | None = None
    energy_kj: int | None = None
    rr_ms: tuple[float, ...] = ()
    host_time: float = 0.0


@dataclass(frozen=True)
class Reply:
    """A device's answer to a host command (ACK when ``ok``, else NACK with ``reason``)."""

    seq: int
    command: int
    ok: bool
    reason: int = 0
    text: str = ""


@dataclass(frozen=True)
class LinkLost:
    """The transport failed (port vanished, BLE dropped); emitted by the session."""

    host_time: float
    error: str


@dataclass(frozen=True)
class LinkRestored:
    """The session reconnected and restarted the stream after a `LinkLost`."""

    host_time: float
    attempts: int


Event = (StreamInfo | SampleBlock | LeadOffChange | CalPulseChange | BatteryStatus
         | DeviceError | StreamEnded | HeartRate | Reply | LinkLost | LinkRestored)
