"""The ECG devices the kiosk offers: the configured ones, the training device (the emulator)
and what `detak devices` discovery finds when the nurse asks (`detak.device.discovery`).

Discovery is a coroutine returning `detak.device.discovery.list_devices`'s dict, injected into
`detak.kiosk.app.create_app` (tests pass a fake one: no BLE scan in tests). Only USB serial
ports are offered (a Pi's own UART, ``/dev/ttyAMA0``, is no ECG device) and BLE devices with a
known profile (what ``list_devices`` returns).

>>> found = {"serial": [{"device": "/dev/ttyUSB0", "description": "CP2102 USB to UART",
...                      "hwid": "USB VID:PID=10C4:EA60", "url": "serial:///dev/ttyUSB0"},
...                     {"device": "/dev/ttyAMA0", "description": "ttyAMA0", "hwid": "fe201000",
...                      "url": "serial:///dev/ttyAMA0"}],
...          "ble": [{"address": "A0:9E:1A:00:00:01", "name": "Polar H10 0001", "rssi": -60,
...                   "profiles": ["polar"], "url": "ble://A0:9E:1A:00:00:01?profile=polar"}],
...          "ble_error": None}
>>> [(d.url, d.label, d.kind, d.signal) for d in discovered(found)]
... # doctest: +NORMALIZE_WHITESPACE
[('serial:///dev/ttyUSB0', 'CP2102 USB to UART', 'usb', None),
 ('ble://A0:9E:1A:00:00:01?profile=polar', 'Polar H10 0001', 'ble', 'strong')]
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

SCAN_SECONDS = 4.0
Discover = Callable[[], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class FoundDevice:
    """A device discovery found: its URL, a name the nurse can match to the box, and
    ``kind`` (``usb`` or ``ble``)."""

    url: str
    label: str
    kind: str
    #: BLE signal: ``strong`` (RSSI ≥ -70 dBm), ``fair`` (≥ -85), ``weak``; None for USB
    signal: str | None = None


def _usb(port: dict[str, Any]) -> bool:
    text = f"{port.get('hwid', '')} {port.get('device', '')}".upper()
    return "USB" in text or "ACM" in text


def discovered(found: dict[str, Any]) -> list[FoundDevice]:
    """The USB serial ports and profiled BLE devices of a discovery result, BLE by signal
    strength (as ``list_devices`` orders them)."""
    out = [FoundDevice(str(p["url"]), str(p.get("description") or p.get("device") or p["url"]),
                       "usb") for p in found.get("serial") or [] if _usb(p) and p.get("url")]
    out += [FoundDevice(str(d["url"]), str(d.get("name") or d.get("address") or d["url"]),
                        "ble", _signal(d.get("rssi")))
            for d in found.get("ble") or [] if d.get("url")]
    return out


def _signal(rssi: Any) -> str | None:
    if not isinstance(rssi, int | float) or isinstance(rssi, bool):
        return None
    return "strong" if rssi >= -70 else "fair" if rssi >= -85 else "weak"


async def scan_devices() -> dict[str, Any]:
    """`detak devices` discovery: serial ports and a BLE scan of `SCAN_SECONDS` (a scan that
    cannot run gives ``ble_error``, never an exception)."""
    from detak.device.discovery import list_devices

    return await list_devices(ble=True, timeout=SCAN_SECONDS)
