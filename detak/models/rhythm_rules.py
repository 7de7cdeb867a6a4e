"""Rhythm findings by explicit rules: beat-level rhythm features → findings a nurse can read.

The rules read the features of `detak.signal.rhythm` (RR irregularity, P waves, f waves, PR
across beats, pauses, ectopy counts, pacing spikes) and the thresholds of the ``[rhythm]``
section of a rule set (``detak/models/rulesets/clinical.toml``, where each number's source is
cited; the ``s3`` rule set has no rhythm rules, as S3 published it). A finding is the dict of
the shared contract (``/work/rhythm-contract.md``, issue 17)::

    {"code": "AFIB", "source": "rules", "probability": None, "urgency": "refer today",
     "reasons": [{"en": "...", "id": "..."}], "text": {"en": ..., "id": ...}, "rule": "af"}

``code`` is a PTB-XL statement name (SR, SBRAD, STACH, SARRH, AFIB, AFLT, SVTAC, BIGU, TRIGU,
PACE, 1AVB, 2AVB, 3AVB, PVC, PRC(S)) or ``PAUSE`` / ``IRREG_UNCLASSIFIED``. ``urgency`` uses the
level names of the kiosk's urgency (`detak.kiosk.urgency`): ``"refer today"``, ``"routine
review"``, ``"no finding"`` (`URGENCY_LEVELS`).

The rules, in order. ``irr`` = the Petrenas-style 8-beat RR irregularity (the whole-record
median |dRR| / RR when the ectopy filter leaves too few intervals); "irregular" = irr >=
``af_irregularity`` or the whole-record median |dRR| / RR >= ``af_rr_irregularity``; "P
consistent" = a P wave at a fixed PR in the median beat, matched before >=
``p_consistent_fraction`` of the beats (in a regular rhythm the median beat's P at a fixed PR
is enough: at fast rates the P wave sits on the T wave and the beat-by-beat match misses it);
"P absent" = no P wave at a fixed PR, or matched before < ``p_absent_fraction``:

======================  =============================================  ======================
finding                 fires when                                     urgency
======================  =============================================  ======================
IRREG_UNCLASSIFIED      fewer than ``min_beats`` beats, or no RR        no finding (record
(cannot tell)           irregularity / rate measured                   again)
PACE                    pacing spikes and >= ``paced_fraction`` of      routine review
                        the beats paced
AFIB                    irregular and P absent [7,8], the P peak       refer today when the
                        wandering >= ``af_p_scatter_ms`` (or f waves:  mean ventricular rate
                        T-Q power share in 4-9 Hz >=                   > ``af_refer_bpm``,
                        ``af_fwave_band_ratio``, peak >=               else routine review
                        ``fwave_min_hz`` [11]); with a nearly fixed P
                        and no f waves: IRREG_UNCLASSIFIED. With no P
                        at all (scatter >= ``af_no_p_scatter_ms``)
                        also: irregular with premature beats counted
                        (whole record >= ``af_rr_irregularity``); a
                        bigeminal/trigeminal pattern whose cycles vary
                        >= ``af_cycle_variability`` [12]; f waves and
                        irregularity >= ``af_min_irregularity``
AFLT                    regular, P absent and flutter waves (T-Q
                        spectral peak at ``flutter_atrial_bpm``, band
                        share >= ``flutter_band_ratio``) [9]; or a
                        regular rhythm with a P at a fixed PR at >=
                        ``flutter_2to1_min_bpm`` ("flutter 2:1 or SVT
                        — cannot tell", not sinus tachycardia)
SBRAD / STACH           P consistent, rate < ``brady_bpm`` / >         routine review
                        ``tachy_bpm`` [3,4] (the rate is               (SBRAD: only below
                        ``ventricular_rate_bpm``, the median RR the    ``brady_review_bpm``,
                        kiosk shows)                                   else no finding)
SARRH                   P consistent, irr >= ``sarrh_irregularity``    no finding
SR                      P consistent otherwise                         no finding
SVTAC                   regular, P absent, rate > ``svt_min_bpm`` [9]  routine review
3AVB                    regular, P absent at a fixed PR but a P wave   refer today
                        in the median beat scattered by >=
                        ``dissociation_jitter_ms`` (AV dissociation),
                        rate < ``escape_max_bpm`` [3]
IRREG_UNCLASSIFIED      anything else (irregular with P waves in some  routine review
                        beats, irregular from premature beats without
                        P, regular without P, P not measured)
1AVB                    sinus rhythm and median PR >                   routine review
                        ``first_degree_pr_ms`` [3]
2AVB (mobitz I / II)    sinus, no ectopy, the longest RR is            refer today (II),
                        ``dropped_beat_ratio`` x the dominant RR, PR   routine review (I)
                        range >= ``mobitz_i_pr_range_ms`` (I) or <
                        ``mobitz_ii_pr_range_ms`` (II) [3]
PAUSE                   longest RR > ``pause_s``                        refer today when >
                                                                       ``pause_refer_s``
PVC / PRC(S)            per 10 s >= ``pvc_per_10s`` / ``pac_per_10s``  routine review when
                                                                       >= ``frequent_ectopy
                                                                       _per_10s``, else none
BIGU / TRIGU            every 2nd / 3rd beat ectopic over 3 cycles     routine review
                        (the rhythm finding unless irregular and P
                        absent: AF with the pattern)
======================  =============================================  ======================

With the classifier (`rhythm_block`), `af_screen` flags for the doctor the records where only
the classifier finds AF (P(AF) >= ``af_classifier_p_<view>``): "possible AF — rules and
classifier disagree", routine review.

Mobitz II is referred today (not in issue 17's examples): the 2018 ACC/AHA/HRS guideline [3]
treats it as an indication for pacing whatever the symptoms. What 10 s cannot show is said in
the reasons: 2:1 AV block looks like a regular rhythm (its hidden P is not measured), a blocked
atrial premature beat looks like Mobitz, paroxysmal SVT (PSVT) needs its onset.

>>> fs = rhythm_findings({"n_beats": 12, "ventricular_rate_bpm": 72.0, "mean_rr_ms": 833.0,
...                       "petrenas_irregularity": 0.02, "p_wave_template": True,
...                       "p_present_fraction": 1.0, "pr_median_ms": 236.0})
>>> [(f["code"], f["urgency"]) for f in fs]
[('SR', 'no finding'), ('1AVB', 'routine review')]
>>> fs[1]["reasons"][0]["en"]
'PR 236 ms is above 200 ms.'
>>> fs[1]["reasons"][0]["id"]
'PR 236 ms di atas 200 ms.'
"""

