"""Beat detection that survives one bad lead: per-lead R-peak detection and multi-lead consensus.

Each usable lead gets its own neurokit2 R-peak detector run. When the leads disagree on the
number of beats, a lead of clearly poorer QRS-to-noise ratio than the best lead's is left out
(`choose_leads`, two leads); detections are clustered across the remaining leads (within
``CLUSTER_MS``) and a beat is kept when a majority of them saw it (of two leads: the leads
holding at least half of their QRS-to-noise weight, so not a beat seen only by the much poorer
lead). Every QRS
counts, ectopic or paced: the rate is the ventricular rate. Then:
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
    ``usable_leads`` (row indices that carry an ECG), ``noisy`` (beat lies in a noise burst),
    and ``notes``."""

    samples: np.ndarray
    support: np.ndarray
    usable_leads: list[int]
    noisy: np.ndarray
    notes: list[str] = field(default_factory=list)
    #: per interval between consecutive beats: a noise burst in every usable lead (or samples
    #: marked not valid) lies in it (a beat there may be missing: the interval may span two RRs)
    interval_noisy: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    #: rows whose detections formed the beats (all usable leads unless they disagreed on the
    #: beat count; then those of the best QRS-to-noise ratio, see `choose_leads`)
    trusted_leads: list[int] = field(default_factory=list)
    #: per row: QRS-to-noise ratio (`lead_snr`), NaN for rows that carry no ECG
    snr: np.ndarray = field(default_factory=lambda: np.zeros(0))
    #: sample rate of ``samples`` (Hz)
    fs: float = float("nan")
    #: beat times (s) refined below one sample (parabola through the spatial-velocity peak and
    #: its neighbours), for the RR; empty: the RR comes from ``samples``
    fine_s: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def times_s(self) -> np.ndarray:
        """Beat times in seconds from the first sample."""
        return np.asarray(self.samples, dtype=np.float64) / self.fs

    def samples_at(self, fs: float) -> np.ndarray:
        """Beat samples at another sample rate ``fs`` (rounded)."""
        return np.round(self.times_s * fs).astype(int)

    @property
    def reference_lead(self) -> int | None:
        """The trusted row with the best QRS-to-noise ratio (None without beats)."""
        rows = [r for r in self.trusted_leads if r < self.snr.size and np.isfinite(self.snr[r])]
        if not rows or self.samples.size == 0:
            return None
        return max(rows, key=lambda r: float(self.snr[r]))


def ventricular_rr_ms(beats: Beats) -> float | None:
    """The recording's RR (ms) for its heart rate: the ventricular rate, every QRS counts
    (sinus, ectopic or paced); None with fewer than 2 beats. ``hr_bpm`` = 60000 / this.

    With ``RR_i`` the intervals between consecutive beats (leaving out those across a noise
    burst or invalid samples that are out of rhythm, `Beats.interval_noisy`),
    ``d_i = RR_{i+1} - RR_i`` and ``P_i = (RR_i + RR_{i+1}) / 2`` the means of consecutive
    pairs of them (both left in)::

        RR = median(P)    if the RR alternates: for >= 3/4 of the successive d_i, d_{i+1}
                          both |d| > 10 % of median(RR) and d_i * d_{i+1} < 0
        RR = median(RR)   otherwise

    When the RR alternates short/long
    (bigeminy: coupling interval / compensatory pause; alternans), the pair means are steady
    and their median is the mean cycle, whatever beat the window starts or ends with; the
    median RR would be the short one, the long one or their mean depending on the parity of
    the beat count. Otherwise the median RR is kept: one missed or extra beat disturbs one or
    two RRs but two or three pair means. The mean cycle is the rate heart-rate meters are
    tested for on bigeminy (IEC 60601-2-27:2011, 201.7.9.2.9.101 b) 4), ANSI/AAMI EC13
    4.1.2.1 e): ventricular bigeminy at 80 bpm reads 80 bpm, not 40 or 120).

    >>> import numpy as np
    >>> def train(rr_ms):   # 500 Hz beat train with these RRs
    ...     s = np.concatenate([[0], np.cumsum(rr_ms)]) // 2
    ...     return Beats(s, np.ones(s.size, int), [0], np.zeros(s.size, bool), fs=500.0)
    >>> ventricular_rr_ms(train([560, 1140] * 5 + [560]))   # bigeminy, 12 beats
    850.0
    >>> ventricular_rr_ms(train([560, 1140] * 6))           # one beat more
    850.0
    >>> ventricular_rr_ms(train([800, 800, 810, 800, 800]))  # regular: the median RR
    800.0
    """
    s = beats.samples
    if s.size < 2:
        return None
    rr = (np.diff(beats.fine_s) * 1000.0 if beats.fine_s.size == s.size
          else np.diff(s) / beats.fs * 1000.0)
    if beats.interval_noisy.size == rr.size:   # out-of-rhythm intervals across a burst
        ok = ~beats.interval_noisy
    else:
        ok = ~(beats.noisy[1:] | beats.noisy[:-1])
    if not ok.any():
        ok = np.ones(rr.size, dtype=bool)
    med = float(np.median(rr[ok]))
    both = ok[:-1] & ok[1:]
    if not both.any():
        return med
    d = np.diff(rr)
    big = (np.abs(d) > 0.1 * med) & both
    alternating = (d[:-1] * d[1:] < 0) & big[:-1] & big[1:]
    if alternating.size == 0 or alternating.mean() < 0.75:
        return med
    return float(np.median(((rr[:-1] + rr[1:]) / 2.0)[both]))


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


