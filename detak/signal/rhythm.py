"""Beat-level rhythm features of one recording: RR series, ectopy, irregularity, P waves, f waves.

`rhythm_features` works on the recording's one beat train (the quality check's
`detak.signal.beat_train.find_beats`, or a `Beats` handed in) and on the existing delineation
(`detak.signal.delineation`: median-beat templates, P/QRS/T bounds, per-beat P matching, the
beat-locked pacing-spike detector). It finds no beats of its own. Kiosk-safe: numpy and scipy.

Every feature has a unit (`UNITS`) and is either a number or None with the reason in
``reasons`` (too few beats, too short, rejected by the quality check, no P wave in the median
beat, ...). Features (formulas and references in the functions named):

* per beat (``beats``): time, RR before/after, QRS width, QRS correlation with the dominant
  template, prematurity, compensatory pause, class ``N`` (dominant), ``S`` (supraventricular
  premature), ``V`` (ventricular ectopic), ``P`` (paced), P wave matched and PR — `classify_beats`;
  a beat is paced when the pacing-spike detector (`detak.signal.delineation.pacing_spikes`)
  finds a spike before it, or `detak.signal.beats.despike` removed one there (>= 250 Hz), and
  the record's beats carry spikes (beat-locked in the median beat, or before >= 30 % of them);
* counts: ``pvc_count``, ``pac_count``, ``paced_count``, per 10 s, ``ectopy_pattern``
  (bigeminy / trigeminy) — `ectopy_pattern`; ``premature_cycle_variability`` (do the
  premature beats keep a fixed coupling and return cycle, as ectopic beats do, or do they vary
  as AF's short cycles do) — `premature_cycle_variability`;
* irregularity of RR: ``rr_irregularity`` (median |dRR| / median RR), ``nrmssd``
  (`nrmssd`), ``cosen`` (`cosen`), ``prr_rel`` (`prr_rel`), ``petrenas_irregularity``
  (`petrenas_irregularity`, after ectopy filtering and bigeminy suppression);
* P waves: ``p_wave_template`` (a P wave at a fixed PR in the median beat), ``p_present_fraction``
  (dominant beats whose own P segment matches the template's), ``p_peak_jitter_ms``;
* PR across beats: ``pr_median_ms``, ``pr_range_ms``, ``pr_trend_ms_per_beat``;
* atrial activity between beats: ``fwave_peak_hz``, ``fwave_band_ratio``,
  ``fwave_rms_uv`` (`fwave_spectrum`, on the T-Q segments after average-beat subtraction);
* pauses: ``longest_rr_ms``, ``pause_2s_count``, ``pause_3s_count``.

>>> from detak.data.samples import load_sample
>>> f = rhythm_features(load_sample("ludb-1"))       # sinus bradycardia, 46 bpm
>>> d = f.to_dict()
>>> d["values"]["pause_3s_count"], d["values"]["nrmssd"] < 0.1, d["units"]["nrmssd"]
(0, True, '1')
>>> d["values"]["p_wave_template"], d["values"]["pvc_count"]
(True, 0)
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from detak.data.recording import Recording
from detak.signal.beat_train import INTERNAL_FS, prepare
from detak.signal.beats import Beats, detect_beats, ventricular_rr_ms
from detak.signal.delineation import (
    IRREGULAR_RR,
    P_JITTER_IRREGULAR_MS,
    P_JITTER_MS,
    Templates,
    beat_shifts,
    build_templates,
    combine_leads,
    delineate_lead,
    global_qrs,
    own_qrs,
    p_jitter,
    pacing_spikes,
)

__all__ = ["UNITS", "RhythmFeatures", "RhythmError", "classify_beats", "cosen",
           "ectopy_pattern", "fwave_spectrum", "nrmssd", "petrenas_irregularity",
           "premature_cycle_variability", "prr_rel", "rhythm_features"]

MIN_BEATS = 5            # RR features need at least 4 RR intervals
MIN_RR_COSEN = 8         # COSEn needs at least 8 RR intervals (7 pairs)
PREMATURE = 0.8          # coupling RR below this x the reference RR: premature (Lippman 1994)
COMPENSATORY = 0.9       # coupling + next RR >= 2 x this x reference: compensatory pause
WIDE_QRS_MS = 120.0      # QRS >= 120 ms: wide (Surawicz et al., AHA/ACCF/HRS 2009)
WIDER_MS = 30.0          # ... and this much wider than the dominant QRS
SAME_SHAPE = 0.9         # QRS correlation with the dominant template: same morphology
OTHER_SHAPE = 0.8        # below this: a different morphology (ventricular origin)
P_MATCH_CORR = 0.6       # a beat's P segment matches the template's P at this correlation
P_SEARCH_MS = 60.0       # ... within this lag (PR may change beat to beat: Mobitz I)
PRR_REL_X = 8.0          # pRRx%: x as a percentage of the local mean RR
PETRENAS_WINDOW = 8      # beats in the sliding window of the Petrenas-style irregularity
FWAVE_BAND_HZ = (4.0, 9.0)   # atrial fibrillatory waves (240-540 /min), Bollmann 2006
FWAVE_REF_BAND_HZ = (1.0, 25.0)
MIN_TQ_S = 1.0           # T-Q time needed for the f-wave spectrum
PAUSE_S = (2.0, 3.0)

UNITS: dict[str, str] = {
    "n_beats": "beats", "duration_s": "s", "mean_rr_ms": "ms", "ventricular_rate_bpm": "bpm",
    "longest_rr_ms": "ms", "pause_2s_count": "count", "pause_3s_count": "count",
    "pvc_count": "count", "pac_count": "count", "paced_count": "count",
    "pvc_per_10s": "per 10 s", "pac_per_10s": "per 10 s", "ectopy_pattern": "label",
    "rr_irregularity": "1", "nrmssd": "1", "cosen": "1", "prr_rel": "fraction",
    "petrenas_irregularity": "1", "p_wave_template": "bool", "p_present_fraction": "fraction",
    "p_peak_jitter_ms": "ms", "pr_median_ms": "ms", "pr_range_ms": "ms",
    "pr_trend_ms_per_beat": "ms/beat", "fwave_peak_hz": "Hz", "fwave_band_ratio": "fraction",
    "fwave_rms_uv": "µV", "tq_seconds": "s", "pacing_spikes": "bool",
    "premature_cycle_variability": "1",
}


class RhythmError(ValueError):
    """The input cannot be analysed at all (not a signal, no sample rate, NaN samples)."""


@dataclass
class RhythmFeatures:
    """Rhythm features (``values``, units in `UNITS`; None with the reason in ``reasons``),
    one dict per beat (``beats``) and notes on how they were found."""

    values: dict[str, Any]
    reasons: dict[str, str]
    beats: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``values``, ``units``, ``reasons``, ``beats``, ``notes``."""
        return {"values": {k: _json(v) for k, v in self.values.items()},
                "units": {k: UNITS[k] for k in self.values},
                "reasons": dict(self.reasons), "beats": [{k: _json(v) for k, v in b.items()}
                                                         for b in self.beats],
                "notes": list(self.notes)}