from __future__ import annotations

import importlib
import logging
import math
from collections.abc import Callable, Mapping
from typing import Any

from detak.models.rhythm_thresholds import RhythmThresholds

log = logging.getLogger(__name__)

__all__ = ["CODES", "NAMES", "NO_FINDING", "REFER_TODAY", "ROUTINE_REVIEW", "URGENCY_LEVELS",
           "af_screen", "rhythm_block", "rhythm_findings"]

# the kiosk's level names (detak.kiosk.urgency; models may not import the kiosk, a test keeps
# the two in step)
REFER_TODAY = "refer today"
ROUTINE_REVIEW = "routine review"
NO_FINDING = "no finding"
URGENCY_LEVELS: tuple[str, ...] = (NO_FINDING, ROUTINE_REVIEW, REFER_TODAY)

#: short names of the findings (glossary: /docs/glossary-id.md of the shared docs)
NAMES: dict[str, dict[str, str]] = {
    "SR": {"en": "sinus rhythm", "id": "irama sinus"},
    "SBRAD": {"en": "sinus bradycardia", "id": "sinus bradikardia"},
    "STACH": {"en": "sinus tachycardia", "id": "sinus takikardia"},
    "SARRH": {"en": "sinus arrhythmia", "id": "aritmia sinus"},
    "AFIB": {"en": "atrial fibrillation", "id": "fibrilasi atrium (FA)"},
    "AFLT": {"en": "atrial flutter", "id": "flutter atrium"},
    "SVTAC": {"en": "supraventricular tachycardia", "id": "takikardia supraventrikular"},
    "PSVT": {"en": "paroxysmal supraventricular tachycardia",
             "id": "takikardia supraventrikular paroksismal"},
    "BIGU": {"en": "bigeminy", "id": "bigemini"},
    "TRIGU": {"en": "trigeminy", "id": "trigemini"},
    "PACE": {"en": "paced rhythm", "id": "irama pacu"},
    "1AVB": {"en": "first-degree AV block", "id": "blok AV derajat 1"},
    "2AVB": {"en": "second-degree AV block", "id": "blok AV derajat 2"},
    "3AVB": {"en": "complete AV block", "id": "blok AV total (derajat 3)"},
    "PVC": {"en": "premature ventricular beats", "id": "kontraksi ventrikel prematur (KVP)"},
    "PRC(S)": {"en": "premature atrial beats", "id": "kontraksi atrium prematur (KAP)"},
    "PAUSE": {"en": "pause", "id": "jeda"},
    "IRREG_UNCLASSIFIED": {"en": "irregular rhythm — cannot classify",
                           "id": "irama tidak teratur — tidak dapat diklasifikasikan"},
}
CODES: tuple[str, ...] = tuple(NAMES)
_CANNOT_TELL = {"en": "rhythm cannot be classified", "id": "irama tidak dapat diklasifikasikan"}
_SINUS = ("SR", "SBRAD", "STACH", "SARRH")
_FLUTTER_OR_SVT = {"en": "atrial flutter (2:1) or SVT — cannot tell",
                   "id": "flutter atrium (2:1) atau takikardia supraventrikular — tidak dapat "
                         "dibedakan"}
#: a bigeminal / trigeminal pattern is premature beats: each >= 20 % early (the feature's
#: PREMATURE = 0.8), so the record's median |dRR| / RR is at least (1 - 0.8) / 2
_PATTERN_IRR = 0.1


def _num(x: float, nd: int, lang: str) -> str:
    text = f"{x:.{nd}f}"
    return text.replace(".", ",") if lang == "id" else text


def _reason(en: str, id_: str, **nums: tuple[float, int]) -> dict[str, str]:
    """Both languages of one reason; ``nums`` = name → (value, decimals), written with the
    language's decimal mark."""
    return {"en": en.format(**{k: _num(v, d, "en") for k, (v, d) in nums.items()}),
            "id": id_.format(**{k: _num(v, d, "id") for k, (v, d) in nums.items()})}


