"""Template (median-beat) delineation of P, QRS and T waves on multi-lead ECG.

Beats are cut around their fiducial, aligned by cross-correlation of the QRS, and the median of
the dominant (normal-morphology) beats per lead is the template. Templates are far less noisy
than single beats, so boundaries are found on them with simple, measured rules:

* QRS onset/offset (global): where the spatial velocity (RMS over leads of the derivative)
  rises above / falls below a fraction of its peak; per lead, the same rule on the lead's
  own derivative, kept near the global boundaries;
* T peak: largest deviation from the PR baseline after the QRS; T offset: tangent at the steepest
  point after the peak meets the baseline; T onset: knee between J point and T peak;
* P peak: largest deviation before the QRS; P onset/offset: knees (largest distance to the chord)
  between the peak and the search-window ends, the offset averaged with where the P wave falls
  to 30 % of its amplitude. P is "absent" when it is too small or not repeated
  beat to beat (atrial fibrillation).

All positions are returned in ms relative to the fiducial (the spatial-velocity peak).

>>> import numpy as np
>>> fs = 500.0
>>> t = np.arange(-0.5, 0.8, 1 / fs)
>>> beat = (0.15 * np.exp(-((t + 0.16) / 0.025) ** 2) + np.exp(-(t / 0.012) ** 2)
...         + 0.3 * np.exp(-((t - 0.3) / 0.05) ** 2))
>>> w = delineate_lead(beat, fs, t0=250, qrs=(-30.0, 30.0), rr_ms=900.0)
>>> 100 < w.p_peak_neg < 220, 250 < w.t_peak < 350
(True, True)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from detak.signal.beats import slope_energy

PRE_S = 0.5
POST_S = 0.8

# Parameters tuned on odd-numbered LUDB records only (benchmarks/intervals_ludb.py --tune).
QRS_FRAC = 0.05         # QRS boundary: spatial velocity falls to this fraction of its peak
QRS_GAP_MS = 20.0       # dips shorter than this inside the QRS do not end it
P_MIN_MV = 0.03         # smaller "P waves" are noise
T_MIN_MV = 0.05         # smaller T waves are too flat to find their end
P_JITTER_MS = 12.0      # P peak scatter beat to beat (MAD, ms) above which P is not real (AF)
P_JITTER_IRREGULAR_MS = 7.0   # ... when RR is irregular (irregularity >= IRREGULAR_RR)
IRREGULAR_RR = 0.1      # median |ΔRR| / median RR
# Systematic offsets (ms) vs LUDB cardiologists, measured on odd records; added to positions.
# (median error over all annotated leads of the odd records, before correction)
BIAS_MS: dict[str, float] = {"p_on": -2.0, "p_off": -6.0, "qrs_on": -4.0, "qrs_off": -2.0,
                             "t_on": 0.0, "t_off": 7.0, "p_off_level": 6.0}


@dataclass
class Templates:
    """Median beats (n_leads, n_samples) with the fiducial at index ``t0``."""

    data: np.ndarray
    t0: int
    fs: float
    used: np.ndarray            # bool per beat: dominant morphology, in the median
    fiducials: np.ndarray       # aligned fiducial sample per beat
    epochs: np.ndarray          # (n_leads, n_beats, n_samples), NaN outside the record


@dataclass
class LeadWaves:
    """Boundaries in one lead (ms from the fiducial; None = not found) and amplitudes (mV)."""

    p_on: float | None = None
    p_off: float | None = None
    p_peak_neg: float | None = None   # ms BEFORE the fiducial (positive number) of the P peak
    qrs_on: float | None = None
    qrs_off: float | None = None
    t_on: float | None = None
    t_peak: float | None = None
    t_off: float | None = None
    p_amp: float | None = None
    t_amp: float | None = None
    r_amp: float | None = None
    s_amp: float | None = None
    reasons: dict[str, str] = field(default_factory=dict)


def _epochs(x: np.ndarray, fid: np.ndarray, pre: int, post: int) -> np.ndarray:
    n = x.shape[1]
    idx = fid[:, None] + np.arange(-pre, post)[None, :]
    valid = (idx >= 0) & (idx < n)
    ep = x[:, np.clip(idx, 0, n - 1)]
    ep[:, ~valid] = np.nan
    return ep


def build_templates(x: np.ndarray, fid: np.ndarray, fs: float, rows: list[int],
                    pre_s: float = PRE_S, post_s: float = POST_S) -> Templates:
    """Align beats on the QRS (±16 ms cross-correlation) and take per-lead medians of the
    dominant beats (QRS correlation >= 0.9 with the first median, or all if too few)."""
    pre, post = int(round(pre_s * fs)), int(round(post_s * fs))
    fid = np.asarray(fid, dtype=int)
    q = int(round(0.08 * fs))
    sl = slice(pre - q, pre + q)
    ep = _epochs(x, fid, pre, post)
    qrs = ep[rows][:, :, sl]                         # (L, B, 2q)
    ref = np.nanmedian(qrs, axis=1)                  # (L, 2q)
    max_shift = int(round(0.016 * fs))
    shifts = np.zeros(len(fid), dtype=int)
    for b in range(len(fid)):
        best, best_s = -np.inf, 0
        for s in range(-max_shift, max_shift + 1):
            a0, a1 = pre - q + s, pre + q + s
            seg = ep[rows, b, max(0, a0):a1]
            r = ref[:, max(0, a0) - a0:]
            if seg.shape[1] < q:
                continue
            m = np.isfinite(seg)
            if m.sum() < seg.size // 2:
                continue
            v = float(np.sum(np.where(m, seg * r[:, : seg.shape[1]], 0.0)))
            if v > best:
                best, best_s = v, s
        shifts[b] = best_s
    fid = fid + shifts
    ep = _epochs(x, fid, pre, post)
    qrs = ep[rows][:, :, sl]
    ref = np.nanmedian(qrs, axis=1)
    corr = np.zeros(len(fid))
    rv = ref.ravel() - np.nanmean(ref)
    for b in range(len(fid)):
        v = qrs[:, b, :].ravel()
        m = np.isfinite(v) & np.isfinite(rv)
        if m.sum() < 10:
            continue
        a, c = v[m] - v[m].mean(), rv[m] - rv[m].mean()
        den = np.sqrt((a * a).sum() * (c * c).sum())
        corr[b] = (a * c).sum() / den if den > 0 else 0.0
    used = corr >= 0.9
    if used.sum() < max(2, 0.3 * len(fid)):
        used = corr >= np.median(corr) - 1e-9 if len(fid) else used
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            data = np.nanmedian(ep[:, used, :], axis=1)
    data = np.where(np.isfinite(data), data, 0.0)
    return Templates(data=data, t0=pre, fs=fs, used=used, fiducials=fid, epochs=ep)


def _region(active: np.ndarray, peak: int, gap: int) -> tuple[int, int]:
    """First and last index of the run of ``active`` around ``peak``, bridging short gaps."""
    act = ndimage.binary_closing(active, structure=np.ones(gap + 1)) | active if gap > 0 else active
    lab, _ = ndimage.label(act)
    k = lab[peak]
    if k == 0:
        return peak, peak
    idx = np.flatnonzero(lab == k)
    return int(idx[0]), int(idx[-1])


def qrs_bounds(sv: np.ndarray, fs: float, t0: int, frac: float | None = None,
               search: tuple[float, float] = (-0.16, 0.2),
               not_before: float | None = None) -> tuple[float, float] | None:
    """QRS onset/offset (ms from ``t0``) on a slope-energy curve, or None. ``not_before``
    (ms from ``t0``): the QRS cannot start earlier (paced beats: after the pacing spike)."""
    frac = QRS_FRAC if frac is None else frac
    a = max(0, t0 + int(search[0] * fs))
    if not_before is not None:
        a = max(a, min(t0 - 1, t0 + int(round(not_before / 1000 * fs))))
    b = min(len(sv), t0 + int(search[1] * fs))
    w = int(round(0.04 * fs))
    pk = t0 - w + int(np.argmax(sv[t0 - w: t0 + w + 1]))
    base_seg = sv[max(0, t0 - int(0.25 * fs)): max(1, t0 - int(0.03 * fs))]
    iso = float(np.percentile(base_seg, 10)) if base_seg.size else 0.0
    top = float(sv[pk])
    if top <= iso * 1.5 or top <= 0:
        return None
    thr = iso + frac * (top - iso)
    active = np.zeros(len(sv), dtype=bool)
    active[a:b] = sv[a:b] >= thr
    on, off = _region(active, pk, int(round(QRS_GAP_MS / 1000 * fs)))
    return (on - t0) / fs * 1000, (off - t0) / fs * 1000


def _knee(y: np.ndarray, i0: int, i1: int) -> int:
    """Index in [i0, i1] farthest from the chord between (i0, y[i0]) and (i1, y[i1])."""
    if i1 <= i0 + 1:
        return i0
    seg = y[i0: i1 + 1]
    line = np.linspace(seg[0], seg[-1], len(seg))
    return i0 + int(np.argmax(np.abs(seg - line)))


P_HUMP_FRAC = 0.8      # P wave extent: same-sign deviation above this fraction of its peak
P_HUMP_GAP_MS = 40.0    # ... bridging notches up to this long


def _hump(y: np.ndarray, pk: int, thr: float, gap: int, a: int, b: int) -> tuple[int, int]:
    """First/last index in [a, b] of the run of ``y >= thr`` around ``pk``, bridging gaps."""
    active = np.zeros(len(y), dtype=bool)
    active[a: b + 1] = y[a: b + 1] >= thr
    return _region(active, pk, gap)


# P offset: the knee rule averaged with a level rule (where the P wave, smoothed, falls to
# P_OFF_LEVEL_FRAC of its amplitude above the PR segment's level), which does not depend on
# where the PR segment ends (LUDB odd records, lead II P-off SD 10.4 -> 9.5 ms, all leads
# 16.0 -> 15.6 ms); its offset vs the annotations is BIAS_MS["p_off_level"]
P_OFF_LEVEL_FRAC = 0.3
P_OFF_LEVEL_W = 0.5     # weight of the level rule


def p_off_level(z: np.ndarray, hi: int, end: int, level: float) -> int:
    """First index in [hi, end] where ``z`` (the P wave made positive, 0 = the PR segment's
    level) falls to ``level`` or below; ``end`` if it never does.

    >>> p_off_level(np.array([0.0, 1.0, 0.8, 0.5, 0.2, 0.0]), 1, 5, 0.3)
    4
    """
    below = np.flatnonzero(z[hi: end + 1] <= level)
    return hi + int(below[0]) if below.size else end


def _smooth(y: np.ndarray, fs: float, ms: float) -> np.ndarray:
    k = max(1, int(round(ms / 1000 * fs)))
    return ndimage.uniform_filter1d(y, k)


R_MIN_MV = 0.02  # smallest positive deflection that counts as an R (r) wave


def delineate_lead(y: np.ndarray, fs: float, t0: int, qrs: tuple[float, float],
                   rr_ms: float) -> LeadWaves:
    """P and T waves and QRS amplitudes in one lead's template, given QRS bounds (ms)."""
    w = LeadWaves(qrs_on=qrs[0], qrs_off=qrs[1])
    ms = fs / 1000.0
    on_i = t0 + int(round(qrs[0] * ms))
    off_i = t0 + int(round(qrs[1] * ms))
    n = len(y)
    b0 = max(0, on_i - int(round(20 * ms)))
    base = float(np.mean(y[b0: max(b0 + 1, on_i - int(round(4 * ms)))]))
    yq = y[on_i: off_i + 1] - base
    if yq.size:
        # R: the largest positive deflection (R or R'), not counting the last 12 ms of the
        # QRS, where a J-point elevation (common in V1–V2) rises without being an R wave.
        # S: the largest negative deflection after the first positive one (a negative
        # deflection before any R is a Q wave, not an S). QS complex: R = 0, S = its depth.
        core = yq[: max(1, yq.size - int(round(12 * ms)))]
        w.r_amp = max(0.0, float(core.max()))
        positive = np.flatnonzero(core > R_MIN_MV)
        tail = yq[positive[0]:] if positive.size else yq
        w.s_amp = max(0.0, float(-tail.min()))
    ys = _smooth(y, fs, 20.0) - base

    # --- T wave -----------------------------------------------------------------------
    t_a = off_i + int(round(60 * ms))
    t_end_rel = min(750.0, max(300.0, 0.7 * rr_ms + 20.0))
    t_b = min(n - 1, t0 + int(round(t_end_rel * ms)))
    if t_b - t_a > int(round(60 * ms)):
        seg = ys[t_a: t_b + 1]
        pk = t_a + int(np.argmax(np.abs(seg)))
        amp = float(ys[pk])
        if abs(amp) < T_MIN_MV:
            w.reasons["t"] = f"T wave too flat ({abs(amp):.3f} mV)"
        elif pk >= t_b - int(round(10 * ms)):
            w.reasons["t"] = "no T wave peak inside the search window"
        else:
            w.t_peak, w.t_amp = (pk - t0) / ms, amp
            # tangent at the steepest descent after the peak
            d = np.gradient(ys)
            lim = min(t_b + int(round(100 * ms)), n - 2, pk + int(round(200 * ms)))
            dd = d[pk: lim + 1] * (-np.sign(amp))
            if dd.size > 2 and dd.max() > 0:
                m_i = pk + int(np.argmax(dd))
                slope = d[m_i]
                t_end = m_i + (0.0 - ys[m_i]) / slope
                t_end = float(np.clip(t_end, pk, lim))
                w.t_off = (t_end - t0) / ms + BIAS_MS["t_off"]
            else:
                w.reasons["t"] = "T wave does not return to baseline"
            k = _knee(ys, off_i, pk)
            w.t_on = (k - t0) / ms + BIAS_MS["t_on"]
    else:
        w.reasons["t"] = "heart rate too high to separate the T wave"

    # --- P wave -----------------------------------------------------------------------
    p_b = on_i - int(round(30 * ms))
    p_a = max(0, on_i - int(round(min(320.0, 0.6 * rr_ms) * ms)))
    if p_b - p_a > int(round(60 * ms)):
        seg = ys[p_a: p_b + 1]
        pk = p_a + int(np.argmax(np.abs(seg)))
        amp = float(ys[pk])
        if abs(amp) < P_MIN_MV:
            w.reasons["p"] = f"no P wave (largest deflection {abs(amp):.3f} mV)"
        elif pk <= p_a + int(round(10 * ms)):
            w.reasons["p"] = "P wave not separated from the preceding T wave"
        else:
            w.p_peak_neg, w.p_amp = (t0 - pk) / ms, amp
            lo, hi = pk, pk
            if P_HUMP_FRAC > 0:   # a notched (bifid) P: the knees lie outside both humps
                lo, hi = _hump(ys * np.sign(amp), pk, P_HUMP_FRAC * abs(amp),
                               int(round(P_HUMP_GAP_MS * ms)), p_a, p_b)
            on_k = _knee(ys, max(0, lo - int(round(120 * ms))), lo)
            off_k = _knee(ys, hi, on_i)
            w.p_on = (on_k - t0) / ms + BIAS_MS["p_on"]
            w.p_off = (off_k - t0) / ms + BIAS_MS["p_off"]
            if P_OFF_LEVEL_W > 0:
                lv = p_off_level(ys * np.sign(amp), hi, on_i, P_OFF_LEVEL_FRAC * abs(amp))
                w.p_off = ((1 - P_OFF_LEVEL_W) * w.p_off
                           + P_OFF_LEVEL_W * ((lv - t0) / ms + BIAS_MS["p_off_level"]))
    else:
        w.reasons["p"] = "heart rate too high to separate the P wave"
    return w


