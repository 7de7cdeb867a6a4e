"""The nurse's flow in a real browser: Debian's Chromium (``make browser``) driven by Playwright
against a real ``detak kiosk`` process whose devices are the emulator on a real pty
(``emu://ptbxl/…``; one clean, one with the RA electrode falling off), at 800×480.

Walks: sign in (a nurse made through the Store API), register a resident, place electrodes,
record with the live trace, results with the CAM, save, open the PDF; the reject path (lead-off
→ the reason in plain words → record again on the clean device → results); both languages.
Each step's screenshot goes to the pytest temp folder; with DETAK_KIOSK_SCREENS=DIR (``make
kiosk-screens`` sets docs/results/kiosk-screens) the set is copied there too (never by default:
a test run does not rewrite files of the checkout).
Skips without /usr/bin/chromium, except under CI=true, where that fails.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from detak.kiosk.store import Store
from tests.kiosk.kiosk_process import ROOT, running_kiosk

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 800, "height": 480}
WIDE = {"width": 1024, "height": 600}       # the other touchscreen the kiosk is made for
SCREENS = os.environ.get("DETAK_KIOSK_SCREENS")
CLEAN = "emu://ptbxl/1?speed=2"
LEAD_OFF = "emu://ptbxl/286?speed=2&leadoff=0.5:9:RA"   # record again: the same, RA back on
SLOW_WIDE = "emu://ptbxl/286?speed=2"      # 54 bpm, QRS 150 ms: values out of range
AF = "emu://ptbxl/4531?speed=2"            # atrial fibrillation, 87 bpm (PTB-XL fold <= 8)
NURSE, PIN = "Suster Uji Coba", "2468"
LOCKED = "Perawat Lupa Pin"
RESIDENTS = ("Ibu Sukma Percobaan", "Mr Budi Contohan", "Oma Wulan Sampelan",
             "Opa Herman Cobaan")


def _need_chromium() -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{CHROMIUM} is missing under CI: `make browser` installs Debian's chromium")
    pytest.skip(f"{CHROMIUM} is not installed (run `make browser`: apt-get install chromium)")


@pytest.fixture(scope="module")
def kiosk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    _need_chromium()
    store = tmp_path_factory.mktemp("kiosk") / "store"
    with Store.open(store) as st:
        st.add_nurse(NURSE, PIN)
        st.add_nurse(LOCKED, PIN)
    with running_kiosk(store, "--device", CLEAN, "--device", LEAD_OFF, "--device",
                       SLOW_WIDE, "--device", AF) as (base, _health):
        yield base
    log = "".join(p.read_text(errors="replace") for p in store.parent.glob("kiosk-*.log"))
    assert "GET /residents/" in log                 # the access log is on ...
    for name in (NURSE, LOCKED, *RESIDENTS):                # ... and names no one
        for word in (w for w in name.split() if len(w) >= 4):
            assert word not in log, f"{word!r} in the kiosk's log"


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    """Debian's Chromium through Playwright (one per module: Playwright's sync API runs once)."""
    _need_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def browser(kiosk: str, chromium: object) -> object:
    """The browser of the walks against the module's kiosk."""
    return chromium


class Shots:
    """Screenshots of each step (800×480) under tmp_path, copied to $DETAK_KIOSK_SCREENS."""

    def __init__(self, page: object, folder: Path, prefix: str) -> None:
        self.page, self.folder, self.prefix, self.n, self.files = page, folder, prefix, 0, []

    def __call__(self, name: str) -> None:
        self.n += 1
        path = self.folder / f"{self.prefix}-{self.n:02d}-{name}.png"
        # a click that posts a form may still be navigating: Chromium refuses to capture a
        # page between two documents ("Unable to capture screenshot"), so wait for the load
        self.page.wait_for_load_state("load")
        self.page.screenshot(path=str(path))
        self.files.append(path)

    def publish(self) -> None:
        if not SCREENS:
            return
        out = Path(SCREENS) if Path(SCREENS).is_absolute() else ROOT / SCREENS
        out.mkdir(parents=True, exist_ok=True)
        for old in out.glob(f"{self.prefix}-*.png"):
            old.unlink()
        for f in self.files:
            shutil.copy2(f, out / f.name)


def _new_page(browser: object, base: str, lang: str, viewport: dict | None = None) -> object:
    ctx = browser.new_context(viewport=viewport or VIEWPORT, base_url=base,
                              locale={"id": "id-ID", "en": "en-GB"}[lang])
    page = ctx.new_page()
    page.goto(f"/lang/{lang}?next=/login")
    return page


