"""Limb-electrode reversal: is a recording's limb cabling swapped (LA/RA, RA/LL, LA/LL)?

An interchange of two limb cables re-arranges and inverts the limb leads without changing the
chest leads (`detak.signal.perturb.swap_limb_electrodes`): it can mimic a lateral or inferior
infarction to a reader and to the MI model. The telltale signs are P-QRS patterns a normal
heart does not make (Batchvarov, Malik & Camm, "Incorrect electrode cable connection during
electrocardiographic recording", Europace 2007;9:1081-1090; its abstract, checked: "negative
P-QRS in lead I or II, positive in lead AVR, P-QRS complexes of opposite direction in leads I
and V6", and computerized detection "based on ... correlation between original and
reconstructed leads"; the full text was not available offline, the rest is unverified):

* aVR is normally the mirror image of the lateral leads: its median beat (P, QRS and T) is
  anti-correlated with V6's (on PTB-XL fold 1, median correlation -0.97, 99th percentile
  -0.32). After an LA/RA interchange aVR shows aVL, after RA/LL it shows aVF: the
  correlation turns positive (median +0.7). V6 is a chest lead, which no limb interchange
  changes, so it is the reference;
* **LA/RA**: additionally lead I points against V6 (lead I inverted: negative P-QRS-T in I);
* **RA/LL**: additionally lead II points against V6 (lead II inverted);
* **LA/LL**: I and II trade places, III and aVL/aVF too, aVR is unchanged; it maps a normal
  frontal axis onto a normal one, so no limb-lead pattern gives it away reliably. The classic
  sign, a P wave larger in I than in II (Abdollah & Milliken 1997, unverified; a 2024 review,
  Cureus 16:e53197, table 5, quotes a sensitivity of 90 % for it), overlaps a normal P axis
  below 30 degrees: in our version (mean P level in I above that in II, both positive, with a
  negative P in III) it fired on 3.7 % of the first 1000 PTB-XL fold-1 records as recorded and
  on 20 % of them LA/LL-swapped. It is not flagged; ``benchmarks/lead_reversal.py`` measures
  how often the check says anything for it.

The decision levels (`AVR_V6_CORR`, `INVERTED_CORR`) were chosen on PTB-XL fold 1 (1,500
records, unswapped and swapped); fold 9 is where ``benchmarks/lead_reversal.py`` measures them.

Dextrocardia inverts lead I and puts aVR upright just as LA/RA does (the chest leads differ:
R waves fall from V1 to V6); the kiosk's reason says so, as the check cannot tell them apart.

The median beat of each lead is taken over 300 ms before to 450 ms after each beat's fiducial
point (0.5-40 Hz signal). A recording without the six limb leads and V6, or with fewer than 3
complete beats, or with a lead that carries no signal, gets ``can_tell`` False: the check says
it cannot tell, it never guesses.

>>> import numpy as np
>>> from detak.signal.perturb import swap_limb_electrodes
>>> fs = 100.0; t = np.arange(1000) / fs
>>> def wave(c, w):  # a 10-s train of gaussians at phase c (s) within each 1-s beat
...     return np.exp(-0.5 * ((t % 1.0 - c) / w) ** 2)
>>> beat = 0.15 * wave(0.34, 0.03) + wave(0.5, 0.015) + 0.3 * wave(0.8, 0.05)   # P, QRS, T
>>> gains = {"I": 0.6, "II": 1.0, "III": 0.4, "aVR": -0.8, "aVL": 0.1, "aVF": 0.7, "V6": 0.9}
>>> names = list(gains)
>>> x = np.vstack([g * beat for g in gains.values()])
>>> peaks = np.arange(10) * 100 + 50
>>> check_limb_reversal(x, fs, names, peaks).suspected is None
True
>>> check_limb_reversal(swap_limb_electrodes(x, names, "LA/RA"), fs, names, peaks).suspected
'LA/RA'
>>> check_limb_reversal(x[:2], fs, names[:2], peaks).can_tell
False
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: interchanges the check can name
KINDS: tuple[str, ...] = ("LA/RA", "RA/LL")
#: what no limb-lead pattern reveals reliably (see the module docstring)
NOT_DETECTED: tuple[str, ...] = ("LA/LL",)
NEEDED_LEADS: tuple[str, ...] = ("I", "II", "III", "aVR", "aVL", "aVF", "V6")
BEAT_WINDOW_MS = (-300.0, 450.0)
#: aVR's median beat correlates with V6's above this: aVR is not the mirror of the lateral
#: leads it should be (normal records: 99th percentile -0.32 on PTB-XL fold 1)
AVR_V6_CORR = -0.3
#: the inverted lead (I for LA/RA, II for RA/LL) correlates with V6 below this
INVERTED_CORR = -0.2
MIN_BEATS = 3
FLAT_MV = 0.02   # a lead whose median beat spans less than this carries no usable signal


@dataclass
class ReversalCheck:
    """The check's result: ``suspected`` (one of `KINDS`, None when nothing is suspected or
    it cannot tell), ``can_tell`` and ``why_not`` (why it could not), and ``corr_v6``: each
    limb lead's median-beat correlation with V6."""

    suspected: str | None = None
    can_tell: bool = True
    why_not: str | None = None
    corr_v6: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"suspected": self.suspected, "can_tell": self.can_tell,
                "why_not": self.why_not,
                "corr_v6": {k: round(v, 3) for k, v in self.corr_v6.items()}}


