"""Run a `VirtualDevice` on a real link: a pseudo-terminal pair or a TCP socket.

`PtyLink` opens ``os.openpty()``, sets the slave to raw mode and serves the device on the master
end from a background thread; the host opens the slave path (``link.path``, e.g.
``/dev/pts/7``) with pyserial exactly as it would open ``/dev/ttyACM0``. `TcpLink` listens on
127.0.0.1 for ``socket://`` hosts. When the device's link goes down (``disconnect=`` fault) the
runner waits until the host has read what was already sent, closes the link (the host sees
the port vanish), and opens a fresh one when the device comes back; `wait_up` gives the new
path or address.

From a shell (a device for ``detak record serial:///dev/pts/N`` or ``socket://...``)::

    python -m detak.firmware_bridge.serve "emu://ptbxl/1?loop=1" [--tcp PORT] [--log FILE]

>>> from detak.firmware_bridge.emulator import VirtualDevice
>>> link = PtyLink(VirtualDevice.from_url("emu://ludb/1"))
>>> link.start().startswith("/dev/")
True
>>> link.stop()
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import select
import socket
import struct
import sys
import termios
import threading
import time
import tty
from collections.abc import Callable, Sequence

from detak.firmware_bridge.emulator import VirtualDevice

POLL_S = 0.02
DRAIN_TIMEOUT_S = 3.0
DRAIN_QUIET_S = 0.2


class _Runner:
    """Shared thread loop: read host bytes, poll the device, write, handle link loss."""

    def __init__(self, device: VirtualDevice, clock: Callable[[], float] = time.monotonic):
        self.device = device
        self.clock = clock
        self._stop = threading.Event()
        self._up = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.links_opened = 0

    # subclasses: _open_link(), _close_link(), _fd() -> int | None, _read() -> bytes | None,
    # _write(bytes), _drain()

    def start(self) -> str:
        self._open_link()
        self._thread = threading.Thread(target=self._run, name=type(self).__name__, daemon=True)
        self._thread.start()
        return self.address

    @property
    def address(self) -> str:
        raise NotImplementedError

    def wait_up(self, timeout: float) -> str | None:
        """The link's address once it is up (None if it is not up within ``timeout`` s)."""
        if self.error is not None:
            raise RuntimeError(f"virtual device stopped: {self.error}") from self.error
        return self.address if self._up.wait(timeout) else None

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._close_link()

    def _run(self) -> None:
        dev = self.device
        try:
            while not self._stop.is_set():
                now = self.clock()
                due = dev.next_due(now)
                timeout = POLL_S if due is None else min(POLL_S, max(0.0, due - now))
                fd = self._fd()
                if fd is None:
                    time.sleep(timeout)
                else:
                    ready, _, _ = select.select([fd], [], [], timeout)
                    if ready:
                        data = self._read()
                        if data:
                            dev.receive(data, self.clock())
                out = dev.poll(self.clock())
                if out and self._up.is_set():
                    self._write(out)
                if self._up.is_set() and not dev.link_up:
                    self._drain()
                    self._close_link()
                elif not self._up.is_set() and dev.link_up:
                    self._open_link()
        except BaseException as exc:  # noqa: BLE001 - reported through wait_up / error
            self.error = exc
        finally:
            self._close_link()

    def _wait_writable(self, fd: int) -> None:
        while not self._stop.is_set():
            _, ok, _ = select.select([], [fd], [], 0.1)
            if ok:
                return


