"""Transports: how bytes get to and from a device. One small async class per link type.

Interface (`Transport`): ``await open()`` (again after a loss to reconnect), ``await
receive() -> (channel, bytes)`` (waits for the next bytes; `TransportClosed` when the link is
gone, with ``eof=True`` when a replayed capture simply ended), ``await send(bytes, channel)``,
``await close()`` (the link; `open` may follow) and ``await release()`` (everything, for good).
``channel`` is None for byte streams and a GATT characteristic UUID for BLE links that carry
several. ``interactive`` is False when nothing can be sent (a capture file).

Implemented here: `SerialTransport` (pyserial ``serial_for_url``, so pyserial's own URLs such as
``loop://`` work too), `SocketTransport` (TCP) and `FileTransport` (replay a capture). BLE lives
in `detak.device.ble`, the emulator in `detak.device.emu`.

>>> import asyncio
>>> async def demo():
...     t = SerialTransport("loop://")
...     await t.open()
...     await t.send(b"\\x01\\x02")
...     got = await t.receive()
...     await t.release()
...     return got
>>> asyncio.run(demo())
(None, b'\\x01\\x02')
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

READ_TIMEOUT_S = 0.05


class TransportClosed(ConnectionError):
    """The link is gone (port vanished, peer closed). ``eof``: a capture ended normally."""

    def __init__(self, message: str, eof: bool = False) -> None:
        super().__init__(message)
        self.eof = eof


class Transport(ABC):
    """Base class of transports (see the module docstring)."""

    interactive: bool = True
    #: replayed captures can pace themselves; live links cannot be reopened if False
    reconnectable: bool = True

    def __init__(self, url: str = "") -> None:
        self.url = url
        self.capture: Any = None         # an open binary file: every received byte is copied

    @abstractmethod
    async def open(self) -> None: ...

    @abstractmethod
    async def receive(self) -> tuple[str | None, bytes]: ...

    @abstractmethod
    async def send(self, data: bytes, channel: str | None = None) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    async def release(self) -> None:
        await self.close()

    def _captured(self, data: bytes) -> bytes:
        if self.capture is not None and data:
            self.capture.write(data)
        return data

    def describe(self) -> str:
        return self.url


class SerialTransport(Transport):
    """A serial port (``/dev/ttyUSB0``, ``/dev/pts/N``, ``COM3``, or a pyserial URL).

    On POSIX ports the event loop watches the file descriptor (no thread per read); pyserial
    URL handlers without one (``loop://``) and Windows ports are read in a worker thread with a
    short timeout. A port that disappears (USB unplugged, pty master closed) raises
    `TransportClosed`.
    """

    def __init__(self, port: str, baudrate: int = 115200, url: str = "", **kwargs: Any) -> None:
        super().__init__(url or f"serial://{port}")
        self.port = port
        self.baudrate = int(baudrate)
        self.kwargs = kwargs
        self._ser: Any = None
        self._fd: int | None = None
        self._rx: asyncio.Queue[Any] | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        import serial

        try:
            self._ser = await asyncio.to_thread(
                serial.serial_for_url, self.port, baudrate=self.baudrate,
                timeout=READ_TIMEOUT_S, write_timeout=2.0, **self.kwargs)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise TransportClosed(f"cannot open serial port {self.port}: {exc}") from exc
        self._rx = asyncio.Queue()
        fd = getattr(self._ser, "fd", None)
        if os.name == "posix" and isinstance(fd, int):
            os.set_blocking(fd, False)
            asyncio.get_running_loop().add_reader(fd, self._on_readable, fd)
            self._fd = fd

    def _on_readable(self, fd: int) -> None:
        assert self._rx is not None
        try:
            data = os.read(fd, 65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:                 # EIO: the device (or pty master) is gone
            self._stop_watching()
            self._rx.put_nowait(exc)
            return
        if not data:
            self._stop_watching()
            self._rx.put_nowait(EOFError("end of file"))
        else:
            self._rx.put_nowait(data)

    def _stop_watching(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._fd)
            self._fd = None

    def _read(self) -> bytes:
        ser = self._ser
        if ser is None:
            raise TransportClosed(f"serial port {self.port} is closed")
        return ser.read(max(1, ser.in_waiting))

    async def receive(self) -> tuple[str | None, bytes]:
        import serial

        if self._rx is None:
            raise TransportClosed(f"serial port {self.port} is closed")
        if self._fd is not None or not self._rx.empty():
            item = await self._rx.get()
            if isinstance(item, BaseException):
                await self.close()
                raise TransportClosed(f"serial port {self.port} lost: {item}")
            return None, self._captured(item)
        while True:
            try:
                data = await asyncio.to_thread(self._read)
            except (serial.SerialException, OSError, TypeError, AttributeError) as exc:
                # TypeError/AttributeError: pyserial's fd vanished under a concurrent close
                await self.close()
                raise TransportClosed(f"serial port {self.port} lost: {exc}") from exc
            if data:
                return None, self._captured(data)

    async def send(self, data: bytes, channel: str | None = None) -> None:
        import serial

        if self._ser is None:
            raise TransportClosed(f"serial port {self.port} is closed")
        try:
            async with self._lock:
                await asyncio.to_thread(self._ser.write, data)
        except (serial.SerialException, OSError) as exc:
            raise TransportClosed(f"serial port {self.port}: write failed: {exc}") from exc

    async def close(self) -> None:
        self._stop_watching()
        if self._rx is not None:
            self._rx.put_nowait(ConnectionAbortedError("closed"))   # wakes a waiting receive
        ser, self._ser = self._ser, None
        if ser is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(ser.close)


class SocketTransport(Transport):
    """A raw TCP connection (``socket://host:port``): ser2net, a Wi-Fi bridge, the emulator."""

    def __init__(self, host: str, port: int, url: str = "", connect_timeout: float = 5.0):
        super().__init__(url or f"socket://{host}:{port}")
        self.host, self.port = host, int(port)
        self.connect_timeout = connect_timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), self.connect_timeout)
        except (OSError, TimeoutError) as exc:
            raise TransportClosed(f"cannot connect to {self.host}:{self.port}: {exc}") from exc

    async def receive(self) -> tuple[str | None, bytes]:
        if self._reader is None:
            raise TransportClosed(f"socket {self.host}:{self.port} is closed")
        try:
            data = await self._reader.read(65536)
        except OSError as exc:
            await self.close()
            raise TransportClosed(f"socket {self.host}:{self.port} lost: {exc}") from exc
        if not data:
            await self.close()
            raise TransportClosed(f"socket {self.host}:{self.port}: peer closed the connection")
        return None, self._captured(data)

    async def send(self, data: bytes, channel: str | None = None) -> None:
        if self._writer is None:
            raise TransportClosed(f"socket {self.host}:{self.port} is closed")
        try:
            self._writer.write(data)
            await self._writer.drain()
        except OSError as exc:
            raise TransportClosed(f"socket {self.host}:{self.port}: write failed: {exc}") from exc

    async def close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


