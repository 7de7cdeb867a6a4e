"""Tests for the virtual device (detak.firmware_bridge.emulator / emu_config), driven with an
explicit clock: replay exactness, pacing, the command rules, and every injected fault."""

from __future__ import annotations

import numpy as np
import pytest

from detak.data.ludb import load_ludb
from detak.data.ptbxl import open_ptbxl
from detak.firmware_bridge.emu_config import parse_emu_url
from detak.firmware_bridge.emulator import VirtualDevice
from detak.firmware_bridge.framing import FrameDecoder, encode_frame
from detak.firmware_bridge.messages import (
    Ack,
    CalState,
    DeviceInfo,
    GetInfo,
    LeadOff,
    Nack,
    NackReason,
    Samples,
    SetCalPulse,
    Start,
    Stop,
    StreamEnd,
    decode_packet,
    encode_message,
)


@pytest.fixture(scope="module")
def ptb1():
    return open_ptbxl().record(1)


@pytest.fixture(scope="module")
def ludb1():
    return load_ludb(1).recording


def _dev(rec, url_query: str = "", source: str = "ptbxl") -> VirtualDevice:
    cfg = parse_emu_url(f"emu://{source}/1" + (f"?{url_query}" if url_query else ""))
    return VirtualDevice(rec, cfg)


def _messages(data: bytes, decoder: FrameDecoder | None = None) -> list:
    return [decode_packet(p)[1] for p in (decoder or FrameDecoder()).feed(data)]


def _run_all(dev: VirtualDevice, now: float = 0.0) -> list:
    dev.receive(encode_message(GetInfo(), 0) + encode_message(Start(), 1), now)
    out, dec = [], FrameDecoder()
    for _ in range(10000):
        out += _messages(dev.poll(now), dec)
        if not dev.streaming:
            break
    return out


def _received(msgs: list, n_channels: int, n: int) -> np.ndarray:
    got = np.full((n_channels, n), np.iinfo(np.int64).min, dtype=np.int64)
    for m in msgs:
        if isinstance(m, Samples):
            got[:, m.first_sample:m.first_sample + m.n_samples] = m.counts
    return got


def _spans(mask: np.ndarray) -> list[tuple[int, int]]:
    idx = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return [(int(a), int(b)) for a, b in zip(idx[::2], idx[1::2], strict=True)]