NOISE_WINDOW_S = 0.25      # noise bursts are judged in windows of this length
HF_BURST_REL = 0.05        # high-band RMS above this fraction of the lead's QRS amplitude ...
HF_BURST_MEDIAN = 3.0      # ... and this many times the lead's median window is a burst window


def _runs(high: np.ndarray, min_len: int) -> list[slice]:
    lab, _ = ndimage.label(high)
    return [sl[0] for sl in ndimage.find_objects(lab) if sl[0].stop - sl[0].start >= min_len]


def noise_mask(x: np.ndarray, fs: float, raw: np.ndarray | None = None) -> np.ndarray:
    """Boolean (n_leads, n_samples): True inside noise bursts.

    Two tests in windows of `NOISE_WINDOW_S`, either marks a burst:

    - slope energy of ``x`` (the low-passed signal) above 4x the lead's median window for 3+
      consecutive windows (a QRS fills at most ~1-2 windows);
    - when ``raw`` (the same signal before the low-pass) is given: the energy the low-pass
      removed (``raw - x``, above ~40 Hz, where an ECG has little and muscle noise has most of
      its power) above `HF_BURST_REL` of the lead's QRS amplitude and `HF_BURST_MEDIAN` x the
      lead's median window, for 2+ consecutive windows. A lead noisy from start to end is not
      a burst (its median is high): it is left to the quality check.

    >>> import numpy as np
    >>> fs = 500.0
    >>> t = np.arange(5000) / fs
    >>> ecg = sum(np.exp(-((t - c) / 0.01) ** 2) for c in np.arange(0.4, 10, 0.8))[None, :]
    >>> noise = np.where((t > 4) & (t < 5), np.sin(2 * np.pi * 90 * t), 0.0)[None, :]
    >>> from detak.signal.filters import lowpass
    >>> m = noise_mask(lowpass(ecg + noise, fs), fs, raw=ecg + noise)
    >>> bool(m[0, 2250]), bool(m[0, 1000])
    (True, False)
    """
    n_leads, n = x.shape
    win = max(1, int(round(NOISE_WINDOW_S * fs)))
    n_win = n // win
    mask = np.zeros((n_leads, n), dtype=bool)
    if n_win < 6:
        return mask
    d = np.diff(x, axis=1, prepend=x[:, :1]) * fs
    e = np.sqrt(np.mean(d[:, : n_win * win].reshape(n_leads, n_win, win) ** 2, axis=2))
    ref = np.median(e, axis=1, keepdims=True) + 1e-9
    high = e > 4.0 * ref
    runs = [(row, sl) for row in range(n_leads) for sl in _runs(high[row], 3)]
    if raw is not None and raw.shape == x.shape:
        hf = raw - x
        h = np.sqrt(np.mean(hf[:, : n_win * win].reshape(n_leads, n_win, win) ** 2, axis=2))
        amp = np.percentile(x, 99.5, axis=1) - np.percentile(x, 0.5, axis=1)
        h_high = (h > HF_BURST_REL * amp[:, None]) & (
            h > HF_BURST_MEDIAN * (np.median(h, axis=1, keepdims=True) + 1e-9))
        runs += [(row, sl) for row in range(n_leads) for sl in _runs(h_high[row], 2)]
    for row, s in runs:
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


