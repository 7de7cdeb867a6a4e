"""OpenBCI Cyton driver (detak/device/drivers_cyton.py), byte for byte from
../shared/docs/devices/03-openbci-cyton.md, and over a real pty against the emulator's Cyton
impersonation (``emu://...&format=cyton``)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from detak.data.ptbxl import open_ptbxl
from detak.data.wfdb_io import read_wfdb
from detak.device.drivers_cyton import CytonDriver, cyton_lsb_nv, decode_cyton_packet
from detak.device.events import SampleBlock
from detak.device.record import record
from detak.device.urls import make_transport_and_driver
from detak.firmware_bridge.personalities import CYTON_LSB_NV
from detak.signal.filters import resample


def _packet(num: int, channels: list[int], footer: int = 0xC0, aux: bytes = bytes(6)) -> bytes:
    """Doc "33-byte packet": A0, sample number, 8 x int24 MSB first, 6 aux bytes, 0xCX."""
    body = b"".join((v & 0xFFFFFF).to_bytes(3, "big") for v in channels)
    return bytes([0xA0, num]) + body + aux + bytes([footer])


def _blocks(events: list) -> list[SampleBlock]:
    return [e for e in events if isinstance(e, SampleBlock)]


# --- bad input first ---------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [
    _packet(0, [0] * 8)[:32],                              # one byte short
    b"\x41" + _packet(0, [0] * 8)[1:],                     # the radio-side 'A' header
    _packet(0, [0] * 8, footer=0xD0),                      # not a 0xCX footer
])
def test_packets_that_break_the_layout_are_refused(bad) -> None:
    with pytest.raises(ValueError, match="not a Cyton packet"):
        decode_cyton_packet(bad)


@pytest.mark.parametrize(("options", "message"), [
    ({"gain": "5"}, r"gain 5 invalid; the ADS1299 PGA has \(1, 2, 4, 6, 8, 12, 24\)"),
    ({"gain": "x"}, "gain='x' and fs=250.0 must be numbers"),
    ({"leads": "I,II"}, "must name 8 channels"),
    ({"fs": "0"}, "fs='0' must be > 0"),
])
def test_bad_driver_options_are_named(options, message) -> None:
    with pytest.raises(ValueError, match=message):
        CytonDriver(**options)


def test_url_options_reach_the_driver_and_unknown_ones_are_named() -> None:
    _, d = make_transport_and_driver("serial:///dev/ttyUSB0?driver=cyton&gain=8")
    assert d.name == "cyton" and d.gain == 8 and d.stream_info().lsb_nv == pytest.approx(
        4.5e9 / 8 / (2**23 - 1))
    with pytest.raises(ValueError, match="unknown parameter.*lsb.*known for serial: baud, "
                                         "driver, fs, gain, leads"):
        make_transport_and_driver("serial:///dev/ttyUSB0?driver=cyton&lsb=3")
    with pytest.raises(ValueError, match="gain 3 invalid"):
        make_transport_and_driver("serial:///dev/ttyUSB0?driver=cyton&gain=3")


# --- bytes from the doc ------------------------------------------------------------------------


def test_channel_values_are_24_bit_big_endian_twos_complement() -> None:
    values = [1, -1, 0x7FFFFF, -0x800000, 0x123456, -2, 0, 1000]
    num, got, footer, aux = decode_cyton_packet(_packet(200, values, footer=0xC1,
                                                        aux=b"\x01\x02\x03\x04\x05\x06"))
    assert (num, got.tolist(), footer, aux) == (200, values, 0xC1, b"\x01\x02\x03\x04\x05\x06")
    raw = _packet(0, values)
    assert raw[2:5] == b"\x00\x00\x01" and raw[5:8] == b"\xff\xff\xff"   # MSB first


def test_scale_factor_is_4_5_volts_over_gain_over_2_23_minus_1() -> None:
    # doc "Scaling": default gain 24 -> 0.02235 µV per count
    assert cyton_lsb_nv(24) == pytest.approx(22.35, abs=0.005)
    assert CytonDriver().stream_info().lsb_nv == cyton_lsb_nv(24) == pytest.approx(CYTON_LSB_NV)


def test_sample_numbers_wrap_and_reveal_lost_packets() -> None:
    drv = CytonDriver()
    wire = b"".join(_packet(n, [n] * 8) for n in (253, 254, 255, 0, 1, 4, 5))   # 2, 3 lost
    blocks = _blocks(drv.feed(wire[:50]) + drv.feed(wire[50:]))
    spans = [(b.first_sample, b.n_samples) for b in blocks]
    joined = {b.first_sample + i: int(b.counts[0, i]) for b in blocks for i in range(b.n_samples)}
    assert sorted(joined) == [0, 1, 2, 3, 4, 7, 8] and joined[7] == 4
    assert sum(n for _, n in spans) == 7 and drv.stats()["lost_packets"] == 2


def _feed_timed(drv: CytonDriver, reads: list[tuple[float, list[int]]]) -> list[SampleBlock]:
    """Feed reads ``(host time, sample numbers)``, one packet per number (8 bits), in order."""
    out: list[SampleBlock] = []
    for t, nums in reads:
        out += _blocks(drv.feed(b"".join(_packet(n % 256, [n] * 8) for n in nums), host_time=t))
    return out


def test_a_host_stall_delivers_a_contiguous_backlog_not_a_wrap_gap() -> None:
    # 100 packets in real time, then the host stalls 0.6 s (an fsync): the 150 packets the
    # board sent meanwhile arrive in one read, contiguous
    drv = CytonDriver()
    reads = [(i / 250, [i]) for i in range(100)] + [(99 / 250 + 0.6, list(range(100, 250)))]
    blocks = _feed_timed(drv, reads)
    assert blocks[-1].first_sample == 100 and blocks[-1].n_samples == 150
    assert drv.stats()["lost_packets"] == 0


@pytest.mark.parametrize("stall", [0.3, 0.6, 1.5, 3.0])
def test_no_host_stall_invents_a_gap_when_the_backlog_comes_in_tty_sized_reads(stall) -> None:
    # a tty read returns at most 4 KiB (124 packets): a long backlog comes in several reads,
    # a millisecond apart, then the stream is real time again
    drv = CytonDriver()
    n_backlog = int(round(stall * 250))
    t = 49 / 250 + stall
    reads = [(i / 250, [i]) for i in range(50)]
    backlog = list(range(50, 50 + n_backlog))
    reads += [(t + j / 1000, backlog[a:a + 124]) for j, a in enumerate(range(0, n_backlog, 124))]
    t = reads[-1][0]
    reads += [(t + (k + 1) / 250, [50 + n_backlog + k]) for k in range(100)]
    blocks = _feed_timed(drv, reads)
    got = [b.first_sample + i for b in blocks for i in range(b.n_samples)]
    assert got == list(range(150 + n_backlog)) and drv.stats()["lost_packets"] == 0


@pytest.mark.parametrize("silence_packets", [100, 300, 700])
def test_a_real_link_silence_longer_than_a_wrap_is_still_counted(silence_packets: int) -> None:
    # the radio loses packets 50 .. 50 + silence - 1 (the 8-bit counter wraps once for 300,
    # twice for 700); the board keeps sampling and the rest arrives in real time
    drv = CytonDriver()
    sent = list(range(50)) + list(range(50 + silence_packets, 150 + silence_packets))
    blocks = _feed_timed(drv, [(n / 250, [n]) for n in sent])
    got = [b.first_sample + i for b in blocks for i in range(b.n_samples)]
    assert got == sent and drv.stats()["lost_packets"] == silence_packets


def test_packets_after_a_silence_are_held_only_until_the_stream_is_real_time_again() -> None:
    drv = CytonDriver()
    _feed_timed(drv, [(n / 250, [n]) for n in range(50)])
    first = 50 + 400
    released = []
    for k in range(100):
        released.append(len(_feed_timed(drv, [((first + k) / 250, [first + k])])))
        if released[-1]:
            break
    assert 0.2 <= k / 250 <= 0.25              # the settle time (0.2 s) and one read
    assert drv.stats()["lost_packets"] == 400


def test_resync_skips_noise_and_a_stray_header_byte() -> None:
    drv = CytonDriver()
    p0, p1, p2 = (_packet(n, [n * 10] * 8) for n in range(3))
    # garbage containing 0xA0 where a footer would be 32 bytes later, then the packets
    garbage = b"\x13\xa0" + bytes(31) + b"\xc5\x99"
    blocks = _blocks(drv.feed(garbage + p0 + p1 + p2))
    got = np.concatenate([b.counts for b in blocks], axis=1)
    assert got[0].tolist() == [0, 10, 20] and drv.stats()["skipped_bytes"] == len(garbage)


def test_the_soft_reset_prompt_becomes_a_reply_with_the_firmware_version() -> None:
    drv = CytonDriver()
    events = drv.feed(b"OpenBCI V3 8-16 channel\nFirmware: v3.1.2\n$")
    assert events == []
    (reply,) = drv.feed(b"$$")
    assert reply.command == ord("v") and reply.ok and "OpenBCI" in reply.text
    assert drv.firmware == "v3.1.2"


# --- the emulator's Cyton over a real pty --------------------------------------------------------


@pytest.fixture(scope="module")
def ptb1_at_250():
    """PTB-XL 1 as the emulator's Cyton carries it: I, II, V1-V6 resampled to 250 Hz, counts."""
    rec = open_ptbxl().record(1)
    rows = [rec.index(lead) for lead in ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")]
    mv = resample(rec.signal[rows], rec.fs, 250.0)
    return rec, mv


def test_recording_from_the_emulated_cyton_equals_the_source(tmp_path, ptb1_at_250) -> None:
    _, mv = ptb1_at_250
    path = record("emu://ptbxl/1?speed=0&format=cyton", 4.0, tmp_path, name="cy")
    rec = read_wfdb(path)
    assert (rec.fs, rec.n_samples, rec.leads) == (250.0, 1000,
                                                  tuple(f"CH{i}" for i in range(1, 9)))
    assert rec.meta["gaps"] == [] and rec.meta["device"]["model"] == "OpenBCI Cyton"
    # within one Cyton LSB, plus the WFDB file's own resolution (1 µV: half of it when rounding)
    assert np.abs(rec.signal - mv[:, :1000]).max() <= CYTON_LSB_NV * 1e-6 + 0.5e-3 + 1e-7


def test_dropped_packets_become_gaps_exactly_where_the_emulator_logged_them(tmp_path) -> None:
    path = record("emu://ludb/3?speed=0&format=cyton&drop=0.05&seed=3", 4.0, tmp_path,
                  name="cyd")
    rec = read_wfdb(path)
    log = json.loads((tmp_path / "cyd.emulator.json").read_text())
    lost = [s for s in log["lost_spans"] if s[0] < 1000]
    assert lost and [g[:2] for g in rec.meta["gaps"]] == [[a, min(b, 1000)] for a, b in lost]
