"""Tests for detak.device.bridge.BridgeDriver: decoding to events, counters, command retries."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from detak.data.ptbxl import open_ptbxl
from detak.device.bridge import BridgeDriver
from detak.device.drivers import DeviceCommandError
from detak.device.events import LeadOffChange, SampleBlock, StreamEnded, StreamInfo
from detak.firmware_bridge.emu_config import parse_emu_url
from detak.firmware_bridge.emulator import VirtualDevice
from detak.firmware_bridge.messages import (
    INT16,
    Ack,
    DeviceInfo,
    LeadOff,
    Samples,
    Start,
    Stop,
    StreamEnd,
    encode_message,
)

INFO = DeviceInfo(250000, 1000.0, 24, INT16, ("I", "II", "V1"), ("RA", "LA", "LL", "RL", "V1"),
                  "m", "f", "s")


def _block(first: int, n_ch: int = 3) -> Samples:
    return Samples(first, 0, INT16, np.arange(n_ch * 2, dtype=np.int32).reshape(n_ch, 2))


class _FakeLink:
    """Delivers what a VirtualDevice answers to the driver, like the session does; can lose
    the device's first ``lose`` answers."""

    interactive = True

    def __init__(self, driver: BridgeDriver, device: VirtualDevice | None, lose: int = 0):
        self.driver, self.device, self.lose = driver, device, lose
        self.waiters: list = []
        self.sent = 0

    async def send(self, data: bytes, channel: str | None = None) -> None:
        self.sent += 1
        if self.device is None:
            return
        self.device.receive(data, 0.0)
        out = self.device.poll(0.0)
        if self.lose:
            self.lose -= 1
            return
        for event in self.driver.feed(out):
            for pred, fut in list(self.waiters):
                if not fut.done() and pred(event):
                    fut.set_result(event)

    def expect(self, predicate):
        fut = asyncio.get_running_loop().create_future()
        self.waiters.append((predicate, fut))
        return fut


# --- bad input first ---------------------------------------------------------------------------


def test_samples_with_the_wrong_channel_count_are_counted_not_raised() -> None:
    drv = BridgeDriver()
    events = drv.feed(encode_message(INFO, 0) + encode_message(_block(0, n_ch=2), 1))
    assert [type(e) for e in events] == [StreamInfo]
    assert drv.stats()["protocol_errors"] == 1
    assert "SAMPLES has 2 channels, DEVICE_INFO said 3" in drv.last_protocol_error


def test_a_packet_with_a_bad_payload_is_a_protocol_error_not_also_a_lost_packet() -> None:
    from detak.firmware_bridge.framing import encode_frame
    from detak.firmware_bridge.messages import MsgType

    drv = BridgeDriver()
    bad_lead_off = bytes([1, MsgType.LEAD_OFF, 1, 0]) + b"\x01"   # v1 header, 1-byte payload
    events = drv.feed(encode_message(INFO, 0) + encode_frame(bad_lead_off)
                      + encode_message(_block(0), 2))
    assert [type(e) for e in events] == [StreamInfo, SampleBlock]
    st = drv.stats()
    assert (st["protocol_errors"], st["lost_packets"]) == (1, 0)   # it arrived: not lost
    assert drv.last_protocol_error
    # a packet whose header is not v1's cannot say its sequence number: the gap stays counted
    drv = BridgeDriver()
    drv.feed(encode_message(INFO, 0) + encode_frame(bytes([2, MsgType.LEAD_OFF, 1, 0]))
             + encode_message(_block(0), 2))
    assert (drv.stats()["protocol_errors"], drv.stats()["lost_packets"]) == (1, 1)


def test_garbage_and_host_commands_from_the_device_are_counted() -> None:
    drv = BridgeDriver()
    events = drv.feed(b"\x13\x37\x00" + encode_message(Start(), 0) + encode_message(INFO, 1))
    assert [type(e) for e in events] == [StreamInfo]
    st = drv.stats()
    assert (st["short_frames"] + st["cobs_errors"] + st["crc_errors"], st["unexpected_messages"]
            ) == (1, 1)


