"""The PDF report (detak/kiosk/report_pdf.py) and ``detak report`` (detak/kiosk/report_cli.py),
checked from the PDF itself with poppler-utils (`make pdf-tools` installs them): page size,
true-scale grid, extractable text in both languages, embedded fonts, PNG rendering."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

from detak.data.samples import load_sample
from detak.kiosk.ranges import normal_ranges
from detak.kiosk.report_pdf import render_report
from detak.kiosk.screening import screen

MI_ECG_ID = 184          # PTB-XL fold 9, labelled MI only (ILMI, ASMI): never fold 10
PT_PER_MM = 72 / 25.4    # 2.8346 pt
RESIDENT = {"name": "Bambang Suryono", "resident_number": "PW-0042",
            "birth_date": "1941-03-15", "sex": "M"}
FACILITY = "Panti Werdha Kasih Ibu"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: install poppler-utils (make pdf-tools)")
    return path


def _run(*cmd: str) -> str:
    return subprocess.run([_tool(cmd[0]), *cmd[1:]], check=True, capture_output=True,
                          text=True).stdout


@pytest.fixture(scope="module")
def recordings():
    from detak.data.ptbxl import open_ptbxl

    ptb = open_ptbxl()
    md = ptb.metadata.loc[MI_ECG_ID]
    assert md["strat_fold"] == 9 and md["superclasses"] == ["MI"]
    twelve = ptb.record(MI_ECG_ID)
    noisy = twelve.replace(signal=(twelve.signal + np.random.default_rng(0).normal(
        0, 1.5, twelve.signal.shape)).astype(np.float32))
    return {"mi": twelve, "single": load_sample("ludb-1").select(["II"]), "rejected": noisy}


@pytest.fixture(scope="module")
def pdfs(recordings, tmp_path_factory):
    """{(kind, lang): (screening dict, pdf path)} for the three kinds in both languages."""
    folder = tmp_path_factory.mktemp("reports")
    out = {}
    for kind, rec in recordings.items():
        for lang in ("id", "en"):
            s = screen(rec, lang=lang, source=kind).to_dict()
            path = folder / f"{kind}-{lang}.pdf"
            path.write_bytes(render_report(s, rec, lang=lang, facility=FACILITY,
                                           nurse="Dewi Lestari", resident=RESIDENT))
            out[kind, lang] = (s, path)
    return out


def _text(path: Path) -> str:
    return " ".join(_run("pdftotext", str(path), "-").split())


def test_the_fixtures_are_what_they_claim(pdfs):
    assert pdfs["mi", "en"][0]["mi"]["probability"] >= 0.5
    assert pdfs["single", "en"][0]["mi"] is None
    assert pdfs["rejected", "en"][0]["quality"]["verdict"] == "reject"


@pytest.mark.parametrize("kind", ["mi", "single", "rejected"])
def test_one_a4_landscape_page(pdfs, kind):
    info = _run("pdfinfo", str(pdfs[kind, "id"][1]))
    assert re.search(r"^Pages:\s+1$", info, re.M)
    w, h = map(float, re.search(r"Page size:\s+([\d.]+) x ([\d.]+) pts", info).groups())
    assert abs(w - 297 * PT_PER_MM) < 0.5 and abs(h - 210 * PT_PER_MM) < 0.5


def _grid_lines(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """x of the vertical and y of the horizontal ECG-grid lines, in points, read from the
    page's drawing operators (each grid line is one ``x y m x y l`` segment)."""
    raw = path.read_bytes()
    segs = []
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", raw, re.S):
        try:
            data = zlib.decompress(stream)
        except zlib.error:
            continue
        segs += re.findall(rb"([-\d.]+) ([-\d.]+) m\n([-\d.]+) ([-\d.]+) l\n\nS", data)
    segs = np.array([[float(v) for v in s] for s in segs])
    vertical = segs[(np.abs(segs[:, 0] - segs[:, 2]) < 1e-3)]
    horizontal = segs[(np.abs(segs[:, 1] - segs[:, 3]) < 1e-3)]
    v_len = np.abs(vertical[:, 3] - vertical[:, 1])
    h_len = np.abs(horizontal[:, 2] - horizontal[:, 0])
    # the grid: the most common length among long vertical / horizontal lines
    v_grid = vertical[np.isclose(v_len, np.median(v_len[v_len > 20 * PT_PER_MM]), atol=0.01)]
    h_grid = horizontal[np.isclose(h_len, np.median(h_len[h_len > 200 * PT_PER_MM]),
                                   atol=0.01)]
    y_lo, y_hi = v_grid[:, [1, 3]].min() - 0.01, v_grid[:, [1, 3]].max() + 0.01
    h_grid = h_grid[(h_grid[:, 1] >= y_lo) & (h_grid[:, 1] <= y_hi)]  # not the footer rule
    return np.unique(np.round(v_grid[:, 0], 4)), np.unique(np.round(h_grid[:, 1], 4))


