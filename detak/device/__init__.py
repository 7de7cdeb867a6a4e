"""Talking to hardware (issue 6): transports chosen by URL, one driver per device family, the
session that keeps a stream alive, and the `Recorder` that turns it into a `Recording`.

Entry points (imported lazily, so ``import detak.device`` stays light):

* `open_device(url)` -> `Device` (async; ``async with open_device(url) as dev``),
  `BlockingDevice(url)` for scripts;
* `Recorder` (frames -> ring buffer -> chunk files -> `Recording`), `record` / `arecord`
  (``detak record``), `recover` (``detak record --recover``);
* `Driver`, `register_driver`, `Transport`, events in `detak.device.events`.

>>> from detak.device import open_device
>>> open_device("socket://127.0.0.1:9")
Device('socket://127.0.0.1:9', driver='bridge')
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "open_device": "detak.device.session",
    "Device": "detak.device.session",
    "BlockingDevice": "detak.device.session",
    "Recorder": "detak.device.recorder",
    "record": "detak.device.record",
    "arecord": "detak.device.record",
    "recover": "detak.device.record",
    "Driver": "detak.device.drivers",
    "register_driver": "detak.device.drivers",
    "Transport": "detak.device.transports",
    "TransportClosed": "detak.device.transports",
    "StreamInfo": "detak.device.events",
    "SampleBlock": "detak.device.events",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'detak.device' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
