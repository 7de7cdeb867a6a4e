"""From counts to millivolts at acquisition time: the calibration hook of the `Recorder`.

``mV = (counts - offset) * lsb_nv * 1e-6 * gain``, per channel. `DeviceInfoCalibration` (the
default) takes the LSB the device declares and gain 1, offset 0 — the "minimal calibration
step". Anything with a ``scale_for(info) -> ChannelScale`` method (`ChannelScale`, the
arithmetic, is `detak.calibration.counts`) can replace it: the TOML
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

from typing import Protocol

import numpy as np

# the arithmetic lives in calibration (pure counts -> mV); re-exported for the device code
from detak.calibration.counts import MISSING, ChannelScale, scale_from_dict
from detak.device.events import StreamInfo

__all__ = ["MISSING", "Calibration", "ChannelScale", "DeviceInfoCalibration", "scale_from_dict"]


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
