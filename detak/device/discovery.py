"""What is plugged in or in range: serial ports and BLE devices with a known profile.

`list_devices` never raises for missing hardware: no serial ports is an empty list, and a BLE
scan that cannot run (no adapter, no BlueZ/D-Bus, no permission) gives ``ble_error`` instead.

>>> import asyncio
>>> found = asyncio.run(list_devices(ble=False))
>>> sorted(found), isinstance(found["serial"], list)
(['ble', 'ble_error', 'serial'], True)
"""

from __future__ import annotations

from typing import Any

from detak.device.ble import SCAN_TIMEOUT_S, scan_ble


def serial_ports() -> list[dict[str, Any]]:
    """Serial ports pyserial sees, as ``{device, description, hwid, url}``."""
    from serial.tools import list_ports

    out = []
    for p in sorted(list_ports.comports(), key=lambda p: p.device):
        out.append({"device": p.device, "description": p.description or "",
                    "hwid": p.hwid or "", "url": f"serial://{p.device}"})
    return out


async def list_devices(ble: bool = True, timeout: float = SCAN_TIMEOUT_S,
                       ble_backend: Any = None) -> dict[str, Any]:
    """``{"serial": [...], "ble": [...], "ble_error": str | None}``."""
    found: dict[str, Any] = {"serial": serial_ports(), "ble": [], "ble_error": None}
    if ble:
        devices, error = await scan_ble(timeout, backend=ble_backend)
        for d in devices:
            d["url"] = f"ble://{d['address']}?profile={d['profiles'][0]}"
        found["ble"], found["ble_error"] = devices, error
    return found
