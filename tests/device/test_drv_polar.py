"""Polar H10 driver (detak/device/drivers_polar.py) and the Heart Rate Service decoder
(detak/device/drivers_hrs.py), byte for byte from
../shared/docs/devices/01-polar-h10-pmd-and-hrs.md, and through bleak's real BleakClient with
a fake backend delivering those bytes."""

from __future__ import annotations

import asyncio
import struct
from typing import ClassVar

import numpy as np
import pytest

from detak.data.ludb import load_ludb
from detak.device.ble import BleTransport
from detak.device.drivers import DeviceCommandError
from detak.device.drivers_hrs import HR_MEASUREMENT, HRS_SERVICE, HeartRate, parse_heart_rate
from detak.device.drivers_polar import (
    PMD_CP,
    PMD_DATA,
    PMD_SERVICE,
    START_ECG,
    STOP_ECG,
    PolarH10Driver,
    decode_ecg_frame,
)
from detak.device.events import DeviceError, Reply, SampleBlock
from detak.device.fakeble import FakePeripheral, fake_backend
from detak.device.recorder import Recorder
from detak.device.session import Device
from detak.device.urls import make_transport_and_driver
from detak.signal.filters import resample

NS = 10**9


def _frame(ts_ns: int, samples_uv: list[int], frame_type: int = 0, mtype: int = 0) -> bytes:
    """Doc "PMD data frame": type, u64 LE timestamp of the last sample, frame type, int24 LE."""
    body = b"".join((v & 0xFFFFFF).to_bytes(3, "little") for v in samples_uv)
    return bytes([mtype]) + struct.pack("<Q", ts_ns) + bytes([frame_type]) + body


# --- bad input first ---------------------------------------------------------------------------


@pytest.mark.parametrize(("data", "message"), [
    (bytes(9), "PMD data frame of 9 bytes: the header alone is 10"),
    (_frame(0, [1], mtype=2), "measurement type 2, not ECG"),
    (_frame(0, [1], frame_type=0x80), "compressed PMD ECG frame"),
    (_frame(0, [1], frame_type=1), "PMD ECG frame type 1 not supported"),
    (_frame(0, [1]) + b"\x00", "4 sample bytes is not a multiple of 3"),
])
def test_malformed_data_frames_are_named_counted_and_reported_once(data, message) -> None:
    with pytest.raises(ValueError, match=message):
        decode_ecg_frame(data)
    drv = PolarH10Driver()
    first = drv.feed(data, PMD_DATA)
    assert [type(e) for e in first] == [DeviceError] and message.split(":")[0] in first[0].text
    assert drv.feed(data, PMD_DATA) == []                      # reported once, counted twice
    assert drv.stats()["bad_frames"] == 2


@pytest.mark.parametrize(("data", "message"), [
    (b"", "needs at least 2 bytes"),
    (b"\x01\x48", "flags say uint16 heart rate, 1 byte"),
    (b"\x08\x48\x01", "energy flag set but the value is missing"),
    (b"\x10\x48\x00\x04\x01", "odd number of RR bytes"),
])
def test_malformed_heart_rate_measurements(data, message) -> None:
    with pytest.raises(ValueError, match=message):
        parse_heart_rate(data)


def test_a_refused_start_names_the_pmd_status() -> None:
    """Doc "Control point response": F0, op, type, status 8 = INVALID_SAMPLE_RATE."""
    peripheral = PolarPeripheral(np.zeros(10, np.int32), answer=bytes.fromhex("F0 02 00 08"))
    with pytest.raises(DeviceCommandError,
                       match="Polar H10 refused 02000001820001010e00: INVALID_SAMPLE_RATE"):
        asyncio.run(_stream(peripheral, until=1))


# --- bytes from the doc ------------------------------------------------------------------------


def test_start_and_stop_commands_are_the_documented_bytes() -> None:
    # doc "Start ECG, 130 Hz, 14-bit (10 bytes)": op 02, type 00, SAMPLE_RATE 1x 0x0082,
    # RESOLUTION 1x 0x000E; "Stop ECG: 03 00"
    documented = bytes([0x02, 0x00, 0x00, 0x01, 0x82, 0x00, 0x01, 0x01, 0x0E, 0x00])
    assert documented == START_ECG
    assert bytes([0x03, 0x00]) == STOP_ECG


def test_ecg_frame_type_0_is_signed_24_bit_little_endian_microvolts() -> None:
    # doc "PMD data frame": byte 0 type, bytes 1..8 u64 LE ns timestamp, byte 9 frame type 0,
    # then 3 bytes per sample, signed 24-bit LE, µV
    data = bytes.fromhex("00" "0010a5d4e8000000" "00" "e80300" "18fcff" "ffff7f" "000080" "000000")
    ts, values = decode_ecg_frame(data)
    assert ts == 0x000000E8D4A51000 == 1_000_000_000_000
    assert values.tolist() == [1000, -1000, 8388607, -8388608, 0]