def p_consistency(t: Templates, lead: int, p_on: float, p_off: float) -> float:
    """Median correlation of single beats' P segments with the template's (AF → near 0)."""
    ms = t.fs / 1000.0
    a = t.t0 + int(round((p_on - 20) * ms))
    b = t.t0 + int(round((p_off + 20) * ms))
    if a < 0 or b - a < 10:
        return 0.0
    ref = t.data[lead, a:b]
    ref = ref - ref.mean()
    cs = []
    for k in np.flatnonzero(t.used):
        seg = t.epochs[lead, k, a:b]
        if not np.all(np.isfinite(seg)):
            continue
        seg = seg - seg.mean()
        den = np.sqrt((seg**2).sum() * (ref**2).sum())
        if den > 0:
            cs.append(float((seg * ref).sum() / den))
    return float(np.median(cs)) if cs else 0.0


QRS_LEAD_MODE = "amp"   # per-lead QRS bounds: "amp" (lead's own deflection), "global" (none)
QRS_LEAD_FRAC = 0.03    # a lead's QRS starts where it leaves its level at the global onset by
                        # this fraction of its QRS peak-to-peak amplitude (and ends mirror-wise)
QRS_LEAD_MIN_MV = 0.01  # ... and by at least this much
QRS_LEAD_MAX_MS = 60.0  # a lead's bounds lie at most this far inside the global bounds
# offsets (ms) vs LUDB lead annotations, odd records (amplitude rule: on/off; slope rule: r/j)
QRS_LEAD_BIAS_MS: dict[str, float] = {"on": -12.0, "off": 10.0, "r": -5.0, "j": 0.0}
# a lead's QRS bounds: weight of its slope rule (`lead_slope_bounds`) vs the amplitude rule
QRS_LEAD_SLOPE_W: dict[str, float] = {"on": 0.3, "off": 0.3}
J_SMOOTH_MS = 12.0      # slope averaged over this window
R_FRAC = 0.05           # QRS onset: slope above the PR's by this fraction of the QRS's steepest
R_PR_MS = (-40.0, -10.0)  # the PR segment's slope: before the multi-lead QRS onset (ms)
J_FRAC = 0.03           # J point: slope within this fraction of the QRS's steepest of the ST's
J_HOLD_MS = 10.0        # ... for this long
J_ST_MS = (40.0, 80.0)  # the ST segment's slope: after the multi-lead QRS offset (ms)
J_EXT_MS = 40.0         # the J point is searched up to this far after the multi-lead offset


