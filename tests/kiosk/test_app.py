"""The kiosk app: a real ``detak kiosk`` process answers /healthz; the pages behind sign-in."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from detak.kiosk.app import create_app
from detak.kiosk.store import Store
from tests.kiosk.kiosk_process import running_kiosk

NURSE, PIN = "Perawat Contoh", "4321"


def test_detak_kiosk_process_serves_healthz(tmp_path: Path):
    store = tmp_path / "store"
    with running_kiosk(store, "--lang", "en") as (base, health):
        assert health["status"] == "ok"
        assert health["store"] == str(store.resolve())
        assert health["pending_sync"] == 0
        assert health["model"] and "int8" in health["model"]
        with urllib.request.urlopen(base + "/login") as r:
            assert "Nurse sign-in" in r.read().decode()
    with pytest.raises(urllib.error.URLError):   # stopped by itself at the end
        urllib.request.urlopen(base + "/healthz", timeout=2)


def test_kiosk_store_secret_is_private(tmp_path: Path):
    create_app(tmp_path / "s", load_model=False)
    assert (tmp_path / "s" / "kiosk-secret").stat().st_mode & 0o777 == 0o600


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    with Store.open(tmp_path / "s") as st:
        st.add_nurse(NURSE, PIN)
    return TestClient(create_app(tmp_path / "s", load_model=False, lang="en"))


def test_pages_need_sign_in(client: TestClient):
    r = client.get("/residents", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"


def test_wrong_pin_says_what_to_do(client: TestClient):
    r = client.post("/login", data={"name": NURSE, "pin": "0000"})
    assert r.status_code == 401 and "type the PIN again" in r.text


def test_lock_out_names_the_time(client: TestClient):
    for _ in range(4):
        client.post("/login", data={"name": NURSE, "pin": "0000"})
    r = client.post("/login", data={"name": NURSE, "pin": "0000"})
    assert r.status_code == 403 and "locked until" in r.text


def test_register_and_find_a_resident_without_names_in_urls(client: TestClient):
    r = client.post("/login", data={"name": NURSE, "pin": PIN}, follow_redirects=False)
    assert r.status_code == 303
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and NURSE.lower() not in cookie
    r = client.post("/residents/new", data={"name": "Ibu Contoh Satu", "number": "R-77",
                                            "birth_date": "1940-02-03", "sex": "F",
                                            "room": "12"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/residents/")
    assert "Contoh" not in r.headers["location"]
    page = client.get(r.headers["location"])
    assert "Ibu Contoh Satu" in page.text and "No screenings yet" in page.text
    found = client.post("/residents", data={"q": "R-7"})
    assert "Ibu Contoh Satu" in found.text
    dup = client.post("/residents/new", data={"name": "X", "number": "R-77"})
    assert dup.status_code == 409 and "already registered" in dup.text


def test_report_link_without_a_report_is_a_plain_404(client: TestClient):
    client.post("/login", data={"name": NURSE, "pin": PIN})
    r = client.get("/screenings/nope/report.pdf")
    assert r.status_code == 404 and "no PDF report" in r.text


def test_healthz_counts_the_outbox(client: TestClient, sample_recording):
    st = client.app.state.store
    st.save_screening({"id": "a1", "created_at": "2026-12-07T08:00:00+00:00"},
                      sample_recording)
    assert json.loads(client.get("/healthz").text)["pending_sync"] == 1


def test_a_busy_port_is_one_line_naming_what_to_do(tmp_path: Path):
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        proc = subprocess.run([sys.executable, "-m", "detak.cli", "kiosk", "--store",
                               str(tmp_path / "s"), "--port", str(port)], capture_output=True,
                              text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "another --port" in lines[0], proc.stderr


def test_a_stored_report_is_served_and_shown_in_the_app(client: TestClient, sample_recording):
    client.post("/login", data={"name": NURSE, "pin": PIN})
    st = client.app.state.store
    st.save_screening({"id": "r1", "created_at": "2026-12-07T08:00:00+00:00"},
                      sample_recording, b"%PDF-1.4 fake\n%%EOF\n")
    pdf = client.get("/screenings/r1/report.pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    page = client.get("/screenings/r1/report")
    assert page.status_code == 200 and 'src="/screenings/r1/report.pdf"' in page.text
    # an unknown id is a plain page, and the app still answers afterwards (it once
    # deadlocked: the page was rendered while the store lock was held)
    assert client.get("/screenings/nope/report").status_code == 404
    assert client.get("/screenings/nope").status_code == 404
    assert client.get("/healthz").status_code == 200


def test_the_report_page_shows_the_report_as_a_picture(client: TestClient, sample_recording):
    """Headless and kiosk-mode Chromium draw an embedded PDF black: the page shows a PNG of
    the same report page (the same figure code), the PDF one tap away."""
    import struct

    from detak.kiosk.screening import screen

    client.post("/login", data={"name": NURSE, "pin": PIN})
    st = client.app.state.store
    s = screen(sample_recording, lang="id").to_dict()
    st.save_screening(s, sample_recording, b"%PDF-1.4 fake\n%%EOF\n")
    page = client.get(f"/screenings/{s['id']}/report")
    assert f'src="/screenings/{s["id"]}/report.png"' in page.text
    assert f'href="/screenings/{s["id"]}/report.pdf" download' in page.text
    png = client.get(f"/screenings/{s['id']}/report.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    width, height = struct.unpack(">II", png.content[16:24])
    assert abs(width / height - 297 / 210) < 0.01 and width >= 1000   # A4 landscape
    assert client.get("/screenings/nope/report.png").status_code == 404
    client.post("/logout")
    assert client.get(f"/screenings/{s['id']}/report.png",
                      follow_redirects=False).status_code == 303


def test_device_choice_offers_discovered_devices_only_when_asked(tmp_path: Path):
    """The device step: the configured device and the training device; "Find other devices"
    runs `detak devices` discovery (injected here: no BLE scan in tests) and offers the USB
    serial ECGs and profiled BLE ECGs it finds, never a board's own UART."""
    calls = []

    async def fake_discover() -> dict:
        calls.append(1)
        return {"serial": [{"device": "/dev/ttyUSB0", "description": "CP2102 USB to UART",
                            "hwid": "USB VID:PID=10C4:EA60", "url": "serial:///dev/ttyUSB0"},
                           {"device": "/dev/ttyAMA0", "description": "ttyAMA0",
                            "hwid": "fe201000.serial", "url": "serial:///dev/ttyAMA0"}],
                "ble": [{"address": "A0:9E:1A:00:00:01", "name": "Polar H10 0001",
                         "rssi": -60, "profiles": ["polar"],
                         "url": "ble://A0:9E:1A:00:00:01?profile=polar"}],
                "ble_error": None}

    with Store.open(tmp_path / "s") as st:
        st.add_nurse(NURSE, PIN)
        rid = st.add_resident("Oma Contoh", "R-9")
    client = TestClient(create_app(tmp_path / "s", load_model=False, lang="en",
                                   device="serial:///dev/ttyECG", discover=fake_discover))
    client.post("/login", data={"name": NURSE, "pin": PIN})
    first = client.get(f"/residents/{rid}/device")
    assert first.status_code == 200 and calls == []              # no scan until asked
    assert "training device" in first.text and "serial:///dev/ttyECG" in first.text
    assert "Polar" not in first.text and "Find other devices" in first.text
    found = client.get(f"/residents/{rid}/device?scan=1")
    assert calls == [1]
    assert "Polar H10 0001" in found.text and "found by Bluetooth, strong signal" in found.text
    assert "CP2102 USB to UART" in found.text and "found by USB cable" in found.text
    assert "ttyAMA0" not in found.text and "Found 2 device(s)" in found.text
    again = client.get(f"/residents/{rid}/device?scan=1")     # a second search adds no copies
    assert again.text.count("Polar H10 0001") == 1
    import re

    dev = re.search(r'place\?dev=(\d+)">Polar', again.text).group(1)
    place = client.get(f"/residents/{rid}/place?dev={dev}")
    assert place.status_code == 200 and f'name="dev" value="{dev}"' in place.text


