"""Signal quality per lead and per recording: ``ok`` / ``warn`` / ``reject`` with reasons.

`assess_quality` works on a raw (unfiltered) `Recording` in millivolts, at any sample rate
>= 50 Hz and on 1 to 12 leads. Each lead gets these checks (levels in `QualityThresholds`):

* missing samples (NaN/inf), interpolated for the other checks;
* flat line / lead-off: peak-to-peak of the raw and of the 0.5-40 Hz signal over the whole
  lead, and the share of 1-s windows that are flat (a lead that goes flat part-way);
* clipping: runs of identical samples at the lead's maximum or minimum that the signal enters
  and leaves steeply (a saturated amplifier), unlike a flat stretch of baseline;
* high-frequency noise: RMS of the 20-40 Hz band (the part that survives S1's 40 Hz low-pass)
  in 100-ms windows away from QRS complexes (median), in mV and relative to the QRS amplitude.
  At 50-80 Hz sampling the band is cut at Nyquist. There is no separate check for short noise
  bursts (a median ignores them);
* baseline wander: peak-to-peak of the < 0.5 Hz component (what S1's baseline removal takes
  out; about 10 % of a 0.3 Hz wander leaks through it);
* powerline interference: RMS of the 50 and 60 Hz lines above the neighbouring spectrum, when
  the line is at least 6 Hz below Nyquist (not at 100 Hz, where 50 Hz lands on Nyquist; the
  40 Hz low-pass removes it there anyway);
* neurokit2's ``templatematch`` index (mean correlation of each beat with the average beat,
  on the recording's one beat train): a warning only, as ectopic and paced beats lower it as
  much as noise does. ``zhao2018`` is reported for the reference lead as a metric, not used: on
  PTB-XL fold 9's 100 Hz 10-s records with no noise annotation it calls 2.1 % of reference
  leads "Unacceptable" and 26 % "Barely acceptable". ``averageQRS`` is relative to each record
  (rescaled to span 0-1), so it cannot give a verdict. Both need >= 4 s and 3 beats.

The beats are the recording's one beat train (`detak.signal.beat_train.find_beats`, on the
leads not rejected by the checks above; ``QualityReport.beats``), which interval measurement
reuses: ``heart_rate_bpm`` is the ventricular rate (every QRS counts) and equals the intervals'
``hr_bpm``; ``reference_lead`` is lead II when its beats were used, else the used lead with
the best QRS-to-noise ratio (per-lead metric ``qrs_snr``). A beat needs a majority of the
leads; when two leads disagree on the number of beats, the clearly poorer one does not vote
(`detak.signal.beats.choose_leads`).

Once beats are found, the limb cabling is checked (`detak.signal.lead_reversal`): a suspected
LA/RA or RA/LL interchange (aVR not the mirror image of V6, lead I or II pointing against V6)
is a recording-level *warning* ``lead_reversal`` naming the two cables — not a rejection: the
nurse swaps them back and records again, and dextrocardia looks the same, so a rejection would
stop such a resident's every screening. LA/LL is not detected (it maps a normal axis onto a
normal one). ``QualityReport.lead_reversal`` holds the check (``can_tell`` False without the
six limb leads and V6). ``python benchmarks/lead_reversal.py`` measures it on fold 9.

The recording is rejected when no heartbeats are found in any usable lead, when lead II (or the
lead standing for it, e.g. MLII) is rejected, when more than half of the leads are rejected, or
when it is shorter than 2 s. It gets ``warn`` when any lead is not ``ok``. A rejected recording
must not be classified without saying so: check `QualityReport.rejected`, or call
`QualityReport.raise_if_rejected` before a step that must not run on it.

The levels were set on PTB-XL fold 9 and LUDB (see the `QualityThresholds` comments);
``python benchmarks/quality_ptbxl.py`` re-measures every figure quoted here. On fold 9 it
gives ``ok`` for 88.1 % and ``warn`` for 11.9 % (mostly baseline wander) of the 1,639 records
with no noise annotation, none rejected. Those figures predate the ``lead_reversal`` warning, which
fires on 18 of fold 9's 2,183 records as recorded (``benchmarks/lead_reversal.py``): up to 1.1
percentage points of the 1,639 may have moved from ``ok`` to ``warn``.

>>> import numpy as np
>>> from detak.data.recording import Recording
>>> fs = 250.0; t = np.arange(int(10 * fs)) / fs
>>> beat = np.exp(-0.5 * ((t % 0.8 - 0.4) / 0.012) ** 2)          # 75 bpm spikes, 1 mV
>>> rec = Recording(np.vstack([beat, np.zeros_like(beat)]), fs, ["II", "V1"], name="demo")
>>> report = assess_quality(rec)
>>> report.verdict, report.per_lead["II"].verdict, report.per_lead["V1"].verdict
('warn', 'ok', 'reject')
>>> report.reasons
['V1: flat line (peak-to-peak 0.000 mV < 0.02 mV): electrode off?']
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from detak.data.gaps import (
    GapReport,
    flagged_spans,
    gap_mask,
)
from detak.data.recording import MissingLeadError, Recording
from detak.signal.beats import Beats, ventricular_rr_ms
from detak.signal.filters import lowpass, mains_rms

Verdict = Literal["ok", "warn", "reject"]
_RANK = {"ok": 0, "warn": 1, "reject": 2}

#: the code of every reason the quality check gives (``QualityReport.issues``): per lead
#: no_samples, missing_samples, flat_line, flat_part, clipping, wander, powerline, noise,
#: noise_ratio, template_mismatch; per recording too_short, no_beats, lead_unusable,
#: most_leads_unusable, gaps, lead_reversal (a warning: limb cables swapped?); ``invalid`` is
#: `detak.signal.analysis`'s (validation failed).
#: The kiosk renders each in its languages (`detak.kiosk.quality_text`).
REASON_CODES: tuple[str, ...] = (
    "no_samples", "missing_samples", "flat_line", "flat_part", "clipping", "wander",
    "powerline", "noise", "noise_ratio", "template_mismatch", "too_short", "no_beats",
    "lead_unusable", "most_leads_unusable", "gaps", "lead_reversal", "invalid")


def issue(code: str, level: str, lead: str | None = None, **params: Any) -> dict[str, Any]:
    """One structured reason: ``{"code", "level", "lead", **params}`` (numbers rounded for
    JSON); ``code`` must be one of `REASON_CODES`.

    >>> issue("flat_line", "reject", "V3", ptp_mv=0.00012, limit_mv=0.02)
    {'code': 'flat_line', 'level': 'reject', 'lead': 'V3', 'ptp_mv': 0.0001, 'limit_mv': 0.02}
    """
    if code not in REASON_CODES:
        raise ValueError(f"unknown quality reason code {code!r}")
    out: dict[str, Any] = {"code": code, "level": level, "lead": lead}
    for k, v in params.items():
        v = _jsonable(v)
        out[k] = round(v, 4) if isinstance(v, float) else v
    return out

MIN_FS_HZ = 50.0
MIN_DURATION_S = 2.0


class QualityError(ValueError):
    """The recording cannot be assessed at all (sample rate missing or < 50 Hz, no samples)."""


class RejectedRecordingError(RuntimeError):
    """Raised by `QualityReport.raise_if_rejected`: a rejected recording reached a step that must
    not run on it (classification, interval measurement)."""

    def __init__(self, name: str, reasons: list[str]) -> None:
        super().__init__(f"{name or 'recording'} rejected by the signal-quality check: "
                         + "; ".join(reasons))
        self.reasons = list(reasons)


@dataclass(frozen=True)
class QualityThresholds:
    """Decision levels, in the units their names give.

    "Clean leads" below are the 19,668 leads of the 1,639 PTB-XL fold-9 records (100 Hz) that
    have no baseline_drift/static_noise/burst_noise/electrodes_problems annotation, and the
    2,400 leads of LUDB (500 Hz).
    """

    # Flat line: whole-lead p-p of the 0.5-40 Hz signal. Smallest clean lead: 0.12 mV (PTB-XL),
    # 0.29 mV (LUDB).
    flat_ptp_mv: float = 0.02
    # A 1-s window (raw or 0.5-40 Hz) is flat below this p-p; no clean lead has one. Share
    # of flat windows for a warning / a rejection:
    flat_window_mv: float = 0.005
    flat_fraction_warn: float = 0.1
    flat_fraction_reject: float = 0.5
    # Clipping: steep runs at the lead's max/min. Clean leads have at most 1 (PTB-XL, 1 uV
    # steps) or 3 (LUDB, 3-6 uV steps: a few R peaks land on the same value), covering at most
    # 0.2 % of the samples. Rejected when this share of the samples is stuck at the rail.
    clip_runs_warn: int = 4
    clip_fraction_reject: float = 0.05
    # High-frequency noise: median RMS of the 20-40 Hz band between QRS complexes. Clean leads:
    # 99th percentile 0.015 mV, 99.9th 0.022 mV. With EMG-like noise added to LUDB lead II
    # (at 500 Hz and decimated to 100 Hz), neurokit2's R-peak F1 is below 0.95 in 8-17 % of
    # records up to 0.02 mV, 32-36 % at 0.02-0.05 mV and 81 % at 0.05-0.07 mV (median 0.86).
    noise_warn_mv: float = 0.02
    noise_reject_mv: float = 0.05
    noise_ratio_warn: float = 0.05         # noise / QRS amplitude; clean 99.9th pct: 0.042
    # Baseline wander: p-p of the < 0.5 Hz component, 0.5 s at each edge left out. Clean
    # leads: 99th percentile 1.06 mV, 99.9th 2.9 mV (ROC AUC against the leads annotated with
    # drift: 0.91). S1's baseline removal leaves ~10 % of a 0.3 Hz wander: 1 mV leaves about
    # the 0.1 mV of an ST criterion, 3 mV three times that.
    wander_warn_mv: float = 1.0
    wander_reject_mv: float = 3.0
    # Powerline: RMS of the 50/60 Hz line above the local spectrum. Clean LUDB leads: at most
    # 0.010 mV. Rejected when the hum is about as large as a QRS complex (floating electrode).
    mains_warn_mv: float = 0.02
    mains_reject_mv: float = 0.5
    # Template match (Orphanidou 2015, = neurokit2's templatematch): mean beat-to-template
    # correlation. Clean leads: 1st percentile 0.63 (low ones: mostly ectopic or paced beats).
    template_corr_warn: float = 0.5
    # Missing samples (share of the lead).
    nan_fraction_warn: float = 0.0
    nan_fraction_reject: float = 0.2
    # Beats were found when a lead gives >= 3 R peaks at a median rate in this range.
    min_hr_bpm: float = 20.0
    max_hr_bpm: float = 250.0


DEFAULT_THRESHOLDS = QualityThresholds()


@dataclass
class LeadQuality:
    """Quality of one lead: verdict, reasons (each starting with the lead name), metrics."""

    lead: str
    verdict: Verdict = "ok"
    reasons: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    #: one entry per reason: ``{"code", "lead", "level", **parameters}`` (`REASON_CODES`)
    issues: list[dict[str, Any]] = field(default_factory=list)

    def flag(self, verdict: Verdict, reason: str, code: str, **params: Any) -> None:
        """Add a reason (English text) and its structured ``code`` with ``params`` (for
        translation); the verdict becomes the worse of the current one and ``verdict``."""
        self.reasons.append(f"{self.lead}: {reason}")
        self.issues.append(issue(code, verdict, self.lead, **params))
        if _RANK[verdict] > _RANK[self.verdict]:
            self.verdict = verdict

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "reasons": list(self.reasons),
                "issues": [dict(i) for i in self.issues],
                "metrics": {k: _jsonable(v) for k, v in self.metrics.items()}}


@dataclass
class QualityReport:
    """Quality of a recording. ``reasons`` lists the recording-level reasons first, then the
    reasons of every lead that is not ``ok``."""

    verdict: Verdict
    reasons: list[str]
    per_lead: dict[str, LeadQuality]
    #: the reasons as codes with parameters, one per entry of ``reasons``, in the same order
    issues: list[dict[str, Any]] = field(default_factory=list)
    name: str = ""
    fs: float = float("nan")
    duration_s: float = float("nan")
    reference_lead: str | None = None
    n_beats: int = 0
    heart_rate_bpm: float | None = None
    thresholds: QualityThresholds = DEFAULT_THRESHOLDS
    #: the flagged gaps (`detak.data.gaps.GapReport.to_dict`), None when there are none
    gaps: dict[str, Any] | None = None
    #: the limb-electrode reversal check (`detak.signal.lead_reversal.ReversalCheck.to_dict`;
    #: None when it did not run: no beats, or the check was switched off)
    lead_reversal: dict[str, Any] | None = None
    #: the recording's beat train (shared with interval measurement; not in `to_dict`)
    beats: Beats | None = field(default=None, repr=False, compare=False)

    @property
    def rejected(self) -> bool:
        return self.verdict == "reject"

    @property
    def usable_leads(self) -> list[str]:
        """Leads not rejected, in recording order."""
        return [k for k, v in self.per_lead.items() if v.verdict != "reject"]

    def raise_if_rejected(self) -> None:
        """Raise `RejectedRecordingError` (carrying the reasons) if the verdict is ``reject``."""
        if self.rejected:
            raise RejectedRecordingError(self.name, self.reasons)

    def summary(self) -> str:
        """One line for logs and reports: the verdict and the first three reasons."""
        text = f"{self.name or 'recording'}: signal quality {self.verdict}"
        if self.reasons:
            text += " — " + "; ".join(self.reasons[:3])
            if len(self.reasons) > 3:
                text += f" (+{len(self.reasons) - 3} more)"
        return text

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (NaN becomes None)."""
        return {
            "name": self.name, "verdict": self.verdict, "rejected": self.rejected,
            "reasons": list(self.reasons), "issues": [dict(i) for i in self.issues],
            "fs": _jsonable(self.fs),
            "duration_s": _jsonable(self.duration_s), "reference_lead": self.reference_lead,
            "n_beats": int(self.n_beats), "heart_rate_bpm": _jsonable(self.heart_rate_bpm),
            "per_lead": {k: v.to_dict() for k, v in self.per_lead.items()},
            "thresholds": dataclasses.asdict(self.thresholds), "gaps": self.gaps,
            "lead_reversal": self.lead_reversal,
        }


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


