"""`VirtualDevice`: a firmware-bridge ECG front-end in software, with fault injection.

It replays a real record (a `Recording` in mV, quantised to counts with the configured LSB) as
the bridge protocol v1, exactly as firmware would: it answers GET_INFO / START / STOP /
SET_CAL_PULSE / GET_BATTERY, streams SAMPLES frames paced by the clock (``speed`` times real
time, ``drift_ppm`` off), and injects the faults of its `EmulatorConfig` (see
`detak.firmware_bridge.emu_config`): dropped and corrupted frames, link loss, electrodes off,
noise bursts, the 1 mV calibration pulse. Every injected fault is appended to `log` as a dict
with ``kind`` and the sample span it touched (``first_sample``, ``n_samples``), so tests can
check that the host saw exactly those gaps.

With ``format=cyton`` or ``format=csv`` it impersonates a third-party serial device instead
(`detak.firmware_bridge.personalities`: the same record, pacing and sample faults, in that
device's bytes and commands).

The class does no I/O: ``receive(bytes, now)`` takes what the host sent, ``poll(now)`` returns
the bytes the device sends by time ``now`` (seconds, any monotonic clock). Runners in
`detak.firmware_bridge.serve` put it on a pseudo-terminal, a TCP socket or a fake BLE link.

Link loss (``disconnect=T:DOWN``): from sample T·fs the device is unreachable for DOWN s;
``link_up`` turns False (a runner then closes the link), and turns True again after the down
time. Samples produced while down, and after the link is back until the host sends a valid
frame again, are lost (one ``disconnect`` log entry covers them); their frames still use
sequence numbers, as on a UART device that cannot tell the link is down. Drops and corruption
only hit SAMPLES frames; control messages are lost only when ``lose_answer=COMMAND`` asks for
it (the whole answer to that command; a repeated command is answered with fresh sequence
numbers, or with the identical old bytes under ``repeat=bytes``).

>>> import numpy as np
>>> from detak.data.recording import Recording
>>> from detak.firmware_bridge.messages import GetInfo, Start, encode_message, decode_packet
>>> from detak.firmware_bridge.framing import FrameDecoder
>>> rec = Recording(np.array([[0.0, 0.5, -0.25, 1.0]]), fs=100.0, leads=["II"])
>>> dev = VirtualDevice(rec, EmulatorConfig(speed=0, block=2))
>>> dev.receive(encode_message(GetInfo(), 0) + encode_message(Start(), 1), now=0.0)
>>> msgs = [decode_packet(p)[1] for p in FrameDecoder().feed(dev.poll(now=0.0))]
>>> [type(m).__name__ for m in msgs]
['DeviceInfo', 'Ack', 'Ack', 'Samples', 'Samples', 'StreamEnd']
>>> np.concatenate([m.counts for m in msgs[3:5]], axis=1).tolist()
[[0, 500, -250, 1000]]
"""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np

from detak.data.recording import Recording
from detak.firmware_bridge.electrodes import electrodes_for, leads_affected
from detak.firmware_bridge.emu_config import EmulatorConfig, parse_emu_url
from detak.firmware_bridge.framing import FrameDecoder
from detak.firmware_bridge.messages import (
    INT16,
    INT24,
    PROTOCOL_VERSION,
    Ack,
    Battery,
    CalState,
    DeviceInfo,
    EndReason,
    LeadOff,
    Message,
    MsgType,
    Nack,
    NackReason,
    ProtocolError,
    Samples,
    SetCalPulse,
    StreamEnd,
    UnknownMessageType,
    decode_packet,
    encode_message,
)
from detak.firmware_bridge.personalities import make_personality

FRAMES_PER_SECOND = 50
MAX_BLOCKS_PER_POLL = 64          # at speed=0, how far one poll runs ahead