def test_a_scan_without_bluetooth_says_so_in_plain_words(tmp_path: Path):
    async def no_ble() -> dict:
        return {"serial": [], "ble": [], "ble_error": "BLE scan unavailable: no adapter"}

    with Store.open(tmp_path / "s") as st:
        st.add_nurse(NURSE, PIN)
        rid = st.add_resident("Opa Contoh", "R-8")
    client = TestClient(create_app(tmp_path / "s", load_model=False, lang="id",
                                   discover=no_ble))
    client.post("/login", data={"name": NURSE, "pin": PIN})
    r = client.get(f"/residents/{rid}/device?scan=1")
    assert r.status_code == 200 and "perangkat latihan" in r.text
    assert "adapter" not in r.text and "Bluetooth" in r.text


@pytest.mark.parametrize("lang, meaning, beside", [
    ("en", "Nothing that needs a doctor today", "The S3 class is Sangat Berpotensi Aritmia"),
    ("id", "Tidak ada yang perlu dokter hari ini", "Kelas S3 adalah Sangat Berpotensi Aritmia"),
])
def test_s3_risk_class_beside_no_finding_reads_coherently(tmp_path: Path, sample_recording,
                                                         lang, meaning, beside):
    """The urgency says what needs a doctor today; S3's rhythm-risk class is the rule set's
    own grading: beside "no finding" the page says why the two do not contradict."""
    from detak.kiosk.screening import screen

    with Store.open(tmp_path / "s") as st:
        st.add_nurse(NURSE, PIN)
    client = TestClient(create_app(tmp_path / "s", load_model=False, lang=lang))
    client.post("/login", data={"name": NURSE, "pin": PIN})
    s = screen(sample_recording, lang=lang).to_dict()
    s["rhythm"]["s3_label"] = s["rhythm"]["s3_label_text"] = "Sangat Berpotensi Aritmia"
    s["urgency"] = {"level": "no finding", "reasons": [], "rules": [], "notes": []}
    client.app.state.store.save_screening(s, sample_recording)
    page = client.get(f"/screenings/{s['id']}").text
    assert meaning in page and beside in page
    s2 = {**s, "id": "other", "urgency": {**s["urgency"], "level": "routine review"}}
    client.app.state.store.save_screening(s2, sample_recording)
    page2 = client.get("/screenings/other").text
    assert beside not in page2 and "S3" in page2 and meaning not in page2


