"""Rhythm findings (issue 17) on the kiosk's results page, in the PDF and in the outbox, in
both languages; screenings stored before (interval findings at ``rhythm.findings``, each with
``ruleset``) still render, report and sync."""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from detak.kiosk.app import create_app
from detak.kiosk.report_pdf import render_report
from detak.kiosk.rhythm_read import interval_findings, rhythm_findings
from detak.kiosk.screening import screen
from detak.kiosk.store import Store
from detak.kiosk.urgency import assess_urgency

NURSE, PIN = "Perawat Contoh", "4321"

AF_RULES = {"code": "AFIB", "source": "rules", "probability": None, "urgency": "routine review",
            "reasons": [{"en": "RR irregularity 0.124 (8-beat windows), AF limit 0.06.",
                         "id": "Ketidakteraturan RR 0,124 (jendela 8 denyut), batas FA 0,06."},
                        {"en": "Mean ventricular rate 87 bpm at or below 110 bpm.",
                         "id": "Laju ventrikel rata-rata 87 dpm tidak di atas 110 dpm."}]}
AF_CLF = {"code": "AFIB", "source": "classifier", "probability": 0.93, "urgency": "none",
          "reasons": []}
SR_CLF = {"code": "AFLT", "source": "classifier", "probability": 0.41, "urgency": "none",
          "reasons": []}


@pytest.fixture(scope="module")
def screened(sample_recording) -> dict:
    return screen(sample_recording, lang="id").to_dict()


def old_layout(s: dict) -> dict:
    """``s`` as a kiosk stored it before issue 17: interval findings at rhythm.findings."""
    old = copy.deepcopy(s)
    r = old["rhythm"]
    r["findings"] = r.pop("interval_findings")
    for k in ("features", "feature_units", "feature_reasons", "lead"):
        r.pop(k, None)
    old["urgency"]["rules"] = [x for x in old["urgency"]["rules"] if not x.startswith("rhythm")]
    return old


def with_af(s: dict, sid: str = "af-1") -> dict:
    """``s`` with the rules finding AF and the classifier beside them, its urgency assessed
    again from these findings (as `screen` would: the banner names the AF)."""
    new = copy.deepcopy(s)
    new["id"] = sid
    new["rhythm"]["findings"] = [AF_RULES, AF_CLF, SR_CLF]
    rows = [f for f in interval_findings(new["rhythm"]) if f["ruleset"] == "clinical"]
    new["urgency"] = assess_urgency(
        quality=new["quality"]["verdict"], intervals=new["intervals"],
        clinical_findings=[(f["finding"], f["label"]) for f in rows],
        clinical_texts={f["finding"]: f["text"] for f in rows},
        rhythm=rhythm_findings(new["rhythm"]), mi=new["mi"],
        notes=new["urgency"].get("notes") or [], lang=new["lang"]).to_dict()
    return new


def _client(root: Path, lang: str) -> TestClient:
    with Store.open(root) as st:
        st.add_nurse(NURSE, PIN)
    c = TestClient(create_app(root, load_model=False, lang=lang))
    c.post("/login", data={"name": NURSE, "pin": PIN})
    return c


def _pdf_text(pdf: bytes, tmp_path: Path) -> str:
    if not shutil.which("pdftotext"):
        pytest.skip("pdftotext (poppler-utils) is not installed: make pdf-tools")
    f = tmp_path / "r.pdf"
    f.write_bytes(pdf)
    out = subprocess.run(["pdftotext", str(f), "-"], capture_output=True, text=True,
                         check=True).stdout
    return " ".join(out.split())


# ------------------------------------------------------------------- the reading helper


def test_the_helper_reads_both_layouts(screened):
    old = old_layout(screened)
    assert interval_findings(old["rhythm"]) == screened["rhythm"]["interval_findings"]
    assert rhythm_findings(old["rhythm"]) == []
    assert rhythm_findings(screened["rhythm"]) == screened["rhythm"]["findings"]
    assert interval_findings({"findings": [AF_RULES]}) == []        # new items are not rules


# ------------------------------------------------------------------- results page


@pytest.mark.parametrize(("lang", "name", "reason", "flag", "p"), [
    ("id", "Fibrilasi atrium (FA)", "Ketidakteraturan RR 0,124", "untuk dokter", "0,93"),
    ("en", "Atrial fibrillation (AF)", "RR irregularity 0.124", "for the doctor", "0.93")])
def test_results_page_shows_rhythm_findings_in_the_page_language(
        tmp_path, sample_recording, screened, lang, name, reason, flag, p):
    c = _client(tmp_path / "s", lang)
    s = with_af(screened)
    c.app.state.store.save_screening(s, sample_recording)
    page = c.get(f"/screenings/{s['id']}").text
    assert name in page and reason in page
    assert f"{p}" in page                         # the classifier's probability beside it
    assert flag in page                           # AFLT by the classifier only
    assert "lvl-routine-review" in page           # the urgency colour of the rules' finding


def test_an_old_layout_screening_still_renders_reports_and_queues(tmp_path, sample_recording,
                                                                  screened):
    old = old_layout(screened)
    old["id"] = "old-1"
    c = _client(tmp_path / "s", "id")
    st = c.app.state.store
    pdf = render_report(old, sample_recording, lang="id")
    st.save_screening(old, sample_recording, pdf)
    page = c.get("/screenings/old-1")
    assert page.status_code == 200
    assert old["rhythm"]["reasons"][0] in page.text      # the interval rules' reasons
    assert "Tidak ada temuan irama" not in page.text      # not "could not classify"
    text = _pdf_text(pdf, tmp_path)
    assert "klinis" in text and "Aturan interval" in text
    sent = [x for x in st.pending_sync_items() if x["id"] == "old-1"][0]["screening"]
    assert sent["rhythm"]["findings"] == old["rhythm"]["findings"]   # sent as stored


def test_pdf_shows_rhythm_findings_in_the_report_language(tmp_path, sample_recording, screened):
    s = with_af(screened)
    for lang, words in (("id", ["Irama", "Fibrilasi atrium (FA)", "pengklasifikasi 0,93",
                                "Ketidakteraturan RR 0,124", "untuk dokter"]),
                        ("en", ["Rhythm", "Atrial fibrillation (AF)", "classifier 0.93",
                                "RR irregularity 0.124", "for the doctor"])):
        text = _pdf_text(render_report(s, sample_recording, lang=lang), tmp_path)
        missing = [w for w in words if w not in text]
        assert missing == [], (lang, missing)


def test_no_rhythm_finding_says_so_in_plain_words(tmp_path, sample_recording, screened):
    s = copy.deepcopy(screened)
    s["id"] = "none-1"
    s["rhythm"]["findings"] = []
    c = _client(tmp_path / "s", "en")
    c.app.state.store.save_screening(s, sample_recording)
    assert "No rhythm finding" in c.get("/screenings/none-1").text
