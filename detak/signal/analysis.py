"""One recording through validation → signal quality → interval measurement, as JSON.

This is the measurement step shared by ``detak intervals``, the demo report and (later) the
kiosk. The beats are found once (`detak.signal.beat_train.find_beats`, by the quality check,
which leaves out the leads it rejects) and the same beats give the intervals: the quality
verdict's heart rate and ``hr_bpm`` are one number. A recording that fails validation or is
rejected by the quality check gets no numbers: every value is null with the reason, so nothing
downstream classifies it silently.

>>> from detak.data.samples import load_sample
>>> out = analyse_recording(load_sample("ludb-1"))
>>> out["quality"]["verdict"] in {"ok", "warn"}, 40 < out["hr_bpm"] < 70
(True, True)
>>> out["quality"]["heart_rate_bpm"] == out["hr_bpm"]
True
"""

from __future__ import annotations

from typing import Any

from detak.data.recording import Recording

INTERVAL_KEYS: tuple[str, ...] = (
    "rr_ms", "pr_ms", "qrs_ms", "qt_ms", "qtc_bazett_ms", "qtc_fridericia_ms", "st_ms",
    "rs_ratio", "hr_bpm",
)


def _all_null(reason: str) -> dict[str, Any]:
    return {**{k: None for k in INTERVAL_KEYS}, "per_lead": {},
            "reasons": {k: reason for k in INTERVAL_KEYS}}


def _invalid_issue(err: Any, rec: Recording) -> dict[str, Any]:
    """The structured reason of a validation error (`detak.signal.quality.issue`): a too
    short recording is ``too_short``, as the quality check says it; others ``invalid``."""
    from detak.signal.quality import MIN_DURATION_S, issue

    if err.problem == "too_short" and rec.fs:
        return issue("too_short", "reject", seconds=rec.n_samples / rec.fs,
                     limit_s=MIN_DURATION_S)
    return issue("invalid", "reject", problem=err.problem)


def analyse_recording(rec: Recording, *, notch_hz: float | None = None,
                      timings: dict[str, float] | None = None,
                      keep: dict[str, Any] | None = None) -> dict[str, Any]:
    """Validate, assess quality and measure intervals of ``rec``; a JSON-ready dict.

    Keys: the interval keys (``rr_ms`` … ``hr_bpm``, overall), ``per_lead``, ``reasons`` (why a
    value is null), ``quality`` (``verdict`` ok/warn/reject and ``reasons``), ``validation``
    (flags such as flat or saturated leads), ``fs``, ``leads``, ``duration_s``, and
    ``fiducials`` (beat times in s; wave boundaries in ms from each beat, ``global`` and per
    lead) so a report can show where each interval was measured.

    ``timings``: when a dict, filled with the seconds spent in ``validation``, ``quality`` and
    ``intervals`` (``benchmarks/kiosk.py``); the result is the same.
    ``keep``: when a dict, given the quality check's beat train as ``beats`` (a
    `detak.signal.beats.Beats`; absent for an invalid recording) so a caller can reuse it
    (the kiosk's rhythm findings) instead of detecting the beats again.
    """
    import time

    from detak.data.validation import RecordingError, validate_recording
    from detak.signal.intervals import measure_intervals
    from detak.signal.quality import assess_quality

    base: dict[str, Any] = {"record": rec.name, "fs": rec.fs, "leads": list(rec.leads),
                            "duration_s": round(rec.duration_s, 3) if rec.fs else None}
    lap = time.perf_counter()
    try:
        validation = validate_recording(rec, allow_flagged_gaps=True)  # quality names the gaps
    except RecordingError as err:
        return {**base, **_all_null(f"recording invalid: {err}"),
                "quality": {"verdict": "reject", "reasons": [str(err)],
                            "issues": [_invalid_issue(err, rec)]},
                "validation": {"error": str(err), "problem": getattr(err, "problem", None)}}
    now = time.perf_counter()
    if timings is not None:
        timings["validation"], lap = now - lap, now
    quality = assess_quality(rec)
    if keep is not None:
        keep["beats"] = quality.beats
    qd = quality.to_dict()
    now = time.perf_counter()
    if timings is not None:
        timings["quality"], lap = now - lap, now
    out = {**base, "validation": validation.to_dict(), "quality": qd}
    if quality.rejected:
        why = "; ".join(quality.reasons) or "rejected by the quality check"
        return {**out, **_all_null(f"not measured: recording rejected by quality check ({why})")}
    if notch_hz:
        from detak.signal.filters import notch

        rec = rec.replace(signal=notch(rec.signal, rec.fs, notch_hz))
    iv = measure_intervals(rec, beats=quality.beats)   # one beat train: one heart rate
    fiducials = {"beats_s": [round(float(t), 3) for t in iv.beat_times_s],
                 "boundaries_ms": {lead: {k: None if v is None else round(float(v), 1)
                                          for k, v in b.items()}
                                   for lead, b in iv.boundaries.items()}}
    if timings is not None:
        timings["intervals"] = time.perf_counter() - lap
    return {**out, **iv.to_dict(), "fiducials": fiducials}
