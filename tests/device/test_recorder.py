"""Tests for detak.device.recorder.Recorder on a real PTB-XL record cut into device blocks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from detak.data.ptbxl import open_ptbxl
from detak.device.chunks import load_parts
from detak.device.events import (
    CalPulseChange,
    DeviceError,
    HeartRate,
    LeadOffChange,
    LinkLost,
    LinkRestored,
    SampleBlock,
    StreamEnded,
    StreamInfo,
)
from detak.device.recorder import Recorder, heart_rate_rows, recording_from_parts
from detak.device.scaling import ChannelScale


@pytest.fixture(scope="module")
def source():
    rec = open_ptbxl().record(1)
    counts = np.rint(rec.signal.astype(np.float64) * 1000).astype(np.int32)   # µV counts
    info = StreamInfo(fs=100.0, channels=tuple(rec.leads), lsb_nv=1000.0, model="emu",
                      serial="ptbxl-1", firmware="1", driver="bridge")
    return rec, counts, info


def _blocks(counts: np.ndarray, size: int = 5, t0: float = 0.0, fs: float = 100.0):
    for i in range(0, counts.shape[1], size):
        yield SampleBlock(counts[:, i:i + size], i, None, t0 + (i + size) / fs)


def _nan_spans(signal: np.ndarray) -> list[list[int]]:
    m = np.isnan(signal).all(axis=0).astype(np.int8)
    idx = np.flatnonzero(np.diff(np.concatenate([[0], m, [0]])))
    return [[int(a), int(b)] for a, b in zip(idx[::2], idx[1::2], strict=True)]


# --- bad input first ---------------------------------------------------------------------------


def test_a_stream_without_a_usable_sample_rate_or_lsb_is_refused(source) -> None:
    _, _, info = source
    with pytest.raises(ValueError, match="declares sample rate 0"):
        Recorder(StreamInfo(0.0, info.channels, 1000.0, model="x"))
    with pytest.raises(ValueError, match="declares LSB 0.0 nV"):
        Recorder(StreamInfo(100.0, info.channels, 0.0, model="x"))
    # a heart-rate-only BLE profile declares no ECG channel: refused at once, not recorded
    # until the idle timeout
    with pytest.raises(ValueError, match=r"streams no ECG channel \(a heart-rate-only"):
        Recorder(StreamInfo(1.0, (), 1000.0, model="Polar H10"))


def test_a_heart_rate_only_stream_is_refused_with_what_to_use_instead() -> None:
    with pytest.raises(ValueError, match=r"profile=polar-h10.*NAME\.hr\.csv.*HeartRate events"):
        Recorder(StreamInfo(1.0, (), 1.0, model="BLE heart-rate sensor", driver="hrs"))


# --- the happy path ----------------------------------------------------------------------------


def test_all_blocks_give_back_the_record_in_millivolts(source) -> None:
    rec, counts, info = source
    r = Recorder(info, limit=1000)
    for b in _blocks(counts):
        r.add(b)
    out = r.finish(stats={"crc_errors": 0})
    assert r.done
    assert np.array_equal(out.signal, rec.signal)          # 1 µV LSB: exact in float32
    assert out.leads == rec.leads and out.fs == 100.0 and out.device_id == "emu:ptbxl-1"
    assert out.meta["gaps"] == [] and out.meta["truncated"] is False
    assert out.calibration == "device-info" and out.meta["link_stats"] == {"crc_errors": 0}


# --- losses ------------------------------------------------------------------------------------


def test_missing_blocks_become_exactly_those_nan_spans(source) -> None:
    rec, counts, info = source
    r = Recorder(info, limit=1000, chunk_seconds=0.3)
    lost = {3, 4, 17, 90, 199}                                       # block numbers (5 samples)
    for k, b in enumerate(_blocks(counts)):
        if k not in lost:
            r.add(b)
    r.add(StreamEnded(1000, "stopped"))                 # the last block was lost as well
    out = r.finish()
    expected = [[15, 25], [85, 90], [450, 455], [995, 1000]]
    assert [g[:2] for g in out.meta["gaps"]] == expected
    assert _nan_spans(out.signal) == expected
    ok = ~np.isnan(out.signal).all(axis=0)
    assert np.array_equal(out.signal[:, ok], rec.signal[:, ok])


def test_duplicates_and_late_blocks_are_counted_not_duplicated(source) -> None:
    _, counts, info = source
    r = Recorder(info, limit=400, chunk_seconds=0.5)
    blocks = list(_blocks(counts[:, :400]))
    for b in blocks[:31]:                               # 155 samples; 0-149 are flushed
        r.add(b)
    r.add(blocks[30])                                   # the same block again
    r.add(blocks[2])                                    # long flushed: too late
    for b in blocks[31:]:
        r.add(b)
    out = r.finish()
    assert r.counters["duplicate_samples"] == 5 and r.counters["late_samples"] == 5
    assert np.array_equal(np.rint(out.signal * 1000), counts[:, :400])


def test_stream_end_with_unreceived_samples_ends_in_a_gap(source) -> None:
    _, counts, info = source
    r = Recorder(info, limit=1000)
    for b in list(_blocks(counts))[:100]:                # 500 samples arrive
        r.add(b)
    r.add(StreamEnded(520, "end_of_source"))             # the device made 20 more
    out = r.finish()
    assert out.n_samples == 520 and out.meta["truncated"] is True
    assert out.meta["gaps"] == [[500, 520, "lost"]]


def test_a_counter_restart_after_a_link_loss_is_placed_by_the_host_clock(source) -> None:
    _, counts, info = source
    r = Recorder(info, limit=1000)
    blocks = list(_blocks(counts, t0=100.0))
    for b in blocks[:60]:                                # samples 0..299, last at t=103.0
        r.add(b)
    r.add(LinkLost(103.1, "port vanished"))
    r.add(LinkRestored(104.5, 3))
    # the device rebooted: its counter starts at 0 again; the block arrives at t = 105.05
    r.add(SampleBlock(counts[:, 500:505], 0, None, 105.05))
    out = r.finish()
    assert out.meta["rebased"] == [500]
    assert out.meta["gaps"][0] == [300, 500, "link"]
    assert out.meta["link"] == {"lost": 1, "restored": 1}
    assert np.array_equal(np.rint(out.signal[:, 500:505] * 1000), counts[:, 500:505])


# --- flags -------------------------------------------------------------------------------------


def test_lead_off_pulse_and_device_errors_become_spans_and_lists(source) -> None:
    _, counts, info = source
    r = Recorder(info, limit=1000)
    for k, b in enumerate(_blocks(counts)):
        if k == 20:
            r.add(LeadOffChange(100, frozenset({"V2"}), ("V2",)))
        if k == 30:
            r.add(LeadOffChange(150, frozenset({"V2", "I", "III"}), ("V2", "LA")))
            r.add(CalPulseChange(150, True))
        if k == 50:
            r.add(LeadOffChange(250, frozenset(), ()))
            r.add(CalPulseChange(260, False))
            r.add(DeviceError(2, "overrun", 251))
        if k == 150:
            r.add(LeadOffChange(750, frozenset({"V6"}), ("V6",)))
        r.add(b)
    meta = r.finish().meta
    assert meta["lead_off"] == {"I": [[150, 250]], "III": [[150, 250]], "V2": [[100, 250]],
                                "V6": [[750, 1000]]}
    assert meta["cal_pulse"] == [[150, 260]]
    assert meta["device_errors"] == [{"code": 2, "text": "overrun", "sample": 251}]


def test_a_calibration_hook_scales_per_channel(source) -> None:
    rec, counts, info = source

    class Doubler:
        def scale_for(self, info: StreamInfo) -> ChannelScale:
            n = info.n_channels
            return ChannelScale(np.full(n, 1000.0), np.full(n, 2.0), np.full(n, 10.0), "x2")

    r = Recorder(info, limit=100, calibration=Doubler())
    for b in list(_blocks(counts))[:20]:
        r.add(b)
    out = r.finish()
    expected = (counts[:, :100] - 10) * 2 / 1000
    assert np.allclose(out.signal, expected, atol=1e-6) and out.calibration == "x2"
    assert out.meta["calibration"]["gain"] == [2.0] * 12


# --- heart rate --------------------------------------------------------------------------------


def test_heart_rates_are_kept_at_the_sample_they_arrived_with(source, tmp_path) -> None:
    _, counts, info = source
    r = Recorder(info, tmp_path / "h.parts", limit=300, chunk_seconds=1.0)
    hr = {0: HeartRate(61, None, None, (1000.0,), 0.05),
          20: HeartRate(62, True, 7, (980.0, 990.5), 1.05)}
    for k, b in enumerate(_blocks(counts[:, :300])):
        if k in hr:
            r.add(hr[k])
        r.add(b)
    out = r.finish()
    assert out.meta["device_heart_rate"] == {"measurements": 2, "rr_intervals": 3}
    _, events, _ = load_parts(tmp_path / "h.parts")          # in the crash journal as well
    assert heart_rate_rows(events, out.n_samples) == [
        {"sample": 0, "host_time_s": 0.05, "hr_bpm": 61, "rr_ms": [1000.0], "contact": None},
        {"sample": 100, "host_time_s": 1.05, "hr_bpm": 62, "rr_ms": [980.0, 990.5],
         "contact": True}]
    assert heart_rate_rows(events, 50) == heart_rate_rows(events, 300)[:1]


def test_a_recording_without_heart_rates_says_nothing_about_them(source) -> None:
    _, counts, info = source
    r = Recorder(info, limit=100)
    for b in _blocks(counts[:, :100]):
        r.add(b)
    assert "device_heart_rate" not in r.finish().meta


# --- the journal -------------------------------------------------------------------------------


def test_after_a_crash_everything_up_to_the_last_chunk_is_recovered(source, tmp_path) -> None:
    rec, counts, info = source
    r = Recorder(info, tmp_path / "x.parts", limit=1000, chunk_seconds=1.0, name="x")
    for k, b in enumerate(_blocks(counts)):
        if k == 77:                                        # crash after 77 blocks = 385 samples
            break
        if k != 10:
            r.add(b)
    # no finish(): the process died. Chunks 0-99, 100-199, 200-299 were written.
    session, events, got = load_parts(tmp_path / "x.parts")
    out = recording_from_parts(session, events, got)
    assert out.n_samples == 300 and out.meta["recovered"] is True
    assert out.meta["gaps"] == [[50, 55, "lost"]]
    ok = ~np.isnan(out.signal).all(axis=0)
    assert np.array_equal(out.signal[:, ok], rec.signal[:, :300][:, ok])
    assert out.name == "x" and out.device_id == "emu:ptbxl-1"


def test_finish_writes_the_whole_recording_to_the_journal(source, tmp_path: Path) -> None:
    _, counts, info = source
    r = Recorder(info, tmp_path / "y.parts", limit=1000, chunk_seconds=0.7)
    for b in _blocks(counts):
        r.add(b)
    out = r.finish()
    _, events, got = load_parts(tmp_path / "y.parts")
    assert np.array_equal(got, counts)
    assert events[-1]["kind"] == "finished" and events[-1]["n_samples"] == 1000
    assert "recovered" not in out.meta
