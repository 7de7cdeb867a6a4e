"""Creative PC-80B BLE driver (detak/device/drivers_pc80b.py), byte for byte from
../shared/docs/devices/05-handheld-ecg-devices.md ("BLE variant"), and through bleak's real
BleakClient with a fake backend playing the device: trans-mode answer, ACKs every 64 frames and
at the end, heartbeat."""

from __future__ import annotations

import asyncio
from typing import ClassVar

import numpy as np
import pytest

from detak.data.ludb import load_ludb
from detak.device.ble import BleTransport
from detak.device.drivers_hrs import HeartRate
from detak.device.drivers_pc80b import (
    PC80B_NOTIFY,
    PC80B_SERVICE,
    PC80B_WRITE,
    PC80BDriver,
    crc8_maxim,
    pc80b_frame,
)
from detak.device.events import (
    BatteryStatus,
    DeviceError,
    LeadOffChange,
    SampleBlock,
    StreamEnded,
    StreamInfo,
)
from detak.device.fakeble import FakePeripheral, fake_backend
from detak.device.recorder import Recorder
from detak.device.session import Device
from detak.signal.filters import resample


def _crc8_reference(data: bytes) -> int:
    """CRC-8/MAXIM straight from its catalogue definition (poly 0x31, refin/refout true, init
    0, xorout 0), bit by bit with explicit reflection — independent of the driver's table."""
    def reflect(v: int, width: int) -> int:
        return int(f"{v:0{width}b}"[::-1], 2)

    crc = 0
    for byte in data:
        crc ^= reflect(byte, 8)
        for _ in range(8):
            crc = ((crc << 1) ^ 0x31) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return reflect(crc, 8)


def _frame(cmd: int, payload: bytes) -> bytes:
    """Doc frame: A5, command, L, payload, CRC-8/MAXIM over everything before it."""
    head = bytes([0xA5, cmd, len(payload)]) + payload
    return head + bytes([_crc8_reference(head)])


def _cont(seq: int, raw: list[int], hr: int = 72, status: int = 0x10) -> bytes:
    """0xAA continuous data: seq, 25 x u16 LE, HR, value low byte, status byte."""
    assert len(raw) == 25
    return _frame(0xAA, bytes([seq]) + b"".join(v.to_bytes(2, "little") for v in raw)
                  + bytes([hr, 0x00, status]))


# --- bad input first ---------------------------------------------------------------------------


def test_a_frame_with_a_bad_crc_is_dropped_and_the_next_one_still_decodes() -> None:
    good = _cont(1, [2048 + i for i in range(25)])
    bad = bytearray(_cont(0, [2048] * 25))
    bad[10] ^= 0x40
    drv = PC80BDriver()
    events = drv.feed(b"\x00\x13" + bytes(bad) + good)
    blocks = [e for e in events if isinstance(e, SampleBlock)]
    assert len(blocks) == 1 and blocks[0].counts[0].tolist() == list(range(25))
    assert drv.stats()["crc_errors"] >= 1 and drv.stats()["skipped_bytes"] >= 2


def test_short_or_odd_payloads_are_reported_not_raised() -> None:
    drv = PC80BDriver()
    (e,) = drv.feed(_frame(0xAA, bytes([3, 1, 2, 3])))
    assert isinstance(e, DeviceError) and "payload of 4 bytes (expected 54)" in e.text
    (e,) = drv.feed(_frame(0x55, b"\x0b"))
    assert isinstance(e, DeviceError) and "needs 2 bytes" in e.text
    with pytest.raises(ValueError, match="at most 255"):
        pc80b_frame(0xAA, bytes(256))


# --- bytes from the doc ------------------------------------------------------------------------


def test_crc8_maxim_check_value_and_reference_agree() -> None:
    # the catalogue's check value for "123456789" is 0xA1
    assert crc8_maxim(b"123456789") == _crc8_reference(b"123456789") == 0xA1
    rng = np.random.default_rng(0)
    for n in (1, 3, 54, 200):
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        assert crc8_maxim(data) == _crc8_reference(data)


def test_host_frames_are_the_documented_bytes() -> None:
    # heartbeat "A5 FF 01 00 crc", trans-mode answer "A5 55 01 <transtype> crc",
    # continuous-data ACK "A5 AA 02 <seq> 00 crc"
    assert pc80b_frame(0xFF, b"\x00") == _frame(0xFF, b"\x00") == bytes.fromhex("a5ff01003e")
    drv = PC80BDriver()
    (info,) = drv.feed(_frame(0x55, bytes([11, 0x81]) + bytes.fromhex("00a1b2")))
    assert isinstance(info, StreamInfo) and (info.model, info.serial) == ("PC-80B", "00a1b2")
    assert drv.transmode.filter_mode == 1 and drv.transmode.trans_type == 1
    assert drv.outbox == [bytes([0xA5, 0x55, 0x01, 0x01, _crc8_reference(b"\xa5\x55\x01\x01")])]


def test_continuous_data_samples_lead_off_heart_rate_and_acks() -> None:
    drv = PC80BDriver()
    raw = [2048 + 330, 2048 - 330] + [2048] * 23              # +1 mV, -1 mV, 0...
    events = drv.feed(_cont(0, raw, hr=75, status=0x80 | 0x20))
    kinds = [type(e) for e in events]
    assert kinds == [LeadOffChange, HeartRate, SampleBlock]
    assert events[0].leads_off == frozenset({"ECG"}) and events[1].bpm == 75
    assert events[2].counts[0, :3].tolist() == [330, -330, 0] and events[2].first_sample == 0
    assert drv.outbox == [_frame(0xAA, bytes([0, 0]))]       # seq 0 % 64 == 0: ACK
    drv.outbox.clear()
    for seq in range(1, 65):
        drv.feed(_cont(seq, [2048] * 25))
    assert drv.outbox == [_frame(0xAA, bytes([64, 0]))]       # only seq 64 is acknowledged
    (end,) = drv.feed(_frame(0xAA, bytes([65])))              # 1-byte payload: the end
    assert end == StreamEnded(65 * 25, "stopped")
    assert drv.outbox[-1] == _frame(0xAA, bytes([65, 0]))