@pytest.mark.parametrize("kind", ["mi", "single"])
def test_grid_is_true_scale_1_mm_squares(pdfs, kind):
    xs, ys = _grid_lines(pdfs[kind, "en"][1])
    dx, dy = np.diff(xs), np.diff(ys)
    assert len(xs) == 258  # 7 mm calibration pulse + 10 s at 25 mm/s = 257 mm, 1 mm apart
    assert np.all(np.abs(dx / PT_PER_MM - 1) < 0.005)
    assert np.all(np.abs(dy / PT_PER_MM - 1) < 0.005)
    rows = {"mi": 4, "single": 1}[kind]
    assert abs((ys[-1] - ys[0]) / PT_PER_MM - 24 * rows) < 0.1  # 24-mm rows


KEYS = {
    "id": ["Laporan skrining EKG", "Hasil skrining, bukan diagnosis — perlu ditinjau oleh "
           "dokter.", "Ditinjau oleh dr.", "Tanda tangan", "Penghuni: Bambang Suryono",
           "Nomor penghuni: PW-0042", "Perawat: Dewi Lestari", "Desember", "laki-laki"],
    "en": ["ECG screening report", "Screening result, not a diagnosis — to be reviewed by a "
           "doctor.", "Reviewed by dr.", "Signature", "Resident: Bambang Suryono",
           "Resident number: PW-0042", "Nurse: Dewi Lestari", "December", "male"],
}


@pytest.mark.parametrize("lang", ["id", "en"])
def test_text_is_extractable_in_both_languages(pdfs, lang):
    other = "en" if lang == "id" else "id"
    for kind in ("mi", "single", "rejected"):
        text = _text(pdfs[kind, lang][1])
        assert FACILITY in text
        missing = [k for k in KEYS[lang] if k not in text]
        assert missing == [], (kind, missing)
        assert KEYS[other][0] not in text  # the page's words are in one language
        assert KEYS[other][1] in text      # ... but the disclaimer is given in both


def test_mi_report_shows_probability_operating_point_cam_and_urgency(pdfs):
    s, path = pdfs["mi", "id"]
    text = _text(path)
    p = f"{s['mi']['probability']:.2f}".replace(".", ",")
    assert f"Probabilitas infark miokard {p}" in text
    op = f"{s['mi']['thresholds']['MI']['operating']:.2f}".replace(".", ",")
    assert f"titik operasi model {op}" in text  # the model card's operating point
    assert "dikalibrasi pada PTB-XL lipatan 9" in text   # the probability is calibrated
    assert "relevansi untuk infark miokard (Grad-CAM)" in text
    assert "RUJUK HARI INI" in text
    for name in ("V1", "aVF", "V6", "Rentang normal", "Kualitas rekaman", "Versi"):
        assert name in text


