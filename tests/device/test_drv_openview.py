"""ProtoCentral OpenView driver (detak/device/drivers_openview.py), byte for byte from
../shared/docs/devices/02-protocentral-openview.md ("Frame", "Payloads seen")."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from detak.data.ludb import load_ludb
from detak.device.drivers_hrs import HeartRate
from detak.device.drivers_openview import OpenViewDriver
from detak.device.events import SampleBlock, StreamInfo
from detak.device.urls import make_transport_and_driver


def _frame(payload: bytes, ptype: int = 0x02) -> bytes:
    """Doc "Frame": 0A FA, u16 LE length, type, payload, 00 0B."""
    head = bytes([0x0A, 0xFA, len(payload) & 0xFF, len(payload) >> 8, ptype])
    return head + payload + b"\x00\x0b"


def _ads1292r_9(ecg: int, hr: int = 70) -> bytes:
    # 0-1 ECG int16, 2-3 resp int16, 4 resp rate, 5 0, 6 heart rate, 7 0, 8 0
    return struct.pack("<hhBBBBB", ecg, -5, 16, 0, hr, 0, 0)


def _ads1292r_20(ecg: int, hr: int = 70) -> bytes:
    # old example: ECG int16, resp int16, resp rate at header index 19 (payload 14), HR at 21 (16)
    p = bytearray(20)
    p[0:4] = struct.pack("<hh", ecg, 3)
    p[14], p[16] = 15, hr
    return bytes(p)


def _max30003(ecg: int, hr: int = 70) -> bytes:
    # 0-4 unused, 5-8 ECG int32, 9-10 RR u16, 11-12 0, 13-14 HR u16, 15-16 0
    return bytes(5) + struct.pack("<iHHHH", ecg, 850, 0, hr, 0)


def _healthypi5(ecg: int, hr: int = 70) -> bytes:
    # 0-3 ECG, 4-7 BioZ, 8 skip flag, 9-12 PPG red, 13-16 PPG IR, 17-18 temp, 19 SpO2, 20 HR, 21 RR
    return struct.pack("<iiBiihBBB", ecg, 123456, 0, 99999, 88888, 3650, 97, hr, 14)


def _decode(drv: OpenViewDriver, wire: bytes, chunk: int = 7) -> tuple[list[int], list]:
    events = []
    for i in range(0, len(wire), chunk):
        events += drv.feed(wire[i:i + chunk])
    values = [v for e in events if isinstance(e, SampleBlock) for v in e.counts[0].tolist()]
    return values, events


# --- bad input first ---------------------------------------------------------------------------


def test_the_scale_is_required_because_the_boards_send_raw_counts() -> None:
    with pytest.raises(ValueError, match="give lsb_nv="):
        make_transport_and_driver("serial:///dev/ttyUSB0?driver=openview")
    with pytest.raises(ValueError, match="board='ads1293' unknown; use ads1292r, healthypi5, "
                                         "max30003"):
        OpenViewDriver(lsb_nv=1, board="ads1293")


def test_stray_start_bytes_bad_stops_other_types_and_unknown_lengths_cost_only_themselves() -> None:
    good = [_frame(_ads1292r_9(v)) for v in (10, 20, 30)]
    bad_stop = _frame(_ads1292r_9(99))[:-1] + b"\x0c"
    wire = (b"\x0a\x0a\xfa\x09" + good[0] + bad_stop + _frame(b"\x01\x02", ptype=0x01)
            + _frame(bytes(12)) + b"\x0a" + good[1] + good[2])
    drv = OpenViewDriver(lsb_nv=1000)
    values, _ = _decode(drv, wire)
    assert values == [10, 20, 30]
    st = drv.stats()
    assert st["bad_stop"] >= 1 and st["other_types"] == 1 and st["unknown_length"] == 1


# --- bytes from the doc ------------------------------------------------------------------------


@pytest.mark.parametrize(("make", "model", "fs"), [
    (_ads1292r_9, "ProtoCentral ADS1292R", 125.0),
    (_ads1292r_20, "ProtoCentral ADS1292R", 125.0),
    (_max30003, "ProtoCentral MAX30003", 128.0),
    (_healthypi5, "ProtoCentral HealthyPi 5", 125.0),
])
def test_each_board_layout_decodes_a_real_ecg(make, model, fs) -> None:
    src = load_ludb(5).recording.lead("II")[:600]
    counts = np.rint(src * 1000).astype(int)            # µV counts of LUDB 5, lead II
    wire = b"".join(_frame(make(int(c), hr=60 + k // 200)) for k, c in enumerate(counts))
    drv = OpenViewDriver(lsb_nv=1000)
    values, events = _decode(drv, wire)
    assert values == counts.tolist()
    info = [e for e in events if isinstance(e, StreamInfo)]
    assert len(info) == 1 and (info[0].model, info[0].fs, info[0].lsb_nv) == (model, fs, 1000.0)
    assert [e.bpm for e in events if isinstance(e, HeartRate)] == [60, 61, 62]


def test_a_board_option_ignores_other_layouts_and_fs_overrides() -> None:
    drv = OpenViewDriver(lsb_nv=500, board="max30003", fs=256)
    values, events = _decode(drv, _frame(_ads1292r_9(5)) + _frame(_max30003(-70000)))
    assert values == [-70000] and drv.info.fs == 256.0 and drv.stats()["unknown_length"] == 1
