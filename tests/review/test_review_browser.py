"""The doctor's review in a real browser: Debian's Chromium driven by Playwright against a real
``detak server`` + PostgreSQL whose screenings came from ``detak screen`` + ``detak sync``, at
1280×800.

Walks: sign in → the queue → j, Enter → the screening page (true paper scale, CAM on, QT
measured with the calipers at 25 and 50 mm/s) → a second doctor sees the lock → a nurse gets
403, another facility's doctor 404 → labels changed, signed → ``detak sync`` brings the
verdict to the kiosk → ``detak report`` re-renders the PDF with "Reviewed by dr. … on …".
Screenshots go to the pytest temp folder and, with DETAK_REVIEW_SCREENS=DIR, there too.
Skips without /usr/bin/chromium, except under CI=true, where that fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.review.clinic import PASSWORD
from tests.server.harness import DETAK, REPO

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1280, "height": 800}
SCREENS = os.environ.get("DETAK_REVIEW_SCREENS")
PX_PER_MM = 96 / 25.4


@pytest.fixture(scope="module")
def browser(clinic) -> Iterator[object]:  # noqa: ANN001
    if not CHROMIUM.exists():
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{CHROMIUM} is missing under CI")
        pytest.skip(f"{CHROMIUM} is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield b
        b.close()


class Shots:
    def __init__(self, folder: Path) -> None:
        self.folder, self.n, self.files = folder, 0, []

    def __call__(self, page: object, name: str, full: bool = False) -> Path:
        self.n += 1
        path = self.folder / f"review-{self.n:02d}-{name}.png"
        page.wait_for_load_state("load")
        if page.locator("#ecg").count():            # the viewer draws after its fetch
            page.wait_for_selector("#ecg[data-ready='1']")
        page.screenshot(path=str(path), full_page=full)
        self.files.append(path)
        return path

    def publish(self) -> None:
        if not SCREENS:
            return
        out = Path(SCREENS) if Path(SCREENS).is_absolute() else REPO / SCREENS
        out.mkdir(parents=True, exist_ok=True)
        for old in out.glob("review-*.png"):
            old.unlink()
        for f in self.files:
            shutil.copy2(f, out / f.name)


def _signed_in(browser: object, base: str, name: str, lang: str = "en") -> object:
    ctx = browser.new_context(viewport=VIEWPORT, base_url=base)
    page = ctx.new_page()
    page.goto(f"/review/lang/{lang}?next=/review")       # → /login?next=/review
    assert "/login" in page.url
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button")
    page.wait_for_load_state("load")
    return page


def _svg_point(page: object, x_mm: float, y_mm: float) -> tuple[float, float]:
    box = page.locator("#ecg-svg").bounding_box()
    w_mm = float(page.locator("#ecg-svg").get_attribute("viewBox").split()[2])
    k = box["width"] / w_mm
    return box["x"] + x_mm * k, box["y"] + y_mm * k


def _measure(page: object, t0: float, t1: float) -> int:
    """Drag the calipers on the rhythm strip from t0 to t1 (s); the readout's ms."""
    speed = float(page.locator("#ecg-svg").get_attribute("data-speed"))
    gain = float(page.locator("#ecg-svg").get_attribute("data-gain"))
    left, base = 0.2 * speed + 5, 5 + 3 * gain * 3.5
    x0, y0 = _svg_point(page, left + t0 * speed, base)
    x1, y1 = _svg_point(page, left + t1 * speed, base)
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move((x0 + x1) / 2, y0, steps=4)
    page.mouse.move(x1, y1, steps=4)
    page.mouse.up()
    return int(page.locator("#caliper-readout").get_attribute("data-ms") or -1)