def test_single_lead_report_says_mi_needs_12_leads(pdfs):
    en, id_ = _text(pdfs["single", "en"][1]), _text(pdfs["single", "id"][1])
    assert "MI screening needs 12 leads" in en and "membutuhkan 12 sadapan" in id_
    assert "Heart rate" in en and "bpm" in en and "MI probability" not in en


def test_rejected_report_has_reasons_next_step_and_no_measurements(pdfs):
    s, path = pdfs["rejected", "en"]
    text = _text(path)
    assert "rejected by the quality check" in text and "record again" in text
    assert s["quality"]["reasons"][0] in text
    for absent in ("Normal range", "bpm", "MI probability", "NO FINDING"):
        assert absent not in text
    assert "NOT SCREENED: RECORD AGAIN" in text


def test_out_of_range_values_are_marked():
    from detak.kiosk.report_pdf import _INTERVAL_ROWS  # noqa: F401 - the table's rows exist

    rec = load_sample("ludb-1").select(["II"])
    s = screen(rec, lang="en").to_dict()
    s["intervals"]["hr_bpm"], s["intervals"]["pr_ms"] = 38.0, 150.0
    pdf = render_report(s, rec, lang="en")
    text = " ".join(_run_stdin("pdftotext", pdf).split())
    assert "38 bpm ▼" in text and "150 ms ▼" not in text and "150 ms ▲" not in text


def _run_stdin(tool: str, data: bytes) -> str:
    return subprocess.run([_tool(tool), "-", "-"], input=data, check=True,
                          capture_output=True).stdout.decode()


def test_normal_ranges_follow_sex():
    assert normal_ranges("F")["qtc_bazett_ms"] == (340.0, 460.0)
    assert normal_ranges("M")["qtc_bazett_ms"] == (340.0, 450.0)


@pytest.mark.parametrize("kind", ["mi", "single", "rejected"])
def test_every_font_is_embedded(pdfs, kind):
    rows = _run("pdffonts", str(pdfs[kind, "id"][1])).splitlines()[2:]
    assert rows, "no fonts listed"
    for row in rows:
        assert "DejaVuSans" in row and "TrueType" in row, row
        assert row.split()[-5] == "yes", row  # the "emb" column


@pytest.mark.parametrize("kind", ["mi", "single", "rejected"])
def test_renders_to_png_with_the_urgency_colour(pdfs, kind, tmp_path):
    from PIL import Image

    pdf = pdfs[kind, "en"][1]
    _run("pdftoppm", "-r", "100", "-png", "-singlefile", str(pdf), str(tmp_path / kind))
    img = Image.open(tmp_path / f"{kind}.png").convert("RGB")
    assert abs(img.size[0] - 1169.3) < 1 and abs(img.size[1] - 826.8) < 1  # 297 × 210 mm
    # the urgency banner (x 196-277 mm, y 6-30 mm): red refer today, amber routine, grey
    # "not screened"
    r, g, b = img.getpixel((int(272 / 25.4 * 100), int(28 / 25.4 * 100)))
    level = pdfs[kind, "en"][0]["urgency"]["level"]
    expected = {"refer today": (179, 0, 27), "routine review": (242, 169, 0)}
    want = (85, 85, 85) if kind == "rejected" else expected[level]
    assert max(abs(r - want[0]), abs(g - want[1]), abs(b - want[2])) < 8, (r, g, b)


# ------------------------------------------------------------------------------ CLI


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from detak.kiosk.screen_cli import run_screen_command
    from detak.kiosk.store import Store

    folder = tmp_path_factory.mktemp("store")
    with Store.open(folder) as st:
        st.add_resident(RESIDENT["name"], RESIDENT["resident_number"],
                        birth_date=RESIDENT["birth_date"], sex=RESIDENT["sex"])
    buf = io.StringIO()
    run_screen_command(["sample://ptbxl-00286"], folder, lang="en", json_out=True, out=buf,
                       resident="PW-0042")
    return folder, json.loads(buf.getvalue())


