"""Tests for detak.firmware_bridge.framing: CRC-16/CCITT-FALSE, COBS, the streaming decoder."""

from __future__ import annotations

import numpy as np
import pytest

from detak.firmware_bridge.framing import (
    MAX_PACKET,
    FrameDecoder,
    FramingError,
    check_packet,
    cobs_decode,
    cobs_encode,
    crc16,
    encode_frame,
)


def _crc_bitwise(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16 straight from its definition (poly 0x1021, MSB first), for comparison."""
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


# --- bad input first ---------------------------------------------------------------------------


def test_cobs_decode_rejects_a_zero_inside_a_frame() -> None:
    with pytest.raises(FramingError, match="0x00 at offset 2"):
        cobs_decode(bytes([0x03, 0x11, 0x00]))


def test_cobs_decode_rejects_a_block_running_past_the_end() -> None:
    with pytest.raises(FramingError, match="offset 0 needs 4 bytes, 2 left"):
        cobs_decode(bytes([0x05, 0x11, 0x22]))


def test_check_packet_names_both_crcs_when_they_differ() -> None:
    packet = bytearray(encode_frame(b"\x01\x81\x00\x00"))
    raw = bytearray(cobs_decode(bytes(packet[:-1])))
    raw[-1] ^= 0x01
    with pytest.raises(FramingError, match=r"CRC mismatch: packet says 0x[0-9a-f]{4}, computed"):
        check_packet(bytes(raw))


def test_check_packet_rejects_packets_shorter_than_a_header_and_crc() -> None:
    with pytest.raises(FramingError, match="shorter than the minimum 6"):
        check_packet(b"\x01\x81\x00")


# --- CRC ---------------------------------------------------------------------------------------


def test_crc_check_value_is_0x29b1_and_xmodem_start_gives_0x31c3() -> None:
    # catalogue check values: CCITT-FALSE (init 0xFFFF) and XMODEM (same poly, init 0)
    assert crc16(b"123456789") == 0x29B1
    assert crc16(b"123456789", 0) == 0x31C3


def test_crc_agrees_with_a_bitwise_implementation_on_random_data() -> None:
    rng = np.random.default_rng(3)
    for n in (0, 1, 7, 255, 1000):
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        assert crc16(data) == _crc_bitwise(data)


def test_crc_over_a_packet_with_its_big_endian_crc_is_zero() -> None:
    body = b"\x01\x10\x07\x00payload"
    crc = crc16(body)
    assert crc16(body + bytes([crc >> 8, crc & 0xFF])) == 0


# --- COBS --------------------------------------------------------------------------------------

SEQ_254 = bytes(range(1, 255))          # 01 .. FE
WIKIPEDIA = [                           # https://en.wikipedia.org/wiki/COBS, examples 1-11
    (b"\x00", b"\x01\x01"),
    (b"\x00\x00", b"\x01\x01\x01"),
    (b"\x00\x11\x00", b"\x01\x02\x11\x01"),
    (b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
    (b"\x11\x22\x33\x44", b"\x05\x11\x22\x33\x44"),
    (b"\x11\x00\x00\x00", b"\x02\x11\x01\x01\x01"),
    (SEQ_254, b"\xff" + SEQ_254),
    (b"\x00" + SEQ_254, b"\x01\xff" + SEQ_254),
    (SEQ_254 + b"\xff", b"\xff" + SEQ_254 + b"\x02\xff"),
    (bytes(range(2, 256)) + b"\x00", b"\xff" + bytes(range(2, 256)) + b"\x01\x01"),
    (bytes(range(3, 256)) + b"\x00\x01", b"\xfe" + bytes(range(3, 256)) + b"\x02\x01"),
]


@pytest.mark.parametrize(("raw", "encoded"), WIKIPEDIA)
def test_cobs_matches_the_published_examples(raw: bytes, encoded: bytes) -> None:
    assert cobs_encode(raw) == encoded
    assert cobs_decode(encoded) == raw


def test_cobs_round_trips_random_data_without_zeros_and_within_the_overhead_bound() -> None:
    rng = np.random.default_rng(7)
    for n in (1, 253, 254, 255, 508, 509, 1500):
        for zero_share in (0.0, 0.3, 1.0):
            data = rng.integers(1, 256, n, dtype=np.uint8)
            data[rng.random(n) < zero_share] = 0
            raw = data.tobytes()
            enc = cobs_encode(raw)
            assert 0 not in enc
            assert len(enc) <= n + n // 254 + 1
            assert cobs_decode(enc) == raw


# --- streaming decoder -------------------------------------------------------------------------


def _packets(n: int, seed: int = 0) -> list[bytes]:
    rng = np.random.default_rng(seed)
    return [bytes([1, 0x10]) + rng.integers(0, 256, int(rng.integers(2, 600)),
                                            dtype=np.uint8).tobytes() for _ in range(n)]


def test_decoder_returns_the_same_packets_for_any_chunking() -> None:
    packets = _packets(30)
    wire = b"".join(encode_frame(p) for p in packets)
    rng = np.random.default_rng(1)
    for _ in range(5):
        dec, got, i = FrameDecoder(), [], 0
        while i < len(wire):
            step = int(rng.integers(1, 90))
            got += dec.feed(wire[i:i + step])
            i += step
        assert got == packets
        assert dec.stats.bad_frames == 0 and dec.stats.packets == 30


def test_garbage_before_the_first_delimiter_costs_nothing_after_it() -> None:
    packets = _packets(3)
    dec = FrameDecoder()
    got = dec.feed(b"\x37\x99\x12" + b"\x00" + b"".join(encode_frame(p) for p in packets))
    assert got == packets
    assert dec.stats.bad_frames == 1


def test_a_corrupted_byte_anywhere_loses_only_its_own_frame() -> None:
    before, victim, after = _packets(3, seed=5)
    good = encode_frame(victim)
    for pos in range(len(good) - 1):                    # every byte but the delimiter
        for flip in (0x01, 0x80, good[pos]):            # good[pos]: the byte becomes 0x00
            bad = bytearray(good)
            bad[pos] ^= flip
            dec = FrameDecoder()
            got = dec.feed(encode_frame(before) + bytes(bad) + encode_frame(after))
            assert got == [before, after], (pos, flip)
            assert dec.stats.bad_frames >= 1


def test_an_overlong_frame_is_discarded_and_the_next_one_decoded() -> None:
    dec = FrameDecoder(max_packet=64)
    good = encode_frame(b"\x01\x13\x00\x00abc")
    got = dec.feed(b"\x05" * 200)                      # no delimiter: memory stays bounded
    assert got == [] and len(dec._buf) <= 64 + 64 // 254 + 1
    got = dec.feed(b"\x00" + good)
    assert got == [b"\x01\x13\x00\x00abc"]
    assert dec.stats.oversize == 1


def test_max_packet_default_accepts_the_largest_samples_block() -> None:
    # 32 channels x 42 samples x int24 + header stays under MAX_PACKET
    packet = bytes([1, 0x10, 0, 0]) + bytes(range(1, 256)) * 15
    assert len(packet) + 2 <= MAX_PACKET
    assert FrameDecoder().feed(encode_frame(packet)) == [packet]


def _packet_of(total: int, fill: str) -> bytes:
    """A packet (version .. payload) whose length with the CRC is ``total`` bytes."""
    n = total - 2 - 4
    body = bytes(n) if fill == "zeros" else bytes((i % 255) + 1 for i in range(n))
    return bytes([1, 0x10, 0, 0]) + body


@pytest.mark.parametrize("fill", ["zeros", "no-zeros"])       # least and most COBS overhead
@pytest.mark.parametrize("piece", [None, 97])                 # whole, or in 97-byte reads
@pytest.mark.parametrize(("total", "ok"), [(4095, True), (4096, True), (4097, False),
                                           (4100, False)])
def test_packets_over_4096_bytes_are_discarded_exactly_as_protocol_md_says(fill, piece, total,
                                                                          ok) -> None:
    packet = _packet_of(total, fill)
    after = encode_frame(b"\x01\x13\x00\x00abc")
    wire = encode_frame(packet) + after
    dec = FrameDecoder()
    step = piece or len(wire)
    got = [p for i in range(0, len(wire), step) for p in dec.feed(wire[i:i + step])]
    assert got == ([packet] if ok else []) + [b"\x01\x13\x00\x00abc"]
    assert dec.stats.oversize == (0 if ok else 1) and dec.stats.bad_frames == dec.stats.oversize
