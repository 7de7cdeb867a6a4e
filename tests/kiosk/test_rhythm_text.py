"""How rhythm findings read (detak/kiosk/rhythm_text.py): names in both languages, the
classifier's probability beside the rules' finding, disagreements flagged for the doctor."""

from __future__ import annotations

import pytest

from detak.kiosk.rhythm_text import CODE_NAME, finding_name, finding_rows


def rules(code: str, urgency: str = "no finding") -> dict:
    return {"code": code, "source": "rules", "probability": None, "urgency": urgency,
            "reasons": [{"en": f"{code} reason", "id": f"alasan {code}"}]}


def clf(code: str, p: float, codes: list[str] | None = None) -> dict:
    f = {"code": code, "source": "classifier", "probability": p, "urgency": "none",
         "reasons": [{"en": "Classifier", "id": "Pengklasifikasi"}]}
    if codes:
        f["codes"] = codes
    return f


@pytest.mark.parametrize("lang", ["id", "en"])
def test_every_code_of_the_contract_has_a_name_in_both_languages(lang):
    from detak.models.rhythm_rules import CODES

    assert set(CODES) <= set(CODE_NAME)
    names = {finding_name({"code": c}, lang) for c in CODES}
    assert len(names) >= len(CODES) - 1       # PRC(S) and PAC share the PAC name


def test_agreement_shows_the_probability_and_no_flag():
    rows = finding_rows({"findings": [rules("AFIB", "routine review"), clf("AFIB", 0.93)]},
                        "en")
    assert [(r["code"], r["probability"], r["disagree"]) for r in rows] == [
        ("AFIB", 0.93, False)]
    assert rows[0]["probability_text"] == "classifier 0.93"


def test_rules_finding_the_classifier_does_not_have_is_flagged():
    rows = finding_rows({"findings": [rules("AFIB"), clf("SR", 0.8)]}, "id")
    assert [(r["code"], r["source"], r["disagree"]) for r in rows] == [
        ("AFIB", "rules", True), ("SR", "classifier", True)]
    assert rows[0]["note"] == "Tidak ditemukan oleh pengklasifikasi: untuk dokter."
    assert rows[1]["level"] == "no finding"     # the classifier never sets a level


def test_codes_outside_the_classifiers_classes_never_disagree():
    rows = finding_rows({"findings": [rules("SR"), rules("PAUSE", "routine review"),
                                      rules("PVC"), clf("SR", 0.9)]}, "en")
    assert [r["disagree"] for r in rows] == [False, False, False]


def test_a_grouped_classifier_class_covers_its_codes():
    """rhythmclf groups e.g. BIGU with TRIGU: a TRIGU of the rules agrees with it."""
    rows = finding_rows({"findings": [rules("TRIGU", "routine review"),
                                      clf("BIGU", 0.7, ["BIGU", "TRIGU"])]}, "en")
    assert [(r["code"], r["probability"], r["disagree"]) for r in rows] == [
        ("TRIGU", 0.7, False)]


def test_no_classifier_no_flags_and_old_layout_no_rows():
    assert [r["disagree"] for r in finding_rows({"findings": [rules("AFIB")]}, "en")] == [False]
    old = {"findings": [{"ruleset": "clinical", "finding": "bradycardia", "label": "abnormal"}]}
    assert finding_rows(old, "en") == [] and finding_rows(None, "en") == []