TRUST_SNR_RATIO = 0.6   # leads within this share of the best QRS-to-noise ratio are trusted
COUNT_TOLERANCE = 0.1   # leads agree on the beat count within this share (at least 1 beat)


def lead_snr(x: np.ndarray, fs: float) -> np.ndarray:
    """QRS-to-noise ratio per lead of a cleaned signal: the 98th percentile of the smoothed
    (8 ms) absolute slope over its median. QRS complexes fill the top percentiles of a lead's
    slope; noise, T and P waves its median. Needs no beat detection. Clean leads: about 10-180
    (PTB-XL upsampled from 100 Hz: 9-40; LUDB at 500 Hz: 18-180); a chest lead scaled to a
    0.17 mV QRS with noise, or with in-band noise of half its QRS: 4-11.

    >>> import numpy as np
    >>> fs = 500.0
    >>> t = np.arange(5000) / fs
    >>> ecg = sum(np.exp(-((t - c) / 0.01) ** 2) for c in np.arange(0.4, 10, 0.8))
    >>> noise = 0.3 * np.sin(2 * np.pi * 7 * t)
    >>> s = lead_snr(np.vstack([ecg, 0.2 * ecg + noise]), fs)
    >>> bool(s[0] > 5 * s[1])
    True
    """
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    d = np.abs(np.gradient(x, axis=1)) * fs
    sv = ndimage.uniform_filter1d(d, max(1, int(round(0.008 * fs))), axis=1)
    return np.percentile(sv, 98, axis=1) / (np.median(sv, axis=1) + 1e-9)


def choose_leads(counts: dict[int, int], snr: np.ndarray, names: list[str] | None = None
                 ) -> tuple[list[int], str | None]:
    """The rows whose detections make the beat train, and a note when some are left out.

    With three leads or more every lead votes: a beat needs a majority, which one poor lead
    cannot give (and leaving leads out of 12 changes the median beats: LUDB interval
    accuracy got worse). With two leads a majority is one lead, so there the best lead is the
    one with the highest QRS-to-noise ratio (`lead_snr`), and the other lead is left out only
    when its beat count disagrees with the best lead's (by more than
    `COUNT_TOLERANCE`, at least one beat) and its ratio is below `TRUST_SNR_RATIO` of the
    best: a poor lead (low amplitude, noise) that sees T waves or noise as beats must not
    double the heart rate, while comparable leads that disagree all stay (one may miss beats
    the other sees: every QRS counts).

    >>> import numpy as np
    >>> choose_leads({0: 12, 1: 25}, np.array([58.0, 10.0]), ["II", "V1"])[0]
    [0]
    >>> choose_leads({0: 12, 1: 12}, np.array([58.0, 10.0]), ["II", "V1"])
    ([0, 1], None)
    """
    rows = sorted(counts)
    if len(rows) != 2:      # three leads or more: a majority vote keeps out one poor lead
        return rows, None
    best = max(rows, key=lambda r: float(snr[r]))
    tol = max(1, int(round(COUNT_TOLERANCE * counts[best])))
    trusted = [r for r in rows if abs(counts[r] - counts[best]) <= tol
               or snr[r] >= TRUST_SNR_RATIO * snr[best]]
    if len(trusted) == len(rows):
        return rows, None
    name = (lambda r: names[r]) if names else (lambda r: f"row {r}")
    left = [r for r in rows if r not in trusted]
    note = ("leads disagree on the beat count (" + ", ".join(
        f"{name(r)}: {counts[r]}" for r in rows) + "); beats taken from "
        + ", ".join(name(r) for r in trusted) + f", which agree with {name(best)}, the lead "
        "with the best QRS-to-noise ratio (" + ", ".join(
            f"{name(r)} {snr[r]:.0f}" for r in [best, *left]) + ")")
    return trusted, note


