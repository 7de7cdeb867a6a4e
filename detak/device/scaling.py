"""From counts to millivolts at acquisition time: the calibration hook of the `Recorder`.

``mV = (counts - offset) * lsb_nv * 1e-6 * gain``, per channel. `DeviceInfoCalibration` (the
default) takes the LSB the device declares and gain 1, offset 0 — the "minimal calibration
step". Anything with a ``scale_for(info) -> ChannelScale`` method can replace it: the TOML
device profiles of `detak.calibration` (issue 6 part B) plug in here, e.g. with per-channel
gains measured from the 1 mV pulse. Missing samples (`MISSING`) become NaN.

>>> import numpy as np
>>> from detak.device.events import StreamInfo
>>> info = StreamInfo(fs=500.0, channels=("I", "II"), lsb_nv=1000.0)
>>> scale = DeviceInfoCalibration().scale_for(info)
>>> scale.to_mv(np.array([[1000, MISSING], [-250, 0]], dtype=np.int32)).tolist()
[[1.0, nan], [-0.25, 0.0]]
>>> scale.name
'device-info'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from detak.device.events import StreamInfo
from detak.device.ringbuffer import MISSING


@dataclass(frozen=True, eq=False)
class ChannelScale:
    """Per-channel LSB (nV), gain and offset (counts), plus the calibration's name."""

    lsb_nv: np.ndarray
    gain: np.ndarray
    offset: np.ndarray
    name: str

    def to_mv(self, counts: np.ndarray) -> np.ndarray:
        """float32 millivolts (channels, n); `MISSING` -> NaN."""
        c = np.asarray(counts)
        missing = c == MISSING
        x = (c.astype(np.float64) - self.offset[:, None]) * (self.lsb_nv * 1e-6
                                                            * self.gain)[:, None]
        x[missing] = np.nan
        return x.astype(np.float32)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "lsb_nv": self.lsb_nv.tolist(), "gain": self.gain.tolist(),
                "offset_counts": self.offset.tolist()}


class Calibration(Protocol):
    """What the `Recorder` needs from a calibration: the scale for a device's stream.

    A calibration that also changes the recording after scaling (a device profile of
    `detak.calibration`: lead map, derived leads, clock correction) has ``to_journal()`` as
    well: the `Recorder` keeps its result in the journal, and `detak.device.record` applies it
    from there, to a finished recording and to one recovered after a crash alike.
    """

    def scale_for(self, info: StreamInfo) -> ChannelScale: ...


class DeviceInfoCalibration:
    """Trust the device: its declared LSB, gain 1, offset 0."""

    name = "device-info"

    def scale_for(self, info: StreamInfo) -> ChannelScale:
        if not (info.lsb_nv > 0 and np.isfinite(info.lsb_nv)):
            raise ValueError(f"device {info.device_id or '?'} declares LSB {info.lsb_nv} nV; "
                             "cannot convert its counts to millivolts")
        n = info.n_channels
        return ChannelScale(np.full(n, float(info.lsb_nv)), np.ones(n), np.zeros(n), self.name)


def scale_from_dict(d: dict[str, Any]) -> ChannelScale:
    """Inverse of `ChannelScale.describe` (used when recovering a recording)."""
    return ChannelScale(np.asarray(d["lsb_nv"], float), np.asarray(d["gain"], float),
                        np.asarray(d["offset_counts"], float), str(d["name"]))
