"""Rhythm rules (detak.models.rhythm_rules): each rule just below / at / above its threshold
on synthetic feature dicts, the contract keys, the [rhythm] section's loader checks.

Expected findings are written from the rules' table (module docstring) and the thresholds in
clinical.toml, read from the file so an edit of a threshold moves the test with it.
"""

from __future__ import annotations

import dataclasses

import pytest

from detak.models.rhythm_rules import (
    CODES,
    NO_FINDING,
    REFER_TODAY,
    ROUTINE_REVIEW,
    URGENCY_LEVELS,
    rhythm_findings,
)
from detak.models.rules import RULESET_DIR, RuleSetError, load_ruleset

T = load_ruleset("clinical").rhythm
EPS = 1e-6


def sinus(**over):
    """Feature values of a regular sinus rhythm at 72 bpm (override any key)."""
    v = {"n_beats": 12, "duration_s": 10.0, "ventricular_rate_bpm": 72.0, "mean_rr_ms": 833.3,
         "longest_rr_ms": 850.0, "petrenas_irregularity": 0.015, "rr_irregularity": 0.015,
         "p_wave_template": True, "p_present_fraction": 1.0, "p_peak_jitter_ms": 3.0,
         "pr_median_ms": 160.0, "pr_range_ms": 8.0, "pvc_count": 0, "pac_count": 0,
         "paced_count": 0, "pvc_per_10s": 0.0, "pac_per_10s": 0.0, "ectopy_pattern": None,
         "pacing_spikes": False, "fwave_peak_hz": None, "fwave_band_ratio": None}
    v.update(over)
    return v


def af(**over):
    """Feature values of AF: irregular, no P wave at a fixed PR."""
    return sinus(**{"petrenas_irregularity": 0.15, "rr_irregularity": 0.18,
                    "p_wave_template": False, "p_present_fraction": 0.0,
                    "p_peak_jitter_ms": None, "pr_median_ms": None, "pr_range_ms": None,
                    **over})


def codes(values):
    return [f["code"] for f in rhythm_findings(values)]


def find(values, code):
    return next(f for f in rhythm_findings(values) if f["code"] == code)


# ------------------------------------------------------------------------------ contract


def test_every_finding_has_the_contract_keys_in_both_languages():
    cases = [sinus(), af(), sinus(ventricular_rate_bpm=40.0), sinus(longest_rr_ms=3500.0),
             {"n_beats": 3}, sinus(p_wave_template=None, p_present_fraction=None)]
    seen = set()
    for v in cases:
        for f in rhythm_findings(v):
            assert {"code", "source", "probability", "urgency", "reasons"} <= set(f)
            assert f["source"] == "rules" and f["probability"] is None
            assert f["code"] in CODES and f["urgency"] in URGENCY_LEVELS
            assert f["reasons"] and all(set(r) == {"en", "id"} and r["en"] and r["id"]
                                        for r in f["reasons"])
            seen.add(f["code"])
    assert {"SR", "AFIB", "SBRAD", "PAUSE", "IRREG_UNCLASSIFIED"} <= seen


def test_urgency_level_names_are_the_kiosks():
    from detak.kiosk import urgency

    assert URGENCY_LEVELS == urgency.LEVELS
    assert (REFER_TODAY, ROUTINE_REVIEW, NO_FINDING) == (
        urgency.REFER_TODAY, urgency.ROUTINE_REVIEW, urgency.NO_FINDING)


def test_a_cached_to_dict_gives_the_same_findings_as_the_values():
    v = af(ventricular_rate_bpm=120.0, mean_rr_ms=500.0)
    assert rhythm_findings({"values": v, "reasons": {}}) == rhythm_findings(v)


def test_s3_has_no_rhythm_rules():
    assert load_ruleset("s3").rhythm is None
    with pytest.raises(RuleSetError, match="no \\[rhythm\\] section"):
        rhythm_findings(sinus(), ruleset="s3")


# ------------------------------------------------------------------------------ sinus rate


@pytest.mark.parametrize(("rate", "code"), [
    (T.brady_bpm - 1, "SBRAD"), (T.brady_bpm, "SR"), (T.brady_bpm + 1, "SR"),
    (T.tachy_bpm - 1, "SR"), (T.tachy_bpm, "SR"), (T.tachy_bpm + 1, "STACH"),
])
def test_sinus_rate_classes_at_their_limits(rate, code):
    f = rhythm_findings(sinus(ventricular_rate_bpm=rate))[0]
    assert f["code"] == code
    assert f["urgency"] == (NO_FINDING if code == "SR" else ROUTINE_REVIEW)
    if code != "SR":
        assert f"{rate:.0f} bpm" in f["reasons"][0]["en"]
        assert f"{rate:.0f} dpm" in f["reasons"][0]["id"]


def test_sinus_needs_p_waves_before_the_beats():
    lim = T.p_consistent_fraction
    assert codes(sinus(p_present_fraction=lim))[0] == "SR"
    assert codes(sinus(p_present_fraction=lim - 0.01))[0] != "SR"
    assert codes(sinus(p_wave_template=False))[0] != "SR"


# ------------------------------------------------------------------------------ AF


@pytest.mark.parametrize(("irr", "code"), [
    (T.af_irregularity - EPS, "IRREG_UNCLASSIFIED"), (T.af_irregularity, "AFIB"),
    (T.af_irregularity + 0.05, "AFIB")])
