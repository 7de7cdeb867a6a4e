"""``detak screen``: the JSON contract of issue 14, the exit rule, device URLs, the store."""

from __future__ import annotations

import json
import stat

import pytest

from detak.cli import main
from detak.data.samples import load_sample
from detak.data.wfdb_io import write_wfdb

CONTRACT = ("id", "source", "quality", "intervals", "rhythm", "nb", "mi", "urgency",
            "report_pdf")
INTERVALS = ("rr_ms", "pr_ms", "qrs_ms", "qt_ms", "qtc_bazett_ms", "qtc_fridericia_ms",
             "st_ms", "rs_ratio", "hr_bpm")


@pytest.fixture(scope="module")
def short_record(tmp_path_factory):
    rec = load_sample("ptbxl-00286")
    d = tmp_path_factory.mktemp("rec")
    return str(write_wfdb(rec.replace(signal=rec.signal[:, :50], name="short"), d / "short"))


def _run(argv, capsys):
    code = main(argv)
    cap = capsys.readouterr()
    lines = [json.loads(ln) for ln in cap.out.splitlines() if ln.strip()]
    return code, lines, cap.err


def test_contract_on_three_sources(tmp_path, capsys):
    store = tmp_path / "S"
    code, out, err = _run(["screen", "ptbxl://1", "ludb://1", "sample://ptbxl-00286",
                           "--store", str(store), "--json", "--lang", "en"], capsys)
    assert code == 0, err
    assert [o["source"] for o in out] == ["ptbxl://1", "ludb://1", "sample://ptbxl-00286"]
    for o in out:
        assert set(CONTRACT) <= set(o)
        assert set(o["quality"]) >= {"verdict", "reasons"}
        assert set(INTERVALS) <= set(o["intervals"])
        assert set(o["rhythm"]) >= {"s3_label", "clinical_label", "reasons"}
        findings = o["rhythm"]["findings"]                  # issue 17: as `detak rhythm`
        assert findings and all(set(f) >= {"code", "source", "probability", "urgency",
                                           "reasons"} for f in findings)
        assert all(f["source"] in ("rules", "classifier") for f in findings)
        assert set(o["nb"]) >= {"label", "probability"}
        assert set(o["urgency"]) >= {"level", "reasons"}
        assert o["urgency"]["level"] in ("refer today", "routine review", "no finding")
        assert set(o["mi"]) >= {"probability", "model", "bundle"}    # all three are 12-lead
        assert 0 <= o["mi"]["probability"] <= 1
    assert len({o["id"] for o in out}) == 3
    assert stat.S_IMODE(store.stat().st_mode) == 0o700


def test_rejected_source_has_reasons_no_measurements_and_exit_1(tmp_path, capsys,
                                                                 short_record):
    code, out, err = _run(["screen", short_record, "sample://ptbxl-00286", "--store",
                           str(tmp_path / "S"), "--json"], capsys)
    assert code == 1
    rejected, good = out
    assert rejected["quality"]["verdict"] == "reject" and rejected["quality"]["reasons"]
    assert all(rejected["intervals"][k] is None for k in INTERVALS)
    assert rejected["rhythm"] is None and rejected["nb"] is None and rejected["mi"] is None
    assert rejected["mi_reason"] and rejected["id"]
    assert good["mi"]["probability"] is not None
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("detak screen: rejected: ")


@pytest.mark.parametrize("lang", ["id", "en"])
def test_rejection_stderr_line_is_technical_english_whatever_the_language(
        tmp_path, capsys, short_record, lang):
    # the kiosk check (tools/kiosk_check.py) and log readers match the stderr line; the
    # nurse's language is for the JSON, the report and the app (0.5 s: "0,5 detik" in id)
    code, (o,), err = _run(["screen", short_record, "--store", str(tmp_path / "S"), "--json",
                            "--lang", lang], capsys)
    assert code == 1
    line = err.strip().splitlines()[-1]
    assert "short.hea: Recording too short: 0.5 s" in line, line
    assert ("Rekaman" in " ".join(o["quality"]["reasons"])) == (lang == "id")


def test_single_lead_source_says_mi_needs_12_leads(tmp_path, capsys):
    rec = load_sample("ludb-1").select(["II"])
    path = write_wfdb(rec.replace(name="one"), tmp_path / "one")
    code, (o,), err = _run(["screen", str(path), "--store", str(tmp_path / "S"), "--json",
                            "--lang", "id"], capsys)
    assert code == 0, err
    assert o["mi"] is None and "12 sadapan" in o["mi_reason"]
    assert o["intervals"]["hr_bpm"] is not None


def test_unreadable_source_is_named_and_the_others_still_run(tmp_path, capsys):
    code, out, err = _run(["screen", "nosuch://1", str(tmp_path / "missing.hea"),
                           "sample://ptbxl-00286", "--store", str(tmp_path / "S"), "--json"],
                          capsys)
    assert code == 1
    assert [o.get("error") is not None for o in out] == [True, True, False]
    assert out[2]["mi"]["probability"] is not None
    assert len(err.strip().splitlines()) == 2 and "nosuch://1" in err