def _sign_in(page: object, shots: Shots, texts: dict[str, str]) -> None:
    page.fill("input[name=name]", NURSE)
    page.fill("input[name=pin]", "0000")
    page.click("button.primary")
    assert texts["wrong_pin"] in page.inner_text(".error")
    shots("wrong-pin")
    page.fill("input[name=pin]", PIN)
    page.click("button.primary")
    page.wait_for_url("**/residents")


def _register(page: object, shots: Shots, name: str, number: str, sex: str) -> None:
    page.click("a[href='/residents/new']")
    page.fill("input[name=name]", name)
    page.fill("input[name=number]", number)
    page.fill("input[name=birth_date]", "1941-05-17")
    page.fill("input[name=room]", "B-3")
    page.check(f"input[name=sex][value={sex}]")
    shots("register")
    page.click("button.primary")
    page.wait_for_url("**/residents/*")
    assert name in page.inner_text("h1")
    assert name.split()[-1] not in page.url          # ids in URLs, never names
    shots("resident")


def _record(page: object, shots: Shots, device_index: int, cancel_first: bool = False) -> None:
    page.click("a.btn.primary[href$='/device']")
    page.wait_for_url("**/device")
    shots("device")
    page.click(f"a[href$='place?dev={device_index}']")
    page.wait_for_url("**/place?dev=*")
    shots("placement")
    if cancel_first:                                 # cancel, back to placement, retake
        page.click("button.primary")
        page.wait_for_url("**/record/*")
        page.wait_for_function("document.getElementById('progress').value > 0.1",
                               timeout=30000)
        page.click("form[action$='/cancel'] button")
        page.wait_for_url("**/place?dev=*")
    page.click("button.primary")
    page.wait_for_url("**/record/*")
    page.wait_for_function("document.getElementById('progress').value > 0.3", timeout=30000)
    shots("recording")
    page.wait_for_url("**/result", timeout=60000)


def _check_tap_targets(page: object) -> None:
    small = page.evaluate("""() => [...document.querySelectorAll(
          'a.btn, button, input, .tab, .lang, table.list a, summary')]
        .filter(e => e.offsetParent !== null && e.type !== 'radio' && e.type !== 'hidden')
        .map(e => [e.textContent.trim() || e.name, e.getBoundingClientRect().height])
        .filter(([_, h]) => h < 48)""")
    assert small == [], f"tap targets under 48 px: {small}"
    tiny = page.evaluate("""() => [...document.querySelectorAll('main *')]
        .filter(e => e.offsetParent !== null && e.childNodes.length && [...e.childNodes]
          .some(n => n.nodeType === 3 && n.textContent.trim()))
        .filter(e => e.closest('svg') === null)
        .map(e => [e.tagName, parseFloat(getComputedStyle(e).fontSize)])
        .filter(([_, s]) => s < 16)""")
    assert tiny == [], f"text under 16 px: {tiny}"
    wide = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert wide <= 0, f"the page scrolls sideways by {wide} px"


def _pending(page: object) -> int:
    import re

    return int(re.search(r"(\d+)", page.inner_text("#sync")).group(1))


def _results(page: object, shots: Shots, texts: dict[str, str]) -> None:
    assert page.locator(".banner").count() == 1
    shots("results")
    _check_tap_targets(page)
    assert texts["normal_range"] in page.inner_text("table.list")
    ecg = page.locator("svg.ecg")
    assert ecg.count() == 1
    assert ecg.locator("rect").count() > 100       # the CAM band under each lead
    assert ecg.locator("polyline").count() == 12   # twelve leads
    page.locator(".legend").scroll_into_view_if_needed()
    shots("results-cam")
    before = _pending(page)
    page.click("form[action$='/save'] button")
    page.wait_for_url("**/screenings/*")
    assert texts["saved"] in page.inner_text(".saved")
    assert _pending(page) == before + 1              # queued for sync, shown on every page
    shots("saved")
    page.click("a[href$='/report']")                # the report inside the app
    page.wait_for_url("**/report")
    resp = page.request.get(page.url + ".pdf")
    if importlib.util.find_spec("detak.kiosk.report_pdf") is None:
        # the PDF renderer is another lane's part of issue 14: until it is merged the page
        # says so in plain words and the PDF route is a plain 404 (the content check waits)
        shots("report")
        assert texts["no_report"] in page.inner_text("main")
        assert resp.status == 404 and "PDF" in resp.text()
    else:
        assert resp.status == 200 and resp.body().startswith(b"%PDF")
        # the page shows the report as a picture (an embedded PDF is drawn black here)
        page.wait_for_function("(() => { const i = document.getElementById('preview');"
                               " return i && i.complete && i.naturalWidth > 1000; })()",
                               timeout=30000)
        shots("report")
        page.locator("img.report").scroll_into_view_if_needed()
        page.mouse.wheel(0, 300)
        shots("report-scrolled")
        _check_tap_targets(page)
        assert page.locator("a[download][href$='/report.pdf']").count() == 1
    page.click("a.btn[href^='/screenings/']")       # back to the results
    page.wait_for_url("**/screenings/*")
    assert not page.url.endswith("/report")


