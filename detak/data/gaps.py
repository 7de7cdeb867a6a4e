"""Flagged gaps in a `Recording`: where they are, what is gap-free, and how the CNN gets a window.

A *gap* is a span of samples the recorder never received (a BLE link drops now and then): the
`Recorder` fills it with NaN in every lead and lists it in ``meta["gaps"]``. Nothing here joins
the signal around a gap: the analysis either avoids the gap (beats whose surroundings touch it,
RR intervals across it) or, for the CNN only and with a warning, fills it in a documented way.

``meta["gaps"]`` entries, all end-exclusive and applying to every lead, in any order, may
overlap (they are merged):

* ``[start, stop, reason]`` — sample indices and a text reason, as the `Recorder` writes them
  (``[[22, 24, "lost"]]``; ``detak record`` stores them in the WFDB header);
* ``[start_s, end_s]`` or ``{"start_s": ..., "end_s": ...}`` — seconds from the first sample.

Bad inputs are `RecordingError` s naming the problem: a malformed list [``bad_gaps``]; NaN
outside every flagged span, or inf anywhere [``nonfinite_samples``], naming the lead and time.

>>> import numpy as np
>>> from detak.data.recording import Recording
>>> x = np.ones((2, 1000), np.float32); x[:, 300:350] = np.nan
>>> rec = Recording(x, 100.0, ["I", "II"], meta={"gaps": [[300, 350, "lost"]]})
>>> gap_spans(rec)
[(300, 350)]
>>> report = GapReport.of(rec)
>>> report.count, report.total_s, report.spans_s, report.longest_clean_s
(1, 0.5, [(3.0, 3.5)], 6.5)
>>> longest_clean_window(rec, 5.0)
(350, 850)
>>> bool(np.isfinite(fill_gaps(rec, "linear").signal).all())
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from detak.data.recording import Recording

Span = tuple[int, int]

#: fill methods `fill_gaps` knows (benchmarks/gap_fill_auc.py measures them on PTB-XL fold 9)
FILL_METHODS: tuple[str, ...] = ("linear", "baseline", "zero")
#: the fill the CNN gets (benchmarks/gap_fill_auc.py: the smallest AUC loss of the three)
DEFAULT_FILL = "linear"
#: the CNN refuses a recording (for MI) when its best 10-s window needs more than this filled;
#: benchmarks/gap_fill_auc.py on PTB-XL fold 9 (see README "Recordings with gaps")
MAX_FILLED_GAP_S = 0.5
#: a beat's wave-measurement window around its fiducial (before, after), seconds: P onset is
#: at most ~0.35 s before the R peak (PR <= 0.3 s plus half a QRS), T end at most ~0.6 s after;
#: PR, QRS, QT are measured on beats whose whole window is gap-free
BEAT_WINDOW_S: tuple[float, float] = (0.35, 0.6)
#: an R peak's own surroundings (its QRS): beats counted for RR and heart rate need this gap-free
QRS_WINDOW_S: tuple[float, float] = (0.1, 0.1)
#: the quality check rejects a recording whose gaps cover more than this share of it (the
#: missing-sample limit of one lead) ...
MAX_GAP_SHARE = 0.2
#: ... or whose longest gap-free stretch is shorter than this: one RR at 40 bpm (1.5 s) with
#: both QRS windows
MIN_CLEAN_S = 1.7


class GapError(ValueError):
    """Raised by `model_window` when the gaps leave too little for the CNN (``problem`` =
    ``gaps``); the message names the recording, the gaps and the limit."""

    problem = "gaps"


def _recording_error(problem: str, message: str, name: str) -> Exception:
    from detak.data.validation import RecordingError  # validation imports this module

    return RecordingError(problem, message, source=name)


def parse_gaps(value: Any, fs: float, n_samples: int) -> list[Span]:
    """``meta["gaps"]`` → merged, sorted ``(start, stop)`` sample spans clipped to the recording;
    `ValueError` with a readable message for a malformed list.

    >>> parse_gaps([[8, 10, "lost"], [0.05, 0.09], {"start_s": 0.02, "end_s": 0.03}], 100.0, 20)
    [(2, 3), (5, 10)]
    >>> parse_gaps([[3.0, 2.0]], 100.0, 1000)
    Traceback (most recent call last):
    ...
    ValueError: meta["gaps"][0] = [3.0, 2.0]: need finite start < end
    """
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise ValueError(f'meta["gaps"] must be a list of [start_s, end_s] or [start, stop, '
                         f'reason] spans, got {type(value).__name__}')
    spans: list[Span] = []
    for k, span in enumerate(value):
        try:
            if isinstance(span, dict):
                a, b = float(span["start_s"]) * fs, float(span["end_s"]) * fs
            elif (isinstance(span, list | tuple) and len(span) == 3
                  and isinstance(span[2], str)):                      # the Recorder's samples
                if any(isinstance(v, bool) or not float(v).is_integer() for v in span[:2]):
                    raise ValueError
                a, b = float(span[0]), float(span[1])
            elif isinstance(span, list | tuple) and len(span) == 2:
                a, b = (float(v) * fs for v in span)
            else:
                raise ValueError
        except (TypeError, ValueError, KeyError):
            raise ValueError(f'meta["gaps"][{k}] = {span!r} is not a [start_s, end_s] or '
                             f'[start, stop, reason] span') from None
        if not (math.isfinite(a) and math.isfinite(b) and b > a):
            raise ValueError(f'meta["gaps"][{k}] = {span!r}: need finite start < end')
        i0 = max(0, math.ceil(a - 1e-6))
        i1 = min(int(n_samples), math.ceil(b - 1e-6))
        if i1 > i0:
            spans.append((i0, i1))
    return merge_spans(spans)


def with_gaps(rec: Recording, spans_s: Sequence[tuple[float, float]],
              reason: str = "lost") -> Recording:
    """A copy of ``rec`` with gaps as the `Recorder` leaves them: NaN in every lead over each
    ``(start_s, end_s)`` span and ``meta["gaps"]`` listing ``[start, stop, reason]`` samples
    (to simulate a link that dropped frames).

    >>> import numpy as np
    >>> out = with_gaps(Recording(np.ones((2, 100)), 100.0, ["I", "II"]), [(0.1, 0.12)])
    >>> out.meta["gaps"], int(np.isnan(out.signal).sum())
    ([[10, 12, 'lost']], 4)
    """
    sig = rec.signal.copy()
    gaps = []
    for a, b in spans_s:
        i0, i1 = int(round(a * rec.fs)), int(round(b * rec.fs))
        sig[:, i0:i1] = np.nan
        gaps.append([i0, i1, reason])
    return rec.replace(signal=sig, meta={**rec.meta, "gaps": gaps})


def merge_spans(spans: Sequence[Span]) -> list[Span]:
    """Sorted union of ``(start, stop)`` spans (overlapping or touching ones merged).

    >>> merge_spans([(5, 9), (0, 2), (8, 12), (2, 3)])
    [(0, 3), (5, 12)]
    """
    out: list[list[int]] = []
    for a, b in sorted((int(a), int(b)) for a, b in spans):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def flagged_spans(rec: Recording) -> list[Span]:
    """The spans ``meta["gaps"]`` lists (no check of the samples); `RecordingError`
    [``bad_gaps``] if the list is malformed."""
    try:
        return parse_gaps(rec.meta.get("gaps"), float(rec.fs), rec.n_samples)
    except ValueError as err:
        raise _recording_error("bad_gaps", str(err), rec.name) from None


def gap_mask(n_samples: int, spans: Sequence[Span]) -> np.ndarray:
    """Boolean mask, True inside the spans.

    >>> gap_mask(6, [(1, 3)]).tolist()
    [False, True, True, False, False, False]
    """
    mask = np.zeros(int(n_samples), dtype=bool)
    for a, b in spans:
        mask[a:b] = True
    return mask


def gap_spans(rec: Recording) -> list[Span]:
    """The flagged gaps of ``rec`` as sample spans, checked against the samples: NaN outside
    every flagged span (an all-NaN lead included) or inf anywhere is a `RecordingError`
    [``nonfinite_samples``] naming the leads and the first bad sample's time.

    >>> import numpy as np
    >>> x = np.ones((1, 500), np.float32); x[0, 100] = np.nan
    >>> gap_spans(Recording(x, 100.0, ["II"], name="r"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    detak.data.validation.RecordingError: r: NaN/inf samples outside the flagged gaps in lead II ...
    """
    spans = flagged_spans(rec)
    sig = rec.signal
    bad = ~np.isfinite(sig)
    if bad.any():
        bad &= ~(np.isnan(sig) & gap_mask(rec.n_samples, spans)[np.newaxis, :])
    if bad.any():
        parts = []
        for i in np.flatnonzero(bad.any(axis=1)):
            first = int(np.argmax(bad[i]))
            parts.append(f"{rec.leads[i]} (first at {first / rec.fs:.3f} s, sample {first})")
        word = "lead" if len(parts) == 1 else "leads"
        raise _recording_error("nonfinite_samples", f"NaN/inf samples outside the flagged gaps "
                                                    f"in {word} {', '.join(parts)}", rec.name)
    return spans


def clean_runs(spans: Sequence[Span], n_samples: int) -> list[Span]:
    """The gap-free stretches between the (merged) spans, in order.

    >>> clean_runs([(0, 2), (5, 6)], 10)
    [(2, 5), (6, 10)]
    """
    runs, at = [], 0
    for a, b in merge_spans(spans):
        if a > at:
            runs.append((at, a))
        at = max(at, b)
    if n_samples > at:
        runs.append((at, int(n_samples)))
    return runs


@dataclass(frozen=True)
class GapReport:
    """The gaps of one recording: ``spans`` (samples, merged) at ``fs`` over ``n_samples``."""

    spans: tuple[Span, ...]
    fs: float
    n_samples: int

    @classmethod
    def of(cls, rec: Recording, spans: Sequence[Span] | None = None) -> GapReport:
        """The report for ``rec`` (``spans`` default: `gap_spans`, which checks the NaNs)."""
        spans = gap_spans(rec) if spans is None else merge_spans(spans)
        return cls(tuple(spans), float(rec.fs), rec.n_samples)

    @property
    def count(self) -> int:
        return len(self.spans)

    @property
    def total_s(self) -> float:
        return round(sum(b - a for a, b in self.spans) / self.fs, 3)

    @property
    def spans_s(self) -> list[tuple[float, float]]:
        """``(start_s, end_s)`` of each gap."""
        return [(round(a / self.fs, 3), round(b / self.fs, 3)) for a, b in self.spans]

    @property
    def longest_clean_s(self) -> float:
        runs = clean_runs(self.spans, self.n_samples)
        return round(max((b - a for a, b in runs), default=0) / self.fs, 3)

    @property
    def share(self) -> float:
        """Share of the recording inside gaps (0 for an empty recording)."""
        return sum(b - a for a, b in self.spans) / self.n_samples if self.n_samples else 0.0

    def rejects(self) -> str | None:
        """Why the gaps leave too little to analyse (`MAX_GAP_SHARE`, `MIN_CLEAN_S`), or None.

        >>> GapReport(((0, 300),), 100.0, 1000).rejects()
        'gaps cover 30 % of the recording (more than 20 %)'
        """
        if not self.spans:
            return None
        if self.share > MAX_GAP_SHARE:
            return (f"gaps cover {100 * self.share:.0f} % of the recording (more than "
                    f"{100 * MAX_GAP_SHARE:.0f} %)")
        if self.longest_clean_s < MIN_CLEAN_S:
            return (f"longest gap-free stretch {self.longest_clean_s:g} s (less than "
                    f"{MIN_CLEAN_S:g} s)")
        return None

    def describe(self, limit: int = 8) -> str:
        """One line: count, total and where (the first ``limit`` spans).

        >>> GapReport(((22, 24), (300, 302)), 100.0, 1000).describe()
        '2 gaps, 0.04 s in total, at 0.22-0.24 s, 3-3.02 s'
        """
        where = ", ".join(f"{a:g}-{b:g} s" for a, b in self.spans_s[:limit])
        more = f" (+{self.count - limit} more)" if self.count > limit else ""
        word = "gap" if self.count == 1 else "gaps"
        return f"{self.count} {word}, {self.total_s:g} s in total, at {where}{more}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``code`` (``gaps``), ``count``, ``total_s``, ``spans_s``,
        ``longest_gap_free_s`` and ``reject`` (why the gaps reject the recording, or null)."""
        return {"code": "gaps", "count": self.count, "total_s": self.total_s,
                "spans_s": [list(s) for s in self.spans_s],
                "longest_gap_free_s": self.longest_clean_s, "reject": self.rejects()}


def longest_clean_window(rec: Recording, seconds: float,
                         spans: Sequence[Span] | None = None) -> Span | None:
    """The first ``seconds``-long window inside the longest gap-free stretch, as ``(start,
    stop)`` samples, or None when no stretch is that long.

    >>> import numpy as np
    >>> rec = Recording(np.zeros((1, 1000)), 100.0, ["II"], meta={"gaps": [[1.0, 2.0]]})
    >>> longest_clean_window(rec, 8.0), longest_clean_window(rec, 9.0)
    ((200, 1000), None)
    """
    spans = gap_spans(rec) if spans is None else spans
    n = int(math.ceil(seconds * rec.fs - 1e-6))
    runs = clean_runs(spans, rec.n_samples)
    if not runs:
        return None
    a, b = max(runs, key=lambda r: (r[1] - r[0], -r[0]))
    return (a, a + n) if b - a >= n else None


def fill_array(x: np.ndarray, spans: Sequence[Span], method: str = DEFAULT_FILL) -> np.ndarray:
    """A copy of ``x`` (..., n_samples) with the spans filled, per lead:

    * ``linear``: a straight line from the last sample before the gap to the first after it
      (a gap at the start or end holds the nearest sample);
    * ``baseline``: the lead's median over the samples outside the gaps;
    * ``zero``: 0 mV.

    A lead with no sample outside the gaps is filled with 0.

    >>> fill_array(np.array([[0.0, np.nan, np.nan, 3.0]]), [(1, 3)]).tolist()
    [[0.0, 1.0, 2.0, 3.0]]
    >>> fill_array(np.array([[np.nan, 2.0, 4.0, 9.0]]), [(0, 1)], "baseline").tolist()
    [[4.0, 2.0, 4.0, 9.0]]
    """
    if method not in FILL_METHODS:
        raise ValueError(f"unknown gap fill {method!r}; use one of {', '.join(FILL_METHODS)}")
    out = np.array(x, dtype=np.float64, copy=True)
    if not spans:
        return out
    flat = out.reshape(-1, out.shape[-1])
    mask = gap_mask(out.shape[-1], spans)
    idx = np.arange(out.shape[-1])
    for row in flat:
        good = ~mask & np.isfinite(row)
        if not good.any() or method == "zero":
            row[mask] = 0.0
        elif method == "baseline":
            row[mask] = np.median(row[good])
        else:
            row[mask] = np.interp(idx[mask], idx[good], row[good])
    return out


def fill_gaps(rec: Recording, method: str = DEFAULT_FILL,
              spans: Sequence[Span] | None = None) -> Recording:
    """``rec`` with its gaps filled by ``method`` (`fill_array`); ``meta["gaps_filled"]`` says
    how. For the CNN only: intervals never measure on filled samples.

    >>> import numpy as np
    >>> x = np.array([[0.0, np.nan, 2.0] * 100])
    >>> rec = Recording(x, 100.0, ["II"], meta={"gaps": [[k, k + 1, "lost"] for k in
    ...                                                 range(1, 300, 3)]})
    >>> out = fill_gaps(rec)
    >>> out.signal[0, :3].tolist(), out.meta["gaps_filled"]
    ([0.0, 1.0, 2.0], 'linear')
    """
    spans = gap_spans(rec) if spans is None else spans
    filled = fill_array(rec.signal, spans, method).astype(np.float32)
    return rec.replace(signal=filled, meta={**rec.meta, "gaps_filled": method})


def beat_keep_mask(beats: np.ndarray, spans: Sequence[Span], fs: float,
                   window_s: tuple[float, float] = BEAT_WINDOW_S) -> np.ndarray:
    """True for each beat (fiducial sample at ``fs``) whose measurement window ``[beat -
    before, beat + after)`` touches no gap; ``spans`` in samples at ``fs``.

    >>> beat_keep_mask(np.array([100, 200, 300]), [(180, 190)], 100.0).tolist()
    [True, False, True]
    >>> beat_keep_mask(np.array([100, 200, 300]), [(180, 190)], 100.0, (0.0, 0.1)).tolist()
    [True, True, True]
    """
    beats = np.asarray(beats, dtype=np.int64)
    keep = np.ones(beats.size, dtype=bool)
    lo = beats - int(round(window_s[0] * fs))
    hi = beats + int(round(window_s[1] * fs))
    for a, b in spans:
        keep &= ~((lo < b) & (hi > a))
    return keep


def rr_keep_mask(beats: np.ndarray, spans: Sequence[Span]) -> np.ndarray:
    """Per interval between consecutive beats: True when no gap lies between them (an RR
    across a gap is not an RR: beats may be missing in it).

    >>> rr_keep_mask(np.array([100, 200, 300]), [(250, 260)]).tolist()
    [True, False]
    """
    beats = np.asarray(beats, dtype=np.int64)
    keep = np.ones(max(beats.size - 1, 0), dtype=bool)
    for a, b in spans:
        keep &= ~((beats[:-1] < b) & (beats[1:] > a))
    return keep


def model_window(rec: Recording, seconds: float, *, method: str = DEFAULT_FILL,
                 max_filled_s: float = MAX_FILLED_GAP_S) -> tuple[Recording, str | None]:
    """The part of ``rec`` a CNN with ``seconds``-long windows should see, and a warning.

    No gaps: ``rec`` itself, no warning. Otherwise the longest gap-free stretch if it lasts
    ``seconds`` or more (cut out, never joined to anything); else the ``seconds``-long window
    with the fewest gap samples (the earliest of equals), its gaps filled by ``method`` — or
    `GapError` when that window still needs more than ``max_filled_s`` filled.

    >>> import numpy as np
    >>> x = np.ones((1, 1200), np.float32); x[0, 100:110] = np.nan
    >>> rec = Recording(x, 100.0, ["II"], name="r", meta={"gaps": [[1.0, 1.1]]})
    >>> out, note = model_window(rec, 10.0)
    >>> out.n_samples, note
    (1090, 'r: 1 gap, 0.1 s in total, at 1-1.1 s; the CNN ran on the gap-free 10.9 s from 1.1 s')
    >>> model_window(rec, 12.0, max_filled_s=0.05)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    detak.data.gaps.GapError: r: 1 gap, 0.1 s in total, at 1-1.1 s; the best 12-s window needs ...
    """
    spans = gap_spans(rec)
    if not spans:
        return rec, None
    report = GapReport(tuple(spans), float(rec.fs), rec.n_samples)
    head = f"{rec.name or 'recording'}: {report.describe()}"
    n = int(math.ceil(seconds * rec.fs - 1e-6))
    if longest_clean_window(rec, seconds, spans) is not None:
        a, b = max(clean_runs(spans, rec.n_samples), key=lambda r: (r[1] - r[0], -r[0]))
        out = rec.replace(signal=rec.signal[:, a:b], meta={**rec.meta, "gaps": [],
                                                            "window_s": [a / rec.fs, b / rec.fs]})
        return out, (f"{head}; the CNN ran on the gap-free {(b - a) / rec.fs:g} s from "
                     f"{a / rec.fs:g} s")
    if rec.n_samples < n:
        return rec, None          # too short for the model: its own error says so
    mask = gap_mask(rec.n_samples, spans).astype(np.int64)
    per_window = np.convolve(mask, np.ones(n, dtype=np.int64), mode="valid")
    a = int(np.argmin(per_window))
    filled_s = float(per_window[a]) / rec.fs
    if filled_s > max_filled_s + 1e-9:
        raise GapError(f"{head}; the best {seconds:g}-s window needs {filled_s:g} s filled, more "
                       f"than the {max_filled_s:g} s the MI model tolerates (README, "
                       f'"Recordings with gaps"): record again')
    inside = [(max(s, a) - a, min(e, a + n) - a) for s, e in spans if s < a + n and e > a]
    win = rec.replace(signal=rec.signal[:, a:a + n], meta={**rec.meta, "gaps": [],
                                                            "window_s": [a / rec.fs,
                                                                         (a + n) / rec.fs]})
    out = fill_gaps(win, method, inside)
    return out, (f"{head}; no gap-free {seconds:g}-s window: the CNN ran on {a / rec.fs:g}-"
                 f"{(a + n) / rec.fs:g} s with {filled_s:g} s filled ({method} fill), "
                 f"its output is less certain")