def test_sequence_gaps_and_wrap_place_samples_correctly() -> None:
    drv = PC80BDriver()
    firsts = []
    for seq in (254, 255, 0, 3):                              # wraps, then 1 and 2 are lost
        (b,) = [e for e in drv.feed(_cont(seq, [2048] * 25)) if isinstance(e, SampleBlock)]
        firsts.append(b.first_sample)
    assert firsts == [0, 25, 50, 125] and drv.stats()["lost_frames"] == 2


def test_fast_mode_and_heartbeat_reply() -> None:
    drv = PC80BDriver()
    # 0xDD: u16 seq, gain (bits 4-6), mode byte (stage measuring = 2), HR, lead-off/type, samples
    payload = (b"\x05\x00" + bytes([0x20, 0x12, 66, 0x00])
               + b"".join(v.to_bytes(2, "little") for v in (2048, 2378, 1718)))
    events = drv.feed(_frame(0xDD, payload))
    (blk,) = [e for e in events if isinstance(e, SampleBlock)]
    assert blk.counts.tolist() == [[0, 330, -330]]
    (end,) = drv.feed(_frame(0xDD, b"\x06\x00" + bytes([0x20, 0x13, 66, 0x00])))  # analysing
    assert isinstance(end, StreamEnded)
    (battery,) = drv.feed(_frame(0xFF, b"\x02"))
    assert battery == BatteryStatus(67)


# --- through bleak with a fake PC-80B ------------------------------------------------------------


class PC80BPeripheral(FakePeripheral):
    """Sends device info and trans-mode; after the host's answer streams ``raw`` as 0xAA frames
    (two frames per notification, one split across two, as BLE allows)."""

    services: ClassVar[dict[str, dict[str, list[str]]]] = {
        PC80B_SERVICE: {PC80B_NOTIFY: ["notify"], PC80B_WRITE: ["write"]},
    }
    name = "PC80B-BLE"

    def __init__(self, raw: np.ndarray) -> None:
        super().__init__()
        self.raw = raw
        self.task: asyncio.Task | None = None

    async def on_write(self, uuid: str, data: bytes) -> None:
        if data[:3] == b"\xa5\x55\x01" and self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._stream())

    async def _announce(self) -> None:
        await asyncio.sleep(0.01)
        self.notify(PC80B_NOTIFY, _frame(0x11, bytes([1, 2, 3, 4, 5, 6])))
        self.notify(PC80B_NOTIFY, _frame(0x55, bytes([11, 0x01]) + bytes.fromhex("1234")))

    async def on_connect(self) -> None:
        asyncio.get_running_loop().create_task(self._announce())

    async def _stream(self) -> None:
        frames = [_cont(k % 256, self.raw[a:a + 25].tolist())
                  for k, a in enumerate(range(0, self.raw.size - 24, 25))]
        wire = b"".join(frames) + _frame(0xAA, bytes([len(frames) % 256]))
        for i in range(0, len(wire), 90):                    # 90-byte notifications
            self.notify(PC80B_NOTIFY, wire[i:i + 90])
            await asyncio.sleep(0)


@pytest.fixture(scope="module")
def ludb_raw() -> np.ndarray:
    """LUDB record 2, lead II, at the PC-80B's 150 Hz, as its raw counts (mV * 330 + 2048);
    its first 200 samples again at the end, so that the stream passes sequence number 64."""
    src = load_ludb(2).recording
    mv = resample(src.lead("II")[None], src.fs, 150.0)[0]
    raw = np.clip(np.rint(mv * 330) + 2048, 0, 4095).astype(np.int32)
    return np.concatenate([raw, raw[:200]])


def test_recording_over_bleak_acknowledges_and_recovers_the_signal(ludb_raw) -> None:
    peripheral = PC80BPeripheral(ludb_raw)
    drv = PC80BDriver()

    async def go():
        dev = Device(BleTransport("D0:00:00:00:00:03", notify=drv.ble_notify,
                                  write=drv.ble_write, backend=fake_backend(peripheral)), drv)
        events = []
        try:
            await dev.connect()
            info = await dev.start()
            while True:
                e = await dev.next_event(timeout=2.0)
                if e is None:
                    break
                events.append(e)
                if isinstance(e, StreamEnded):
                    break
            await dev.stop()
        finally:
            await dev.close()
        return info, events

    info, events = asyncio.run(go())
    assert (info.fs, info.model, info.serial) == (150.0, "PC-80B", "1234")
    assert drv.versions["software"] == "1.2.3.4"
    writes = [d for u, d in peripheral.writes if u == PC80B_WRITE]
    assert _frame(0x55, b"\x01") in writes                   # the required trans-mode answer
    assert _frame(0xFF, b"\x00") in writes                   # heartbeat
    acks = [d for d in writes if d[:3] == b"\xa5\xaa\x02"]
    assert acks == [_frame(0xAA, bytes([0, 0])), _frame(0xAA, bytes([64, 0])),
                    _frame(0xAA, bytes([68, 0]))]            # seq 0, seq 64, and the end
    rec = Recorder(info)
    for e in events:
        rec.add(e)
    out = rec.finish()
    assert out.n_samples == 1700 and out.meta["gaps"] == []
    expected = (ludb_raw - 2048) / 330.0
    assert np.abs(out.signal[0] - expected).max() < 1e-5
