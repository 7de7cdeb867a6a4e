"""Messages of the firmware-bridge protocol v1: payload layouts, packing and unpacking.

Every packet is ``version (1) | type | seq (u16 LE) | payload``, then the CRC (see
`detak.firmware_bridge.framing`). Device-to-host types are 0x01–0x7F, host-to-device types
0x80–0xFF. All multi-byte fields are little-endian except the CRC. docs/protocol.md is the
normative description; this module implements it.

`encode_message` gives the wire bytes of one message; `decode_packet` turns a CRC-checked packet
(from `FrameDecoder`) back into ``(seq, message)``; `ProtocolError` names the field that is wrong
(`UnknownMessageType` for a type this version does not define).

Extensions (docs/protocol.md 4.3): a device→host payload with a fixed layout may be longer than
v1 defines (a later revision appended fields); its v1 fields are decoded and the rest ignored.
Shorter payloads, and host commands of any other length, are errors.

>>> import numpy as np
>>> block = Samples(first_sample=0, timestamp_us=0, sample_format=INT16,
...                 counts=np.array([[1, -1], [256, 0]], dtype=np.int32))
>>> wire = encode_message(block, seq=5)
>>> seq, back = decode_packet(FrameDecoder().feed(wire)[0])
>>> seq, back.counts.tolist(), back.n_samples
(5, [[1, -1], [256, 0]], 2)
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum
from typing import ClassVar

import numpy as np

from detak.firmware_bridge.framing import FrameDecoder, encode_frame

PROTOCOL_VERSION = 1
INT16 = 2          # sample_format: bytes per sample value
INT24 = 3
SAMPLE_FORMATS = {INT16: "int16", INT24: "int24"}
MAX_CHANNELS = 32
MAX_ELECTRODES = 32
MAX_STRING = 64
NO_SAMPLE = 0xFFFFFFFF


class MsgType(IntEnum):
    """The ``type`` byte of a packet."""

    DEVICE_INFO = 0x01
    SAMPLES = 0x10
    LEAD_OFF = 0x11
    CAL_STATE = 0x12
    BATTERY = 0x13
    ERROR = 0x14
    STREAM_END = 0x15
    ACK = 0x20
    NACK = 0x21
    GET_INFO = 0x80
    START = 0x81
    STOP = 0x82
    SET_CAL_PULSE = 0x83
    GET_BATTERY = 0x84


class NackReason(IntEnum):
    UNKNOWN_COMMAND = 1
    BAD_LENGTH = 2
    BAD_VALUE = 3
    WRONG_STATE = 4
    ALREADY_IN_STATE = 5
    UNSUPPORTED = 6
    BAD_VERSION = 7
    BUSY = 8


class ErrorCode(IntEnum):
    ADC_FAULT = 1
    OVERRUN = 2
    LOW_BATTERY = 3
    INTERNAL = 4
    OTHER = 5


class EndReason(IntEnum):
    STOPPED = 0          # the host sent STOP
    END_OF_SOURCE = 1    # replay/storage ran out
    BATTERY = 2
    ERROR = 3


class ProtocolError(ValueError):
    """A packet that passed the CRC but breaks the protocol (unknown type, bad length/field)."""


class UnknownMessageType(ProtocolError):
    """A packet of a type protocol v1 does not define (perhaps from a newer revision): a host
    skips it, a device answers NACK 1 (docs/protocol.md 4.3)."""


def _at_least(payload: bytes, n: int, name: str) -> bytes:
    """The first ``n`` bytes of a device→host payload that later revisions may extend."""
    _check(len(payload) >= n, f"{name} payload is {len(payload)} bytes, needs {n}")
    return payload[:n]


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise ProtocolError(msg)


def _pack_str(s: str, what: str, ascii_only: bool = False) -> bytes:
    raw = s.encode("ascii" if ascii_only else "utf-8")
    _check(len(raw) <= MAX_STRING, f"{what} {s!r} is {len(raw)} bytes, more than {MAX_STRING}")
    return bytes([len(raw)]) + raw


def _unpack_str(buf: bytes, off: int, what: str) -> tuple[str, int]:
    _check(off < len(buf), f"DEVICE_INFO ends before the length byte of {what}")
    n = buf[off]
    _check(n <= MAX_STRING, f"DEVICE_INFO {what} length {n} exceeds {MAX_STRING}")
    end = off + 1 + n
    _check(end <= len(buf), f"DEVICE_INFO ends inside {what} ({n} bytes announced)")
    try:
        return buf[off + 1:end].decode("utf-8"), end
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"DEVICE_INFO {what} is not UTF-8: {exc}") from exc


class Message:
    """Base of all messages: ``TYPE`` and payload (de)serialisation."""

    TYPE: ClassVar[MsgType]

    def payload(self) -> bytes:
        return b""

    @classmethod
    def from_payload(cls, payload: bytes) -> Message:
        _check(not payload, f"{cls.TYPE.name} takes no payload, got {len(payload)} bytes")
        return cls()


@dataclass(frozen=True)
class DeviceInfo(Message):
    """What the device is: channels, sample rate, LSB, lead and electrode names, versions."""

    TYPE: ClassVar[MsgType] = MsgType.DEVICE_INFO
    sample_rate_mhz: int                  # millihertz: 500 Hz -> 500000
    lsb_nv: float                         # nanovolts per count (stored as float32)
    adc_bits: int
    sample_format: int                    # INT16 or INT24, what SAMPLES will carry
    channels: tuple[str, ...]             # lead name per channel, in sample order
    electrodes: tuple[str, ...] = ()      # LEAD_OFF bit i refers to electrodes[i]
    model: str = ""
    firmware: str = ""
    serial: str = ""

    def __post_init__(self) -> None:
        # the wire carries a float32: hold exactly what a receiver will see
        object.__setattr__(self, "lsb_nv", float(np.float32(self.lsb_nv)))
        object.__setattr__(self, "channels", tuple(self.channels))
        object.__setattr__(self, "electrodes", tuple(self.electrodes))

    @property
    def fs(self) -> float:
        return self.sample_rate_mhz / 1000.0

    @property
    def n_channels(self) -> int:
        return len(self.channels)

    def payload(self) -> bytes:
        c, e = len(self.channels), len(self.electrodes)
        _check(1 <= c <= MAX_CHANNELS, f"DEVICE_INFO needs 1..{MAX_CHANNELS} channels, got {c}")
        _check(e <= MAX_ELECTRODES, f"DEVICE_INFO allows {MAX_ELECTRODES} electrodes, got {e}")
        _check(self.sample_format in SAMPLE_FORMATS,
               f"DEVICE_INFO sample_format {self.sample_format} is not 2 (int16) or 3 (int24)")
        _check(1 <= self.adc_bits <= 32, f"DEVICE_INFO adc_bits {self.adc_bits} not in 1..32")
        _check(0 < self.sample_rate_mhz < 2**32,
               f"DEVICE_INFO sample_rate_mhz {self.sample_rate_mhz} not in 1..2^32-1")
        _check(self.lsb_nv > 0, f"DEVICE_INFO lsb_nv must be > 0, got {self.lsb_nv}")
        out = bytearray(struct.pack("<BBBBIf", c, self.adc_bits, self.sample_format, e,
                                    self.sample_rate_mhz, self.lsb_nv))
        out += _pack_str(self.model, "model")
        out += _pack_str(self.firmware, "firmware")
        out += _pack_str(self.serial, "serial")
        for name in self.channels:
            out += _pack_str(name, "channel name", ascii_only=True)
        for name in self.electrodes:
            out += _pack_str(name, "electrode name", ascii_only=True)
        return bytes(out)

    @classmethod
    def from_payload(cls, payload: bytes) -> DeviceInfo:
        _check(len(payload) >= 12, f"DEVICE_INFO payload is {len(payload)} bytes, needs >= 12")
        c, bits, fmt, e, rate, lsb = struct.unpack_from("<BBBBIf", payload)
        _check(1 <= c <= MAX_CHANNELS, f"DEVICE_INFO n_channels {c} not in 1..{MAX_CHANNELS}")
        _check(e <= MAX_ELECTRODES, f"DEVICE_INFO n_electrodes {e} exceeds {MAX_ELECTRODES}")
        _check(fmt in SAMPLE_FORMATS, f"DEVICE_INFO sample_format {fmt} is not 2 or 3")
        _check(1 <= bits <= 32, f"DEVICE_INFO adc_bits {bits} not in 1..32")
        _check(rate > 0, "DEVICE_INFO sample_rate_mhz is 0")
        _check(lsb > 0 and np.isfinite(lsb), f"DEVICE_INFO lsb_nv {lsb} is not a positive number")
        off = 12
        model, off = _unpack_str(payload, off, "model")
        firmware, off = _unpack_str(payload, off, "firmware")
        serial, off = _unpack_str(payload, off, "serial")
        chans, elecs = [], []
        for i in range(c):
            name, off = _unpack_str(payload, off, f"channel {i} name")
            chans.append(name)
        for i in range(e):
            name, off = _unpack_str(payload, off, f"electrode {i} name")
            elecs.append(name)
        # bytes after the last electrode name: fields of a later revision, ignored (4.3)
        return cls(sample_rate_mhz=rate, lsb_nv=float(lsb), adc_bits=bits, sample_format=fmt,
                   channels=tuple(chans), electrodes=tuple(elecs), model=model,
                   firmware=firmware, serial=serial)


_SAMPLES_HEAD = struct.Struct("<IIBBB")


def pack_counts(counts: np.ndarray, sample_format: int) -> bytes:
    """(channels, samples) integer counts -> sample-major little-endian int16/int24 bytes.

    >>> pack_counts(np.array([[1, -2], [3, 4]]), INT24).hex(" ")
    '01 00 00 03 00 00 fe ff ff 04 00 00'
    """
    _check(sample_format in SAMPLE_FORMATS, f"sample_format {sample_format} is not 2 or 3")
    raw = np.asarray(counts)
    _check(raw.ndim == 2 and raw.dtype.kind in "iu",
           f"counts must be a 2-D integer array (channels, samples), got {raw.dtype} {raw.shape}")
    lo, hi = (-(2**15), 2**15 - 1) if sample_format == INT16 else (-(2**23), 2**23 - 1)
    if raw.size and (int(raw.min()) < lo or int(raw.max()) > hi):
        raise ProtocolError(f"sample values {int(raw.min())}..{int(raw.max())} do not fit "
                            f"{SAMPLE_FORMATS[sample_format]}")
    x = np.ascontiguousarray(raw.T, dtype="<i4")     # (S, C)
    if sample_format == INT16:
        return x.astype("<i2").tobytes()
    return x.view(np.uint8).reshape(-1, 4)[:, :3].tobytes()


def unpack_counts(raw: bytes | memoryview, sample_format: int, n_channels: int) -> np.ndarray:
    """Inverse of `pack_counts`: int32 array (channels, samples).

    >>> unpack_counts(bytes.fromhex("010000030000feffff040000"), INT24, 2).tolist()
    [[1, -2], [3, 4]]
    """
    if sample_format == INT16:
        x = np.frombuffer(raw, dtype="<i2").astype(np.int32)
    else:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        x = ((b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)) << 8) >> 8
    return x.reshape(-1, n_channels).T.copy()


@dataclass(frozen=True, eq=False)
class Samples(Message):
    """A block of samples: ``counts`` int32 (channels, samples), index of its first sample
    since START, and the device clock (µs) at that sample."""

    TYPE: ClassVar[MsgType] = MsgType.SAMPLES
    first_sample: int
    timestamp_us: int
    sample_format: int
    counts: np.ndarray = field(repr=False)

    @property
    def n_channels(self) -> int:
        return int(self.counts.shape[0])

    @property
    def n_samples(self) -> int:
        return int(self.counts.shape[1])

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Samples) and self.first_sample == other.first_sample
                and self.timestamp_us == other.timestamp_us
                and self.sample_format == other.sample_format
                and np.array_equal(self.counts, other.counts))

    def payload(self) -> bytes:
        c, s = np.shape(self.counts)
        _check(1 <= c <= MAX_CHANNELS, f"SAMPLES needs 1..{MAX_CHANNELS} channels, got {c}")
        _check(1 <= s <= 255, f"SAMPLES carries 1..255 samples per block, got {s}")
        return (_SAMPLES_HEAD.pack(self.first_sample % 2**32, self.timestamp_us % 2**32,
                                   self.sample_format, c, s)
                + pack_counts(self.counts, self.sample_format))

    @classmethod
    def from_payload(cls, payload: bytes) -> Samples:
        _check(len(payload) >= 11, f"SAMPLES payload is {len(payload)} bytes, needs >= 11")
        first, ts, fmt, c, s = _SAMPLES_HEAD.unpack_from(payload)
        _check(fmt in SAMPLE_FORMATS, f"SAMPLES sample_format {fmt} is not 2 or 3")
        _check(1 <= c <= MAX_CHANNELS, f"SAMPLES n_channels {c} not in 1..{MAX_CHANNELS}")
        _check(s >= 1, "SAMPLES n_samples is 0")
        need = 11 + c * s * fmt
        _check(len(payload) >= need, f"SAMPLES payload is {len(payload)} bytes; {c} channels x "
                                     f"{s} samples x {fmt} bytes needs {need}")
        counts = unpack_counts(memoryview(payload)[11:need], fmt, c)
        return cls(first_sample=first, timestamp_us=ts, sample_format=fmt, counts=counts)


@dataclass(frozen=True)
class LeadOff(Message):
    """Electrodes off from sample ``sample`` on: bit i of ``mask`` = DEVICE_INFO electrode i."""

    TYPE: ClassVar[MsgType] = MsgType.LEAD_OFF
    sample: int
    mask: int

    def payload(self) -> bytes:
        return struct.pack("<II", self.sample % 2**32, self.mask)

    @classmethod
    def from_payload(cls, payload: bytes) -> LeadOff:
        return cls(*struct.unpack("<II", _at_least(payload, 8, "LEAD_OFF")))


@dataclass(frozen=True)
class CalState(Message):
    """The 1 mV calibration pulse is on (or off) from sample ``sample`` on."""

    TYPE: ClassVar[MsgType] = MsgType.CAL_STATE
    sample: int
    on: bool

    def payload(self) -> bytes:
        return struct.pack("<IB", self.sample % 2**32, 1 if self.on else 0)

    @classmethod
    def from_payload(cls, payload: bytes) -> CalState:
        sample, on = struct.unpack("<IB", _at_least(payload, 5, "CAL_STATE"))
        _check(on in (0, 1), f"CAL_STATE on must be 0 or 1, got {on}")
        return cls(sample, bool(on))


@dataclass(frozen=True)
class Battery(Message):
    TYPE: ClassVar[MsgType] = MsgType.BATTERY
    percent: int          # 0..100, 255 = unknown
    millivolts: int       # 0 = unknown
    charging: bool = False
    external_power: bool = False

    def payload(self) -> bytes:
        _check(0 <= self.percent <= 100 or self.percent == 255,
               f"BATTERY percent {self.percent} not in 0..100 or 255")
        flags = (1 if self.charging else 0) | (2 if self.external_power else 0)
        return struct.pack("<BHB", self.percent, self.millivolts, flags)

    @classmethod
    def from_payload(cls, payload: bytes) -> Battery:
        pct, mv, flags = struct.unpack("<BHB", _at_least(payload, 4, "BATTERY"))
        _check(pct <= 100 or pct == 255, f"BATTERY percent {pct} not in 0..100 or 255")
        return cls(pct, mv, bool(flags & 1), bool(flags & 2))


@dataclass(frozen=True)
class Error(Message):
    TYPE: ClassVar[MsgType] = MsgType.ERROR
    code: int
    sample: int = NO_SAMPLE
    text: str = ""

    def payload(self) -> bytes:
        return struct.pack("<BI", self.code, self.sample % 2**32) + self.text.encode("utf-8")

    @classmethod
    def from_payload(cls, payload: bytes) -> Error:
        _check(len(payload) >= 5, f"ERROR payload is {len(payload)} bytes, needs >= 5")
        code, sample = struct.unpack_from("<BI", payload)
        return cls(code, sample, payload[5:].decode("utf-8", errors="replace"))


@dataclass(frozen=True)
class StreamEnd(Message):
    """The device stopped streaming; it had produced samples ``0 .. next_sample - 1``."""

    TYPE: ClassVar[MsgType] = MsgType.STREAM_END
    next_sample: int
    reason: int = EndReason.STOPPED

    def payload(self) -> bytes:
        return struct.pack("<IB", self.next_sample % 2**32, self.reason)

    @classmethod
    def from_payload(cls, payload: bytes) -> StreamEnd:
        return cls(*struct.unpack("<IB", _at_least(payload, 5, "STREAM_END")))


@dataclass(frozen=True)
class Ack(Message):
    TYPE: ClassVar[MsgType] = MsgType.ACK
    seq: int                  # seq of the host packet acknowledged
    command: int              # its type byte

    def payload(self) -> bytes:
        return struct.pack("<HB", self.seq, self.command)

    @classmethod
    def from_payload(cls, payload: bytes) -> Ack:
        return cls(*struct.unpack("<HB", _at_least(payload, 3, "ACK")))


@dataclass(frozen=True)
class Nack(Message):
    TYPE: ClassVar[MsgType] = MsgType.NACK
    seq: int
    command: int
    reason: int
    text: str = ""

    def payload(self) -> bytes:
        return struct.pack("<HBB", self.seq, self.command, self.reason) + self.text.encode()

    @classmethod
    def from_payload(cls, payload: bytes) -> Nack:
        _check(len(payload) >= 4, f"NACK payload is {len(payload)} bytes, needs >= 4")
        seq, cmd, reason = struct.unpack_from("<HBB", payload)
        return cls(seq, cmd, reason, payload[4:].decode("utf-8", errors="replace"))


@dataclass(frozen=True)
class GetInfo(Message):
    TYPE: ClassVar[MsgType] = MsgType.GET_INFO


@dataclass(frozen=True)
class Start(Message):
    TYPE: ClassVar[MsgType] = MsgType.START


@dataclass(frozen=True)
class Stop(Message):
    TYPE: ClassVar[MsgType] = MsgType.STOP


@dataclass(frozen=True)
class GetBattery(Message):
    TYPE: ClassVar[MsgType] = MsgType.GET_BATTERY


@dataclass(frozen=True)
class SetCalPulse(Message):
    TYPE: ClassVar[MsgType] = MsgType.SET_CAL_PULSE
    on: bool

    def payload(self) -> bytes:
        return bytes([1 if self.on else 0])

    @classmethod
    def from_payload(cls, payload: bytes) -> SetCalPulse:
        _check(len(payload) == 1 and payload[0] in (0, 1),
               f"SET_CAL_PULSE payload must be one byte 0 or 1, got {payload.hex() or 'nothing'}")
        return cls(bool(payload[0]))


MESSAGE_CLASSES: dict[int, type[Message]] = {
    cls.TYPE: cls for cls in (DeviceInfo, Samples, LeadOff, CalState, Battery, Error, StreamEnd,
                              Ack, Nack, GetInfo, Start, Stop, GetBattery, SetCalPulse)
}


def packet_bytes(msg: Message, seq: int) -> bytes:
    """The packet without CRC: ``version | type | seq | payload``."""
    return struct.pack("<BBH", PROTOCOL_VERSION, msg.TYPE, seq % 2**16) + msg.payload()


def encode_message(msg: Message, seq: int) -> bytes:
    """Wire bytes (COBS frame + ``0x00``) of ``msg`` sent with sequence number ``seq``.

    >>> encode_message(Start(), seq=0).hex(" ")
    '03 01 81 01 03 fe 1e 00'
    """
    return encode_frame(packet_bytes(msg, seq))


def decode_packet(packet: bytes) -> tuple[int, Message]:
    """``(seq, message)`` from a CRC-checked packet without CRC (what `FrameDecoder` returns).

    Raises `ProtocolError` for another protocol version or a bad payload, `UnknownMessageType`
    (a `ProtocolError`) for a type v1 does not define.

    >>> decode_packet(bytes.fromhex("01810300"))
    (3, Start())
    >>> decode_packet(bytes.fromhex("02810300"))
    Traceback (most recent call last):
    ...
    detak.firmware_bridge.messages.ProtocolError: protocol version 2 not supported (host speaks 1)
    """
    _check(len(packet) >= 4, f"packet of {len(packet)} bytes has no complete header")
    version, mtype, seq = struct.unpack_from("<BBH", packet)
    _check(version == PROTOCOL_VERSION,
           f"protocol version {version} not supported (host speaks {PROTOCOL_VERSION})")
    cls = MESSAGE_CLASSES.get(mtype)
    if cls is None:
        raise UnknownMessageType(f"unknown message type {mtype:#04x}")
    return seq, cls.from_payload(bytes(packet[4:]))


__all__ = [
    "PROTOCOL_VERSION", "INT16", "INT24", "MsgType", "NackReason", "ErrorCode", "EndReason",
    "ProtocolError", "UnknownMessageType", "Message", "DeviceInfo", "Samples", "LeadOff",
    "CalState", "Battery", "Error", "StreamEnd", "Ack", "Nack", "GetInfo", "Start", "Stop",
    "GetBattery", "SetCalPulse", "MESSAGE_CLASSES", "encode_message", "decode_packet",
    "packet_bytes", "pack_counts", "unpack_counts", "FrameDecoder",
]