class FileTransport(Transport):
    """Replay a capture of received bytes (``file://PATH``); nothing can be sent.

    ``rate`` paces the replay in bytes per second (None: as fast as read). The end of the file
    raises `TransportClosed` with ``eof=True``.
    """

    interactive = False
    reconnectable = False

    def __init__(self, path: str | Path, rate: float | None = None, chunk: int = 4096,
                 url: str = "") -> None:
        super().__init__(url or f"file://{path}")
        self.path = Path(path).expanduser()
        self.rate = rate
        self.chunk = int(chunk)
        self._fh: Any = None
        self._t0 = 0.0
        self._sent = 0

    async def open(self) -> None:
        if not self.path.is_file():
            raise FileNotFoundError(f"capture file {self.path} does not exist")
        self._fh = open(self.path, "rb")  # noqa: SIM115 - closed in close()
        self._t0, self._sent = time.monotonic(), 0

    async def receive(self) -> tuple[str | None, bytes]:
        if self._fh is None:
            raise TransportClosed(f"capture {self.path} is closed")
        if self.rate:
            wait = self._t0 + self._sent / self.rate - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        data = self._fh.read(self.chunk)
        if not data:
            raise TransportClosed(f"end of capture {self.path}", eof=True)
        self._sent += len(data)
        await asyncio.sleep(0)
        return None, data

    async def send(self, data: bytes, channel: str | None = None) -> None:
        raise TransportClosed(f"capture {self.path} is read-only: cannot send commands")

    async def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
