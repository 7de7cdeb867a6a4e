"""Rhythm findings as the nurse and the doctor read them: the finding's name in the page's
language (gettext catalogs), its reasons, its urgency, the classifier's probability beside the
rule finding, and where rules and classifier disagree ("for the doctor").

The names follow ``docs`` glossary usage (fibrilasi atrium, blok AV, jeda …); a code with no
name here shows the finding's own ``text`` or the code.

>>> rows = finding_rows({"findings": [
...     {"code": "AFIB", "source": "rules", "probability": None, "urgency": "routine_review",
...      "reasons": [{"en": "RR irregular (0.21)", "id": "RR tidak teratur (0,21)"}]},
...     {"code": "AFIB", "source": "classifier", "probability": 0.93, "urgency": "none",
...      "reasons": []}]}, "id")
>>> [(r["name"], r["level"], r["probability"], r["disagree"]) for r in rows]
[('Fibrilasi atrium (FA)', 'routine review', 0.93, False)]
>>> rows[0]["reasons"]
['RR tidak teratur (0,21)']
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from detak.kiosk.i18n import N_, number, translator
from detak.kiosk.rhythm_read import reasons_in, rhythm_findings, urgency_level

#: the finding codes (PTB-XL statements, PAUSE, IRREG_UNCLASSIFIED) → name (gettext id)
CODE_NAME: dict[str, str] = {
    "SR": N_("Sinus rhythm"),
    "SBRAD": N_("Sinus bradycardia"),
    "STACH": N_("Sinus tachycardia"),
    "SARRH": N_("Sinus arrhythmia"),
    "AFIB": N_("Atrial fibrillation (AF)"),
    "AFLT": N_("Atrial flutter"),
    "SVTAC": N_("Supraventricular tachycardia"),
    "PSVT": N_("Paroxysmal supraventricular tachycardia"),
    "BIGU": N_("Bigeminy"),
    "TRIGU": N_("Trigeminy"),
    "PACE": N_("Paced rhythm (pacemaker)"),
    "1AVB": N_("First-degree AV block"),
    "2AVB": N_("Second-degree AV block"),
    "3AVB": N_("Complete AV block (third degree)"),
    "PVC": N_("Premature ventricular beats (PVC)"),
    "PAC": N_("Premature atrial beats (PAC)"),
    "PRC(S)": N_("Premature atrial beats (PAC)"),   # rhythm_rules: PRC(S) = the PACs
    "PAUSE": N_("Pause in the rhythm"),
    "IRREG_UNCLASSIFIED": N_("Irregular rhythm — cannot classify"),
}
MOBITZ = N_("Mobitz {kind}")
#: the codes the rhythm classifier is trained on (issue 17 item 3): only these can disagree
CLASSIFIER_CODES = frozenset({"SR", "SBRAD", "STACH", "SARRH", "AFIB", "AFLT", "SVTAC", "PSVT",
                              "BIGU", "TRIGU", "PACE", "1AVB", "2AVB", "3AVB"})
NOT_BY_CLASSIFIER = N_("Not found by the classifier: for the doctor.")
ONLY_BY_CLASSIFIER = N_("Found by the classifier only: for the doctor.")
CLASSIFIER_P = N_("classifier {p}")
SOURCE_TEXT = {"rules": N_("rules"), "classifier": N_("classifier")}


def finding_name(finding: Mapping[str, Any], lang: str) -> str:
    """A rhythm finding's name in ``lang``.

    >>> finding_name({"code": "2AVB", "mobitz": "I"}, "id")
    'Blok AV derajat 2 (Mobitz I)'
    >>> finding_name({"code": "XYZ", "text": {"en": "odd", "id": "aneh"}}, "id")
    'aneh'
    """
    _ = translator(lang)
    code = str(finding.get("code") or "")
    if code in CODE_NAME:
        name = _(CODE_NAME[code])
    else:
        text = finding.get("text")
        name = (str(text.get(lang) or text.get("en") or code) if isinstance(text, Mapping)
                else code or "?")
    if code == "2AVB" and finding.get("mobitz") in ("I", "II"):
        name += f" ({_(MOBITZ).format(kind=finding['mobitz'])})"
    return name


def finding_rows(rhythm: Mapping[str, Any] | None, lang: str) -> list[dict[str, Any]]:
    """One row per rhythm finding to show, in order: the rules' findings (with the
    classifier's probability of the same code beside them when it found it), then the
    classifier's findings the rules do not have. Keys: ``code``, ``name``, ``reasons`` (in
    ``lang``), ``level`` (the kiosk's urgency level name), ``source``, ``probability`` (the
    classifier's, or None), ``disagree`` (rules and classifier differ on this code: shown
    "for the doctor") and ``note`` (the sentence that says so, in ``lang``, or None).

    Disagreement is judged only when the classifier gave findings, and only on the codes it
    is trained on (`CLASSIFIER_CODES`): a pause or PVC count has no classifier opinion.
    """
    _ = translator(lang)
    rules = rhythm_findings(rhythm, "rules")
    clf = rhythm_findings(rhythm, "classifier")
    clf_p: dict[str, Any] = {}
    for f in clf:                   # a classifier class may stand for a group (BIGU + TRIGU)
        for code in _codes(f):
            clf_p.setdefault(code, f.get("probability"))
    rule_codes = {str(f["code"]) for f in rules}
    rows = []
    for f in rules:
        code = str(f["code"])
        disagree = bool(clf) and code in CLASSIFIER_CODES and code not in clf_p
        rows.append(_row(f, lang, "rules", clf_p.get(code), disagree,
                         _(NOT_BY_CLASSIFIER) if disagree else None))
    for f in clf:
        code = str(f["code"])
        if rule_codes & set(_codes(f)):
            continue
        disagree = bool(rules) and code in CLASSIFIER_CODES
        rows.append(_row(f, lang, "classifier", f.get("probability"), disagree,
                         _(ONLY_BY_CLASSIFIER) if disagree else None))
    return rows


def _codes(f: Mapping[str, Any]) -> list[str]:
    """A classifier finding's code and the statements its class stands for (``codes``)."""
    extra = f.get("codes") if isinstance(f.get("codes"), list) else []
    return [str(f["code"]), *(str(c) for c in extra)]