def median_beats(x: np.ndarray, fs: float, peaks: np.ndarray,
                 window_ms: tuple[float, float] = BEAT_WINDOW_MS) -> tuple[np.ndarray, int]:
    """(n_leads, window) median beat around ``peaks`` (beats whose window leaves the signal
    are skipped) and the number of beats used.

    >>> import numpy as np
    >>> x = np.zeros((1, 1000)); x[0, 100::200] = 1.0
    >>> b, n = median_beats(x, 100.0, np.arange(100, 1000, 200))
    >>> b.shape, n, float(b[0, 30])
    ((1, 75), 5, 1.0)
    """
    a = int(round(window_ms[0] * fs / 1000.0))
    b = int(round(window_ms[1] * fs / 1000.0))
    pk = np.asarray(peaks, dtype=np.int64)
    pk = pk[(pk + a >= 0) & (pk + b <= x.shape[1])]
    if pk.size == 0:
        return np.zeros((x.shape[0], b - a)), 0
    idx = pk[:, None] + np.arange(a, b)[None, :]
    return np.median(np.asarray(x, dtype=np.float64)[:, idx], axis=1), int(pk.size)


def _fiducials(x: np.ndarray, fs: float) -> np.ndarray:
    """Beat fiducials when none are given: peaks of the summed absolute slope (the spatial
    velocity) at least 250 ms apart and above 30 % of its 99th percentile."""
    from scipy.signal import find_peaks

    sv = np.abs(np.diff(np.asarray(x, dtype=np.float64), axis=1)).sum(axis=0)
    height = 0.3 * float(np.percentile(sv, 99)) if sv.size else 0.0
    pk, _ = find_peaks(sv, height=height, distance=max(1, int(0.25 * fs)))
    return pk


def check_limb_reversal(x: np.ndarray, fs: float, leads: Sequence[str],
                        peaks: np.ndarray | None = None) -> ReversalCheck:
    """Check a recording for a limb-electrode interchange (see the module docstring).

    Args:
        x: (n_leads, n_samples) in mV, baseline removed and low-passed (0.5-40 Hz) — the
            quality check's filtered view; a raw signal works when its baseline is steady.
        fs: sample rate (Hz).
        leads: the name of each row; the six limb leads and V6 are needed.
        peaks: beat fiducials (sample indices at ``fs``), e.g. the quality check's shared beat
            train; found from the signal's slope when None.

    Returns:
        a `ReversalCheck`; ``can_tell`` False (with ``why_not``) when leads, beats or signal
        are missing, never an exception for a short or partial recording.
    """
    names = [str(n) for n in leads]
    arr = np.asarray(x, dtype=np.float64)
    missing = [ld for ld in NEEDED_LEADS if ld not in names]
    if missing:
        return ReversalCheck(can_tell=False, why_not="needs leads " + ", ".join(missing))
    if arr.ndim != 2 or arr.shape[0] != len(names) or not np.all(np.isfinite(arr)):
        return ReversalCheck(can_tell=False, why_not="signal shape or samples unusable")
    sub = arr[[names.index(ld) for ld in NEEDED_LEADS]]
    pk = _fiducials(arr, fs) if peaks is None else np.asarray(peaks, dtype=np.int64)
    beat, n = median_beats(sub, fs, pk)
    if n < MIN_BEATS:
        return ReversalCheck(can_tell=False, why_not=f"{n} complete beats (needs {MIN_BEATS})")
    beat = beat - np.median(beat, axis=1, keepdims=True)
    flat = [ld for ld, row in zip(NEEDED_LEADS, beat, strict=True) if np.ptp(row) < FLAT_MV]
    if flat:
        return ReversalCheck(can_tell=False, why_not="no signal in " + ", ".join(flat))
    c = np.corrcoef(beat)[-1, :-1]
    corr = dict(zip(NEEDED_LEADS[:-1], map(float, c), strict=True))
    return ReversalCheck(suspected=classify(corr), corr_v6=corr)


def classify(corr_v6: dict[str, float]) -> str | None:
    """The interchange that the limb leads' correlations with V6 point at, or None.

    >>> normal = {"I": 0.9, "II": 0.8, "III": -0.1, "aVR": -0.97, "aVL": 0.6, "aVF": 0.4}
    >>> classify(normal) is None
    True
    >>> classify(dict(normal, I=-0.9, II=-0.1, III=0.8, aVR=0.6, aVL=-0.97))   # LA/RA
    'LA/RA'
    """
    if corr_v6["aVR"] <= AVR_V6_CORR:
        return None
    if corr_v6["I"] < INVERTED_CORR and corr_v6["I"] < corr_v6["II"]:
        return "LA/RA"
    if corr_v6["II"] < INVERTED_CORR and corr_v6["II"] <= corr_v6["I"]:
        return "RA/LL"
    return None