# --------------------------------------------------------------------------------------------
# Measurements
# --------------------------------------------------------------------------------------------

@dataclass
class _Views:
    """The band-limited versions of the signal that the checks share, all (n_leads, n)."""

    fs: float
    raw: np.ndarray       # NaN filled
    base: np.ndarray      # < 0.5 Hz (baseline)
    y: np.ndarray         # raw - base
    z: np.ndarray         # 0.5-40 Hz
    inband: np.ndarray    # 20-40 Hz (to Nyquist below 80 Hz sampling)

    @classmethod
    def of(cls, raw: np.ndarray, fs: float) -> _Views:
        base = lowpass(raw, fs, 0.5, order=2).astype(np.float64)
        y = raw - base
        z = lowpass(y, fs, 40.0).astype(np.float64)
        return cls(fs, raw, base, y, z, z - lowpass(y, fs, 20.0).astype(np.float64))


def _windows(x: np.ndarray, fs: float, win_s: float) -> np.ndarray:
    """(L, n) -> (L, n_windows, w); one window (the whole lead) if the lead is shorter."""
    w = max(1, int(round(win_s * fs)))
    n_win = x.shape[-1] // w
    if n_win == 0:
        return x[:, None, :]
    return x[:, : n_win * w].reshape(x.shape[0], n_win, w)


