"""Sample-rate verification against the host clock, and its correction by resampling.

A device's crystal (or RC oscillator) is off by some parts per million: it declares ``fs`` but
really samples at ``fs * (1 + ppm / 1e6)``. Over a live stream the host sees it: sample blocks
arrive at host times that grow slower or faster than ``samples / fs``. `RateMonitor` collects
(sample count at the end of each block, arrival time) and `estimate_drift` fits the slope of
the *lower envelope*: delays (USB polling, a busy CPU, the reader thread) only ever make blocks
late, so in each of ~16 stretches of the stream the block that arrived earliest for its sample
count is kept, and the Theil-Sen slope through those points gives the rate:
``ppm = (samples per host second / fs - 1) * 1e6``. Only streams paced in real time can be
judged (not replays, not an emulator at ``speed != 1``).

`correct_sample_rate` resamples a recording made at the true rate back onto the nominal grid
when the drift is larger than a threshold (smaller drifts are left alone: resampling is not
free). Missing samples (NaN) stay missing; sample spans in the metadata (gaps, lead-off, the
calibration pulse) move with the signal.

>>> import numpy as np
>>> ends = np.arange(1, 201) * 10                      # blocks of 10 samples
>>> times = ends / (500.0 * (1 + 2000e-6))             # a device 2000 ppm fast at 500 Hz
>>> round(estimate_drift(ends, times, 500.0).ppm)
2000
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from detak.data.recording import Recording

DEFAULT_THRESHOLD_PPM = 1000.0
MIN_SPAN_S = 1.0
ENVELOPE_POINTS = 16


@dataclass(frozen=True)
class DriftEstimate:
    """Measured clock error: ``ppm`` (positive: the device samples fast), its 95 % interval
    (``low_ppm``, ``high_ppm``), the measured rate and how much stream it rests on."""

    ppm: float
    low_ppm: float
    high_ppm: float
    rate_hz: float
    nominal_hz: float
    seconds: float
    n_blocks: int

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 3) if isinstance(v, float) else v)
                for k, v in self.__dict__.items()}


def estimate_drift(sample_ends: np.ndarray, host_times: np.ndarray,
                   nominal_fs: float) -> DriftEstimate:
    """Drift of a stream from ``sample_ends`` (samples produced at the end of each block) and
    the ``host_times`` (s) they arrived; `ValueError` when there is too little to judge."""
    from scipy.stats import theilslopes

    x = np.asarray(sample_ends, dtype=np.float64)
    t = np.asarray(host_times, dtype=np.float64)
    if x.shape != t.shape or x.ndim != 1:
        raise ValueError(f"sample ends {x.shape} and host times {t.shape} must be 1-D and alike")
    if not nominal_fs > 0:
        raise ValueError(f"nominal sample rate {nominal_fs} must be > 0")
    if x.size < 10:
        raise ValueError(f"{x.size} sample blocks are too few to measure the sample rate "
                         "(need at least 10)")
    span = float(t.max() - t.min())
    if span < MIN_SPAN_S:
        raise ValueError(f"the blocks span {span:.2f} s of host time; need at least "
                         f"{MIN_SPAN_S:g} s to measure the sample rate")
    late = t - x / nominal_fs                      # arrival delay + clock error, up to a constant
    edges = np.linspace(0, x.size, min(ENVELOPE_POINTS, x.size // 2) + 1).round().astype(int)
    keep = [a + int(np.argmin(late[a:b])) for a, b in zip(edges[:-1], edges[1:], strict=True)
            if b > a]
    slope, _, lo, hi = theilslopes(t[keep], x[keep])      # seconds per sample
    if not slope > 0:
        raise ValueError("host times do not grow with the sample count: not a live stream")

    def ppm(s: float) -> float:
        return (1.0 / (s * nominal_fs) - 1.0) * 1e6

    return DriftEstimate(ppm=ppm(slope), low_ppm=ppm(hi), high_ppm=ppm(lo),
                         rate_hz=1.0 / slope, nominal_hz=float(nominal_fs), seconds=span,
                         n_blocks=int(np.asarray(sample_ends).size))


class RateMonitor:
    """Feed it the stream's `SampleBlock` events; `estimate()` gives the drift so far.

    Blocks without a device counter are counted in arrival order.
    """

    def __init__(self, nominal_fs: float) -> None:
        self.nominal_fs = float(nominal_fs)
        self.ends: list[int] = []
        self.times: list[float] = []
        self._next = 0

    def add(self, block: Any) -> None:
        first = self._next if block.first_sample is None else int(block.first_sample)
        end = first + int(block.n_samples)
        self._next = max(self._next, end)
        self.ends.append(end)
        self.times.append(float(block.host_time))

    def estimate(self) -> DriftEstimate:
        return estimate_drift(np.array(self.ends), np.array(self.times), self.nominal_fs)


def _remap(meta: dict[str, Any], factor: float, n_out: int) -> dict[str, Any]:
    """Sample indices in the metadata multiplied by ``factor`` (clipped to ``n_out``)."""
    def at(k: Any) -> int:
        return min(n_out, int(round(int(k) * factor)))

    out = dict(meta)
    if "gaps" in out:
        out["gaps"] = [[at(g[0]), at(g[1]), *g[2:]] for g in out["gaps"]]
        out["gap_samples"] = int(sum(g[1] - g[0] for g in out["gaps"]))
    if "lead_off" in out:
        out["lead_off"] = {k: [[at(a), at(b)] for a, b in v] for k, v in out["lead_off"].items()}
    if "cal_pulse" in out:
        out["cal_pulse"] = [[at(a), at(b)] for a, b in out["cal_pulse"]]
    if "rebased" in out:
        out["rebased"] = [at(k) for k in out["rebased"]]
    return out


def resample_to_nominal(signal: np.ndarray, true_fs: float, nominal_fs: float) -> np.ndarray:
    """Cubic-spline resampling of ``signal`` (leads, n) sampled at ``true_fs`` onto the grid of
    ``nominal_fs``; each run of finite samples is interpolated on its own, NaN stays NaN."""
    from scipy.interpolate import CubicSpline

    x = np.asarray(signal, dtype=np.float64)
    n = x.shape[1]
    n_out = int(np.floor((n - 1) * nominal_fs / true_fs + 1e-9)) + 1 if n else 0
    t_in = np.arange(n) / true_fs
    t_out = np.arange(n_out) / nominal_fs
    out = np.full((x.shape[0], n_out), np.nan)
    for row in range(x.shape[0]):
        ok = np.isfinite(x[row]).astype(np.int8)
        edges = np.flatnonzero(np.diff(np.concatenate([[0], ok, [0]])))
        for a, b in zip(edges[::2], edges[1::2], strict=True):
            lo = np.searchsorted(t_out, t_in[a] - 1e-12)
            hi = np.searchsorted(t_out, t_in[b - 1] + 1e-12, side="right")
            if hi <= lo:
                continue
            if b - a == 1:
                out[row, lo:hi] = x[row, a]
            else:
                out[row, lo:hi] = CubicSpline(t_in[a:b], x[row, a:b])(t_out[lo:hi])
    return out.astype(np.float32)


def correct_sample_rate(rec: Recording, drift_ppm: float,
                        threshold_ppm: float = DEFAULT_THRESHOLD_PPM) -> Recording:
    """``rec`` (declared at its nominal ``fs``, really sampled ``drift_ppm`` fast) on the nominal
    grid, if ``|drift_ppm|`` exceeds ``threshold_ppm``; otherwise ``rec`` itself (with a note).

    >>> import numpy as np
    >>> rec = Recording(np.sin(np.arange(1000) / 50.0)[None], fs=100.0, leads=["II"])
    >>> correct_sample_rate(rec, 200.0).meta["sample_rate"]["resampled"]
    False
    >>> out = correct_sample_rate(rec, 10000.0)          # 1 % fast: 1000 -> 990 samples
    >>> out.n_samples, out.fs, out.meta["sample_rate"]["true_fs"]
    (990, 100.0, 101.0)
    """
    if not np.isfinite(drift_ppm):
        raise ValueError(f"{rec.name or 'recording'}: drift {drift_ppm} ppm is not a number")
    if not -1e5 < drift_ppm < 1e5:
        raise ValueError(f"{rec.name or 'recording'}: drift {drift_ppm:g} ppm (over 10 %) is "
                         "not a clock error; check the sample rate the device declares")
    note: dict[str, Any] = {"drift_ppm": float(drift_ppm), "threshold_ppm": float(threshold_ppm),
                            "nominal_fs": rec.fs}
    if abs(drift_ppm) <= threshold_ppm:
        return rec.replace(meta={**rec.meta, "sample_rate": {**note, "resampled": False}})
    true_fs = rec.fs * (1.0 + drift_ppm * 1e-6)
    sig = resample_to_nominal(rec.signal, true_fs, rec.fs)
    meta = _remap(rec.meta, rec.fs / true_fs, sig.shape[1])
    meta["sample_rate"] = {**note, "resampled": True, "true_fs": round(true_fs, 6)}
    return rec.replace(signal=sig, meta=meta)