class VirtualDevice:
    """A bridge-protocol device replaying ``recording`` with the faults of ``config``."""

    def __init__(self, recording: Recording, config: EmulatorConfig | None = None) -> None:
        cfg = config or EmulatorConfig()
        self.config = cfg
        self.personality = make_personality(cfg)        # None: the bridge protocol
        if self.personality is not None:
            recording = self.personality.prepare(cfg, recording)
        self.recording = recording
        self.fs = float(recording.fs)
        if not (math.isfinite(self.fs) and self.fs > 0):
            raise ValueError(f"{recording.name or 'recording'}: sample rate {recording.fs} "
                             "cannot be replayed")
        if recording.n_samples == 0:
            raise ValueError(f"{recording.name or 'recording'}: no samples to replay")
        fmt_name = cfg.sample_format or ("int16" if cfg.source == "ptbxl" else "int24")
        self.sample_format = INT16 if fmt_name == "int16" else INT24
        self.full_scale = 2 ** (8 * self.sample_format - 1) - 1
        self.block = int(cfg.block or max(1, round(self.fs / FRAMES_PER_SECOND)))
        self.log: list[dict[str, Any]] = []
        self._clipped = 0
        self.counts = self._quantise(recording.signal)
        self.n_source = self.counts.shape[1]
        channels = tuple(recording.leads)
        self.info = DeviceInfo(
            sample_rate_mhz=int(round(self.fs * 1000)), lsb_nv=float(np.float32(cfg.lsb_nv)),
            adc_bits=8 * self.sample_format, sample_format=self.sample_format,
            channels=channels, electrodes=electrodes_for(channels), model="detak-emu",
            firmware="emu-1", serial=_serial(recording.name or cfg.target))
        self._rng = np.random.default_rng(cfg.seed)
        self._noise_rng = np.random.default_rng([cfg.seed, 1])
        self._decoder = FrameDecoder()
        self._out = bytearray()
        self._ready = bytearray()
        self._seq = 0
        self._last_command: tuple[int, int] | None = None
        self._last_reply: list[Message] = []
        self._last_reply_bytes = b""
        self._lose_answers = dict(cfg.lose_answers)
        self.streaming = False
        self.next_sample = 0
        self._t0 = 0.0
        self.link_up = True
        self.subscribed = True
        self._down_until = -1
        self._lost: dict[str, Any] | None = None
        self._rate = self.fs * (1.0 + cfg.drift_ppm * 1e-6)
        self._disconnects = sorted((self._idx(t), max(1, self._idx(d))) for t, d in
                                   cfg.disconnects)
        self._leadoff_spans = []
        for t, d, electrode in cfg.leadoffs:
            names = [e.upper() for e in self.info.electrodes]
            if electrode.upper() not in names:
                raise ValueError(f"{cfg.url or 'emulator'}: leadoff electrode {electrode!r} "
                                 f"unknown; this device has {', '.join(self.info.electrodes)}")
            bit = names.index(electrode.upper())
            rows = [channels.index(c) for c in leads_affected(electrode, channels)]
            self._leadoff_spans.append((self._idx(t), self._end(t, d), bit, rows, electrode))
        self._noise_spans = [(self._idx(t), self._end(t, d), mv) for t, d, mv in cfg.noises]
        self._pulse_spans = [(self._idx(t), self._end(t, d)) for t, d in cfg.pulses]
        self._cal_forced: tuple[int, bool] | None = None
        self._mask_sent = 0
        self._cal_sent = False
        self.battery = Battery(percent=95, millivolts=4010)

    # --- set-up ------------------------------------------------------------------------------

    @classmethod
    def from_url(cls, url: str) -> VirtualDevice:
        """Build the device an ``emu://`` URL describes (loads the record).

        >>> VirtualDevice.from_url("emu://ludb/1?format=int24").info.channels[:2]
        ('I', 'II')
        """
        cfg = parse_emu_url(url)
        return cls(cfg.load(), cfg)

    def _idx(self, t: float) -> int:
        return int(round(t * self.fs))

    def _end(self, t: float, d: float) -> int:
        return 2**62 if math.isinf(d) else self._idx(t + d)

    def _quantise(self, mv: np.ndarray) -> np.ndarray:
        cfg = self.config
        x = np.asarray(mv, dtype=np.float64) * cfg.gain * (1e6 / float(np.float32(cfg.lsb_nv)))
        nan = np.isnan(x)
        x = np.rint(np.where(nan, 0.0, x)) + cfg.offset
        clip = (x > self.full_scale) | (x < -self.full_scale - 1)
        if clip.any() or nan.any():
            self._clipped = int(clip.sum())
            self.log.append({"kind": "clip", "n_values": int(clip.sum()),
                             "nan_values": int(nan.sum())})
        return np.clip(x, -self.full_scale - 1, self.full_scale).astype(np.int32)

    # --- host -> device ----------------------------------------------------------------------

    def receive(self, data: bytes, now: float) -> None:
        """Bytes from the host; replies are queued for the next `poll`."""
        if self.personality is not None:
            self.personality.receive(self, data, now)
            return
        for packet in self._decoder.feed(data):
            self.subscribed = True
            self._handle(packet, now)

    def _handle(self, packet: bytes, now: float) -> None:
        version, mtype, seq = struct.unpack_from("<BBH", packet)
        if version != PROTOCOL_VERSION:
            self._send(Nack(seq, mtype, NackReason.BAD_VERSION,
                            f"device speaks version {PROTOCOL_VERSION}"))
            return
        if self._last_command == (seq, mtype):            # a retry: same answer again
            if self.config.repeat == "bytes":             # a v1.0 reading: the old bytes
                self._out += self._last_reply_bytes
            else:                                         # v1.1: fresh sequence numbers
                for msg in self._last_reply:
                    self._send(msg)
            return
        try:
            _, msg = decode_packet(packet)
        except ProtocolError as exc:
            reason = (NackReason.UNKNOWN_COMMAND if isinstance(exc, UnknownMessageType)
                      else NackReason.BAD_LENGTH)
            self._reply(seq, mtype, [Nack(seq, mtype, reason, str(exc)[:60])])
            return
        if mtype < 0x80:
            self._reply(seq, mtype, [Nack(seq, mtype, NackReason.UNKNOWN_COMMAND,
                                          "not a host command")])
            return
        ack = Ack(seq, mtype)
        already = Nack(seq, mtype, NackReason.ALREADY_IN_STATE)
        if mtype == MsgType.GET_INFO:
            reply: list[Message] = [self.info]
            if self.streaming:
                reply += self._state_messages(self.next_sample, force=True)
            self._reply(seq, mtype, [*reply, ack])
        elif mtype == MsgType.START:
            if self.streaming:
                self._reply(seq, mtype, [already])
                return
            self._reply(seq, mtype, [ack])
            self._start(now)
        elif mtype == MsgType.STOP:
            if not self.streaming:
                self._reply(seq, mtype, [already])
                return
            self.streaming = False
            self._reply(seq, mtype, [ack, StreamEnd(self.next_sample, EndReason.STOPPED)])
        elif mtype == MsgType.SET_CAL_PULSE:
            assert isinstance(msg, SetCalPulse)
            self._cal_forced = (self.next_sample if self.streaming else 0, msg.on)
            self.log.append({"kind": "pulse_command", "on": msg.on,
                             "first_sample": self._cal_forced[0]})
            self._reply(seq, mtype, [ack])
        elif mtype == MsgType.GET_BATTERY:
            self._reply(seq, mtype, [self.battery, ack])
        else:
            self._reply(seq, mtype, [Nack(seq, mtype, NackReason.UNSUPPORTED)])

    def _reply(self, seq: int, mtype: int, msgs: list[Message]) -> None:
        self._last_command, self._last_reply = (seq, mtype), msgs
        start = len(self._out)
        first_seq = self._seq
        for m in msgs:
            self._send(m)
        self._last_reply_bytes = bytes(self._out[start:])
        try:
            name = MsgType(mtype).name
        except ValueError:
            name = ""
        if self._lose_answers.get(name, 0) > 0:           # fault: the link loses the answer
            self._lose_answers[name] -= 1
            del self._out[start:]
            self.log.append({"kind": "lost_answer", "command": name, "seq": seq,
                             "device_seqs": [(first_seq + i) % 2**16 for i in range(len(msgs))]})

    def _send(self, msg: Message) -> None:
        self._out += encode_message(msg, self._seq)
        self._seq = (self._seq + 1) % 2**16

    def _start(self, now: float) -> None:
        self.streaming = True
        self.next_sample = 0
        self._t0 = now
        self._mask_sent = 0              # what the host assumes at START (protocol.md 4.2):
        self._cal_sent = False           # no electrode off, pulse off; changes are announced
        if self._cal_forced is not None:     # the last SET_CAL_PULSE holds across STOP/START
            self._cal_forced = (0, self._cal_forced[1])
        n = self.n_source
        for a, b, _bit, rows, electrode in self._leadoff_spans:
            if a < n:
                self.log.append({"kind": "leadoff", "electrode": electrode, "first_sample": a,
                                 "n_samples": min(b, n) - a,
                                 "leads": [self.info.channels[r] for r in rows]})
        for a, b, mv in self._noise_spans:
            if a < n:
                self.log.append({"kind": "noise", "first_sample": a, "n_samples": min(b, n) - a,
                                 "rms_mv": mv})
        for a, b in self._pulse_spans:
            if a < n:
                self.log.append({"kind": "pulse", "first_sample": a, "n_samples": min(b, n) - a})

    # --- device -> host ----------------------------------------------------------------------

    def next_due(self, now: float) -> float | None:
        """When the next SAMPLES frame is due (None when not streaming)."""
        if not self.streaming:
            return None
        if self.config.speed == 0:
            return now
        return self._t0 + (self.next_sample + self.block) / (self._rate * self.config.speed)

    def _due(self, now: float) -> int:
        if self.config.speed == 0:
            return self.next_sample + MAX_BLOCKS_PER_POLL * self.block
        return int(math.floor((now - self._t0) * self._rate * self.config.speed + 1e-9))

    def poll(self, now: float) -> bytes:
        """The bytes the device has sent by time ``now`` (queued replies, then due frames)."""
        if self.personality is not None:
            self.personality.before_poll(self, now)
        if self.streaming:
            due = self._due(now)
            n_src = self.n_source
            while self.streaming:
                if not self.config.loop and self.next_sample >= n_src:
                    self.streaming = False
                    if self.link_up and self.personality is None:
                        self._send(StreamEnd(n_src, EndReason.END_OF_SOURCE))
                    break
                n = self.block if self.config.loop else min(self.block,
                                                           n_src - self.next_sample)
                if self.next_sample + n > due:
                    break
                self._emit(self.next_sample, n)
                self.next_sample += n
        elif not self.link_up:
            self.link_up = True                   # stream over while down: link comes back
            self.subscribed = False
        out = bytes(self._ready) + (bytes(self._out) if self.link_up else b"")
        self._ready.clear()
        self._out.clear()
        return out

    def _emit(self, first: int, n: int) -> None:
        if self._disconnects and first >= self._disconnects[0][0] and self.link_up:
            _, down = self._disconnects.pop(0)
            self.link_up = False
            self._down_until = first + down
            self._ready += self._out              # sent before the link went down
            self._out.clear()
            self._lost = {"kind": "disconnect", "first_sample": first, "n_samples": 0}
            self.log.append(self._lost)
        if not self.link_up and first >= self._down_until:
            self.link_up = True
            self.subscribed = False          # until the host talks to us again
        if not self.link_up or not self.subscribed:
            # like a UART device that cannot tell the link is down, the frame it could not
            # send still uses its sequence number (docs/protocol.md 3 allows either)
            self._seq = (self._seq + 1) % 2**16
            if self._lost is None:
                self._lost = {"kind": "disconnect", "first_sample": first, "n_samples": 0}
                self.log.append(self._lost)
            self._lost["n_samples"] = first + n - self._lost["first_sample"]
            return
        self._lost = None
        values = self._values(first, n)
        if self.personality is not None:
            frame = self.personality.encode(self, first, values)
        else:
            self._out += b"".join(encode_message(m, self._next_seq())
                                  for m in self._state_messages(first, n=n))
            ts = int(round(first * 1e6 / self.fs)) % 2**32
            frame = encode_message(Samples(first % 2**32, ts, self.sample_format, values),
                                   self._next_seq())
        cfg = self.config
        if cfg.drop and self._rng.random() < cfg.drop:
            self.log.append({"kind": "drop", "seq": (self._seq - 1) % 2**16,
                             "first_sample": first, "n_samples": n})
            return
        if cfg.corrupt:
            hit = np.flatnonzero(self._rng.random(len(frame) - 1) < cfg.corrupt)
            if hit.size:
                buf = bytearray(frame)
                flips = self._rng.integers(1, 256, size=hit.size)
                for pos, flip in zip(hit.tolist(), flips.tolist(), strict=True):
                    buf[pos] ^= flip
                frame = bytes(buf)
                self.log.append({"kind": "corrupt", "seq": (self._seq - 1) % 2**16,
                                 "first_sample": first, "n_samples": n,
                                 "bytes": hit.tolist()})
        self._out += frame

    def _next_seq(self) -> int:
        seq = self._seq
        self._seq = (self._seq + 1) % 2**16
        return seq

    def _mask_at(self, idx: np.ndarray) -> np.ndarray:
        mask = np.zeros(idx.shape, dtype=np.int64)
        for a, b, bit, _rows, _e in self._leadoff_spans:
            mask |= np.where((idx >= a) & (idx < b), 1 << bit, 0)
        return mask

    def _cal_at(self, idx: np.ndarray) -> np.ndarray:
        on = np.zeros(idx.shape, dtype=bool)
        for a, b in self._pulse_spans:
            on |= (idx >= a) & (idx < b)
        if self._cal_forced is not None:
            start, forced = self._cal_forced
            on = np.where(idx >= start, forced, on)
        return on

    def _state_messages(self, first: int, n: int = 1, force: bool = False) -> list[Message]:
        """LEAD_OFF / CAL_STATE for state changes in ``[first, first + n)`` (with ``force``, the
        current state at ``first`` whatever it is: the answer to GET_INFO while streaming)."""
        idx = np.arange(first, first + n)
        masks, cal = self._mask_at(idx), self._cal_at(idx)
        out: list[Message] = []
        prev_mask, prev_cal = self._mask_sent, self._cal_sent
        for i in range(n):
            if masks[i] != prev_mask or (force and i == 0):
                out.append(LeadOff(first + i, int(masks[i])))
                prev_mask = int(masks[i])
            if bool(cal[i]) != prev_cal or (force and i == 0):
                out.append(CalState(first + i, bool(cal[i])))
                prev_cal = bool(cal[i])
        self._mask_sent, self._cal_sent = prev_mask, prev_cal
        return out

    def _values(self, first: int, n: int) -> np.ndarray:
        idx = np.arange(first, first + n)
        src = self.counts[:, idx % self.n_source].astype(np.int64)
        lsb_mv = float(np.float32(self.config.lsb_nv)) * 1e-6
        for a, b, mv in self._noise_spans:
            sel = (idx >= a) & (idx < b)
            if sel.any():
                size = (src.shape[0], int(sel.sum()))
                noise = self._noise_rng.normal(0.0, mv / lsb_mv, size=size)
                src[:, sel] += np.rint(noise).astype(np.int64)
        cal = self._cal_at(idx)
        if cal.any():
            one_mv = int(round(self.config.gain / lsb_mv)) + self.config.offset
            high = ((idx * 2) // int(round(self.fs))) % 2 == 0       # 1 Hz square wave
            src[:, cal] = np.where(high[cal], one_mv, self.config.offset)
        for a, b, _bit, rows, _e in self._leadoff_spans:
            sel = (idx >= a) & (idx < b)
            if sel.any() and rows:
                src[np.ix_(rows, np.flatnonzero(sel))] = self.full_scale
        return np.clip(src, -self.full_scale - 1, self.full_scale).astype(np.int32)

    # --- summary -----------------------------------------------------------------------------

    def lost_spans(self) -> list[tuple[int, int]]:
        """Merged ``[start, stop)`` sample spans the host never received intact (drops,
        corruption, link loss), from the log.

        >>> import numpy as np
        >>> from detak.data.recording import Recording
        >>> d = VirtualDevice(Recording(np.zeros((1, 10)), 100.0, ["II"]))
        >>> d.log += [{"kind": "drop", "first_sample": 2, "n_samples": 2},
        ...           {"kind": "corrupt", "first_sample": 4, "n_samples": 2}]
        >>> d.lost_spans()
        [(2, 6)]
        """
        spans = sorted((e["first_sample"], e["first_sample"] + e["n_samples"]) for e in self.log
                       if e["kind"] in ("drop", "corrupt", "disconnect") and e["n_samples"] > 0)
        merged: list[tuple[int, int]] = []
        for a, b in spans:
            if merged and a <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
            else:
                merged.append((a, b))
        return merged


def _serial(name: str) -> str:
    text = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in name)
    return text[:32] or "emu"