def _json(v: Any) -> Any:
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return None if not math.isfinite(float(v)) else round(float(v), 4)
    return v


def _null_all(reason: str, notes: list[str] | None = None) -> RhythmFeatures:
    return RhythmFeatures(dict.fromkeys(UNITS), dict.fromkeys(UNITS, reason), [], notes or [])


# --- irregularity measures ---------------------------------------------------------------

def nrmssd(rr_ms: np.ndarray) -> float | None:
    """Normalised RMSSD (unitless): ``sqrt(mean(dRR^2)) / mean(RR)`` over successive RR.

    Dash S, Chon KH, Lu S, Raeder EA. Automatic real time detection of atrial fibrillation.
    Ann Biomed Eng 2009;37:1701-9. None with fewer than 3 RR.

    >>> round(nrmssd(np.array([800.0, 600, 900, 700])), 3)
    0.317
    """
    rr = np.asarray(rr_ms, dtype=float)
    if rr.size < 3:
        return None
    return float(np.sqrt(np.mean(np.diff(rr) ** 2)) / np.mean(rr))


def prr_rel(rr_ms: np.ndarray, x_percent: float = PRR_REL_X) -> float | None:
    """pRRx% with x relative to the RR (fraction): the share of successive pairs whose relative
    difference ``|2 (RR_i - RR_{i-1}) / (RR_i + RR_{i-1})|`` exceeds ``x_percent`` / 100.

    Vollmer M. A robust, simple and reliable measure of heart rate variability using relative
    RR intervals. Computing in Cardiology 2015;42. None with fewer than 3 RR.

    >>> prr_rel(np.array([800.0, 810, 700, 820]))
    0.6667
    """
    rr = np.asarray(rr_ms, dtype=float)
    if rr.size < 3:
        return None
    rel = 2.0 * np.diff(rr) / (rr[1:] + rr[:-1])
    return round(float(np.mean(np.abs(rel) > x_percent / 100.0)), 4)


def _sampen_counts(x: np.ndarray, r: float) -> tuple[int, int]:
    """(B, A): pairs of templates of length 1 and 2 within ``r`` (Chebyshev), no self-match."""
    n = x.size
    b = a = 0
    for i in range(n - 1):
        d1 = np.abs(x[i + 1: n - 1] - x[i])
        close = d1 <= r
        b += int(close.sum())
        d2 = np.abs(x[i + 2: n] - x[i + 1])
        a += int((close & (d2 <= r)).sum())
    return b, a


