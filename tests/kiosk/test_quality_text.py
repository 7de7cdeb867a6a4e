"""Quality reasons in the kiosk's languages: every code the quality check can emit has a
plain rendering (what is wrong, what to do) in Bahasa Indonesia and English, and a rejected
recording screened in Indonesian carries no English reason text."""

from __future__ import annotations

import re

import numpy as np
import pytest

from detak.data.recording import Recording
from detak.data.samples import load_sample
from detak.kiosk.quality_text import advice, details
from detak.signal.quality import REASON_CODES, assess_quality, issue

# one example of every code, with the parameters the quality check gives it
EXAMPLES = {
    "no_samples": issue("no_samples", "reject", "V2"),
    "missing_samples": issue("missing_samples", "reject", "V2", pct=31.0, limit_pct=20.0),
    "flat_line": issue("flat_line", "reject", "V3", ptp_mv=0.001, limit_mv=0.02),
    "flat_part": issue("flat_part", "reject", "aVL", flat_s=6, total_s=10),
    "clipping": issue("clipping", "reject", "V1", runs=5, pct=7.5),
    "wander": issue("wander", "reject", "V5", mv=3.4, limit_mv=3.0),
    "powerline": issue("powerline", "reject", "I", hz=50.0, mv=0.61, limit_mv=0.5),
    "noise": issue("noise", "reject", "V6", mv=0.081, limit_mv=0.05),
    "noise_ratio": issue("noise_ratio", "warn", "V4", mv=0.012, pct=7.0),
    "template_mismatch": issue("template_mismatch", "warn", "III", corr=0.41, limit=0.5),
    "too_short": issue("too_short", "reject", seconds=1.2, limit_s=2.0),
    "no_beats": issue("no_beats", "reject", min_bpm=20.0, max_bpm=250.0),
    "lead_unusable": issue("lead_unusable", "reject", "II"),
    "most_leads_unusable": issue("most_leads_unusable", "reject", n=7, total=12,
                                 leads="I, II, III, aVR, aVL, aVF, V1"),
    "gaps": issue("gaps", "reject", count=3, total_s=2.5, share_pct=25.0,
                  longest_gap_free_s=1.2),
    "lead_reversal": issue("lead_reversal", "warn", electrodes="LA/RA", a="LA", b="RA",
                           inverted="I", corr_avr_v6=0.62),
    "invalid": issue("invalid", "reject", problem="nonfinite_samples"),
}
# words of the English texts that have no place in an Indonesian one
ENGLISH = re.compile(r"\b(flat|line|electrode|loose|noise|noisy|lead|leads|record|again|"
                     r"signal|rejected|quality|press|missing|beats?|found|unusable|the|is)\b",
                     re.IGNORECASE)


def test_every_code_has_an_example():
    assert set(EXAMPLES) == set(REASON_CODES)


def test_unknown_code_is_refused():
    with pytest.raises(ValueError, match="unknown quality reason code"):
        issue("wobbly", "warn", "II")


@pytest.mark.parametrize("code", REASON_CODES)
def test_every_code_reads_in_both_languages(code):
    ex = EXAMPLES[code]
    texts = {}
    for lang in ("id", "en"):
        d, a = details([ex], lang), advice([ex], lang)
        assert len(d) == 1 and d[0].strip() and "{" not in d[0], (code, lang, d)
        assert a and all(t.strip() and "{" not in t for t in a), (code, lang, a)
        texts[lang] = (d[0], a)
    assert texts["id"][0] != texts["en"][0], code            # translated, not the id
    assert texts["id"][1] != texts["en"][1], code
    assert not ENGLISH.search(texts["id"][0] + " ".join(texts["id"][1])), texts["id"]
    if ex.get("lead"):
        assert ex["lead"] in texts["id"][0] and ex["lead"] in texts["en"][0]


def test_numbers_in_the_locale_format():
    assert "0,001 mV" in details([EXAMPLES["flat_line"]], "id")[0]
    assert "0.001 mV" in details([EXAMPLES["flat_line"]], "en")[0]


def test_a_flat_chest_lead_names_its_electrode_with_what_to_do():
    text = advice([EXAMPLES["flat_line"]], "en")
    assert text == ["Electrode V3 is loose — press it back onto the skin and record again."]
    assert advice([EXAMPLES["flat_line"]], "id")[0].startswith("Elektroda V3 longgar")


