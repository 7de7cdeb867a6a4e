"""Check a `Recording` before analysis: errors raise `RecordingError`, doubtful leads are flagged.

Errors (the recording cannot be analysed; ``RecordingError.problem`` in brackets):

* no leads [``no_leads``];
* sample rate missing, NaN, not positive [``sample_rate_missing``] or below 50 Hz
  [``sample_rate_too_low``];
* shorter than 2 s [``too_short``];
* the same lead name twice after normalisation (``AVR`` and ``aVR``) [``duplicate_leads``];
* NaN or inf samples [``nonfinite_samples``], naming the leads and the first bad sample's time.
  With ``allow_flagged_gaps=True``, NaN samples inside the spans listed in ``meta["gaps"]``
  are accepted (a recorder marks signal drop-outs there; ``detak intervals``, ``quality`` and
  ``predict`` pass it). ``meta["gaps"]`` is a list of ``[start, stop, reason]`` sample spans
  (what the `Recorder` writes), ``[start_s, end_s]`` pairs or ``{"start_s": ..., "end_s":
  ...}`` dicts in seconds from the first sample, end exclusive, applying to every lead
  (`detak.data.gaps`); a malformed list is [``bad_gaps``]. inf is never accepted.

Flags (reported per lead with a reason, the recording stays usable):

* ``flat``: peak-to-peak of the finite samples below ``flat_ptp_mv`` (0.02 mV): a lead that is
  off, disconnected or constant;
* ``saturated``: at least ``saturation_fraction`` (1 %) of the samples sit on the channel's
  minimum or maximum (within 0.1 % of its range): the amplifier clipped. A clean ECG touches
  its extremes at one or two samples (the tallest R peak); a clipped one rests on a rail.

The readers (`detak.data.io.read_recording`) also raise `RecordingError`, with their own
``problem`` codes (``unknown_units``, ``corrupt_file``, ``sample_rate_missing``...).

>>> import numpy as np
>>> from detak.data.recording import Recording
>>> noise = np.random.default_rng(0).normal(0.0, 0.2, 2500)
>>> rec = Recording(np.vstack([noise, np.zeros(2500)]), 250.0, ["II", "V1"])
>>> report = validate_recording(rec)
>>> report.ok, [(f.lead, f.problem) for f in report.flags]
(True, [('V1', 'flat')])
>>> validate_recording(rec.replace(fs=25.0))
Traceback (most recent call last):
...
detak.data.validation.RecordingError: sample rate 25 Hz is below the 50 Hz minimum
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from detak.data.gaps import gap_mask, parse_gaps
from detak.data.recording import Recording

MIN_FS_HZ = 50.0
MIN_DURATION_S = 2.0
FLAT_PTP_MV = 0.02
SATURATION_FRACTION = 0.01
RAIL_TOLERANCE = 1e-3          # a sample "on the rail" is within 0.1 % of the range of its extreme


@dataclass(frozen=True)
class Issue:
    """One problem: a ``problem`` code, a readable ``message``, the ``lead`` if it is per lead."""

    problem: str
    message: str
    lead: str | None = None


class RecordingError(ValueError):
    """A recording (or the file it comes from) cannot be used.

    ``problem`` is a short code (``nonfinite_samples``, ``sample_rate_missing``...); the message
    names the problem and where (file, lead, sample time). ``issues`` lists every error found
    when several were (the message joins them; ``problem`` is the first one's).
    """

    def __init__(self, problem: str, message: str, *, source: str = "",
                 issues: Sequence[Issue] = ()) -> None:
        self.problem = problem
        self.source = source
        self.issues = tuple(issues) or (Issue(problem, message),)
        super().__init__(f"{source}: {message}" if source else message)


@dataclass
class ValidationReport:
    """What `validate_recording` found: ``errors`` (empty when ``ok``) and per-lead ``flags``."""

    name: str = ""
    errors: list[Issue] = field(default_factory=list)
    flags: list[Issue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def flagged_leads(self) -> dict[str, list[str]]:
        """``{lead: [problem, ...]}`` for leads with flags."""
        out: dict[str, list[str]] = {}
        for f in self.flags:
            out.setdefault(f.lead or "", []).append(f.problem)
        return out

    def raise_for_errors(self) -> None:
        """Raise `RecordingError` if there are errors (all messages joined)."""
        if self.errors:
            raise RecordingError(self.errors[0].problem,
                                 "; ".join(e.message for e in self.errors),
                                 source=self.name, issues=self.errors)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready: ``{"ok", "errors": [{problem, message}], "flags": [{lead, problem,
        message}]}``."""
        return {"ok": self.ok,
                "errors": [{"problem": e.problem, "message": e.message} for e in self.errors],
                "flags": [{"lead": f.lead, "problem": f.problem, "message": f.message}
                          for f in self.flags]}

    def summary(self) -> str:
        lines = [f"{self.name or 'recording'}: {'OK' if self.ok else 'INVALID'}"]
        lines += [f"  error {e.problem}: {e.message}" for e in self.errors]
        lines += [f"  flag {f.problem} ({f.lead}): {f.message}" for f in self.flags]
        return "\n".join(lines)


def _gap_mask(rec: Recording) -> tuple[np.ndarray | None, Issue | None]:
    """Boolean mask of samples inside ``meta["gaps"]``, or an issue if the list is malformed."""
    if rec.meta.get("gaps") is None:
        return None, None
    try:
        return gap_mask(rec.n_samples, parse_gaps(rec.meta["gaps"], rec.fs, rec.n_samples)), None
    except ValueError as err:
        return None, Issue("bad_gaps", str(err))


def _fs_text(fs: float) -> str:
    return f"{fs:g}"


def validate_recording(rec: Recording, *, allow_flagged_gaps: bool = False,
                       raise_errors: bool = True, min_fs: float = MIN_FS_HZ,
                       min_duration_s: float = MIN_DURATION_S, flat_ptp_mv: float = FLAT_PTP_MV,
                       saturation_fraction: float = SATURATION_FRACTION) -> ValidationReport:
    """Check ``rec``; raise `RecordingError` on errors (or, with ``raise_errors=False``, return
    them in the report), and flag flat or saturated leads.

    >>> import numpy as np
    >>> from detak.data.recording import Recording
    >>> x = np.random.default_rng(0).normal(0, 0.3, (1, 1000))
    >>> x[0, 10] = np.nan
    >>> validate_recording(Recording(x, 250.0, ["II"]))
    Traceback (most recent call last):
    ...
    detak.data.validation.RecordingError: NaN/inf samples in lead II (first at 0.040 s, sample 10)
    """
    report = ValidationReport(name=rec.name)
    errors, flags = report.errors, report.flags

    if rec.n_leads == 0:
        errors.append(Issue("no_leads", "the recording has no leads"))
    fs_ok = rec.fs is not None and math.isfinite(rec.fs) and rec.fs > 0
    if not fs_ok:
        errors.append(Issue("sample_rate_missing", f"sample rate missing or invalid ({rec.fs})"))
    elif rec.fs < min_fs:
        errors.append(Issue("sample_rate_too_low", f"sample rate {_fs_text(rec.fs)} Hz is below "
                                                   f"the {_fs_text(min_fs)} Hz minimum"))
    if fs_ok and rec.n_samples / rec.fs < min_duration_s:
        errors.append(Issue("too_short", f"recording lasts {rec.n_samples / rec.fs:.3f} s "
                                         f"({rec.n_samples} samples at {_fs_text(rec.fs)} Hz); "
                                         f"at least {min_duration_s:g} s needed"))
    elif rec.n_samples == 0:
        errors.append(Issue("too_short", "recording has no samples"))
    dupes = [name for name, n in Counter(rec.leads).items() if n > 1]
    if dupes:
        errors.append(Issue("duplicate_leads", f"duplicate lead names after normalisation: "
                                               f"{', '.join(dupes)} (leads: "
                                               f"{', '.join(rec.leads)})"))

    sig = rec.signal
    finite = np.isfinite(sig)
    if rec.n_leads and rec.n_samples and not finite.all():
        bad = ~finite
        gap_mask, gap_issue = (None, None)
        if allow_flagged_gaps:
            gap_mask, gap_issue = _gap_mask(rec)
            if gap_issue is not None:
                errors.append(gap_issue)
            elif gap_mask is not None:
                bad = bad & ~(np.isnan(sig) & gap_mask[np.newaxis, :])
        parts = []
        for i in np.flatnonzero(bad.any(axis=1)):
            first = int(np.argmax(bad[i]))
            when = f"{first / rec.fs:.3f} s, " if fs_ok else ""
            parts.append(f"{rec.leads[i]} (first at {when}sample {first})")
        if parts:
            hint = ""
            if not allow_flagged_gaps and "gaps" in rec.meta:
                hint = ('; meta["gaps"] lists gaps: validate_recording(..., '
                        'allow_flagged_gaps=True) accepts NaNs inside them, as the detak '
                        'commands do')
            elif allow_flagged_gaps:
                hint = ' outside the gaps in meta["gaps"]'
            lead_word = "lead" if len(parts) == 1 else "leads"
            errors.append(Issue("nonfinite_samples",
                                f"NaN/inf samples in {lead_word} {', '.join(parts)}{hint}"))

    for i, lead in enumerate(rec.leads):
        x = sig[i][finite[i]]
        if x.size == 0:
            flags.append(Issue("flat", "no finite samples", lead))
            continue
        lo, hi = float(x.min()), float(x.max())
        ptp = hi - lo
        if ptp < flat_ptp_mv:
            flags.append(Issue("flat", f"peak-to-peak {ptp:.4f} mV < {flat_ptp_mv:g} mV "
                                       f"(SD {float(x.std()):.4f} mV)", lead))
            continue
        tol = RAIL_TOLERANCE * ptp
        at_hi = int(np.count_nonzero(x >= hi - tol))
        at_lo = int(np.count_nonzero(x <= lo + tol))
        frac = (at_hi + at_lo) / x.size
        if frac >= saturation_fraction:
            rails = [f"{100 * n / x.size:.1f} % at the {which} {v:.3f} mV"
                     for n, which, v in ((at_hi, "maximum", hi), (at_lo, "minimum", lo))
                     if n / x.size >= saturation_fraction / 4]
            flags.append(Issue("saturated", f"{100 * frac:.1f} % of samples on a rail "
                                            f"({'; '.join(rails)}): clipping", lead))

    if raise_errors:
        report.raise_for_errors()
    return report