def _row(f: Mapping[str, Any], lang: str, source: str, p: Any, disagree: bool,
         note: str | None) -> dict[str, Any]:
    prob = float(p) if isinstance(p, (int, float)) and not isinstance(p, bool) else None
    return {"code": str(f["code"]), "name": finding_name(f, lang),
            "reasons": reasons_in(f, lang),
            "level": urgency_level(f) if source == "rules" else "no finding",
            "source": source, "probability": prob,
            "probability_text": (translator(lang)(CLASSIFIER_P).format(p=number(prob, lang))
                                 if prob is not None else None),
            "disagree": disagree, "note": note}


#: the rhythm feature values the doctor's page shows (of `detak.signal.rhythm.UNITS`), in order
DOCTOR_FEATURES: tuple[tuple[str, str], ...] = (
    ("ventricular_rate_bpm", N_("ventricular rate")),
    ("mean_rr_ms", N_("mean RR")),
    ("n_beats", N_("beats")),
    ("petrenas_irregularity", N_("RR irregularity (8-beat, ectopy filtered)")),
    ("nrmssd", N_("normalised RMSSD")),
    ("p_present_fraction", N_("beats with a P wave")),
    ("pr_median_ms", N_("PR median")),
    ("pr_range_ms", N_("PR range")),
    ("fwave_peak_hz", N_("atrial activity peak (T–Q)")),
    ("fwave_band_ratio", N_("atrial activity 4–9 Hz share")),
    ("longest_rr_ms", N_("longest RR")),
    ("pvc_count", N_("premature ventricular beats")),
    ("pac_count", N_("premature atrial beats")),
    ("ectopy_pattern", N_("ectopy pattern")),
    ("pacing_spikes", N_("pacing spikes")),
)
YES, NO = N_("yes"), N_("no")


def feature_rows(rhythm: Mapping[str, Any] | None, lang: str) -> list[dict[str, Any]]:
    """The rhythm feature values of a screening for the doctor (`DOCTOR_FEATURES`): ``key``,
    ``name`` and ``value`` (text in ``lang``, "—" when null), ``unit``, ``reason`` (why null).
    Empty for a screening stored before the features were kept.

    >>> feature_rows({"features": {"ventricular_rate_bpm": 112.44, "pacing_spikes": False},
    ...               "feature_units": {"ventricular_rate_bpm": "bpm"}}, "id")[0]
    ... # doctest: +NORMALIZE_WHITESPACE
    {'key': 'ventricular_rate_bpm', 'name': 'laju ventrikel', 'value': '112', 'unit': 'bpm',
     'reason': None}
    """
    _ = translator(lang)
    if not isinstance(rhythm, Mapping) or not isinstance(rhythm.get("features"), Mapping):
        return []
    values, units = rhythm["features"], rhythm.get("feature_units") or {}
    why = rhythm.get("feature_reasons") or {}
    rows = []
    for key, name in DOCTOR_FEATURES:
        if key not in values:
            continue
        v, unit = values[key], str(units.get(key, ""))
        if isinstance(v, bool):
            text, unit = (_(YES) if v else _(NO)), ""
        elif isinstance(v, (int, float)) and unit == "fraction":
            text, unit = number(100.0 * v, lang, 0), "%"
        elif isinstance(v, (int, float)):
            a = abs(float(v))
            text = number(v, lang, 0 if a >= 100 or unit in ("count", "beats") else
                          1 if a >= 10 else 2 if a >= 1 else 3)
        else:
            text = "—" if v is None else str(v)
        if v is None or unit in ("1", "count", "beats", "label", "bool"):
            unit = ""
        rows.append({"key": key, "name": _(name), "value": text, "unit": unit,
                     "reason": why.get(key) if v is None else None})
    return rows
