r"""The driver interface: one class per device family, bytes in -> events out, commands out.

A driver is I/O-free at its core: ``feed(data, channel, host_time)`` takes whatever bytes the
transport delivered (any chunking; ``channel`` is the GATT characteristic UUID for BLE
transports that carry several, else None) and returns `detak.device.events` objects. The
session calls the async hooks ``start``/``stop``/``resume`` with a `Link` to send commands and
wait for answers; a driver whose device needs no commands keeps the defaults, which just wait
for the driver to have produced its `StreamInfo`.

Drivers register by name (`register_driver`) so URLs can pick them (``?driver=NAME`` or a BLE
``profile=``). Part B of issue 6 adds Polar H10 (+ Heart Rate Service), PC-80B, OpenBCI Cyton,
ProtoCentral OpenView and CSV-lines drivers in ``drivers_*.py``. The built-in drivers are
imported on first use (`driver_class`, `get_driver`, `driver_names`), not when this module is
imported: they import this module themselves, so loading them here would be an import cycle.

A complete (if minimal) driver: one integer per channel per text line, no commands. ``feed``
keeps the partial line for the next call, exactly as a byte stream requires:

>>> import numpy as np
>>> from detak.device.events import SampleBlock
>>> class LinesDriver(Driver):
...     name = "lines-demo"
...     def __init__(self, **options):
...         super().__init__(**options)
...         self.info = StreamInfo(fs=250.0, channels=("II",), lsb_nv=1000.0, driver=self.name)
...         self._rest = b""
...     def feed(self, data, channel=None, host_time=0.0):
...         *lines, self._rest = (self._rest + data).split(b"\n")
...         values = [int(x) for x in lines if x.strip()]
...         block = SampleBlock(np.array([values], np.int32), None, None, host_time)
...         return [block] if values else []
>>> d = LinesDriver()
>>> [b.counts.tolist() for b in d.feed(b"12\n-3\n4")], d.feed(b"0\n")[0].counts.tolist()
([[[12, -3]]], [[40]])
>>> "bridge" in driver_names()
True
>>> get_driver("nope")
Traceback (most recent call last):
...
KeyError: "no driver 'nope'; known drivers: bridge, csv, cyton, hrs, openview, pc80b, polar-h10"
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar, Protocol

from detak.device.events import Event, StreamInfo


class DeviceCommandError(RuntimeError):
    """The device refused a command (NACK) or never answered it."""


class Link(Protocol):
    """What a driver may do with the connection during ``start``/``stop``/``resume``."""

    interactive: bool           # False for replayed captures: nothing can be sent

    async def send(self, data: bytes, channel: str | None = None) -> None: ...

    def expect(self, predicate: Callable[[Event], bool]) -> asyncio.Future[Event]:
        """A future resolved by the next event (from now on) matching ``predicate``."""
        ...


class Driver(ABC):
    """Base class of device drivers (see the module docstring)."""

    name: ClassVar[str] = ""
    #: BLE transports: characteristics to subscribe to and the one to write commands to
    #: (None for byte-stream devices; the bridge over BLE uses the Nordic UART Service).
    ble_notify: ClassVar[tuple[str, ...]] = ()
    ble_write: ClassVar[str | None] = None
    #: URL query parameters passed to ``__init__`` as options (``?driver=csv&fs=250``)
    url_options: ClassVar[tuple[str, ...]] = ()
    #: how long `start` waits for the stream description by default
    info_timeout: ClassVar[float] = 5.0

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.info: StreamInfo | None = None

    @abstractmethod
    def feed(self, data: bytes, channel: str | None = None,
             host_time: float = 0.0) -> list[Event]:
        """Decode ``data`` (any chunking); return the complete events it finished."""

    def stats(self) -> dict[str, int]:
        """Counters for the recording's metadata (bytes, frames, errors...)."""
        return {}

    async def start(self, link: Link) -> StreamInfo:
        """Bring the device to streaming; return its `StreamInfo`. Default: wait for it."""
        return await self.wait_info(link)

    async def resume(self, link: Link) -> StreamInfo:
        """Restart the stream after a reconnect (default: like `start`)."""
        return await self.start(link)

    def link_lost(self) -> None:
        """The transport failed and the session is about to reconnect (default: nothing)."""
        return None

    async def stop(self, link: Link) -> None:
        """Stop streaming (default: nothing to send)."""
        return None

    async def set_cal_pulse(self, link: Link, on: bool) -> None:
        raise DeviceCommandError(f"the {self.name or type(self).__name__} driver has no "
                                 "calibration-pulse command")

    async def wait_info(self, link: Link, timeout: float | None = None) -> StreamInfo:
        if self.info is not None:
            return self.info
        fut = link.expect(lambda e: isinstance(e, StreamInfo))
        try:
            info = await asyncio.wait_for(fut, timeout or self.info_timeout)
        except TimeoutError:
            raise DeviceCommandError(f"{self.name}: the device did not describe its stream "
                                     f"within {timeout or self.info_timeout:g} s") from None
        assert isinstance(info, StreamInfo)
        return info


DRIVERS: dict[str, type[Driver]] = {}


def register_driver(cls: type[Driver]) -> type[Driver]:
    """Class decorator: make a driver available by ``cls.name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    DRIVERS[cls.name] = cls
    return cls


def driver_names() -> list[str]:
    """The registered drivers' names (built-in ones included), sorted."""
    _load_builtin()
    return sorted(DRIVERS)


def driver_class(name: str) -> type[Driver]:
    """The driver class registered as ``name`` (`KeyError` listing the known names)."""
    _load_builtin()
    cls = DRIVERS.get(name)
    if cls is None:
        raise KeyError(f"no driver {name!r}; known drivers: {', '.join(sorted(DRIVERS))}")
    return cls


def get_driver(name: str, **options: Any) -> Driver:
    """A new driver instance by name (`KeyError` listing the known names)."""
    return driver_class(name)(**options)


def _load_builtin() -> None:
    """Import (and so register) the built-in drivers; called on first use (see above)."""
    import detak.device.bridge  # noqa: F401 - registers "bridge"
    import detak.device.drivers_csv  # noqa: F401 - "csv" (issue 6 part B, also below)
    import detak.device.drivers_cyton  # noqa: F401 - "cyton"
    import detak.device.drivers_hrs  # noqa: F401 - "hrs"
    import detak.device.drivers_openview  # noqa: F401 - "openview"
    import detak.device.drivers_pc80b  # noqa: F401 - "pc80b"
    import detak.device.drivers_polar  # noqa: F401 - "polar-h10"
