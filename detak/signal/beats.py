"""Beat detection that survives one bad lead: per-lead R-peak detection and multi-lead consensus.

Each usable lead gets its own neurokit2 R-peak detector run; detections are clustered across
leads (within ``CLUSTER_MS``) and a beat is kept when a majority of usable leads saw it. Then:
pacing spikes are removed first (`despike`), T waves or artefacts mistaken for beats are dropped
(too little QRS slope soon after a real beat), and beats inside noise bursts are discounted.
All functions take the signal as (n_leads, n_samples) in mV at ``fs`` Hz.

>>> import numpy as np
>>> fs = 500.0
>>> t = np.arange(int(10 * fs)) / fs
>>> x = sum(np.exp(-((t - c) / 0.012) ** 2) for c in np.arange(0.5, 10, 0.8))  # 75 bpm
>>> beats = detect_beats(np.vstack([x, 0.5 * x]), fs)
>>> len(beats.samples), round(float(np.median(np.diff(beats.samples))) / fs, 2)
(12, 0.8)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

CLUSTER_MS = 80.0          # detections of one beat in different leads lie within this
REFRACTORY_MS = 250.0      # two beats closer than this: the weaker one is not a beat
DETECTOR = "rodrigues2021"  # neurokit2 method: best sensitivity/PPV on LUDB (odd records)


@dataclass
class Beats:
    """Consensus beats: ``samples`` (fiducial sample per beat), ``support`` (leads that saw it),
    ``usable_leads`` (row indices used), ``noisy`` (beat lies in a noise burst), and ``notes``."""

    samples: np.ndarray
    support: np.ndarray
    usable_leads: list[int]
    noisy: np.ndarray
    notes: list[str] = field(default_factory=list)


def despike(x: np.ndarray, fs: float, min_mv: float = 0.3) -> tuple[np.ndarray, int]:
    """Remove pacemaker spikes (and other one-to-few-sample spikes) by interpolation.

    A spike is a run of samples no longer than ~4 ms that stands out from a 5-sample running
    median by at least ``min_mv`` and by more than half the local (±20 ms) range. Only applied
    at ``fs`` >= 250 Hz: lower rates already smear spikes. Returns (signal, number of spikes).

    >>> import numpy as np
    >>> x = np.zeros((1, 1000)); x[0, 500] = 3.0
    >>> y, n = despike(x, 500.0)
    >>> n, float(abs(y).max())
    (1, 0.0)
    """
    arr = np.array(x, dtype=np.float64, copy=True)
    if arr.ndim == 1:
        arr = arr[None, :]
    if fs < 250:
        return arr, 0
    k = max(3, int(round(0.008 * fs)) | 1)
    med = ndimage.median_filter(arr, size=(1, k), mode="nearest")
    resid = np.abs(arr - med)
    w = max(1, int(round(0.02 * fs)))
    rng = ndimage.maximum_filter1d(med, 2 * w + 1, axis=1) - ndimage.minimum_filter1d(
        med, 2 * w + 1, axis=1)
    cand = (resid > min_mv) & (resid > 0.5 * rng)
    max_run = max(1, int(round(0.004 * fs)))
    pad = max(1, int(round(0.002 * fs)))
    n_spikes = 0
    for row in range(arr.shape[0]):
        lab, n = ndimage.label(cand[row])
        if n == 0:
            continue
        for sl in ndimage.find_objects(lab):
            s = sl[0]
            if s.stop - s.start > max_run:
                continue
            a, b = max(0, s.start - pad), min(arr.shape[1] - 1, s.stop - 1 + pad)
            arr[row, a:b + 1] = np.linspace(med[row, a], med[row, b], b - a + 1)
            n_spikes += 1
    return arr, n_spikes


def usable_leads(x: np.ndarray, fs: float) -> list[int]:
    """Rows that carry an ECG: not flat (peak-to-peak >= 0.05 mV) and not mostly clipped."""
    out = []
    for i, row in enumerate(x):
        ptp = float(np.ptp(row))
        if ptp < 0.05:
            continue
        med = float(np.median(row))
        clipped = 0.0
        for ext in (row.max(), row.min()):
            if abs(ext - med) > 1e-6:  # a flat baseline at the extreme is not clipping
                clipped += float(np.mean(np.abs(row - ext) < 1e-6))
        if clipped > 0.05:
            continue
        out.append(i)
    return out


def noise_mask(x: np.ndarray, fs: float) -> np.ndarray:
    """Boolean (n_leads, n_samples): True inside noise bursts (sustained high slope energy).

    Slope energy is measured in 250-ms windows; a burst is 3+ consecutive windows above
    4x the lead's median window (a QRS fills at most ~1-2 windows).
    """
    n_leads, n = x.shape
    win = max(1, int(round(0.25 * fs)))
    n_win = n // win
    mask = np.zeros((n_leads, n), dtype=bool)
    if n_win < 6:
        return mask
    d = np.diff(x, axis=1, prepend=x[:, :1]) * fs
    e = np.sqrt(np.mean(d[:, : n_win * win].reshape(n_leads, n_win, win) ** 2, axis=2))
    ref = np.median(e, axis=1, keepdims=True) + 1e-9
    high = e > 4.0 * ref
    for row in range(n_leads):
        lab, k = ndimage.label(high[row])
        for sl in ndimage.find_objects(lab):
            s = sl[0]
            if s.stop - s.start >= 3:
                mask[row, s.start * win: min(n, s.stop * win)] = True
    return mask


def _detect_lead(y: np.ndarray, fs: float, method: str) -> np.ndarray:
    import neurokit2 as nk

    try:
        peaks = nk.ecg_findpeaks(y, sampling_rate=int(round(fs)), method=method)["ECG_R_Peaks"]
    except Exception:  # detectors raise on odd inputs (too few peaks...): no detections
        return np.zeros(0, dtype=int)
    peaks = np.asarray(peaks, dtype=int)
    if peaks.size == 0:
        return peaks
    # snap to the largest absolute deflection within ±40 ms (detectors differ in fiducial)
    w = int(round(0.04 * fs))
    out = []
    for p in peaks:
        a, b = max(0, p - w), min(len(y), p + w + 1)
        out.append(a + int(np.argmax(np.abs(y[a:b]))))
    return np.unique(np.asarray(out, dtype=int))


def slope_energy(x: np.ndarray, fs: float, rows: list[int] | None = None) -> np.ndarray:
    """Spatial velocity: RMS over leads of the first derivative (mV/s), smoothed over 8 ms."""
    xs = x if rows is None else x[rows]
    d = np.gradient(xs, axis=1) * fs
    sv = np.sqrt(np.mean(d**2, axis=0))
    k = max(1, int(round(0.008 * fs)))
    return ndimage.uniform_filter1d(sv, k)


def detect_beats(x: np.ndarray, fs: float, method: str = DETECTOR) -> Beats:
    """Multi-lead consensus beats on a cleaned (baseline-free, low-passed) signal.

    ``x``: (n_leads, n_samples) in mV. Returns `Beats` with fiducials at the peak of the
    spatial velocity of the usable leads (lead-independent, good for template alignment).
    """
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    notes: list[str] = []
    rows = usable_leads(x, fs)
    empty = Beats(np.zeros(0, dtype=int), np.zeros(0, dtype=int), rows,
                  np.zeros(0, dtype=bool), notes)
    if not rows:
        notes.append("no usable lead (flat or clipped)")
        return empty
    noisy = noise_mask(x, fs)
    dets: list[tuple[int, int]] = []
    for r in rows:
        for p in _detect_lead(x[r], fs, method):
            if not noisy[r, p]:
                dets.append((int(p), r))
    if not dets:
        notes.append("no R peaks detected")
        return empty
    dets.sort()
    clusters: list[list[tuple[int, int]]] = []
    win = CLUSTER_MS / 1000 * fs
    for p, r in dets:
        if clusters and p - clusters[-1][0][0] <= win:
            clusters[-1].append((p, r))
        else:
            clusters.append([(p, r)])
    # leads that are clean around a cluster vote; a beat needs a majority of them
    cand, support = [], []
    for cl in clusters:
        t = int(np.median([p for p, _ in cl]))
        voters = [r for r in rows if not noisy[r, t]]
        seen = len({r for _, r in cl})
        need = max(1, int(np.ceil(0.5 * len(voters)))) if voters else len(rows) + 1
        if seen >= need:
            cand.append(t)
            support.append(seen)
    if not cand:
        notes.append("no beat confirmed by a majority of leads")
        return empty
    sv = slope_energy(x, fs, rows)
    w = int(round(0.05 * fs))
    fid = []
    for t in cand:
        a, b = max(0, t - w), min(len(sv), t + w + 1)
        fid.append(a + int(np.argmax(sv[a:b])))
    fid_arr = np.asarray(fid)
    sup_arr = np.asarray(support)
    fid_arr, sup_arr = _drop_weak(fid_arr, sup_arr, sv, fs, notes)
    any_clean = ~np.all(noisy[rows], axis=0)
    beat_noisy = ~any_clean[fid_arr] if fid_arr.size else np.zeros(0, dtype=bool)
    return Beats(fid_arr, sup_arr, rows, beat_noisy, notes)


def _drop_weak(fid: np.ndarray, sup: np.ndarray, sv: np.ndarray, fs: float,
               notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Drop candidates too close to a stronger beat, and slow (T-wave-like) early candidates."""
    order = np.argsort(fid)
    fid, sup = fid[order], sup[order]
    fid, keep_idx = np.unique(fid, return_index=True)
    sup = sup[keep_idx]
    if fid.size < 2:
        return fid, sup
    peak = sv[fid]
    # refractory: of two candidates closer than REFRACTORY_MS keep the steeper one
    keep = np.ones(fid.size, dtype=bool)
    ref = REFRACTORY_MS / 1000 * fs
    for i in range(1, fid.size):
        j = i - 1
        while j >= 0 and not keep[j]:
            j -= 1
        if j >= 0 and fid[i] - fid[j] < ref:
            if peak[i] > peak[j]:
                keep[j] = False
            else:
                keep[i] = False
    n_ref = int((~keep).sum())
    fid, sup, peak = fid[keep], sup[keep], peak[keep]
    # T waves / artefacts: much less slope than the typical beat and early after a beat
    if fid.size >= 3:
        med = float(np.median(peak))
        rr = np.diff(fid)
        med_rr = float(np.median(rr))
        weak = np.zeros(fid.size, dtype=bool)
        for i in range(1, fid.size):
            if peak[i] < 0.3 * med and fid[i] - fid[i - 1] < 0.7 * med_rr:
                weak[i] = True
        if weak.any():
            notes.append(f"dropped {int(weak.sum())} low-slope early detection(s) (T wave?)")
            fid, sup = fid[~weak], sup[~weak]
    if n_ref:
        notes.append(f"dropped {n_ref} detection(s) within {REFRACTORY_MS:g} ms of a beat")
    return fid, sup
