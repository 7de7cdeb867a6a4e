"""Driver for the detak firmware-bridge protocol v1 (serial, TCP, BLE Nordic UART, captures).

Decoding: `FrameDecoder` (COBS + CRC, resync at the next 0x00) then `decode_packet`; each
message becomes a device-neutral event (`detak.device.events`). Sample indices (u32 on the
wire) are unwrapped into a growing int; the packet sequence number (u16) counts lost packets;
frames with bad CRC/COBS and packets breaking the protocol are counted, never raised. Packets of
a type v1 does not define (a newer device) are skipped and counted apart (``unknown_messages``);
a packet with a v1 header and a bad payload is a protocol error, not also a lost packet;
longer payloads are read as far as v1 defines them (docs/protocol.md 4.3).

Sequence numbers (docs/protocol.md 3): a packet whose seq is at or behind the last one (within
half the u16 range) is a repeat - a v1.0 device resending the identical bytes of an earlier
answer - and is counted as ``repeated_packets``, never as a wrap-around loss; after a link loss
(`link_lost`, called by the session) the check restarts with the first packet received.

Commands: the host numbers its commands from a random value per driver (one session), kept
across reconnects. `start` sends GET_INFO (the device answers DEVICE_INFO, then ACK) and START;
a NACK ``ALREADY_IN_STATE`` to START in a new session means an earlier host left the device
streaming: the driver sends STOP and START again, so the recording starts at sample 0, and drops
that old stream's messages (``stale_stream_messages``). After a reconnect (`resume`) the same
NACK means the stream goes on. Stream messages that arrive while START awaits its answer (its
ACK was lost) are held and released by the (repeated) ACK. Every command waits ``timeout`` s for
its ACK/NACK and is resent with the same sequence number up to ``retries`` times (the device
answers a repeated command again without re-executing it).

>>> from detak.firmware_bridge.messages import LeadOff, Samples, encode_message, INT16
>>> from detak.firmware_bridge.emulator import VirtualDevice
>>> drv = BridgeDriver()
>>> info_msg = VirtualDevice.from_url("emu://ludb/1").info
>>> import numpy as np
>>> wire = (encode_message(info_msg, 0) + encode_message(LeadOff(10, 0b10), 1)
...         + encode_message(Samples(0, 0, INT16, np.zeros((12, 2), np.int32)), 3))
>>> [type(e).__name__ for e in drv.feed(wire)]
['StreamInfo', 'LeadOffChange', 'SampleBlock']
>>> drv.stats()["lost_packets"]             # seq 2 never arrived
1
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from detak.device.drivers import DeviceCommandError, Driver, Link, register_driver
from detak.device.events import (
    BatteryStatus,
    CalPulseChange,
    DeviceError,
    Event,
    LeadOffChange,
    Reply,
    SampleBlock,
    StreamEnded,
    StreamInfo,
)
from detak.firmware_bridge.electrodes import leads_affected
from detak.firmware_bridge.framing import FrameDecoder
from detak.firmware_bridge.messages import (
    PROTOCOL_VERSION,
    Ack,
    Battery,
    CalState,
    DeviceInfo,
    EndReason,
    Error,
    GetBattery,
    GetInfo,
    LeadOff,
    Message,
    MsgType,
    Nack,
    NackReason,
    ProtocolError,
    Samples,
    SetCalPulse,
    Start,
    Stop,
    StreamEnd,
    UnknownMessageType,
    decode_packet,
    encode_message,
)

#: Nordic UART Service: the bridge protocol over BLE (TX = notifications to the host).
NUS_SERVICE = "6e400001-b5a3-f393-e0a9-e50e24dcca9e"
NUS_RX = "6e400002-b5a3-f393-e0a9-e50e24dcca9e"      # host writes here
NUS_TX = "6e400003-b5a3-f393-e0a9-e50e24dcca9e"      # device notifies here

#: Messages that belong to a stream (dropped or held around START, see `BridgeDriver`).
_STREAM_MESSAGES = (Samples, LeadOff, CalState, StreamEnd, Error)


def _unwrap(raw: int, last: int | None) -> int:
    """u32 counter ``raw`` as the int nearest to ``last`` (None: take it as is)."""
    if last is None:
        return raw
    d = (raw - last) % 2**32
    if d >= 2**31:
        d -= 2**32
    return last + d


@register_driver
class BridgeDriver(Driver):
    """The detak firmware bridge (docs/protocol.md)."""

    name = "bridge"
    ble_notify = (NUS_TX,)
    ble_write = NUS_RX

    def __init__(self, timeout: float = 0.5, retries: int = 3, first_seq: int | None = None,
                 **options: Any) -> None:
        super().__init__(**options)
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.decoder = FrameDecoder()
        self.device_info: DeviceInfo | None = None
        # the host's own numbering: from a random value per session (so a new host process
        # cannot repeat the previous one's last command by chance), kept across reconnects
        self._seq = (secrets.randbelow(2**16) if first_seq is None else int(first_seq)) % 2**16
        self._last_rx_seq: int | None = None
        self._last_sample: int | None = None
        # stream events: "on" delivered; "idle" (a fresh session before its START) dropped as
        # another session's stream; "pending" (a START awaits its answer) held until it comes
        self._stream = "on"
        self._held: list[Event] = []
        self._pending_start: int | None = None
        self._resuming = False
        self._last_start_ack: int | None = None
        self._state_sample: dict[str, int] = {}     # latest LEAD_OFF / CAL_STATE sample
        self._counts = {"lost_packets": 0, "repeated_packets": 0, "protocol_errors": 0,
                        "unknown_messages": 0, "unexpected_messages": 0, "retries": 0,
                        "stale_stream_messages": 0}
        self.last_protocol_error = ""

    # --- decoding ----------------------------------------------------------------------------

    def feed(self, data: bytes, channel: str | None = None,
             host_time: float = 0.0) -> list[Event]:
        events: list[Event] = []
        for packet in self.decoder.feed(data):
            try:
                seq, msg = decode_packet(packet)
            except UnknownMessageType:
                self._counts["unknown_messages"] += 1          # a newer device's message
                seq = int.from_bytes(packet[2:4], "little")
                self._count_seq(seq)
                continue
            except ProtocolError as exc:
                self._counts["protocol_errors"] += 1
                self.last_protocol_error = str(exc)
                if len(packet) >= 4 and packet[0] == PROTOCOL_VERSION:
                    # a v1 header with a bad payload: the packet arrived, it is not lost too
                    self._count_seq(int.from_bytes(packet[2:4], "little"))
                continue
            self._count_seq(seq)
            if self._stream == "idle" and isinstance(msg, _STREAM_MESSAGES):
                self._counts["stale_stream_messages"] += 1     # a stream we did not start
                continue
            if self._stale_state(msg):
                self._counts["stale_stream_messages"] += 1     # a repeat of an older state
                continue
            event = self._event(msg, host_time)
            if event is None:
                continue
            if self._stream == "pending" and isinstance(msg, _STREAM_MESSAGES):
                self._held.append(event)        # kept until START's answer says whose it is
                continue
            events.append(event)
            if (isinstance(event, Reply) and event.seq == self._pending_start
                    and event.command == MsgType.START):
                events += self._start_answered(event)
        return events

    def _count_seq(self, seq: int) -> None:
        """Count the packets missing before ``seq``. A seq at or behind the last one (within
        half the range) is a repeat - a v1.0 device resending the identical bytes of an
        earlier answer - not a wrap-around loss of 65,535 packets (docs/protocol.md 4.2)."""
        if self._last_rx_seq is None:
            self._last_rx_seq = seq
            return
        ahead = (seq - self._last_rx_seq) % 2**16
        if ahead == 0 or ahead >= 2**15:
            self._counts["repeated_packets"] += 1
            return
        self._counts["lost_packets"] += ahead - 1
        self._last_rx_seq = seq

    def _stale_state(self, msg: Message) -> bool:
        """LEAD_OFF / CAL_STATE for a sample before the latest one of its kind: a repeated
        answer's old state (their samples never go back within a stream, protocol.md 4.1)."""
        if not isinstance(msg, LeadOff | CalState):
            return False
        kind = type(msg).__name__
        sample = _unwrap(msg.sample, self._last_sample)
        latest = self._state_sample.get(kind)
        if latest is not None and sample < latest:
            return True
        self._state_sample[kind] = sample
        return False

    def _start_answered(self, reply: Reply) -> list[Event]:
        """The answer to the pending START: release the stream events held meanwhile (an ACK,
        or NACK 5 when resuming: they are the stream's) or drop them (another stream's)."""
        held, self._held, self._pending_start = self._held, [], None
        if reply.ok or (self._resuming and reply.reason == NackReason.ALREADY_IN_STATE):
            self._stream = "on"
            return held
        self._stream = "idle"
        self._counts["stale_stream_messages"] += len(held)
        return []

    def link_lost(self) -> None:
        """The link failed (the session reconnects): a partial frame goes with it, and the
        sequence check restarts with the first packet after the reconnect - a device may or
        may not have numbered the packets it could not send (docs/protocol.md 3)."""
        self.decoder.reset()
        self._last_rx_seq = None

    def _event(self, msg: Message, host_time: float) -> Event | None:
        if isinstance(msg, Samples):
            if self.info is not None and msg.n_channels != self.info.n_channels:
                self._counts["protocol_errors"] += 1
                self.last_protocol_error = (f"SAMPLES has {msg.n_channels} channels, DEVICE_INFO "
                                            f"said {self.info.n_channels}")
                return None
            first = _unwrap(msg.first_sample, self._last_sample)
            self._last_sample = first
            return SampleBlock(msg.counts, first, msg.timestamp_us, host_time)
        if isinstance(msg, DeviceInfo):
            self.device_info = msg
            self.info = StreamInfo(
                fs=msg.fs, channels=msg.channels, lsb_nv=msg.lsb_nv, model=msg.model,
                serial=msg.serial, firmware=msg.firmware, adc_bits=msg.adc_bits,
                electrodes=msg.electrodes, driver=self.name,
                extra={"sample_format": msg.sample_format, "protocol_version": 1})
            return self.info
        if isinstance(msg, LeadOff):
            names = self.info.electrodes if self.info else ()
            off = tuple(names[i] if i < len(names) else f"electrode{i}"
                        for i in range(32) if msg.mask >> i & 1)
            channels = self.info.channels if self.info else ()
            leads: set[str] = set()
            for electrode in off:
                leads.update(leads_affected(electrode, channels))
            return LeadOffChange(_unwrap(msg.sample, self._last_sample), frozenset(leads), off)
        if isinstance(msg, CalState):
            return CalPulseChange(_unwrap(msg.sample, self._last_sample), msg.on)
        if isinstance(msg, Ack | Nack):
            if (isinstance(msg, Ack) and msg.command == MsgType.START
                    and msg.seq != self._last_start_ack):
                self._last_start_ack = msg.seq      # (a repeated ACK changes nothing)
                if not self._held:                  # held events are the new stream's
                    self._last_sample = None        # a fresh stream counts from 0 again
                    self._state_sample = {}
            if isinstance(msg, Ack):
                return Reply(msg.seq, msg.command, True)
            return Reply(msg.seq, msg.command, False, msg.reason, msg.text)
        if isinstance(msg, StreamEnd):
            try:
                reason = EndReason(msg.reason).name.lower()
            except ValueError:
                reason = f"code {msg.reason}"
            return StreamEnded(_unwrap(msg.next_sample, self._last_sample), reason)
        if isinstance(msg, Battery):
            return BatteryStatus(None if msg.percent == 255 else msg.percent,
                                 msg.millivolts or None, msg.charging)
        if isinstance(msg, Error):
            sample = None if msg.sample == 0xFFFFFFFF else _unwrap(msg.sample, self._last_sample)
            return DeviceError(msg.code, msg.text, sample)
        self._counts["unexpected_messages"] += 1      # a host command sent by the device
        return None

    def stats(self) -> dict[str, int]:
        st = self.decoder.stats
        return {"bytes": st.bytes_in, "packets": st.packets, "crc_errors": st.crc_errors,
                "cobs_errors": st.cobs_errors, "short_frames": st.too_short,
                "oversize_frames": st.oversize, **self._counts}

    # --- commands ----------------------------------------------------------------------------

    def encode_command(self, msg: Message) -> tuple[int, bytes]:
        """``(seq, wire bytes)`` for a host command, using the next host sequence number."""
        seq = self._seq
        self._seq = (self._seq + 1) % 2**16
        return seq, encode_message(msg, seq)

    async def request(self, link: Link, msg: Message) -> Reply:
        """Send a command and wait for its ACK/NACK, resending on timeout."""
        seq, data = self.encode_command(msg)
        if isinstance(msg, Start) and link.interactive:
            self._stream, self._pending_start, self._held = "pending", seq, []
            self._state_sample = {}             # what arrives now is the new stream's
        for attempt in range(self.retries + 1):
            fut = link.expect(lambda e: isinstance(e, Reply) and e.seq == seq
                              and e.command == msg.TYPE)
            if attempt:
                self._counts["retries"] += 1
            await link.send(data, self.ble_write)
            try:
                reply = await asyncio.wait_for(fut, self.timeout)
            except TimeoutError:
                continue
            assert isinstance(reply, Reply)
            return reply
        raise DeviceCommandError(f"bridge device did not answer {msg.TYPE.name} (seq {seq}) "
                                 f"within {self.timeout:g} s, {self.retries + 1} tries")

    def ensure_ok(self, reply: Reply, what: str, allow_already: bool = False) -> None:
        """Raise `DeviceCommandError` naming the NACK reason unless ``reply`` is an ACK."""
        if reply.ok or (allow_already and reply.reason == NackReason.ALREADY_IN_STATE):
            return
        try:
            reason = NackReason(reply.reason).name
        except ValueError:
            reason = f"reason {reply.reason}"
        raise DeviceCommandError(f"bridge device refused {what}: {reason}"
                                 + (f" ({reply.text})" if reply.text else ""))

    async def start(self, link: Link) -> StreamInfo:
        """A new session: GET_INFO, START. A device still streaming for an earlier session
        (NACK 5 to START: a host process that ended without STOP) is stopped and started
        again, so the recording begins at sample 0; that old stream's messages are dropped."""
        if not link.interactive:              # a capture: DEVICE_INFO must be in the stream
            return await self.wait_info(link)
        self._resuming = False
        self._stream = "idle"
        return await self._handshake(link)

    async def resume(self, link: Link) -> StreamInfo:
        """After a reconnect: GET_INFO, START; NACK 5 means the stream goes on, same counter."""
        if not link.interactive:
            return await self.wait_info(link)
        self._resuming = True
        return await self._handshake(link)

    async def _handshake(self, link: Link) -> StreamInfo:
        self.info = None
        info_fut = link.expect(lambda e: isinstance(e, StreamInfo))
        self.ensure_ok(await self.request(link, GetInfo()), "GET_INFO")
        try:
            info = await asyncio.wait_for(info_fut, self.timeout)
        except TimeoutError:
            raise DeviceCommandError("bridge device acknowledged GET_INFO but sent no "
                                     "DEVICE_INFO") from None
        reply = await self.request(link, Start())
        if (not self._resuming and not reply.ok
                and reply.reason == NackReason.ALREADY_IN_STATE):
            self.ensure_ok(await self.request(link, Stop()), "STOP", allow_already=True)
            reply = await self.request(link, Start())
        self.ensure_ok(reply, "START", allow_already=self._resuming)
        assert isinstance(info, StreamInfo)
        return info

    async def stop(self, link: Link) -> None:
        if link.interactive:
            self.ensure_ok(await self.request(link, Stop()), "STOP", allow_already=True)

    async def set_cal_pulse(self, link: Link, on: bool) -> None:
        self.ensure_ok(await self.request(link, SetCalPulse(on)), "SET_CAL_PULSE")

    async def request_battery(self, link: Link) -> None:
        self.ensure_ok(await self.request(link, GetBattery()), "GET_BATTERY")
