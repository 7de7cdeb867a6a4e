r"""Creative PC-80B handheld ECG over BLE (150 Hz, one lead, CRC-8/MAXIM frames).

From ../shared/docs/devices/05-handheld-ecg-devices.md ("BLE variant"): service 0xFFF0, the
device notifies on 0xFFF1, the host writes to 0xFFF2. Every frame, both ways, is
``A5 [command] [L] [L payload bytes] [CRC-8/MAXIM of all bytes before it]``; frames may span or
share notifications, so they are reassembled by length. A frame with a bad CRC is dropped and
the decoder resynchronises at the next ``A5``.

Device events decoded: 0x11 device info, 0x55 trans-mode (end of preparation: the host MUST
answer ``A5 55 01 <transtype> crc``), 0xAA continuous-mode data (u8 seq, 25 samples u16 LE,
HR, value low byte, byte with bit 7 lead-off / bits 4-6 gain / bits 0-3 value high nibble; a
1-byte payload ends the recording; the host acknowledges ``A5 AA 02 <seq> 00 crc`` every 64
frames — seq % 64 == 0 — and at the end), 0xDD fast-mode data (u16 seq, gain, mode, HR,
lead-off/data type, u16 samples), 0xFF heartbeat reply (battery level 0-3). The host sends the
heartbeat ``A5 FF 01 00 crc`` about every 10 s. Samples: ``mV = (raw - 2048) / 330``, so the
driver emits ``raw - 2048`` counts with an LSB of 1/330 mV.

Answers the protocol requires are queued by `feed` (I/O-free) and written by a small task that
`start` runs on the link (`outbox`).

>>> crc8_maxim(b"123456789") == 0xA1             # the catalogue's check value
True
>>> drv = PC80BDriver()
>>> ev = drv.feed(pc80b_frame(0x55, bytes([11, 0x81, 0x12, 0x34])))
>>> ev[0].model, drv.outbox == [pc80b_frame(0x55, b"\x01")]
('PC-80B', True)
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time
from typing import Any

import numpy as np

from detak.device.drivers import Driver, Link, register_driver
from detak.device.events import (
    BatteryStatus,
    DeviceError,
    Event,
    HeartRate,
    LeadOffChange,
    SampleBlock,
    StreamEnded,
    StreamInfo,
)

PC80B_SERVICE = "0000fff0-0000-1000-8000-00805f9b34fb"
PC80B_NOTIFY = "0000fff1-0000-1000-8000-00805f9b34fb"
PC80B_WRITE = "0000fff2-0000-1000-8000-00805f9b34fb"

FS_HZ = 150.0
ZERO = 2048
LSB_NV = 1e6 / 330.0
START = 0xA5
EV_INFO, EV_TIME, EV_TRANSMODE, EV_CONT, EV_FAST, EV_HEARTBEAT = 0x11, 0x33, 0x55, 0xAA, 0xDD, 0xFF
HEARTBEAT_S = 10.0
MODELS = {10: "PC-80A", 11: "PC-80B", 128: "PC-80B(UW)"}


def _crc8_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8C if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC8 = _crc8_table()


def crc8_maxim(data: bytes) -> int:
    """CRC-8/MAXIM (Dallas 1-Wire): poly 0x31 reflected (0x8C), init 0, no final xor."""
    crc = 0
    for b in data:
        crc = _CRC8[crc ^ b]
    return crc


def pc80b_frame(command: int, payload: bytes) -> bytes:
    r"""A complete frame ``A5 command L payload crc`` (what the host sends, or a test device).

    >>> pc80b_frame(0xFF, b"\x00").hex()
    'a5ff01003e'
    """
    if len(payload) > 255:
        raise ValueError(f"PC-80B payload of {len(payload)} bytes: at most 255")
    head = bytes([START, command, len(payload)]) + payload
    return head + bytes([crc8_maxim(head)])


class TransMode:
    """Event 0x55: the device finished preparing; the host must answer (see module doc)."""

    def __init__(self, payload: bytes) -> None:
        if len(payload) < 2:
            raise ValueError(f"PC-80B trans-mode payload {payload.hex()}: needs 2 bytes")
        self.device_type = payload[0]
        self.model = MODELS.get(payload[0], f"PC-80 type {payload[0]}")
        self.filter_mode = payload[1] >> 7
        self.trans_type = payload[1] & 1
        self.serial = payload[2:].hex()

    def __repr__(self) -> str:
        return f"TransMode({self.model}, serial {self.serial}, trans type {self.trans_type})"


@register_driver
class PC80BDriver(Driver):
    """Creative PC-80B over BLE; see the module docstring. Option ``lead`` (default ``ECG``)."""

    name = "pc80b"
    ble_notify = (PC80B_NOTIFY,)
    ble_write = PC80B_WRITE
    url_options = ("lead",)
    #: the user starts a measurement on the device; the trans-mode event may take a while
    info_timeout = 120.0

    def __init__(self, lead: str = "ECG", heartbeat_s: float = HEARTBEAT_S,
                 **options: Any) -> None:
        super().__init__(**options)
        self.lead = lead
        self.heartbeat_s = float(heartbeat_s)
        self.outbox: list[bytes] = []
        self._buf = bytearray()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._last_seq: int | None = None
        self._index = 0
        self._lead_off: bool | None = None
        self._last_hr: int | None = None
        self.versions: dict[str, Any] = {}
        self.transmode: TransMode | None = None
        self._counts = {"bytes": 0, "frames": 0, "crc_errors": 0, "skipped_bytes": 0,
                        "lost_frames": 0, "acks_sent": 0, "heartbeats_sent": 0,
                        "unknown_events": 0}

    def stream_info(self) -> StreamInfo:
        tm = self.transmode
        return StreamInfo(fs=FS_HZ, channels=(self.lead,), lsb_nv=LSB_NV,
                          model=tm.model if tm else "PC-80B", serial=tm.serial if tm else "",
                          firmware=str(self.versions.get("software", "")), adc_bits=12,
                          electrodes=(self.lead,), driver=self.name,
                          extra={"zero_count": ZERO, "mv_per_count": "1/330"})

    # --- decoding ----------------------------------------------------------------------------

    def feed(self, data: bytes, channel: str | None = None,
             host_time: float = 0.0) -> list[Event]:
        self._counts["bytes"] += len(data)
        self._buf += data
        events: list[Event] = []
        buf = self._buf
        while buf:
            if buf[0] != START:
                i = buf.find(bytes([START]))
                cut = len(buf) if i < 0 else i
                self._counts["skipped_bytes"] += cut
                del buf[:cut]
                continue
            if len(buf) < 3:
                break
            total = buf[2] + 4
            if len(buf) < total:
                break
            frame = bytes(buf[:total])
            if crc8_maxim(frame[:-1]) != frame[-1]:
                self._counts["crc_errors"] += 1
                del buf[:1]                       # resync at the next A5
                continue
            del buf[:total]
            self._counts["frames"] += 1
            events += self._event(frame[1], frame[3:-1], host_time)
        if self._wake is not None and self.outbox:
            self._wake.set()
        return events

    def _event(self, cmd: int, p: bytes, host_time: float) -> list[Event]:
        if cmd == EV_CONT:
            return self._continuous(p, host_time)
        if cmd == EV_FAST:
            return self._fast(p, host_time)
        if cmd == EV_TRANSMODE:
            try:
                self.transmode = TransMode(p)
            except ValueError as exc:
                return [DeviceError(0, str(exc))]
            self.outbox.append(pc80b_frame(EV_TRANSMODE, bytes([self.transmode.trans_type])))
            self.info = self.stream_info()
            self._last_seq = None
            return [self.info]
        if cmd == EV_INFO:
            if len(p) >= 3:
                self.versions = {"software": ".".join(str(b) for b in p[:-2]),
                                 "hardware": p[-2], "algorithm": p[-1]}
            return []
        if cmd == EV_HEARTBEAT:
            if p:
                level = min(p[0], 3)
                return [BatteryStatus(round(level * 100 / 3))]
            return []
        if cmd == EV_TIME:
            return []
        self._counts["unknown_events"] += 1
        return []

    def _samples(self, seq_index: int, body: bytes, host_time: float, per: int) -> SampleBlock:
        raw = np.frombuffer(body[:len(body) // 2 * 2], dtype="<u2").astype(np.int32) - ZERO
        return SampleBlock(raw.reshape(1, -1), seq_index * per, None, host_time)

    def _seq(self, seq: int, modulo: int) -> int:
        """Unwrapped frame index from a ``modulo`` counter (counting lost frames)."""
        if self._last_seq is None:
            self._index = 0
        else:
            step = (seq - self._last_seq) % modulo     # 0: the same frame again
            self._counts["lost_frames"] += max(0, step - 1)
            self._index += step
        self._last_seq = seq
        return self._index

    def _lead(self, off: bool, sample: int) -> list[Event]:
        if off == self._lead_off:
            return []
        self._lead_off = off
        return [LeadOffChange(sample, frozenset({self.lead}) if off else frozenset(),
                              (self.lead,) if off else ())]

    def _hr(self, bpm: int, host_time: float) -> list[Event]:
        if bpm == self._last_hr or bpm == 0:
            return []
        self._last_hr = bpm
        return [HeartRate(bpm, host_time=host_time)]

    def _continuous(self, p: bytes, host_time: float) -> list[Event]:
        if not p:
            return [DeviceError(0, "PC-80B continuous-data frame without payload")]
        seq = p[0]
        if len(p) == 1:                            # end of the recording
            self.outbox.append(pc80b_frame(EV_CONT, bytes([seq, 0])))
            nxt = None if self._last_seq is None else (self._index + 1) * 25
            return [StreamEnded(nxt, "stopped")]
        if len(p) != 54:
            return [DeviceError(0, f"PC-80B continuous-data payload of {len(p)} bytes "
                                   "(expected 54)")]
        if seq % 64 == 0:
            self.outbox.append(pc80b_frame(EV_CONT, bytes([seq, 0])))
        index = self._seq(seq, 256)
        block = self._samples(index, p[1:51], host_time, 25)
        hr, status = p[51], p[53]
        return [*self._lead(bool(status & 0x80), block.first_sample or 0),
                *self._hr(hr, host_time), block]

    def _fast(self, p: bytes, host_time: float) -> list[Event]:
        if len(p) < 6:
            return [DeviceError(0, f"PC-80B fast-data payload of {len(p)} bytes (needs 6)")]
        seq, _gain, mode, hr, status = struct.unpack_from("<HBBBB", p)
        stage = mode & 0x0F
        body = p[6:]
        if stage >= 3 or not body:                 # analysing, result, stop: no samples
            return [StreamEnded(None, "stopped")] if stage >= 3 else []
        n = len(body) // 2
        index = self._seq(seq, 65536)
        block = self._samples(index, body, host_time, n)
        return [*self._lead(bool(status & 0x80), block.first_sample or 0),
                *self._hr(hr, host_time), block]

    def stats(self) -> dict[str, int]:
        return dict(self._counts)

    # --- the link: acknowledgements and heartbeat ---------------------------------------------

    async def _service(self, link: Link) -> None:
        assert self._wake is not None
        next_beat = time.monotonic()
        while True:
            timeout = max(0.0, next_beat - time.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            self._wake.clear()
            while self.outbox:
                frame = self.outbox.pop(0)
                await link.send(frame, PC80B_WRITE)
                self._counts["acks_sent"] += 1
            if time.monotonic() >= next_beat:
                await link.send(pc80b_frame(EV_HEARTBEAT, b"\x00"), PC80B_WRITE)
                self._counts["heartbeats_sent"] += 1
                next_beat = time.monotonic() + self.heartbeat_s

    def _run_service(self, link: Link) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._wake = asyncio.Event()
        if self.outbox:
            self._wake.set()
        self._task = asyncio.get_running_loop().create_task(self._service(link))

    async def start(self, link: Link) -> StreamInfo:
        if not link.interactive:
            self.info = self.stream_info()
            return self.info
        self._run_service(link)
        if self.transmode is None:
            await self.wait_info(link)
        self.info = self.stream_info()
        return self.info

    async def resume(self, link: Link) -> StreamInfo:
        self._run_service(link)
        self.info = self.stream_info()
        return self.info

    async def stop(self, link: Link) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        while self.outbox and link.interactive:       # the final ACK still goes out
            with contextlib.suppress(Exception):
                await link.send(self.outbox.pop(0), PC80B_WRITE)