def _fill_nan(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation over non-finite samples; returns (filled, non-finite share)."""
    bad = ~np.isfinite(x)
    share = bad.mean(axis=1)
    if not bad.any():
        return x, share
    out = x.copy()
    idx = np.arange(x.shape[1])
    for i in np.where(bad.any(axis=1))[0]:
        good = ~bad[i]
        out[i] = np.interp(idx, idx[good], x[i, good]) if good.any() else 0.0
    return out, share


def _steep_rail_runs(x: np.ndarray, fs: float, scale_mv: float) -> tuple[int, int, float]:
    """Runs (>= 2 samples) of one value at the lead's max or min that the signal enters and
    leaves by at least 10 % of ``scale_mv`` within 10 ms. Returns (runs, samples, rail value)
    for the worse side."""
    k = max(1, int(round(0.01 * fs)))
    n = x.size
    best: tuple[int, int, float] = (0, 0, float("nan"))
    for rail in (float(x.max()), float(x.min())):
        edges = np.diff(np.concatenate(([0], (x == rail).astype(np.int8), [0])))
        runs = samples = 0
        for s, e in zip(np.where(edges == 1)[0], np.where(edges == -1)[0], strict=True):
            if e - s < 2:
                continue
            steps = []
            if s > 0:
                steps.append(abs(x[s] - x[max(0, s - k)]))
            if e < n:
                steps.append(abs(x[e - 1] - x[min(n - 1, e - 1 + k)]))
            if steps and min(steps) >= 0.1 * scale_mv:
                runs += 1
                samples += int(e - s)
        if (runs, samples) > best[:2]:
            best = (runs, samples, rail)
    return best


def _detect_beats(z: np.ndarray, fs: float) -> np.ndarray:
    """R peaks by neurokit2 on a 0.5-40 Hz lead turned so that its QRS points up (neurokit2
    finds no beats in leads whose QRS is mainly negative). Not used for the report (its beats
    are the shared beat train, `detak.signal.beat_train.find_beats`): kept to compare
    `template_match` with neurokit2's on neurokit2's own peaks."""
    import neurokit2 as nk

    lo, hi = np.percentile(z, [0.5, 99.5])
    sig = -z if abs(lo) > abs(hi) else z
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            _, info = nk.ecg_peaks(np.asarray(sig, np.float64), sampling_rate=int(round(fs)))
        except (ValueError, IndexError, ZeroDivisionError):
            return np.zeros(0, dtype=int)
    return np.asarray(info["ECG_R_Peaks"], dtype=int)


def _beats_plausible(peaks: np.ndarray, fs: float, th: QualityThresholds) -> bool:
    if peaks.size < 3:
        return False
    hr = 60.0 * fs / float(np.median(np.diff(peaks)))
    return th.min_hr_bpm <= hr <= th.max_hr_bpm


def _nk_quality(z: np.ndarray, peaks: np.ndarray, fs: float, method: str) -> Any:
    """neurokit2's ``ecg_quality`` or None where it cannot run (< 4 s, too few beats)."""
    import neurokit2 as nk

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return nk.ecg_quality(np.asarray(z, np.float64), rpeaks=peaks,
                                  sampling_rate=int(round(fs)), method=method)
        except (ValueError, IndexError, KeyError, ZeroDivisionError):
            return None


def template_match(z: np.ndarray, peaks: np.ndarray, fs: float) -> float | None:
    """Mean correlation of each beat with the average beat (Orphanidou et al. 2015), the
    statistic of neurokit2's ``ecg_quality(method="templatematch")`` computed with numpy.

    Same windows (± half the mean beat period around each R peak), template (mean of the
    complete beats) and averaging (each beat's correlation held until the next beat, mean over
    first to last R peak, the last beat left out) as neurokit2 0.2.13, without its per-beat
    DataFrames: about 100× faster, which matters on 12 leads on a Raspberry Pi.
    `tests/signal/test_quality.py` checks it against neurokit2 on real records.

    >>> import numpy as np
    >>> beat = np.r_[np.zeros(30), np.hanning(10), np.zeros(40)]
    >>> round(template_match(np.tile(beat, 10), np.arange(10) * 80 + 35, 100.0), 3)
    1.0
    """
    peaks = np.asarray(peaks, dtype=np.int64)
    n = z.size
    if peaks.size < 3 or n < 4 * fs:
        return None
    period = float(np.mean(np.diff(peaks)))
    pre = int(round(0.5 * period))
    offsets = np.arange(-pre, int(round(0.5 * period)) + 1)
    idx = peaks[:, None] + offsets[None, :]
    valid = (idx[:, 0] >= 0) & (idx[:, -1] < n)
    if valid.sum() < 3:
        return None
    beats = np.asarray(z, dtype=np.float64)[idx[valid]]
    templ = beats.mean(axis=0)
    b = beats - beats.mean(axis=1, keepdims=True)
    t = templ - templ.mean()
    denom = np.sqrt((b * b).sum(axis=1) * (t * t).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        cc = (b @ t) / denom
    starts = peaks[valid]
    cc, starts = cc[:-1], starts[:-1]
    ends = np.r_[starts[1:], peaks[-1]]
    weights = (ends - starts).astype(np.float64)
    ok = np.isfinite(cc) & (weights > 0)
    if not ok.any():
        return None
    return float(np.sum(cc[ok] * weights[ok]) / np.sum(weights[ok]))


def _template_corr(z: np.ndarray, peaks: np.ndarray, fs: float) -> float | None:
    return template_match(z, peaks, fs)


def _zhao(z: np.ndarray, peaks: np.ndarray, fs: float) -> str | None:
    if peaks.size < 3 or fs < 90:     # its 5-40 Hz band needs Nyquist above 40 Hz
        return None
    q = _nk_quality(z, peaks, fs, "zhao2018")
    return None if q is None else str(q)


# --------------------------------------------------------------------------------------------
# Checks: each fills metrics and flags one lead
# --------------------------------------------------------------------------------------------

def _check_missing(lq: LeadQuality, share: float, th: QualityThresholds) -> None:
    lq.metrics["nan_fraction"] = round(share, 4)
    if share >= 1.0:
        lq.flag("reject", "no valid samples (all NaN)", "no_samples")
    elif share > th.nan_fraction_reject:
        lq.flag("reject", f"missing samples ({100 * share:.1f} % > "
                          f"{100 * th.nan_fraction_reject:g} %)", "missing_samples",
                pct=100 * share, limit_pct=100 * th.nan_fraction_reject)
    elif share > th.nan_fraction_warn:
        lq.flag("warn", f"missing samples ({100 * share:.1f} % > "
                        f"{100 * th.nan_fraction_warn:g} %), interpolated", "missing_samples",
                pct=100 * share, limit_pct=100 * th.nan_fraction_warn)


def _check_flat(lq: LeadQuality, raw: np.ndarray, z: np.ndarray, fs: float,
                th: QualityThresholds) -> bool:
    """Flat-line checks on the 0.5-40 Hz signal (a drifting lead with no ECG) and on the raw
    one (a stuck lead, which the baseline filter would turn into a decaying step). True when
    the lead is entirely flat: nothing else to measure."""
    ptp = float(min(np.ptp(z), np.ptp(raw)))
    win_ptp = np.minimum(np.ptp(_windows(z[None], fs, 1.0)[0], axis=1),
                         np.ptp(_windows(raw[None], fs, 1.0)[0], axis=1))
    flat = win_ptp < th.flat_window_mv
    share = float(flat.mean())
    lq.metrics["ptp_mv"] = round(ptp, 4)
    lq.metrics["flat_fraction"] = round(share, 3)
    if ptp < th.flat_ptp_mv:
        lq.flag("reject", f"flat line (peak-to-peak {ptp:.3f} mV < {th.flat_ptp_mv:g} mV): "
                          "electrode off?", "flat_line", ptp_mv=ptp, limit_mv=th.flat_ptp_mv)
        return True
    text = (f"flat for {int(flat.sum())} of {flat.size} s ({100 * share:.0f} % >= "
            "{:g} %, 1-s peak-to-peak < " f"{th.flat_window_mv:g} mV)")
    part = {"flat_s": int(flat.sum()), "total_s": int(flat.size)}
    if share >= th.flat_fraction_reject:
        lq.flag("reject", text.format(100 * th.flat_fraction_reject) + ": electrode off?",
                "flat_part", **part)
    elif share >= th.flat_fraction_warn:
        lq.flag("warn", text.format(100 * th.flat_fraction_warn) + ": loose electrode?",
                "flat_part", **part)
    return False


def _check_clipping(lq: LeadQuality, raw: np.ndarray, fs: float, amp: float,
                    th: QualityThresholds) -> None:
    runs, samples, rail = _steep_rail_runs(raw, fs, max(amp, th.flat_ptp_mv))
    share = samples / raw.size
    lq.metrics["clipped_runs"] = runs
    lq.metrics["clipped_fraction"] = round(share, 4)
    text = f"clipping: {runs} segment{'s' if runs > 1 else ''} stuck at the {rail:+.3f} mV rail"
    if share >= th.clip_fraction_reject:
        lq.flag("reject", f"{text}, {100 * share:.1f} % of the samples (>= "
                          f"{100 * th.clip_fraction_reject:g} %)", "clipping", runs=runs,
                pct=100 * share)
    elif runs >= th.clip_runs_warn:
        lq.flag("warn", f"{text} (>= {th.clip_runs_warn}), {100 * share:.1f} % of the samples: "
                        "amplitudes unreliable", "clipping", runs=runs, pct=100 * share)


def _check_wander(lq: LeadQuality, base: np.ndarray, fs: float, th: QualityThresholds) -> None:
    edge = int(round(0.5 * fs)) if base.size >= 8 * fs else 0
    wander = float(np.ptp(base[edge: base.size - edge]))
    lq.metrics["wander_mv"] = round(wander, 4)
    if wander > th.wander_reject_mv:
        lq.flag("reject", f"strong baseline wander ({wander:.2f} mV > {th.wander_reject_mv:g} mV"
                          "): electrode moving?", "wander", mv=wander,
                limit_mv=th.wander_reject_mv)
    elif wander > th.wander_warn_mv:
        lq.flag("warn", f"baseline wander ({wander:.2f} mV > {th.wander_warn_mv:g} mV): ST "
                        "levels less reliable", "wander", mv=wander, limit_mv=th.wander_warn_mv)


def _check_mains(lq: LeadQuality, y: np.ndarray, fs: float, mains: list[float],
                 th: QualityThresholds) -> None:
    found = [(f, mains_rms(y, fs, f)) for f in mains]
    for f, v in found:
        lq.metrics[f"mains_{f:g}hz_mv"] = None if v is None else round(v, 4)
    measured = [(f, v) for f, v in found if v is not None]
    if not measured:
        return
    f, v = max(measured, key=lambda p: p[1])
    if v > th.mains_reject_mv:
        lq.flag("reject", f"{f:g} Hz powerline interference ({v:.3f} mV RMS > "
                          f"{th.mains_reject_mv:g} mV): electrode off?", "powerline", hz=f,
                mv=v, limit_mv=th.mains_reject_mv)
    elif v > th.mains_warn_mv:
        lq.flag("warn", f"{f:g} Hz powerline interference ({v:.3f} mV RMS > "
                        f"{th.mains_warn_mv:g} mV): check electrode contact, use the notch filter",
                "powerline", hz=f, mv=v, limit_mv=th.mains_warn_mv)


def _noise_windows(inband: np.ndarray, fs: float, peaks: np.ndarray) -> np.ndarray:
    """RMS of 100-ms windows (L, n_windows) of the samples left once the QRS complexes are cut
    out: 100 ms each side of every R peak, at most 35 % of the median RR interval."""
    keep = np.ones(inband.shape[1], dtype=bool)
    if peaks.size >= 2:
        half = int(round(min(0.1 * fs, 0.35 * float(np.median(np.diff(peaks))))))
        for p in peaks:
            keep[max(0, p - half): p + half + 1] = False
    if keep.sum() < 0.5 * fs:         # not enough left: measure over everything
        keep[:] = True
    return np.sqrt(np.mean(_windows(inband[:, keep], fs, 0.1) ** 2, axis=2))


def _check_noise(lq: LeadQuality, rms: np.ndarray, amp: float, th: QualityThresholds) -> None:
    noise = float(np.median(rms))
    ratio = noise / max(amp, 1e-6)
    lq.metrics.update(noise_mv=round(noise, 4), noise_ratio=round(ratio, 4))
    what = f"{noise:.3f} mV RMS in 20-40 Hz"
    if noise > th.noise_reject_mv:
        lq.flag("reject", f"strong high-frequency noise ({what} > {th.noise_reject_mv:g} mV): "
                          "beats cannot be found reliably", "noise", mv=noise,
                limit_mv=th.noise_reject_mv)
    elif noise > th.noise_warn_mv:
        lq.flag("warn", f"high-frequency noise ({what} > {th.noise_warn_mv:g} mV): muscle "
                        "tremor?", "noise", mv=noise, limit_mv=th.noise_warn_mv)
    elif ratio > th.noise_ratio_warn:
        lq.flag("warn", f"high-frequency noise ({what} = {100 * ratio:.0f} % of the QRS "
                        f"amplitude > {100 * th.noise_ratio_warn:g} %)", "noise_ratio",
                mv=noise, pct=100 * ratio)


def _check_template(lq: LeadQuality, z: np.ndarray, peaks: np.ndarray, fs: float,
                    th: QualityThresholds) -> None:
    corr = _template_corr(z, peaks, fs)
    lq.metrics["template_corr"] = None if corr is None else round(corr, 3)
    if corr is not None and corr < th.template_corr_warn:
        lq.flag("warn", f"beats unlike their average (template correlation {corr:.2f} "
                        f"< {th.template_corr_warn:g}): noise, or ectopic or paced beats?",
                "template_mismatch", corr=corr, limit=th.template_corr_warn)


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------

def _validate(rec: Recording) -> None:
    name = rec.name or "recording"
    if rec.fs is None or not math.isfinite(rec.fs) or rec.fs <= 0:
        raise QualityError(f"{name}: sample rate missing or invalid ({rec.fs})")
    if rec.fs < MIN_FS_HZ:
        raise QualityError(f"{name}: sample rate {rec.fs:g} Hz is below the {MIN_FS_HZ:g} Hz "
                           "the quality check needs")
    if rec.n_leads == 0 or rec.n_samples == 0:
        raise QualityError(f"{name}: no samples (signal shape {rec.signal.shape})")


def _unique(names: Any) -> list[str]:
    """Lead names as report keys; a repeated name gets ``#2``, ``#3``..."""
    out: list[str] = []
    for name in map(str, names):
        key, k = name, 1
        while key in out:
            k += 1
            key = f"{name}#{k}"
        out.append(key)
    return out


def _lead_ii(rec: Recording) -> int | None:
    try:
        return rec.index("II")
    except MissingLeadError:
        return None


def _shared_beats(rec: Recording, raw: np.ndarray, leads: list[LeadQuality], ii: int | None,
                  th: QualityThresholds) -> tuple[Beats, np.ndarray, int | None]:
    """The recording's beat train (`find_beats`, without the leads rejected so far), its beats
    at the recording's rate, and the reference lead (II when its beats were used, else the
    used lead with the best QRS-to-noise ratio); no beats when the rhythm is implausible."""
    from detak.signal.beat_train import find_beats

    finite = np.isfinite(np.asarray(rec.signal, dtype=np.float64))
    some = finite.any(axis=1)
    valid = finite[some].all(axis=0) if some.any() and not finite[some].all() else None
    beats = find_beats(raw, float(rec.fs), [lq.lead for lq in leads],
                       exclude=[i for i, lq in enumerate(leads) if lq.verdict == "reject"],
                       valid=valid)
    peaks = beats.samples_at(float(rec.fs))
    for i, lq in enumerate(leads):
        if i < beats.snr.size and np.isfinite(beats.snr[i]):
            lq.metrics["qrs_snr"] = round(float(beats.snr[i]), 1)
    if not _beats_plausible(peaks, float(rec.fs), th):
        return beats, np.zeros(0, dtype=int), None
    ref = ii if ii in beats.trusted_leads else beats.reference_lead
    return beats, peaks, ref


def assess_quality(rec: Recording, *, thresholds: QualityThresholds | None = None,
                   mains_hz: float | None = None, neurokit: bool = True) -> QualityReport:
    """Assess the signal quality of a raw recording (mV), lead by lead and as a whole.

    Args:
        rec: the recording, unfiltered, in millivolts; any sample rate >= 50 Hz, 1-12 leads.
        thresholds: decision levels (default `DEFAULT_THRESHOLDS`).
        mains_hz: the powerline frequency to check (50 in Indonesia); None checks 50 and 60.
        neurokit: find beats and run neurokit2's quality index. Without it there is no
            "no heartbeats" check and noise is measured over whole leads, QRS included.

    Raises:
        QualityError: sample rate missing or below 50 Hz, or no samples.

    >>> import numpy as np
    >>> from detak.data.recording import Recording
    >>> fs = 100.0; t = np.arange(1000) / fs
    >>> ecg = np.exp(-0.5 * ((t % 1.0 - 0.5) / 0.02) ** 2)       # 60 bpm, 1 mV spikes
    >>> rep = assess_quality(Recording(np.vstack([ecg, ecg]), fs, ["I", "II"], name="x"))
    >>> rep.verdict, rep.rejected, rep.reference_lead, rep.n_beats, rep.heart_rate_bpm
    ('ok', False, 'II', 10, 60.0)
    >>> rep.to_dict()["per_lead"]["II"]["metrics"]["flat_fraction"]
    0.0
    """
    _validate(rec)
    th = thresholds or DEFAULT_THRESHOLDS
    fs = float(rec.fs)
    raw, nan_share = _fill_nan(np.asarray(rec.signal, dtype=np.float64))
    gaps = GapReport.of(rec, flagged_spans(rec))       # named once, not per lead as missing
    nan_share = (~np.isfinite(rec.signal) & ~gap_mask(rec.n_samples, gaps.spans)).mean(axis=1)
    duration = raw.shape[1] / fs
    leads = [LeadQuality(name) for name in _unique(rec.leads)]
    ii = _lead_ii(rec)
    if duration < MIN_DURATION_S:
        return _report(rec, leads, [(f"recording too short ({duration:.2f} s < "
                                     f"{MIN_DURATION_S:g} s)",
                                     issue("too_short", "reject", seconds=duration,
                                           limit_s=MIN_DURATION_S))],
                       th, ii, None, np.zeros(0, int))

    views = _Views.of(raw, fs)
    amp = np.median(np.ptp(_windows(views.z, fs, 2.0), axis=2), axis=1)   # ~ QRS amplitude
    measurable = []
    for i, lq in enumerate(leads):
        _check_missing(lq, float(nan_share[i]), th)
        if nan_share[i] >= 1.0 or _check_flat(lq, views.raw[i], views.z[i], fs, th):
            continue
        measurable.append(i)
        lq.metrics["qrs_amplitude_mv"] = round(float(amp[i]), 4)
        _check_clipping(lq, views.raw[i], fs, float(amp[i]), th)
        _check_wander(lq, views.base[i], fs, th)
        _check_mains(lq, views.y[i], fs, [mains_hz] if mains_hz else [50.0, 60.0], th)

    peaks, ref, beats = np.zeros(0, dtype=int), None, None
    if neurokit:
        beats, peaks, ref = _shared_beats(rec, raw, leads, ii, th)

    rms = _noise_windows(views.inband, fs, peaks)
    for i in measurable:
        _check_noise(leads[i], rms[i], float(amp[i]), th)
        if neurokit and peaks.size:
            _check_template(leads[i], views.z[i], peaks, fs, th)
    if ref is not None:
        leads[ref].metrics["nk_zhao2018"] = _zhao(views.z[ref], peaks, fs)

    rec_reasons: list[tuple[str, dict[str, Any]]] = []
    if neurokit and ref is None:
        rec_reasons.append((f"no heartbeats found in any usable lead (beats: none, fewer than "
                            f"3 or outside {th.min_hr_bpm:g}-{th.max_hr_bpm:g} bpm)",
                            issue("no_beats", "reject", min_bpm=th.min_hr_bpm,
                                  max_bpm=th.max_hr_bpm)))
    rep = _report(rec, leads, rec_reasons, th, ii, ref, peaks)
    if peaks.size and not rep.rejected:
        _check_reversal(rep, views.z, fs, peaks)
    if beats is not None:
        rep.beats = beats
        rr = ventricular_rr_ms(beats) if peaks.size >= 2 else None
        rep.heart_rate_bpm = None if rr is None else round(60000.0 / rr, 1)
    return _with_gaps(rep, gaps)


def _check_reversal(report: QualityReport, z: np.ndarray, fs: float, peaks: np.ndarray) -> None:
    """Limb-electrode reversal (`detak.signal.lead_reversal`): a suspected LA/RA or RA/LL
    interchange is a recording-level *warning* (code ``lead_reversal``), not a rejection — the
    nurse can swap the named cables back and record again, and a resident with dextrocardia
    shows the same pattern, so a rejection would stop that resident's every screening. Leads
    the checks above rejected are left out, so the check then says it cannot tell."""
    from detak.signal.lead_reversal import check_limb_reversal

    names = list(report.per_lead)
    usable = [i for i, k in enumerate(names) if report.per_lead[k].verdict != "reject"]
    check = check_limb_reversal(z[usable], fs, [names[i] for i in usable], peaks)
    report.lead_reversal = check.to_dict()
    if check.suspected is None:
        return
    a, b = check.suspected.split("/")
    inverted = "I" if check.suspected == "LA/RA" else "II"
    report.reasons.insert(0, f"limb electrodes {a} and {b} look swapped (lead {inverted} "
                             "points against V6 and aVR is not inverted): check the cables and "
                             "record again; dextrocardia gives the same pattern")
    report.issues.insert(0, issue("lead_reversal", "warn", electrodes=check.suspected,
                                  a=a, b=b, inverted=inverted,
                                  corr_avr_v6=check.corr_v6["aVR"]))
    if report.verdict == "ok":
        report.verdict = "warn"


def _with_gaps(report: QualityReport, gaps: GapReport) -> QualityReport:
    """The flagged gaps as the first reason (``gaps: ...``, code ``gaps`` in ``report.gaps``):
    at least a warning, a rejection by `GapReport.rejects` (gaps over 20 % of the recording,
    or no gap-free stretch of 1.7 s). The beats and the heart rate already leave the gaps out:
    the beat train takes no beat within 0.1 s of a missing sample and no RR across one."""
    if not gaps.count:
        return report
    why = gaps.rejects()
    report.reasons.insert(0, f"gaps: {gaps.describe()}" + (f"; rejected: {why}" if why else ""))
    report.issues.insert(0, issue("gaps", "reject" if why else "warn", count=gaps.count,
                                  total_s=gaps.total_s, share_pct=100 * gaps.share,
                                  longest_gap_free_s=gaps.longest_clean_s))
    report.verdict = "reject" if why or report.rejected else "warn"
    report.gaps = gaps.to_dict()
    return report


def _report(rec: Recording, leads: list[LeadQuality],
            rec_reasons: list[tuple[str, dict[str, Any]]],
            th: QualityThresholds, ii: int | None, ref: int | None,
            peaks: np.ndarray) -> QualityReport:
    """Combine the leads: reject on any recording-level reason, an unusable lead II or a
    majority of unusable leads; warn when any lead is not ok."""
    verdict: Verdict = "reject" if rec_reasons else "ok"
    if ii is not None and leads[ii].verdict == "reject":
        rec_reasons.append((f"lead {leads[ii].lead}, needed for measurement, is unusable",
                            issue("lead_unusable", "reject", leads[ii].lead)))
        verdict = "reject"
    rejected = [lq.lead for lq in leads if lq.verdict == "reject"]
    if len(rejected) * 2 > len(leads):
        rec_reasons.append((f"{len(rejected)} of {len(leads)} leads unusable "
                            f"({', '.join(rejected)})",
                            issue("most_leads_unusable", "reject", n=len(rejected),
                                  total=len(leads), leads=", ".join(rejected))))
        verdict = "reject"
    if verdict == "ok" and any(lq.verdict != "ok" for lq in leads):
        verdict = "warn"
    hr = None
    if peaks.size >= 2:
        hr = round(60.0 * rec.fs / float(np.median(np.diff(peaks))), 1)
    return QualityReport(
        verdict=verdict, reasons=[t for t, _ in rec_reasons] + [r for lq in leads
                                                                for r in lq.reasons],
        issues=[i for _, i in rec_reasons] + [i for lq in leads for i in lq.issues],
        per_lead={lq.lead: lq for lq in leads}, name=rec.name, fs=float(rec.fs),
        duration_s=round(rec.n_samples / rec.fs, 3),
        reference_lead=None if ref is None else leads[ref].lead, n_beats=int(peaks.size),
        heart_rate_bpm=hr, thresholds=th)