def lead_qrs(t: Templates, row: int, glob: tuple[float, float]) -> tuple[float, float]:
    """QRS bounds (ms) in one lead of the templates, inside the multi-lead bounds ``glob``.

    Depolarisation reaches the leads at different times: a lead's QRS starts where its own
    template first leaves the level it has at the multi-lead onset by ``QRS_LEAD_FRAC`` of the
    lead's QRS amplitude (at least ``QRS_LEAD_MIN_MV``), searched from the multi-lead onset
    forwards for at most ``QRS_LEAD_MAX_MS`` and not past the lead's largest deflection; the
    offset mirror-wise from the multi-lead offset backwards; these never lie outside the
    multi-lead bounds. Each is then averaged (weights ``QRS_LEAD_SLOPE_W``) with the lead's
    slope rule (`lead_slope_bounds`), which may put a slurred terminal QRS a little after the
    multi-lead offset.
    """
    if QRS_LEAD_MODE == "global" or QRS_LEAD_MAX_MS <= 0:
        return glob
    return lead_qrs_1d(t.data[row], t.fs, t.t0, glob)


def lead_qrs_1d(y: np.ndarray, fs: float, t0: int,
                glob: tuple[float, float]) -> tuple[float, float]:
    """`lead_qrs` on one lead's median beat ``y`` (fiducial at index ``t0``).

    >>> import numpy as np
    >>> fs, t0 = 500.0, 250
    >>> tt = (np.arange(600) - t0) / fs
    >>> y = np.exp(-((tt - 0.02) / 0.012) ** 2)   # this lead's QRS is late: ~-10..50 ms
    >>> on, off = lead_qrs_1d(y, fs, t0, (-50.0, 60.0))
    >>> -50.0 < on < 0.0 < 30.0 < off <= 60.0
    True
    """
    ms = fs / 1000.0
    g_on = int(np.clip(t0 + round(glob[0] * ms), 0, len(y) - 1))
    g_off = int(np.clip(t0 + round(glob[1] * ms), g_on, len(y) - 1))
    if g_off - g_on < 4:
        return glob
    amp = float(np.ptp(y[g_on: g_off + 1]))
    thr = max(QRS_LEAD_FRAC * amp, QRS_LEAD_MIN_MV)
    lim = int(round(QRS_LEAD_MAX_MS * ms))
    # search from the multi-lead bound towards the lead's largest deflection, not beyond it
    pk_on = g_on + int(np.argmax(np.abs(y[g_on: g_off + 1] - y[g_on])))
    seg = np.abs(y[g_on: min(pk_on, g_on + lim) + 1] - y[g_on])
    hit = np.flatnonzero(seg > thr)
    on = glob[0] if not hit.size else max(
        glob[0], (g_on + hit[0] - t0) / ms + QRS_LEAD_BIAS_MS["on"])
    pk_off = g_on + int(np.argmax(np.abs(y[g_on: g_off + 1] - y[g_off])))
    a = max(pk_off, g_off - lim)
    seg = np.abs(y[a: g_off + 1] - y[g_off])
    hit = np.flatnonzero(seg > thr)
    off = glob[1] if not hit.size else min(
        glob[1], (a + hit[-1] - t0) / ms + QRS_LEAD_BIAS_MS["off"])
    if QRS_LEAD_SLOPE_W["on"] > 0 or QRS_LEAD_SLOPE_W["off"] > 0:
        s_on, s_off = lead_slope_bounds(y, fs, t0, g_on, g_off)
        if s_on is not None:
            # no lead starts before the multi-lead onset (the earliest over all leads)
            on = max(glob[0], (1 - QRS_LEAD_SLOPE_W["on"]) * on + QRS_LEAD_SLOPE_W["on"] * s_on)
        if s_off is not None:
            off = (1 - QRS_LEAD_SLOPE_W["off"]) * off + QRS_LEAD_SLOPE_W["off"] * s_off
    return float(on), float(off)


