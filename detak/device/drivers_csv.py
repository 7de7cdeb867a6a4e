r"""Plain text, one sample per line (Arduino AD8232 sketches and the like).

Each line holds one integer ADC value, or several separated by commas, semicolons, tabs or
spaces (the Arduino serial-plotter form ``label:value`` works too: its labels name the
channels). Lines end with ``\n`` (a ``\r`` before it is ignored). The device sends no sample
rate and no scale, so both come from the URL: ``serial:///dev/ttyACM0?driver=csv&fs=250&
lsb_nv=3222&offset=512`` (``offset``: the count that means 0 mV, subtracted here). Optional
``channels=I,II`` names the columns; otherwise a header line of labels does, else CH1, CH2...

The first line is always discarded (the port may have opened in the middle of it); if it is
a header of labels, its labels are kept as channel names. Lines that do not parse, or have
another number of values than the first data line, are counted (``bad_lines``) and skipped.
There is no sample counter: a lost line cannot be noticed, and samples are appended in order.

>>> drv = CsvLinesDriver(fs=250, lsb_nv=3222, offset=512)
>>> ev = drv.feed(b"ECG\n512\n530\r\n49")
>>> [type(e).__name__ for e in ev], ev[1].counts.tolist(), drv.info.channels
(['StreamInfo', 'SampleBlock'], [[0, 18]], ('ECG',))
>>> CsvLinesDriver(fs=250)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ValueError: csv driver: give lsb_nv= (nanovolts per count) in the URL, e.g. ...
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from detak.device.drivers import Driver, register_driver
from detak.device.events import Event, SampleBlock, StreamInfo

_SPLIT = re.compile(rb"[,;\s]+")
MAX_LINE = 4096


def _number(name: str, value: Any, required: bool = True) -> float | None:
    if value is None:
        if required:
            raise ValueError(f"csv driver: give {name}= "
                             + ("(samples per second)" if name == "fs" else
                                "(nanovolts per count)")
                             + " in the URL, e.g. ...?driver=csv&fs=250&lsb_nv=3222")
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"csv driver: {name}={value!r} is not a number") from None
    return x


@register_driver
class CsvLinesDriver(Driver):
    """One line of integers per sample; see the module docstring."""

    name = "csv"
    url_options = ("fs", "lsb_nv", "offset", "channels")

    def __init__(self, fs: float | str | None = None, lsb_nv: float | str | None = None,
                 offset: float | str = 0, channels: str | tuple[str, ...] | None = None,
                 **options: Any) -> None:
        super().__init__(**options)
        self.fs = _number("fs", fs)
        self.lsb_nv = _number("lsb_nv", lsb_nv)
        off = _number("offset", offset)
        assert self.fs is not None and self.lsb_nv is not None and off is not None
        if not self.fs > 0:
            raise ValueError(f"csv driver: fs={fs!r} must be > 0")
        if not self.lsb_nv > 0:
            raise ValueError(f"csv driver: lsb_nv={lsb_nv!r} must be > 0")
        if off != int(off):
            raise ValueError(f"csv driver: offset={offset!r} must be a whole number of counts")
        self.offset = int(off)
        self.names: tuple[str, ...] | None = (
            tuple(c.strip() for c in channels.split(",")) if isinstance(channels, str)
            else (tuple(channels) if channels else None))
        self._rest = b""
        self._first_line = True
        self._n: int | None = None
        self.last_error = ""
        self._counts = {"bytes": 0, "lines": 0, "samples": 0, "bad_lines": 0,
                        "header_lines": 0}

    def _parse(self, line: bytes) -> tuple[list[int] | None, list[str]]:
        """(values or None, labels)."""
        tokens = [t for t in _SPLIT.split(line.strip()) if t]
        values: list[int] = []
        labels: list[str] = []
        for t in tokens:
            label, sep, value = t.rpartition(b":")
            try:
                values.append(int(value))
            except ValueError:
                labels.append(t.decode("utf-8", "replace"))
                continue
            if sep:
                labels.append(label.decode("utf-8", "replace"))
        if labels and len(labels) == len(tokens) and not values:
            return None, labels
        if not values or len(values) != len(tokens):
            return None, []
        return values, labels if len(labels) == len(values) else []

    def feed(self, data: bytes, channel: str | None = None,
             host_time: float = 0.0) -> list[Event]:
        self._counts["bytes"] += len(data)
        *lines, rest = (self._rest + data).split(b"\n")
        if len(rest) > MAX_LINE:
            self._counts["bad_lines"] += 1
            self.last_error = f"a line longer than {MAX_LINE} bytes"
            rest = b""
        self._rest = rest
        events: list[Event] = []
        rows: list[list[int]] = []
        for line in lines:
            self._counts["lines"] += 1
            values, labels = self._parse(line.rstrip(b"\r"))
            if self._first_line:
                self._first_line = False
                if values is None and labels and self.names is None:
                    self.names = tuple(labels)
                self._counts["header_lines"] += 1
                continue
            if values is None:
                if labels and self._n is None:          # a header after the first line
                    self._counts["header_lines"] += 1
                    if self.names is None:
                        self.names = tuple(labels)
                    continue
                self._counts["bad_lines"] += 1
                self.last_error = f"line {line[:40]!r} is not integers"
                continue
            if self._n is None:
                if self.names is None or len(self.names) != len(values):
                    if self.names is not None and not labels:
                        self.last_error = (f"{len(self.names)} channel names for "
                                           f"{len(values)} values; naming them CH1...")
                    self.names = (tuple(labels) if labels else
                                  tuple(f"CH{i}" for i in range(1, len(values) + 1)))
                self._n = len(values)
                self.info = StreamInfo(fs=float(self.fs), channels=self.names,
                                       lsb_nv=float(self.lsb_nv), model="serial CSV lines",
                                       driver=self.name, electrodes=self.names,
                                       extra={"offset_counts": self.offset})
                events.append(self.info)
            if len(values) != self._n:
                self._counts["bad_lines"] += 1
                self.last_error = f"line with {len(values)} values, expected {self._n}"
                continue
            rows.append(values)
        if rows:
            counts = np.array(rows, dtype=np.int64).T - self.offset
            self._counts["samples"] += counts.shape[1]
            events.append(SampleBlock(counts.astype(np.int32), None, None, host_time))
        return events

    def stats(self) -> dict[str, int]:
        return dict(self._counts)
