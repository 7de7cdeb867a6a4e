"""A fake BLE peripheral behind bleak's real client API, for tests and the ``link=ble`` emulator.

bleak accepts ``BleakClient(address, backend=SomeBaseBleakClientSubclass)`` (checked with
bleak 3.1). `fake_backend(peripheral)` builds such a class whose instances talk to an
in-process `FakePeripheral`: connect/disconnect, service discovery (from
``peripheral.services``), writes, reads and notifications all go through `BleakClient`
unchanged, so a driver tested this way runs the same code as against a real radio.

To emulate a device family, subclass `FakePeripheral`: declare ``services`` and override
``on_write`` / ``on_read`` / ``on_connect``; push data with ``notify(uuid, bytes)``; drop the link
with ``drop()``. `BridgePeripheral` is the detak bridge over the Nordic UART Service, driven
by a `VirtualDevice`. `fake_scanner_backend(adverts)` does the same for `BleakScanner`.

>>> import asyncio
>>> from bleak import BleakClient
>>> class Echo(FakePeripheral):
...     services = {"0000aaaa-0000-1000-8000-00805f9b34fb": {
...         "0000aaab-0000-1000-8000-00805f9b34fb": ["write", "notify"]}}
...     async def on_write(self, uuid, data):
...         self.notify(uuid, data[::-1])
>>> async def demo():
...     got = []
...     async with BleakClient("AA:BB", backend=fake_backend(Echo())) as client:
...         await client.start_notify("0000aaab-0000-1000-8000-00805f9b34fb",
...                                   lambda c, d: got.append(bytes(d)))
...         await client.write_gatt_char("0000aaab-0000-1000-8000-00805f9b34fb", b"abc",
...                                      response=True)
...     return got
>>> asyncio.run(demo())
[b'cba']
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any, ClassVar

from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakError
from bleak.uuids import normalize_uuid_str

from detak.device.bridge import NUS_RX, NUS_SERVICE, NUS_TX


class FakePeripheral:
    """A GATT server in software (see the module docstring)."""

    #: {service UUID: {characteristic UUID: [properties]}}
    services: ClassVar[dict[str, dict[str, list[str]]]] = {}
    name = "fake"
    mtu = 247

    def __init__(self) -> None:
        self._subscribers: dict[str, Callable[[bytearray], None]] = {}
        self._client: Any = None
        self.connects = 0
        self.writes: list[tuple[str, bytes]] = []

    @property
    def connected(self) -> bool:
        return self._client is not None

    async def on_connect(self) -> None:
        """Called when a client connects; raise `BleakError` to refuse."""

    async def on_disconnect(self) -> None:
        """Called when the client disconnects (not when `drop` cuts the link)."""

    async def on_write(self, uuid: str, data: bytes) -> None:
        """A client wrote ``data`` to characteristic ``uuid``."""

    async def on_read(self, uuid: str) -> bytes:
        raise BleakError(f"characteristic {uuid} is not readable on {self.name}")

    def notify(self, uuid: str, data: bytes) -> None:
        """Send a notification (dropped if the client has not subscribed)."""
        cb = self._subscribers.get(normalize_uuid_str(uuid))
        if cb is not None:
            cb(bytearray(data))

    def drop(self) -> None:
        """Cut the link as a radio would: the client's disconnected callback fires."""
        client, self._client = self._client, None
        self._subscribers.clear()
        if client is not None:
            client._lost()

    def build_services(self) -> BleakGATTServiceCollection:
        coll = BleakGATTServiceCollection()
        handle = 1
        for s_uuid, chars in self.services.items():
            svc = BleakGATTService(None, handle, normalize_uuid_str(s_uuid))
            coll.add_service(svc)
            handle += 1
            for c_uuid, props in chars.items():
                char = BleakGATTCharacteristic(None, handle, normalize_uuid_str(c_uuid),
                                               list(props), lambda: self.mtu - 3, svc)
                coll.add_characteristic(char)
                handle += 2
        return coll


