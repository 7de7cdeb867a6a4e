"""The `detak rhythm SOURCE... [--lead NAME] [--json]` contract (issue 17 item 5)."""

from __future__ import annotations

import json
import subprocess
import sys

from detak.data.io import write_recording
from detak.data.ludb import load_ludb

FINDING_KEYS = {"code", "source", "probability", "urgency", "reasons"}


def _detak(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "detak.cli", *args], capture_output=True,
                          text=True, timeout=600)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def _check_contract(obj):
    assert {"source", "rhythm", "features", "reasons"} <= set(obj)
    assert obj["rhythm"]["findings"], obj
    for f in obj["rhythm"]["findings"]:
        assert set(f) >= FINDING_KEYS
        assert f["source"] in ("rules", "classifier")
        assert (f["probability"] is None) == (f["source"] == "rules")
        assert all(r["en"] and r["id"] for r in f["reasons"])
    for k, v in obj["features"].items():
        assert v is not None or k in obj["reasons"], k


def test_one_source_prints_one_object_with_the_contract_keys():
    obj = json.loads(_detak("rhythm", "ludb://1", "--json").stdout)
    assert obj["source"] == "ludb://1" and obj["rhythm"]["lead"] == "all"
    _check_contract(obj)
    # LUDB 1: sinus bradycardia (its rhythm column), about 46 bpm
    assert obj["rhythm"]["findings"][0]["code"] == "SBRAD"
    assert "46 bpm" in obj["rhythm"]["findings"][0]["reasons"][0]["en"]


def test_several_sources_print_json_lines_in_order_and_lead_selects_one_lead():
    args = ["ludb://1", "sample://ptbxl-00257"]
    proc = _detak("rhythm", *args, "--lead", "II", "--json")
    objs = [json.loads(ln) for ln in proc.stdout.strip().splitlines()]
    assert [o["source"] for o in objs] == args
    for o in objs:
        _check_contract(o)
        assert o["rhythm"]["lead"] == "II"


def test_bad_input_is_named_and_the_other_sources_still_run(tmp_path):
    missing = str(tmp_path / "nope.hea")
    proc = _detak("rhythm", "ludb://1", missing, "--lead", "V7", check=False)
    assert proc.returncode == 1
    objs = [json.loads(ln) for ln in proc.stdout.strip().splitlines()]
    assert [o["source"] for o in objs] == ["ludb://1", missing]
    assert "available leads: I, II" in objs[0]["error"]
    assert "V7" in objs[0]["error"]
    assert "nope.hea" in objs[1]["error"]
    assert proc.stderr.count("detak rhythm: error:") == 2


def test_a_three_beat_record_gives_null_features_with_a_reason_and_no_false_finding(tmp_path):
    rec = load_ludb(1).recording
    short = rec.replace(signal=rec.signal[:, : int(3.2 * rec.fs)], name="short")
    path = write_recording(short, tmp_path / "short.hea")
    proc = _detak("rhythm", str(path), check=False)
    obj = json.loads(proc.stdout)
    for k in ("nrmssd", "petrenas_irregularity", "p_present_fraction"):
        assert obj["features"][k] is None and obj["reasons"][k], k
    codes = [(f["code"], f["rule"]) for f in obj["rhythm"]["findings"]]
    assert codes == [("IRREG_UNCLASSIFIED", "cannot_tell")]
    assert "record again" in obj["rhythm"]["findings"][0]["reasons"][0]["en"]


def test_help_documents_the_contract():
    out = _detak("rhythm", "--help").stdout
    for word in ("--lead", "IRREG_UNCLASSIFIED", "probability", "urgency", "JSON Lines"):
        assert word in out