TEXTS = {
    "id": {"wrong_pin": "tidak cocok", "normal_range": "Rentang normal",
           "saved": "Tersimpan", "loose": "Elektroda RA longgar",
           "no_report": "Belum ada laporan PDF"},
    "en": {"wrong_pin": "do not match", "normal_range": "Normal range",
           "saved": "Saved", "loose": "Electrode RA is loose",
           "no_report": "There is no PDF report"},
}


def test_nurse_screens_a_resident_in_bahasa_indonesia(browser: object, kiosk: str,
                                                      tmp_path: Path) -> None:
    page = _new_page(browser, kiosk, "id")
    shots = Shots(page, tmp_path, "id")
    shots("sign-in")
    _check_tap_targets(page)
    _sign_in(page, shots, TEXTS["id"])
    shots("residents")
    _register(page, shots, RESIDENTS[0], "P-0101", "F")
    _record(page, shots, 0, cancel_first=True)
    _results(page, shots, TEXTS["id"])
    page.click("a[href='/residents']")
    page.fill("input[name=q]", "Sukma")             # search by name (a POST: not in the URL)
    page.click("button.primary")
    shots("search")
    page.click("a.choice")
    _record(page, shots, 2)                          # a second screening: a trend to draw
    assert "di bawah normal" in page.inner_text("table.list")
    shots("results-out-of-range")
    page.click("form[action$='/save'] button")
    page.wait_for_url("**/screenings/*")
    page.click("a[href='/residents']")
    page.fill("input[name=q]", "P-0101")
    page.click("button.primary")
    page.click("a.choice")
    assert page.locator("svg.trend").count() == 2   # history with the HR and QTc trends
    assert page.locator("table.list tr").count() == 3
    shots("history")
    shots.publish()


def test_rejected_recording_then_retake_in_english(browser: object, kiosk: str,
                                                   tmp_path: Path) -> None:
    page = _new_page(browser, kiosk, "en")
    shots = Shots(page, tmp_path, "en")
    shots("sign-in")
    page.fill("input[name=name]", LOCKED)            # five wrong PINs lock the name
    for _ in range(5):
        page.fill("input[name=pin]", "0000")
        page.click("button.primary")
    assert "locked until" in page.inner_text(".error")
    shots("locked")
    page.fill("input[name=name]", "")
    _sign_in(page, shots, TEXTS["en"])
    _register(page, shots, RESIDENTS[1], "P-0202", "M")
    _record(page, shots, 1)                           # the device whose RA falls off
    assert TEXTS["en"]["loose"] in page.inner_text(".reasons")
    shots("rejected")
    _check_tap_targets(page)
    page.click("a.btn.primary")                       # record again: the same device, and
    page.wait_for_url("**/place?dev=1&retake=1")      # the nurse pressed RA back on
    page.click("button.primary")
    page.wait_for_url("**/result", timeout=60000)
    marked = page.locator("tr.out").all_inner_texts()  # ST 73 ms low, QRS 150 ms high
    assert any("below normal" in t for t in marked) and any("above normal" in t for t in marked)
    _results(page, shots, TEXTS["en"])
    shots.publish()


# words of the English pages that an Indonesian page must not show
ENGLISH = ("Electrode", "loose", "record again", "flat", "noise", "electrode off", "lead ")


