"""Raw counts to millivolts: the per-channel scale, and what it needs to know of a stream.

``mV = (counts - offset) * lsb_nv * 1e-6 * gain``, per channel. `ChannelScale` is that
arithmetic; a calibration (the device's own declared LSB in `detak.device.scaling`, or a
`detak.calibration.profile.DeviceProfile`) makes one for a stream. `MISSING` (-2**31, a value
no 24-bit ADC produces) marks a sample that never arrived and becomes NaN. `StreamSpec` is
the part of a device's stream description (`detak.device.events.StreamInfo`) calibration reads;
calibration imports no device code.

>>> import numpy as np
>>> s = ChannelScale(np.array([1000.0]), np.array([0.5]), np.array([10.0]), "demo")
>>> s.to_mv(np.array([[1010, MISSING]], dtype=np.int32)).tolist()
[[0.5, nan]]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

MISSING = np.int32(-(2**31))


class StreamSpec(Protocol):
    """What calibration reads of a device's stream (`detak.device.events.StreamInfo` is one)."""

    fs: float
    channels: tuple[str, ...]
    lsb_nv: float
    model: str
    serial: str

    @property
    def device_id(self) -> str: ...


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


def scale_from_dict(d: dict[str, Any]) -> ChannelScale:
    """Inverse of `ChannelScale.describe` (used when recovering a recording).

    >>> s = ChannelScale(np.ones(1), np.ones(1), np.zeros(1), "x")
    >>> scale_from_dict(s.describe()).describe() == s.describe()
    True
    """
    return ChannelScale(np.asarray(d["lsb_nv"], float), np.asarray(d["gain"], float),
                        np.asarray(d["offset_counts"], float), str(d["name"]))
