"""Tests for detak.device.urls: which transport and driver a URL means; errors name the part."""

from __future__ import annotations

import pytest

from detak.device.ble import BleTransport
from detak.device.emu import EmuTransport
from detak.device.transports import FileTransport, SerialTransport, SocketTransport
from detak.device.urls import make_transport_and_driver, parse_device_url


@pytest.mark.parametrize(("url", "message"), [
    ("/dev/ttyUSB0", "has no scheme"),
    ("usb://x", "scheme 'usb' unknown"),
    ("serial://", "names no port, host or file"),
    ("serial:///dev/ttyUSB0?bauds=9600", r"unknown parameter\(s\) bauds"),
    ("serial:///dev/ttyUSB0?baud=fast", "baud='fast' is not a number"),
    ("socket://localhost", "write socket://HOST:PORT"),
    ("file://x.bin?rate=0", "rate='0' must be > 0"),
    ("serial:///dev/ttyUSB0?driver=polar", "no driver 'polar'; known drivers: bridge"),
    ("ble://AA:BB:CC:DD:EE:FF?profile=nonin", "BLE profile 'nonin' unknown"),
    ("emu://ptbxl/1?spd=3", "unknown parameter 'spd'"),
])
def test_bad_urls_say_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises((ValueError, KeyError), match=message):
        make_transport_and_driver(url)


def test_each_scheme_gets_its_transport_with_the_url_parameters() -> None:
    t, d = make_transport_and_driver("serial:///dev/ttyACM0?baud=230400")
    assert isinstance(t, SerialTransport) and (t.port, t.baudrate) == ("/dev/ttyACM0", 230400)
    t, _ = make_transport_and_driver("serial://COM3")
    assert isinstance(t, SerialTransport) and t.port == "COM3"
    t, _ = make_transport_and_driver("socket://10.0.0.5:7000")
    assert isinstance(t, SocketTransport) and (t.host, t.port) == ("10.0.0.5", 7000)
    t, _ = make_transport_and_driver("file:///tmp/cap.bin?rate=18000")
    assert isinstance(t, FileTransport) and t.rate == 18000 and not t.interactive
    t, _ = make_transport_and_driver("emu://ludb/3?speed=5&link=tcp")
    assert isinstance(t, EmuTransport) and t.config.link == "tcp"
    t, d = make_transport_and_driver("ble://AA:BB:CC:DD:EE:FF")
    assert isinstance(t, BleTransport) and t.address == "AA:BB:CC:DD:EE:FF"
    assert t.notify == d.ble_notify and t.write == d.ble_write and d.name == "bridge"


def test_relative_file_paths_stay_relative() -> None:
    assert parse_device_url("file://captures/a.bin").target == "captures/a.bin"
