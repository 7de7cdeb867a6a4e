"""The 1 mV calibration pulse as counts: its two levels, and the gain and offset they imply.

The device's calibration pulse (or an external 1 mV calibrator) puts a square wave between
0 mV and +``pulse_mv`` on every channel. `measure_pulse` finds its two levels in counts (the
medians of the samples below and above the midpoint of the 1st-99th percentile range) and
checks it really is a square wave: at least 90 % of the samples within 10 % of the step from
one level or the other, each level 20-80 % of the time, and a step that is 0.2-5 mV by the
device's declared LSB. Then, per channel, ``gain = pulse_mv / (step_counts * lsb)`` and
``offset = low level`` (the count that means 0 mV), exactly the correction
`detak.calibration.counts.ChannelScale` applies. Pure arithmetic: the procedure that drives a
device to produce the pulse is `detak.device.pulse`.

>>> import numpy as np
>>> t = np.arange(400)
>>> square = np.where((t // 50) % 2 == 0, 1050 + 30, 30)          # 1 mV = 1050 counts
>>> (m,) = measure_pulse(square[None], lsb_nv=1000.0, channels=["II"])
>>> m.low, m.high, round(m.gain * 1.05, 6), m.ok
(30.0, 1080.0, 1.0, True)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

LEVEL_TOLERANCE = 0.10         # of the step
MIN_ON_LEVELS = 0.90           # share of samples near one of the two levels




@dataclass(frozen=True)
class ChannelPulse:
    """The pulse as one channel saw it (levels in counts) and the correction it implies."""

    channel: str
    low: float
    high: float
    lsb_nv: float
    pulse_mv: float
    on_levels: float
    high_share: float
    noise_counts: float
    problem: str = ""

    @property
    def step(self) -> float:
        return self.high - self.low

    @property
    def measured_mv(self) -> float:
        """The pulse's height by the device's own LSB (``pulse_mv`` if it is calibrated)."""
        return self.step * self.lsb_nv * 1e-6

    @property
    def gain(self) -> float:
        return self.pulse_mv / self.measured_mv if self.step > 0 else float("nan")

    @property
    def ok(self) -> bool:
        return not self.problem

    def to_dict(self) -> dict[str, Any]:
        return {"channel": self.channel, "low": self.low, "high": self.high,
                "measured_mv": round(self.measured_mv, 6), "gain": self.gain,
                "on_levels": round(self.on_levels, 4), "noise_counts": round(self.noise_counts, 3),
                "problem": self.problem}


def measure_pulse(counts: np.ndarray, lsb_nv: float | Sequence[float],
                  channels: Sequence[str], pulse_mv: float = 1.0) -> list[ChannelPulse]:
    """Measure the square wave on each row of ``counts`` (channels, n); NaN = missing sample.

    Channels where it fails carry a ``problem`` (not raised: the caller reports them all).
    """
    x = np.asarray(counts, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] != len(channels):
        raise ValueError(f"counts of shape {x.shape} for {len(channels)} channels")
    lsb = np.broadcast_to(np.asarray(lsb_nv, dtype=np.float64), (len(channels),))
    out = []
    for row, ch in enumerate(channels):
        v = x[row][np.isfinite(x[row])]
        if v.size < 20:
            out.append(ChannelPulse(ch, np.nan, np.nan, float(lsb[row]), pulse_mv, 0.0, 0.0,
                                    np.nan, f"only {v.size} samples"))
            continue
        p1, p99 = np.percentile(v, [1, 99])
        mid = (p1 + p99) / 2
        low_set, high_set = v[v < mid], v[v >= mid]
        if p99 - p1 < 2 or not low_set.size or not high_set.size:
            out.append(ChannelPulse(ch, float(np.median(v)), float(np.median(v)),
                                    float(lsb[row]), pulse_mv, 0.0, 0.0, float(np.std(v)),
                                    "flat: no pulse seen"))
            continue
        lo, hi = float(np.median(low_set)), float(np.median(high_set))
        step = hi - lo
        tol = LEVEL_TOLERANCE * step
        near_lo, near_hi = np.abs(v - lo) <= tol, np.abs(v - hi) <= tol
        on = float(np.mean(near_lo | near_hi))
        share = float(np.mean(near_hi) / max(on, 1e-12))
        resid = np.concatenate([v[near_lo] - lo, v[near_hi] - hi])
        noise = float(np.std(resid)) if resid.size else float("nan")
        m = ChannelPulse(ch, lo, hi, float(lsb[row]), pulse_mv, on, share, noise)
        problem = ""
        if on < MIN_ON_LEVELS:
            problem = (f"not a clean square wave: only {on:.0%} of samples at its two levels "
                       "(electrode off, noise, or no pulse?)")
        elif not 0.2 <= share <= 0.8:
            problem = f"the high level holds {share:.0%} of the time, not about half"
        elif not 0.2 <= m.measured_mv / pulse_mv <= 5.0:
            problem = (f"a step of {m.measured_mv:.4g} mV by the declared LSB "
                       f"({lsb[row]:g} nV); expected about {pulse_mv:g} mV")
        out.append(ChannelPulse(ch, lo, hi, float(lsb[row]), pulse_mv, on, share, noise,
                                problem))
    return out