def lead_slope_bounds(y: np.ndarray, fs: float, t0: int, g_on: int,
                      g_off: int) -> tuple[float | None, float | None]:
    """A lead's QRS onset and offset (ms from ``t0``) where its own slope leaves / settles
    to the slope of the PR / ST segment around it.

    ``g_on``/``g_off``: the multi-lead QRS bounds (sample indices). The slope is the
    |derivative| averaged over ``J_SMOOTH_MS``; a bound lies where it crosses the neighbouring
    segment's slope (median over ``R_PR_MS`` before the onset / ``J_ST_MS`` after the offset)
    plus ``J_FRAC`` (onset: ``R_FRAC``) of the QRS's steepest slope above it: searched from the
    lead's first steep stroke (slope >= half its maximum) backwards to ``g_on``, and from its
    last steep stroke forwards until the slope stays below for ``J_HOLD_MS``, at most
    ``J_EXT_MS`` past ``g_off`` (a slurred terminal QRS may end later in one lead). The
    amplitude rule of `lead_qrs_1d` misses where a lead's QRS still moves slowly; this rule
    sees slope, not level, and the two are averaged (``QRS_LEAD_SLOPE_W``).

    >>> import numpy as np
    >>> fs, t0 = 500.0, 250
    >>> tt = (np.arange(600) - t0) / fs
    >>> y = np.exp(-(tt / 0.012) ** 2)       # a narrow QRS: about -25..25 ms
    >>> on, off = lead_slope_bounds(y, fs, t0, t0 - 30, t0 + 30)
    >>> -40.0 <= on < -10.0 < 10.0 < off <= 60.0
    True
    """
    ms = fs / 1000.0
    if g_off - g_on < 4:
        return None, None
    d = ndimage.uniform_filter1d(np.abs(np.gradient(y)) * fs,
                                 max(1, int(round(J_SMOOTH_MS * ms))))
    dmax = float(d[g_on: g_off + 1].max())
    if dmax <= 0:
        return None, None
    steep = np.flatnonzero(d[g_on: g_off + 1] >= 0.5 * dmax) + g_on
    on = off = None
    pa = max(0, g_on + int(round(R_PR_MS[0] * ms)))
    pb = g_on + int(round(R_PR_MS[1] * ms))
    if pb > pa:
        thr = float(np.median(d[pa:pb]))
        thr += R_FRAC * (dmax - thr)
        i = int(steep[0])
        while i > g_on and d[i] >= thr:
            i -= 1
        on = (i - t0) / ms + QRS_LEAD_BIAS_MS["r"]
    sa = g_off + int(round(J_ST_MS[0] * ms))
    sb = min(len(d), g_off + int(round(J_ST_MS[1] * ms)))
    if sb > sa:
        thr = float(np.median(d[sa:sb]))
        thr += J_FRAC * (dmax - thr)
        i = int(steep[-1])
        lim = min(len(d) - 1, g_off + int(round(J_EXT_MS * ms)))
        hold = int(round(J_HOLD_MS * ms))
        below = d < thr
        while i < lim and not below[i: i + hold + 1].all():
            i += 1
        off = (i - t0) / ms + QRS_LEAD_BIAS_MS["j"]
    return on, off


