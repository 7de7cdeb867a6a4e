"""Rhythm findings (issue 17) on the doctor's review page, through a real kiosk sync to a real
server and PostgreSQL: the findings with their reasons and source, the verdict form proposing
the rules' statements; a screening stored in the old layout (interval findings at
``rhythm.findings``) syncs and renders as before."""

from __future__ import annotations

import copy
import html
import uuid

import pytest

from detak.kiosk.store import Store
from tests.kiosk.test_rhythm_pages import AF_CLF, AF_RULES, SR_CLF, old_layout
from tests.review import test_review_browser as walk
from tests.review.test_review_api import _client, _sql

browser = walk.browser          # the review walk's Chromium fixture, for the screenshot below


@pytest.fixture(scope="module")
def synced(clinic) -> dict[str, int]:
    """Two screenings added to the clinic's kiosk store and synced: ``old`` (the old layout,
    with a clinical bradycardia finding) and ``af`` (AF by the rules, flutter by the
    classifier only); their server ids."""
    with Store.open(clinic.store, sweep=False) as st:
        base = st.list_screenings(limit=1)[0]
        s = st.get_screening(base["id"])
        rec = st.load_recording(base["id"])
        old = old_layout(s)
        old["id"] = uuid.uuid4().hex
        old["rhythm"]["findings"].append({"ruleset": "clinical", "finding": "bradycardia",
                                          "parameter": "hr_bpm", "value": 45.0, "unit": "bpm",
                                          "label": "abnormal", "text": "bradycardia",
                                          "sex_assumed": False})
        af = copy.deepcopy(s)
        af["id"] = uuid.uuid4().hex
        af["rhythm"]["findings"] = [AF_RULES, AF_CLF, SR_CLF]
        af["rhythm"]["window_s"] = [3.3, 10.0]          # as after a lost BLE packet
        for x in (old, af):
            st.save_screening(x, rec, None, resident_id=base["resident_id"])
    assert clinic.sync()["pending"] == 0
    ids = {}
    for key, x in (("old", old), ("af", af)):
        ids[key] = _sql(clinic, "SELECT id FROM screenings WHERE uuid = %s", x["id"])[0][0]
    return ids


def test_old_layout_screening_syncs_renders_and_proposes_from_interval_findings(clinic,
                                                                                 synced):
    c = _client(clinic, "Ana")
    page = c.get(f"/review/screening/{synced['old']}")
    assert page.status_code == 200
    assert "Screened before rhythm findings were part of a screening." in page.text
    api = c.get(f"/api/v1/review/screenings/{synced['old']}").json()
    assert "SBRAD" in api["proposed_labels"]


def test_rhythm_findings_show_reasons_and_source_and_the_form_proposes_them(clinic, synced):
    c = _client(clinic, "Ana")
    text = html.unescape(c.get(f"/review/screening/{synced['af']}").text)
    assert "Atrial fibrillation (AF)" in text and "Atrial flutter" in text
    assert "AFIB · rules" in text and "AFLT · classifier · p = 0.41" in text
    assert "RR irregularity 0.124 (8-beat windows)" in text
    assert "Found by the classifier only: for the doctor." in text
    assert "Rhythm read on the gap-free stretch 3.3–10 s" in text
    assert 'value="AFIB" checked' in text                   # the rules' finding, proposed
    assert 'value="AFLT">' in text                           # offered, not proposed
    api = c.get(f"/api/v1/review/screenings/{synced['af']}").json()
    assert "AFIB" in api["proposed_labels"] and "AFLT" not in api["proposed_labels"]


@pytest.mark.browser
def test_review_page_of_an_af_screening_in_a_browser(clinic, synced, browser, tmp_path):
    """The rhythm panel as the doctor sees it (a screenshot: rhythm-review-af.png, copied to
    $DETAK_REVIEW_SCREENS when set)."""
    import os
    import shutil
    from pathlib import Path

    from tests.server.harness import REPO

    page = walk._signed_in(browser, clinic.server.url, "Budi")
    page.goto(f"/review/screening/{synced['af']}")
    page.wait_for_selector("#ecg[data-ready='1']")
    rows = page.locator("#rhythm li")
    assert rows.count() == 2
    assert "disagree" in (rows.nth(1).get_attribute("class") or "")
    page.click("#rhythm-features summary")
    shot = tmp_path / "rhythm-review-af.png"
    page.screenshot(path=str(shot), full_page=True)
    if os.environ.get("DETAK_REVIEW_SCREENS"):
        out = Path(os.environ["DETAK_REVIEW_SCREENS"])
        out = out if out.is_absolute() else REPO / out
        out.mkdir(parents=True, exist_ok=True)
        shutil.copy2(shot, out / shot.name)
