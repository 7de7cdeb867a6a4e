"""docs/protocol.md: every worked example's packet and wire bytes are what detak produces.

The messages are rebuilt here from the fields each example's caption states, so the document,
the Python implementation and (through test_c_encoder) the C reference must agree.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from detak.firmware_bridge.framing import FrameDecoder, cobs_encode, crc16
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
    Samples,
    SetCalPulse,
    Start,
    Stop,
    StreamEnd,
    decode_packet,
    encode_message,
    packet_bytes,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"

EXPECTED = {       # example name -> (message, seq), from the captions in the document
    "get_info": (GetInfo(), 0),
    "start": (Start(), 1),
    "ack": (Ack(1, 0x81), 5),
    "nack": (Nack(1, 0x81, 5), 6),
    "device_info": (DeviceInfo(500000, 1000.0, 24, INT24, ("I", "II"), ("RA", "LA", "LL", "RL"),
                               "demo", "1.0", "0001"), 4),
    "samples": (Samples(1000, 2000000, INT24, np.array([[100, 0], [-100, 1]], np.int32)), 7),
    "lead_off": (LeadOff(1500, 0x2), 8),
    "cal_state": (CalState(2000, True), 9),
    "battery": (Battery(87, 3912, charging=True), 10),
    "error": (Error(2, 42, "fifo"), 11),
    "stream_end": (StreamEnd(5000, 0), 12),
    "set_cal_pulse": (SetCalPulse(True), 2),
    "stop": (Stop(), 3),
    "get_battery": (GetBattery(), 4),
    "samples_int16": (Samples(0, 0, INT16, np.array([[-2, 256, 0], [1, -32768, 32767]],
                                                      np.int32)), 13),
}


def _examples() -> dict[str, dict[str, bytes]]:
    text = DOC.read_text(encoding="utf-8")
    out = {}
    for name, body in re.findall(r"```example (\w+)\n(.*?)```", text, flags=re.S):
        fields: dict[str, str] = {}
        key = None
        for line in body.splitlines():
            m = re.match(r"(packet|wire):\s*(.*)", line)
            if m:
                key = m.group(1)
                fields[key] = m.group(2)
            elif key and re.fullmatch(r"\s+[0-9a-f ]+", line):
                fields[key] += " " + line.strip()
            else:
                key = None
        out[name] = {k: bytes.fromhex(v) for k, v in fields.items()}
    return out


def test_the_document_has_every_example_and_no_others() -> None:
    assert sorted(_examples()) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_bytes_match_the_implementation(name: str) -> None:
    msg, seq = EXPECTED[name]
    ex = _examples()[name]
    body = packet_bytes(msg, seq)
    crc = crc16(body)
    assert ex["packet"] == body + bytes([crc >> 8, crc & 0xFF])
    assert ex["wire"] == cobs_encode(ex["packet"]) + b"\x00"
    assert ex["wire"] == encode_message(msg, seq)
    (packet,) = FrameDecoder().feed(ex["wire"])
    assert decode_packet(packet) == (seq, msg)


def test_cobs_table_in_the_document_matches_the_codec() -> None:
    text = DOC.read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([0-9A-F ]+)` \| `([0-9A-F ]+)` \|$", text, flags=re.M)
    assert len(rows) == 6
    for raw, enc in rows:
        assert cobs_encode(bytes.fromhex(raw)) == bytes.fromhex(enc)


def test_crc_check_value_stated_in_the_document() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert "**0x29B1**" in text and crc16(b"123456789") == 0x29B1


def test_payload_lengths_are_stated_by_one_rule() -> None:
    # revision 1.0 said "exactly" in 4.1.1 and 4.1.2 and allowed longer payloads in 4.3
    text = DOC.read_text(encoding="utf-8")
    assert text.count("**Payload lengths — the one rule.**") == 1
    for contradiction in ("ends exactly after the last name", "must be exactly 11"):
        assert contradiction not in text
    assert "document revision 1.1" in text.splitlines()[0]