def detect_beats(x: np.ndarray, fs: float, method: str = DETECTOR,
                 raw: np.ndarray | None = None, *, names: list[str] | None = None,
                 exclude: tuple[int, ...] | list[int] = (),
                 valid: np.ndarray | None = None) -> Beats:
    """Multi-lead consensus beats on a cleaned (baseline-free, low-passed) signal.

    ``x``: (n_leads, n_samples) in mV; ``raw``: the same before the low-pass, if available
    (finds muscle-noise bursts, see `noise_mask`); ``names``: lead names for the notes;
    ``exclude``: rows not to use (e.g. rejected by the quality check); ``valid``: boolean
    (n_samples,), False where samples are missing or unusable (e.g. a filled gap): no beat is
    taken within 100 ms of such a sample, and an interval across one is not used for RR.
    Two leads that disagree on the beat count: see `choose_leads`. Returns `Beats` with fiducials
    at the peak of the spatial velocity of the trusted leads (lead-independent, good for
    template alignment).
    """
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    notes: list[str] = []
    usable = usable_leads(x, fs)
    rows = [r for r in usable if r not in set(exclude)] or usable
    snr = np.full(x.shape[0], np.nan)
    if usable:
        snr[usable] = lead_snr(x[usable], fs)
    empty = Beats(np.zeros(0, dtype=int), np.zeros(0, dtype=int), usable,
                  np.zeros(0, dtype=bool), notes, trusted_leads=[], snr=snr, fs=fs)
    if not rows:
        notes.append("no usable lead (flat or clipped)")
        return empty
    if raw is not None:
        raw = np.atleast_2d(np.asarray(raw, dtype=np.float64))
    noisy = noise_mask(x, fs, raw)
    bad = np.zeros(x.shape[1], dtype=bool)
    if valid is not None:
        bad = ~np.asarray(valid, dtype=bool)
        bad = ndimage.binary_dilation(bad, np.ones(2 * int(round(0.1 * fs)) + 1, bool)) \
            if bad.any() else bad
    per_lead: dict[int, list[int]] = {}
    in_noise: list[int] = []
    for r in rows:
        per_lead[r] = []
        for p in _detect_lead(x[r], fs, method):
            if bad[p]:
                continue
            if not noisy[r, p]:
                per_lead[r].append(int(p))
            else:
                in_noise.append(int(p))
    trusted, note = choose_leads({r: len(v) for r, v in per_lead.items()}, snr, names)
    if note:
        notes.append(note)
    empty.trusted_leads = trusted
    dets = sorted((p, r) for r in trusted for p in per_lead[r])
    if not dets:
        notes.append("no R peaks detected")
        return empty
    clusters: list[list[tuple[int, int]]] = []
    win = CLUSTER_MS / 1000 * fs
    for p, r in dets:
        if clusters and p - clusters[-1][0][0] <= win:
            clusters[-1].append((p, r))
        else:
            clusters.append([(p, r)])
    # leads that are clean around a cluster vote; a beat needs a majority of them; of two
    # leads, with the QRS-to-noise ratio as weight: a beat seen only by a much poorer lead
    # is not a beat
    weight = {r: float(snr[r]) if np.isfinite(snr[r]) and snr[r] > 0 else 1.0 for r in trusted}
    cand, support = [], []
    for cl in clusters:
        t = int(np.median([p for p, _ in cl]))
        voters = [r for r in trusted if not noisy[r, t]]
        seen = {r for _, r in cl}
        if not voters:
            continue
        if len(voters) > 2:      # three leads or more: a majority of them
            keep = len(seen) >= int(np.ceil(0.5 * len(voters)))
        else:
            keep = sum(weight[r] for r in seen) >= 0.5 * sum(weight[r] for r in voters) - 1e-9
        if keep:
            cand.append(t)
            support.append(len(seen))
    if len(trusted) == 2 and cand:
        cand, support = _unechoed(cand, support, clusters, trusted, x, fs, notes, names)
    if not cand:
        notes.append("no beat confirmed by a majority of leads")
        return empty
    sv = slope_energy(x, fs, trusted)
    w = int(round(0.05 * fs))
    fid = []
    for t in cand:
        a, b = max(0, t - w), min(len(sv), t + w + 1)
        fid.append(a + int(np.argmax(sv[a:b])))
    fid_arr = np.asarray(fid)
    sup_arr = np.asarray(support)
    fid_arr, sup_arr = _drop_weak(fid_arr, sup_arr, sv, fs, notes, x[trusted])
    fid_arr, sup_arr = _drop_t_like(fid_arr, sup_arr, x[trusted], sv, fs, notes)
    in_noise = [p for p in in_noise if not bad[p]]
    fid_arr, sup_arr = _search_back(fid_arr, sup_arr, in_noise, noisy, trusted, x, sv, fs,
                                    notes)
    all_noisy = np.all(noisy[trusted], axis=0)
    beat_noisy = all_noisy[fid_arr] if fid_arr.size else np.zeros(0, dtype=bool)
    gaps = _suspect_gaps(fid_arr, all_noisy)
    if bad.any() and fid_arr.size >= 2:   # an interval across an invalid stretch is not an RR
        gaps = gaps | _gaps_in_noise(fid_arr, bad)
    return Beats(fid_arr, sup_arr, usable, beat_noisy, notes, gaps, trusted, snr, fs,
                 refine_peaks(sv, fid_arr) / fs)


