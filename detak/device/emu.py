"""``emu://`` as a transport: start a `VirtualDevice` and connect to it like to hardware.

With ``link=pty`` (default) the emulator serves a pseudo-terminal pair and the host side is a
plain `SerialTransport` on the slave path; ``link=tcp`` uses `SocketTransport` to 127.0.0.1;
``link=ble`` runs it as a fake BLE peripheral behind bleak's real `BleakClient` (Nordic UART
Service). Either way the bytes go through the same driver and session as a real device's. After
a link loss, `open` waits for the emulator to come back and connects to its new address.

The virtual device is `device` (its fault ``log`` is what tests compare with).

>>> import asyncio
>>> async def demo():
...     t = EmuTransport("emu://ludb/1?speed=0")
...     await t.open()
...     where = t.describe()
...     await t.release()
...     return where
>>> asyncio.run(demo()).split(" on ")[1].startswith("/dev/")
True
"""

from __future__ import annotations

import asyncio
from typing import Any

from detak.device.transports import SerialTransport, SocketTransport, Transport, TransportClosed
from detak.firmware_bridge.emu_config import parse_emu_url
from detak.firmware_bridge.emulator import VirtualDevice

RECONNECT_WAIT_S = 0.5


class EmuTransport(Transport):
    """The virtual device over a pty, TCP or fake-BLE link (see the module docstring)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.config = parse_emu_url(url)
        self.device: VirtualDevice | None = None
        self.link: Any = None
        self._inner: Transport | None = None
        self._address = ""

    async def open(self) -> None:
        if self.device is None:
            cfg = self.config
            self.device = await asyncio.to_thread(lambda: VirtualDevice(cfg.load(), cfg))
            await self._start_link()
        elif self.config.link != "ble":
            address = await asyncio.to_thread(self.link.wait_up, RECONNECT_WAIT_S)
            if address is None:
                raise TransportClosed(f"{self.url}: virtual device is not reachable yet")
            self._address = address
        self._inner = self._make_inner()
        if self.capture is not None:
            self._inner.capture = self.capture
        await self._inner.open()

    async def _start_link(self) -> None:
        assert self.device is not None
        kind = self.config.link
        if kind == "pty":
            from detak.firmware_bridge.serve import PtyLink

            self.link = PtyLink(self.device)
        elif kind == "tcp":
            from detak.firmware_bridge.serve import TcpLink

            self.link = TcpLink(self.device)
        else:
            from detak.device.fakeble import BridgePeripheral

            self.link = BridgePeripheral(self.device)
            return
        self._address = self.link.start()

    def _make_inner(self) -> Transport:
        if self.config.link == "pty":
            return SerialTransport(self._address, url=self.url)
        if self.config.link == "tcp":
            host, _, port = self._address.rpartition(":")
            return SocketTransport(host, int(port), url=self.url)
        from detak.device.ble import BleTransport
        from detak.device.bridge import NUS_RX, NUS_TX
        from detak.device.fakeble import fake_backend

        return BleTransport("EE:11:EE:11:EE:11", notify=(NUS_TX,), write=NUS_RX, url=self.url,
                            backend=fake_backend(self.link))

    async def receive(self) -> tuple[str | None, bytes]:
        if self._inner is None:
            raise TransportClosed(f"{self.url}: not open")
        return await self._inner.receive()

    async def send(self, data: bytes, channel: str | None = None) -> None:
        if self._inner is None:
            raise TransportClosed(f"{self.url}: not open")
        await self._inner.send(data, channel)

    async def close(self) -> None:
        inner, self._inner = self._inner, None
        if inner is not None:
            await inner.close()

    async def release(self) -> None:
        await self.close()
        if self.link is not None:
            if hasattr(self.link, "astop"):
                await self.link.astop()
            else:
                await asyncio.to_thread(self.link.stop)
            self.link = None

    def describe(self) -> str:
        return f"{self.url} on {self._address or self.config.link}"
