"""BLE: a bleak-based transport, the BLE profiles detak knows, and a quick scan.

`BleTransport` connects with ``bleak.BleakClient`` (``backend=`` lets tests pass a fake backend
class; see `detak.device.fakeble`), subscribes to the driver's notify characteristics and
delivers each notification as ``(characteristic UUID, bytes)``; writes go to the driver's write
characteristic in MTU-sized pieces. A BLE disconnect raises `TransportClosed` in `receive`, so
the session reconnects like for any other link.

A *profile* (`BleProfile`) ties a device family to a driver name and to how it is recognised in
advertisements (name prefixes, service UUIDs). ``ble://ADDR?profile=NAME`` uses it;
`scan_ble` lists devices in range with their profile and never hangs or raises when there is
no Bluetooth adapter (it returns the reason instead).

>>> [p.name for p in match_profiles("Polar H10 1234ABCD", [])]
['polar-h10']
>>> [p.name for p in match_profiles("", ["6e400001-b5a3-f393-e0a9-e50e24dcca9e"])]
['bridge']
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from detak.device.bridge import NUS_RX, NUS_SERVICE, NUS_TX
from detak.device.transports import Transport, TransportClosed

SCAN_TIMEOUT_S = 4.0
HRS_SERVICE = "0000180d-0000-1000-8000-00805f9b34fb"
PMD_SERVICE = "fb005c80-02e7-f387-1cad-8acd2d8df0c8"
PC80B_SERVICE = "0000fff0-0000-1000-8000-00805f9b34fb"


@dataclass(frozen=True)
class BleProfile:
    """A BLE device family: its driver (by registered name) and how to recognise it."""

    name: str
    driver: str
    description: str
    name_prefixes: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    def matches(self, local_name: str, service_uuids: Sequence[str]) -> bool:
        uuids = {u.lower() for u in service_uuids}
        return (any(local_name.startswith(p) for p in self.name_prefixes)
                or any(s in uuids for s in self.services))


BLE_PROFILES: dict[str, BleProfile] = {}


def register_profile(profile: BleProfile) -> BleProfile:
    """Add (or replace) a profile; part B registers the third-party devices' drivers."""
    BLE_PROFILES[profile.name] = profile
    return profile


register_profile(BleProfile("bridge", "bridge", "detak firmware bridge over the Nordic UART "
                            "Service", name_prefixes=("detak",), services=(NUS_SERVICE,)))
register_profile(BleProfile("polar-h10", "polar-h10", "Polar H10 chest strap (PMD ECG 130 Hz)",
                            name_prefixes=("Polar H10",), services=(PMD_SERVICE,)))
register_profile(BleProfile("pc80b", "pc80b", "Creative PC-80B handheld ECG (150 Hz)",
                            name_prefixes=("PC80B", "PC-80B"), services=(PC80B_SERVICE,)))
register_profile(BleProfile("hrs", "hrs", "Bluetooth Heart Rate Service (HR and RR only)",
                            services=(HRS_SERVICE,)))


def get_profile(name: str) -> BleProfile:
    """A profile by name; `ValueError` lists the known ones."""
    try:
        return BLE_PROFILES[name]
    except KeyError:
        raise ValueError(f"BLE profile {name!r} unknown; known: "
                         f"{', '.join(sorted(BLE_PROFILES))}") from None


def match_profiles(local_name: str, service_uuids: Sequence[str]) -> list[BleProfile]:
    """Profiles whose name prefix or service UUIDs match an advertisement (most specific
    first: the generic Heart Rate Service comes last)."""
    found = [p for p in BLE_PROFILES.values() if p.matches(local_name or "", service_uuids)]
    return sorted(found, key=lambda p: p.name == "hrs")


