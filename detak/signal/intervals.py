"""ECG intervals (RR, PR, QRS, QT, QTc, ST, R/S, heart rate) from a `Recording`, any lead set.

`measure_intervals` returns `Intervals`; ``Intervals.to_dict()`` is the JSON contract of
``detak intervals``: overall values under ``rr_ms, pr_ms, qrs_ms, qt_ms, qtc_bazett_ms,
qtc_fridericia_ms, st_ms, rs_ratio, hr_bpm`` (numbers or null), ``per_lead`` (same keys per
standard lead name, each with its own ``reasons``), ``reasons`` (why each null overall value is
null) and extras (``n_beats``, ``method``, ``fs``, ``rs_lead``, ``notes``).

Method (each choice measured on LUDB odd-numbered records, see benchmarks/intervals_ludb.py):

1. pacing spikes removed, resampled to 500 Hz, 50/60 Hz notch where hum is present,
   baseline removed, 40 Hz low-pass;
2. beats: neurokit2 R-peak detector per lead, consensus of a majority of usable leads,
   refractory and T-wave rejection, noise bursts discounted (`detak.signal.beats`);
3. RR: the median beat-to-beat interval, or the median of the means of consecutive pairs of
   them when they alternate (bigeminy), HR = 60000 / RR (`beats.ventricular_rr_ms`);
4. templates (median beats of the dominant morphology, aligned by cross-correlation) delineated
   per lead; QRS bounds from the spatial velocity of all leads (`detak.signal.delineation`);
   paced beats (a spike at a fixed delay before each QRS in the unfiltered median beat): the
   spikes are cut out of every beat and the QRS onset is searched after the last spike;
5. values outside physiological bounds (`BOUNDS`) become null with a reason; the overall value is
   the median over leads (QRS: the multi-lead bounds; R/S: V1, else II, else the only lead).

>>> from detak.data.ludb import load_ludb
>>> iv = measure_intervals(load_ludb(2).recording)
>>> d = iv.to_dict(); sorted(d)[:4], 40 < d["hr_bpm"] < 200
(['fs', 'hr_bpm', 'method', 'n_beats'], True)
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from detak.data.gaps import (
    BEAT_WINDOW_S,
    QRS_WINDOW_S,
    beat_keep_mask,
    fill_gaps,
    gap_spans,
    rr_keep_mask,
)
from detak.data.leads import equivalent_standard_lead
from detak.data.recording import Recording
from detak.signal import filters
from detak.signal.beat_train import INTERNAL_FS, LOWPASS_HZ, prepare
from detak.signal.beats import Beats, detect_beats, ventricular_rr_ms
from detak.signal.delineation import (
    LeadWaves,
    Templates,
    build_templates,
    combine_leads,
    delineate_lead,
    global_qrs,
    lead_qrs,
    per_beat,
)

MIN_DURATION_S = 2.5
KEYS: tuple[str, ...] = ("rr_ms", "pr_ms", "qrs_ms", "qt_ms", "qtc_bazett_ms",
                         "qtc_fridericia_ms", "st_ms", "rs_ratio", "hr_bpm")
BOUNDS: dict[str, tuple[float, float]] = {
    "rr_ms": (240.0, 3000.0), "hr_bpm": (20.0, 250.0), "pr_ms": (60.0, 400.0),
    "qrs_ms": (40.0, 250.0), "qt_ms": (200.0, 700.0), "st_ms": (0.0, 500.0),
    "qtc_bazett_ms": (200.0, 800.0), "qtc_fridericia_ms": (200.0, 800.0),
}
METHOD = ("rodrigues2021 per-lead R peaks + multi-lead consensus; median-beat templates; "
          "spatial-velocity QRS bounds; tangent T end; knee P bounds")


class IntervalError(ValueError):
    """The recording cannot be measured at all (bad sample rate, NaN samples)."""


@dataclass
class Intervals:
    """Measured intervals. ``values``/``per_lead`` hold the contract keys (None = not measured,
    with the reason in ``reasons``/``per_lead_reasons``). ``boundaries`` holds wave positions
    in ms from each beat's fiducial ("global" and per lead) as found on the median beat;
    ``beat_boundaries`` the same per beat (lists aligned with ``beat_times_s``, the fiducials),
    refined on each beat (None where a beat has no such wave, e.g. the P of an ectopic beat)."""

    values: dict[str, float | None]
    reasons: dict[str, str]
    per_lead: dict[str, dict[str, float | None]] = field(default_factory=dict)
    per_lead_reasons: dict[str, dict[str, str]] = field(default_factory=dict)
    n_beats: int = 0
    fs: float = float("nan")
    rs_lead: str | None = None
    beat_times_s: list[float] = field(default_factory=list)
    boundaries: dict[str, dict[str, float | None]] = field(default_factory=dict)
    beat_boundaries: dict[str, dict[str, list[float | None]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    method: str = METHOD

    def __getitem__(self, key: str) -> float | None:
        return self.values[key]

    def to_dict(self) -> dict[str, Any]:
        """The ``detak intervals`` JSON contract (see module docstring)."""
        out: dict[str, Any] = {k: _round(self.values.get(k)) for k in KEYS}
        out["per_lead"] = {
            lead: {**{k: _round(v.get(k)) for k in KEYS},
                   "reasons": dict(self.per_lead_reasons.get(lead, {}))}
            for lead, v in self.per_lead.items()
        }
        out["reasons"] = dict(self.reasons)
        out["n_beats"] = self.n_beats
        out["fs"] = self.fs
        out["rs_lead"] = self.rs_lead
        out["notes"] = list(self.notes)
        out["method"] = self.method
        return out


def _round(v: float | None) -> float | None:
    if v is None or not math.isfinite(v):
        return None
    return round(float(v), 3 if abs(v) < 10 else 1)


def _empty(reason: str, fs: float, leads: list[str]) -> Intervals:
    reasons = {k: reason for k in KEYS}
    per = {lead: dict.fromkeys(KEYS) for lead in leads}
    per_r = {lead: dict(reasons) for lead in leads}
    return Intervals(dict.fromkeys(KEYS), reasons, per, per_r, 0, fs)


def _check(values: dict[str, float | None], reasons: dict[str, str]) -> None:
    for k, (lo, hi) in BOUNDS.items():
        v = values.get(k)
        if v is not None and not lo <= v <= hi:
            reasons[k] = f"implausible value {v:.0f} (outside {lo:g}-{hi:g}); not reported"
            values[k] = None


def _derived(values: dict[str, float | None], reasons: dict[str, str]) -> None:
    rr, qt = values.get("rr_ms"), values.get("qt_ms")
    for key, power in (("qtc_bazett_ms", 1 / 2), ("qtc_fridericia_ms", 1 / 3)):
        if rr is not None and qt is not None:
            values[key] = qt / (rr / 1000.0) ** power
        else:
            values[key] = None
            reasons[key] = "needs QT and RR: " + (reasons.get("qt_ms") if qt is None
                                                  else reasons.get("rr_ms", "RR missing"))


def _remove_paced_spikes(tmpl: Templates, xb: np.ndarray, xs: np.ndarray, rows: list[int],
                         fs: float, notes: list[str]) -> tuple[np.ndarray, list[float]] | None:
    """Beat-locked pacing spikes left after `despike` (small or smeared ones): found on the
    median of the unfiltered beats, cut out of every beat (linear interpolation) before the
    low-pass, so that the QRS onset is searched on the evoked QRS, not on the spike's remnant.
    ``xb``: baseline-free signal (after `despike`); ``xs``: the same without `despike`, where
    the spikes are looked for (large spikes that `despike` removed still mark paced beats).
    Returns the re-filtered signal and the spike times (ms from the fiducial), or None when
    the beats carry no pacing spike."""
    import warnings

    from detak.signal.delineation import SPIKE_PAD_MS, _epochs, pacing_spikes

    pre = tmpl.t0
    ep = _epochs(xs[rows], tmpl.fiducials, pre, tmpl.data.shape[1] - pre)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        raw = np.nanmedian(ep[:, tmpl.used, :], axis=1)
    spikes = pacing_spikes(np.where(np.isfinite(raw), raw, 0.0), fs, pre)
    if not spikes:
        return None
    ms = fs / 1000.0
    xc = xb.copy()
    n = xc.shape[1]
    for f in tmpl.fiducials:
        for s in spikes:
            a = int(f + round((s - SPIKE_PAD_MS[0]) * ms))
            b = int(f + round((s + SPIKE_PAD_MS[1]) * ms))
            if a < 0 or b >= n:
                continue
            w = np.linspace(0.0, 1.0, b - a + 1)
            xc[:, a: b + 1] = xc[:, a, None] * (1 - w) + xc[:, b, None] * w
    notes.append("pacing spike(s) " + ", ".join(f"{s:.0f}" for s in spikes)
                 + " ms before the QRS peak: QRS onset measured after the spike")
    return np.asarray(filters.lowpass(xc, fs, LOWPASS_HZ), dtype=np.float64), spikes


def _gap_spans(rec: Recording) -> list[tuple[int, int]]:
    """The flagged gaps (`detak.data.gaps.gap_spans`); NaN/inf outside them, or a malformed
    ``meta["gaps"]``, is an `IntervalError` naming it."""
    from detak.data.validation import RecordingError

    if np.all(np.isfinite(rec.signal)) and not rec.meta.get("gaps"):
        return []
    try:
        return gap_spans(rec)
    except RecordingError as err:
        raise IntervalError(str(err)) from None


def _drop_gap_beats(beats: Beats, spans: list[tuple[int, int]], rec_fs: float,
                    notes: list[str]) -> tuple[Beats, np.ndarray]:
    """(``beats`` (at `INTERNAL_FS`) without those whose QRS window touches a gap, the samples
    of the beats whose whole wave window is gap-free) (`detak.data.gaps.beat_keep_mask`): RR and
    heart rate from the first, PR/QRS/QT templates from the second. An interval across a gap or
    a left-out beat is marked ``interval_noisy``: it is not an RR."""
    k = INTERNAL_FS / rec_fs
    sp = [(int(a * k), int(math.ceil(b * k))) for a, b in spans]
    keep = beat_keep_mask(beats.samples, sp, INTERNAL_FS, QRS_WINDOW_S)
    idx = np.flatnonzero(keep)
    s = beats.samples[idx]
    across = np.zeros(max(idx.size - 1, 0), dtype=bool)
    if idx.size > 1:
        old = (beats.interval_noisy if beats.interval_noisy.size == beats.samples.size - 1
               else beats.noisy[1:] | beats.noisy[:-1])
        across = (np.diff(idx) != 1) | ~rr_keep_mask(s, sp) | old[idx[:-1]]
    wave = s[beat_keep_mask(s, sp, INTERNAL_FS, BEAT_WINDOW_S)]
    notes.append(f"gaps: {beats.samples.size - idx.size} beat(s) left out (a gap within "
                 f"{QRS_WINDOW_S[0]:g} s of the R peak), {int((~across).sum())} RR interval(s) "
                 f"that cross no gap; PR/QRS/QT from the {wave.size} beat(s) whose window "
                 f"(-{BEAT_WINDOW_S[0]:g} to +{BEAT_WINDOW_S[1]:g} s) is gap-free")
    fine = beats.fine_s[idx] if beats.fine_s.size == beats.samples.size else beats.fine_s[:0]
    return dataclasses.replace(beats, samples=s, support=beats.support[idx],
                               noisy=beats.noisy[idx], interval_noisy=across,
                               fine_s=fine), wave


def measure_intervals(rec: Recording, beats: Beats | None = None) -> Intervals:
    """Measure intervals on ``rec`` (mV, any sample rate >= 50 Hz, any lead set).

    ``beats``: the recording's beat train if it was found already (`find_beats`, e.g. by the
    quality check in `detak.signal.analysis.analyse_recording`), so that one recording has one
    set of beats and one heart rate; found here otherwise.

    Returns `Intervals`; a value that cannot be measured reliably is None with a reason.
    Raises `IntervalError` for an invalid sample rate or NaN/inf samples outside the flagged
    gaps (`detak.data.gaps`; beats near a gap are left out, RR across one is not an RR).

    >>> import numpy as np
    >>> flat = Recording(np.zeros((1, 5000)), fs=500.0, leads=["II"])
    >>> d = measure_intervals(flat).to_dict()
    >>> d["hr_bpm"] is None, d["reasons"]["hr_bpm"]
    (True, 'no usable lead (flat or clipped)')
    """
    name = rec.name or "recording"
    if not rec.fs or not math.isfinite(rec.fs) or rec.fs < 50:
        raise IntervalError(f"{name}: sample rate {rec.fs} Hz is missing or below 50 Hz")
    spans = _gap_spans(rec)
    if spans:          # filled only so the filters run: beats near a gap are left out below
        rec = fill_gaps(rec, "linear", spans)
    leads = [str(lead) for lead in rec.leads]
    if rec.duration_s < MIN_DURATION_S:
        return _empty(f"recording too short ({rec.duration_s:.1f} s < {MIN_DURATION_S} s)",
                      rec.fs, leads)
    x, n_spikes, xb, xs = prepare(rec.signal, rec.fs)
    fs = INTERNAL_FS
    if beats is None:
        beats = detect_beats(x, fs, raw=xb, names=leads)
    elif beats.fs != fs:
        beats = dataclasses.replace(beats, samples=beats.samples_at(fs), fs=fs)
    notes = list(beats.notes)
    wave = beats.samples
    if spans:
        beats, wave = _drop_gap_beats(beats, spans, rec.fs, notes)
    if n_spikes:
        notes.append(f"removed {n_spikes} pacing/artefact spike(s)")
    if not beats.usable_leads:
        out = _empty("no usable lead (flat or clipped)", rec.fs, leads)
        out.notes = notes
        return out

    values: dict[str, float | None] = dict.fromkeys(KEYS)
    reasons: dict[str, str] = {}
    rr = ventricular_rr_ms(beats)
    values["rr_ms"] = rr
    if rr is None:
        n = beats.samples.size
        reasons["rr_ms"] = f"fewer than 2 beats detected ({n})" + (
            f": {'; '.join(beats.notes)}" if beats.notes else "")
    else:
        values["hr_bpm"] = 60000.0 / rr
    if values["hr_bpm"] is None:
        reasons["hr_bpm"] = reasons["rr_ms"]
    _check(values, reasons)
    if values["hr_bpm"] is None and "hr_bpm" not in reasons:
        reasons["hr_bpm"] = reasons.get("rr_ms", "no RR")

    result = Intervals(values, reasons, n_beats=int(beats.samples.size), fs=rec.fs,
                       notes=notes)
    if beats.samples.size < 2:
        for k in KEYS:
            if values[k] is None and k not in reasons:
                reasons[k] = reasons.get("rr_ms", "too few beats")
        _fill_leads(result, leads, {})
        return result

    rows = beats.usable_leads
    if wave.size == 0:
        for k in KEYS:
            if values[k] is None and k not in reasons:
                reasons[k] = "no beat whose window (-0.35 to +0.6 s) is free of gaps"
        _fill_leads(result, leads, {})
        return result
    tmpl = build_templates(x, wave, fs, rows)
    paced = _remove_paced_spikes(tmpl, xb, xs, rows, fs, notes)
    spikes: list[float] = []
    if paced is not None:
        x, spikes = paced
        tmpl = build_templates(x, wave, fs, rows)
    result.beat_times_s = [float(s) / fs for s in tmpl.fiducials]
    qrs = global_qrs(tmpl, rows, spikes)
    rr_for_windows = rr if rr is not None else 800.0
    lead_waves: dict[str, LeadWaves] = {}
    # QRS positions per lead (boundaries only; QRS-based intervals use the multi-lead bounds,
    # the clinical convention: earliest onset to latest offset over all leads)
    own_qrs: dict[str, tuple[float, float]] = {}
    if qrs is not None:
        for r in rows:
            lead_waves[leads[r]] = delineate_lead(tmpl.data[r], fs, tmpl.t0, qrs,
                                                  rr_for_windows)
            own_qrs[leads[r]] = lead_qrs(tmpl, r, qrs)
        _p_presence(tmpl, rows, leads, lead_waves, notes, rr_irregularity(beats.samples))
        glob = combine_leads(lead_waves)
        corr = per_beat(tmpl, rows, glob, qrs, spikes)
        result.beat_boundaries = _beat_boundaries(corr, lead_waves, own_qrs)
    result.boundaries = _boundaries(qrs, lead_waves, own_qrs)
    _fill_leads(result, leads, lead_waves)
    _overall(result, qrs, lead_waves, leads, rows)
    return result


def _p_presence(tmpl: Templates, rows: list[int], leads: list[str],
                lw: dict[str, LeadWaves], notes: list[str], rr_irregularity: float) -> None:
    """P waves must sit at a fixed distance before each QRS: drop them (AF) when the P peak
    wanders beat to beat in the clearest leads, more so when RR is irregular too."""
    from detak.signal.delineation import (
        IRREGULAR_RR,
        P_JITTER_IRREGULAR_MS,
        P_JITTER_MS,
        p_jitter,
    )

    scores = []
    for r in rows:
        w = lw[leads[r]]
        if w.p_peak_neg is not None and w.p_amp is not None:
            scores.append((abs(w.p_amp), p_jitter(tmpl, r, w.p_peak_neg, w.p_amp)))
    if not scores:
        return
    scores.sort(reverse=True)
    jit = float(np.median([j for _, j in scores[:3]]))
    limit = P_JITTER_IRREGULAR_MS if rr_irregularity >= IRREGULAR_RR else P_JITTER_MS
    if jit >= limit:
        notes.append(f"P waves not at a fixed PR (P peak scatter {jit:.0f} ms, RR irregularity "
                     f"{rr_irregularity:.2f})")
        for r in rows:
            w = lw[leads[r]]
            w.p_on = w.p_off = w.p_peak_neg = w.p_amp = None
            w.reasons["p"] = "no P waves found (AF?): no P wave at a fixed PR before each QRS"


def rr_irregularity(samples: np.ndarray) -> float:
    """Median |successive RR difference| / median RR (AF: > ~0.1, sinus rhythm: < ~0.05)."""
    rr = np.diff(np.asarray(samples, dtype=float))
    if rr.size < 3:
        return 0.0
    return float(np.median(np.abs(np.diff(rr))) / np.median(rr))


def _boundaries(qrs: tuple[float, float] | None, lw: dict[str, LeadWaves],
                own_qrs: dict[str, tuple[float, float]]) -> dict[str, dict[str, float | None]]:
    out: dict[str, dict[str, float | None]] = {}
    if qrs is not None:
        out["global"] = {"qrs_on": qrs[0], "qrs_off": qrs[1]}
    for lead, w in lw.items():
        q_on, q_off = own_qrs.get(lead, (w.qrs_on, w.qrs_off))
        out[lead] = {"p_on": w.p_on, "p_off": w.p_off, "qrs_on": q_on,
                     "qrs_off": q_off, "t_on": w.t_on, "t_off": w.t_off}
    return out


def _beat_boundaries(corr: dict[str, np.ndarray], lw: dict[str, LeadWaves],
                     own_qrs: dict[str, tuple[float, float]]
                     ) -> dict[str, dict[str, list[float | None]]]:
    """Per-beat boundaries: each lead's template boundary plus the beat's correction."""
    which = {"p_on": "p", "p_off": "p", "qrs_on": "qrs_on", "qrs_off": "qrs_off",
             "t_on": "t", "t_off": "t"}
    out: dict[str, dict[str, list[float | None]]] = {}
    for lead, w in lw.items():
        out[lead] = {}
        q = own_qrs.get(lead)
        for k, c in which.items():
            base = getattr(w, k)
            if q is not None and k in ("qrs_on", "qrs_off"):
                base = q[0] if k == "qrs_on" else q[1]
            out[lead][k] = [None if base is None or not math.isfinite(d) else base + float(d)
                            for d in corr[c]]
    return out


def _lead_values(w: LeadWaves | None, base: dict[str, float | None],
                 base_reasons: dict[str, str]) -> tuple[dict[str, float | None], dict[str, str]]:
    v: dict[str, float | None] = {k: base.get(k) for k in ("rr_ms", "hr_bpm")}
    rs = {k: base_reasons[k] for k in ("rr_ms", "hr_bpm") if k in base_reasons}
    if w is None:
        for k in KEYS:
            if k not in v or v[k] is None:
                v[k] = None
                rs.setdefault(k, "lead not usable (flat, clipped) or no QRS found")
        return v, rs
    qrs_d = None if w.qrs_on is None or w.qrs_off is None else w.qrs_off - w.qrs_on
    v["qrs_ms"] = qrs_d
    if qrs_d is None:
        rs["qrs_ms"] = "QRS boundaries not found"
    if w.p_on is not None and w.qrs_on is not None:
        v["pr_ms"] = w.qrs_on - w.p_on
    else:
        v["pr_ms"] = None
        rs["pr_ms"] = w.reasons.get("p", "no P wave found")
    if w.t_off is not None and w.qrs_on is not None:
        v["qt_ms"] = w.t_off - w.qrs_on
    else:
        v["qt_ms"] = None
        rs["qt_ms"] = w.reasons.get("t", "T wave end not found")
    if w.t_on is not None and w.qrs_off is not None:
        v["st_ms"] = w.t_on - w.qrs_off
    else:
        v["st_ms"] = None
        rs["st_ms"] = w.reasons.get("t", "T wave onset not found")
    if w.r_amp is not None and w.s_amp is not None and w.s_amp >= 0.02:
        v["rs_ratio"] = w.r_amp / w.s_amp
    else:
        v["rs_ratio"] = None
        rs["rs_ratio"] = "no S wave (|S| < 0.02 mV)" if w.s_amp is not None else "no QRS"
    _check(v, rs)
    _derived(v, rs)
    _check(v, rs)
    return v, rs


def _fill_leads(result: Intervals, leads: list[str], lw: dict[str, LeadWaves]) -> None:
    for lead in leads:
        v, rs = _lead_values(lw.get(lead), result.values, result.reasons)
        result.per_lead[lead] = v
        result.per_lead_reasons[lead] = rs


RS_LEAD_ORDER: tuple[str, ...] = ("V1", "II")


def _rs_lead(leads: list[str], rows: list[int]) -> int | None:
    """The lead whose R/S ratio is the record's: V1, the lead where clinicians read R/S (and
    where S3's "normal < 1" holds: V1 is normally rS), else lead II, else the first usable lead
    (a single-lead device's own lead). Every lead's ratio stays in ``per_lead``."""
    for wanted in RS_LEAD_ORDER:
        for r in rows:
            if equivalent_standard_lead(leads[r]) == wanted:
                return r
    return rows[0] if rows else None


def _overall(result: Intervals, qrs: tuple[float, float] | None, lw: dict[str, LeadWaves],
             leads: list[str], rows: list[int]) -> None:
    v, rs = result.values, result.reasons
    if qrs is None:
        for k in ("pr_ms", "qrs_ms", "qt_ms", "st_ms", "rs_ratio"):
            rs[k] = "no QRS complex found in the median beat"
        _derived(v, rs)
        return
    v["qrs_ms"] = qrs[1] - qrs[0]
    for key in ("pr_ms", "qt_ms", "st_ms"):
        vals = [result.per_lead[leads[r]][key] for r in rows]
        got = [x for x in vals if x is not None]
        # P: need P in at least a quarter of usable leads (one lead alone can be a T or noise)
        need = max(1, int(math.ceil(0.25 * len(rows)))) if key == "pr_ms" else 1
        if len(got) >= need:
            v[key] = float(statistics.median(got))
        else:
            why = [result.per_lead_reasons[leads[r]].get(key, "") for r in rows]
            common = max(set(why), key=why.count) if why else "not found"
            rs[key] = common if key != "pr_ms" or "AF" in common or not got else (
                f"P wave found in only {len(got)} of {len(rows)} leads")
    r = _rs_lead(leads, rows)
    if r is not None:
        result.rs_lead = leads[r]
        v["rs_ratio"] = result.per_lead[leads[r]]["rs_ratio"]
        if v["rs_ratio"] is None:
            rs["rs_ratio"] = result.per_lead_reasons[leads[r]].get("rs_ratio", "no S wave")
    _check(v, rs)
    _derived(v, rs)
    _check(v, rs)
    for k in KEYS:
        if v.get(k) is None and k not in rs:
            rs[k] = "not measured"
        if v.get(k) is not None:
            rs.pop(k, None)
