"""The ``[rhythm]`` section of a rule file: the thresholds of the rhythm findings, as data.

`parse_rhythm` checks the section when the rule file is loaded (`detak.models.rules`): every
key known, every threshold a finite number in its allowed range, ordered pairs in order. The
sources of the numbers are cited in the comments of ``detak/models/rulesets/clinical.toml``;
the rules that read them are in `detak.models.rhythm_rules`.

>>> from detak.models.rules import load_ruleset
>>> t = load_ruleset("clinical").rhythm
>>> t.brady_bpm, t.brady_review_bpm, t.tachy_bpm, t.pause_refer_s
(58.0, 50.0, 100.0, 3.0)
>>> import dataclasses
>>> parse_rhythm({**dataclasses.asdict(t), "brady_bpm": -1})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
detak.models.rhythm_thresholds.RhythmRulesError: rhythm.brady_bpm: must be a number in (0, ...
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

__all__ = ["RhythmRulesError", "RhythmThresholds", "parse_rhythm"]


class RhythmRulesError(ValueError):
    """A ``[rhythm]`` section that cannot be used (unknown key, missing or bad threshold);
    ``key`` is the dotted key (``rhythm.brady_bpm``), ``problem`` the message without it."""

    def __init__(self, key: str, problem: str) -> None:
        self.key, self.problem = key, problem
        super().__init__(f"{key}: {problem}")


@dataclass(frozen=True)
class RhythmThresholds:
    """Thresholds of the rhythm rules (units in the names; see clinical.toml for sources)."""

    min_beats: int                       # fewer beats: the rhythm cannot be classified
    af_irregularity: float               # Petrenas-style 8-beat RR irregularity: AF at >=
    af_rr_irregularity: float            # ... or whole-record median |dRR| / RR at >=
    sarrh_irregularity: float            # ... sinus arrhythmia (P waves present) at >=
    p_consistent_fraction: float         # sinus: P at a fixed PR before >= this share of beats
    p_absent_fraction: float             # AF: P matched before < this share of beats
    brady_bpm: float                     # sinus bradycardia: rate <
    brady_review_bpm: float              # ... routine review (else named only) when rate <
    tachy_bpm: float                     # sinus tachycardia / SVT: rate >
    af_refer_bpm: float                  # AF/flutter: refer today when ventricular rate >
    flutter_atrial_bpm: tuple[float, float]   # flutter waves: atrial rate in [lo, hi] /min
    flutter_band_ratio: float            # ... and T-Q power share in 4-9 Hz >=
    pause_s: float                       # pause: RR >
    pause_refer_s: float                 # pause: refer today when RR >
    pvc_per_10s: float                   # PVC finding: PVCs per 10 s >=
    pac_per_10s: float                   # PRC(S) finding: PACs per 10 s >=
    frequent_ectopy_per_10s: float       # routine review when PVC or PAC per 10 s >=
    paced_fraction: float                # PACE: paced beats / beats >=
    first_degree_pr_ms: float            # 1AVB: PR >
    dropped_beat_ratio: tuple[float, float]   # 2AVB: longest RR / dominant RR in [lo, hi]
    mobitz_i_pr_range_ms: float          # Mobitz I: PR varies by >= (progressive lengthening)
    mobitz_ii_pr_range_ms: float         # Mobitz II: PR varies by < (constant PR)
    escape_max_bpm: float                # 3AVB: regular escape rhythm at rate <
    dissociation_jitter_ms: float        # 3AVB: ... and P peak scatter (MAD) >= (AV dissociation)
    svt_min_bpm: float                   # SVTAC: regular narrow rhythm without P at rate >
    # AF / flutter evidence (issue 17, lane rhythmaf)
    af_p_scatter_ms: float               # AF needs P peak scatter >= (else P nearly fixed) ...
    af_fwave_band_ratio: float           # ... unless f waves: T-Q power share in 4-9 Hz >=
    fwave_min_hz: float                  # ... with the T-Q spectral peak at >= (Hz)
    af_no_p_scatter_ms: float            # no P at all: scatter >= (or no P in the median beat)
    af_cycle_variability: float          # AF, not bigeminy: premature cycles vary by >=
    af_min_irregularity: float           # AF with f waves and no P: 8-beat irregularity >=
    flutter_2to1_min_bpm: float          # regular "sinus" at >= this rate: flutter 2:1 or SVT
    af_classifier_p_12lead: float        # AF screen: rules' AF, or classifier P(AF) >= (12 leads)
    af_classifier_p_ii: float            # ... on lead II alone
    af_classifier_p_i: float             # ... on lead I alone


# allowed (low, high] of each threshold; fractions and ratios in (0, 1]
_LIMITS: dict[str, tuple[float, float]] = {
    "min_beats": (2, 100), "af_irregularity": (0, 5), "af_rr_irregularity": (0, 5),
    "sarrh_irregularity": (0, 5),
    "p_consistent_fraction": (0, 1), "p_absent_fraction": (0, 1), "brady_bpm": (0, 300),
    "brady_review_bpm": (0, 300),
    "tachy_bpm": (0, 300), "af_refer_bpm": (0, 300), "flutter_atrial_bpm": (0, 600),
    "flutter_band_ratio": (0, 1), "pause_s": (0, 60), "pause_refer_s": (0, 60),
    "pvc_per_10s": (0, 100), "pac_per_10s": (0, 100), "frequent_ectopy_per_10s": (0, 100),
    "paced_fraction": (0, 1), "first_degree_pr_ms": (0, 1000), "dropped_beat_ratio": (1, 10),
    "mobitz_i_pr_range_ms": (0, 1000), "mobitz_ii_pr_range_ms": (0, 1000),
    "escape_max_bpm": (0, 300), "dissociation_jitter_ms": (0, 1000), "svt_min_bpm": (0, 300),
    "af_p_scatter_ms": (0, 200), "af_fwave_band_ratio": (0, 1), "fwave_min_hz": (0, 50),
    "af_no_p_scatter_ms": (0, 200), "af_cycle_variability": (0, 5),
    "af_min_irregularity": (0, 5), "flutter_2to1_min_bpm": (0, 300),
    "af_classifier_p_12lead": (0, 1), "af_classifier_p_ii": (0, 1), "af_classifier_p_i": (0, 1),
}
_PAIRS = ("flutter_atrial_bpm", "dropped_beat_ratio")
# (smaller, larger): the first must be below the second
_ORDER = (("brady_review_bpm", "brady_bpm"), ("brady_bpm", "tachy_bpm"),
          ("pause_s", "pause_refer_s"), ("mobitz_ii_pr_range_ms", "mobitz_i_pr_range_ms"),
          ("af_p_scatter_ms", "af_no_p_scatter_ms"), ("af_min_irregularity", "af_irregularity"),
          ("tachy_bpm", "flutter_2to1_min_bpm"))


def _number(raw: Any, key: str) -> float:
    lo, hi = _LIMITS[key]
    ok = (isinstance(raw, numbers.Real) and not isinstance(raw, bool)
          and math.isfinite(float(raw)) and lo < float(raw) <= hi)
    if not ok:
        raise RhythmRulesError(f"rhythm.{key}",
                               f"must be a number in ({lo:g}, {hi:g}], got {raw!r}")
    return float(raw)


def parse_rhythm(section: Mapping[str, Any]) -> RhythmThresholds:
    """Check a ``[rhythm]`` table and return its thresholds (`RhythmRulesError` otherwise)."""
    if not isinstance(section, Mapping):
        raise RhythmRulesError("rhythm", f"expected a table, got {type(section).__name__}")
    names = [f.name for f in fields(RhythmThresholds)]
    unknown = sorted(set(section) - set(names))
    if unknown:
        raise RhythmRulesError("rhythm", f"unknown key(s) {', '.join(map(repr, unknown))}; "
                               f"allowed: {', '.join(names)}")
    missing = [n for n in names if n not in section]
    if missing:
        raise RhythmRulesError(f"rhythm.{missing[0]}", "required key missing")
    out: dict[str, Any] = {}
    for n in names:
        raw = section[n]
        if n in _PAIRS:
            if not isinstance(raw, (list, tuple)) or len(raw) != 2:
                raise RhythmRulesError(f"rhythm.{n}", f"must be [low, high], got {raw!r}")
            pair = (_number(raw[0], n), _number(raw[1], n))
            if not pair[0] < pair[1]:
                raise RhythmRulesError(f"rhythm.{n}", f"low must be below high, got {raw!r}")
            out[n] = pair
        elif n == "min_beats":
            if not isinstance(raw, int) or isinstance(raw, bool):
                raise RhythmRulesError(f"rhythm.{n}", f"must be a whole number, got {raw!r}")
            out[n] = int(_number(raw, n))
        else:
            out[n] = _number(raw, n)
    for a, b in _ORDER:
        if not out[a] < out[b]:
            raise RhythmRulesError(f"rhythm.{a}",
                                   f"{out[a]:g} must be below rhythm.{b} ({out[b]:g})")
    return RhythmThresholds(**out)