def test_af_irregularity_limit(irr, code):
    # no P waves; below the AF limit and regular at 72 bpm: cannot classify, never SR
    assert codes(af(petrenas_irregularity=irr))[0] == code


def test_af_needs_p_waves_absent():
    # as irregular as AF but P waves at a fixed PR before every beat: sinus arrhythmia
    assert codes(af(p_wave_template=True, p_present_fraction=1.0,
                    p_peak_jitter_ms=3.0))[0] == "SARRH"
    lim = T.p_absent_fraction
    assert codes(af(p_wave_template=True, p_present_fraction=lim - 0.01))[0] == "AFIB"


def test_af_irregularity_falls_back_to_the_whole_record_when_the_filter_leaves_too_few():
    f = rhythm_findings(af(petrenas_irregularity=None, rr_irregularity=0.2))[0]
    assert f["code"] == "AFIB" and "whole record" in f["reasons"][0]["en"]


@pytest.mark.parametrize(("mean_rr", "urgency"), [
    (60000 / (T.af_refer_bpm + 1), REFER_TODAY), (60000 / T.af_refer_bpm, ROUTINE_REVIEW),
    (60000 / (T.af_refer_bpm - 1), ROUTINE_REVIEW)])
def test_af_with_a_fast_ventricular_rate_is_referred_today(mean_rr, urgency):
    f = rhythm_findings(af(mean_rr_ms=mean_rr))[0]
    assert f["code"] == "AFIB" and f["urgency"] == urgency
    assert f"{60000 / mean_rr:.0f} bpm" in f["reasons"][-1]["en"]


# ------------------------------------------------------------------------------ pauses


@pytest.mark.parametrize(("rr_s", "urgency"), [
    (T.pause_s - 0.01, None), (T.pause_s, None), (T.pause_s + 0.01, ROUTINE_REVIEW),
    (T.pause_refer_s, ROUTINE_REVIEW), (T.pause_refer_s + 0.01, REFER_TODAY)])
def test_pause_limits(rr_s, urgency):
    fs = [f for f in rhythm_findings(sinus(longest_rr_ms=1000 * rr_s)) if f["code"] == "PAUSE"]
    if urgency is None:
        assert fs == []
    else:
        assert [f["urgency"] for f in fs] == [urgency]
        assert f"{rr_s:.1f} s" in fs[0]["reasons"][0]["en"]


# ------------------------------------------------------------------------------ cannot tell


@pytest.mark.parametrize("n", [0, 3, T.min_beats - 1])
def test_too_few_beats_is_a_finding_with_a_reason_never_a_silent_sinus(n):
    fs = rhythm_findings({"n_beats": n, "duration_s": 10.0})
    assert [(f["code"], f["urgency"], f["rule"]) for f in fs] == [
        ("IRREG_UNCLASSIFIED", NO_FINDING, "cannot_tell")]
    assert "record again" in fs[0]["reasons"][0]["en"]
    assert "ulangi perekaman" in fs[0]["reasons"][0]["id"]


def test_all_null_features_cannot_tell():
    fs = rhythm_findings({"values": {"n_beats": None}, "reasons": {
        "n_beats": "recording rejected by the quality check: lead II flat"}})
    assert [f["rule"] for f in fs] == ["cannot_tell"]
    assert "lead II flat" in fs[0]["reasons"][0]["en"]


def test_p_waves_not_measured_is_unclassified_not_sinus():
    fs = rhythm_findings(sinus(p_wave_template=None, p_present_fraction=None))
    assert fs[0]["code"] == "IRREG_UNCLASSIFIED" and fs[0]["urgency"] == ROUTINE_REVIEW


# ------------------------------------------------------------------------------ the loader


def test_the_clinical_rhythm_section_is_checked_when_loaded(tmp_path):
    text = (RULESET_DIR / "clinical.toml").read_text()
    for old, new, key in [("brady_bpm = 50.0", "brady_bpm = -5", "rhythm.brady_bpm"),
                          ("brady_bpm = 50.0", "brady_bpm = 150.0", "rhythm.brady_bpm"),
                          ("pause_s = 2.0", "pause_s = 2.0\npause_ms = 2000", "rhythm"),
                          ("min_beats = 5 ", "", "rhythm.min_beats"),
                          ("[250.0, 350.0]", "[350.0, 250.0]", "rhythm.flutter_atrial_bpm")]:
        assert old in text
        p = tmp_path / "edited.toml"
        p.write_text(text.replace(old, new, 1))
        with pytest.raises(RuleSetError) as e:
            load_ruleset(p)
        assert e.value.key.startswith(key) and str(p) in str(e.value)


def test_an_edited_threshold_changes_the_findings(tmp_path):
    p = tmp_path / "mine.toml"
    p.write_text((RULESET_DIR / "clinical.toml").read_text().replace(
        "brady_bpm = 50.0", "brady_bpm = 60.0"))
    mine = load_ruleset(p)
    assert dataclasses.replace(T, brady_bpm=60.0) == mine.rhythm
    assert rhythm_findings(sinus(ventricular_rate_bpm=55.0))[0]["code"] == "SR"
    assert rhythm_findings(sinus(ventricular_rate_bpm=55.0), ruleset=mine)[0]["code"] == "SBRAD"