def test_review_sign_and_back_to_the_kiosk(clinic, browser, tmp_path) -> None:  # noqa: ANN001
    shots = Shots(tmp_path)
    base = clinic.server.url
    ana = _signed_in(browser, base, "Ana")
    assert ana.url.endswith("/review")
    rows = ana.locator("#queue tr.row")
    assert rows.count() == 3
    assert "refer today" in rows.nth(0).inner_text()            # refer today first
    shots(ana, "queue")
    ana.keyboard.press("j")
    assert "sel" in (rows.nth(1).get_attribute("class") or "")
    ana.keyboard.press("k")
    assert "sel" in (rows.nth(0).get_attribute("class") or "")
    # the refer-today screening (MI): its MI map has regions to show (a screening with a low
    # MI probability may have an all-zero map, and then the overlay rightly draws nothing)
    target = rows.nth(0).get_attribute("data-href")
    ana.keyboard.press("Enter")
    ana.wait_for_url(f"**{target}")
    ana.wait_for_selector("#ecg[data-ready='1']")
    # true paper scale: the SVG's CSS width is its width in mm
    box = ana.locator("#ecg-svg").bounding_box()
    w_mm = float(ana.locator("#ecg-svg").get_attribute("viewBox").split()[2])
    assert box["width"] / w_mm == pytest.approx(PX_PER_MM, rel=0.01)
    assert ana.locator("#ecg-svg path[data-lead]").count() == 13      # 12 leads + rhythm
    assert ana.locator("#relevance .rel").count() == 12
    shots(ana, "screening")
    # the CAM overlay on and off
    assert ana.locator("#cam-layer").evaluate("e => getComputedStyle(e).display") == "none"
    ana.check("#cam-toggle")
    assert ana.locator("#cam-layer").evaluate("e => getComputedStyle(e).display") != "none"
    assert ana.locator("#cam-layer rect").count() > 10
    # measure the QT of one beat of lead II where detak put its markers
    fid = ana.evaluate("JSON.parse(document.getElementById('ecg').dataset.fiducials)")
    beat = fid["beats_s"][2]
    b = fid["boundaries_ms"]["II"]
    qt_detak = b["t_off"] - b["qrs_on"]
    ana.check("#caliper-toggle")
    ms = _measure(ana, beat + b["qrs_on"] / 1000, beat + b["t_off"] / 1000)
    assert ms == pytest.approx(qt_detak, abs=12)               # ~1 px at 25 mm/s = 10.6 ms
    assert ana.locator("#caliper-layer line").count() == 3      # still drawn after the drag
    assert "ΔV 0 mV" in ana.locator("#caliper-readout").inner_text()    # a level drag
    shots(ana, "cam-calipers-25mm")
    ana.click("[data-speed='50']")
    ana.click("[data-gain='20']")
    assert ana.locator("#ecg-svg").bounding_box()["width"] > 1.9 * box["width"]
    ana.locator("#caliper-readout").evaluate("e => e.removeAttribute('data-ms')")
    ana.locator("#ecg-svg").evaluate("e => e.scrollIntoView({block: 'end'})")  # the strip
    ms50 = _measure(ana, beat + b["qrs_on"] / 1000, beat + b["t_off"] / 1000)
    assert ms50 == pytest.approx(qt_detak, abs=6)
    shots(ana, "zoom-50mm-20mm")
    ana.click("[data-speed='25']")
    ana.click("[data-gain='10']")
    if ana.locator("#lrp-btn").count():                 # the host extra is installed here
        ana.click("#lrp-btn")
        ana.wait_for_selector("#relevance-lrp .rel", timeout=120_000)
        assert ana.locator("#relevance-lrp .rel").count() == 12
        assert "lrp:epsilon_alpha2_beta1" in ana.locator("#relevance-lrp").inner_text()
        ana.locator("#relevance-lrp").scroll_into_view_if_needed()
        shots(ana, "lrp-on-request")
        ana.evaluate("window.scrollTo(0, 0)")

    # a second doctor sees who has it open; a nurse and another facility cannot open it
    budi = _signed_in(browser, base, "Budi")
    budi.goto(target)
    assert "Ana" in budi.locator("#lock-other").inner_text()
    assert budi.locator("#verdict-form").count() == 0
    shots(budi, "second-doctor-lock")
    nurse = _signed_in(browser, base, "nurse-a")
    assert nurse.goto(target).status == 403
    assert nurse.goto("/review").status == 403
    citra = _signed_in(browser, base, "Citra")
    assert citra.goto(target).status == 404
    shots(citra, "other-facility-404")

    # change the labels, choose the action, sign with the password
    form = ana.locator("#verdict-form")
    form.scroll_into_view_if_needed()
    proposed = [x.get_attribute("value") for x in
                form.locator("input[name=label]:checked").all()]
    for lab in proposed:
        form.locator(f"input[name=label][value='{lab}']").uncheck()
    form.locator("input[name=label][value='NORM']").check()
    form.locator("input[name=label][value='SR']").check()
    form.locator("input[name=action][value='routine']").check()
    form.locator("textarea[name=note]").fill("QT re-measured in II: normal.")
    form.locator("input[name=password]").fill("not my password")
    form.locator("#sign").click()
    ana.wait_for_selector("#sign-status.err")
    shots(ana, "wrong-password", full=True)
    form.locator("input[name=password]").fill(PASSWORD)
    form.locator("#sign").click()
    ana.wait_for_selector(".verdict[data-version='1']")
    assert "NORM, SR" in ana.locator(".verdict").first.inner_text()
    shots(ana, "signed", full=True)
    ana.goto(f"/review/lang/id?next={target}")                          # Bahasa Indonesia
    assert "Ditinjau oleh dr. Ana pada" in ana.locator(".verdict").first.inner_text()
    shots(ana, "signed-id", full=True)
    # a correction: a new version; the first one stays visible, marked superseded
    ana.click("#correct")
    form = ana.locator("#verdict-form")
    form.wait_for(state="visible")                    # once the lock is taken
    form.locator("input[name=label][value='SBRAD']").check()
    form.locator("textarea[name=note]").fill("Koreksi: bradikardia sinus ringan.")
    form.locator("input[name=password]").fill(PASSWORD)
    form.locator("#sign").click()
    ana.wait_for_selector(".verdict[data-version='2']")
    assert ana.locator(".verdict.old[data-version='1']").count() == 1
    shots(ana, "correction-id", full=True)
    budi.goto(target)
    assert budi.locator("#lock-other").count() == 0                     # released
    assert budi.locator("#correct").count() == 1

    # the kiosk: detak sync brings the verdict, detak report re-renders the PDF with it
    report = clinic.sync()
    assert report["verdicts"] >= 1
    import psycopg

    url = clinic.server.database_url.replace("postgresql+psycopg://", "postgresql://")
    sid = int(target.rsplit("/", 1)[1])
    with psycopg.connect(url) as conn:
        uuid = conn.execute("SELECT uuid FROM screenings WHERE id = %s", (sid,)).fetchone()[0]
    pdf = tmp_path / "report.pdf"
    done = subprocess.run(DETAK + ["report", uuid, "--store", str(clinic.store), "--lang", "en",
                                   "--out", str(pdf)], env=clinic.env, capture_output=True,
                          text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    text = " ".join(subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True,
                                   check=True).stdout.split())
    assert "Reviewed by dr. Ana on" in text and "NORM, SR, SBRAD" in text
    assert "correction, version 2" in text
    if shutil.which("pdftoppm"):
        subprocess.run(["pdftoppm", "-png", "-r", "80", "-singlefile", str(pdf),
                        str(tmp_path / "review-99-kiosk-report")], check=True)
        shots.files.append(tmp_path / "review-99-kiosk-report.png")
    shots.publish()