@pytest.mark.parametrize("argv", [
    ["screen", "sample://ptbxl-00286", "--store", "S", "--lang", "fr"],
    ["screen", "sample://ptbxl-00286"],
    ["screen", "sample://ptbxl-00286", "--store", "S", "--model", "no-such-model"]])
def test_usage_errors_exit_2(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    try:
        code = main(argv)
    except SystemExit as stop:        # argparse
        code = stop.code
    assert code == 2
    assert not (tmp_path / "S" / "screenings").exists() or not any(
        (tmp_path / "S" / "screenings").iterdir())


def test_each_screening_is_in_the_store_with_its_recording(tmp_path, capsys):
    from detak.kiosk.screen_cli import open_store

    store_dir = str(tmp_path / "S")
    assert main(["store", "add-resident", "--store", store_dir, "--number", "R-0042",
                 "--name", "Nyoman Contoh", "--sex", "F"]) == 0
    rid = int(capsys.readouterr().out.strip())
    code, (o,), _ = _run(["screen", "sample://ptbxl-00286", "--store", store_dir,
                          "--json", "--resident", "R-0042"], capsys)
    assert code == 0
    with open_store(store_dir) as store:
        stored = store.get_screening(o["id"])
        assert stored["resident_id"] == "R-0042" and stored["mi"]["cam"]["mi"]
        assert [r["id"] for r in store.list_screenings(resident_id=rid)] == [o["id"]]
        assert store.load_recording(o["id"]).n_leads == 12
        assert store.outbox_count() == 1                 # queued for sync
    assert o["mi"]["cam"] is True              # the arrays stay in the store
    assert main(["store", "check", "--store", store_dir]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "ok: 1 screenings"


def test_an_unknown_resident_number_is_a_usage_error(tmp_path, capsys):
    code, out, err = _run(["screen", "sample://ptbxl-00286", "--store", str(tmp_path / "S"),
                           "--json", "--resident", "R-404"], capsys)
    assert code == 2 and out == []
    assert err.strip().splitlines()[-1].startswith("detak screen: error: no resident with "
                                                   "number 'R-404'")
    assert "store add-resident" in err and "Traceback" not in err


def test_plain_output_is_one_line_per_screening(tmp_path, capsys):
    code, _, _ = 0, None, None
    code = main(["screen", "sample://ptbxl-00286", "--store", str(tmp_path / "S"),
                 "--lang", "id"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0 and len(out) == 1 and "tinjauan rutin" in out[0]


@pytest.mark.hil
def test_device_url_records_10_s_first(tmp_path, capsys):
    code, (o,), err = _run(["screen", "emu://ptbxl/1?speed=20", "--store",
                            str(tmp_path / "S"), "--json", "--lang", "en"], capsys)
    assert code == 0, err
    assert o["source"] == "emu://ptbxl/1?speed=20"
    assert o["recording"]["duration_s"] == pytest.approx(10.0)
    assert o["device"]["url"] == "emu://ptbxl/1?speed=20" and o["device"]["model"]
    assert o["calibration"]
    assert o["mi"]["probability"] is not None


def test_a_defect_in_one_screening_does_not_stop_the_others(tmp_path, capsys, monkeypatch):
    import detak.kiosk.screening as screening

    real = screening.screen

    def flaky(rec, **kw):
        if kw.get("source") == "ludb://1":
            raise RuntimeError("boom")
        return real(rec, **kw)

    monkeypatch.setattr(screening, "screen", flaky)
    code, out, err = _run(["screen", "ludb://1", "sample://ptbxl-00286", "--store",
                           str(tmp_path / "S"), "--json"], capsys)
    assert code == 1
    assert "RuntimeError: boom" in out[0]["error"] and out[1]["id"]
    assert err.strip().splitlines() == [
        "detak screen: error: ludb:1: screening failed: RuntimeError: boom"]


def test_human_line_names_the_rules_rhythm_findings(tmp_path, capsys):
    from detak.kiosk.screen_cli import _summary_line

    view = {"id": "a", "source": "s", "quality": {"verdict": "ok"},
            "urgency": {"level": "routine review"},
            "rhythm": {"findings": [{"code": "AFIB", "source": "rules"},
                                    {"code": "PVC", "source": "rules"},
                                    {"code": "AFLT", "source": "classifier"}]}}
    assert _summary_line(view).endswith("routine review  rhythm AFIB, PVC")
    assert _summary_line({**view, "rhythm": None}).endswith("routine review")
    code = main(["screen", "ludb://1", "--store", str(tmp_path / "S")])
    assert code == 0 and "  rhythm SBRAD" in capsys.readouterr().out