def cosen(rr_ms: np.ndarray, r0_ms: float = 30.0, min_matches: int = 5,
          r_max_ms: float = 250.0) -> tuple[float | None, str | None]:
    """Coefficient of sample entropy (unitless) and the reason when it is None.

    ``COSEn = SampEn(m=1, r) + ln(2 r) - ln(mean RR)``, r and RR in seconds, where
    ``SampEn = -ln(A / B)``: B pairs of RR within r, A of them whose next RR is within r too.
    r starts at ``r0_ms`` (30 ms) and grows by 10 ms until A >= ``min_matches`` (a SampEn
    from fewer matches is too uncertain), as Lake DE, Moorman JR. Accurate estimation of
    entropy in very short physiological time series: the problem of atrial fibrillation
    detection in implanted ventricular devices. Am J Physiol Heart Circ Physiol
    2011;300:H319-25. AF: about -1 and above; sinus rhythm: well below.

    >>> v, why = cosen(np.array([800.0, 805, 798, 802, 801, 799, 803, 800, 802]))
    >>> v < -2, why
    (True, None)
    """
    rr = np.asarray(rr_ms, dtype=float) / 1000.0
    if rr.size < MIN_RR_COSEN:
        return None, f"COSEn needs >= {MIN_RR_COSEN} RR intervals ({rr.size})"
    r = r0_ms / 1000.0
    while r <= r_max_ms / 1000.0 + 1e-9:
        b, a = _sampen_counts(rr, r)
        if a >= min_matches and b > 0:
            return float(-math.log(a / b) + math.log(2 * r) - math.log(float(np.mean(rr)))), None
        r += 0.01
    return None, f"fewer than {min_matches} RR matches within {r_max_ms:g} ms"


def petrenas_irregularity(rr_ms: np.ndarray, ectopic: np.ndarray | None = None,
                          window: int = PETRENAS_WINDOW) -> float | None:
    """RR irregularity over short sliding windows after ectopy filtering and bigeminy
    suppression (unitless), after Petrenas A, Marozas V, Sornmo L. Low-complexity detection of
    atrial fibrillation in continuous long-term monitoring. Comput Biol Med 2015;65:184-91.

    1. ectopy filtering: RR intervals ending or starting at an ectopic beat (``ectopic``, per
       RR: True when either of its beats is ectopic) are left out;
    2. bigeminy suppression: when the remaining RR alternate short/long (successive differences
       > 10 % of the median and of alternating sign for >= 3/4 of them), each RR is replaced by
       the mean of it and its neighbour (the mean cycle is regular in bigeminy);
    3. per window of ``window`` beats: ``median |dRR| / mean RR``; the result is the median over
       the windows (one window when the record has fewer beats).

    A simplification of the published detector (no signal fusion, no exponential RR trend).
    None with fewer than 4 RR left.

    >>> petrenas_irregularity(np.array([560.0, 1140] * 5))        # bigeminy: regular cycle
    0.0
    >>> petrenas_irregularity(np.array([600.0, 900, 1000, 700, 650, 950, 800]))
    0.2812
    """
    rr = np.asarray(rr_ms, dtype=float)
    if ectopic is not None and np.size(ectopic) == rr.size:
        rr = rr[~np.asarray(ectopic, dtype=bool)]
    if rr.size < 4:
        return None
    d = np.diff(rr)
    med = float(np.median(rr))
    big = np.abs(d) > 0.1 * med
    alt = (d[:-1] * d[1:] < 0) & big[:-1] & big[1:]
    if alt.size and alt.mean() >= 0.75:
        rr = (rr[:-1] + rr[1:]) / 2.0
    w = max(2, window - 1)          # RR per window of `window` beats
    wins = [rr] if rr.size <= w else [rr[i: i + w] for i in range(rr.size - w + 1)]
    vals = [float(np.median(np.abs(np.diff(s))) / np.mean(s)) for s in wins if s.size >= 3]
    return round(float(np.median(vals)), 4) if vals else None


# --- ectopy ------------------------------------------------------------------------------

def classify_beats(rr_before: np.ndarray, rr_after: np.ndarray, qrs_ms: np.ndarray,
                   corr: np.ndarray, paced: np.ndarray, ref_rr_ms: float,
                   dominant_qrs_ms: float | None) -> list[dict[str, Any]]:
    """Per beat: prematurity, compensatory pause and a class.

    * premature: ``rr_before < PREMATURE x local`` (a coupling interval 20 % short; Lippman
      N, Stein KM, Lerman BB. Am J Physiol 1994;267:H411-8), ``local`` the median of
      ``ref_rr_ms``, the RR before the previous beat and the RR after this beat (in bigeminy
      the coupling interval is judged against the long cycle around it);
    * compensatory pause: ``rr_before + rr_after >= 2 x COMPENSATORY x ref_rr_ms`` (a full pause
      after a ventricular premature beat, a reset, shorter one after an atrial one);
    * class ``P`` when a pacing spike precedes the QRS; ``V`` (ventricular) when the QRS is of
      another shape (correlation with the dominant template < ``OTHER_SHAPE``) or wide (>=
      ``WIDE_QRS_MS`` and ``WIDER_MS`` wider than the dominant QRS) and the beat is premature or
      followed by a compensatory pause, or both of another shape and wide whatever its timing;
      ``S`` (supraventricular) when premature with a QRS like the dominant one (correlation
      >= ``SAME_SHAPE``, not wider); else ``N``.

    ``rr_*``: ms (NaN where unknown); ``qrs_ms``: per-beat QRS width (NaN unknown); ``corr``:
    QRS correlation with the dominant template; ``paced``: bool per beat.

    >>> nan = float("nan")
    >>> out = classify_beats(np.array([nan, 800, 500, 1100]), np.array([800, 500, 1100, nan]),
    ...                      np.array([90.0, 90, 150, 90]), np.array([1.0, 1, 0.4, 1]),
    ...                      np.zeros(4, bool), 800.0, 90.0)
    >>> [b["class"] for b in out], out[2]["compensatory"]
    (['N', 'N', 'V', 'N'], True)
    """
    out = []
    for i in range(len(rr_before)):
        rb, ra = float(rr_before[i]), float(rr_after[i])
        near = [r for r in (ref_rr_ms, rr_before[i - 1] if i else np.nan, ra)
                if math.isfinite(r)]
        local = float(np.median(near))
        premature = bool(rb < PREMATURE * local) if math.isfinite(rb) else None
        comp = (bool(rb + ra >= 2 * COMPENSATORY * ref_rr_ms)
                if math.isfinite(rb) and math.isfinite(ra) and premature else None)
        q, c = float(qrs_ms[i]), float(corr[i])
        wide = (math.isfinite(q) and q >= WIDE_QRS_MS
                and (dominant_qrs_ms is None or q >= dominant_qrs_ms + WIDER_MS))
        other = math.isfinite(c) and c < OTHER_SHAPE
        if paced[i]:
            cls = "P"
        elif (other and wide) or ((other or wide) and (premature or comp)):
            cls = "V"
        elif premature and (not math.isfinite(c) or c >= SAME_SHAPE) and not wide:
            cls = "S"
        else:
            cls = "N"
        out.append({"premature": premature, "compensatory": comp, "class": cls})
    return out