def test_flat_limb_leads_point_at_their_shared_electrode():
    flat = [issue("flat_line", "reject", lead, ptp_mv=0.0, limit_mv=0.02)
            for lead in ("II", "III", "aVF")]
    assert advice(flat, "en") == [
        "Electrode LL is loose — press it back onto the skin and record again."]
    only_ii = advice(flat[:1], "en")[0]
    assert "RA" in only_ii and "LL" in only_ii


def test_every_lead_flat_is_one_sentence_about_the_cable():
    flat = [issue("flat_line", "reject", lead, ptp_mv=0.0, limit_mv=0.02)
            for lead in ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5",
                         "V6")]
    got = advice(flat, "en")
    assert len(got) == 1 and "cable" in got[0] and "V6" in got[0]


def test_the_device_lead_off_report_wins_over_guessing():
    got = advice([EXAMPLES["flat_line"], EXAMPLES["noise"]], "en", electrodes_off={"RA"})
    assert got == ["Electrode RA is loose — press it back onto the skin and record again."]


def test_warnings_do_not_make_advice_when_the_recording_is_rejected():
    got = advice([EXAMPLES["template_mismatch"], EXAMPLES["flat_line"]], "en")
    assert len(got) == 1 and "V3" in got[0]


def test_the_quality_check_emits_coded_reasons_one_per_reason():
    rec = load_sample("ludb-1")
    sig = rec.signal.copy()
    sig[rec.leads.index("V3")] = 0.0
    rng = np.random.default_rng(0)
    sig[rec.leads.index("V5")] += rng.normal(0, 0.2, sig.shape[1]).astype(np.float32)
    rep = assess_quality(rec.replace(signal=sig))
    assert len(rep.issues) == len(rep.reasons)
    codes = {i["code"] for i in rep.issues}
    assert {"flat_line", "noise"} <= codes and codes <= set(REASON_CODES)
    d = rep.to_dict()
    assert d["issues"] == rep.issues and d["per_lead"]["V3"]["issues"][0]["code"] == "flat_line"
    short = assess_quality(Recording(np.ones((1, 100), np.float32), 100.0, ["II"]))
    assert [i["code"] for i in short.issues] == ["too_short"]


@pytest.fixture(scope="module")
def rejected_screenings():
    from detak.kiosk.screening import screen

    rec = load_sample("ludb-1")
    sig = rec.signal.copy()
    for lead in ("II", "V3"):
        sig[rec.leads.index(lead)] = 0.0
    bad = rec.replace(signal=sig)
    return {lang: screen(bad, lang=lang).to_dict() for lang in ("id", "en")}


def test_rejected_screening_in_indonesian_has_no_english_reason(rejected_screenings):
    s = rejected_screenings["id"]
    assert s["quality"]["verdict"] == "reject"
    texts = [*s["quality"]["reasons"], *s["quality"]["details"], *s["urgency"]["reasons"],
             s["mi_reason"] or ""]
    english = [t for t in texts if ENGLISH.search(t)]
    assert english == [], english
    assert any("V3" in t for t in s["quality"]["reasons"])
    assert [i["code"] for i in s["quality"]["issues"]][:1] == ["lead_unusable"]


def test_rejected_screening_in_english_says_what_to_do(rejected_screenings):
    q = rejected_screenings["en"]["quality"]
    assert any("V3 is loose" in t and "record again" in t for t in q["reasons"])
    assert any(t.startswith("V3: flat line") for t in q["details"])


def test_detak_quality_keeps_its_english_reasons():
    rec = load_sample("ludb-1")
    sig = rec.signal.copy()
    sig[rec.leads.index("V3")] = 0.0
    d = assess_quality(rec.replace(signal=sig)).to_dict()
    assert "V3: flat line (peak-to-peak 0.000 mV < 0.02 mV): electrode off?" in d["reasons"]
    assert {"verdict", "reasons", "per_lead", "rejected", "fs"} <= set(d)


def test_the_urgency_names_the_cause_not_its_consequence(rejected_screenings):
    why = rejected_screenings["en"]["urgency"]["reasons"][0]
    assert "II: flat line" in why and "needed for the measurements" not in why
