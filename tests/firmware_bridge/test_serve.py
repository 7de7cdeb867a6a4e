"""Tests for detak.firmware_bridge.serve: the pty and TCP runners and the command line."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import serial

from detak.firmware_bridge.emulator import VirtualDevice
from detak.firmware_bridge.framing import FrameDecoder
from detak.firmware_bridge.messages import (
    DeviceInfo,
    GetInfo,
    Start,
    decode_packet,
    encode_message,
)
from detak.firmware_bridge.serve import PtyLink, TcpLink

ALL_BYTES = bytes(range(256)) * 4


class _EchoStub:
    """The smallest device a runner can serve: records what it gets, sends ALL_BYTES once."""

    link_up = True

    def __init__(self) -> None:
        self.got = bytearray()
        self.sent = False

    def receive(self, data: bytes, now: float) -> None:
        self.got += data

    def next_due(self, now: float) -> None:
        return None

    def poll(self, now: float) -> bytes:
        if self.sent:
            return b""
        self.sent = True
        return ALL_BYTES


def _read(port: serial.Serial, n: int, timeout: float = 5.0) -> bytes:
    buf, end = bytearray(), time.monotonic() + timeout
    while len(buf) < n and time.monotonic() < end:
        buf += port.read(n - len(buf))
    return bytes(buf)


def test_the_pty_is_raw_every_byte_value_passes_both_ways() -> None:
    stub = _EchoStub()
    link = PtyLink(stub)  # type: ignore[arg-type]
    path = link.start()
    try:
        with serial.serial_for_url(path, timeout=0.1) as port:
            # 0x0d/0x0a (CR/LF mapping), 0x11/0x13 (XON/XOFF), 0x03 (^C), 0x7f: all untouched
            assert _read(port, len(ALL_BYTES)) == ALL_BYTES
            port.write(ALL_BYTES)
            end = time.monotonic() + 5
            while len(stub.got) < len(ALL_BYTES) and time.monotonic() < end:
                time.sleep(0.01)
        assert bytes(stub.got) == ALL_BYTES
    finally:
        link.stop()
    assert link.error is None


def test_tcp_link_answers_get_info() -> None:
    dev = VirtualDevice.from_url("emu://ludb/1")
    link = TcpLink(dev)
    host, port = link.start().rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall(encode_message(GetInfo(), 0))
            dec, msgs, end = FrameDecoder(), [], time.monotonic() + 5
            while len(msgs) < 2 and time.monotonic() < end:
                msgs += [decode_packet(p)[1] for p in dec.feed(s.recv(4096))]
        assert isinstance(msgs[0], DeviceInfo) and msgs[0].fs == 500.0
    finally:
        link.stop()


def test_serve_command_prints_the_pty_and_writes_the_fault_log(tmp_path: Path) -> None:
    log = tmp_path / "faults.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "detak.firmware_bridge.serve", "emu://ptbxl/1?speed=0&drop=0.1",
         "--log", str(log)], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().split()
        assert line[0] == "pty" and os.path.exists(line[1])
        with serial.serial_for_url(line[1], timeout=0.1) as port:
            port.write(encode_message(Start(), 0))
            _read(port, 20000, timeout=3)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    faults = json.loads(log.read_text())
    assert faults and all(f["kind"] == "drop" for f in faults)