def ectopy_pattern(classes: Sequence[str]) -> str | None:
    """``"bigeminy"`` when every other beat is ectopic (``S`` or ``V``) over >= 3 cycles,
    ``"trigeminy"`` when every third beat is over >= 3 cycles; else None.

    >>> ectopy_pattern(list("NVNVNVN")), ectopy_pattern(list("NNSNNSNNS")), ectopy_pattern("NNNN")
    ('bigeminy', 'trigeminy', None)
    """
    e = "".join("E" if c in "SV" else "N" for c in classes)
    for name, unit in (("bigeminy", "NE"), ("trigeminy", "NNE")):
        if unit * 3 in e or (unit[1:] + unit[0]) * 3 in e:
            return name
    return None


MIN_PREMATURE_CYCLES = 3   # premature beats needed to judge whether their cycles repeat


def premature_cycle_variability(beats: Sequence[Any]) -> tuple[float | None, str | None]:
    """Whether the premature beats keep a fixed timing, as ectopic beats do (unitless; small
    = fixed), and the reason when None.

    For the beats flagged premature (``premature`` True in the per-beat dicts of
    `RhythmFeatures.beats`: coupling RR < 80 % of the local RR), two series: the coupling
    intervals (``rr_before_ms``) and the cycles around them (``rr_before_ms + rr_after_ms``).
    For each, ``median |successive difference| / mean``; the result is the smaller of the two.
    Ectopic beats keep one of them fixed: a fixed coupling interval to the beat before (the
    rule for extrasystoles), or, when the coupling varies, a fixed cycle because a fully
    compensatory pause leaves the sinus rhythm undisturbed (coupling + pause = two sinus
    cycles; Surawicz B, Knilans TK. Chou's Electrocardiography in Clinical Practice, 6th ed.
    Saunders 2008, ch. 16-17). In AF whose short cycles happen to alternate with long ones
    (the "bigeminy" an 8-beat AF detector must suppress: Petrenas et al. 2015, see
    `petrenas_irregularity`) both vary. None with fewer than `MIN_PREMATURE_CYCLES` premature
    beats whose intervals are known. ``beats`` may be the dicts of a cached
    ``to_dict()["beats"]``.

    >>> def beats(pairs):
    ...     return [{"premature": True, "rr_before_ms": c, "rr_after_ms": r} for c, r in pairs]
    >>> premature_cycle_variability(beats([(520, 1080), (530, 1070), (515, 1085), (525, 1075)]))
    (0.0, None)
    >>> premature_cycle_variability(beats([(520, 900), (600, 650), (480, 1000), (610, 700)]))
    (0.1245, None)
    >>> premature_cycle_variability(beats([(520, 900)]))
    (None, 'fewer than 3 premature beats with known intervals (1)')
    """
    pairs = [(b.get("rr_before_ms"), b.get("rr_after_ms")) for b in beats
             if b.get("premature")]

    def known(x: Any) -> bool:
        return x is not None and math.isfinite(x)

    coupling = np.array([c for c, _ in pairs if known(c)], dtype=float)
    cycle = np.array([c + r for c, r in pairs if known(c) and known(r)], dtype=float)
    out = [float(np.median(np.abs(np.diff(x)))) / float(np.mean(x))
           for x in (coupling, cycle) if x.size >= MIN_PREMATURE_CYCLES]
    if not out:
        return None, (f"fewer than {MIN_PREMATURE_CYCLES} premature beats with known "
                      f"intervals ({len(pairs)})")
    return round(min(out), 4), None


# --- atrial activity ---------------------------------------------------------------------