def fake_backend(peripheral: FakePeripheral) -> type[BaseBleakClient]:
    """A `BaseBleakClient` subclass bound to ``peripheral`` (pass it as ``backend=``)."""

    class FakeBleakClient(BaseBleakClient):
        def __init__(self, address_or_ble_device: Any, **kwargs: Any) -> None:
            super().__init__(address_or_ble_device,
                             disconnected_callback=kwargs.get("disconnected_callback"),
                             timeout=kwargs.get("timeout", 10.0))
            self._connected = False

        @property
        def name(self) -> str:
            return peripheral.name

        @property
        def mtu_size(self) -> int:
            return peripheral.mtu

        @property
        def is_connected(self) -> bool:
            return self._connected

        async def connect(self, pair: bool, **kwargs: Any) -> None:
            await peripheral.on_connect()
            self.services = peripheral.build_services()
            self._connected = True
            peripheral._client = self
            peripheral.connects += 1

        async def disconnect(self) -> None:
            if self._connected:
                self._connected = False
                if peripheral._client is self:
                    peripheral._client = None
                    peripheral._subscribers.clear()
                    await peripheral.on_disconnect()

        def _lost(self) -> None:
            self._connected = False
            if self._disconnected_callback is not None:
                self._disconnected_callback()

        async def pair(self, *args: Any, **kwargs: Any) -> None:
            return None

        async def unpair(self) -> None:
            return None

        async def read_gatt_char(self, characteristic: BleakGATTCharacteristic,
                                 **kwargs: Any) -> bytearray:
            self._check()
            return bytearray(await peripheral.on_read(characteristic.uuid))

        async def write_gatt_char(self, characteristic: BleakGATTCharacteristic, data: Any,
                                  response: bool) -> None:
            self._check()
            peripheral.writes.append((characteristic.uuid, bytes(data)))
            await peripheral.on_write(characteristic.uuid, bytes(data))

        async def start_notify(self, characteristic: BleakGATTCharacteristic,
                               callback: Callable[[bytearray], None], **kwargs: Any) -> None:
            self._check()
            peripheral._subscribers[characteristic.uuid] = callback

        async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
            peripheral._subscribers.pop(characteristic.uuid, None)

        async def read_gatt_descriptor(self, descriptor: Any, **kwargs: Any) -> bytearray:
            raise BleakError("descriptors are not emulated")

        async def write_gatt_descriptor(self, descriptor: Any, data: Any) -> None:
            raise BleakError("descriptors are not emulated")

        def _check(self) -> None:
            if not self._connected:
                raise BleakError("Not connected")

    return FakeBleakClient


def fake_scanner_backend(adverts: list[tuple[str, str, list[str], int]]
                         ) -> type[BaseBleakScanner]:
    """A `BaseBleakScanner` subclass that "hears" ``adverts``: (address, name, service UUIDs,
    RSSI) each, when scanning starts."""

    class FakeScanner(BaseBleakScanner):
        def __init__(self, detection_callback: Any = None, service_uuids: Any = None,
                     scanning_mode: str = "active", **kwargs: Any) -> None:
            super().__init__(detection_callback, service_uuids)

        async def start(self) -> None:
            for address, name, uuids, rssi in adverts:
                adv = AdvertisementData(local_name=name, manufacturer_data={}, service_data={},
                                        service_uuids=[u.lower() for u in uuids], tx_power=None,
                                        rssi=rssi, platform_data=())
                device = self.create_or_update_device(address, address, name, None, adv)
                self.call_detection_callbacks(device, adv)

        async def stop(self) -> None:
            return None

    return FakeScanner


class BridgePeripheral(FakePeripheral):
    """The detak bridge over BLE: Nordic UART Service, bytes from a `VirtualDevice`.

    Host writes on NUS RX go to the device; the device's output is sent as NUS TX notifications
    of at most MTU - 3 bytes. The device's ``disconnect=`` faults drop the BLE link; connecting
    is refused while the device is "out of range".
    """

    services: ClassVar[dict[str, dict[str, list[str]]]] = {
        NUS_SERVICE: {NUS_RX: ["write", "write-without-response"], NUS_TX: ["notify"]},
    }
    name = "detak-emu"

    def __init__(self, device: Any) -> None:
        super().__init__()
        self.device = device
        self._pump: asyncio.Task[None] | None = None

    async def on_connect(self) -> None:
        if not self.device.link_up:
            raise BleakError(f"{self.name} is not advertising (link down)")
        if self._pump is None or self._pump.done():
            self._pump = asyncio.get_running_loop().create_task(self._run())

    async def on_write(self, uuid: str, data: bytes) -> None:
        if uuid == NUS_RX:
            self.device.receive(data, time.monotonic())

    async def _run(self) -> None:
        dev, step = self.device, self.mtu - 3
        while True:
            now = time.monotonic()
            due = dev.next_due(now)
            await asyncio.sleep(0.02 if due is None else min(0.02, max(0.0, due - now)))
            out = dev.poll(time.monotonic())
            if self.connected:
                for i in range(0, len(out), step):
                    self.notify(NUS_TX, out[i:i + step])
            if self.connected and not dev.link_up:
                self.drop()

    async def astop(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
            self._pump = None
