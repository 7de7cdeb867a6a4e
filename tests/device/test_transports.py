"""Tests for detak.device.transports: serial (pyserial URLs and ptys), TCP, capture replay."""

from __future__ import annotations

import asyncio
import os
import socket
import time
import tty
from pathlib import Path

import pytest

from detak.device.transports import FileTransport, SerialTransport, SocketTransport, TransportClosed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- bad input first ---------------------------------------------------------------------------


def test_opening_a_missing_serial_port_names_it() -> None:
    t = SerialTransport("/dev/does-not-exist-42")
    with pytest.raises(TransportClosed, match="cannot open serial port /dev/does-not-exist-42"):
        asyncio.run(t.open())


def test_connection_refused_names_host_and_port() -> None:
    port = _free_port()
    with pytest.raises(TransportClosed, match=f"cannot connect to 127.0.0.1:{port}"):
        asyncio.run(SocketTransport("127.0.0.1", port).open())


def test_missing_capture_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="capture file .*nope.bin does not exist"):
        asyncio.run(FileTransport(tmp_path / "nope.bin").open())


def test_a_capture_cannot_be_sent_to(tmp_path: Path) -> None:
    (tmp_path / "c.bin").write_bytes(b"x")

    async def go() -> None:
        t = FileTransport(tmp_path / "c.bin")
        await t.open()
        await t.send(b"\x00")

    with pytest.raises(TransportClosed, match="read-only"):
        asyncio.run(go())


# --- behaviour ---------------------------------------------------------------------------------


def test_serial_transport_sees_a_vanishing_pty_as_a_closed_link() -> None:
    master, slave = os.openpty()
    tty.setraw(slave)

    async def go() -> list:
        t = SerialTransport(os.ttyname(slave))
        await t.open()
        os.write(master, b"\x01\x02\x03")
        got = [await t.receive()]
        os.close(master)
        os.close(slave)
        with pytest.raises(TransportClosed, match="lost"):
            await t.receive()
        await t.release()
        return got

    assert asyncio.run(go()) == [(None, b"\x01\x02\x03")]


def test_socket_transport_round_trip_and_peer_close() -> None:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]

    async def go() -> bytes:
        t = SocketTransport("127.0.0.1", port)
        await t.open()
        conn, _ = await asyncio.to_thread(srv.accept)
        await t.send(b"ping")
        echoed = await asyncio.to_thread(conn.recv, 4)
        conn.sendall(echoed[::-1])
        _, data = await t.receive()
        conn.close()
        with pytest.raises(TransportClosed, match="peer closed"):
            await t.receive()
        return data

    try:
        assert asyncio.run(go()) == b"gnip"
    finally:
        srv.close()


def test_capture_is_replayed_in_chunks_then_eof(tmp_path: Path) -> None:
    data = bytes(range(256)) * 40
    (tmp_path / "c.bin").write_bytes(data)

    async def go() -> tuple[bytes, bool, float]:
        t = FileTransport(tmp_path / "c.bin", rate=40000, chunk=1024)
        await t.open()
        t0, buf = time.monotonic(), bytearray()
        try:
            while True:
                buf += (await t.receive())[1]
        except TransportClosed as exc:
            return bytes(buf), exc.eof, time.monotonic() - t0

    got, eof, took = asyncio.run(go())
    assert got == data and eof
    assert took >= 0.2                       # 10240 bytes at 40 kB/s: paced, not instant


def test_received_bytes_are_copied_to_the_capture(tmp_path: Path) -> None:
    async def go() -> None:
        t = SerialTransport("loop://")
        with open(tmp_path / "cap.bin", "wb") as fh:
            t.capture = fh
            await t.open()
            await t.send(b"abc")
            await t.receive()
            await t.release()

    asyncio.run(go())
    assert (tmp_path / "cap.bin").read_bytes() == b"abc"