def test_rejected_then_retake_in_bahasa_indonesia_at_1024x600(browser: object, kiosk: str,
                                                               tmp_path: Path) -> None:
    """The other screen size, lighter: the reject path in Indonesian (the reason and the
    technician's details with no English), retake, results, save, the report picture."""
    page = _new_page(browser, kiosk, "id", WIDE)
    shots = Shots(page, tmp_path, "id1024")
    shots("sign-in")
    _check_tap_targets(page)
    _sign_in(page, shots, TEXTS["id"])
    _check_tap_targets(page)
    _register(page, shots, RESIDENTS[2], "P-0303", "F")
    _record(page, shots, 1)                          # RA falls off
    assert TEXTS["id"]["loose"] in page.inner_text(".reasons")
    page.click("details.tech summary")
    shots("rejected")
    _check_tap_targets(page)
    main = page.inner_text("main")
    assert not [w for w in ENGLISH if w in main], main
    page.click("a.btn.primary")                      # record again: the same device
    page.wait_for_url("**/place?dev=1&retake=1")
    shots("placement")
    _check_tap_targets(page)
    page.click("button.primary")
    page.wait_for_url("**/result", timeout=60000)
    _results(page, shots, TEXTS["id"])
    shots.publish()


@pytest.mark.parametrize(("lang", "viewport", "prefix", "af", "stroke"), [
    ("id", VIEWPORT, "af-id", "Fibrilasi atrium (FA)", "risiko stroke"),
    ("en", WIDE, "af-en1024", "Atrial fibrillation (AF)", "risk of stroke")])
def test_atrial_fibrillation_is_shown_with_its_reasons_and_urgency(
        browser: object, kiosk: str, tmp_path: Path, lang: str, viewport: dict, prefix: str,
        af: str, stroke: str) -> None:
    """Issue 17: an AF recording's results name the rhythm finding in the page's language
    with its reasons, in the urgency colour, and the banner says why a doctor must see it."""
    page = _new_page(browser, kiosk, lang, viewport)
    shots = Shots(page, tmp_path, prefix)
    walk = Shots(page, tmp_path, "walk")             # the steps before: shown by the walks
    _sign_in(page, walk, TEXTS[lang])
    number = "P-0404" if lang == "id" else "P-0405"
    _register(page, walk, RESIDENTS[3], number, "M")
    _record(page, walk, 3)                           # the AF record
    banner = page.inner_text(".banner")
    assert af in banner and stroke in banner
    row = page.locator(".rfind li.rf", has_text=af)
    assert row.count() == 1 and "lvl-routine-review" in row.get_attribute("class")
    assert ("Laju ventrikel" if lang == "id" else "ventricular rate") in row.inner_text()
    shots("results")
    _check_tap_targets(page)
    main = page.inner_text("main")
    if lang == "id":
        assert not [w for w in ENGLISH if w in main], main
    page.locator(".rfind").scroll_into_view_if_needed()
    shots("results-rhythm")
    shots.publish()


def test_classifier_beside_the_rules_and_a_disagreement_for_the_doctor(
        chromium: object, tmp_path: Path) -> None:
    """A stored screening whose rules find AF, with the classifier agreeing (its probability
    beside the rules' finding) and finding flutter alone ("for the doctor"), at 800×480 in
    Indonesian: readable, no sideways scroll, tap targets kept."""
    from detak.data.samples import load_sample
    from detak.kiosk.screening import screen
    from tests.kiosk.test_rhythm_pages import with_af

    rec = load_sample("ptbxl-00286")
    s = with_af(screen(rec, lang="id").to_dict(), "clf-1")
    store = tmp_path / "store"
    with Store.open(store) as st:
        st.add_nurse(NURSE, PIN)
        st.save_screening(s, rec)
    with running_kiosk(store) as (base, _health):
        page = _new_page(chromium, base, "id")
        walk = Shots(page, tmp_path, "walk")
        _sign_in(page, walk, TEXTS["id"])
        page.goto(f"/screenings/{s['id']}")
        assert "Fibrilasi atrium (FA)" in page.inner_text(".banner")   # the banner says it too
        page.locator(".rfind").scroll_into_view_if_needed()
        rows = page.locator(".rfind li.rf")
        assert rows.count() == 2
        assert "pengklasifikasi 0,93" in rows.nth(0).inner_text()
        assert "untuk dokter" in rows.nth(1).inner_text() and "clf" in (
            rows.nth(1).get_attribute("class") or "")
        _check_tap_targets(page)
        shots = Shots(page, tmp_path, "af-clf-id")
        shots("results-rhythm")
        shots.publish()
        page.context.close()
