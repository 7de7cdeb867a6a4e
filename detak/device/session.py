"""`Device`: a transport plus a driver, read by a background task; reconnects on link loss.

Async use::

    async with open_device("emu://ptbxl/1?speed=20") as dev:
        info = await dev.start()
        async for event in dev.events():      # SampleBlock, LeadOffChange, LinkLost, ...
            ...

The reader task feeds every received chunk to the driver and queues the resulting events. When
the transport fails (and it is a live link), the session emits `LinkLost`, reopens the
transport with exponential backoff (``backoff`` = first and largest delay, for up to
``reconnect_timeout`` s), lets the driver ``resume`` the stream and emits `LinkRestored`. A
capture that ends, or a link that cannot be reopened, ends `events()`.

`BlockingDevice` wraps the same thing for scripts without asyncio (an event loop in a thread).

>>> with BlockingDevice("emu://ludb/1?speed=0&block=50") as dev:
...     info = dev.start()
...     blocks = [e for e in dev.read(timeout=2.0) if type(e).__name__ == "SampleBlock"]
...     dev.stop()
>>> info.fs, info.channels[:2], blocks[0].counts.shape
(500.0, ('I', 'II'), (12, 50))
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from detak.device.drivers import DeviceCommandError, Driver
from detak.device.events import Event, LinkLost, LinkRestored, StreamInfo
from detak.device.transports import Transport, TransportClosed

_END = object()
MAX_FAILED_RESUMES = 5


class Device:
    """An opened (or openable) device; see the module docstring."""

    def __init__(self, transport: Transport, driver: Driver, *, reconnect: bool = True,
                 backoff: tuple[float, float] = (0.1, 2.0),
                 reconnect_timeout: float = 30.0) -> None:
        self.transport = transport
        self.driver = driver
        self.reconnect = reconnect
        self.backoff = backoff
        self.reconnect_timeout = reconnect_timeout
        self.info: StreamInfo | None = None
        self.streaming = False
        self.ended: str | None = None         # why events() ended
        self.reconnects = 0
        self._queue: asyncio.Queue[Any] | None = None
        self._waiters: list[tuple[Callable[[Event], bool], asyncio.Future[Event]]] = []
        self._reader: asyncio.Task[None] | None = None
        self._resume: asyncio.Task[None] | None = None
        self._failed_resumes = 0
        self._closing = False

    @property
    def interactive(self) -> bool:
        return self.transport.interactive

    def __repr__(self) -> str:
        return f"Device({self.transport.describe()!r}, driver={self.driver.name!r})"

    # --- lifecycle ---------------------------------------------------------------------------

    async def connect(self) -> None:
        """Open the transport and start reading."""
        self._queue = asyncio.Queue()
        await self.transport.open()
        self._reader = asyncio.create_task(self._read_loop(), name="detak-device-reader")

    async def start(self) -> StreamInfo:
        """Bring the device to streaming (the driver's handshake); its `StreamInfo`."""
        if self._reader is None:
            await self.connect()
        self.info = await self.driver.start(self)
        self.streaming = True
        return self.info

    async def stop(self) -> None:
        """Ask the device to stop streaming (errors after a lost link are ignored)."""
        was = self.streaming
        self.streaming = False
        if was and self._reader is not None and not self._reader.done():
            with contextlib.suppress(DeviceCommandError, TransportClosed):
                await self.driver.stop(self)

    async def set_cal_pulse(self, on: bool) -> None:
        await self.driver.set_cal_pulse(self, on)

    async def close(self) -> None:
        """Stop reading and release the transport (the emulator too, for emu://)."""
        self._closing = True
        for task in (self._resume, self._reader):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self._queue is not None and self.ended is None:
            self._end("closed")
        await self.transport.release()

    async def drop_link(self) -> None:
        """Close the transport as if the link failed (used when a live stream goes silent)."""
        await self.transport.close()

    async def __aenter__(self) -> Device:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
        await self.close()

    # --- events ------------------------------------------------------------------------------

    async def next_event(self, timeout: float | None = None) -> Event | None:
        """The next event, or None on timeout or when the stream has ended."""
        assert self._queue is not None, "connect() first"
        try:
            item = self._queue.get_nowait()
        except asyncio.QueueEmpty:
            try:
                item = await asyncio.wait_for(self._queue.get(), timeout)
            except TimeoutError:
                return None
        if item is _END:
            self._queue.put_nowait(_END)
            return None
        return item

    async def events(self) -> AsyncIterator[Event]:
        """All events until the stream ends (capture over, link not recoverable)."""
        assert self._queue is not None, "connect() first"
        while True:
            item = await self._queue.get()
            if item is _END:
                self._queue.put_nowait(_END)
                return
            yield item

    # --- Link (what drivers use) -------------------------------------------------------------

    async def send(self, data: bytes, channel: str | None = None) -> None:
        await self.transport.send(data, channel)

    def expect(self, predicate: Callable[[Event], bool]) -> asyncio.Future[Event]:
        fut: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        self._waiters.append((predicate, fut))
        return fut

    # --- internals ---------------------------------------------------------------------------

    def _dispatch(self, event: Event) -> None:
        if self._waiters:
            keep = []
            for pred, fut in self._waiters:
                if fut.done():
                    continue
                if pred(event):
                    fut.set_result(event)
                else:
                    keep.append((pred, fut))
            self._waiters = keep
        assert self._queue is not None
        self._queue.put_nowait(event)

    def _end(self, why: str) -> None:
        self.ended = why
        assert self._queue is not None
        self._queue.put_nowait(_END)

    async def _read_loop(self) -> None:
        tr, drv = self.transport, self.driver
        while not self._closing:
            try:
                channel, data = await tr.receive()
            except TransportClosed as exc:
                if self._closing:
                    return
                if exc.eof or not self.reconnect or not tr.reconnectable:
                    self._end(str(exc))
                    return
                self._dispatch(LinkLost(time.monotonic(), str(exc)))
                drv.link_lost()
                attempts = await self._reopen()
                if attempts is None:
                    self._end(f"{exc}; could not reconnect within {self.reconnect_timeout:g} s")
                    return
                if self.streaming:
                    self._resume = asyncio.create_task(self._resume_stream(attempts))
                continue
            except Exception as exc:  # noqa: BLE001 - a transport bug must not hang readers
                self._end(f"transport error: {type(exc).__name__}: {exc}")
                return
            now = time.monotonic()
            for event in drv.feed(data, channel, now):
                self._dispatch(event)

    async def _reopen(self) -> int | None:
        delay, top = self.backoff
        deadline = time.monotonic() + self.reconnect_timeout
        attempts = 0
        while not self._closing and time.monotonic() < deadline:
            attempts += 1
            with contextlib.suppress(Exception):
                await self.transport.close()
            try:
                await self.transport.open()
                return attempts
            except (TransportClosed, OSError):
                await asyncio.sleep(delay)
                delay = min(delay * 2, top)
        return None

    async def _resume_stream(self, attempts: int) -> None:
        try:
            info = await self.driver.resume(self)
        except (DeviceCommandError, TransportClosed) as exc:
            self._failed_resumes += 1
            if self._failed_resumes >= MAX_FAILED_RESUMES:
                self._end(f"the device came back but did not restart its stream "
                          f"{MAX_FAILED_RESUMES} times: {exc}")
                self._closing = True
            with contextlib.suppress(Exception):
                await self.transport.close()       # the reader will try again
            return
        self._failed_resumes = 0
        old = self.info
        if old is not None and (info.serial, info.channels, info.fs) != (old.serial,
                                                                         old.channels, old.fs):
            self._end(f"a different device answered after reconnecting: {info.device_id} "
                      f"{info.fs:g} Hz {list(info.channels)} (was {old.device_id})")
            return
        self.reconnects += 1
        self._dispatch(LinkRestored(time.monotonic(), attempts))


def open_device(url: str, **kwargs: Any) -> Device:
    """A `Device` for ``url`` (not connected yet: ``async with open_device(url) as dev``).

    URLs: see `detak.device.urls.parse_device_url`.
    """
    from detak.device.urls import make_transport_and_driver

    transport, driver = make_transport_and_driver(url)
    return Device(transport, driver, **kwargs)


class BlockingDevice:
    """Synchronous wrapper around `Device` for scripts: an asyncio loop runs in a thread.

    ``read(timeout)`` returns the events that arrived (waiting up to ``timeout`` s for the
    first one); everything else mirrors `Device`.
    """

    def __init__(self, url_or_device: str | Device, **kwargs: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="detak-device-loop",
                                        daemon=True)
        self._thread.start()
        self.device = (url_or_device if isinstance(url_or_device, Device)
                       else open_device(url_or_device, **kwargs))
        self._events: queue.Queue[Any] = queue.Queue()
        self._pump: Any = None
        self._closed = False

    def _run(self, coro: Coroutine[Any, Any, Any], timeout: float | None = None) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def connect(self) -> None:
        self._run(self.device.connect())
        self._pump = asyncio.run_coroutine_threadsafe(self._forward(), self._loop)

    async def _forward(self) -> None:
        async for event in self.device.events():
            self._events.put(event)
        self._events.put(_END)

    def start(self) -> StreamInfo:
        if self._pump is None:
            self.connect()
        return self._run(self.device.start())

    def stop(self) -> None:
        self._run(self.device.stop())

    def set_cal_pulse(self, on: bool) -> None:
        self._run(self.device.set_cal_pulse(on))

    def read(self, timeout: float = 1.0) -> list[Event]:
        """Events received so far (waits up to ``timeout`` s for at least one)."""
        out: list[Event] = []
        try:
            item = self._events.get(timeout=timeout)
        except queue.Empty:
            return out
        while True:
            if item is _END:
                self._events.put(_END)
                return out
            out.append(item)
            try:
                item = self._events.get_nowait()
            except queue.Empty:
                return out

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._run(self.device.close(), timeout=10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            self._loop.close()

    def __enter__(self) -> BlockingDevice:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            self.stop()
        self.close()
