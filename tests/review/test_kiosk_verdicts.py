"""The kiosk's side of a verdict (no server): the resident's history shows the newest version,
and `detak report` puts "reviewed by dr. X on DATE" in the PDF footer in the report's language;
without a verdict the blank signature lines stay."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from detak.cli import main
from detak.kiosk.app import create_app
from detak.kiosk.report_cli import run_report_command
from detak.kiosk.store import Store

NURSE, PIN = "Perawat Contoh", "4321"
V1 = {"server_id": 5, "version": 1, "label": "NORM, SR", "labels": ["NORM", "SR"],
      "action": "none", "note": "", "doctor": "Ana", "reviewed_at": "2026-12-07T09:00:00Z"}
V2 = {**V1, "version": 2, "label": "NORM, SBRAD", "labels": ["NORM", "SBRAD"],
      "action": "routine", "note": "rate 58 on re-measure",
      "reviewed_at": "2026-12-08T10:30:00Z"}


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> tuple[Path, str, int]:
    root = tmp_path_factory.mktemp("k") / "S"
    with Store.open(root) as st:
        rid = st.add_resident("Siti Contoh", "R-0007", sex="F")
        st.add_nurse(NURSE, PIN)
    assert main(["screen", "sample://ptbxl-00286", "--store", str(root), "--resident",
                 "R-0007", "--lang", "en"]) == 0
    with Store.open(root) as st:
        sid = st.list_screenings()[0]["id"]
    return root, sid, rid


def _pdf_text(path: str) -> str:
    out = subprocess.run(["pdftotext", path, "-"], capture_output=True, text=True, check=True)
    return " ".join(out.stdout.split())


def test_report_without_and_with_a_verdict(store, tmp_path):
    root, sid, _ = store
    with Store.open(root) as st:
        st.save_verdicts([], "0")
    before = _pdf_text(run_report_command(sid, root, lang="en", out=tmp_path / "a.pdf"))
    assert "Reviewed by dr. Ana" not in before and "Signature" in before
    with Store.open(root) as st:
        st.save_verdicts([{**V1, "uuid": sid}, {**V2, "uuid": sid}], "v2")
    en = _pdf_text(run_report_command(sid, root, lang="en", out=tmp_path / "b.pdf"))
    assert "Reviewed by dr. Ana on December 8, 2026" in en
    assert "NORM, SBRAD · routine follow-up · correction, version 2" in en
    assert "rate 58 on re-measure" in en and "Signature" not in en
    ind = _pdf_text(run_report_command(sid, root, lang="id", out=tmp_path / "c.pdf"))
    assert "Ditinjau oleh dr. Ana pada 8 Desember 2026" in ind and "kontrol rutin" in ind


def test_history_shows_the_newest_verdict(store):
    root, sid, rid = store
    with Store.open(root) as st:
        st.save_verdicts([{**V1, "uuid": sid}, {**V2, "uuid": sid}], "v2")
    client = TestClient(create_app(root, load_model=False, lang="en"))
    assert client.post("/login", data={"name": NURSE, "pin": PIN}).status_code in (200, 303)
    page = client.get(f"/residents/{rid}").text
    assert "NORM, SBRAD" in page and "routine follow-up" in page
    assert "Reviewed by dr. Ana on" in page and "NORM, SR" not in page