def global_qrs(t: Templates, rows: list[int],
               spikes: list[float] | None = None) -> tuple[float, float] | None:
    """Global QRS onset/offset (ms) from the spatial velocity of the templates of ``rows``.

    ``spikes``: pacing spikes (ms from the fiducial, `pacing_spikes`); the QRS onset is then
    searched from ``SPIKE_QRS_MS`` after the last one, where cardiologists mark the onset of the
    evoked QRS (the spike itself and the latency after it are not QRS)."""
    sv = slope_energy(t.data, t.fs, rows)
    b = qrs_bounds(sv, t.fs, t.t0, not_before=_after_spike(spikes))
    if b is None:
        return None
    return b[0] + BIAS_MS["qrs_on"], b[1] + BIAS_MS["qrs_off"]


LEAD_MODE = "hybrid"     # own | global | hybrid (own when strong and near the global value)
T_STRONG_MV = 0.1
P_STRONG_MV = 0.05
# a lead keeps its own boundary (LEAD_MODE "hybrid") when its wave is at least this large:
# every P wave found (>= P_MIN_MV) keeps its own, as small P waves are annotated where they
# themselves start (LUDB odd records, lead II P-on SD 10.1 -> 8.6 ms vs P_OWN_MV = 0.05)
T_OWN_MV = 0.1
P_OWN_MV = P_MIN_MV
AGREE_MS = 40.0