def fwave_spectrum(segments: Sequence[np.ndarray], fs: float) -> dict[str, float] | None:
    """Spectrum of the atrial activity left in T-Q segments (after average-beat subtraction).

    Each segment (mV) is detrended, Hann-windowed and zero-padded to 4 s; the power spectra
    are summed weighted by length. Returns ``peak_hz`` (the largest power in 3-12 Hz),
    ``band_ratio`` (power in 4-9 Hz / power in 1-25 Hz) and ``rms_uv`` (RMS of the segments in
    4-9 Hz, µV). AF's fibrillatory waves have their dominant frequency in 4-9 Hz (Bollmann A,
    et al. Analysis of surface electrocardiograms in atrial fibrillation: techniques, research,
    and clinical applications. Europace 2006;8:911-26); in sinus rhythm the T-Q segment is
    flat. None when no segment is at least 0.2 s long.

    >>> fs = 500.0; t = np.arange(300) / fs
    >>> s = fwave_spectrum([0.05 * np.sin(2 * np.pi * 6 * t + k) for k in range(5)], fs)
    >>> s["peak_hz"], s["band_ratio"] > 0.8
    (6.0, True)
    """
    from scipy import signal as sps

    nfft = int(4 * fs)
    f = np.fft.rfftfreq(nfft, 1 / fs)
    total = np.zeros(f.size)
    band = np.zeros(0)
    used = 0
    for s in segments:
        s = np.asarray(s, dtype=float)
        if s.size < int(0.2 * fs) or s.size > nfft:
            continue
        s = sps.detrend(s)
        total += np.abs(np.fft.rfft(s * np.hanning(s.size), nfft)) ** 2
        band = np.r_[band, s]
        used += 1
    if not used:
        return None
    lo, hi = FWAVE_BAND_HZ
    r0, r1 = FWAVE_REF_BAND_HZ
    ref = total[(f >= r0) & (f <= r1)].sum()
    search = (f >= 3.0) & (f <= 12.0)
    bp = sps.butter(2, [lo, hi], btype="band", fs=fs, output="sos")
    rms = float(np.sqrt(np.mean(sps.sosfiltfilt(bp, band, padlen=min(band.size - 1, 50)) ** 2)))
    return {"peak_hz": float(f[search][np.argmax(total[search])]),
            "band_ratio": float(total[(f >= lo) & (f <= hi)].sum() / ref) if ref > 0 else 0.0,
            "rms_uv": rms * 1000.0}


def _tq_segments(x: np.ndarray, tmpl: np.ndarray, t0: int, fid: np.ndarray,
                 dominant: np.ndarray, t_end_ms: float, qrs_on_ms: float,
                 fs: float) -> list[np.ndarray]:
    """T-Q segments of one lead with the dominant template subtracted (average beat
    subtraction): from the T end of a dominant beat to 20 ms before the next QRS onset; the
    P region of the next beat and the T tail of the previous are cancelled by the template."""
    ms = fs / 1000.0
    out = []
    for k in range(fid.size - 1):
        if not (dominant[k] and dominant[k + 1]):
            continue
        a = int(fid[k] + round(t_end_ms * ms))
        b = int(fid[k + 1] + round((qrs_on_ms - 20.0) * ms))
        if b - a < int(0.2 * fs):
            continue
        seg = x[a:b].copy()
        idx = np.arange(a, b)
        for f in (fid[k], fid[k + 1]):
            j = idx - f + t0
            ok = (j >= 0) & (j < tmpl.size)
            seg[ok] -= tmpl[j[ok]]
        out.append(seg)
    return out


# --- the entry point ---------------------------------------------------------------------

def _as_recording(source: Recording | np.ndarray, fs: float | None,
                  leads: Sequence[str] | None) -> Recording:
    if isinstance(source, Recording):
        return source
    arr = np.asarray(source)
    if arr.ndim not in (1, 2) or arr.size == 0 or not np.issubdtype(arr.dtype, np.number):
        raise RhythmError("signal must be a non-empty numeric array (n_samples,) or "
                          f"(n_leads, n_samples), got shape {arr.shape} dtype {arr.dtype}")
    if fs is None:
        raise RhythmError("a plain array needs its sample rate: rhythm_features(x, fs=...)")
    arr = np.atleast_2d(arr).astype(np.float32)
    names = list(leads) if leads is not None else (["II"] if arr.shape[0] == 1 else
                                                  [f"lead{i}" for i in range(arr.shape[0])])
    return Recording(arr, float(fs), names)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    m = np.isfinite(a) & np.isfinite(b)
    if m.sum() < 10:
        return float("nan")
    u, v = a[m] - a[m].mean(), b[m] - b[m].mean()
    den = math.sqrt(float((u * u).sum() * (v * v).sum()))
    return float((u * v).sum() / den) if den > 0 else float("nan")


def _atrial_lead(leads: list[str], rows: list[int], ref: int | None) -> int:
    """V1 (the best surface view of atrial activity), else II, else the reference lead."""
    from detak.data.leads import equivalent_standard_lead

    for want in ("V1", "II"):
        for r in rows:
            if equivalent_standard_lead(leads[r]) == want:
                return r
    return ref if ref is not None else rows[0]