def test_a_usable_recording_with_quality_warnings_says_so_in_the_page_language(
        tmp_path: Path, sample_recording):
    """A 'warn' recording's results carry the quality advice in plain words, rendered from the
    reason codes in the page's language (whatever language the screening was made in)."""
    from detak.kiosk.screening import screen

    with Store.open(tmp_path / "s") as st:
        st.add_nurse(NURSE, PIN)
    client = TestClient(create_app(tmp_path / "s", load_model=False, lang="id"))
    client.post("/login", data={"name": NURSE, "pin": PIN})
    s = screen(sample_recording, lang="en").to_dict()
    s["quality"] = {"verdict": "warn", "reasons": ["(English, as stored)"], "details": [],
                    "issues": [{"code": "wander", "level": "warn", "lead": "V1", "mv": 1.4,
                                "limit_mv": 1.0}]}
    client.app.state.store.save_screening(s, sample_recording)
    page = client.get(f"/screenings/{s['id']}").text
    assert "Kualitas rekaman: cukup" in page and "Garis di sadapan V1 bergeser" in page
    assert "(English, as stored)" not in page
    s2 = {**s, "id": "ok1", "quality": {"verdict": "ok", "reasons": [], "issues": []}}
    client.app.state.store.save_screening(s2, sample_recording)
    assert "Kualitas rekaman: cukup" not in client.get("/screenings/ok1").text