def refine_peaks(y: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Sub-sample positions (float samples) of the local maxima of ``y`` at ``at``: the vertex
    of the parabola through each sample and its two neighbours (within ±0.5 sample; the
    sample itself at the edges or where ``y`` is not a peak there). RR from whole samples at
    500 Hz moves in 2-ms steps; at 360 Hz resampled to 500 Hz the peak sample jitters by one.

    >>> import numpy as np
    >>> y = -((np.arange(10) - 4.3) ** 2)
    >>> refine_peaks(y, np.array([4])).round(2).tolist()
    [4.3]
    """
    at = np.asarray(at, dtype=int)
    out = at.astype(np.float64)
    ok = (at > 0) & (at < y.size - 1)
    i = at[ok]
    y0, y1, y2 = y[i - 1], y[i], y[i + 1]
    den = y0 - 2.0 * y1 + y2
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.where(den < 0, 0.5 * (y0 - y2) / den, 0.0)
    out[ok] = i + np.clip(np.nan_to_num(d), -0.5, 0.5)
    return out


WEAK_SLOPE = 0.3        # a detection with less peak slope than this x the median is weak
SMALL_AMPLITUDE = 0.35  # a detection this small (x the median QRS amplitude) ...
SMALL_SLOPE = 0.6       # ... and with less peak slope than this x the median is no QRS
ECTOPIC_AMPLITUDE = 0.4  # a weak late detection at least this x the previous beat's amplitude
#                          is a wide (ectopic) QRS: kept


def qrs_amplitude(x: np.ndarray, at: np.ndarray, fs: float) -> np.ndarray:
    """Peak-to-peak (mV) within ±50 ms of each sample in ``at``, RMS over the rows of ``x``.

    >>> import numpy as np
    >>> x = np.zeros((2, 1000)); x[:, 500] = [1.0, 0.5]
    >>> qrs_amplitude(x, np.array([500, 100]), 500.0).round(3).tolist()
    [0.791, 0.0]
    """
    w = int(round(0.05 * fs))
    n = x.shape[1]
    return np.array([float(np.sqrt(np.mean(np.ptp(x[:, max(0, s - w):min(n, s + w + 1)],
                                                  axis=1) ** 2)))
                     for s in np.asarray(at, dtype=int)])


ECHO_AMPLITUDE = 0.35   # of two leads, a beat one lead saw shows in the other at least this
#                         x that lead's amplitude at the beats both saw


def _unechoed(cand: list[int], support: list[int], clusters: list[list[tuple[int, int]]],
              rows: list[int], x: np.ndarray, fs: float, notes: list[str],
              names: list[str] | None) -> tuple[list[int], list[int]]:
    """Two trusted leads: drop a beat only one lead detected when the other lead shows no
    deflection there (under `ECHO_AMPLITUDE` x its amplitude at the beats both leads
    detected). A QRS one lead's detector missed still deflects that lead; noise or a T wave
    that one lead's detector took for a beat does not deflect the other lead. Needs at least
    3 beats both leads saw (else nothing to compare with)."""
    seen = {int(np.median([p for p, _ in cl])): {r for _, r in cl} for cl in clusters}
    both = [t for t in cand if len(seen.get(t, ())) >= 2]
    if len(both) < 3:
        return cand, support
    ref = {r: float(np.median(qrs_amplitude(x[[r]], np.asarray(both), fs))) for r in rows}
    keep_c, keep_s, dropped = [], [], []
    for t, sp in zip(cand, support, strict=True):
        saw = seen.get(t, set(rows))
        other = [r for r in rows if r not in saw]
        if len(other) == 1:
            o = other[0]
            if qrs_amplitude(x[[o]], np.asarray([t]), fs)[0] < ECHO_AMPLITUDE * ref[o]:
                dropped.append(o)
                continue
        keep_c.append(t)
        keep_s.append(sp)
    if dropped:
        name = (lambda r: names[r]) if names else (lambda r: f"row {r}")
        notes.append(f"dropped {len(dropped)} detection(s) of one lead that the other lead "
                     "(" + ", ".join(sorted({name(r) for r in dropped})) + ") shows no "
                     "deflection at")
    return keep_c, keep_s


def _drop_weak(fid: np.ndarray, sup: np.ndarray, sv: np.ndarray, fs: float,
               notes: list[str], x: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """Drop candidates too close to a stronger beat, slow (T-wave-like) early candidates, and
    (with ``x``, the trusted rows) weak detections far smaller than the beats wherever they lie
    (baseline wiggles a single-lead detector takes for beats). A weak detection later than
    a T wave could lie (`T_DELAY_S`) and at least `ECTOPIC_AMPLITUDE` x the previous beat's
    amplitude is kept: a wide ectopic QRS has little slope in some leads but every QRS
    counts."""
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
        # the rhythm of the strong detections: weak ones (P waves of a 2:1 AV block, T waves)
        # would halve it and hide their own earliness
        strong = fid[peak >= 0.3 * med]
        rr = np.diff(strong) if strong.size >= 3 else np.diff(fid)
        med_rr = float(np.median(rr))
        amp = None if x is None else qrs_amplitude(x, fid, fs)
        late = T_DELAY_S[1] * fs
        weak = np.zeros(fid.size, dtype=bool)
        for i in range(1, fid.size):
            if peak[i] < WEAK_SLOPE * med and fid[i] - fid[i - 1] < 0.7 * med_rr:
                ectopic = (amp is not None and fid[i] - fid[i - 1] > late
                           and amp[i] >= ECTOPIC_AMPLITUDE * amp[i - 1])
                weak[i] = not ectopic
        # the first detection has no beat before it: judged against the beat after it
        # (filter transients at the start of a recording)
        if peak[0] < WEAK_SLOPE * med and fid[1] - fid[0] < 0.7 * med_rr:
            weak[0] = True
        if weak.any():
            notes.append(f"dropped {int(weak.sum())} low-slope early detection(s) (T wave?)")
        small = np.zeros(fid.size, dtype=bool)
        if amp is not None:
            small = (peak < SMALL_SLOPE * med) & (amp < SMALL_AMPLITUDE * np.median(amp)) & ~weak
            if small.any():
                notes.append(f"dropped {int(small.sum())} low-slope detection(s) under "
                             f"{SMALL_AMPLITUDE:g}x the median QRS amplitude (baseline)")
        fid, sup = fid[~(weak | small)], sup[~(weak | small)]
    if n_ref:
        notes.append(f"dropped {n_ref} detection(s) within {REFRACTORY_MS:g} ms of a beat")
    return fid, sup


T_DELAY_S = (0.12, 0.42)   # a T wave's steepest slope follows its QRS within this delay
T_SHARPNESS_RATIO = 0.7    # and is this much blunter (slope per amplitude) than the QRS
T_MAX_SLOPE_RATIO = 1.35   # and not steeper than its QRS by this (PTB-XL bigeminy ectopics:
#                            1.46-4.6x the beat before them; LUDB T waves x3: <= 1.18x)


def sharpness(x: np.ndarray, sv: np.ndarray, at: np.ndarray, fs: float) -> np.ndarray:
    """Slope per amplitude (1/s) of the deflection at each sample in ``at``: the peak spatial
    velocity within ±40 ms over the spatial peak-to-peak within ±100 ms. Amplitude-free, so a
    T wave scaled up stays as blunt as it was; a QRS is 1.5-3x sharper than its T wave.

    >>> import numpy as np
    >>> fs = 500.0
    >>> t = np.arange(1000) / fs
    >>> narrow = np.exp(-((t - 0.5) / 0.01) ** 2); wide = np.exp(-((t - 1.2) / 0.05) ** 2)
    >>> x = (narrow + 3 * np.exp(-((t - 1.5) / 0.05) ** 2))[None, :]
    >>> sv = slope_energy(x, fs)
    >>> s = sharpness(x, sv, np.array([250, 750]), fs)
    >>> bool(s[0] > 3 * s[1])
    True
    """
    w1, w2 = int(round(0.04 * fs)), int(round(0.1 * fs))
    n = x.shape[1]
    out = np.zeros(len(at))
    for i, s in enumerate(np.asarray(at, dtype=int)):
        a1, b1 = max(0, s - w1), min(n, s + w1 + 1)
        a2, b2 = max(0, s - w2), min(n, s + w2 + 1)
        ptp = float(np.sqrt(np.mean(np.ptp(x[:, a2:b2], axis=1) ** 2)))
        out[i] = float(sv[a1:b1].max()) / max(ptp, 1e-9)
    return out


def _drop_t_like(fid: np.ndarray, sup: np.ndarray, x: np.ndarray, sv: np.ndarray, fs: float,
                 notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Drop T waves taken for beats (tall T waves, single leads): a detection that follows a
    beat within `T_DELAY_S` and is blunter than both neighbours by `T_SHARPNESS_RATIO`, when
    such detections recur at a steady delay (T waves follow every QRS at the same distance;
    an isolated premature wide beat does not recur like that). A detection steeper than the
    beat before it (`T_MAX_SLOPE_RATIO`) is not its T wave: repolarisation is slower than its
    own depolarisation, and in bigeminy the ectopic beats recur at a steady coupling interval
    and may be blunter (wider) but steeper and taller than the sinus beats."""
    if fid.size < 4:
        return fid, sup
    sh = sharpness(x, sv, fid, fs)
    lo, hi = T_DELAY_S[0] * fs, T_DELAY_S[1] * fs
    cand = np.zeros(fid.size, dtype=bool)
    delay = np.full(fid.size, np.nan)
    for i in range(1, fid.size):
        d = fid[i] - fid[i - 1]
        nxt = sh[i + 1] if i + 1 < fid.size else sh[i - 1]
        if lo <= d <= hi and sh[i] < T_SHARPNESS_RATIO * min(sh[i - 1], nxt) \
                and sv[fid[i]] < T_MAX_SLOPE_RATIO * sv[fid[i - 1]]:
            cand[i] = True
            delay[i] = d
    if cand.sum() < 2:
        return fid, sup
    # steady delay: the candidates' delays scatter little (T waves), not coupling intervals
    # of ectopic beats that happen to be blunt
    d = delay[cand]
    if float(np.median(np.abs(d - np.median(d)))) > 0.03 * fs:
        return fid, sup
    notes.append(f"dropped {int(cand.sum())} blunt detection(s) at a steady "
                 f"{np.median(d) / fs * 1000:.0f} ms after the QRS (T waves)")
    return fid[~cand], sup[~cand]


def _gaps_in_noise(fid: np.ndarray, all_noisy: np.ndarray) -> np.ndarray:
    """Per interval between consecutive beats: does a stretch noisy in every lead lie in it?"""
    if fid.size < 2:
        return np.zeros(0, dtype=bool)
    cum = np.concatenate([[0], np.cumsum(all_noisy)])
    return (cum[fid[1:] + 1] - cum[fid[:-1]]) > 0


def _suspect_gaps(fid: np.ndarray, all_noisy: np.ndarray) -> np.ndarray:
    """Intervals that cross a burst and are out of rhythm (> 1.5x or < 0.6x the median of the
    other intervals): a beat in the burst was missed or a noise spike counted."""
    gaps = _gaps_in_noise(fid, all_noisy)
    if not gaps.any() or gaps.all():
        return gaps
    rr = np.diff(fid)
    med = float(np.median(rr[~gaps]))
    return gaps & ((rr > 1.5 * med) | (rr < 0.6 * med))


SEARCH_BACK_MIN_RR = 0.6  # a beat found in noise lies >= this x the clean median RR from others
SEARCH_BACK_CORR = 0.7   # and look like the clean beats (correlation with their median)


def _search_back(fid: np.ndarray, sup: np.ndarray, in_noise: list[int], noisy: np.ndarray,
                 rows: list[int], x: np.ndarray, sv: np.ndarray, fs: float,
                 notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Recover beats hidden in noise bursts: a detection inside a burst is taken back only
    where the rhythm leaves room for a beat (in an interval that is too long, no other beat
    closer than `SEARCH_BACK_MIN_RR` x the median clean RR) and when it looks like the clean
    beats (`SEARCH_BACK_CORR`): noise spikes are not counted, the rhythm in a burst is not
    lost either."""
    if fid.size < 3 or not in_noise:
        return fid, sup
    any_noisy = np.any(noisy[rows], axis=0)
    gaps = _gaps_in_noise(fid, any_noisy)
    rr = np.diff(fid)
    clean = rr[~gaps]
    if clean.size < 2:
        return fid, sup
    med = float(np.median(clean))
    w = int(round(0.1 * fs))
    n = x.shape[1]
    xr = x[rows]
    good = [f for f in fid if w <= f < n - w and not any_noisy[f]]
    if len(good) < 2:
        return fid, sup
    tmpl = np.median(np.stack([xr[:, f - w: f + w + 1] for f in good]), axis=0).ravel()

    def corr(t: int) -> float:
        if t < w or t >= n - w:
            return -1.0
        seg = xr[:, t - w: t + w + 1].ravel()
        c = np.corrcoef(seg, tmpl)[0, 1]
        return float(c) if np.isfinite(c) else -1.0

    ws = int(round(0.05 * fs))
    cands = sorted({a + int(np.argmax(sv[a:b])) for p in in_noise
                    for a, b in [(max(0, p - ws), min(n, p + ws + 1))]})
    added: list[int] = []
    spans = [(int(fid[i]), int(fid[i + 1])) for i in np.flatnonzero(gaps & (rr > 1.5 * med))]
    inside = [c for c in cands if any(a < c < b for a, b in spans)]
    taken = list(fid)
    for sc, c in sorted(((corr(c), c) for c in inside), reverse=True):
        if sc < SEARCH_BACK_CORR:
            break
        if min(abs(c - t) for t in taken) >= SEARCH_BACK_MIN_RR * med:
            taken.append(c)
            added.append(c)
    if not added:
        return fid, sup
    notes.append(f"recovered {len(added)} beat(s) inside noise bursts (rhythm and shape)")
    order = np.argsort(np.r_[fid, added])
    return np.r_[fid, added][order], np.r_[sup, np.zeros(len(added), dtype=sup.dtype)][order]