def _finding(code: str, urgency: str, rule: str, reasons: list[dict[str, str]],
             text: Mapping[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    return {"code": code, "source": "rules", "probability": None, "urgency": urgency,
            "reasons": reasons, "text": dict(text or NAMES[code]), "rule": rule, **extra}


def _get(values: Mapping[str, Any], key: str) -> Any:
    v = values.get(key)
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _thresholds(ruleset: Any) -> RhythmThresholds:
    from detak.models.rules import RuleSet, RuleSetError, load_ruleset

    rs = ruleset if isinstance(ruleset, RuleSet) else load_ruleset(ruleset)
    if rs.rhythm is None:
        raise RuleSetError(f"rule set {rs.name!r} has no [rhythm] section: it has no rhythm "
                           "rules (use the clinical rule set)", source=rs.path)
    return rs.rhythm


def rhythm_findings(features: Any, *, ruleset: Any = "clinical") -> list[dict[str, Any]]:
    """Rule findings of one recording's rhythm features.

    ``features``: a `detak.signal.rhythm.RhythmFeatures`, its ``to_dict()`` (as cached in
    JSON: ``{"values": ..., "reasons": ...}``) or a plain mapping of the values. ``ruleset``: a
    rule-set name, path or `detak.models.rules.RuleSet` with a ``[rhythm]`` section. Returns
    the rhythm finding first (one of SR, SBRAD, STACH, SARRH, AFIB, AFLT, SVTAC, 3AVB, PACE,
    BIGU, TRIGU, IRREG_UNCLASSIFIED), then the others (1AVB, 2AVB, PAUSE, PVC, PRC(S), BIGU,
    TRIGU; a code at most once).

    >>> f = rhythm_findings({"n_beats": 3})
    >>> [(x["code"], x["urgency"], x["rule"]) for x in f]
    [('IRREG_UNCLASSIFIED', 'no finding', 'cannot_tell')]
    >>> f[0]["reasons"][0]["en"]
    'Only 3 beats measured (fewer than 5): the rhythm cannot be classified; record again.'
    """
    t = _thresholds(ruleset)
    values, why, beats = _unpack(features)
    primary, sinus = _primary(values, why, t, beats)
    out = [primary]
    if primary["rule"] == "cannot_tell":
        return out
    for rule in _SECONDARY:
        out += [f for f in rule(values, t, sinus) if f["code"] != primary["code"]]
    return out


def _unpack(features: Any) -> tuple[Mapping[str, Any], Mapping[str, str], list[Mapping]]:
    """(values, null reasons, per-beat dicts: empty when not given)."""
    if hasattr(features, "values") and hasattr(features, "reasons") and not isinstance(
            features, Mapping):
        return features.values, features.reasons, list(getattr(features, "beats", []) or [])
    if isinstance(features, Mapping) and isinstance(features.get("values"), Mapping):
        return (features["values"], features.get("reasons") or {},
                list(features.get("beats") or []))
    if isinstance(features, Mapping):
        return features, {}, []
    raise TypeError(f"rhythm features must be RhythmFeatures or a mapping, got "
                    f"{type(features).__name__}")


def _cycle_irregularity(beats: list[Mapping], length: int) -> float | None:
    """Irregularity of the ectopic cycle: RR summed over ``length`` consecutive intervals
    (2: bigeminy, 3: trigeminy) from each starting offset, ``median |d cycle| / mean cycle``,
    the smallest over the offsets (the offset that starts each cycle at the ectopic beat).
    Low in PVC bigeminy (coupling + compensatory pause repeat), high in AF whose beats happen
    to alternate ectopic / dominant. None with fewer than 3 cycles.

    >>> _cycle_irregularity([{"rr_before_ms": x} for x in
    ...     (None, 807, 534, 925, 584, 898, 509, 984, 523, 927, 578, 843, 510)], 2)
    0.018
    """
    rr = [float(b["rr_before_ms"]) for b in beats if b.get("rr_before_ms") is not None]
    out = []
    for off in range(length):
        cyc = [sum(rr[i: i + length]) for i in range(off, len(rr) - length + 1, length)]
        if len(cyc) >= 3:
            d = sorted(abs(x - y) for x, y in zip(cyc[1:], cyc[:-1], strict=True))
            med = (d[(len(d) - 1) // 2] + d[len(d) // 2]) / 2
            out.append(med / (sum(cyc) / len(cyc)))
    return round(min(out), 3) if out else None


def _primary(v: Mapping[str, Any], why: Mapping[str, str], t: RhythmThresholds,
             beats: list[Mapping]) -> tuple[dict[str, Any], bool]:
    """(the rhythm finding, True when the rhythm is sinus)."""
    n = _get(v, "n_beats")
    rate = _get(v, "ventricular_rate_bpm")
    if n is None or n < t.min_beats:
        r = (_reason("Only {n} beats measured (fewer than {m}): the rhythm cannot be "
                     "classified; record again.",
                     "Hanya {n} denyut terukur (kurang dari {m}): irama tidak dapat "
                     "diklasifikasikan; ulangi perekaman.", n=(n or 0, 0), m=(t.min_beats, 0))
             if n is not None else
             {"en": "No beats measured: the rhythm cannot be classified ("
                    + (why.get("n_beats") or why.get("ventricular_rate_bpm") or "no features")
                    + "); record again.",
              "id": "Tidak ada denyut terukur: irama tidak dapat diklasifikasikan; ulangi "
                    "perekaman."})
        return _finding("IRREG_UNCLASSIFIED", NO_FINDING, "cannot_tell", [r],
                        _CANNOT_TELL), False
    irr_key = "petrenas_irregularity"
    irr = _get(v, irr_key)
    pattern = _pattern(v)
    rr_irr = _get(v, "rr_irregularity")
    if irr is None and pattern is None:
        irr_key, irr = "rr_irregularity", _get(v, "rr_irregularity")
    if irr is None and pattern is not None:
        # every other (third) interval touches an ectopic beat: the filter leaves nothing,
        # and the whole record's irregularity is the ectopy's; whether the coupled cycle
        # repeats (ectopy) or not (AF whose beats alternate by chance) needs the beats
        cyc = _cycle_irregularity(beats, 2 if pattern == "bigeminy" else 3) if beats else None
        irr_key, irr = ("cycle", cyc) if cyc is not None else ("pattern", 0.0)
    if rate is None or irr is None:
        missing = "ventricular_rate_bpm" if rate is None else "rr_irregularity"
        r = {"en": f"The RR irregularity could not be measured ({why.get(missing, 'unknown')}): "
                   "the rhythm cannot be classified; record again.",
             "id": "Ketidakteraturan RR tidak dapat diukur: irama tidak dapat "
                   "diklasifikasikan; ulangi perekaman."}
        return _finding("IRREG_UNCLASSIFIED", NO_FINDING, "cannot_tell", [r],
                        _CANNOT_TELL), False

    mean_rr = _get(v, "mean_rr_ms")
    mean_rate = 60000.0 / mean_rr if mean_rr else rate
    p_tmpl = _get(v, "p_wave_template")
    pfrac = _get(v, "p_present_fraction")
    p_sinus = p_tmpl is True and pfrac is not None and pfrac >= t.p_consistent_fraction
    p_absent = p_tmpl is False or (pfrac is not None and pfrac < t.p_absent_fraction)
    win, win_id = {"petrenas_irregularity": ("8-beat windows", "jendela 8 denyut"),
                   "cycle": ("of the ectopic cycle", "siklus ektopik")}.get(
        irr_key, ("whole record", "seluruh rekaman"))
    irr_r = _reason("RR irregularity {x} (" + win + "), AF limit {lim}.",
                    "Ketidakteraturan RR {x} (" + win_id + "), batas FA {lim}.",
                    x=(irr, 3), lim=(t.af_irregularity, 2))
    p_r = _p_reason(p_tmpl, pfrac, why)
    rate_r = _reason("Ventricular rate {r} bpm.", "Laju ventrikel {r} dpm.", r=(rate, 0))
    # how strongly P waves are absent: the P peak's beat-to-beat scatter (None: no P wave in
    # the median beat at all) and f waves between the beats
    scatter = _get(v, "p_peak_jitter_ms")
    fwaves = _fwaves(v, t)
    p_nearly_fixed = scatter is not None and scatter < t.af_p_scatter_ms and fwaves is None
    p_gone = p_tmpl is False and (scatter is None or scatter >= t.af_no_p_scatter_ms)

    # paced rhythm
    paced = _get(v, "paced_count") or 0
    if _get(v, "pacing_spikes") and paced / n >= t.paced_fraction:
        return _finding("PACE", ROUTINE_REVIEW, "paced", [_reason(
            "Pacing spike before {k} of {n} beats (paced rhythm from {f} %).",
            "Lonjakan pacu sebelum {k} dari {n} denyut (irama pacu mulai {f} %).",
            k=(paced, 0), n=(n, 0), f=(100 * t.paced_fraction, 0)), rate_r]), False

    ectopic = (_get(v, "pvc_count") or 0) + (_get(v, "pac_count") or 0)
    windowed = irr_key in ("petrenas_irregularity", "cycle")
    whole = (rr_irr is not None and rr_irr >= t.af_rr_irregularity and pattern is None
             and not ectopic)
    irregular = (windowed and irr >= t.af_irregularity) or whole
    if pattern is not None and not (irregular and p_absent):
        code = "BIGU" if pattern == "bigeminy" else "TRIGU"
        cyc_var = _premature_cycle_variability(v, beats)
        if p_gone and cyc_var is not None and cyc_var >= t.af_cycle_variability:
            # premature-looking beats without P waves whose cycles do not repeat: AF's short
            # cycles alternating with long ones by chance, not extrasystoles
            nth, nth_id = ("2nd", "kedua") if code == "BIGU" else ("3rd", "ketiga")
            return _af(t, mean_rate, "af_pattern", [_reason(
                "Every " + nth + " beat early, but the cycles around the early beats vary by "
                "{x} (at least {lim}; premature beats keep a fixed coupling).",
                "Setiap denyut " + nth_id + " lebih awal, tetapi siklus di sekitar denyut awal "
                "bervariasi {x} (minimal {lim}; denyut prematur memiliki coupling tetap).",
                x=(cyc_var, 3), lim=(t.af_cycle_variability, 2)),
                _no_p_reason(scatter, t), irr_r]), False
        return _finding(code, ROUTINE_REVIEW, pattern, [_pattern_reason(code), rate_r,
                                                        p_r]), False
    if not windowed or (irregular and irr < t.af_irregularity):
        irr_r = _reason("RR irregularity {x} over the whole record (AF limit {lim}"
                        + (", {p} in 8-beat windows after ectopy filtering)." if windowed
                           else "; the ectopy filter left too few intervals).")
                        + ("" if not ectopic else " Premature beats counted: the whole "
                           "record's irregularity is not used for AF."),
                        "Ketidakteraturan RR {x} pada seluruh rekaman (batas FA {lim}"
                        + (", {p} dalam jendela 8 denyut)." if windowed else ").")
                        + ("" if not ectopic else " Ada denyut prematur: ketidakteraturan "
                           "seluruh rekaman tidak dipakai untuk FA."),
                        x=(rr_irr or 0.0, 3), lim=(t.af_rr_irregularity, 2), p=(irr, 3))
    flutter = None if irregular else _flutter(v, t)
    if p_absent and irregular and flutter is None and p_nearly_fixed:
        # irregular, the P wave failed the irregular-rhythm jitter test but its peak wanders
        # little and no f waves are seen: sinus arrhythmia / atrial ectopy as often as AF
        return _finding("IRREG_UNCLASSIFIED", ROUTINE_REVIEW, "irregular_p_uncertain", [
            _reason("Irregular RR, and a P wave before the beats whose peak wanders only {s} "
                    "ms (below {lim} ms) with no fibrillatory waves: AF cannot be told from "
                    "sinus arrhythmia or premature atrial beats.",
                    "RR tidak teratur, dan gelombang P sebelum denyut yang puncaknya hanya "
                    "bergeser {s} ms (di bawah {lim} ms) tanpa gelombang fibrilasi: FA tidak "
                    "dapat dibedakan dari aritmia sinus atau kontraksi atrium prematur.",
                    s=(scatter, 0), lim=(t.af_p_scatter_ms, 0)), irr_r, rate_r]), False
    if p_absent and (irregular or flutter is not None):
        if flutter is None:
            return _af(t, mean_rate, "af", [irr_r, p_r] + ([fwaves] if fwaves else [])), False
        return _finding("AFLT", _rate_urgency(t, mean_rate), "flutter",
                        [flutter, p_r, irr_r, _rate_reason(t, mean_rate)],
                        ventricular_rate_bpm=round(mean_rate, 1)), False
    if p_tmpl is True and not p_sinus and not irregular:
        # regular, and the median beat has a P wave at a fixed PR (the jitter test) that the
        # beat-by-beat match missed (fast rates: P on the T wave): sinus
        p_sinus = True
        p_r = {"en": "P wave at a fixed PR in the median beat (regular rhythm; matched before "
                     f"{100.0 * (pfrac or 0.0):.0f} % of the beats one by one).",
               "id": "Gelombang P dengan PR tetap pada denyut median (irama teratur; cocok "
                     f"sebelum {100.0 * (pfrac or 0.0):.0f} % denyut satu per satu)."}
    if p_sinus:
        if rate < t.brady_bpm:
            review = rate < t.brady_review_bpm
            return _finding("SBRAD", ROUTINE_REVIEW if review else NO_FINDING, "sinus_brady", [
                _reason("Rate {r} bpm is below {lim} bpm.", "Laju {r} dpm di bawah {lim} dpm.",
                        r=(rate, 0), lim=(t.brady_bpm, 0)), p_r,
                _reason("Below {lim} bpm: routine review.",
                        "Di bawah {lim} dpm: tinjauan rutin.", lim=(t.brady_review_bpm, 0))
                if review else
                _reason("Not below {lim} bpm: no action on its own.",
                        "Tidak di bawah {lim} dpm: tidak perlu tindakan bila tanpa temuan "
                        "lain.", lim=(t.brady_review_bpm, 0))]), True
        if rate >= t.flutter_2to1_min_bpm and not irregular:
            # a regular "sinus" rhythm this fast: the P wave at a fixed PR may be a flutter
            # wave (2:1 conduction) or a retrograde / ectopic P (SVT)
            return _finding("AFLT", _rate_urgency(t, rate), "flutter_2to1", [_reason(
                "Regular rate {r} bpm (at least {lim} bpm) with one atrial wave at a fixed "
                "distance before each beat: atrial flutter with 2:1 conduction or SVT as "
                "often as sinus tachycardia; 10 s cannot tell them apart.",
                "Laju teratur {r} dpm (minimal {lim} dpm) dengan satu gelombang atrium pada "
                "jarak tetap sebelum tiap denyut: flutter atrium dengan konduksi 2:1 atau "
                "takikardia supraventrikular sama seringnya dengan sinus takikardia; 10 detik "
                "tidak dapat membedakannya.", r=(rate, 0), lim=(t.flutter_2to1_min_bpm, 0)),
                p_r, _rate_reason(t, rate)], _FLUTTER_OR_SVT,
                ventricular_rate_bpm=round(rate, 1)), False
        if rate > t.tachy_bpm:
            return _finding("STACH", ROUTINE_REVIEW, "sinus_tachy", [_reason(
                "Rate {r} bpm is above {lim} bpm.", "Laju {r} dpm di atas {lim} dpm.",
                r=(rate, 0), lim=(t.tachy_bpm, 0)), p_r]), True
        if irr >= t.sarrh_irregularity:
            return _finding("SARRH", NO_FINDING, "sinus_arrhythmia", [p_r, _reason(
                "RR irregularity {x} at or above {lim} with P waves before the beats.",
                "Ketidakteraturan RR {x} mencapai {lim} dengan gelombang P sebelum denyut.",
                x=(irr, 3), lim=(t.sarrh_irregularity, 2)), rate_r]), True
        return _finding("SR", NO_FINDING, "sinus", [_reason(
            "Regular rate {r} bpm (within {lo}–{hi} bpm).",
            "Laju teratur {r} dpm (dalam {lo}–{hi} dpm).",
            r=(rate, 0), lo=(t.brady_bpm, 0), hi=(t.tachy_bpm, 0)), p_r]), True
    if p_absent and not irregular:
        if rate > t.svt_min_bpm:
            return _finding("SVTAC", ROUTINE_REVIEW, "svt", [_reason(
                "Regular rate {r} bpm above {lim} bpm.", "Laju teratur {r} dpm di atas {lim} "
                "dpm.", r=(rate, 0), lim=(t.svt_min_bpm, 0)), p_r, irr_r]), False
        jit = _get(v, "p_peak_jitter_ms")
        if rate < t.escape_max_bpm and p_tmpl is False and jit is not None and (
                jit >= t.dissociation_jitter_ms):
            return _finding("3AVB", REFER_TODAY, "av_dissociation", [_reason(
                "Regular escape rhythm {r} bpm (below {lim} bpm).",
                "Irama pengganti teratur {r} dpm (di bawah {lim} dpm).",
                r=(rate, 0), lim=(t.escape_max_bpm, 0)), _reason(
                "P waves present but not at a fixed PR (scatter {j} ms): AV dissociation; "
                "refer today.",
                "Gelombang P ada tetapi PR tidak tetap (sebaran {j} ms): disosiasi AV; rujuk "
                "hari ini.", j=(_get(v, "p_peak_jitter_ms"), 0))]), False
    # ambiguous
    if irregular:
        lead = _reason("Irregular RR but P waves neither clearly present nor absent: the "
                       "rhythm cannot be classified.",
                       "RR tidak teratur tetapi gelombang P tidak jelas ada atau tidak ada: "
                       "irama tidak dapat diklasifikasikan.")
        return _finding("IRREG_UNCLASSIFIED", ROUTINE_REVIEW, "irregular_unclassified",
                        [lead, irr_r, p_r, rate_r]), False
    if ectopic and rr_irr is not None and rr_irr >= t.af_rr_irregularity and p_gone:
        # the "premature" beats of an irregular record without any P wave: AF's short cycles
        return _af(t, mean_rate, "af_ectopy", [_reason(
            "RR irregularity {x} over the whole record (AF limit {lim}); the beats counted as "
            "premature have no P wave either: AF's short cycles rather than ectopy.",
            "Ketidakteraturan RR {x} pada seluruh rekaman (batas FA {lim}); denyut yang "
            "terhitung prematur juga tanpa gelombang P: siklus pendek FA, bukan ektopik.",
            x=(rr_irr, 3), lim=(t.af_rr_irregularity, 2)), _no_p_reason(scatter, t),
            rate_r]), False
    if ectopic and rr_irr is not None and rr_irr >= t.af_rr_irregularity:
        lead = _reason("RR irregular with premature beats and no P waves at a fixed PR: AF "
                       "with ectopy or ectopy alone cannot be told apart.",
                       "RR tidak teratur dengan denyut prematur dan tanpa gelombang P dengan "
                       "PR tetap: FA dengan ektopik atau ektopik saja tidak dapat dibedakan.")
        return _finding("IRREG_UNCLASSIFIED", ROUTINE_REVIEW, "ectopy_unclassified",
                        [lead, irr_r, p_r, rate_r]), False
    if p_gone and fwaves is not None and irr >= t.af_min_irregularity:
        return _af(t, mean_rate, "af_fwaves", [fwaves, _no_p_reason(scatter, t), _reason(
            "RR irregularity {x} (" + win + "): below the AF limit {lim} but at least {lo}; "
            "with fibrillatory waves and no P wave AF is likely.",
            "Ketidakteraturan RR {x} (" + win_id + "): di bawah batas FA {lim} tetapi minimal "
            "{lo}; dengan gelombang fibrilasi dan tanpa gelombang P kemungkinan FA.",
            x=(irr, 3), lim=(t.af_irregularity, 2), lo=(t.af_min_irregularity, 2))]), False
    lead = _reason("Regular rhythm without P waves at a fixed PR before the beats (junctional "
                   "rhythm, 2:1 AV block or P waves not seen): cannot classify.",
                   "Irama teratur tanpa gelombang P dengan PR tetap sebelum denyut (irama "
                   "junctional, blok AV 2:1 atau gelombang P tidak terlihat): tidak dapat "
                   "diklasifikasikan.") if p_absent else _reason(
                   "P waves not measured: the rhythm cannot be classified.",
                   "Gelombang P tidak terukur: irama tidak dapat diklasifikasikan.")
    return _finding("IRREG_UNCLASSIFIED", ROUTINE_REVIEW, "regular_unclassified",
                    [lead, p_r, rate_r], _CANNOT_TELL), False


def _p_reason(p_tmpl: Any, pfrac: Any, why: Mapping[str, str]) -> dict[str, str]:
    if p_tmpl is None:
        return {"en": f"P waves not measured ({why.get('p_wave_template', 'unknown')}).",
                "id": "Gelombang P tidak terukur."}
    if not p_tmpl:
        return {"en": "No P wave at a fixed PR in the median beat.",
                "id": "Tidak ada gelombang P dengan PR tetap pada denyut median."}
    return _reason("P wave at a fixed PR before {f} % of the beats.",
                   "Gelombang P dengan PR tetap sebelum {f} % denyut.",
                   f=(100.0 * (pfrac or 0.0), 0))


def _rate_urgency(t: RhythmThresholds, rate: float) -> str:
    return REFER_TODAY if rate > t.af_refer_bpm else ROUTINE_REVIEW


def _rate_reason(t: RhythmThresholds, rate: float) -> dict[str, str]:
    refer = rate > t.af_refer_bpm
    return _reason(
        "Mean ventricular rate {r} bpm " + ("above" if refer else "at or below")
        + " {lim} bpm" + (": refer today." if refer else "."),
        "Laju ventrikel rata-rata {r} dpm " + ("di atas" if refer else "tidak di atas")
        + " {lim} dpm" + (": rujuk hari ini." if refer else "."),
        r=(rate, 0), lim=(t.af_refer_bpm, 0))


def _af(t: RhythmThresholds, mean_rate: float, rule: str,
        reasons: list[dict[str, str]]) -> dict[str, Any]:
    """The AFIB finding: urgency by the mean ventricular rate, whose reason ends the list."""
    return _finding("AFIB", _rate_urgency(t, mean_rate), rule,
                    [*reasons, _rate_reason(t, mean_rate)],
                    ventricular_rate_bpm=round(mean_rate, 1))


def _no_p_reason(scatter: float | None, t: RhythmThresholds) -> dict[str, str]:
    if scatter is None:
        return {"en": "No P wave in the median beat.",
                "id": "Tidak ada gelombang P pada denyut median."}
    return _reason("No P wave: the largest atrial deflection before the beats wanders {s} ms "
                   "(at least {lim} ms).",
                   "Tidak ada gelombang P: defleksi atrium terbesar sebelum denyut bergeser "
                   "{s} ms (minimal {lim} ms).", s=(scatter, 0), lim=(t.af_no_p_scatter_ms, 0))


def _fwaves(v: Mapping[str, Any], t: RhythmThresholds) -> dict[str, str] | None:
    """The f-wave reason when the T-Q segments' atrial activity is fibrillatory (power share in
    4-9 Hz >= ``af_fwave_band_ratio``, peak >= ``fwave_min_hz``), else None."""
    hz, ratio = _get(v, "fwave_peak_hz"), _get(v, "fwave_band_ratio")
    if hz is None or ratio is None or ratio < t.af_fwave_band_ratio or hz < t.fwave_min_hz:
        return None
    return _reason("Fibrillatory waves between the beats: {p} % of the T-Q power in 4–9 Hz "
                   "(at least {lim} %), peak {hz} Hz.",
                   "Gelombang fibrilasi di antara denyut: {p} % daya T-Q pada 4–9 Hz (minimal "
                   "{lim} %), puncak {hz} Hz.", p=(100.0 * ratio, 0),
                   lim=(100.0 * t.af_fwave_band_ratio, 0), hz=(hz, 1))


def _premature_cycle_variability(v: Mapping[str, Any], beats: list[Mapping]) -> float | None:
    """The feature, or computed from the per-beat list (caches written before it existed)."""
    x = _get(v, "premature_cycle_variability")
    if x is None and beats:
        from detak.signal.rhythm import premature_cycle_variability

        x = premature_cycle_variability(beats)[0]
    return x


def _flutter(v: Mapping[str, Any], t: RhythmThresholds) -> dict[str, str] | None:
    """The flutter reason when the T-Q spectrum peaks at a flutter rate, else None."""
    hz, ratio = _get(v, "fwave_peak_hz"), _get(v, "fwave_band_ratio")
    if hz is None or ratio is None:
        return None
    lo, hi = t.flutter_atrial_bpm
    if not (lo <= 60.0 * hz <= hi and ratio >= t.flutter_band_ratio):
        return None
    return _reason("Atrial waves at {a} /min between the beats ({lo}–{hi} /min), {p} % of "
                   "the T-Q power in 4–9 Hz.",
                   "Gelombang atrium {a} /menit di antara denyut ({lo}–{hi} /menit), {p} % "
                   "daya T-Q pada 4–9 Hz.",
                   a=(60.0 * hz, 0), lo=(lo, 0), hi=(hi, 0), p=(100.0 * ratio, 0))


# --- findings beside the rhythm ---------------------------------------------------------

def _first_degree(v: Mapping[str, Any], t: RhythmThresholds, sinus: bool) -> list[dict]:
    pr = _get(v, "pr_median_ms")
    if not sinus or pr is None or pr <= t.first_degree_pr_ms:
        return []
    return [_finding("1AVB", ROUTINE_REVIEW, "pr_long", [_reason(
        "PR {pr} ms is above {lim} ms.", "PR {pr} ms di atas {lim} ms.",
        pr=(pr, 0), lim=(t.first_degree_pr_ms, 0))])]


def _second_degree(v: Mapping[str, Any], t: RhythmThresholds, sinus: bool) -> list[dict]:
    longest, rate = _get(v, "longest_rr_ms"), _get(v, "ventricular_rate_bpm")
    pr_range = _get(v, "pr_range_ms")
    ectopy = (_get(v, "pvc_count") or 0) + (_get(v, "pac_count") or 0)
    if not sinus or longest is None or not rate or pr_range is None or ectopy:
        return []
    ratio = longest / (60000.0 / rate)
    lo, hi = t.dropped_beat_ratio
    if not lo <= ratio <= hi:
        return []
    drop = _reason("Longest RR {l} ms is {x} x the dominant RR (a dropped beat: {lo}–{hi} x).",
                   "RR terpanjang {l} ms = {x} x RR dominan (denyut hilang: {lo}–{hi} x).",
                   l=(longest, 0), x=(ratio, 2), lo=(lo, 1), hi=(hi, 1))
    if pr_range >= t.mobitz_i_pr_range_ms:
        return [_finding("2AVB", ROUTINE_REVIEW, "mobitz_i", [drop, _reason(
            "PR varies by {r} ms (at least {lim} ms: progressive lengthening, Mobitz I).",
            "PR bervariasi {r} ms (minimal {lim} ms: memanjang bertahap, Mobitz I).",
            r=(pr_range, 0), lim=(t.mobitz_i_pr_range_ms, 0))], mobitz="I")]
    if pr_range < t.mobitz_ii_pr_range_ms:
        return [_finding("2AVB", REFER_TODAY, "mobitz_ii", [drop, _reason(
            "PR constant (varies by {r} ms, below {lim} ms): Mobitz II; refer today. A "
            "blocked premature atrial beat looks the same on 10 s.",
            "PR tetap (bervariasi {r} ms, di bawah {lim} ms): Mobitz II; rujuk hari ini. "
            "Kontraksi atrium prematur yang terblokir tampak sama dalam 10 detik.",
            r=(pr_range, 0), lim=(t.mobitz_ii_pr_range_ms, 0))], mobitz="II")]
    return []


def _pause(v: Mapping[str, Any], t: RhythmThresholds, sinus: bool) -> list[dict]:
    longest = _get(v, "longest_rr_ms")
    if longest is None or longest <= 1000.0 * t.pause_s:
        return []
    refer = longest > 1000.0 * t.pause_refer_s
    return [_finding("PAUSE", REFER_TODAY if refer else ROUTINE_REVIEW,
                     "pause_refer" if refer else "pause", [_reason(
                         "Pause of {s} s (above {lim} s)" + ("; refer today." if refer else "."),
                         "Jeda {s} detik (di atas {lim} detik)"
                         + ("; rujuk hari ini." if refer else "."),
                         s=(longest / 1000.0, 1),
                         lim=(t.pause_refer_s if refer else t.pause_s, 1))])]


def _ectopy(v: Mapping[str, Any], t: RhythmThresholds, sinus: bool) -> list[dict]:
    out = []
    for code, key, count, lim, en, id_ in (
            ("PVC", "pvc_per_10s", "pvc_count", t.pvc_per_10s, "ventricular", "ventrikel"),
            ("PRC(S)", "pac_per_10s", "pac_count", t.pac_per_10s, "atrial", "atrium")):
        rate, k = _get(v, key), _get(v, count)
        if rate is None or k is None or rate < lim:
            continue
        frequent = rate >= t.frequent_ectopy_per_10s
        out.append(_finding(code, ROUTINE_REVIEW if frequent else NO_FINDING, code.lower(), [
            _reason("{k} premature " + en + " beat(s), {r} per 10 s"
                    + (" (frequent: at least {f})." if frequent else "."),
                    "{k} kontraksi " + id_ + " prematur, {r} per 10 detik"
                    + (" (sering: minimal {f})." if frequent else "."),
                    k=(k, 0), r=(rate, 1), f=(t.frequent_ectopy_per_10s, 0))]))
    pattern = _pattern(v)
    if pattern is not None:
        code = "BIGU" if pattern == "bigeminy" else "TRIGU"
        out.append(_finding(code, ROUTINE_REVIEW, pattern, [_pattern_reason(code)]))
    return out


def _pattern(v: Mapping[str, Any]) -> str | None:
    """"bigeminy" / "trigeminy" when the beats of the pattern are premature, else None: a
    pattern of beats labelled ectopic by their shape alone in a regular rhythm is not one
    (PTB-XL 17: 2:1 flutter whose flutter waves deform every third QRS)."""
    pattern, rr_irr = _get(v, "ectopy_pattern"), _get(v, "rr_irregularity")
    if pattern not in ("bigeminy", "trigeminy") or rr_irr is None or rr_irr < _PATTERN_IRR:
        return None
    return str(pattern)


def _pattern_reason(code: str) -> dict[str, str]:
    nth, nth_id = ("2nd", "kedua") if code == "BIGU" else ("3rd", "ketiga")
    return {"en": f"Every {nth} beat ectopic over at least 3 cycles "
                  f"({NAMES[code]['en']}).",
            "id": f"Setiap denyut {nth_id} ektopik selama minimal 3 siklus "
                  f"({NAMES[code]['id']})."}


_SECONDARY: tuple[Callable[[Mapping[str, Any], RhythmThresholds, bool], list[dict]], ...] = (
    _first_degree, _second_degree, _pause, _ectopy)


# --- the AF screen: rules and classifier together ------------------------------------------

_POSSIBLE_AF = {"en": "possible atrial fibrillation — rules and classifier disagree",
                "id": "kemungkinan fibrilasi atrium — aturan dan pengklasifikasi tidak sepakat"}


def af_screen(findings: list[dict[str, Any]], *, view: str | None,
              ruleset: Any = "clinical") -> list[dict[str, Any]]:
    """The findings with the AF screen's disagreements flagged for the doctor.

    The screen is positive when the rules find AF, or when the classifier's AF probability
    reaches the rule set's ``af_classifier_p_<view>`` (chosen on PTB-XL folds 1-8 out of fold:
    `benchmarks/rhythm_af_screen.py`). The rules stay the explanation the nurse reads:
    when only the classifier finds AF, a rules finding ``IRREG_UNCLASSIFIED`` (rule
    ``af_classifier``, "possible AF — rules and classifier disagree", routine review) names the
    rules' own finding and the classifier's probability; when the rules' rhythm finding is
    itself ``IRREG_UNCLASSIFIED``, that finding gets the reasons instead (a code at most once).
    When the rules find AF and the classifier (which ran) does not, the rules' finding keeps
    its urgency and gets ``"classifier_agrees": False`` and a reason. Findings without a
    classifier view (``view`` None) or without classifier findings come back unchanged.

    >>> rules = [{"code": "SR", "source": "rules", "probability": None, "urgency": "no finding",
    ...           "reasons": [], "text": NAMES["SR"], "rule": "sinus"}]
    >>> clf = [{"code": "AFIB", "source": "classifier", "probability": 0.42,
    ...         "urgency": "routine review", "reasons": []}]
    >>> out = af_screen(rules + clf, view="12lead")
    >>> [(f["code"], f.get("rule")) for f in out]
    [('SR', 'sinus'), ('IRREG_UNCLASSIFIED', 'af_classifier'), ('AFIB', None)]
    >>> out[1]["urgency"], out[1]["text"]["en"]
    ('routine review', 'possible atrial fibrillation — rules and classifier disagree')
    >>> out[1]["reasons"][1]["en"]
    'The classifier finds AF likely: probability 0.42 (screen threshold 0.10).'
    """
    if view is None:
        return findings
    t = _thresholds(ruleset)
    thr = {"12lead": t.af_classifier_p_12lead, "II": t.af_classifier_p_ii,
           "I": t.af_classifier_p_i}.get(view)
    clf = [f for f in findings if f.get("source") == "classifier"]
    rules = [f for f in findings if f.get("source") == "rules"]
    if thr is None or not clf or not rules:
        return findings
    p = next((f.get("probability") for f in clf if f["code"] == "AFIB"), None)
    rules_af = next((f for f in rules if f["code"] == "AFIB"), None)
    if rules_af is not None:
        if p is None or p < thr:
            rules_af["classifier_agrees"] = False
            rules_af["reasons"] = [*rules_af["reasons"], _reason(
                "The classifier does not find AF likely (probability below {thr}): a doctor "
                "should look at the strip.",
                "Pengklasifikasi tidak menilai FA mungkin (probabilitas di bawah {thr}): dokter "
                "perlu melihat rekaman.", thr=(thr, 2))]
        return findings
    if p is None or p < thr:
        return findings
    primary = rules[0]
    said = _reason("The rules did not find AF (their finding: " + primary["text"]["en"] + ").",
                   "Aturan tidak menemukan FA (temuannya: " + primary["text"]["id"] + ").")
    says = _reason("The classifier finds AF likely: probability {p} (screen threshold {thr}).",
                   "Pengklasifikasi menilai FA mungkin: probabilitas {p} (ambang skrining "
                   "{thr}).", p=(p, 2), thr=(thr, 2))
    look = {"en": "A doctor should look at the strip (routine review).",
            "id": "Dokter perlu melihat rekaman (tinjauan rutin)."}
    if primary["code"] == "IRREG_UNCLASSIFIED":
        primary["reasons"] = [*primary["reasons"], says, look]
        primary["af_classifier_disagrees"] = True
        if primary["urgency"] == NO_FINDING:
            primary["urgency"] = ROUTINE_REVIEW
        return findings
    flag = _finding("IRREG_UNCLASSIFIED", ROUTINE_REVIEW, "af_classifier", [said, says, look],
                    _POSSIBLE_AF, af_classifier_disagrees=True)
    return [*rules, flag, *[f for f in findings if f.get("source") != "rules"]]


# --- one recording ----------------------------------------------------------------------

def _view(leads: Any) -> str | None:
    names = [str(x) for x in leads]
    if len(names) == 1 and names[0] in ("I", "II"):
        return names[0]
    if len(names) >= 12:
        return "12lead"
    return None


def _classifier_findings(values: Mapping[str, Any], features: Any, view: str | None,
                         intervals: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    if view is None:
        return []
    try:
        mod = importlib.import_module("detak.models.rhythm_classifier")
    except ImportError:
        return []
    return list(mod.predict_findings(features.to_dict(), view=view, intervals=intervals))


def rhythm_block(recording: Any, *, lead: str | None = None, lang: str = "id",
                 beats: Any = None, classifier: bool = True,
                 ruleset: Any = "clinical",
                 intervals: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The rhythm block of one recording: rule findings (then the classifier's, when
    ``detak.models.rhythm_classifier`` is installed and ``classifier``), the feature values,
    units and null reasons, and the lead analysed (``"all"``).

    ``lead``: analyse that one lead only (a single-lead device's view);
    `detak.data.recording.MissingLeadError` names the leads available when it is not there.
    ``lang``: language of each finding's ``label`` (``"id"`` or ``"en"``; ``reasons`` and
    ``text`` carry both). ``beats``: the recording's beat train if already found (e.g. the
    quality check's ``QualityReport.beats``; ignored with ``lead``, whose beats are found on
    that lead). A classifier that fails to load or run (e.g. weights pickled by another
    scikit-learn) leaves the rules' findings and says why in ``classifier_error``.
    ``intervals``: the record's `detak intervals` values (measured on the same
    beats), given to the classifier as it was trained (it also works without them).

    >>> from detak.data.samples import load_sample
    >>> b = rhythm_block(load_sample("ludb-1"), lead="II", lang="en", classifier=False)
    >>> [f["code"] for f in b["findings"]], b["lead"], b["findings"][0]["label"]
    (['SBRAD'], 'II', 'sinus bradycardia')
    """
    from detak.signal.rhythm import UNITS, rhythm_features

    if lang not in ("id", "en"):
        raise ValueError(f"lang must be 'id' or 'en', got {lang!r}")
    rec = recording
    if lead is not None:
        rec = recording.select([lead])
        beats = None
    feats = rhythm_features(rec, beats=beats)
    findings = rhythm_findings(feats, ruleset=ruleset)
    extra: dict[str, Any] = {}
    if classifier:
        try:
            findings += _classifier_findings(feats.values, feats, _view(rec.leads), intervals)
            findings = af_screen(findings, view=_view(rec.leads), ruleset=ruleset)
        except Exception as err:  # noqa: BLE001 - the rules' findings stand without it
            # e.g. a model file pickled by another scikit-learn version: the screening goes on
            # with the rules (the nurse's explanation) and says the classifier is missing
            extra["classifier_error"] = f"{type(err).__name__}: {err}"
            log.warning("rhythm classifier unavailable, rules only: %s", extra["classifier_error"])
    for f in findings:
        f.setdefault("label", (f.get("text") or NAMES.get(f["code"], {})).get(lang, f["code"]))
    d = feats.to_dict()
    return {"findings": findings, "features": d["values"],
            "units": {k: UNITS[k] for k in d["values"]}, "reasons": d["reasons"],
            "lead": rec.leads[0] if lead is not None else "all", **extra}
