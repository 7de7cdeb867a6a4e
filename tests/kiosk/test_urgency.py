"""Urgency rules: each fires at its threshold and not below it; reasons in both languages; the
table in docs/kiosk.md lists every rule."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from detak.kiosk.i18n import LanguageError
from detak.kiosk.urgency import (
    NO_FINDING,
    REFER_TODAY,
    ROUTINE_REVIEW,
    RULES,
    assess_urgency,
)

MI = {"thresholds": {"MI": {"operating": 0.4, "refer": 0.64}, "STTC": {"operating": 0.18},
                     "CD": {"operating": 0.15}, "HYP": {"operating": 0.1}}}


def _mi(**probs: float) -> dict:
    base = {"NORM": 0.9, "MI": 0.01, "STTC": 0.01, "CD": 0.01, "HYP": 0.01}
    return {**MI, "probabilities": {**base, **probs}}


def test_unknown_language_is_refused():
    with pytest.raises(LanguageError):
        assess_urgency(quality="ok", intervals={"hr_bpm": 70.0}, lang="fr")


@pytest.mark.parametrize("value", [None, math.nan, math.inf, "fast", True])
def test_unusable_values_fire_nothing(value):
    u = assess_urgency(quality="ok", intervals={"hr_bpm": value, "qtc_bazett_ms": value},
                       lang="en")
    assert u.level == NO_FINDING and u.rules == []


def test_rejected_recording_is_no_finding_with_record_again_and_first_reason_only():
    u = assess_urgency(quality="reject", quality_reasons=["lead V3 flat", "lead V4 flat"],
                       intervals={"hr_bpm": 30.0}, lang="en")
    assert (u.level, u.rules) == (NO_FINDING, ["record_again"])
    assert "lead V3 flat" in u.reasons[0] and "V4" not in u.reasons[0]
    assert "record again" in u.reasons[0]
    assert "ulangi perekaman" in assess_urgency(quality="reject", lang="id").reasons[0]


@pytest.mark.parametrize(("hr", "level", "rule"), [
    (39.9, REFER_TODAY, "hr_low"), (40.0, NO_FINDING, None),
    (150.0, NO_FINDING, None), (150.1, REFER_TODAY, "hr_high")])
def test_heart_rate_limits(hr, level, rule):
    u = assess_urgency(quality="ok", intervals={"hr_bpm": hr}, lang="en")
    assert u.level == level
    assert u.rules == ([rule] if rule else [])


def test_bradycardia_below_40_is_one_reason_not_two():
    u = assess_urgency(quality="ok", intervals={"hr_bpm": 35.0},
                       clinical_findings=[("bradycardia", "abnormal")], lang="en")
    assert u.rules == ["hr_low"]


def test_high_risk_qtc_refers_today_and_prolonged_qtc_is_routine():
    u = assess_urgency(quality="ok", intervals={"hr_bpm": 70.0, "qtc_bazett_ms": 512.0},
                       clinical_findings=[("high_risk_qtc", "high risk")], lang="id")
    assert u.level == REFER_TODAY and u.rules == ["qtc_high_risk"]
    assert "512" in u.reasons[0] and "risiko tinggi" in u.reasons[0]
    u = assess_urgency(quality="ok", intervals={"qtc_bazett_ms": 470.0},
                       clinical_findings=[("prolonged_qtc", "abnormal")],
                       clinical_texts={"prolonged_qtc": "prolonged QTc"}, lang="en")
    assert (u.level, u.rules) == (ROUTINE_REVIEW, ["clinical_abnormal"])
    assert u.reasons == ["Clinical rules: prolonged QTc."]


def test_borderline_clinical_findings_do_not_raise_the_level():
    u = assess_urgency(quality="ok", clinical_findings=[("short_pr", "borderline")], lang="en")
    assert u.level == NO_FINDING


@pytest.mark.parametrize(("p", "level", "rule"), [
    (0.39, NO_FINDING, None), (0.40, ROUTINE_REVIEW, "mi_review"),
    (0.6399, ROUTINE_REVIEW, "mi_review"), (0.64, REFER_TODAY, "mi_refer")])
def test_mi_thresholds_come_from_the_card(p, level, rule):
    u = assess_urgency(quality="ok", intervals={"hr_bpm": 70.0}, mi=_mi(MI=p), lang="en")
    assert u.level == level and u.rules == ([rule] if rule else [])


def test_mi_reason_uses_the_locale_number_format():
    u = assess_urgency(quality="ok", mi=_mi(MI=0.71), lang="id")
    assert u.reasons == ["Probabilitas infark miokard 0,71, sama dengan atau di atas 0,64."]


def test_other_superclasses_at_their_operating_threshold_are_routine_review():
    u = assess_urgency(quality="ok", mi=_mi(CD=0.15, HYP=0.09), lang="en")
    assert u.rules == ["model_finding"] and "conduction disturbance" in u.reasons[0]


def test_a_card_without_operating_points_fires_no_model_rule():
    u = assess_urgency(quality="ok", mi={"probabilities": {"MI": 0.99}}, lang="en")
    assert u.level == NO_FINDING


def test_most_urgent_reason_comes_first():
    u = assess_urgency(quality="ok", intervals={"hr_bpm": 160.0}, mi=_mi(MI=0.5),
                       clinical_findings=[("wide_qrs", "abnormal")], lang="en")
    assert u.level == REFER_TODAY
    assert u.rules == ["hr_high", "mi_review", "clinical_abnormal"]


def test_docs_table_lists_every_rule():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "kiosk.md").read_text()
    section = doc.split("## Screening and urgency rules", 1)[1].split("\n## ", 1)[0]
    codes = set(re.findall(r"^\|\s*`(\w+)`", section, flags=re.M))
    assert codes == {r.code for r in RULES}


# ------------------------------------------------------------------ rhythm findings (issue 17)
def _finding(code: str, urgency: str, source: str = "rules", p: float | None = None,
             en: str = "reason", id_: str = "alasan") -> dict:
    return {"code": code, "source": source, "probability": p, "urgency": urgency,
            "reasons": [{"en": en, "id": id_}]}


@pytest.mark.parametrize(("urgency", "level", "rule"), [
    ("refer_today", REFER_TODAY, "rhythm_refer"), ("refer today", REFER_TODAY, "rhythm_refer"),
    ("routine_review", ROUTINE_REVIEW, "rhythm_review"), ("none", NO_FINDING, None),
    ("bogus", NO_FINDING, None)])
def test_a_rules_rhythm_finding_sets_the_level_of_its_urgency(urgency, level, rule):
    u = assess_urgency(quality="ok", intervals={"hr_bpm": 70.0},
                       rhythm=[_finding("3AVB", urgency)], lang="en")
    assert (u.level, u.rules) == (level, [rule] if rule else [])


def test_rhythm_reason_names_the_finding_and_its_reason_in_both_languages():
    f = _finding("3AVB", "refer_today", en="P waves march through the QRS",
                 id_="gelombang P berjalan sendiri")
    en = assess_urgency(quality="ok", rhythm=[f], lang="en").reasons[0]
    idn = assess_urgency(quality="ok", rhythm=[f], lang="id").reasons[0]
    assert "Complete AV block" in en and "P waves march through the QRS" in en
    assert "Blok AV total" in idn and "gelombang P berjalan sendiri" in idn


def test_af_without_a_fast_rate_is_routine_review_and_says_why_it_matters():
    u = assess_urgency(quality="ok", intervals={"hr_bpm": 84.0},
                       rhythm=[_finding("AFIB", "routine_review")], lang="en")
    assert (u.level, u.rules) == (ROUTINE_REVIEW, ["rhythm_af"])
    assert "Atrial fibrillation" in u.reasons[0] and "stroke" in u.reasons[0]
    idn = assess_urgency(quality="ok", rhythm=[_finding("AFIB", "routine_review")], lang="id")
    assert "stroke" in idn.reasons[0] and "Fibrilasi atrium" in idn.reasons[0]


def test_fast_af_refers_today():
    u = assess_urgency(quality="ok", intervals={"hr_bpm": 124.0},
                       rhythm=[_finding("AFLT", "refer_today")], lang="en")
    assert u.level == REFER_TODAY and u.rules[0] == "rhythm_refer"


def test_classifier_findings_never_set_the_urgency():
    u = assess_urgency(quality="ok", rhythm=[_finding("AFIB", "refer_today", "classifier", 0.97)],
                       lang="en")
    assert u.level == NO_FINDING


def test_rhythm_finding_already_said_by_the_interval_rules_is_one_reason():
    u = assess_urgency(quality="ok", intervals={"hr_bpm": 35.0},
                       clinical_findings=[("bradycardia", "abnormal")],
                       rhythm=[_finding("SBRAD", "refer_today")], lang="en")
    assert u.rules == ["hr_low"]
    u = assess_urgency(quality="ok", intervals={"hr_bpm": 46.0},
                       clinical_findings=[("bradycardia", "abnormal")],
                       rhythm=[_finding("SBRAD", "routine_review")], lang="en")
    assert u.rules == ["clinical_abnormal"]


def test_a_rejected_recording_ignores_rhythm_findings():
    u = assess_urgency(quality="reject", rhythm=[_finding("3AVB", "refer_today")], lang="en")
    assert u.rules == ["record_again"]


# the banner at the rhythm rules' own thresholds (clinical.toml [rhythm]), end to end:
# feature values -> detak.models.rhythm_rules -> assess_urgency
def _rhythm_urgency(values: dict, lang: str = "en"):
    from detak.models.rhythm_rules import rhythm_findings

    return assess_urgency(quality="ok", rhythm=rhythm_findings(values), lang=lang)


def _af_values(rate_bpm: float) -> dict:
    return {"n_beats": 14, "duration_s": 10.0, "ventricular_rate_bpm": rate_bpm,
            "mean_rr_ms": 60000.0 / rate_bpm, "longest_rr_ms": 60000.0 / rate_bpm * 1.3,
            "petrenas_irregularity": 0.15, "rr_irregularity": 0.18, "p_wave_template": False,
            "p_present_fraction": 0.0, "pvc_count": 0, "pac_count": 0, "paced_count": 0,
            "pvc_per_10s": 0.0, "pac_per_10s": 0.0, "pacing_spikes": False}


@pytest.mark.parametrize(("delta", "level", "rule"), [
    (-1.0, ROUTINE_REVIEW, "rhythm_af"), (0.0, ROUTINE_REVIEW, "rhythm_af"),
    (1.0, REFER_TODAY, "rhythm_refer")])
def test_af_rate_threshold_sets_the_banner(delta, level, rule):
    from detak.models.rules import load_ruleset

    limit = load_ruleset("clinical").rhythm.af_refer_bpm
    u = _rhythm_urgency(_af_values(limit + delta))
    assert (u.level, u.rules) == (level, [rule])
    assert f"{limit + delta:.0f} bpm" in u.reasons[0]


@pytest.mark.parametrize(("over_s", "level", "rule"), [
    (0.0, ROUTINE_REVIEW, "rhythm_review"), (0.01, REFER_TODAY, "rhythm_refer")])
def test_pause_threshold_sets_the_banner(over_s, level, rule):
    from detak.models.rules import load_ruleset

    limit = load_ruleset("clinical").rhythm.pause_refer_s
    sinus = {**_af_values(72.0), "petrenas_irregularity": 0.015, "rr_irregularity": 0.015,
             "p_wave_template": True, "p_present_fraction": 1.0, "p_peak_jitter_ms": 3.0,
             "pr_median_ms": 160.0, "pr_range_ms": 8.0,
             "longest_rr_ms": 1000.0 * (limit + over_s)}
    u = _rhythm_urgency(sinus, "id")
    assert (u.level, u.rules) == (level, [rule])
    assert "Jeda irama" in u.reasons[0]


def test_complete_av_block_refers_today_in_both_languages():
    from detak.models.rules import load_ruleset

    t = load_ruleset("clinical").rhythm
    rate = t.escape_max_bpm - 5
    v = {**_af_values(rate), "petrenas_irregularity": 0.01, "rr_irregularity": 0.01,
         "p_wave_template": False, "p_present_fraction": 0.1, "p_peak_jitter_ms": 80.0,
         "longest_rr_ms": 60000.0 / rate}
    en, idn = _rhythm_urgency(v, "en"), _rhythm_urgency(v, "id")
    assert (en.level, en.rules[0]) == (REFER_TODAY, "rhythm_refer")
    assert "Complete AV block" in en.reasons[0] and "Blok AV total" in idn.reasons[0]
