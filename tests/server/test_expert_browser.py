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

from tests.models.test_cases import synthetic_s4
from tests.server.harness import ServerProcess

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1280, "height": 800}
SCREENS = os.environ.get("DETAK_EXPERT_SCREENS")
ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "a long enough password"


def _need_chromium() -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{CHROMIUM} is missing under CI: `make browser` installs Debian's chromium")
    pytest.skip(f"{CHROMIUM} is not installed (run `make browser`: apt-get install chromium)")


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


def test_admin_builds_and_doctor_classifies(browser: object, detak_server: ServerProcess,
                                            tmp_path: Path) -> None:
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
    # a case with a decimal comma: the library's named error at the form, the field marked
    values = {"aorta_mm": "31", "atrium_k_mm": "52", "ef_pct": "62,5", "edd_mm": "47",
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
    assert "NonNumericValueError" in err and "decimal point" in err
    assert admin.locator("#add-case label.bad input[name=f_ef_pct]").count() == 1
    admin.locator("#case-form").scroll_into_view_if_needed()
    shots("case-named-error")
    admin.fill("#add-case input[name=f_ef_pct]", "62.5")
    admin.click("#add-case button")
    admin.wait_for_url(re.compile(r"/expert/bases/\d+#cases$"))
    assert admin.locator("#case-table tr").count() == len(csv) + 2
    assert "typed in the browser test" in admin.inner_text("#case-table")
    admin.goto(base_url)
    shots("base-page")
    admin.evaluate("document.getElementById('cases').scrollIntoView()")
    shots("cases")

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
    doc.goto("/expert/lang/en?next=" + doc.url.split(detak_server.url, 1)[1]
             .replace("&", "%26").replace("?", "%3F"))
    doc.wait_for_load_state("load")
    assert "Nearest cases" in doc.content()
    assert doc.locator("#neighbours tr[data-rank]").count() == 5
    shots("classify-en", full=True)
    shots.publish()