def test_heart_rate_measurement_flag_combinations() -> None:
    # doc "Heart Rate Measurement 0x2A37"
    assert parse_heart_rate(b"\x00\x3c") == HeartRate(60)                     # uint8, no contact
    assert parse_heart_rate(b"\x01\x2c\x01").bpm == 300                       # uint16 LE
    m = parse_heart_rate(bytes([0x1E, 0x50, 0x10, 0x00, 0x00, 0x03, 0x00, 0x02]))
    assert (m.bpm, m.contact, m.energy_kj) == (80, True, 16)
    assert m.rr_ms == (750.0, 500.0)                  # 768/1024 s and 512/1024 s, oldest first
    assert parse_heart_rate(b"\x04\x50").contact is False                     # supported, lost
    assert parse_heart_rate(b"\x02\x50").contact is None                      # not supported


def test_control_point_response_with_continuation_is_joined() -> None:
    drv = PolarH10Driver()
    # GET_MEASUREMENT_SETTINGS answer in two notifications ("more" flag in byte 4)
    assert drv.feed(bytes.fromhex("F0 01 00 00 01 00 01 82 00"), PMD_CP) == []
    (reply,) = drv.feed(bytes.fromhex("F0 01 00 00 00 01 01 0E 00"), PMD_CP)
    assert reply == Reply(0, 1, True, 0, "000182000101" "0e00")
    (event,) = drv.feed(bytes.fromhex("0A 00"), PMD_CP)           # not F0: a sensor event
    assert isinstance(event, DeviceError)


def test_lost_notifications_are_found_from_the_timestamps() -> None:
    drv = PolarH10Driver()
    spacing = NS / 130
    n = 73
    blocks = []
    for k in (0, 1, 3):                                            # frame 2 never arrives
        ts = int(round(((k + 1) * n - 1) * spacing))
        blocks += drv.feed(_frame(ts, list(range(k * n, (k + 1) * n))), PMD_DATA)
    assert [b.first_sample for b in blocks] == [0, 73, 219]
    assert drv.stats()["lost_samples"] == 73
    assert blocks[2].counts[0, 0] == 219                           # sample values line up


# --- through bleak's BleakClient with a fake Polar H10 ------------------------------------------


class PolarPeripheral(FakePeripheral):
    """Answers the control point like the H10 and streams ``uv`` in frames of 73 samples."""

    services: ClassVar[dict[str, dict[str, list[str]]]] = {
        PMD_SERVICE: {PMD_CP: ["read", "write", "notify"], PMD_DATA: ["notify"]},
        HRS_SERVICE: {HR_MEASUREMENT: ["notify"]},
    }
    name = "Polar H10 9A1B2C3D"

    def __init__(self, uv: np.ndarray, answer: bytes = bytes.fromhex("F0 02 00 00 00"),
                 skip: tuple[int, ...] = ()) -> None:
        super().__init__()
        self.uv, self.answer, self.skip = uv, answer, skip
        self.task: asyncio.Task | None = None

    async def on_write(self, uuid: str, data: bytes) -> None:
        if uuid == PMD_CP and data[0] == 0x02:
            self.notify(PMD_CP, self.answer)
            if self.answer[3] == 0:
                self.task = asyncio.get_running_loop().create_task(self._stream())
        elif uuid == PMD_CP and data[0] == 0x03:
            self.notify(PMD_CP, bytes.fromhex("F0 03 00 00 00"))

    async def _stream(self) -> None:
        t0 = 600 * NS                           # the strap's clock: ns since 2000-01-01
        n = 73
        self.notify(HR_MEASUREMENT, bytes([0x10, 61, 0x00, 0x04]))     # HR 61, RR 1000 ms
        for k, a in enumerate(range(0, self.uv.size, n)):
            chunk = self.uv[a:a + n].tolist()
            ts = t0 + int(round((a + len(chunk) - 1) * NS / 130))
            if k not in self.skip:
                self.notify(PMD_DATA, _frame(ts, chunk))
            await asyncio.sleep(0)


async def _stream(peripheral: PolarPeripheral, until: int, responses: list | None = None):
    base = fake_backend(peripheral)

    class Spy(base):                                     # records write-with-response flags
        async def write_gatt_char(self, characteristic, data, response):
            if responses is not None:
                responses.append(response)
            await super().write_gatt_char(characteristic, data, response)

    drv = PolarH10Driver()
    dev = Device(BleTransport("A0:9E:1A:00:00:01", notify=drv.ble_notify, write=drv.ble_write,
                              backend=Spy), drv)
    events = []
    try:
        await dev.connect()
        info = await dev.start()
        end = 0
        while end < until:
            e = await dev.next_event(timeout=2.0)
            if e is None:
                break
            events.append(e)
            if isinstance(e, SampleBlock):
                end = e.first_sample + e.n_samples
        await dev.stop()
    finally:
        await dev.close()
    return info, events


