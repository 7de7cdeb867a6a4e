"""Framing of the firmware-bridge protocol: CRC-16/CCITT-FALSE, COBS, and a streaming decoder.

A *packet* is ``version | type | seq (u16 LE) | payload | CRC-16 (big-endian)``; on the wire it
is COBS-encoded and followed by one ``0x00`` delimiter (docs/protocol.md). This module knows
nothing about message types: `encode_frame` turns packet bytes without CRC into wire bytes and
`FrameDecoder` turns any chunking of wire bytes back into CRC-checked packets, resynchronising
at the next ``0x00`` after any damage and counting what it threw away.

CRC: ``binascii.crc_hqx(data, 0xFFFF)`` from the standard library is exactly
CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final XOR) and runs in C.
COBS: a short pure-Python codec that works block by block (slices and ``bytes.join``), byte
compatible with Cheshire & Baker's COBS as used by the ``cobs`` package and Wikipedia's examples
(a final 254-byte block is not followed by a phantom zero).

>>> crc16(b"123456789") == 0x29B1
True
>>> wire = encode_frame(bytes([1, 0x13, 7, 0, 80]))
>>> wire.hex(" ")
'04 01 13 07 04 50 e4 43 00'
>>> dec = FrameDecoder()
>>> [p.hex(" ") for p in dec.feed(wire[:3]) + dec.feed(wire[3:])]
['01 13 07 00 50']
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass

DELIMITER = 0x00
CRC_INIT = 0xFFFF
#: Largest packet (version byte to CRC) a receiver must accept; longer frames are discarded.
MAX_PACKET = 4096
#: Smallest valid packet: version, type, seq (2), CRC (2).
MIN_PACKET = 6


def max_encoded_len(n: int) -> int:
    """The longest COBS encoding of an ``n``-byte packet (no delimiter): one code byte per
    started 254-byte run. Frames longer than this cannot hold a packet of ``n`` bytes or less.

    >>> max_encoded_len(4096), len(cobs_encode(b"\x01" * 4096))
    (4113, 4113)
    """
    return n + n // 254 + 1


class FramingError(ValueError):
    """Bytes that are not a valid COBS frame or whose CRC does not match."""


def crc16(data: bytes | bytearray | memoryview, crc: int = CRC_INIT) -> int:
    """CRC-16/CCITT-FALSE of ``data`` (continue a running CRC by passing it as ``crc``).

    >>> hex(crc16(b"123456789"))
    '0x29b1'
    >>> crc16(b"6789", crc16(b"12345")) == crc16(b"123456789")
    True
    """
    return binascii.crc_hqx(data, crc)


def cobs_encode(data: bytes | bytearray) -> bytes:
    """COBS-encode ``data`` (no ``0x00`` in the result; the delimiter is NOT appended).

    >>> cobs_encode(bytes([0x11, 0x22, 0x00, 0x33])).hex(" ")
    '03 11 22 02 33'
    >>> cobs_encode(b"").hex()
    '01'
    """
    out = bytearray()
    parts = bytes(data).split(b"\x00")
    last = len(parts) - 1
    for i, part in enumerate(parts):
        n = len(part)
        start = 0
        while n - start >= 254:                      # full blocks: code 0xFF, no implied zero
            out.append(0xFF)
            out += part[start:start + 254]
            start += 254
        rest = n - start
        if i == last and rest == 0 and n > 0:        # ends exactly on a full block
            break
        out.append(rest + 1)
        out += part[start:]
    return bytes(out)


def cobs_decode(data: bytes | bytearray | memoryview) -> bytes:
    """Decode one COBS block sequence (without the delimiter); `FramingError` if malformed.

    >>> cobs_decode(bytes.fromhex("0311220233")).hex(" ")
    '11 22 00 33'
    >>> cobs_decode(bytes.fromhex("0511"))
    Traceback (most recent call last):
    ...
    detak.firmware_bridge.framing.FramingError: COBS block at offset 0 needs 4 bytes, 1 left
    """
    src = bytes(data)
    n = len(src)
    pieces: list[bytes] = []
    i = 0
    while i < n:
        code = src[i]
        if code == 0:
            raise FramingError(f"COBS frame contains a 0x00 at offset {i}")
        end = i + code
        if end > n:
            raise FramingError(f"COBS block at offset {i} needs {code - 1} bytes, "
                               f"{n - i - 1} left")
        block = src[i + 1:end]
        if 0 in block:
            raise FramingError(f"COBS frame contains a 0x00 at offset {i + 1 + block.index(0)}")
        pieces.append(block)
        if code != 0xFF and end < n:
            pieces.append(b"\x00")
        i = end
    return b"".join(pieces)


def encode_frame(packet_without_crc: bytes | bytearray) -> bytes:
    """Wire bytes for one packet: append the CRC (big-endian), COBS-encode, add ``0x00``.

    >>> encode_frame(b"\\x01\\x81\\x00\\x00").hex(" ")
    '03 01 81 01 03 fe 1e 00'
    """
    crc = crc16(packet_without_crc)
    return cobs_encode(bytes(packet_without_crc) + bytes((crc >> 8, crc & 0xFF))) + b"\x00"


def check_packet(packet: bytes) -> bytes:
    """Verify the trailing CRC of a decoded packet and return it without the CRC.

    >>> check_packet(bytes.fromhex("01810000fe1e")).hex()
    '01810000'
    """
    if len(packet) < MIN_PACKET:
        raise FramingError(f"packet of {len(packet)} bytes is shorter than the minimum "
                           f"{MIN_PACKET}")
    if crc16(packet) != 0:            # CRC appended big-endian: the running CRC ends at 0
        got = int.from_bytes(packet[-2:], "big")
        raise FramingError(f"CRC mismatch: packet says {got:#06x}, computed "
                           f"{crc16(packet[:-2]):#06x}")
    return packet[:-2]


@dataclass
class FramingStats:
    """What a `FrameDecoder` has seen: good packets, and frames it had to throw away."""

    bytes_in: int = 0
    packets: int = 0
    crc_errors: int = 0
    cobs_errors: int = 0
    too_short: int = 0
    oversize: int = 0

    @property
    def bad_frames(self) -> int:
        return self.crc_errors + self.cobs_errors + self.too_short + self.oversize


class FrameDecoder:
    """Streaming decoder: ``feed(bytes)`` returns the complete, CRC-checked packets so far.

    Packets are returned *without* their CRC. A damaged frame (bad COBS, bad CRC, too short) is
    counted in `stats` and skipped, and so is a packet longer than ``max_packet`` bytes (version
    to CRC, after COBS decoding: docs/protocol.md's 4096-byte limit exactly, counted as
    ``oversize``); decoding resumes at the next ``0x00`` delimiter, so a damaged byte costs its
    own frame only - but a damaged delimiter joins the two frames it separated into one bad
    frame and costs both (docs/protocol.md 2.4). Empty frames (``0x00`` bytes between frames,
    allowed to any sender) are skipped without being counted; `reset` drops a partial frame
    when its link is gone. While a frame is being received, at most `max_encoded_len`
    (``max_packet``) bytes of it are buffered: a longer one is already known to be oversize.
    Bytes before the first delimiter after start-up are treated as a (possibly partial) frame
    like any other.

    >>> d = FrameDecoder()
    >>> good = encode_frame(b"\\x01\\x81\\x05\\x00")
    >>> bad = bytearray(good); bad[2] ^= 0x40
    >>> [p.hex() for p in d.feed(bytes(bad) + good)], d.stats.crc_errors
    (['01810500'], 1)
    """

    def __init__(self, max_packet: int = MAX_PACKET) -> None:
        self.max_packet = max_packet
        self._max_frame = max_encoded_len(max_packet)
        self._buf = bytearray()
        self._discarding = False
        self.stats = FramingStats()

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        self.stats.bytes_in += len(data)
        if DELIMITER not in data:
            self._append(data)
            return []
        frames = bytes(data).split(b"\x00")
        out: list[bytes] = []
        # first piece completes the buffered frame; the last piece starts the next one
        self._append(frames[0])
        first = bytes(self._buf)
        discarding = self._discarding
        self._buf.clear()
        self._discarding = False
        if discarding:
            self.stats.oversize += 1
        elif first:
            self._decode(first, out)
        for frame in frames[1:-1]:
            if frame:
                self._decode(frame, out)
        self._append(frames[-1])
        return out

    def reset(self) -> None:
        """Forget a partially received frame (the link it came on is gone)."""
        self._buf.clear()
        self._discarding = False

    def _append(self, data: bytes | bytearray | memoryview) -> None:
        if self._discarding:
            return
        self._buf += data
        if len(self._buf) > self._max_frame:
            self._buf.clear()
            self._discarding = True

    def _decode(self, frame: bytes, out: list[bytes]) -> None:
        st = self.stats
        if len(frame) > self._max_frame:
            st.oversize += 1
            return
        try:
            packet = cobs_decode(frame)
        except FramingError:
            st.cobs_errors += 1
            return
        if len(packet) > self.max_packet:
            st.oversize += 1
            return
        if len(packet) < MIN_PACKET:
            st.too_short += 1
            return
        if crc16(packet) != 0:
            st.crc_errors += 1
            return
        st.packets += 1
        out.append(packet[:-2])
