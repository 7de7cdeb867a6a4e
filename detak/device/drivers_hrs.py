r"""The Bluetooth Heart Rate Service (0x180D): Heart Rate Measurement notifications (0x2A37).

Layout (Bluetooth SIG; ../shared/docs/devices/01-polar-h10-pmd-and-hrs.md, "Heart Rate
Measurement 0x2A37"): a flags byte (bit 0: HR is uint16 LE instead of uint8; bit 1: sensor
contact detected, meaningful only if bit 2 "contact supported" is set; bit 3: energy expended
uint16 LE in kJ present; bit 4: RR intervals present), the heart rate, the optional energy, then
RR intervals to the end of the packet: uint16 LE in units of 1/1024 SECOND, oldest first.

HRS carries no ECG samples: `HrsDriver` emits `HeartRate` events (`detak.device.events`) only
(the Polar H10 driver decodes the same characteristic next to its ECG stream). Its `StreamInfo`
has no channels.

>>> m = parse_heart_rate(bytes([0x16, 72, 0x00, 0x04, 0x10, 0x04]))
>>> m.bpm, m.contact, m.rr_ms
(72, True, (1000.0, 1015.625))
>>> parse_heart_rate(b"\x01\x48")
Traceback (most recent call last):
...
ValueError: heart rate measurement 0148: flags say uint16 heart rate, 1 byte(s) follow
"""

from __future__ import annotations

import struct
from typing import Any

from detak.device.drivers import Driver, Link, register_driver
from detak.device.events import DeviceError, Event, HeartRate, StreamInfo

HRS_SERVICE = "0000180d-0000-1000-8000-00805f9b34fb"
HR_MEASUREMENT = "00002a37-0000-1000-8000-00805f9b34fb"


def parse_heart_rate(data: bytes, host_time: float = 0.0) -> HeartRate:
    """Decode one 0x2A37 value; `ValueError` (naming the bytes) when it is too short."""
    if len(data) < 2:
        raise ValueError(f"heart rate measurement {data.hex()}: needs at least 2 bytes")
    flags = data[0]
    pos = 1
    if flags & 0x01:
        if len(data) < 3:
            raise ValueError(f"heart rate measurement {data.hex()}: flags say uint16 heart "
                             f"rate, {len(data) - 1} byte(s) follow")
        bpm = struct.unpack_from("<H", data, pos)[0]
        pos += 2
    else:
        bpm = data[pos]
        pos += 1
    contact = bool(flags & 0x02) if flags & 0x04 else None
    energy = None
    if flags & 0x08:
        if len(data) < pos + 2:
            raise ValueError(f"heart rate measurement {data.hex()}: energy flag set but the "
                             "value is missing")
        energy = struct.unpack_from("<H", data, pos)[0]
        pos += 2
    rr: tuple[float, ...] = ()
    if flags & 0x10:
        rest = data[pos:]
        if len(rest) % 2:
            raise ValueError(f"heart rate measurement {data.hex()}: odd number of RR bytes")
        rr = tuple(v * 1000.0 / 1024.0 for (v,) in struct.iter_unpack("<H", rest))
    return HeartRate(bpm, contact, energy, rr, host_time)


@register_driver
class HrsDriver(Driver):
    """Any BLE heart-rate sensor: `HeartRate` events from 0x2A37 notifications (no ECG)."""

    name = "hrs"
    ble_notify = (HR_MEASUREMENT,)
    ble_write = None

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.info = StreamInfo(fs=1.0, channels=(), lsb_nv=1.0, model="BLE heart-rate sensor",
                               driver=self.name,
                               extra={"samples": False, "note": "heart rate and RR only"})
        self._counts = {"measurements": 0, "bad_measurements": 0}

    def feed(self, data: bytes, channel: str | None = None,
             host_time: float = 0.0) -> list[Event]:
        if channel is not None and channel.lower() != HR_MEASUREMENT:
            return []
        try:
            hr = parse_heart_rate(data, host_time)
        except ValueError as exc:
            self._counts["bad_measurements"] += 1
            return [DeviceError(0, str(exc))]
        self._counts["measurements"] += 1
        return [hr]

    def stats(self) -> dict[str, int]:
        return dict(self._counts)

    async def start(self, link: Link) -> StreamInfo:
        assert self.info is not None
        return self.info
