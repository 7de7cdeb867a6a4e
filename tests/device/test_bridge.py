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
    drv = BridgeDriver(timeout=0.05, retries=2, first_seq=0)
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


# --- protocol v1.1: repeated answers, sessions, reconnects (docs/protocol.md 3, 4.2) ------------


class _Bench:
    """A host session against a VirtualDevice with a clock: every ``send`` and ``pump`` lets
    ``step`` seconds of device time pass, and every event the driver produces is kept in
    ``events`` (in order), as the session's queue would hold them."""

    interactive = True

    def __init__(self, driver: BridgeDriver, device: VirtualDevice, step: float = 0.02):
        self.driver, self.device, self.step = driver, device, step
        self.now = 0.0
        self.events: list = []
        self.waiters: list = []

    def _deliver(self) -> None:
        self.now += self.step
        for event in self.driver.feed(self.device.poll(self.now), host_time=self.now):
            self.events.append(event)
            for pred, fut in list(self.waiters):
                if not fut.done() and pred(event):
                    fut.set_result(event)

    async def send(self, data: bytes, channel: str | None = None) -> None:
        self.device.receive(data, self.now)
        self._deliver()

    def expect(self, predicate):
        fut = asyncio.get_running_loop().create_future()
        self.waiters.append((predicate, fut))
        return fut

    def pump(self, seconds: float) -> None:
        for _ in range(int(round(seconds / self.step))):
            self._deliver()


def _recorded(events: list, info: StreamInfo, n: int):
    from detak.device.recorder import Recorder

    rec = Recorder(info, limit=n)
    for e in events:
        rec.add(e)
    return rec.finish()


def test_an_old_sequence_number_on_a_repeated_answer_is_not_a_wrap_around_loss() -> None:
    # a v1.0 device that resends the identical bytes of its earlier answer (ACK seq 2) after
    # SAMPLES moved its sequence on to 4: seq 3 was lost, seq 2 came twice
    drv = BridgeDriver()
    ack = encode_message(Ack(0, 0x81), 2)
    drv.feed(encode_message(INFO, 1) + ack + encode_message(_block(0), 4) + ack
             + encode_message(_block(2), 5))
    st = drv.stats()
    assert (st["lost_packets"], st["repeated_packets"]) == (1, 1)


@pytest.mark.parametrize("repeat", ["fresh", "bytes"])
def test_a_lost_start_ack_costs_one_packet_and_no_sample_whichever_way_it_is_repeated(
        repeat) -> None:
    # the device's ACK of START is lost on the link; it streams on; the host resends START after
    # its timeout; the device answers again - with a fresh seq (v1.1) or its old bytes (v1.0)
    rec = open_ptbxl().record(1)
    dev = VirtualDevice(rec, parse_emu_url(f"emu://ptbxl/1?speed=1&lose_answer=START"
                                           f"&repeat={repeat}"))
    drv = BridgeDriver(timeout=0.05, retries=3)
    bench = _Bench(drv, dev)
    info = asyncio.run(drv.start(bench))
    bench.pump(12.0)                                   # the record (10 s) ends: STREAM_END
    st = drv.stats()
    assert st["retries"] == 1
    assert st["lost_packets"] == 1                     # the one ACK the link lost
    assert st["repeated_packets"] == (1 if repeat == "bytes" else 0)
    assert [e for e in bench.events if isinstance(e, StreamEnded)][0].next_sample == 1000
    firsts = [e.first_sample for e in bench.events if isinstance(e, SampleBlock)]
    assert firsts == list(range(0, 1000, dev.block))   # samples before the ACK are kept
    out = _recorded(bench.events, info, 1000)
    assert out.meta["gaps"] == []
    assert np.abs(out.signal - rec.signal).max() <= 0.001 + 1e-6


def test_a_new_host_session_restarts_a_stream_a_previous_host_left_running() -> None:
    rec = open_ptbxl().record(1)
    dev = VirtualDevice(rec, parse_emu_url("emu://ptbxl/1?speed=1"))
    first = _Bench(BridgeDriver(timeout=0.05), dev)
    asyncio.run(first.driver.start(first))
    first.pump(3.0)                                    # that host process dies without STOP
    assert dev.streaming and dev.next_sample >= 290
    drv = BridgeDriver(timeout=0.05)
    bench = _Bench(drv, dev)
    bench.now = first.now
    info = asyncio.run(drv.start(bench))
    bench.pump(11.0)
    blocks = [e for e in bench.events if isinstance(e, SampleBlock)]
    assert blocks[0].first_sample == 0                 # a recording of its own, from sample 0
    ends = [e for e in bench.events if isinstance(e, StreamEnded)]
    assert [(e.next_sample, e.reason) for e in ends] == [(1000, "end_of_source")]
    out = _recorded(bench.events, info, 1000)
    assert out.meta["gaps"] == [] and np.abs(out.signal - rec.signal).max() <= 0.001 + 1e-6
    assert drv.stats()["stale_stream_messages"] > 0   # the old stream's tail, not recorded