def rhythm_features(source: Recording | np.ndarray, fs: float | None = None,
                    leads: Sequence[str] | None = None, *, beats: Beats | None = None,
                    check_quality: bool = True) -> RhythmFeatures:
    """Rhythm features of a recording (mV) or of a plain array with its ``fs`` (and lead
    names; a single row is taken as lead II).

    ``beats``: the recording's beat train if already found (e.g. ``QualityReport.beats``);
    otherwise the quality check finds it (``check_quality``; a rejected recording gets every
    feature None with the quality reasons) or, with ``check_quality=False``, the same
    detector runs on the cleaned signal. Raises `RhythmError` for input that is not a signal
    (wrong shape, no sample rate, NaN samples).
    """
    rec = _as_recording(source, fs, leads)
    if not rec.fs or not math.isfinite(float(rec.fs)) or rec.fs < 50:
        raise RhythmError(f"sample rate {rec.fs} Hz is missing or below 50 Hz")
    if not np.all(np.isfinite(rec.signal)):
        raise RhythmError("the signal has NaN or infinite samples (fill or flag the gaps)")
    names = [str(n) for n in rec.leads]
    notes: list[str] = []
    if beats is None and check_quality:
        from detak.signal.quality import assess_quality

        q = assess_quality(rec)
        if q.rejected:
            return _null_all("recording rejected by the quality check: "
                             + "; ".join(q.reasons[:3]))
        beats = q.beats
    x, _, xb, xs = prepare(np.asarray(rec.signal, dtype=np.float64), float(rec.fs))
    fs_i = INTERNAL_FS
    if beats is None:
        beats = detect_beats(x, fs_i, raw=xb, names=names)
    elif beats.fs != fs_i:
        beats = dataclasses.replace(beats, samples=beats.samples_at(fs_i), fs=fs_i,
                                    fine_s=beats.fine_s)
    notes += list(beats.notes)
    return _features(rec, x, xb, xs, beats, names, notes)


def _rr_series(beats: Beats) -> tuple[np.ndarray, np.ndarray]:
    """(RR in ms between consecutive beats, True where the interval is usable)."""
    s = beats.samples
    rr = (np.diff(beats.fine_s) * 1000.0 if beats.fine_s.size == s.size
          else np.diff(s) / beats.fs * 1000.0)
    ok = (~beats.interval_noisy if beats.interval_noisy.size == rr.size
          else ~(beats.noisy[1:] | beats.noisy[:-1]))
    return rr, ok


