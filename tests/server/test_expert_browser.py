"""The expert system (S4) in a real browser: Debian's Chromium driven by Playwright against a
real ``detak server`` and PostgreSQL, at 1280×800.

An admin signs in, opens S4's case base, imports synthetic S4-style cases (the study's 240
records are not public: `tests.models.test_cases.synthetic_s4` invents them), adds a feature,
types a case with a decimal comma (the named error appears at the form, the field marked),
corrects it and adds it; a doctor classifies a typed-in case by KNN and sees the neighbour
table, the vote and the leave-one-out accuracies; the same page in English. Screenshots go to
the pytest temp folder and, with DETAK_EXPERT_SCREENS=DIR, are copied there (never by default).
Skips without /usr/bin/chromium, except under CI=true, where that fails.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kiosk.test_browser import ARGS, CHROMIUM, _need_chromium
from tests.models.test_cases import synthetic_s4
from tests.server.harness import ServerProcess
from tests.server.kiosk import Kiosk, make_item, recording_files

pytestmark = pytest.mark.browser

VIEWPORT = {"width": 1280, "height": 800}
SCREENS = os.environ.get("DETAK_EXPERT_SCREENS")
ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "a long enough password"


@pytest.fixture(scope="module")
def browser(detak_server: ServerProcess) -> Iterator[object]:
    _need_chromium()
    from playwright.sync_api import sync_playwright

    for role, name in (("admin", "Admin Uji"), ("doctor", "dr. Coba")):
        args = ["create-user", "--role", role, "--name", name]
        if role == "doctor":
            args += ["--facility", "Wisma A"]
        detak_server.admin(*args, input=PASSWORD + "\n")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield b
        b.close()


class Shots:
    def __init__(self, page: object, folder: Path) -> None:
        self.page, self.folder, self.n, self.files = page, folder, 0, []

    def __call__(self, name: str, full: bool = False) -> None:
        self.n += 1
        self.page.wait_for_load_state("load")
        path = self.folder / f"expert-{self.n:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=full)
        self.files.append(path)

    def publish(self) -> None:
        if not SCREENS:
            return
        out = Path(SCREENS) if Path(SCREENS).is_absolute() else ROOT / SCREENS
        out.mkdir(parents=True, exist_ok=True)
        for old in out.glob("expert-*.png"):
            old.unlink()
        for f in self.files:
            shutil.copy2(f, out / f.name)


def _signed_in(browser: object, url: str, name: str) -> object:
    ctx = browser.new_context(viewport=VIEWPORT, base_url=url, locale="id-ID")
    page = ctx.new_page()
    page.goto("/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button")
    page.wait_for_load_state("load")
    assert '"status":"ok"' in page.content().replace(" ", "")
    return page


SCREENING = {"intervals": {"rr_ms": 845.0, "pr_ms": 162.0, "qrs_ms": 146.0, "qt_ms": 428.0,
                            "qtc_bazett_ms": 466.0, "st_ms": 84.0, "rs_ratio": 1.4,
                            "hr_bpm": 71.0}}
#: invented ECG-interval cases for the verdict base (narrow QRS: NORM; wide: CD)
INTERVAL_CASES = """rr_ms,pr_ms,qrs_ms,qt_ms,qtc_bazett_ms,st_ms,rs_ratio,hr_bpm,verdict
850,160,90,380,412,100,0.5,71,NORM
900,150,88,390,411,110,0.4,67,NORM
800,170,94,370,414,105,0.6,75,NORM
760,158,92,372,427,98,0.5,79,NORM
820,165,150,430,475,80,1.5,73,CD
780,180,140,420,475,85,1.4,77,CD
760,175,145,425,487,90,1.6,79,CD
"""


def _screening_of_wisma_a(srv: ServerProcess) -> int:
    k = Kiosk(srv.url)
    assert k.enroll(srv.enrollment_code("Wisma A")).status_code == 201
    hea, dat = recording_files(4242)
    k.upload(hea)
    k.upload(dat)
    res = k.batch([make_item(hea, dat, screening=SCREENING)]).json()["results"][0]
    assert res["status"] == "created", res
    return int(res["server_id"])


def test_admin_builds_and_doctor_classifies(browser: object, detak_server: ServerProcess,
                                            tmp_path: Path) -> None:
    screening_id = _screening_of_wisma_a(detak_server)
    admin = _signed_in(browser, detak_server.url, "Admin Uji")
    shots = Shots(admin, tmp_path)
    admin.goto("/expert")
    assert admin.locator("text=s4_echo").count() >= 1
    shots("bases")
    admin.click("a:text-is('s4_echo')")
    admin.wait_for_url(re.compile(r"/expert/bases/\d+$"))
    base_url = admin.url
    # import S4-style cases (invented) through the CSV form
    csv = synthetic_s4(tmp_path / "s4.csv", per_class=3, seed=11)
    admin.fill("textarea[name=csv]", (tmp_path / "s4.csv").read_text())
    admin.click("form[action$='/import'] button")
    admin.wait_for_url(re.compile(r"/expert/bases/\d+"))
    assert admin.locator("#case-table tr").count() == len(csv) + 1
    # add a feature
    admin.fill("#add-feature input[name=key]", "lvmi_gm2")
    admin.fill("#add-feature input[name=column]", "LVMI")
    admin.fill("#add-feature input[name=unit]", "g/m²")
    admin.fill("#add-feature input[name=description]", "left-ventricular mass index")
    admin.click("#add-feature button")
    admin.wait_for_load_state("load")
    assert admin.locator("#add-case input[name=f_lvmi_gm2]").count() == 1
    # a case with a typo: the library's named error at the form, the field marked
    values = {"aorta_mm": "31", "atrium_k_mm": "52", "ef_pct": "62..5", "edd_mm": "47",
              "esd_mm": "30", "ivs_d_mm": "9", "ivs_s_mm": "13", "pw_d_mm": "9", "pw_s_mm": "14",
              "hr_bpm": "78", "pr_ms": "165", "qrs_ms": "90", "qt_ms": "380", "qtc_ms": "412",
              "p_ms": "128", "lvmi_gm2": "96"}
    for k, v in values.items():
        admin.fill(f"#add-case input[name=f_{k}]", v)
    admin.select_option("#add-case select[name=label]", "mitral stenosis")
    admin.fill("#add-case input[name=note]", "typed in the browser test")
    admin.click("#add-case button")
    admin.wait_for_load_state("load")
    err = admin.inner_text("#case-form .error")
    assert "NonNumericValueError" in err and "62..5" in err
    assert admin.locator("#add-case label.bad input[name=f_ef_pct]").count() == 1
    admin.locator("#case-form").scroll_into_view_if_needed()
    shots("case-named-error")
    admin.fill("#add-case input[name=f_ef_pct]", "62,5")     # an Indonesian decimal comma
    admin.click("#add-case button")
    admin.wait_for_url(re.compile(r"/expert/bases/\d+#cases$"))
    assert admin.locator("#case-table tr").count() == len(csv) + 2
    assert "typed in the browser test" in admin.inner_text("#case-table")
    admin.goto(base_url)
    shots("base-page")
    admin.evaluate("document.getElementById('cases').scrollIntoView()")
    shots("cases")
    admin.goto("/expert")
    admin.click("a:text-is('ecg_verdicts')")
    admin.fill("textarea[name=csv]", INTERVAL_CASES)
    admin.click("form[action$='/import'] button")
    admin.wait_for_load_state("load")
    assert admin.locator("#case-table tr").count() == 8

    # the doctor classifies a typed-in case
    doc = _signed_in(browser, detak_server.url, "dr. Coba")
    shots.page = doc
    doc.goto("/expert/classify")
    doc.select_option("select[name=base]", label="s4_echo")
    doc.wait_for_load_state("load")
    query = {"aorta_mm": "30", "atrium_k_mm": "54", "ef_pct": "60", "edd_mm": "48",
             "esd_mm": "31", "ivs_d_mm": "9", "ivs_s_mm": "13", "pw_d_mm": "9", "pw_s_mm": "14",
             "hr_bpm": "76", "pr_ms": "160", "qrs_ms": "91", "qt_ms": "381", "qtc_ms": "410",
             "p_ms": "131"}
    for k, v in query.items():
        doc.fill(f"input[name=f_{k}]", v)
    doc.fill("input[name=k]", "5")
    doc.click("#classify-form button")
    doc.wait_for_load_state("load")
    rows = doc.locator("#neighbours tr[data-rank]")
    assert rows.count() == 5
    dists = [float(rows.nth(i).locator("td").nth(1).inner_text().replace(",", "."))
             for i in range(5)]
    assert dists == sorted(dists)
    assert doc.inner_text("#knn-class").strip() == "mitral stenosis"
    acc = doc.inner_text("#accuracy")
    assert "leave-one-out" in acc and "Naive Bayes" in acc
    shots("classify-id")
    doc.locator("#neighbours").scroll_into_view_if_needed()
    shots("neighbour-table")
    # ... and a screening of his facility, by its measured intervals
    doc.select_option("select[name=base]", label="ecg_verdicts")
    doc.wait_for_load_state("load")
    doc.select_option("select[name=screening]", value=str(screening_id))
    doc.fill("input[name=k]", "3")
    doc.click("#classify-form button")
    doc.wait_for_load_state("load")
    assert doc.input_value("input[name=f_qrs_ms]") == "146"
    assert doc.inner_text("#knn-class").strip() == "CD"
    assert doc.locator("#neighbours tr[data-class=CD]").count() == 3
    shots("classify-screening", full=True)
    doc.goto("/expert/lang/en?next=" + doc.url.split(detak_server.url, 1)[1]
             .replace("&", "%26").replace("?", "%3F"))
    doc.wait_for_load_state("load")
    assert "Nearest cases" in doc.content()
    assert doc.locator("#neighbours tr[data-rank]").count() == 3
    shots("classify-en", full=True)
    shots.publish()
