"""Tests for detak.firmware_bridge.messages: payload layouts, round trips, bad packets."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from detak.data.ptbxl import open_ptbxl
from detak.firmware_bridge.framing import FrameDecoder
from detak.firmware_bridge.messages import (
    INT16,
    INT24,
    Ack,
    Battery,
    CalState,
    DeviceInfo,
    Error,
    GetBattery,
    GetInfo,
    LeadOff,
    Nack,
    ProtocolError,
    Samples,
    SetCalPulse,
    Start,
    Stop,
    StreamEnd,
    UnknownMessageType,
    decode_packet,
    encode_message,
    pack_counts,
    packet_bytes,
    unpack_counts,
)

INFO = DeviceInfo(sample_rate_mhz=500000, lsb_nv=47.68, adc_bits=24, sample_format=INT24,
                  channels=("V6", "I", "II", "V2", "V3", "V4", "V5", "V1"),
                  electrodes=("RA", "LA", "LL", "RL", "V1", "V2", "V3", "V4", "V5", "V6"),
                  model="ADS1298 EVM", firmware="0.3.1", serial="SN-0042")


def _roundtrip(msg, seq=9):
    packets = FrameDecoder().feed(encode_message(msg, seq))
    assert len(packets) == 1
    return decode_packet(packets[0])


# --- bad input first ---------------------------------------------------------------------------


def test_samples_with_a_wrong_length_names_the_arithmetic() -> None:
    good = Samples(0, 0, INT24, np.zeros((3, 4), np.int32)).payload()
    with pytest.raises(ProtocolError, match=r"3 channels x 4 samples x 3 bytes needs 47"):
        Samples.from_payload(good[:-1])


def test_samples_values_outside_the_format_are_refused() -> None:
    with pytest.raises(ProtocolError, match="do not fit int16"):
        pack_counts(np.array([[40000]]), INT16)
    with pytest.raises(ProtocolError, match="do not fit int24"):
        pack_counts(np.array([[-(2**23) - 1]]), INT24)


def test_counts_must_be_a_2d_integer_array() -> None:
    with pytest.raises(ProtocolError, match="2-D integer array"):
        pack_counts(np.array([[0.5]]), INT16)


def test_unknown_type_and_other_versions_are_protocol_errors() -> None:
    with pytest.raises(ProtocolError, match="unknown message type 0x7e"):
        decode_packet(bytes([1, 0x7E, 0, 0]))
    with pytest.raises(ProtocolError, match="protocol version 3 not supported"):
        decode_packet(bytes([3, 0x81, 0, 0]))


def test_device_info_field_errors_name_the_field() -> None:
    payload = bytearray(INFO.payload())
    payload[2] = 4                                      # sample_format
    with pytest.raises(ProtocolError, match="sample_format 4"):
        DeviceInfo.from_payload(bytes(payload))
    with pytest.raises(ProtocolError, match="ends inside channel 7 name"):
        DeviceInfo.from_payload(INFO.payload()[:-31])   # 10 electrodes x 3 bytes + 1
    with pytest.raises(ProtocolError, match="1..32 channels, got 0"):
        DeviceInfo(500000, 1000.0, 24, INT24, channels=()).payload()
    with pytest.raises(ProtocolError, match="more than 64"):
        DeviceInfo(500000, 1000.0, 24, INT24, channels=("I",), model="x" * 65).payload()


def test_fixed_size_payloads_reject_other_lengths() -> None:
    with pytest.raises(ProtocolError, match="LEAD_OFF payload is 7 bytes, needs 8"):
        LeadOff.from_payload(b"\x00" * 7)
    with pytest.raises(ProtocolError, match="START takes no payload"):
        Start.from_payload(b"\x01")
    with pytest.raises(ProtocolError, match="one byte 0 or 1"):
        SetCalPulse.from_payload(b"\x02")
    with pytest.raises(ProtocolError, match="BATTERY percent 101"):
        Battery.from_payload(struct.pack("<BHB", 101, 0, 0))


# --- extensions (docs/protocol.md 4.3) -----------------------------------------------------------

EXTENSIBLE = [INFO, Samples(70000, 5, INT16, np.array([[1, -2], [3, 4]], np.int32)),
              Samples(1, 2, INT24, np.array([[-1], [8388607]], np.int32)), LeadOff(9, 0b11),
              CalState(4, False), Battery(87, 3912, True), StreamEnd(5000, 2), Ack(3, 0x84)]


@pytest.mark.parametrize("msg", EXTENSIBLE, ids=lambda m: type(m).__name__)
@pytest.mark.parametrize("extra", [b"\x00", b"\xff\x01\x02\x03"])
def test_a_v1_host_reads_its_fields_of_a_longer_device_payload_and_ignores_the_rest(msg,
                                                                                    extra) -> None:
    seq, back = decode_packet(packet_bytes(msg, 12) + extra)
    assert (seq, back) == (12, msg)


@pytest.mark.parametrize("msg", [GetInfo(), Start(), Stop(), GetBattery(), SetCalPulse(True)],
                         ids=lambda m: type(m).__name__)
def test_host_commands_are_not_extended_in_place(msg) -> None:
    with pytest.raises(ProtocolError) as err:
        decode_packet(packet_bytes(msg, 1) + b"\x00")
    assert not isinstance(err.value, UnknownMessageType)


@pytest.mark.parametrize("mtype", [0x02, 0x16, 0x7F, 0x85, 0xFF])
def test_an_unknown_type_is_its_own_error_so_receivers_can_skip_it(mtype) -> None:
    with pytest.raises(UnknownMessageType, match=f"unknown message type {mtype:#04x}"):
        decode_packet(bytes([1, mtype, 0, 0, 1, 2, 3]))


# --- layouts -----------------------------------------------------------------------------------


def test_int24_is_the_low_three_bytes_of_twos_complement_little_endian() -> None:
    counts = np.array([[-1, 2**23 - 1, -(2**23), 0, 0x123456]])
    raw = pack_counts(counts, INT24)
    assert raw.hex(" ") == "ff ff ff ff ff 7f 00 00 80 00 00 00 56 34 12"
    assert unpack_counts(raw, INT24, 1).tolist() == counts.tolist()


def test_samples_are_sample_major_on_the_wire() -> None:
    counts = np.array([[1, 2], [3, 4], [5, 6]], np.int32)     # 3 channels, 2 samples
    raw = pack_counts(counts, INT16)
    assert struct.unpack("<6h", raw) == (1, 3, 5, 2, 4, 6)


def test_device_info_layout_matches_the_spec_offsets() -> None:
    p = INFO.payload()
    c, bits, fmt, e, rate, lsb = struct.unpack_from("<BBBBIf", p)
    assert (c, bits, fmt, e, rate) == (8, 24, 3, 10, 500000)
    assert lsb == pytest.approx(47.68, rel=1e-7)
    assert p[12] == len("ADS1298 EVM") and p[13:24] == b"ADS1298 EVM"


def test_header_is_version_type_and_little_endian_seq() -> None:
    assert packet_bytes(Stop(), 0x1234)[:4] == bytes([1, 0x82, 0x34, 0x12])


# --- round trips -------------------------------------------------------------------------------


@pytest.mark.parametrize("msg", [
    INFO, LeadOff(123456, 0b101), CalState(7, True), Battery(255, 0, False, True),
    Error(2, 0xFFFFFFFF, "fifo överrun"), StreamEnd(5000, 1), Ack(65535, 0x81),
    Nack(3, 0x81, 5, "already streaming"), GetInfo(), Start(), Stop(), GetBattery(),
    SetCalPulse(False),
], ids=lambda m: type(m).__name__)
def test_every_message_survives_encode_and_decode(msg) -> None:
    seq, back = _roundtrip(msg, seq=4242)
    assert seq == 4242
    assert back == msg


def test_a_real_ptbxl_record_round_trips_exactly_in_int16_blocks() -> None:
    rec = open_ptbxl().record(1)
    counts = np.rint(rec.signal.astype(np.float64) * 1000).astype(np.int32)  # µV
    wire = b"".join(encode_message(Samples(i, i * 10000, INT16, counts[:, i:i + 7]), i)
                    for i in range(0, counts.shape[1], 7))
    blocks = [decode_packet(p)[1] for p in FrameDecoder().feed(wire)]
    assert np.array_equal(np.concatenate([b.counts for b in blocks], axis=1), counts)
    assert [b.first_sample for b in blocks] == list(range(0, counts.shape[1], 7))


def test_sample_counter_and_timestamp_wrap_modulo_2_32() -> None:
    msg = Samples(2**32 + 5, 2**32 + 7, INT16, np.zeros((1, 1), np.int32))
    _, back = _roundtrip(msg)
    assert (back.first_sample, back.timestamp_us) == (5, 7)
