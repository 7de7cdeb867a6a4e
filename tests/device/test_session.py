"""Tests for detak.device.session: the reader task, reconnection, capture replay, sync wrapper."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from detak.data.ludb import load_ludb
from detak.data.ptbxl import open_ptbxl
from detak.device.events import LinkLost, LinkRestored, SampleBlock
from detak.device.session import BlockingDevice, Device, open_device
from detak.device.transports import TransportClosed
from detak.firmware_bridge.emulator import VirtualDevice
from detak.firmware_bridge.serve import TcpLink


async def _collect(dev: Device, until: int, timeout: float = 20.0) -> list:
    events, loop = [], asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        e = await dev.next_event(timeout=0.5)
        if e is None:
            if dev.ended is not None:
                break
            continue
        events.append(e)
        if isinstance(e, SampleBlock) and e.first_sample + e.n_samples >= until:
            break
    return events


def _counts(events: list, n_ch: int, n: int) -> np.ndarray:
    out = np.full((n_ch, n), np.iinfo(np.int64).min)
    for e in events:
        if isinstance(e, SampleBlock):
            out[:, e.first_sample:e.first_sample + e.n_samples] = e.counts
    return out


# --- bad input first ---------------------------------------------------------------------------


def test_connecting_to_a_missing_port_fails_with_its_name() -> None:
    async def go() -> None:
        async with open_device("serial:///dev/no-such-tty-7"):
            pass

    with pytest.raises(TransportClosed, match="/dev/no-such-tty-7"):
        asyncio.run(go())


def test_a_different_device_after_reconnecting_ends_the_stream() -> None:
    first = TcpLink(VirtualDevice.from_url("emu://ptbxl/1?speed=5"))
    port = int(first.start().rsplit(":", 1)[1])

    async def go() -> str:
        dev = open_device(f"socket://127.0.0.1:{port}", backoff=(0.05, 0.2))
        await dev.connect()
        await dev.start()
        await _collect(dev, until=20)
        first.stop()                                   # the strap is swapped for another one
        other = TcpLink(VirtualDevice.from_url("emu://ludb/1?speed=5"), port=port)
        other.start()
        try:
            await _collect(dev, until=10**9, timeout=10)
        finally:
            await dev.close()
            other.stop()
        return dev.ended or ""

    assert "a different device answered after reconnecting: detak-emu:ludb-1" in asyncio.run(go())


def test_giving_up_reconnecting_ends_the_stream_with_the_reason() -> None:
    link = TcpLink(VirtualDevice.from_url("emu://ptbxl/1?speed=5"))
    port = int(link.start().rsplit(":", 1)[1])

    async def go() -> str:
        dev = open_device(f"socket://127.0.0.1:{port}", backoff=(0.05, 0.1),
                          reconnect_timeout=0.5)
        await dev.connect()
        await dev.start()
        link.stop()
        events = await _collect(dev, until=10**9, timeout=10)
        await dev.close()
        assert any(isinstance(e, LinkLost) for e in events)
        return dev.ended or ""

    assert "could not reconnect within 0.5 s" in asyncio.run(go())


# --- behaviour ---------------------------------------------------------------------------------


def test_reconnects_over_a_pty_and_loses_exactly_what_the_emulator_logged() -> None:
    async def go():
        dev = open_device("emu://ptbxl/1?speed=10&disconnect=3:1", backoff=(0.02, 0.2))
        await dev.connect()
        await dev.start()
        events = await _collect(dev, until=1000)
        emulator = dev.transport.device
        await dev.close()
        return events, emulator, dev.reconnects

    events, emulator, reconnects = asyncio.run(go())
    kinds = [type(e) for e in events]
    assert kinds.index(LinkLost) < kinds.index(LinkRestored) and reconnects == 1
    got = _counts(events, 12, 1000)
    missing = (got == np.iinfo(np.int64).min).all(axis=0)
    lost = np.zeros(1000, bool)
    for a, b in emulator.lost_spans():
        lost[a:b] = True
    assert np.array_equal(missing, lost) and lost[300]
    src = np.rint(open_ptbxl().record(1).signal.astype(np.float64) * 1000)
    assert np.array_equal(got[:, ~missing], src[:, ~missing])


def test_a_capture_replays_to_the_same_samples(tmp_path: Path) -> None:
    cap = tmp_path / "raw.bin"

    async def live() -> list:
        dev = open_device("emu://ludb/1?speed=0&lsb_nv=500")
        with open(cap, "wb") as fh:
            dev.transport.capture = fh
            await dev.connect()
            await dev.start()
            events = await _collect(dev, until=5000)
            await dev.stop()
            await dev.close()
        return events

    async def replay() -> tuple[list, str]:
        dev = open_device(f"file://{cap}")
        await dev.connect()
        info = await dev.start()
        assert info.lsb_nv == 500.0 and not dev.interactive
        events = await _collect(dev, until=10**9)
        await dev.close()
        return events, dev.ended or ""

    original = _counts(asyncio.run(live()), 12, 5000)
    replayed, why = asyncio.run(replay())
    assert np.array_equal(_counts(replayed, 12, 5000), original)
    assert "end of capture" in why
    expected = np.rint(load_ludb(1).recording.signal.astype(np.float64) * 2000)
    assert np.abs(original - expected).max() <= 1


def test_blocking_device_streams_without_asyncio() -> None:
    src = open_ptbxl().record(1)
    with BlockingDevice("emu://ptbxl/1?speed=0") as dev:
        info = dev.start()
        events: list = []
        while sum(isinstance(e, SampleBlock) for e in events) < 500:
            more = dev.read(timeout=5)
            assert more, "no events within 5 s"
            events += more
        dev.stop()
    assert info.channels == src.leads
    got = _counts(events, 12, 1000)
    assert np.array_equal(got, np.rint(src.signal.astype(np.float64) * 1000))


def test_a_device_that_reconnects_but_never_restarts_ends_the_stream() -> None:
    import contextlib
    import socket
    import threading

    link = TcpLink(VirtualDevice.from_url("emu://ptbxl/1?speed=5"))
    port = int(link.start().rsplit(":", 1)[1])
    stop = threading.Event()

    def mute_server() -> None:                       # accepts, reads, never answers
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", port))
        srv.listen(8)
        srv.settimeout(0.1)
        conns = []
        while not stop.is_set():
            with contextlib.suppress(OSError):          # accept timed out
                conns.append(srv.accept()[0])
        for c in conns:
            c.close()
        srv.close()

    async def go() -> str:
        dev = open_device(f"socket://127.0.0.1:{port}", backoff=(0.02, 0.05))
        dev.driver.timeout, dev.driver.retries = 0.05, 0
        await dev.connect()
        await dev.start()
        link.stop()
        thread = threading.Thread(target=mute_server, daemon=True)
        thread.start()
        try:
            await _collect(dev, until=10**9, timeout=15)
        finally:
            await dev.close()
            stop.set()
            thread.join()
        return dev.ended or ""

    assert "did not restart its stream 5 times" in asyncio.run(go())