def test_screen_saves_each_report_with_an_absolute_path(store):
    _folder, view = store
    path = Path(view["report_pdf"])
    assert path.is_absolute() and path.read_bytes()[:5] == b"%PDF-"
    text = _text(path)
    assert "Resident: Bambang Suryono" in text and "Resident number: PW-0042" in text
    assert "years" in text and "male" in text


def _detak(*args: str) -> subprocess.CompletedProcess:
    import sys

    return subprocess.run([sys.executable, "-m", "detak.cli", *args], capture_output=True,
                          text=True)


def test_detak_report_rerenders_in_the_other_language(store, tmp_path):
    folder, view = store
    out = tmp_path / "r.pdf"
    r = _detak("report", view["id"], "--store", str(folder), "--lang", "id", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(out.resolve())
    text = _text(out)
    assert "Laporan skrining EKG" in text and "Penghuni: Bambang Suryono" in text


def test_detak_report_unknown_id_is_one_line_exit_1(store, tmp_path):
    folder, _view = store
    r = _detak("report", "nope", "--store", str(folder), "--out", str(tmp_path / "x.pdf"))
    assert r.returncode == 1 and r.stderr.strip().count("\n") == 0
    assert r.stderr.startswith("detak report: error: no screening 'nope'")
    assert not (tmp_path / "x.pdf").exists()


def test_detak_report_missing_store_is_exit_1_and_not_created(tmp_path):
    missing = tmp_path / "no-store"
    r = _detak("report", "x", "--store", str(missing), "--out", str(tmp_path / "x.pdf"))
    assert r.returncode == 1 and "no store at" in r.stderr
    assert r.stderr.strip().count("\n") == 0 and not missing.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    r = _detak("report", "x", "--store", str(empty), "--out", str(tmp_path / "x.pdf"))
    assert r.returncode == 1 and "no store at" in r.stderr and not any(empty.iterdir())


def test_detak_report_usage_errors_exit_2(store, tmp_path):
    folder, view = store
    r = _detak("report", view["id"], "--store", str(folder), "--lang", "fr", "--out",
               str(tmp_path / "x.pdf"))
    assert r.returncode == 2
    r = _detak("report", view["id"], "--store", str(folder))
    assert r.returncode == 2 and "--out" in r.stderr


def test_long_names_shrink_and_stay_left_of_the_urgency_banner(tmp_path):
    rec = load_sample("ludb-1").select(["II"])
    s = screen(rec, lang="en").to_dict()
    name = "Raden Ayu Siti Hartinah Kusumawardhani Soerjosoemarno Prawiranegara"
    pdf = tmp_path / "long.pdf"
    pdf.write_bytes(render_report(s, rec, lang="id", resident={"name": name, "sex": "F",
                                                                "resident_number": "7"},
                                  facility="Panti Werdha " + "Sejahtera " * 12))
    # bounding boxes of the words (pdftotext -bbox): none of the header's words reach into
    # the banner, which starts 196 mm from the left edge
    xml = _run("pdftotext", "-bbox", str(pdf), "-")
    words = re.findall(r'xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="[\d.]+">([^<]*)<',
                       xml)
    header = [(float(x1), w) for x0, y0, x1, w in words if float(y0) < 30 * PT_PER_MM
              and float(x0) < 196 * PT_PER_MM]  # the banner's own words start at 198.5 mm
    assert header and max(x1 for x1, _w in header) < 195 * PT_PER_MM
    assert "Kusumawardhani" in " ".join(w for _x, w in header)


def test_screen_facility_and_nurse_are_stored_and_rerendered(tmp_path):
    """`detak screen --facility --nurse` stores both with the screening: its PDF and a later
    `detak report` show them; `detak report --facility` overrides for that render only."""
    r = _detak("screen", "sample://ludb-1", "--store", str(tmp_path / "s"), "--json",
               "--lang", "en", "--facility", "Panti Werdha Kasih Ibu", "--nurse", "Ns. Dewi")
    assert r.returncode == 0, r.stderr
    view = json.loads(r.stdout)
    assert (view["facility"], view["nurse"]) == ("Panti Werdha Kasih Ibu", "Ns. Dewi")
    for path in (view["report_pdf"], tmp_path / "again.pdf"):
        if path != view["report_pdf"]:
            r = _detak("report", view["id"], "--store", str(tmp_path / "s"), "--out", str(path))
            assert r.returncode == 0, r.stderr
        text = _text(Path(path))
        assert "Panti Werdha Kasih Ibu" in text and "Nurse: Ns. Dewi" in text
    r = _detak("report", view["id"], "--store", str(tmp_path / "s"), "--out",
               str(tmp_path / "other.pdf"), "--facility", "Klinik Lain", "--lang", "id")
    assert r.returncode == 0, r.stderr
    text = _text(tmp_path / "other.pdf")
    assert "Klinik Lain" in text and "Kasih Ibu" not in text and "Ns. Dewi" in text


@pytest.mark.parametrize("lang", ["en", "id"])
def test_the_banner_shows_each_reason_whole_inside_its_box(tmp_path, lang):
    """An AF screening's banner reason is long ("… raises the risk of stroke, which treatment
    lowers (the rate)"): it is never cut with "…", and no word of it leaves the banner's
    box (196–277 mm across, 6–32.5 mm down)."""
    from detak.kiosk.urgency import assess_urgency
    from tests.kiosk.test_rhythm_pages import AF_RULES

    rec = load_sample("ptbxl-00286")
    s = screen(rec, lang=lang).to_dict()
    s["rhythm"]["findings"] = [AF_RULES]
    mi = s["mi"]
    s["urgency"] = assess_urgency(quality="ok", intervals=s["intervals"], rhythm=[AF_RULES],
                                  mi=mi, lang=lang).to_dict()
    reasons = s["urgency"]["reasons"]
    assert len(reasons) >= 2 and any("stroke" in r for r in reasons)
    pdf = tmp_path / "af.pdf"
    pdf.write_bytes(render_report(s, rec, lang=lang))
    xml = _run("pdftotext", "-bbox", str(pdf), "-")
    words = [(float(x0), float(y0), float(x1), float(y1), w) for x0, y0, x1, y1, w in
             re.findall(r'xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" '
                        r'yMax="([\d.]+)">([^<]*)<', xml)]
    banner = [w for w in words if w[0] >= 196 * PT_PER_MM and w[1] < 32 * PT_PER_MM]
    text = " ".join(w[4] for w in banner)
    assert "…" not in text, text
    for reason in reasons:                              # every reason, whole
        assert " ".join(reason.split()) in text, (reason, text)
    assert max(w[3] for w in banner) <= 32.5 * PT_PER_MM  # inside the box
    assert max(w[2] for w in banner) <= 277 * PT_PER_MM


def test_why_an_interval_is_missing_is_said_in_the_report_language(tmp_path):
    """The chain's English reason for a null PR ("no P waves found (AF?) …") is translated in
    an Indonesian report, kept word for word in an English one."""
    rec = load_sample("ptbxl-00286")
    s = screen(rec, lang="id").to_dict()
    why = "no P waves found (AF?): no P wave at a fixed PR before each QRS"
    s["intervals"]["pr_ms"] = None
    s["intervals"]["reasons"] = {**(s["intervals"].get("reasons") or {}), "pr_ms": why}
    texts = {}
    for lang in ("id", "en"):
        pdf = tmp_path / f"{lang}.pdf"
        pdf.write_bytes(render_report(s, rec, lang=lang))
        texts[lang] = " ".join(_run("pdftotext", str(pdf), "-").split())
    assert "no P waves found" not in texts["id"]
    assert "PR: tidak ada gelombang P pada PR tetap sebelum setiap QRS" in texts["id"]
    assert f"PR: {why}" in texts["en"]
