"""BLE through bleak's real client and scanner APIs with fake backends (bleak 3.1 accepts
``backend=``): the bridge over the Nordic UART Service, link loss, the device scan."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
from bleak import BleakClient
from bleak.backends.scanner import BaseBleakScanner

from detak.data.ptbxl import open_ptbxl
from detak.device.ble import BleTransport, scan_ble
from detak.device.bridge import NUS_RX, NUS_SERVICE, NUS_TX
from detak.device.events import LinkLost, LinkRestored, SampleBlock
from detak.device.fakeble import BridgePeripheral, fake_backend, fake_scanner_backend
from detak.device.session import open_device
from detak.device.transports import TransportClosed
from detak.firmware_bridge.emulator import VirtualDevice
from detak.firmware_bridge.messages import GetInfo, encode_message


async def _collect(dev, until: int, timeout: float = 20.0) -> list:
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


# --- bad input first ---------------------------------------------------------------------------


def test_connecting_to_a_peripheral_that_is_away_fails_cleanly() -> None:
    device = VirtualDevice.from_url("emu://ludb/1")
    device.link_up = False
    t = BleTransport("EE:11:EE:11:EE:11", backend=fake_backend(BridgePeripheral(device)))
    with pytest.raises(TransportClosed, match="EE:11:EE:11:EE:11: cannot connect: .*not "
                                              "advertising"):
        asyncio.run(t.open())


def test_scan_without_bluetooth_reports_why_instead_of_raising() -> None:
    class Broken(BaseBleakScanner):
        def __init__(self, *a, **k) -> None:
            raise FileNotFoundError(2, "No such file or directory")

        async def start(self) -> None: ...

        async def stop(self) -> None: ...

    devices, error = asyncio.run(scan_ble(0.1, backend=Broken))
    assert devices == [] and "no D-Bus system bus" in error


def test_scan_that_hangs_gives_up_after_the_timeout() -> None:
    class Hanging(BaseBleakScanner):
        def __init__(self, *a, **k) -> None:
            super().__init__(None, None)

        async def start(self) -> None:
            await asyncio.sleep(3600)

        async def stop(self) -> None: ...

    t0 = time.monotonic()
    devices, error = asyncio.run(scan_ble(0.2, backend=Hanging))
    assert devices == [] and error and time.monotonic() - t0 < 5


# --- behaviour ---------------------------------------------------------------------------------


def test_the_bridge_over_nus_through_bleak_client() -> None:
    device = VirtualDevice.from_url("emu://ludb/1")
    peripheral = BridgePeripheral(device)

    async def go() -> bytes:
        got = bytearray()
        async with BleakClient("EE:11", backend=fake_backend(peripheral)) as client:
            assert client.services.get_service(NUS_SERVICE) is not None
            await client.start_notify(NUS_TX, lambda c, d: got.extend(d))
            await client.write_gatt_char(NUS_RX, encode_message(GetInfo(), 0), response=False)
            await asyncio.sleep(0.1)
        await peripheral.astop()
        return bytes(got)

    data = asyncio.run(go())
    assert data.startswith(encode_message(device.info, 0))      # DEVICE_INFO, then the ACK
    assert peripheral.writes == [(NUS_RX, encode_message(GetInfo(), 0))]


def test_streaming_over_ble_with_a_link_loss_recovers_and_loses_only_the_logged_samples() -> None:
    async def go():
        dev = open_device("emu://ptbxl/1?speed=10&link=ble&disconnect=4:0.5",
                          backoff=(0.02, 0.2))
        await dev.connect()
        await dev.start()
        events = await _collect(dev, until=1000)
        emulator = dev.transport.device
        await dev.close()
        return events, emulator

    events, emulator = asyncio.run(go())
    assert any(isinstance(e, LinkLost) for e in events)
    assert any(isinstance(e, LinkRestored) for e in events)
    got = np.full((12, 1000), np.iinfo(np.int64).min)
    for e in events:
        if isinstance(e, SampleBlock):
            got[:, e.first_sample:e.first_sample + e.n_samples] = e.counts
    missing = (got == np.iinfo(np.int64).min).all(axis=0)
    lost = np.zeros(1000, bool)
    for a, b in emulator.lost_spans():
        lost[a:b] = True
    assert np.array_equal(missing, lost) and lost[400]
    src = np.rint(open_ptbxl().record(1).signal.astype(np.float64) * 1000)
    assert np.array_equal(got[:, ~missing], src[:, ~missing])


def test_scan_lists_only_devices_with_a_profile() -> None:
    adverts = [
        ("A0:9E:1A:00:00:01", "Polar H10 9A1B2C3D", [], -60),
        ("C4:00:00:00:00:02", "detak-front-end", ["6E400001-B5A3-F393-E0A9-E50E24DCCA9E"], -40),
        ("D0:00:00:00:00:03", "PC80B-BLE:1234", ["0000fff0-0000-1000-8000-00805f9b34fb"], -70),
        ("E0:00:00:00:00:04", "HR strap", ["0000180d-0000-1000-8000-00805f9b34fb"], -80),
        ("F0:00:00:00:00:05", "kettle", ["0000feaa-0000-1000-8000-00805f9b34fb"], -30),
    ]
    devices, error = asyncio.run(scan_ble(0.05, backend=fake_scanner_backend(adverts)))
    assert error is None
    assert [(d["name"], d["profiles"]) for d in devices] == [
        ("detak-front-end", ["bridge"]), ("Polar H10 9A1B2C3D", ["polar-h10"]),
        ("PC80B-BLE:1234", ["pc80b"]), ("HR strap", ["hrs"])]
