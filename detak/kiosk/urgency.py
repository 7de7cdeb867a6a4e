"""Urgency of a screening: "refer today", "routine review" or "no finding", with its reasons.

Explicit rules, one per row of `RULES` (the table in ``docs/kiosk.md``, "Screening and urgency
rules", lists the same rows; a test keeps them in step). The level is the most urgent rule that
fires; every rule that fires gives one reason in the chosen language.

=================  ================  ========================================================
rule               level             fires when
=================  ================  ========================================================
record_again       no finding        the quality check rejected the recording: nothing was
                                     measured, the nurse records again (the reason shown is
                                     the quality check's first; the screening keeps them all)
hr_low             refer today       heart rate < 40 bpm (`HR_LOW_BPM`)
hr_high            refer today       heart rate > 150 bpm (`HR_HIGH_BPM`)
qtc_high_risk      refer today       the clinical rule set's ``high_risk_qtc`` finding
                                     (QTc ≥ 500 ms, Bazett)
mi_refer           refer today       MI probability ≥ the card's MI ``refer`` threshold
                                     (specificity 0.95 on PTB-XL fold 9)
mi_review          routine review    MI probability ≥ the card's MI ``operating`` threshold,
                                     the screening point (sensitivity ≥ 0.90 on fold 9),
                                     and below ``refer``
model_finding      routine review    ST/T change, conduction disturbance or hypertrophy
                                     probability ≥ its ``operating`` threshold
clinical_abnormal  routine review    a clinical-rule finding labelled ``abnormal`` (bradycardia,
                                     tachycardia, first-degree AV block, wide QRS, prolonged
                                     or short QTc) not already a refer-today reason
rhythm_refer       refer today       a rhythm finding of the rules (`detak.models.rhythm_rules`)
                                     with urgency refer today: complete AV block, pause > 3 s,
                                     AF or flutter with a ventricular rate > 110 bpm
rhythm_af          routine review    AF or flutter found by the rules, rate not fast: new AF is
                                     what the screening looks for (stroke prevention)
rhythm_review      routine review    another rhythm finding of the rules with urgency routine
                                     review (e.g. Mobitz I, frequent ectopy, pause > 2 s)
=================  ================  ========================================================

Rhythm findings (issue 17) come with their own urgency, set and sourced by the rules that find
them (`detak.models.rhythm_rules`); here each one the rules found gives one reason, "Rhythm:
NAME — its last reason" (the rules give the deciding reason last: the AF rate, the pause).
The classifier's findings never set the level: they are shown beside the rules for the
doctor. A rhythm finding the interval rules already gave as a reason at the
same or a higher level (sinus bradycardia ↔ ``hr_low`` / ``bradycardia``, sinus tachycardia ↔
``hr_high`` / ``tachycardia``, first-degree AV block) is not said twice.

>>> u = assess_urgency(quality="ok", intervals={"hr_bpm": 36.0, "qtc_bazett_ms": 430.0},
...                    clinical_findings=[("bradycardia", "abnormal")], lang="en")
>>> u.level, u.reasons
('refer today', ['Heart rate 36 bpm is below 40 bpm.'])
>>> assess_urgency(quality="ok", intervals={"hr_bpm": 72.0}, lang="id").reasons
['Tidak ada temuan yang perlu ditinjau dokter dalam nilai yang terukur.']
>>> assess_urgency(quality="reject", quality_reasons=["lead II flat"], lang="en").to_dict()
... # doctest: +NORMALIZE_WHITESPACE
{'level': 'no finding', 'level_text': 'no finding', 'rules': ['record_again'],
 'reasons': ['Recording rejected by the quality check (lead II flat): record again.'],
 'notes': []}
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from detak.kiosk.i18n import N_, number, translator

REFER_TODAY = "refer today"
ROUTINE_REVIEW = "routine review"
NO_FINDING = "no finding"
LEVELS: tuple[str, ...] = (NO_FINDING, ROUTINE_REVIEW, REFER_TODAY)  # least urgent first
LEVEL_TEXT = {REFER_TODAY: N_("refer today"), ROUTINE_REVIEW: N_("routine review"),
              NO_FINDING: N_("no finding")}

#: what each level asks of the nurse, shown under the level (the urgency is about what needs
#: a doctor and when; the rule sets' own labels, e.g. S3's rhythm-risk class, are apart)
LEVEL_MEANING = {
    REFER_TODAY: N_("A doctor should see this ECG today."),
    ROUTINE_REVIEW: N_("Not urgent: a doctor looks at this ECG at the next routine review."),
    NO_FINDING: N_("Nothing that needs a doctor today. A doctor still reviews every screening."),
}
#: S3's two arrhythmia-risk classes: when one sits beside "no finding", the result page says
#: why the two do not contradict each other
S3_RISK_LABELS: tuple[str, ...] = ("Berpotensi Aritmia", "Sangat Berpotensi Aritmia")
S3_EXPLAINED = N_("S3 rhythm-risk class: the screening study's own grading of the intervals "
                  "(Normal, Abnormal, Berpotensi Aritmia, Sangat Berpotensi Aritmia). It does "
                  "not set the urgency above; the doctor weighs it at the review.")
S3_BESIDE_NO_FINDING = N_("The S3 class is {label}, but no measured value meets an urgency "
                          "rule: nothing needs a doctor today, and the doctor sees the class at "
                          "the routine review.")

HR_LOW_BPM = 40.0
HR_HIGH_BPM = 150.0
MODEL_REVIEW_CLASSES: tuple[str, ...] = ("STTC", "CD", "HYP")
CLASS_TEXT = {"NORM": N_("normal ECG"), "MI": N_("myocardial infarction"),
              "STTC": N_("ST/T change"), "CD": N_("conduction disturbance"),
              "HYP": N_("hypertrophy")}


@dataclass(frozen=True)
class Rule:
    """One urgency rule: its code, level, reason template (gettext id), threshold, source."""

    code: str
    level: str
    message: str
    threshold: str
    source: str


RULES: tuple[Rule, ...] = (
    Rule("record_again", NO_FINDING,
         N_("Recording rejected by the quality check ({why}): record again."),
         "quality verdict reject", "detak.signal.quality (docs/user-guide.md)"),
    Rule("hr_low", REFER_TODAY, N_("Heart rate {hr} bpm is below 40 bpm."),
         "HR < 40 bpm", "2018 ACC/AHA/HRS bradycardia guideline (Kusumoto et al.); issue 14"),
    Rule("hr_high", REFER_TODAY, N_("Heart rate {hr} bpm is above 150 bpm."),
         "HR > 150 bpm", "2015 ACC/AHA/HRS SVT guideline (Page et al.); issue 14"),
    Rule("qtc_high_risk", REFER_TODAY,
         N_("QTc {qtc} ms is 500 ms or more: high risk of a dangerous arrhythmia."),
         "QTc (Bazett) ≥ 500 ms: clinical rule set, finding high_risk_qtc",
         "Drew et al., AHA/ACCF 2010 (clinical.toml [5])"),
    Rule("mi_refer", REFER_TODAY,
         N_("Myocardial infarction probability {p} is at or above {t}."),
         "MI probability (card calibration applied) ≥ card operating_points.classes.MI.refer "
         "(0.56: "
         "specificity 0.95 on PTB-XL fold 9)", "tools/mi_operating_point.py"),
    Rule("mi_review", ROUTINE_REVIEW,
         N_("Myocardial infarction probability {p} is at or above {t}."),
         "MI probability (card calibration applied) ≥ card operating_points.classes.MI.operating "
         "(0.17: "
         "the screening point, sensitivity 0.90 on PTB-XL fold 9; docs/kiosk.md)",
         "tools/mi_operating_point.py"),
    Rule("model_finding", ROUTINE_REVIEW,
         N_("The model finds {finding} (probability {p}, threshold {t})."),
         "STTC / CD / HYP probability ≥ card operating_points.classes.X.operating "
         "(Youden's J on fold 9)", "tools/mi_operating_point.py"),
    Rule("clinical_abnormal", ROUTINE_REVIEW, N_("Clinical rules: {finding}."),
         "clinical rule set label abnormal (HR < 50 or > 100 bpm, PR > 200 ms, QRS ≥ 120 ms, "
         "QTc ≥ 450/460 ms or ≤ 340 ms)", "detak/models/rulesets/clinical.toml [1]–[6]"),
    Rule("rhythm_refer", REFER_TODAY, N_("Rhythm: {finding} — {why}."),
         "a rules rhythm finding with urgency refer today: complete AV block, pause > 3 s, "
         "AF or flutter with ventricular rate > 110 bpm",
         "detak.models.rhythm_rules (2018 ACC/AHA/HRS bradycardia guideline; 2020 ESC AF "
         "guideline, lenient rate control < 110 bpm)"),
    Rule("rhythm_af", ROUTINE_REVIEW,
         N_("Rhythm: {finding} — not urgent, but a doctor must see it: this rhythm raises "
            "the risk of stroke, which treatment lowers ({why})."),
         "AF or atrial flutter found by the rules, ventricular rate ≤ 110 bpm",
         "detak.models.rhythm_rules; 2020 ESC AF guideline (screening people ≥ 65 years)"),
    Rule("rhythm_review", ROUTINE_REVIEW, N_("Rhythm: {finding} — {why}."),
         "another rules rhythm finding with urgency routine review",
         "detak.models.rhythm_rules"),
)
#: rhythm codes the interval rules may already have said: code → (urgency rule or clinical
#: finding codes that say it)
_SAID_BY_INTERVALS = {"SBRAD": ("hr_low", "bradycardia"), "STACH": ("hr_high", "tachycardia"),
                      "1AVB": ("first_degree_av_block",)}
_AF_CODES = ("AFIB", "AFLT")
RULE_BY_CODE = {r.code: r for r in RULES}
NOTHING_FOUND = N_("No finding that needs a doctor in the measured values.")


@dataclass(frozen=True)
class Urgency:
    """The level (one of `LEVELS`), the codes of the rules that fired, their reasons and
    notes (what could not be checked), in the language they were made in."""

    level: str
    rules: list[str]
    reasons: list[str]
    lang: str
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"level": self.level, "level_text": translator(self.lang)(LEVEL_TEXT[self.level]),
                "rules": list(self.rules), "reasons": list(self.reasons),
                "notes": list(self.notes)}


def finite(v: Any) -> float | None:
    """``v`` as a float when it is a finite number, else None (missing, NaN, text, bool).

    >>> finite(61), finite("61"), finite(float("nan")), finite(True), finite(None)
    (61.0, 61.0, None, None, None)
    """
    if v is None or isinstance(v, bool):
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _value(mapping: Mapping[str, Any] | None, key: str) -> float | None:
    return finite((mapping or {}).get(key))


def _threshold(mi: Mapping[str, Any], cls: str, point: str) -> float | None:
    return _value(((mi.get("thresholds") or {}).get(cls) or {}), point)


def assess_urgency(*, quality: str, quality_reasons: Sequence[str] = (),
                   intervals: Mapping[str, Any] | None = None,
                   clinical_findings: Sequence[tuple[str, str]] = (),
                   clinical_texts: Mapping[str, str] | None = None,
                   mi: Mapping[str, Any] | None = None,
                   rhythm: Sequence[Mapping[str, Any]] = (), notes: Sequence[str] = (),
                   lang: str = "id") -> Urgency:
    """Apply `RULES` to one screening's parts.

    ``quality``: the verdict (ok/warn/reject); ``intervals``: the interval keys;
    ``clinical_findings``: (finding code, label) of the clinical rule set's reasons, with
    ``clinical_texts`` the finding texts in ``lang``; ``mi``: ``probabilities`` per class and
    ``thresholds`` {class: {operating, refer}} (None when the model did not run); ``rhythm``:
    the rhythm findings (`detak.kiosk.rhythm_read.rhythm_findings`; only the rules' count);
    ``notes``: passed through (e.g. why MI was not screened).
    """
    _ = translator(lang)
    fired: list[tuple[Rule, str]] = []

    def fire(code: str, **values: Any) -> None:
        rule = RULE_BY_CODE[code]
        fired.append((rule, _(rule.message).format(**values)))

    if quality == "reject":
        why = quality_reasons[0] if quality_reasons else _("no reason given")  # the first
        fire("record_again", why=why)
        return _result(fired, lang, notes)
    hr = _value(intervals, "hr_bpm")
    if hr is not None and hr < HR_LOW_BPM:
        fire("hr_low", hr=number(hr, lang, 0))
    if hr is not None and hr > HR_HIGH_BPM:
        fire("hr_high", hr=number(hr, lang, 0))
    codes = [code for code, _label in clinical_findings]
    if "high_risk_qtc" in codes:
        qtc = _value(intervals, "qtc_bazett_ms")
        fire("qtc_high_risk", qtc=number(qtc, lang, 0) if qtc is not None else "?")
    said = {r.code: r.level for r, _text in fired}   # rhythm reasons before the model's
    said |= {code: ROUTINE_REVIEW for code, label in clinical_findings if label == "abnormal"}
    for f in rhythm:
        _rhythm_rule(f, said, lang, fire)
    probs = (mi or {}).get("probabilities") or {}
    p_mi = _value(probs, "MI")
    if mi and p_mi is not None:
        refer, operating = _threshold(mi, "MI", "refer"), _threshold(mi, "MI", "operating")
        if refer is not None and p_mi >= refer:
            fire("mi_refer", p=number(p_mi, lang), t=number(refer, lang))
        elif operating is not None and p_mi >= operating:
            fire("mi_review", p=number(p_mi, lang), t=number(operating, lang))
        for cls in MODEL_REVIEW_CLASSES:
            p, t = _value(probs, cls), _threshold(mi, cls, "operating")
            if p is not None and t is not None and p >= t:
                fire("model_finding", finding=_(CLASS_TEXT[cls]), p=number(p, lang),
                     t=number(t, lang))
    already = {"bradycardia"} if hr is not None and hr < HR_LOW_BPM else set()
    already |= {"tachycardia"} if hr is not None and hr > HR_HIGH_BPM else set()
    for code, label in clinical_findings:
        if label == "abnormal" and code not in already:
            fire("clinical_abnormal", finding=(clinical_texts or {}).get(code, code))
    return _result(fired, lang, notes)


def _rhythm_rule(f: Mapping[str, Any], said: Mapping[str, str], lang: str,
                 fire: Callable[..., None]) -> None:
    """Fire the urgency rule of one rhythm finding of the rules (none for the classifier's,
    for a level "no finding", or when the interval rules already said it as urgently)."""
    from detak.kiosk.rhythm_read import reasons_in, urgency_level
    from detak.kiosk.rhythm_text import finding_name

    if f.get("source") != "rules":
        return
    level = urgency_level(f)
    if level == NO_FINDING:
        return
    code = str(f.get("code") or "")
    if any(LEVELS.index(said[k]) >= LEVELS.index(level)
           for k in _SAID_BY_INTERVALS.get(code, ()) if k in said):
        return
    why = (reasons_in(f, lang) or [code])[-1].rstrip(". ")  # the rules give the deciding
    #                                                          reason last (e.g. the AF rate)
    rule = ("rhythm_refer" if level == REFER_TODAY
            else "rhythm_af" if code in _AF_CODES else "rhythm_review")
    fire(rule, finding=finding_name(f, lang), why=why)


def _result(fired: list[tuple[Rule, str]], lang: str, notes: Sequence[str]) -> Urgency:
    if not fired:
        return Urgency(NO_FINDING, [], [translator(lang)(NOTHING_FOUND)], lang, list(notes))
    level = max((r.level for r, _ in fired), key=LEVELS.index)
    ordered = sorted(fired, key=lambda rf: -LEVELS.index(rf[0].level))
    return Urgency(level, [r.code for r, _ in ordered], [text for _, text in ordered], lang,
                   list(notes))
