"""One beat train per recording, found once and shared by quality, intervals and rhythm.

`find_beats` cleans a recording the way interval measurement needs it (`prepare`: pacing
spikes removed, resampled to `INTERNAL_FS`, mains notched where hum is present, baseline
removed, `LOWPASS_HZ` low-pass) and runs the multi-lead beat detector
(`detak.signal.beats.detect_beats`) on it. The quality check calls it with the leads it
rejected left out, and `detak.signal.analysis.analyse_recording` hands the same `Beats` to
`measure_intervals`: the heart rate in the quality verdict and in the intervals comes from one
set of beats.

The heart rate is the ventricular rate: every QRS counts, ectopic or paced, not only the
sinus beats. When leads disagree on the number of beats, the beats come from the lead(s)
with the best QRS-to-noise ratio and a note says so (`detak.signal.beats.choose_leads`).

>>> from detak.data.samples import load_sample
>>> rec = load_sample("ludb-1")
>>> beats = find_beats(rec.signal, rec.fs, list(rec.leads))
>>> beats.fs, 40 < 60000 / ventricular_rr_ms(beats) < 70
(500.0, True)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from detak.signal import filters
from detak.signal.beats import Beats, despike, detect_beats, ventricular_rr_ms

__all__ = ["INTERNAL_FS", "LOWPASS_HZ", "Beats", "find_beats", "prepare", "ventricular_rr_ms"]

INTERNAL_FS = 500.0
LOWPASS_HZ = 40.0
MAINS_HZ: tuple[float, ...] = (50.0, 60.0)
MAINS_NOTCH_MV = 0.02  # hum RMS in any lead above which it is notched (clean LUDB: <= 0.010)


def remove_mains(x: np.ndarray, fs: float) -> np.ndarray:
    """Notch 50 or 60 Hz (zero-phase, Q 30) when a lead carries mains hum: hum leaking
    through the 40 Hz low-pass makes R-peak detectors count hum cycles as beats
    (benchmarks/hr_robustness.py: 0.5 mV of 50 Hz put 23 % of 12-lead LUDB records > 10 bpm
    off without the notch). Only when hum is there: the notch's ringing around a sharp QRS
    moves the multi-lead QRS onset by a few ms on clean records."""
    for f in MAINS_HZ:
        levels = [filters.mains_rms(row, fs, f) for row in np.atleast_2d(x)]
        if max((v or 0.0) for v in levels) > MAINS_NOTCH_MV:
            x = filters.notch(x, fs, f, harmonics=False)
    return x


def prepare(signal: np.ndarray, fs: float) -> tuple[np.ndarray, int, np.ndarray, np.ndarray]:
    """(cleaned signal at INTERNAL_FS, number of spikes removed, the same before low-pass,
    the same before low-pass and without `despike`: where beat-locked spikes are looked for)."""
    x, n_spikes = despike(signal, fs)
    x = remove_mains(filters.resample(x, fs, INTERNAL_FS), INTERNAL_FS)
    xb = np.asarray(filters.remove_baseline(x, INTERNAL_FS), dtype=np.float64)
    x = filters.lowpass(xb, INTERNAL_FS, LOWPASS_HZ)
    if n_spikes:
        xs = filters.resample(np.asarray(signal, dtype=np.float64), fs, INTERNAL_FS)
        xs = np.asarray(filters.remove_baseline(xs, INTERNAL_FS), dtype=np.float64)
    else:
        xs = xb
    return np.asarray(x, dtype=np.float64), n_spikes, xb, xs


def find_beats(signal: np.ndarray, fs: float, leads: Sequence[str] | None = None, *,
               exclude: Sequence[int] = (), valid: np.ndarray | None = None) -> Beats:
    """The beat train of a raw recording (mV, (n_leads, n_samples) at ``fs``, finite).

    ``leads``: names for the notes; ``exclude``: rows not to use (e.g. leads the quality check
    rejected); ``valid``: boolean (n_samples,) at ``fs``, False at missing or filled samples
    (no beat is taken near them, no RR across them). Returns `Beats` at `INTERNAL_FS`
    (`Beats.times_s`, `Beats.samples_at` convert).
    """
    x, _, xb, _ = prepare(signal, fs)
    ok = None
    if valid is not None:
        v = np.asarray(valid, dtype=bool)
        idx = np.minimum(np.round(np.arange(x.shape[1]) * fs / INTERNAL_FS).astype(int),
                         v.size - 1)
        ok = v[idx]
    return detect_beats(x, INTERNAL_FS, raw=xb, names=None if leads is None else list(leads),
                        exclude=list(exclude), valid=ok)