def test_saved_screening_keeps_the_nurse_and_facility_for_its_report(tmp_path: Path):
    """The app stores the signed-in nurse's name and the facility with the screening; the
    saved PDF and a later `detak report` show them in the header."""
    import shutil
    import subprocess
    import time

    from detak.kiosk.report_cli import run_report_command
    from detak.kiosk.screen_soak import emulator_source

    with Store.open(tmp_path / "s") as st:
        st.add_nurse(NURSE, PIN)
        rid = st.add_resident("Ibu Contoh Dua", "R-88", sex="F")
    app = create_app(tmp_path / "s", load_model=False, lang="en",
                     device=emulator_source("ptbxl-00286"), facility="Panti Werdha  Contoh")
    client = TestClient(app)
    client.post("/login", data={"name": NURSE, "pin": PIN})
    r = client.post(f"/residents/{rid}/record", data={"dev": "0"}, follow_redirects=False)
    jid = r.headers["location"].rsplit("/", 1)[1]
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        r = client.get(f"/record/{jid}/result", follow_redirects=False)
        if r.status_code == 200:
            break
        time.sleep(0.3)
    assert r.status_code == 200, "the recording did not finish"
    r = client.post(f"/record/{jid}/save", follow_redirects=False)
    sid = r.headers["location"].rsplit("/", 1)[1]
    with Store.open(tmp_path / "s") as st:
        saved = st.get_screening(sid)
        pdf = st.report_path(sid)
    assert (saved["nurse"], saved["facility"]) == (NURSE, "Panti Werdha Contoh")
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    again = run_report_command(sid, tmp_path / "s", out=tmp_path / "again.pdf")
    for path in (pdf, again):
        text = " ".join(subprocess.run(["pdftotext", str(path), "-"], capture_output=True,
                                       text=True, check=True).stdout.split())
        assert "Panti Werdha Contoh" in text and f"Nurse: {NURSE}" in text
        assert "Resident: Ibu Contoh Dua" in text and "Resident number: R-88" in text


def _wait_result(client: TestClient, jid: str) -> object:
    import time

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        r = client.get(f"/record/{jid}/result", follow_redirects=False)
        if r.status_code == 200:
            return r
        time.sleep(0.3)
    raise AssertionError("the recording did not finish")


def test_record_again_on_the_training_device_plays_it_without_the_fault(tmp_path: Path):
    """Reject → "Record again" re-records the same training device, as if the nurse had
    pressed the electrode back: the lead-off fault is gone and the retake is screened."""
    import re

    from detak.kiosk.screen_soak import emulator_source

    with Store.open(tmp_path / "s") as st:
        st.add_nurse(NURSE, PIN)
        rid = st.add_resident("Bapak Contoh Tiga", "R-99", sex="M")
    device = emulator_source("ptbxl-00286") + "&leadoff=0:10:LA"
    client = TestClient(create_app(tmp_path / "s", load_model=False, lang="en",
                                   device=[device, "emu://ptbxl/1?speed=1"]))
    client.post("/login", data={"name": NURSE, "pin": PIN})
    r = client.post(f"/residents/{rid}/record", data={"dev": "0"}, follow_redirects=False)
    page = _wait_result(client, r.headers["location"].rsplit("/", 1)[1])
    assert "Recording quality: rejected" in page.text
    again = re.search(r'href="(/residents/\d+/place\?dev=0&(?:amp;)?retake=1)"', page.text)
    assert again, "the reject page's Record again does not re-record the same device"
    place = client.get(again.group(1).replace("&amp;", "&"))
    assert 'name="retake" value="1"' in place.text
    r = client.post(f"/residents/{rid}/record", data={"dev": "0", "retake": "1"},
                    follow_redirects=False)
    page = _wait_result(client, r.headers["location"].rsplit("/", 1)[1])
    assert "rejected" not in page.text and "QRS" in page.text
