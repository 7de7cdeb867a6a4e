r"""Polar H10 chest strap: the PMD ECG stream (130 Hz, µV, one lead) plus its Heart Rate Service.

Byte layouts from ../shared/docs/devices/01-polar-h10-pmd-and-hrs.md (all little-endian):

* control point FB005C81 (write with response, notify): host commands
  ``[op][measurement type][settings TLVs]``; start ECG at 130 Hz, 14-bit is
  ``02 00 00 01 82 00 01 01 0E 00`` (`START_ECG`), stop ``03 00``. Responses are notifications
  ``F0 [op] [type] [status] [more] [parameters]`` (status 0 = success; `PMD_STATUS` names the
  others).
* data FB005C82 (notify): ``[type][u64 timestamp ns since 2000-01-01, of the LAST sample]
  [frame type]`` then samples; ECG frame type 0 = signed 24-bit LE microvolts, ``(len-10)/3``
  of them. Compressed frames (bit 7 of the frame type) and other frame types are not decoded:
  they are counted and reported once as a `DeviceError`.
* Heart Rate Measurement 0x2A37 is decoded by `detak.device.drivers_hrs`.

The PMD stream has no sample counter: lost notifications are found from the timestamps. A
frame whose timestamp is more than 10 % (and more than one sample) later than its own samples
explain leaves a gap of the missing samples (``first_sample`` jumps); the sample rate used is
the nominal 130 Hz.

>>> drv = PolarH10Driver()
>>> ev = drv.feed(bytes.fromhex("f0020000 00".replace(" ", "")), PMD_CP)
>>> ev[0].ok, ev[0].command
(True, 2)
>>> frame = bytes([0]) + (10**9).to_bytes(8, "little") + bytes([0]) + bytes.fromhex("e80300 18fcff")
>>> blk = drv.feed(frame, PMD_DATA, host_time=1.0)[0]
>>> blk.counts.tolist(), blk.first_sample
([[1000, -1000]], 0)
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import numpy as np

from detak.device.drivers import DeviceCommandError, Driver, Link, register_driver
from detak.device.drivers_hrs import HR_MEASUREMENT, parse_heart_rate
from detak.device.events import DeviceError, Event, Reply, SampleBlock, StreamInfo

PMD_SERVICE = "fb005c80-02e7-f387-1cad-8acd2d8df0c8"
PMD_CP = "fb005c81-02e7-f387-1cad-8acd2d8df0c8"
PMD_DATA = "fb005c82-02e7-f387-1cad-8acd2d8df0c8"

FS_HZ = 130.0
ECG = 0x00
OP_GET_SETTINGS, OP_START, OP_STOP = 0x01, 0x02, 0x03
START_ECG = bytes.fromhex("02 00 00 01 82 00 01 01 0E 00")
STOP_ECG = bytes.fromhex("03 00")
#: 2000-01-01T00:00:00Z in Unix nanoseconds (Polar's epoch)
POLAR_EPOCH_UNIX_NS = 946_684_800_000_000_000
PMD_STATUS = {0: "SUCCESS", 1: "INVALID_OP_CODE", 2: "INVALID_MEASUREMENT_TYPE",
              3: "NOT_SUPPORTED", 4: "INVALID_LENGTH", 5: "INVALID_PARAMETER",
              6: "ALREADY_IN_STATE", 7: "INVALID_RESOLUTION", 8: "INVALID_SAMPLE_RATE",
              9: "INVALID_RANGE", 10: "INVALID_MTU", 11: "INVALID_NUMBER_OF_CHANNELS",
              12: "INVALID_STATE", 13: "DEVICE_IN_CHARGER", 14: "DISK_FULL"}


def decode_ecg_frame(data: bytes) -> tuple[int, np.ndarray]:
    r"""``(timestamp_ns of the last sample, int32 µV samples)`` of an ECG frame type 0.

    `ValueError` names what is wrong (not ECG, compressed, another frame type, bad length).

    >>> decode_ecg_frame(bytes(10) + b"\x01\x00\x80")[1].tolist()
    [-8388607]
    """
    if len(data) < 10:
        raise ValueError(f"PMD data frame of {len(data)} bytes: the header alone is 10")
    mtype = data[0] & 0x3F
    if mtype != ECG:
        raise ValueError(f"PMD data frame of measurement type {mtype}, not ECG (0)")
    ftype = data[9]
    if ftype & 0x80:
        raise ValueError(f"compressed PMD ECG frame (frame type 0x{ftype:02x}) not supported")
    if ftype != 0:
        raise ValueError(f"PMD ECG frame type {ftype} not supported (the H10 sends type 0)")
    body = data[10:]
    if len(body) % 3:
        raise ValueError(f"PMD ECG frame: {len(body)} sample bytes is not a multiple of 3")
    ts = struct.unpack_from("<Q", data, 1)[0]
    raw = np.frombuffer(body, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
    values = raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)
    values = np.where(values >= 1 << 23, values - (1 << 24), values).astype(np.int32)
    return ts, values


@register_driver
class PolarH10Driver(Driver):
    """Polar H10 ECG (PMD) and heart rate over BLE; see the module docstring.

    Options: ``lead`` (channel name, default ``ECG``: the strap's chest lead is not one of the
    12 standard leads; a calibration profile may map it).
    """

    name = "polar-h10"
    ble_notify = (PMD_CP, PMD_DATA, HR_MEASUREMENT)
    ble_write = PMD_CP
    url_options = ("lead",)
    command_timeout = 10.0

    def __init__(self, lead: str = "ECG", **options: Any) -> None:
        super().__init__(**options)
        self.lead = lead
        self._next = 0
        self._last_ts: int | None = None
        self._cp_pending: bytearray | None = None
        self._reported: set[str] = set()
        self._counts = {"frames": 0, "samples": 0, "lost_samples": 0, "bad_frames": 0,
                        "hr_measurements": 0, "cp_events": 0}

    def stream_info(self) -> StreamInfo:
        return StreamInfo(fs=FS_HZ, channels=(self.lead,), lsb_nv=1000.0, model="Polar H10",
                          adc_bits=24, driver=self.name, electrodes=(self.lead,),
                          extra={"sample_format": "int24-le-uV", "clock": "polar-2000-ns"})

    # --- decoding ----------------------------------------------------------------------------

    def feed(self, data: bytes, channel: str | None = None,
             host_time: float = 0.0) -> list[Event]:
        ch = (channel or "").lower()
        if ch == PMD_DATA:
            return self._data(data, host_time)
        if ch == PMD_CP:
            return self._control(data)
        if ch == HR_MEASUREMENT:
            try:
                hr = parse_heart_rate(data, host_time)
            except ValueError as exc:
                return [DeviceError(0, str(exc))]
            self._counts["hr_measurements"] += 1
            return [hr]
        return []

    def _control(self, data: bytes) -> list[Event]:
        if not data:
            return []
        if data[0] != 0xF0:
            self._counts["cp_events"] += 1
            return [DeviceError(data[0], f"Polar H10 control-point event {data.hex()}")]
        if len(data) < 4:
            return [DeviceError(0, f"Polar H10 control-point response too short: {data.hex()}")]
        op, status = data[1], data[3]
        if status != 0:
            return [Reply(0, op, False, status, PMD_STATUS.get(status, f"status {status}"))]
        more = len(data) > 4 and data[4] != 0
        params = data[5:]
        if self._cp_pending is not None:
            self._cp_pending += params
        else:
            self._cp_pending = bytearray(params)
        if more:
            return []
        params, self._cp_pending = bytes(self._cp_pending), None
        return [Reply(0, op, True, 0, params.hex())]

    def _data(self, data: bytes, host_time: float) -> list[Event]:
        try:
            ts, values = decode_ecg_frame(data)
        except ValueError as exc:
            self._counts["bad_frames"] += 1
            key = str(exc).split(":")[0]
            if key in self._reported:
                return []
            self._reported.add(key)
            return [DeviceError(0, str(exc))]
        n = int(values.size)
        if n == 0:
            return []
        self._counts["frames"] += 1
        spacing = 1e9 / FS_HZ
        if self._last_ts is not None:
            explained = (ts - self._last_ts) / spacing
            missing = int(round(explained)) - n
            if missing >= 1 and explained > 1.1 * n:
                self._next += missing
                self._counts["lost_samples"] += missing
        self._last_ts = ts
        first = self._next
        self._next += n
        self._counts["samples"] += n
        first_us = int(round((ts - (n - 1) * spacing) / 1000))
        return [SampleBlock(values.reshape(1, -1), first, first_us, host_time)]

    def stats(self) -> dict[str, int]:
        return dict(self._counts)

    # --- commands ----------------------------------------------------------------------------

    async def _command(self, link: Link, cmd: bytes, allow_already: bool) -> Reply:
        fut = link.expect(lambda e: isinstance(e, Reply) and e.command == cmd[0])
        await link.send(cmd, PMD_CP)
        try:
            reply = await asyncio.wait_for(fut, self.command_timeout)
        except TimeoutError:
            raise DeviceCommandError(f"Polar H10 did not answer control-point command "
                                     f"{cmd.hex()} within {self.command_timeout:g} s") from None
        assert isinstance(reply, Reply)
        if not reply.ok and not (allow_already and reply.reason == 6):
            raise DeviceCommandError(f"Polar H10 refused {cmd.hex()}: {reply.text}")
        return reply

    async def start(self, link: Link) -> StreamInfo:
        self.info = self.stream_info()
        if not link.interactive:
            return self.info
        self._last_ts = None
        await self._command(link, START_ECG, allow_already=True)
        return self.info

    async def resume(self, link: Link) -> StreamInfo:
        # the timestamps continue across a reconnect: keep _last_ts so the gap is measured
        self.info = self.stream_info()
        await self._command(link, START_ECG, allow_already=True)
        return self.info

    async def stop(self, link: Link) -> None:
        if link.interactive:
            await self._command(link, STOP_ECG, allow_already=True)
