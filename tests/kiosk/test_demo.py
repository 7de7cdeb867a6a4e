"""``detak demo``: the emulator plays bundled records through the one screening pipeline into
a fresh store; the folder holds the PDF reports and index.json and is the last line printed.
The demo runs in a subprocess where importing torch (or any host package) fails."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from detak.data.samples import sample_index
from detak.kiosk.demo import DEMO_RECORDINGS, DemoError, DemoRecording, run_demo
from detak.kiosk.store import Store
from tests.export.test_kiosk_without_torch import _GUARD, HOST_ONLY

_SCRIPT = _GUARD + """
from detak.cli import main
code = main(["demo", "--out", {out!r}])
imported = sorted({{k.split(".")[0] for k in sys.modules}} & HOST_ONLY)
with open({probe!r}, "w") as f:
    json.dump(imported, f)
sys.exit(code)
"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo run once, as ``detak demo --out DIR`` on a kiosk without host packages."""
    tmp = tmp_path_factory.mktemp("demo")
    out, probe = tmp / "out", tmp / "imported.json"
    code = _SCRIPT.format(host=HOST_ONLY, out=str(out), probe=str(probe))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=600, cwd=tmp, env={**os.environ})
    assert proc.returncode == 0, proc.stderr[-3000:]
    index = json.loads((out / "index.json").read_text(encoding="utf-8"))
    rows = {r["sample"]: r for r in index["screenings"]}
    return {"out": out, "proc": proc, "index": index, "rows": rows,
            "imported": json.loads(probe.read_text())}


def test_last_line_is_the_folder_and_no_host_package_was_imported(demo):
    last = demo["proc"].stdout.strip().splitlines()[-1]
    assert Path(last) == demo["out"].resolve()
    assert demo["imported"] == []


def test_index_has_one_entry_per_demo_recording_with_its_fields(demo):
    rows = demo["index"]["screenings"]
    assert [r["sample"] for r in rows] == [d.sample for d in DEMO_RECORDINGS]
    ids = [r["id"] for r in rows]
    assert len(set(ids)) == len(ids) and all(ids)
    for r in rows:
        assert r["source"].startswith("emu://file/") and f"{r['sample']}.hea?" in r["source"]
        assert r["description"] == sample_index()[r["sample"]]["description"]
        assert r["quality"]["verdict"] in {"ok", "warn", "reject"}
        assert r["urgency"]["level"] in {"refer today", "routine review", "no finding"}
        assert r["urgency"]["reasons"]


def test_index_matches_what_the_store_holds(demo):
    with Store.open(demo["out"] / demo["index"]["store"], create=False) as store:
        assert store.screening_count() == len(DEMO_RECORDINGS)
        for r in demo["index"]["screenings"]:
            s = store.get_screening(r["id"])
            assert s["source"] == r["source"]
            assert s["quality"]["verdict"] == r["quality"]["verdict"]
            assert s["urgency"]["level"] == r["urgency"]["level"]
            assert (s.get("mi") or {}).get("probability") == r["mi_probability"]


def test_the_electrode_off_recording_is_rejected_with_plain_reasons(demo):
    bad = demo["rows"]["ptbxl-00102"]
    assert bad["quality"]["verdict"] == "reject"
    assert any("lectrode" in why and "record again" in why  # what is wrong, what to do
               for why in bad["quality"]["reasons"]), bad["quality"]["reasons"]
    assert bad["mi_probability"] is None and bad["mi_reason"]
    assert "rejected: " in demo["proc"].stdout
    # the summary never calls a rejected recording "no finding": it was not screened
    line = next(ln for ln in demo["proc"].stdout.splitlines()
                if ln.startswith(bad["sample"]) and "quality reject" in ln)
    assert "not screened" in line and "no finding" not in line


def test_screenings_show_normal_mi_and_conduction_findings(demo):
    rows = demo["rows"]
    normal, mi, lbbb = rows["ptbxl-00215"], rows["ptbxl-00257"], rows["ptbxl-00286"]
    for r in (normal, mi, lbbb):
        assert r["quality"]["verdict"] != "reject", r["quality"]["reasons"]
        assert 0.0 <= r["mi_probability"] <= 1.0
    assert mi["mi_probability"] > normal["mi_probability"] + 0.3
    assert mi["urgency"]["level"] == "refer today"
    assert normal["urgency"]["level"] != "refer today"
    assert lbbb["urgency"]["level"] != "no finding"


def test_every_screening_has_its_pdf_report_beside_the_index(demo):
    for r in demo["index"]["screenings"]:
        assert r["report"], f"{r['sample']}: no report"
        pdf = demo["out"] / r["report"]
        assert pdf.parent == demo["out"]
        assert pdf.read_bytes()[:5] == b"%PDF-"


def test_store_check_on_the_demo_store_says_ok(demo):
    proc = subprocess.run([sys.executable, "-m", "detak.cli", "store", "check", "--store",
                           str(demo["out"] / "store")], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == f"ok: {len(DEMO_RECORDINGS)} screenings"


def test_the_demo_refuses_a_folder_that_already_holds_a_store(tmp_path):
    (tmp_path / "store").mkdir()
    with pytest.raises(FileExistsError, match="fresh store"):
        run_demo(tmp_path, DEMO_RECORDINGS[:1], echo=False)
    assert not (tmp_path / "index.json").exists()


def test_a_recording_the_pipeline_cannot_screen_stops_the_demo_with_its_reason(tmp_path):
    bad = DemoRecording("ptbxl-00215", "a misspelt emulator parameter", faults="sped=2")
    with pytest.raises(DemoError, match="unknown parameter 'sped'"):
        run_demo(tmp_path, [bad], echo=False)