@pytest.fixture(scope="module")
def ludb_uv() -> np.ndarray:
    """10 s of LUDB record 1, lead II, at the H10's 130 Hz, in integer µV."""
    src = load_ludb(1).recording
    return np.rint(resample(src.lead("II")[None], src.fs, 130.0)[0] * 1000).astype(np.int32)


def test_streaming_ecg_over_bleak_records_the_signal_in_millivolts(ludb_uv) -> None:
    responses: list = []
    peripheral = PolarPeripheral(ludb_uv)
    info, events = asyncio.run(_stream(peripheral, ludb_uv.size, responses))
    assert (info.fs, info.channels, info.lsb_nv, info.model) == (130.0, ("ECG",), 1000.0,
                                                                 "Polar H10")
    assert peripheral.writes[0] == (PMD_CP, START_ECG)
    assert peripheral.writes[-1] == (PMD_CP, STOP_ECG)
    assert responses and all(responses)          # the control point takes writes with response
    hr = [e for e in events if isinstance(e, HeartRate)]
    assert hr and hr[0].bpm == 61 and hr[0].rr_ms == (1000.0,)
    rec = Recorder(info, limit=ludb_uv.size)
    for e in events:
        rec.add(e)
    out = rec.finish()
    assert out.meta["gaps"] == []
    assert np.abs(out.signal[0] - ludb_uv / 1000.0).max() < 1e-6


def test_detak_record_from_the_h10_writes_its_heart_rate_beside_the_ecg(ludb_uv, tmp_path,
                                                                        monkeypatch) -> None:
    import csv

    from detak.data.wfdb_io import read_wfdb
    from detak.device import record as record_mod

    peripheral = PolarPeripheral(ludb_uv)

    def open_fake_h10(url: str) -> Device:
        drv = PolarH10Driver()
        return Device(BleTransport("A0:9E:1A:00:00:01", notify=drv.ble_notify,
                                   write=drv.ble_write, backend=fake_backend(peripheral)), drv)

    monkeypatch.setattr(record_mod, "open_device", open_fake_h10)
    hea = record_mod.record("ble://A0:9E:1A:00:00:01?profile=polar-h10", 2.0, tmp_path,
                            name="h10")
    rec = read_wfdb(hea)
    assert rec.n_samples == 260 and rec.meta["device_heart_rate"]["file"] == "h10.hr.csv"
    with open(tmp_path / "h10.hr.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["sample"], r["hr_bpm"], r["rr_ms"]) for r in rows] == [("0", "61", "1000.0")]
    assert float(rows[0]["host_time_s"]) > 0


def test_a_lost_notification_over_bleak_becomes_a_gap_of_its_samples(ludb_uv) -> None:
    peripheral = PolarPeripheral(ludb_uv, skip=(4,))
    info, events = asyncio.run(_stream(peripheral, ludb_uv.size))
    rec = Recorder(info, limit=ludb_uv.size)
    for e in events:
        rec.add(e)
    out = rec.finish()
    assert out.meta["gaps"] == [[4 * 73, 5 * 73, "lost"]]
    ok = ~np.isnan(out.signal[0])
    assert np.abs(out.signal[0, ok] - ludb_uv[ok] / 1000.0).max() < 1e-6


def test_ble_urls_pick_the_polar_and_hrs_drivers_and_their_characteristics() -> None:
    t, d = make_transport_and_driver("ble://A0:9E:1A:00:00:01?profile=polar-h10")
    assert d.name == "polar-h10" and t.write == PMD_CP
    assert set(t.notify) == {PMD_CP, PMD_DATA, HR_MEASUREMENT}
    t, d = make_transport_and_driver("ble://E0:00:00:00:00:04?profile=hrs")
    assert d.name == "hrs" and t.notify == (HR_MEASUREMENT,) and t.write is None
    t, d = make_transport_and_driver("ble://A0:9E:1A:00:00:01?profile=polar-h10&lead=CM5")
    assert d.lead == "CM5"
    with pytest.raises(ValueError, match="unknown parameter.*gain"):
        make_transport_and_driver("ble://A0:9E:1A:00:00:01?profile=polar-h10&gain=2")


def test_hrs_driver_emits_heart_rate_events_only() -> None:
    from detak.device.drivers import get_driver

    drv = get_driver("hrs")
    (hr,) = drv.feed(b"\x10\x48\x00\x04", HR_MEASUREMENT, host_time=3.0)
    assert hr == HeartRate(72, None, None, (1000.0,), 3.0)
    assert drv.feed(b"\x10\x48\x00\x04", "0000ffff-0000-1000-8000-00805f9b34fb") == []
    (err,) = drv.feed(b"\x01", HR_MEASUREMENT)
    assert isinstance(err, DeviceError) and drv.stats() == {"measurements": 1,
                                                             "bad_measurements": 1}
