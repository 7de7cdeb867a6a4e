"""Read EDF / EDF+ / BDF files (European Data Format) as `Recording`.

Why edfio: it is pure Python on numpy (no compiled extension to build on a Raspberry Pi, unlike
pyEDFlib; no MNE-sized dependency tree), actively maintained, reads EDF, EDF+ (with
annotations) and BDF, and validates headers strictly — a malformed file fails loudly instead of
yielding garbage.

Which signals become leads (EDF files often carry respiration, SpO2 or EEG beside the ECG):

1. ``signals=[...]`` picks signals by label (raw label or its lead name), in that order.
2. Otherwise the ECG signals are taken: labels starting with ``ECG``/``EKG`` (``ECG II``,
   ``EKG V1``) or naming a lead (``II``, ``V5``, ``MLII``). If no label looks like ECG, every
   signal with a voltage unit is taken (single-purpose devices with labels such as ``CH1``).
   Signals not taken are listed in ``meta["edf_dropped_signals"]``.
3. The signals taken must share one sample rate. We do not silently drop an ECG lead because
   it is sampled more slowly: `RecordingError` ``mixed_sample_rates`` lists every signal's rate,
   and ``signals=`` chooses.

Lead names drop the ``ECG``/``EKG`` prefix and are normalised (``ECG II`` → ``II``; a bare
``ECG`` stays ``ECG``). Physical dimensions ``uV``/``µV``, ``mV``, ``V``, ``nV`` are converted to
millivolts; anything else (or a blank dimension) on a chosen signal is ``unknown_units``,
naming the file and signal. The start date and time become ``start_time`` (no zone: EDF has
none); EDF+ annotations go into ``meta["annotations"]`` (``onset_s``, ``duration_s``, ``text``);
the EDF+ patient's sex and age at recording go into ``meta`` — name, code and birth date are
not copied, as they identify the person. A file edfio cannot parse is ``corrupt_file``; one
shorter than its header says is ``truncated_file`` unless ``allow_truncated=True``;
EDF+D (discontinuous) files are ``discontinuous_file``.

>>> import tempfile, numpy as np, edfio
>>> path = tempfile.mkdtemp() + "/ecg.edf"
>>> ecg = edfio.EdfSignal(np.zeros(2000), 200, label="ECG II", physical_dimension="uV",
...                       physical_range=(-5000, 5000))
>>> resp = edfio.EdfSignal(np.zeros(250), 25, label="Resp", physical_dimension="Ohm")
>>> edfio.Edf([ecg, resp]).write(path)
>>> rec = read_edf(path)
>>> rec.leads, rec.fs, rec.n_samples, rec.meta["edf_dropped_signals"]
(('II',), 200.0, 2000, ['Resp (25 Hz, Ohm)'])
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from detak.data.leads import equivalent_standard_lead, normalize_lead_name
from detak.data.numbers import VOLTAGE_UNITS, millivolts_per_unit
from detak.data.recording import Recording
from detak.data.validation import RecordingError

_ECG_PREFIX = re.compile(r"^\s*(?:ECG|EKG)(?:[\s_\-:.]+|$)(.*)$", re.IGNORECASE)


def edf_lead_name(label: str) -> str:
    """The lead name of an EDF signal label: ``ECG II`` → ``II``, ``EKG`` → ``ECG``.

    >>> [edf_lead_name(x) for x in ("ECG V1", "ekg_avr", "ECG", "CH1")]
    ['V1', 'aVR', 'ECG', 'CH1']
    """
    m = _ECG_PREFIX.match(label)
    if m:
        rest = m.group(1).strip()
        return normalize_lead_name(rest) if rest else "ECG"
    return normalize_lead_name(label)


def _is_ecg_label(label: str) -> bool:
    return bool(_ECG_PREFIX.match(label)) or equivalent_standard_lead(label.strip()) is not None


def _describe(sig: Any) -> str:
    unit = sig.physical_dimension.strip() or "no unit"
    return f"{sig.label.strip()} ({sig.sampling_frequency:g} Hz, {unit})"


def _age(birthdate: Any, startdate: Any) -> int:
    years = startdate.year - birthdate.year
    if (startdate.month, startdate.day) < (birthdate.month, birthdate.day):
        years -= 1
    return years


def _patient_meta(edf: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    try:
        patient = edf.patient
        sex = patient.sex
        if sex in ("M", "F"):
            meta["sex"] = sex
        birthdate = patient.birthdate
        startdate = edf.startdate
        if birthdate and startdate:
            meta["age"] = _age(birthdate, startdate)
    except Exception:     # not EDF+ compliant, anonymised ("X") or unparsable fields
        pass
    try:
        equipment = edf.recording.equipment_code
        if equipment and equipment != "X":
            meta["equipment"] = equipment
    except Exception:
        pass
    return meta


def read_edf(path: str | Path, *, signals: Sequence[str] | None = None,
             allow_truncated: bool = False) -> Recording:
    """Read an EDF, EDF+ or BDF file into a `Recording` in millivolts (rules above).

    Raises `FileNotFoundError`, or `RecordingError` with ``problem`` ``corrupt_file``,
    ``truncated_file``, ``discontinuous_file``, ``mixed_sample_rates``, ``unknown_units``,
    ``missing_lead`` or ``no_leads``.

    >>> read_edf("/nonexistent/x.edf")
    Traceback (most recent call last):
    ...
    FileNotFoundError: EDF file not found: /nonexistent/x.edf
    """
    import edfio

    p = Path(path)
    source = str(p)
    if not p.is_file():
        raise FileNotFoundError(f"EDF file not found: {p}")
    reader = edfio.read_bdf if p.suffix.lower() == ".bdf" else edfio.read_edf
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            edf = reader(p)
        except Exception as exc:  # edfio raises ValueError, IndexError... on malformed files
            raise RecordingError("corrupt_file", f"not a readable EDF file "
                                                 f"({type(exc).__name__}: {exc})",
                                 source=source) from exc
    problems = [str(w.message) for w in caught
                if "truncat" in str(w.message).lower() or "data records" in str(w.message)]
    if problems and not allow_truncated:
        raise RecordingError("truncated_file", f"the file is shorter than its header says "
                                               f"({'; '.join(problems)}); pass "
                                               f"allow_truncated=True to read what is there",
                             source=source)
    try:
        continuous = edf.is_continuous
    except Exception:
        continuous = True
    if not continuous:
        raise RecordingError("discontinuous_file", "EDF+D (discontinuous) files are not "
                                                   "supported: the samples are not evenly "
                                                   "spaced", source=source)

    all_sigs = list(edf.signals)
    if signals is not None:
        chosen = []
        for want in signals:
            hits = [s for s in all_sigs if s.label.strip() == want.strip()
                    or edf_lead_name(s.label) == normalize_lead_name(want)]
            if not hits:
                raise RecordingError("missing_lead", f"no signal {want!r}; the file has "
                                                     f"{', '.join(_describe(s) for s in all_sigs)}",
                                     source=source)
            chosen.append(hits[0])
    else:
        chosen = [s for s in all_sigs if _is_ecg_label(s.label)]
        if not chosen:
            chosen = [s for s in all_sigs if millivolts_per_unit(s.physical_dimension)]
    if not chosen:
        listing = ", ".join(_describe(s) for s in all_sigs) or "none"
        raise RecordingError("no_leads", f"no ECG signal (label ECG/EKG or a lead name, or a "
                                         f"voltage unit); signals: {listing}", source=source)
    rates = {s.sampling_frequency for s in chosen}
    if len(rates) > 1:
        raise RecordingError(
            "mixed_sample_rates", f"the ECG signals have different sample rates: "
                                  f"{', '.join(_describe(s) for s in chosen)}; pass "
                                  f"signals=[...] with signals of one rate", source=source)
    rows, leads = [], []
    for s in chosen:
        scale = millivolts_per_unit(s.physical_dimension)
        if scale is None:
            raise RecordingError(
                "unknown_units", f"signal {s.label.strip()!r} has physical dimension "
                                 f"{s.physical_dimension.strip()!r}, not a voltage "
                                 f"({', '.join(VOLTAGE_UNITS)})", source=source)
        rows.append(np.asarray(s.data, dtype=np.float64) * scale)
        leads.append(edf_lead_name(s.label))
    n = min(len(r) for r in rows)
    meta = _patient_meta(edf)
    dropped = [_describe(s) for s in all_sigs if all(s is not c for c in chosen)]
    if dropped:
        meta["edf_dropped_signals"] = dropped
    annotations = [{"onset_s": float(a.onset),
                    "duration_s": None if a.duration is None else float(a.duration),
                    "text": a.text} for a in edf.annotations]
    if annotations:
        meta["annotations"] = annotations
    start = None
    try:
        start = datetime.combine(edf.startdate, edf.starttime)
    except Exception:     # anonymised start date
        start = None
    return Recording(signal=np.vstack([r[:n] for r in rows]).astype(np.float32),
                     fs=float(chosen[0].sampling_frequency), leads=leads, name=p.stem,
                     start_time=start, meta=meta)