def combine_leads(lws: dict[str, LeadWaves]) -> dict[str, float | None]:
    """Multi-lead wave positions: median over leads whose wave is clear (amplitude above
    ``T_STRONG_MV``/``P_STRONG_MV``, or the clearest leads if none is). Then each lead keeps its
    own boundary only when its wave is at least ``T_OWN_MV``/``P_OWN_MV`` and within
    ``AGREE_MS`` of the multi-lead value (``LEAD_MODE="hybrid"``); otherwise it takes the
    multi-lead value, if the lead has the wave at all (T or P found in it, or found in most
    leads)."""
    out: dict[str, float | None] = {}
    groups = {"t": (("t_on", "t_off"), "t_amp", T_STRONG_MV, T_OWN_MV),
              "p": (("p_on", "p_off"), "p_amp", P_STRONG_MV, P_OWN_MV)}
    for _, (keys, amp_key, strong, own_min) in groups.items():
        have = [w for w in lws.values() if getattr(w, amp_key) is not None
                and getattr(w, keys[1]) is not None]
        if not have:
            for k in keys:
                out[k] = None
            continue
        amps = np.array([abs(getattr(w, amp_key)) for w in have])
        sel = [w for w, a in zip(have, amps, strict=True) if a >= strong]
        if not sel:
            order = np.argsort(-amps)[: max(1, len(have) // 2)]
            sel = [have[i] for i in order]
        for k in keys:
            vals = [getattr(w, k) for w in sel if getattr(w, k) is not None]
            out[k] = float(np.median(vals)) if vals else None
        n_with = len(have)
        for w in lws.values():
            own_amp = getattr(w, amp_key)
            clear = own_amp is not None and abs(own_amp) >= own_min
            for k in keys:
                g, own = out[k], getattr(w, k)
                if g is None:
                    continue
                if LEAD_MODE == "own":
                    continue
                keep = (LEAD_MODE == "hybrid" and clear and own is not None
                        and abs(own - g) <= AGREE_MS)
                if keep:
                    continue
                if own is not None or n_with >= max(1, len(lws) // 2):
                    setattr(w, k, g)
        if n_with >= max(1, len(lws) // 2):
            for w in lws.values():
                if getattr(w, keys[1]) is not None:
                    w.reasons.pop(amp_key[0], None)
    return out


def p_jitter(t: Templates, lead: int, p_peak_neg: float, p_amp: float) -> float:
    """Beat-to-beat scatter (ms, MAD) of the P peak position around the template's P peak.

    In sinus rhythm the P wave sits at a fixed PR before each QRS (scatter of a few ms); in
    atrial fibrillation the largest atrial deflection wanders (tens of ms)."""
    ms = t.fs / 1000.0
    c = t.t0 - int(round(p_peak_neg * ms))
    h = int(round(60 * ms))
    a, b = c - h, c + h + 1
    if a < 0:
        return float("inf")
    k = max(1, int(round(0.02 * t.fs)))
    pos = []
    sign = 1.0 if p_amp >= 0 else -1.0
    for i in np.flatnonzero(t.used):
        seg = t.epochs[lead, i, a:b]
        if not np.all(np.isfinite(seg)):
            continue
        seg = ndimage.uniform_filter1d(seg, k) * sign
        pos.append((int(np.argmax(seg)) - h) / ms)
    if len(pos) < 3:
        return float("inf")
    pos_arr = np.asarray(pos)
    return float(np.median(np.abs(pos_arr - np.median(pos_arr))))


# --- per-beat refinement ------------------------------------------------------------------
P_REFINE_MS = 20.0      # search P wave shifts of single beats within ± this of the template
T_REFINE_MS = 30.0      # ... T wave shifts
REFINE_MIN_CORR = 0.5   # below this beat-to-template correlation a beat keeps the template offset
QRS_OWN_NONDOMINANT = 1.0   # non-dominant beats (ectopics): QRS bounds from their own slope


def beat_shifts(t: Templates, rows: list[int], seg_ms: tuple[float, float], max_ms: float,
                min_corr: float | None = None) -> np.ndarray:
    """Per beat, the lag (ms) that best aligns its multi-lead segment ``seg_ms`` (ms from the
    fiducial) with the template's; NaN where the best correlation is below ``min_corr``, the
    segment leaves the record, or the beat is not of the dominant morphology.

    Positive lag = the wave comes later in this beat than in the template.

    >>> import numpy as np
    >>> fs, n = 500.0, 5000
    >>> x = np.zeros((1, n)); tt = np.arange(n)
    >>> fid = np.arange(400, 4600, 400)
    >>> for i, f in enumerate(fid):   # P wave 150 ms before each QRS, drifting by 2 ms a beat
    ...     x[0] += np.exp(-((tt - f) / 6.0) ** 2)
    ...     x[0] += 0.2 * np.exp(-((tt - f + 75 + i) / 12.0) ** 2)
    >>> tm = build_templates(x, fid, fs, [0])
    >>> s = beat_shifts(tm, [0], (-220.0, -80.0), 20.0)
    >>> bool(np.all(np.diff(s) < 0)), float(s[-1] - s[0])
    (True, -20.0)
    """
    min_corr = REFINE_MIN_CORR if min_corr is None else min_corr
    ms = t.fs / 1000.0
    a = t.t0 + int(round(seg_ms[0] * ms))
    b = t.t0 + int(round(seg_ms[1] * ms))
    h = int(round(max_ms * ms))
    n_beats = t.epochs.shape[1]
    out = np.full(n_beats, np.nan)
    if a - h < 0 or b + h > t.epochs.shape[2] or b - a < 5:
        return out
    ref = t.data[rows, a:b]
    ref = ref - ref.mean(axis=1, keepdims=True)
    rn = np.sqrt((ref**2).sum())
    if rn <= 0:
        return out
    lags = np.arange(-h, h + 1)
    for k in np.flatnonzero(t.used):
        ep = t.epochs[rows, k, a - h: b + h]
        if not np.all(np.isfinite(ep)):
            continue
        # windows (L, n_lags, width) by striding
        win = np.lib.stride_tricks.sliding_window_view(ep, b - a, axis=1)  # (L, 2h+1, w)
        win = win - win.mean(axis=2, keepdims=True)
        num = np.einsum("lsw,lw->s", win, ref)
        den = np.sqrt(np.einsum("lsw,lsw->s", win, win)) * rn
        c = np.where(den > 0, num / np.where(den > 0, den, 1.0), -1.0)
        j = int(np.argmax(c))
        if c[j] >= min_corr:
            out[k] = lags[j] / ms
    return out


def own_qrs(t: Templates, rows: list[int], beat: int,
            spikes: list[float] | None = None) -> tuple[float, float] | None:
    """QRS bounds (ms) of one beat from its own spatial velocity (same rule as the template)."""
    ep = t.epochs[rows, beat, :]
    if not np.all(np.isfinite(ep[:, t.t0 - int(0.25 * t.fs): t.t0 + int(0.2 * t.fs)])):
        return None
    sv = slope_energy(ep, t.fs)
    b = qrs_bounds(sv, t.fs, t.t0, not_before=_after_spike(spikes))
    if b is None:
        return None
    return b[0] + BIAS_MS["qrs_on"], b[1] + BIAS_MS["qrs_off"]


def per_beat(t: Templates, rows: list[int], glob: dict[str, float | None],
             qrs: tuple[float, float], spikes: list[float] | None = None
             ) -> dict[str, np.ndarray]:
    """Per-beat corrections (ms, added to each lead's template boundary; NaN = no value for
    that beat): ``p`` and ``t`` shifts (template matching, dominant beats), ``qrs_on``/``qrs_off``
    deltas (non-dominant beats: their own QRS bounds minus the template's)."""
    n = t.epochs.shape[1]
    out = {k: np.zeros(n) for k in ("p", "t", "qrs_on", "qrs_off")}
    if glob.get("p_on") is not None and glob.get("p_off") is not None and P_REFINE_MS > 0:
        s = beat_shifts(t, rows, (glob["p_on"] - 20.0, glob["p_off"] + 20.0), P_REFINE_MS)
        out["p"] = np.where(np.isfinite(s), s, 0.0)
    if glob.get("t_on") is not None and glob.get("t_off") is not None and T_REFINE_MS > 0:
        s = beat_shifts(t, rows, (glob["t_on"], glob["t_off"] + 30.0), T_REFINE_MS)
        out["t"] = np.where(np.isfinite(s), s, 0.0)
    for k in np.flatnonzero(~t.used):
        out["p"][k] = out["t"][k] = np.nan
        if QRS_OWN_NONDOMINANT:
            b = own_qrs(t, rows, int(k), spikes)
            # a QRS spans its own fiducial; anything else is a failed search: keep the template
            if b is not None and b[0] < -10.0 < 10.0 < b[1]:
                out["qrs_on"][k], out["qrs_off"][k] = b[0] - qrs[0], b[1] - qrs[1]
    return out


# --- pacing spikes ------------------------------------------------------------------------
SPIKE_RATIO = 3.5       # a pacing spike's high-frequency power exceeds the QRS's by this factor
SPIKE_WINDOW_MS = (-300.0, -10.0)   # where spikes are searched, ms from the fiducial
SPIKE_PAD_MS = (4.0, 8.0)           # removed around a spike: before, after (ms)
SPIKE_QRS_MS = 10.0     # a paced QRS starts no earlier than this after its spike (ms)


def _after_spike(spikes: list[float] | None) -> float | None:
    """Earliest QRS onset (ms from the fiducial, before `BIAS_MS`) after pacing ``spikes``."""
    if not spikes:
        return None
    return max(spikes) + SPIKE_QRS_MS - BIAS_MS["qrs_on"]


def pacing_spikes(raw: np.ndarray, fs: float, t0: int) -> list[float]:
    """Beat-locked pacing spikes (ms from the fiducial) in a median beat of the unfiltered signal.

    ``raw`` (n_leads, n_samples): the median of beats aligned on their QRS but NOT low-passed.
    A pacemaker fires at a fixed delay before each paced QRS, so its spike survives the median,
    while noise does not. High-frequency content (residue of a 5-sample running median, RMS over
    leads) peaks at a spike; a spike is a peak before the QRS at least ``SPIKE_RATIO`` times the
    high-frequency content of the QRS itself (±20 ms around the fiducial), which a native QRS,
    however sharp, never reaches. Returns spike times, latest last ([] for unpaced beats).

    >>> import numpy as np
    >>> fs, t0 = 500.0, 250
    >>> tt = (np.arange(600) - t0) / fs
    >>> beat = np.exp(-(tt / 0.02) ** 2)[None, :].repeat(3, axis=0)
    >>> pacing_spikes(beat, fs, t0)
    []
    >>> beat[:, t0 - 40] += 1.0                      # spike 80 ms before the fiducial
    >>> pacing_spikes(beat, fs, t0)
    [-80.0]
    """
    ms = fs / 1000.0
    y = np.atleast_2d(raw)
    med = ndimage.median_filter(y, size=(1, 5), mode="nearest")
    hf = np.sqrt(np.mean((y - med) ** 2, axis=0))
    q = int(round(20 * ms))
    ref = float(hf[max(0, t0 - q): t0 + q + 1].max())
    a = max(2, t0 + int(round(SPIKE_WINDOW_MS[0] * ms)))
    b = min(len(hf) - 2, t0 + int(round(SPIKE_WINDOW_MS[1] * ms)))
    if b <= a or ref <= 0:
        return []
    seg = hf[a: b + 1]
    thr = max(SPIKE_RATIO * ref, 0.5 * float(seg.max()))
    peaks = [a + i for i in range(1, len(seg) - 1)
             if seg[i] >= thr and seg[i] >= seg[i - 1] and seg[i] > seg[i + 1]]
    return [(p - t0) / ms for p in peaks]