class BleTransport(Transport):
    """A BLE GATT link through bleak (see the module docstring)."""

    def __init__(self, address: str, notify: Sequence[str] = (NUS_TX,),
                 write: str | None = NUS_RX, url: str = "", backend: Any = None,
                 connect_timeout: float = 20.0) -> None:
        super().__init__(url or f"ble://{address}")
        self.address = address
        self.notify = tuple(notify)
        self.write = write
        self.backend = backend
        self.connect_timeout = connect_timeout
        self._client: Any = None
        self._queue: asyncio.Queue[Any] = asyncio.Queue()

    async def open(self) -> None:
        from bleak import BleakClient
        from bleak.exc import BleakError

        self._queue = asyncio.Queue()
        client = BleakClient(self.address, disconnected_callback=self._on_disconnect,
                             timeout=self.connect_timeout, backend=self.backend)
        try:
            await client.connect()
            for uuid in self.notify:
                await client.start_notify(uuid, self._on_notify)
        except (BleakError, OSError, TimeoutError, EOFError) as exc:
            with contextlib.suppress(Exception):
                await client.disconnect()
            raise TransportClosed(f"BLE {self.address}: cannot connect: {exc}") from exc
        self._client = client

    def _on_notify(self, characteristic: Any, data: bytearray) -> None:
        self._queue.put_nowait((str(characteristic.uuid), bytes(data)))

    def _on_disconnect(self, client: Any) -> None:
        self._queue.put_nowait(None)

    async def receive(self) -> tuple[str | None, bytes]:
        item = await self._queue.get()
        if item is None:
            self._client = None
            raise TransportClosed(f"BLE {self.address}: disconnected")
        channel, data = item
        return channel, self._captured(data)

    async def send(self, data: bytes, channel: str | None = None) -> None:
        from bleak.exc import BleakError

        client = self._client
        target = channel or self.write
        if client is None or target is None:
            raise TransportClosed(f"BLE {self.address}: not connected or nothing to write to")
        step = max(20, int(client.mtu_size) - 3)
        response = _write_with_response(client, target)
        try:
            for i in range(0, len(data), step):
                await client.write_gatt_char(target, data[i:i + step], response=response)
        except (BleakError, OSError) as exc:
            raise TransportClosed(f"BLE {self.address}: write failed: {exc}") from exc

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.disconnect()


def _write_with_response(client: Any, uuid: str) -> bool:
    """Write with response unless the characteristic allows write-without-response (the Polar
    PMD control point accepts only writes with response; the NUS RX takes both)."""
    try:
        char = client.services.get_characteristic(uuid)
    except Exception:  # noqa: BLE001 - no service table: keep the fast default
        return False
    props = set(getattr(char, "properties", ()) or ())
    return "write" in props and "write-without-response" not in props


async def scan_ble(timeout: float = SCAN_TIMEOUT_S, backend: Any = None
                   ) -> tuple[list[dict[str, Any]], str | None]:
    """BLE devices in range that match a profile: ``([{address, name, rssi, profiles}], None)``
    or ``([], reason)`` when scanning is impossible (no adapter, no BlueZ, no permission).

    Never takes much longer than ``timeout``.
    """
    try:
        from bleak import BleakScanner

        found = await asyncio.wait_for(
            BleakScanner.discover(timeout=timeout, return_adv=True, backend=backend),
            timeout + 1.5)
    except Exception as exc:  # noqa: BLE001 - bleak/dbus raise many kinds; report, don't crash
        text = str(exc) or type(exc).__name__
        if isinstance(exc, FileNotFoundError):
            text = "no D-Bus system bus (BlueZ not running or no Bluetooth adapter)"
        return [], f"BLE scan unavailable: {text}"
    out = []
    for device, adv in found.values():
        name = adv.local_name or device.name or ""
        profiles = match_profiles(name, adv.service_uuids or [])
        if profiles:
            out.append({"address": device.address, "name": name, "rssi": adv.rssi,
                        "profiles": [p.name for p in profiles]})
    return sorted(out, key=lambda d: -(d["rssi"] if d["rssi"] is not None else -999)), None
