r"""ProtoCentral boards speaking the "OpenView" serial packet: ADS1292R, MAX30003, HealthyPi 5.

Frame (../shared/docs/devices/02-protocentral-openview.md, "Frame"): ``0A FA``, payload length
N (u16 LE), packet type (0x02 = data), N payload bytes, ``00 0B``; no checksum, no sequence
number. A frame whose stop bytes are wrong is dropped and the search resumes one byte after its
``0A`` (a stray ``0A`` in the data costs nothing). Payload layouts differ per board and firmware
and are told apart by N ("always trust the length field"; doc section "Payloads seen"):

============ === ================================================================
board         N  ECG sample (all little-endian)
============ === ================================================================
ads1292r      9  bytes 0-1 int16 (24-bit value >> 6); HR at byte 6
ads1292r     20  bytes 0-1 int16 (filtered); HR at byte 16 (header index 21)
max30003     17  bytes 5-8 int32; HR u16 at 13-14
healthypi5   22  bytes 0-3 int32; HR at byte 20
============ === ================================================================

Every frame carries one sample. Other packet types (HealthyPi 5 firmware >= 1.0 batches in
type 0x03/0x04) and unknown lengths are counted, not decoded. The boards send raw ADC counts
("no µV scaling is sent"), so the LSB must be given (``lsb_nv=``) — or measured with
``detak calibrate --external-pulse``; ``fs`` defaults to the OpenView2 descriptors' rate for the
board (125 Hz ADS1292R and HealthyPi 5, 128 Hz MAX30003).

>>> drv = OpenViewDriver(lsb_nv=1000)
>>> frame = bytes([0x0A, 0xFA, 9, 0, 2]) + bytes.fromhex("3000 0000 00 00 48 00 00") + b"\x00\x0b"
>>> [type(e).__name__ for e in drv.feed(frame + frame)]
['StreamInfo', 'HeartRate', 'SampleBlock']
>>> drv.info.model, drv.info.fs
('ProtoCentral ADS1292R', 125.0)
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from detak.device.drivers import Driver, register_driver
from detak.device.events import Event, HeartRate, SampleBlock, StreamInfo

SOF = b"\x0a\xfa"
STOP = b"\x00\x0b"
TYPE_DATA = 0x02
MAX_PAYLOAD = 1024


@dataclass(frozen=True)
class Layout:
    board: str
    model: str
    ecg_offset: int
    ecg_format: str           # struct format of the ECG value
    hr_offset: int
    hr_format: str
    fs: float


LAYOUTS: dict[int, Layout] = {
    9: Layout("ads1292r", "ProtoCentral ADS1292R", 0, "<h", 6, "<B", 125.0),
    20: Layout("ads1292r", "ProtoCentral ADS1292R", 0, "<h", 16, "<B", 125.0),
    17: Layout("max30003", "ProtoCentral MAX30003", 5, "<i", 13, "<H", 128.0),
    22: Layout("healthypi5", "ProtoCentral HealthyPi 5", 0, "<i", 20, "<B", 125.0),
}
BOARDS = sorted({lay.board for lay in LAYOUTS.values()})


def openview_frame(payload: bytes, ptype: int = TYPE_DATA) -> bytes:
    r"""A frame around ``payload`` (what the boards send; used by tests and emulators).

    >>> openview_frame(b"\x01").hex()
    '0afa01000201000b'
    """
    return SOF + struct.pack("<HB", len(payload), ptype) + payload + STOP


@register_driver
class OpenViewDriver(Driver):
    """ProtoCentral OpenView packets; see the module docstring.

    Options (also URL parameters): ``lsb_nv`` (required: nV per count), ``board`` (ads1292r,
    max30003 or healthypi5: only frames of that board's layouts are decoded; default: told
    by N), ``fs`` (sample rate; default per board), ``lead`` (channel name, default ECG).
    """

    name = "openview"
    url_options = ("lsb_nv", "board", "fs", "lead")

    def __init__(self, lsb_nv: float | str | None = None, board: str | None = None,
                 fs: float | str | None = None, lead: str = "ECG", **options: Any) -> None:
        super().__init__(**options)
        if lsb_nv is None:
            raise ValueError("openview driver: give lsb_nv= (nanovolts per count): ProtoCentral "
                             "boards send raw ADC counts and no scale")
        try:
            self.lsb_nv = float(lsb_nv)
            self.fs = None if fs is None else float(fs)
        except ValueError:
            raise ValueError(f"openview driver: lsb_nv={lsb_nv!r} and fs={fs!r} must be "
                             "numbers") from None
        if not self.lsb_nv > 0 or (self.fs is not None and not self.fs > 0):
            raise ValueError(f"openview driver: lsb_nv={lsb_nv!r} and fs={fs!r} must be > 0")
        if board is not None and board not in BOARDS:
            raise ValueError(f"openview driver: board={board!r} unknown; use "
                             f"{', '.join(BOARDS)}")
        self.board = board
        self.lead = lead
        self.layout: Layout | None = None
        self._buf = bytearray()
        self._last_hr: int | None = None
        self._counts = {"bytes": 0, "frames": 0, "samples": 0, "bad_stop": 0,
                        "skipped_bytes": 0, "other_types": 0, "unknown_length": 0,
                        "oversize": 0}

    def _info(self, layout: Layout) -> StreamInfo:
        return StreamInfo(fs=self.fs or layout.fs, channels=(self.lead,), lsb_nv=self.lsb_nv,
                          model=layout.model, electrodes=(self.lead,), driver=self.name,
                          extra={"board": layout.board,
                                 "payload_bytes": [n for n, v in LAYOUTS.items()
                                                   if v == layout][0]})

    def feed(self, data: bytes, channel: str | None = None,
             host_time: float = 0.0) -> list[Event]:
        self._counts["bytes"] += len(data)
        buf = self._buf
        buf += data
        events: list[Event] = []
        values: list[int] = []
        while True:
            i = buf.find(SOF)
            if i < 0:
                keep = 1 if buf[-1:] == SOF[:1] else 0
                self._counts["skipped_bytes"] += len(buf) - keep
                del buf[:len(buf) - keep]
                break
            if i:
                self._counts["skipped_bytes"] += i
                del buf[:i]
            if len(buf) < 5:
                break
            n, ptype = struct.unpack_from("<HB", buf, 2)
            if n > MAX_PAYLOAD:
                self._counts["oversize"] += 1
                del buf[:1]
                continue
            if len(buf) < n + 7:
                break
            if buf[5 + n:7 + n] != STOP:
                self._counts["bad_stop"] += 1
                del buf[:1]                       # resync after this 0A
                continue
            payload = bytes(buf[5:5 + n])
            del buf[:n + 7]
            self._counts["frames"] += 1
            if ptype != TYPE_DATA:
                self._counts["other_types"] += 1
                continue
            layout = LAYOUTS.get(n)
            if layout is None or (self.board is not None and layout.board != self.board):
                self._counts["unknown_length"] += 1
                continue
            if self.layout is None:
                self.layout = layout
                self.info = self._info(layout)
                events.append(self.info)
            elif layout is not self.layout:
                self._counts["unknown_length"] += 1
                continue
            (value,) = struct.unpack_from(layout.ecg_format, payload, layout.ecg_offset)
            (hr,) = struct.unpack_from(layout.hr_format, payload, layout.hr_offset)
            if hr and hr != self._last_hr:
                self._last_hr = hr
                if values:
                    events.append(self._block(values, host_time))
                    values = []
                events.append(HeartRate(hr, host_time=host_time))
            values.append(value)
        if values:
            events.append(self._block(values, host_time))
        return events

    def _block(self, values: list[int], host_time: float) -> SampleBlock:
        self._counts["samples"] += len(values)
        return SampleBlock(np.array([values], dtype=np.int32), None, None, host_time)

    def stats(self) -> dict[str, int]:
        return dict(self._counts)