# --- bad input first ---------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "message"), [
    ("emu://ptbxl/1?sped=2", "unknown parameter 'sped'"),
    ("emu://ptbxl/1?drop=2", r"drop='2' must be in \[0, 1\]"),
    ("emu://ptbxl/1?speed=fast", "speed='fast' is not a number"),
    ("emu://ptbxl/1?leadoff=x", "leadoff field 1='x' is not a number"),
    ("emu://ptbxl/1?noise=1:2:3:4", "more than 3 ':'-separated fields"),
    ("emu://ptbxl/1?format=int12", "format='int12'; use int16 or int24"),
    ("emu://ptbxl/1?link=usb", "link='usb'; use pty, tcp, ble"),
    ("emu://mitdb/100", "source 'mitdb' unknown"),
    ("emu://ptbxl/", "names no record"),
    ("serial:///dev/x", "not an emu:// URL"),
])
def test_bad_urls_name_the_problem(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_emu_url(url)


def test_unknown_leadoff_electrode_lists_the_devices_electrodes(ptb1) -> None:
    with pytest.raises(ValueError, match="leadoff electrode 'XX' unknown; this device has RA, LA"):
        _dev(ptb1, "leadoff=1:1:XX")


def test_an_unknown_ptbxl_record_is_a_named_error_not_a_traceback() -> None:
    from detak.firmware_bridge.emu_config import load_source

    with pytest.raises(ValueError, match=r"emu://ptbxl/999999: .*999999"):
        load_source("ptbxl", "999999")


def test_missing_source_files_are_reported() -> None:
    with pytest.raises(FileNotFoundError, match="nope.hea does not exist"):
        parse_emu_url("emu://file//nonexistent/nope.hea").load()


# --- replay ------------------------------------------------------------------------------------


def test_ptbxl_replay_is_exactly_the_microvolt_record(ptb1) -> None:
    msgs = _run_all(_dev(ptb1, "speed=0"))
    info = msgs[0]
    assert isinstance(info, DeviceInfo) and info.fs == 100.0 and info.lsb_nv == 1000.0
    assert info.channels == ptb1.leads
    got = _received(msgs, 12, 1000)
    expected = np.rint(ptb1.signal.astype(np.float64) * 1000)
    assert np.array_equal(got, expected)
    assert isinstance(msgs[-1], StreamEnd) and msgs[-1].next_sample == 1000


def test_ludb_replay_in_int24_is_within_half_an_lsb(ludb1) -> None:
    dev = _dev(ludb1, "speed=0&lsb_nv=100", source="ludb")
    msgs = _run_all(dev)
    assert msgs[0].sample_format == 3
    got = _received(msgs, 12, 5000) * 100e-6                          # counts -> mV
    assert np.abs(got - ludb1.signal).max() <= 0.5 * 100e-6 + 1e-7


def test_pacing_follows_speed_and_clock_drift(ptb1) -> None:
    for speed, ppm, t, expected in [(1, 0, 2.0, 200), (5, 0, 1.0, 500), (1, 5000, 4.0, 402)]:
        dev = _dev(ptb1, f"speed={speed}&drift_ppm={ppm}&block=1")
        dev.receive(encode_message(Start(), 0), now=10.0)
        msgs = _messages(dev.poll(10.0 + t))
        assert sum(m.n_samples for m in msgs if isinstance(m, Samples)) == expected


def test_timestamps_are_the_device_clock_in_microseconds(ptb1) -> None:
    msgs = _run_all(_dev(ptb1, "speed=0&block=3"))
    blocks = [m for m in msgs if isinstance(m, Samples)]
    assert [b.timestamp_us for b in blocks[:3]] == [0, 30000, 60000]


# --- command rules -----------------------------------------------------------------------------


def test_retried_command_is_answered_again_not_executed_twice(ptb1) -> None:
    dev = _dev(ptb1, "speed=1")
    dev.receive(encode_message(Start(), 7), now=0.0)
    first = _messages(dev.poll(0.5))
    dev.receive(encode_message(Start(), 7), now=0.5)       # the ACK got lost: same seq again
    again = _messages(dev.poll(0.5))
    assert first[0] == Ack(7, 0x81) and again == [Ack(7, 0x81)]
    dev.receive(encode_message(Start(), 8), now=0.6)       # a new START while streaming
    later = _messages(dev.poll(0.6))
    assert [m for m in later if not isinstance(m, Samples)] == [
        Nack(8, 0x81, NackReason.ALREADY_IN_STATE)]
    firsts = [m.first_sample for m in first + again + later if isinstance(m, Samples)]
    assert firsts == list(range(0, 60, 2))                  # one stream, never restarted


def test_unknown_command_bad_version_and_stop_when_stopped(ptb1) -> None:
    dev = _dev(ptb1)
    dev.receive(encode_frame(bytes([1, 0x9F, 3, 0])), 0.0)
    dev.receive(encode_frame(bytes([2, 0x80, 4, 0])), 0.0)
    dev.receive(encode_message(Stop(), 5), 0.0)
    dev.receive(encode_message(LeadOff(0, 0), 6), 0.0)      # a device message sent to a device
    replies = _messages(dev.poll(0.0))
    assert [(r.seq, r.reason) for r in replies] == [
        (3, NackReason.UNKNOWN_COMMAND), (4, NackReason.BAD_VERSION),
        (5, NackReason.ALREADY_IN_STATE), (6, NackReason.UNKNOWN_COMMAND)]


def test_stop_acks_and_ends_the_stream_where_it_was(ptb1) -> None:
    dev = _dev(ptb1, "speed=1&block=1")
    dev.receive(encode_message(Start(), 0), 0.0)
    dev.poll(0.3)
    dev.receive(encode_message(Stop(), 1), 0.3)
    msgs = _messages(dev.poll(0.3))
    assert msgs[-2:] == [Ack(1, 0x82), StreamEnd(30, 0)]
    assert _messages(dev.poll(5.0)) == []


# --- faults ------------------------------------------------------------------------------------


def test_dropped_and_corrupted_frames_are_exactly_the_logged_ones(ptb1) -> None:
    dev = _dev(ptb1, "speed=0&drop=0.05&corrupt=0.003&seed=4")
    dec = FrameDecoder()
    dev.receive(encode_message(Start(), 0), 0.0)
    msgs = []
    while dev.streaming:
        msgs += _messages(dev.poll(0.0), dec)
    got = _received(msgs, 12, 1000)
    missing = (got == np.iinfo(np.int64).min).all(axis=0)
    kinds = {e["kind"] for e in dev.log}
    assert {"drop", "corrupt"} <= kinds
    assert _spans(missing) == dev.lost_spans()
    n_corrupt = sum(e["kind"] == "corrupt" for e in dev.log)
    assert dec.stats.bad_frames >= n_corrupt                # each corrupted frame was rejected
    ok = ~missing
    assert np.array_equal(got[:, ok], np.rint(ptb1.signal.astype(np.float64) * 1000)[:, ok])


def test_same_seed_same_faults_other_seed_other_faults(ptb1) -> None:
    logs = []
    for seed in (1, 1, 2):
        dev = _dev(ptb1, f"speed=0&drop=0.05&seed={seed}")
        _run_all(dev)
        logs.append(dev.lost_spans())
    assert logs[0] == logs[1] != logs[2]


def test_leadoff_is_announced_and_rails_exactly_the_fed_leads(ptb1) -> None:
    dev = _dev(ptb1, "speed=0&leadoff=2:1.5:LA")
    msgs = _run_all(dev)
    offs = [m for m in msgs if isinstance(m, LeadOff)]
    la = dev.info.electrodes.index("LA")
    assert offs == [LeadOff(200, 1 << la), LeadOff(350, 0)]
    got = _received(msgs, 12, 1000)
    railed = {dev.info.channels[i] for i in range(12) if (got[i, 200:350] == 32767).all()}
    assert railed == {"I", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"}
    assert not (got[:, :200] == 32767).any() and not (got[:, 350:] == 32767).any()
    (entry,) = [e for e in dev.log if e["kind"] == "leadoff"]
    assert (entry["first_sample"], entry["n_samples"], entry["electrode"]) == (200, 150, "LA")


def test_calibration_pulse_is_a_1_mv_square_wave_with_cal_state(ptb1) -> None:
    dev = _dev(ptb1, "speed=0&pulse=3:2")
    msgs = _run_all(dev)
    assert [m for m in msgs if isinstance(m, CalState)] == [CalState(300, True),
                                                           CalState(500, False)]
    got = _received(msgs, 12, 1000)
    assert (got[:, 300:350] == 1000).all() and (got[:, 350:400] == 0).all()
    assert (got[:, 400:450] == 1000).all()


def test_host_can_switch_the_pulse_and_gain_error_scales_it(ptb1) -> None:
    dev = _dev(ptb1, "speed=1&block=10&gain=1.05")
    dev.receive(encode_message(Start(), 0) + encode_message(SetCalPulse(True), 1), 0.0)
    msgs = _messages(dev.poll(1.0))
    assert CalState(0, True) in msgs
    got = _received(msgs, 12, 100)
    assert (got[:, :50] == 1050).all()


def _until_first_samples(msgs: list) -> list:
    i = next(k for k, m in enumerate(msgs) if isinstance(m, Samples))
    return msgs[:i + 1]


def test_at_start_nothing_is_announced_when_all_electrodes_are_on_and_the_pulse_off(ptb1):
    # docs/protocol.md 4.2: at START the host assumes no electrode off and the pulse off
    msgs = _until_first_samples(_run_all(_dev(ptb1, "speed=0")))
    assert [type(m) for m in msgs] == [DeviceInfo, Ack, Ack, Samples]


def test_at_start_a_lead_off_or_a_pulse_already_on_is_announced_at_sample_0(ptb1) -> None:
    dev = _dev(ptb1, "speed=0&leadoff=0:1:LL")
    dev.receive(encode_message(SetCalPulse(True), 0), 0.0)        # while stopped
    msgs = _until_first_samples(_run_all(dev))
    ll = 1 << dev.info.electrodes.index("LL")
    assert msgs[-3:] == [LeadOff(0, ll), CalState(0, True), msgs[-1]]
    assert msgs[-1].first_sample == 0


def test_the_pulse_setting_is_kept_across_stop_and_start(ptb1) -> None:
    dev = _dev(ptb1, "speed=1&block=10")
    dev.receive(encode_message(Start(), 0), 0.0)
    dev.poll(0.5)
    dev.receive(encode_message(SetCalPulse(True), 1), 0.5)       # on from sample ~50
    dev.poll(1.0)
    dev.receive(encode_message(Stop(), 2), 1.0)
    dev.poll(1.0)
    dev.receive(encode_message(Start(), 3), 2.0)                 # a new stream from sample 0
    msgs = _messages(dev.poll(2.5))
    assert _until_first_samples(msgs)[-2:-1] == [CalState(0, True)]
    got = _received(msgs, 12, 50)
    assert (got[:, :50] == 1000).all()                          # the pulse from sample 0


def test_noise_burst_has_the_requested_rms_and_stays_in_its_span(ptb1) -> None:
    dev = _dev(ptb1, "speed=0&noise=4:2:0.5")
    got = _received(_run_all(dev), 12, 1000).astype(float)
    clean = np.rint(ptb1.signal.astype(np.float64) * 1000)
    diff = got - clean
    assert not diff[:, :400].any() and not diff[:, 600:].any()
    assert np.std(diff[:, 400:600]) == pytest.approx(500, rel=0.1)


def test_disconnect_takes_the_link_down_and_logs_what_it_cost(ptb1) -> None:
    dev = _dev(ptb1, "speed=1&block=10&disconnect=2:1")
    dev.receive(encode_message(Start(), 0), 0.0)
    before = _messages(dev.poll(2.5))
    assert not dev.link_up
    assert max(m.first_sample for m in before if isinstance(m, Samples)) == 190
    assert dev.poll(2.9) == b""                                  # down: nothing is sent
    dev.poll(3.2)
    assert dev.link_up and not dev.subscribed                   # back, waiting for the host
    dev.receive(encode_message(GetInfo(), 1), 3.3)
    after = _messages(dev.poll(3.3))
    assert isinstance(after[0], DeviceInfo)
    assert after[1:4] == [LeadOff(320, 0), CalState(320, False), Ack(1, 0x80)]
    assert [m.first_sample for m in after if isinstance(m, Samples)] == [320]
    (entry,) = [e for e in dev.log if e["kind"] == "disconnect"]
    assert (entry["first_sample"], entry["n_samples"]) == (200, 120)


def test_emu_file_replays_any_record_file(tmp_path, ludb1) -> None:
    from detak.data.wfdb_io import write_wfdb

    header = write_wfdb(ludb1.replace(signal=ludb1.signal[:3, :1000], leads=["I", "II", "V1"]),
                        tmp_path / "three")
    cfg = parse_emu_url(f"emu://file/{header}?speed=0")
    assert cfg.target == str(header)
    dev = VirtualDevice(cfg.load(), cfg)
    assert dev.info.channels == ("I", "II", "V1") and dev.sample_format == 3
    assert dev.info.electrodes == ("RA", "LA", "LL", "RL", "V1")
    got = _received(_run_all(dev), 3, 1000) / 1000
    assert np.abs(got - ludb1.signal[:3, :1000]).max() <= 0.0005 + 1e-6


def test_zero_bytes_and_empty_frames_from_the_host_are_ignored(ptb1) -> None:
    # docs/protocol.md 2.3: a sender may write 0x00 between frames (e.g. one on connecting)
    dev = _dev(ptb1)
    dev.receive(b"\x00\x00" + encode_message(GetInfo(), 40) + b"\x00\x00\x00", 0.0)
    msgs = _messages(dev.poll(0.0))
    assert [type(m).__name__ for m in msgs] == ["DeviceInfo", "Ack"]
    assert msgs[1] == Ack(40, 0x80)


@pytest.mark.parametrize("repeat", ["fresh", "bytes"])
def test_a_lost_answer_uses_its_sequence_numbers_and_a_retry_repeats_it(ptb1, repeat) -> None:
    dev = _dev(ptb1, f"speed=1&lose_answer=GET_INFO&repeat={repeat}")
    dec = FrameDecoder()
    dev.receive(encode_message(GetInfo(), 7), 0.0)
    assert dev.poll(0.0) == b""                         # the link lost DEVICE_INFO and ACK
    assert dev.log == [{"kind": "lost_answer", "command": "GET_INFO", "seq": 7,
                        "device_seqs": [0, 1]}]
    dev.receive(encode_message(GetInfo(), 7), 0.5)     # the host's retry
    seqs = [decode_packet(p)[0] for p in dec.feed(dev.poll(0.5))]
    assert seqs == ([0, 1] if repeat == "bytes" else [2, 3])
    dev.receive(encode_message(GetInfo(), 8), 0.6)     # a new command: answered, not lost
    assert [decode_packet(p)[0] for p in dec.feed(dev.poll(0.6))] == (
        [2, 3] if repeat == "bytes" else [4, 5])