def _features(rec: Recording, x: np.ndarray, xb: np.ndarray, xs: np.ndarray, beats: Beats,
              names: list[str], notes: list[str]) -> RhythmFeatures:
    fs = INTERNAL_FS
    v: dict[str, Any] = dict.fromkeys(UNITS)
    why: dict[str, str] = {}
    n = int(beats.samples.size)
    dur = rec.n_samples / float(rec.fs)
    v["n_beats"], v["duration_s"] = n, dur
    if n < MIN_BEATS:
        reason = f"too few beats ({n} < {MIN_BEATS})" + (
            f": {'; '.join(beats.notes)}" if beats.notes else "")
        out = _null_all(reason, notes)
        out.values.update(n_beats=n, duration_s=dur)
        for k in ("n_beats", "duration_s"):
            out.reasons.pop(k, None)
        return out
    rr, ok = _rr_series(beats)
    rr_ok = rr[ok]
    ref = ventricular_rr_ms(beats) or float(np.median(rr_ok if rr_ok.size else rr))
    v["mean_rr_ms"] = float(np.mean(rr_ok)) if rr_ok.size else None
    v["ventricular_rate_bpm"] = 60000.0 / ref
    v["longest_rr_ms"] = float(rr_ok.max()) if rr_ok.size else None
    v["pause_2s_count"] = int((rr_ok > PAUSE_S[0] * 1000).sum())
    v["pause_3s_count"] = int((rr_ok > PAUSE_S[1] * 1000).sum())

    # templates, QRS widths and correlations, pacing spikes (existing delineation)
    rows = beats.trusted_leads or beats.usable_leads
    tm = build_templates(x, beats.samples, fs, rows)
    fid = tm.fiducials
    q = int(round(0.08 * fs))
    qrs_ep = tm.epochs[rows][:, :, tm.t0 - q: tm.t0 + q]          # (L, B, 2q)
    rr_b = np.r_[np.nan, np.where(ok, rr, np.nan)]
    rr_a = np.r_[np.where(ok, rr, np.nan), np.nan]
    not_premature = ~(rr_b < PREMATURE * ref)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        dom_tmpl = np.nanmedian(qrs_ep[:, not_premature if not_premature.sum() >= 2 else
                                       slice(None), :], axis=1)
    corr = np.array([_corr(qrs_ep[:, b, :].ravel(), dom_tmpl.ravel()) for b in range(n)])
    qrs_glob = global_qrs(tm, rows)
    dom_qrs = None if qrs_glob is None else qrs_glob[1] - qrs_glob[0]
    widths = np.full(n, np.nan)
    paced = np.zeros(n, dtype=bool)
    pre = tm.t0
    from detak.signal.delineation import _epochs

    raw_ep = _epochs(xs[rows], fid, pre, tm.data.shape[1] - pre)
    # spikes `despike` took out before beat detection (fs >= 250 Hz): where xs and x differ
    cut = np.max(np.abs(xs[rows] - xb[rows]), axis=0)
    lo, hi = int(round(0.3 * fs)), int(round(0.005 * fs))
    cut_paced = np.zeros(n, dtype=bool)
    for b in range(n):
        w = own_qrs(tm, rows, b)
        if w is not None and w[0] < -10.0 < 10.0 < w[1]:
            widths[b] = w[1] - w[0]
        e = raw_ep[:, b, :]
        if np.all(np.isfinite(e[:, pre - int(0.3 * fs): pre + int(0.05 * fs)])):
            paced[b] = bool(pacing_spikes(e, fs, pre))
        seg = cut[max(0, fid[b] - lo): max(0, fid[b] - hi)]
        cut_paced[b] = bool(seg.size and seg.max() >= 0.3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        med_raw = np.nanmedian(raw_ep[:, tm.used, :], axis=1)
    # a spike in one beat's epoch alone is often noise: single-beat detections count only
    # when the median beat has a beat-locked spike, or despike removed spikes before >= 30 %
    # of the beats
    v["pacing_spikes"] = bool(pacing_spikes(np.where(np.isfinite(med_raw), med_raw, 0.0),
                                            fs, pre)) or bool(cut_paced.sum() >= max(3, 0.3 * n))
    paced = (paced | cut_paced) if v["pacing_spikes"] else np.zeros(n, dtype=bool)
    cls = classify_beats(rr_b, rr_a, widths, corr, paced, ref, dom_qrs)
    labels = [c["class"] for c in cls]
    ectopic_beat = np.array([c in "SV" for c in labels])
    ect_rr = ectopic_beat[1:] | ectopic_beat[:-1]
    v["pvc_count"] = labels.count("V")
    v["paced_count"] = labels.count("P")
    v["pvc_per_10s"] = v["pvc_count"] / dur * 10.0
    v["ectopy_pattern"] = ectopy_pattern(labels)
    if v["ectopy_pattern"] is None:
        why["ectopy_pattern"] = "no bigeminal or trigeminal pattern"

    # irregularity
    if rr_ok.size < MIN_BEATS - 1:
        r = f"too few usable RR intervals ({rr_ok.size} < {MIN_BEATS - 1})"
        for k in ("rr_irregularity", "nrmssd", "cosen", "prr_rel", "petrenas_irregularity"):
            why[k] = r
    else:
        v["rr_irregularity"] = float(np.median(np.abs(np.diff(rr_ok))) / np.median(rr_ok))
        v["nrmssd"] = nrmssd(rr_ok)
        v["prr_rel"] = prr_rel(rr_ok)
        v["cosen"], r = cosen(rr_ok)
        if r:
            why["cosen"] = r
        v["petrenas_irregularity"] = petrenas_irregularity(rr_ok, ect_rr[ok])
        if v["petrenas_irregularity"] is None:
            why["petrenas_irregularity"] = "fewer than 4 RR intervals between non-ectopic beats"
    # PACs: prematurity is only defined against a regular underlying rhythm
    base = rr[ok & ~ect_rr]
    base_irr = (float(np.median(np.abs(np.diff(base))) / np.median(base))
                if base.size >= 3 else None)
    if base_irr is None and v["ectopy_pattern"] is not None:
        # every (other, third) interval touches an ectopic beat: the cycle's regularity
        base_irr = petrenas_irregularity(rr_ok)
    if base_irr is None or base_irr >= IRREGULAR_RR:
        v["pac_count"] = None
        why["pac_count"] = why["pac_per_10s"] = (
            "underlying rhythm irregular (median |dRR| / RR "
            + ("unknown" if base_irr is None else f"{base_irr:.2f}")
            + f" >= {IRREGULAR_RR:g}): premature beats cannot be told from the rhythm")
        for c in cls:
            if c["class"] == "S":
                c["class"] = "N"
    else:
        v["pac_count"] = labels.count("S")
        v["pac_per_10s"] = v["pac_count"] / dur * 10.0

    # P waves and PR (delineation of the dominant template; per-beat P matching)
    _p_waves(tm, x, rows, names, qrs_glob, ref, v, why, cls, beats)
    # atrial activity in T-Q segments
    _fwaves(tm, x, rows, names, beats, qrs_glob, v, why, ref)

    per_beat = []
    for b in range(n):
        per_beat.append({"time_s": float(fid[b]) / fs,
                         "rr_before_ms": None if not math.isfinite(rr_b[b]) else rr_b[b],
                         "rr_after_ms": None if not math.isfinite(rr_a[b]) else rr_a[b],
                         "qrs_ms": None if not math.isfinite(widths[b]) else widths[b],
                         "qrs_corr": None if not math.isfinite(corr[b]) else corr[b],
                         **cls[b]})
    v["premature_cycle_variability"], r = premature_cycle_variability(per_beat)
    if r:
        why["premature_cycle_variability"] = r
    for k, val in v.items():
        if val is None and k not in why:
            why[k] = "not measured"
    return RhythmFeatures(v, {k: r for k, r in why.items() if v.get(k) is None}, per_beat,
                          notes)


def _p_waves(tm: Templates, x: np.ndarray, rows: list[int], names: list[str],
             qrs: tuple[float, float] | None, ref: float, v: dict[str, Any],
             why: dict[str, str], cls: list[dict[str, Any]], beats: Beats) -> None:
    """P wave in the dominant template (delineation + the fixed-PR jitter test the interval
    measurement uses), the share of dominant beats whose P segment matches it, and PR per
    beat (template PR minus the beat's P lag)."""
    from detak.signal.intervals import rr_irregularity

    keys = ("p_wave_template", "p_present_fraction", "p_peak_jitter_ms", "pr_median_ms",
            "pr_range_ms", "pr_trend_ms_per_beat")
    if qrs is None:
        for k in keys:
            why[k] = "no QRS complex found in the median beat"
        return
    lw = {names[r]: delineate_lead(tm.data[r], tm.fs, tm.t0, qrs, ref) for r in rows}
    scores = sorted(((abs(w.p_amp), p_jitter(tm, r, w.p_peak_neg, w.p_amp))
                     for r, w in zip(rows, lw.values(), strict=True)
                     if w.p_peak_neg is not None and w.p_amp is not None), reverse=True)
    glob = combine_leads(lw)
    for b in cls:
        b["p_wave"] = None
        b["pr_ms"] = None
    if not scores or glob.get("p_on") is None or glob.get("p_off") is None:
        v["p_wave_template"], v["p_present_fraction"] = False, 0.0
        for k in keys[2:]:
            why[k] = "no P wave in the median beat"
        return
    jit = float(np.median([j for _, j in scores[:3]]))
    v["p_peak_jitter_ms"] = jit if math.isfinite(jit) else None
    irr = rr_irregularity(beats.samples)
    limit = P_JITTER_IRREGULAR_MS if irr >= IRREGULAR_RR else P_JITTER_MS
    fixed = math.isfinite(jit) and jit < limit
    v["p_wave_template"] = fixed
    p_on, p_off = float(glob["p_on"]), float(glob["p_off"])
    shifts = beat_shifts(tm, rows, (p_on - 20.0, p_off + 20.0), P_SEARCH_MS,
                         min_corr=P_MATCH_CORR)
    dom = tm.used
    matched = np.isfinite(shifts) & dom
    v["p_present_fraction"] = float(matched.sum() / max(1, dom.sum())) if fixed else 0.0
    if not fixed:
        for k in keys[3:]:
            why[k] = f"no P wave at a fixed PR (P peak scatter {jit:.0f} ms >= {limit:g} ms)"
        return
    pr0 = qrs[0] - p_on
    pr = np.where(matched, pr0 - shifts, np.nan)
    for b, c in enumerate(cls):
        c["p_wave"] = bool(matched[b]) if dom[b] else None
        c["pr_ms"] = float(pr[b]) if math.isfinite(pr[b]) else None
    got = pr[np.isfinite(pr)]
    if got.size < 3:
        for k in keys[3:]:
            why[k] = f"P wave matched in {got.size} beat(s) (< 3)"
        return
    v["pr_median_ms"] = float(np.median(got))
    v["pr_range_ms"] = float(got.max() - got.min())
    idx = np.flatnonzero(np.isfinite(pr))
    v["pr_trend_ms_per_beat"] = float(np.polyfit(idx, got, 1)[0])


def _fwaves(tm: Templates, x: np.ndarray, rows: list[int], names: list[str], beats: Beats,
            qrs: tuple[float, float] | None, v: dict[str, Any], why: dict[str, str],
            ref: float) -> None:
    keys = ("fwave_peak_hz", "fwave_band_ratio", "fwave_rms_uv", "tq_seconds")
    if qrs is None:
        for k in keys:
            why[k] = "no QRS complex found in the median beat"
        return
    row = _atrial_lead(names, rows, beats.reference_lead)
    w = delineate_lead(tm.data[row], tm.fs, tm.t0, qrs, ref)
    t_end = w.t_off if w.t_off is not None else qrs[1] + 0.45 * math.sqrt(ref / 1000.0) * 1000
    t_end += 40.0        # clear of the T wave's tail
    segs = _tq_segments(x[row], tm.data[row], tm.t0, tm.fiducials, tm.used, t_end, qrs[0],
                        tm.fs)
    total = sum(s.size for s in segs) / tm.fs
    v["tq_seconds"] = total
    if total < MIN_TQ_S:
        for k in keys[:3]:
            why[k] = (f"T-Q segments of dominant beats too short in {names[row]} "
                      f"({total:.1f} s < {MIN_TQ_S:g} s): fast rate or few beats")
        return
    s = fwave_spectrum(segs, tm.fs)
    if s is None:
        for k in keys[:3]:
            why[k] = "no T-Q segment of at least 0.2 s"
        return
    v["fwave_peak_hz"], v["fwave_band_ratio"], v["fwave_rms_uv"] = (
        s["peak_hz"], s["band_ratio"], s["rms_uv"])