class PtyLink(_Runner):
    """Serve a device on a pseudo-terminal; the host opens `path` like a serial port."""

    def __init__(self, device: VirtualDevice, clock: Callable[[], float] = time.monotonic):
        super().__init__(device, clock)
        self._master: int | None = None
        self._slave: int | None = None
        self.path = ""

    @property
    def address(self) -> str:
        return self.path

    def _open_link(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self.path = os.ttyname(slave)
        self.links_opened += 1
        self._up.set()

    def _close_link(self) -> None:
        self._up.clear()
        for fd in (self._master, self._slave):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = None

    def _fd(self) -> int | None:
        return self._master

    def _read(self) -> bytes | None:
        assert self._master is not None
        try:
            return os.read(self._master, 65536)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:               # EIO: nobody holds the slave (we do, so rare)
            return None

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view and self._master is not None and not self._stop.is_set():
            try:
                n = os.write(self._master, view)
                view = view[n:]
            except BlockingIOError:
                self._wait_writable(self._master)

    def _drain(self) -> None:
        """Wait until the host has read what is queued on the slave side (bounded).

        FIONREAD sees only the line discipline's buffer (4 kB); more may wait in the pty's
        flip buffer and moves in as soon as the host reads. So the queue must stay empty for
        `DRAIN_QUIET_S` before the link is cut.
        """
        end = time.monotonic() + DRAIN_TIMEOUT_S
        quiet_since: float | None = None
        buf = bytearray(4)
        while self._slave is not None and time.monotonic() < end and not self._stop.is_set():
            try:
                fcntl.ioctl(self._slave, termios.FIONREAD, buf)
            except OSError:
                return
            now = time.monotonic()
            if struct.unpack("i", bytes(buf))[0] == 0:
                quiet_since = now if quiet_since is None else quiet_since
                if now - quiet_since >= DRAIN_QUIET_S:
                    return
            else:
                quiet_since = None
            time.sleep(0.005)


class TcpLink(_Runner):
    """Serve a device on ``127.0.0.1:port`` (``port=0``: any free port; see `address`)."""

    def __init__(self, device: VirtualDevice, port: int = 0, host: str = "127.0.0.1",
                 clock: Callable[[], float] = time.monotonic):
        super().__init__(device, clock)
        self.host, self.port = host, port
        self._listener: socket.socket | None = None
        self._client: socket.socket | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def _open_link(self) -> None:
        srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind((self.host, self.port))
        srv.listen(1)
        srv.setblocking(False)
        self.port = srv.getsockname()[1]
        self._listener = srv
        self.links_opened += 1
        self._up.set()

    def _close_link(self) -> None:
        self._up.clear()
        for s in (self._client, self._listener):
            if s is not None:
                with contextlib.suppress(OSError):
                    s.close()
        self._client = self._listener = None

    def _fd(self) -> int | None:
        if self._client is not None:
            return self._client.fileno()
        return self._listener.fileno() if self._listener is not None else None

    def _read(self) -> bytes | None:
        if self._client is None:
            assert self._listener is not None
            try:
                conn, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return None
            conn.setblocking(False)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._client = conn
            return None
        try:
            data = self._client.recv(65536)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            data = b""
        if not data:                      # the host closed its end
            with contextlib.suppress(OSError):
                self._client.close()
            self._client = None
        return data

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view and self._client is not None and not self._stop.is_set():
            try:
                n = self._client.send(view)
                view = view[n:]
            except BlockingIOError:
                self._wait_writable(self._client.fileno())
            except OSError:               # host went away; what it did not read is lost
                with contextlib.suppress(OSError):
                    self._client.close()
                self._client = None

    def _drain(self) -> None:
        if self._client is not None:
            with contextlib.suppress(OSError):
                self._client.shutdown(socket.SHUT_WR)   # graceful: queued bytes still arrive


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m detak.firmware_bridge.serve URL``: serve until Ctrl-C (or SIGTERM)."""
    import signal

    p = argparse.ArgumentParser(prog="python -m detak.firmware_bridge.serve",
                                description="Serve a virtual bridge device on a pty or TCP.")
    p.add_argument("url", help="emu:// URL (see detak.firmware_bridge.emu_config)")
    p.add_argument("--tcp", type=int, default=None, metavar="PORT",
                   help="listen on 127.0.0.1:PORT instead of a pseudo-terminal")
    p.add_argument("--log", default=None, help="write the fault log (JSON) here on exit")
    args = p.parse_args(argv)
    device = VirtualDevice.from_url(args.url)
    link: _Runner = TcpLink(device, port=args.tcp) if args.tcp is not None else PtyLink(device)
    where = link.start()
    print(("tcp " if args.tcp is not None else "pty ") + where, flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        while not done.wait(0.2):
            if link.error is not None:
                print(f"virtual device failed: {link.error}", file=sys.stderr)
                return 1
    except KeyboardInterrupt:
        pass
    finally:
        link.stop()
        if args.log:
            with open(args.log, "w") as fh:
                json.dump(device.log, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