def test_unknown_message_types_are_skipped_counted_apart_and_longer_payloads_read() -> None:
    # a newer device: a message type v1 does not know, and LEAD_OFF with a field appended
    from detak.firmware_bridge.framing import encode_frame
    from detak.firmware_bridge.messages import packet_bytes

    drv = BridgeDriver()
    newer = (encode_message(INFO, 0) + encode_frame(bytes([1, 0x30, 1, 0, 9, 9]))
             + encode_frame(packet_bytes(LeadOff(4, 0b10), 2) + b"\x07")
             + encode_message(_block(4), 3))
    events = drv.feed(newer)
    assert [type(e) for e in events] == [StreamInfo, LeadOffChange, SampleBlock]
    assert events[1].electrodes_off == ("LA",)
    st = drv.stats()
    assert (st["unknown_messages"], st["protocol_errors"], st["lost_packets"]) == (1, 0, 0)


def test_a_device_that_never_answers_fails_with_the_command_named() -> None:
    drv = BridgeDriver(timeout=0.05, retries=2)
    link = _FakeLink(drv, None)
    with pytest.raises(DeviceCommandError, match=r"did not answer GET_INFO \(seq 0\) within "
                                                 r"0.05 s, 3 tries"):
        asyncio.run(drv.start(link))
    assert link.sent == 3


def test_a_refused_command_names_the_nack_reason() -> None:
    rec = open_ptbxl().record(1)
    dev = VirtualDevice(rec, parse_emu_url("emu://ptbxl/1"))
    drv = BridgeDriver(timeout=0.2)
    link = _FakeLink(drv, dev)

    async def stop_while_stopped() -> None:
        drv.ensure_ok(await drv.request(link, Stop()), "STOP")

    with pytest.raises(DeviceCommandError, match="refused STOP: ALREADY_IN_STATE"):
        asyncio.run(stop_while_stopped())


# --- decoding ----------------------------------------------------------------------------------


def test_sample_counter_unwraps_past_2_32_and_restarts_after_a_start_ack() -> None:
    drv = BridgeDriver()
    wire = (encode_message(INFO, 0) + encode_message(_block(2**32 - 2), 1)
            + encode_message(_block(0), 2) + encode_message(_block(2), 3)
            + encode_message(Ack(9, 0x81), 4) + encode_message(_block(0), 5))
    firsts = [e.first_sample for e in drv.feed(wire) if isinstance(e, SampleBlock)]
    assert firsts == [2**32 - 2, 2**32, 2**32 + 2, 0]


def test_lost_packets_are_counted_from_the_sequence_including_wrap() -> None:
    drv = BridgeDriver()
    drv.feed(encode_message(INFO, 65533) + encode_message(_block(0), 65534)
             + encode_message(_block(2), 1))          # 65535 and 0 never arrived
    assert drv.stats()["lost_packets"] == 2


def test_lead_off_bits_become_the_leads_each_electrode_feeds() -> None:
    drv = BridgeDriver()
    events = drv.feed(encode_message(INFO, 0) + encode_message(LeadOff(40, 0b10010), 1)
                      + encode_message(LeadOff(60, 1 << 7), 2))
    la_v1, unknown = events[1], events[2]
    assert isinstance(la_v1, LeadOffChange)
    assert (la_v1.sample, la_v1.electrodes_off, la_v1.leads_off) == (
        40, ("LA", "V1"), frozenset({"I", "V1"}))
    # bit 7 names no electrode of this device: nothing can be trusted
    assert unknown.electrodes_off == ("electrode7",)
    assert unknown.leads_off == frozenset({"I", "II", "V1"})


def test_stream_end_reason_names() -> None:
    drv = BridgeDriver()
    (a, b) = drv.feed(encode_message(StreamEnd(10, 1), 0) + encode_message(StreamEnd(10, 9), 1))
    assert isinstance(a, StreamEnded) and (a.next_sample, a.reason) == (10, "end_of_source")
    assert b.reason == "code 9"


# --- commands ----------------------------------------------------------------------------------


def test_start_survives_lost_answers_by_resending_the_same_seq() -> None:
    rec = open_ptbxl().record(1)
    dev = VirtualDevice(rec, parse_emu_url("emu://ptbxl/1?speed=1"))
    drv = BridgeDriver(timeout=0.05, retries=3)
    link = _FakeLink(drv, dev, lose=2)
    info = asyncio.run(drv.start(link))
    assert info.channels == rec.leads and info.fs == 100.0
    assert drv.stats()["retries"] == 2
    assert dev.streaming