def test_a_reconnect_resumes_a_running_stream_without_restarting_it() -> None:
    rec = open_ptbxl().record(1)
    dev = VirtualDevice(rec, parse_emu_url("emu://ptbxl/1?speed=1"))
    drv = BridgeDriver(timeout=0.05)
    bench = _Bench(drv, dev)
    asyncio.run(drv.start(bench))
    bench.pump(2.0)
    drv.link_lost()
    asyncio.run(drv.resume(bench))
    bench.pump(1.0)
    firsts = [e.first_sample for e in bench.events if isinstance(e, SampleBlock)]
    assert firsts == list(range(0, firsts[-1] + 1, dev.block))   # one stream, never restarted


def test_a_sequence_gap_across_a_reconnect_is_not_counted_as_lost_packets() -> None:
    # a device that cannot tell the link is down numbers the frames it could not send
    drv = BridgeDriver()
    drv.feed(encode_message(INFO, 0) + encode_message(_block(0), 1) + b"\x04\x01\x10")
    drv.link_lost()                                    # the partial frame goes with the link
    events = drv.feed(encode_message(_block(400), 2001) + encode_message(_block(402), 2002))
    assert [e.first_sample for e in events] == [400, 402]
    st = drv.stats()
    assert (st["lost_packets"], st["short_frames"] + st["cobs_errors"] + st["crc_errors"]) == (0, 0)


def test_the_host_numbers_its_commands_from_a_random_start_per_session() -> None:
    starts = {BridgeDriver()._seq for _ in range(8)}
    assert len(starts) > 1
    assert BridgeDriver(first_seq=65535).encode_command(Start())[0] == 65535


def test_a_damaged_delimiter_costs_the_two_frames_it_joins() -> None:
    drv = BridgeDriver()
    wire = bytearray(encode_message(INFO, 0))
    frames = [encode_message(_block(2 * i), i + 1) for i in range(4)]
    joined = bytearray(frames[1])
    joined[-1] = 0x01                                  # block 1's delimiter damaged
    wire += frames[0] + joined + frames[2] + frames[3]
    events = drv.feed(bytes(wire))
    st = drv.stats()
    assert [e.first_sample for e in events if isinstance(e, SampleBlock)] == [0, 6]
    assert (st["crc_errors"] + st["cobs_errors"], st["lost_packets"]) == (1, 2)
    out = _recorded(events, events[0], 8)
    assert out.meta["gaps"] == [[2, 6, "lost"]]


def test_leading_zeros_and_empty_frames_cost_nothing() -> None:
    drv = BridgeDriver()
    events = drv.feed(b"\x00\x00" + encode_message(INFO, 0) + b"\x00\x00\x00"
                      + encode_message(_block(0), 1))
    st = drv.stats()
    assert [type(e) for e in events] == [StreamInfo, SampleBlock]
    assert st["crc_errors"] + st["cobs_errors"] + st["short_frames"] + st["lost_packets"] == 0


def test_blocks_of_varying_size_and_a_late_lead_off_are_placed_at_their_samples() -> None:
    drv = BridgeDriver()
    sizes = [3, 1, 7, 2]
    firsts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).tolist()
    wire = encode_message(INFO, 0)
    for i, (a, n) in enumerate(zip(firsts, sizes, strict=True)):
        counts = np.tile(np.arange(a, a + n, dtype=np.int32), (3, 1))
        wire += encode_message(Samples(a, 0, INT16, counts), i + 1)
    wire += encode_message(LeadOff(5, 0b10), 5)       # after the block holding sample 5
    events = drv.feed(wire)
    out = _recorded(events, events[0], sum(sizes))
    assert (out.signal[0] * 1000).round().tolist() == list(range(sum(sizes)))
    assert out.meta["lead_off"] == {"I": [[5, 13]], "V1": [[5, 13]]}       # LA feeds I, V1


def test_a_repeated_answer_cannot_move_the_lead_off_state_back_in_time() -> None:
    # GET_INFO's answer while streaming (LEAD_OFF at sample 40) repeated after the state has
    # changed at sample 60: the repeat is stale and must not undo the change
    drv = BridgeDriver()
    wire = (encode_message(INFO, 0) + encode_message(LeadOff(40, 0b10), 1)
            + encode_message(LeadOff(60, 0), 2) + encode_message(LeadOff(40, 0b10), 3)
            + encode_message(LeadOff(80, 0b1), 4))
    events = drv.feed(wire)
    assert [e.sample for e in events if isinstance(e, LeadOffChange)] == [40, 60, 80]
    assert drv.stats()["stale_stream_messages"] == 1


def test_longer_device_info_and_samples_payloads_are_read_as_far_as_v1_defines_them() -> None:
    # docs/protocol.md 4.3, the one payload-length rule: a later revision may append fields
    from detak.firmware_bridge.framing import encode_frame
    from detak.firmware_bridge.messages import packet_bytes

    block = _block(0)
    drv = BridgeDriver()
    events = drv.feed(encode_frame(packet_bytes(INFO, 0) + b"\x05\x01\x02")
                      + encode_frame(packet_bytes(block, 1) + b"\xff" * 7))
    assert [type(e) for e in events] == [StreamInfo, SampleBlock]
    assert events[0].channels == INFO.channels
    assert np.array_equal(events[1].counts, block.counts)
    assert drv.stats()["protocol_errors"] == 0
