"""Device URLs: which transport and which driver.

=============================================== ==============================================
``serial:///dev/ttyUSB0?baud=115200``            serial port (pyserial), bridge driver
``serial://COM3``                                 a Windows port
``socket://127.0.0.1:5000``                       raw TCP (ser2net, Wi-Fi bridges)
``file:///path/capture.bin?rate=18000``           replay received bytes (rate: bytes/s)
``emu://ptbxl/1?speed=20&drop=0.01``              the virtual device on a real pty (see
                                                  `detak.firmware_bridge.emu_config`)
``ble://AA:BB:CC:DD:EE:FF?profile=bridge``        BLE (bleak); ``profile`` picks the driver and
                                                  its GATT characteristics
=============================================== ==============================================

``driver=NAME`` chooses another registered driver for serial, socket and file URLs (default
``bridge``): ``serial:///dev/ttyUSB0?driver=cyton``, ``serial:///dev/ttyACM0?driver=csv&fs=250&
lsb_nv=3222``. A driver's own options (its ``url_options``) are further parameters. Unknown
parameters are an error naming them.

>>> parse_device_url("serial:///dev/ttyACM0?baud=230400")
DeviceURL(scheme='serial', target='/dev/ttyACM0', params={'baud': '230400'})
>>> parse_device_url("ble://AA:BB:CC:DD:EE:FF?profile=bridge").target
'AA:BB:CC:DD:EE:FF'
>>> parse_device_url("usb://x")
Traceback (most recent call last):
...
ValueError: device URL 'usb://x': scheme 'usb' unknown; use serial, socket, file, emu or ble
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from detak.device.drivers import Driver, get_driver
from detak.device.transports import FileTransport, SerialTransport, SocketTransport, Transport

SCHEMES = ("serial", "socket", "file", "emu", "ble")
_PARAMS = {
    "serial": {"baud", "driver"},
    "socket": {"driver"},
    "file": {"rate", "driver"},
    "ble": {"profile", "timeout"},
}


@dataclass(frozen=True)
class DeviceURL:
    scheme: str
    target: str
    params: dict[str, str]


def parse_device_url(url: str) -> DeviceURL:
    """Split a device URL into scheme, target (port, host:port, path, address) and params."""
    if "://" not in url:
        raise ValueError(f"device URL {url!r} has no scheme; write e.g. serial:///dev/ttyUSB0, "
                         "socket://host:port, file://capture.bin, emu://ptbxl/1 or ble://ADDR")
    scheme = url.split("://", 1)[0]
    if scheme not in SCHEMES:
        raise ValueError(f"device URL {url!r}: scheme {scheme!r} unknown; use serial, socket, "
                         "file, emu or ble")
    if scheme == "emu":
        return DeviceURL(scheme, url, {})
    parts = urlsplit(url)
    target = parts.netloc + parts.path
    if not target:
        raise ValueError(f"device URL {url!r} names no port, host or file")
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    known = _PARAMS[scheme] | set(_driver_class(url, scheme, params).url_options)
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(f"device URL {url!r}: unknown parameter(s) {', '.join(unknown)} "
                         f"(known for {scheme}: {', '.join(sorted(known))})")
    return DeviceURL(scheme, target, params)


def _driver_name(scheme: str, params: dict[str, str]) -> str:
    if scheme == "ble":
        from detak.device.ble import get_profile

        return get_profile(params.get("profile", "bridge")).driver
    return params.get("driver", "bridge")


def _driver_class(url: str, scheme: str, params: dict[str, str]) -> type[Driver]:
    from detak.device.drivers import driver_class

    try:
        return driver_class(_driver_name(scheme, params))
    except KeyError as exc:
        raise ValueError(f"device URL {url!r}: {exc.args[0]}") from None


def _driver(url: str, u: DeviceURL) -> Driver:
    """The URL's driver with its options (`ValueError` naming the URL on a bad option)."""
    cls = _driver_class(url, u.scheme, u.params)
    options = {k: v for k, v in u.params.items() if k in cls.url_options}
    try:
        return get_driver(_driver_name(u.scheme, u.params), **options)
    except ValueError as exc:
        raise ValueError(f"device URL {url!r}: {exc}") from None


def _number(url: str, key: str, value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise ValueError(f"device URL {url!r}: {key}={value!r} is not a number") from None
    if not x > 0:
        raise ValueError(f"device URL {url!r}: {key}={value!r} must be > 0")
    return x


def make_transport_and_driver(url: str) -> tuple[Transport, Driver]:
    """The transport and driver for ``url`` (nothing is opened yet).

    >>> t, d = make_transport_and_driver("socket://127.0.0.1:5000")
    >>> type(t).__name__, d.name
    ('SocketTransport', 'bridge')
    """
    u = parse_device_url(url)
    if u.scheme == "emu":
        from detak.device.emu import EmuTransport
        from detak.firmware_bridge.personalities import emu_driver

        transport = EmuTransport(url)
        return transport, emu_driver(transport.config)
    if u.scheme == "ble":
        from detak.device.ble import BleTransport

        driver = _driver(url, u)
        timeout = _number(url, "timeout", u.params.get("timeout", "20"))
        return BleTransport(u.target, notify=driver.ble_notify, write=driver.ble_write,
                            url=url, connect_timeout=timeout), driver
    driver = _driver(url, u)
    if u.scheme == "serial":
        baud = int(_number(url, "baud", u.params.get("baud", "115200")))
        return SerialTransport(u.target, baudrate=baud, url=url), driver
    if u.scheme == "socket":
        host, _, port = u.target.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"device URL {url!r}: write socket://HOST:PORT")
        return SocketTransport(host, int(port), url=url), driver
    rate = _number(url, "rate", u.params["rate"]) if "rate" in u.params else None
    return FileTransport(u.target, rate=rate, url=url), driver
