"""The `detak intervals SOURCE... --json` contract."""

import json
import subprocess
import sys

import pytest

from detak.data.samples import sample_path

KEYS = {"rr_ms", "pr_ms", "qrs_ms", "qt_ms", "qtc_bazett_ms", "qtc_fridericia_ms", "st_ms",
        "rs_ratio", "hr_bpm"}


def _copy_sample(name, dest_dir, new_name):
    """Copy a bundled WFDB sample under another record name (header rewritten to match)."""
    for suffix in (".hea", ".dat"):
        data = sample_path(name).with_suffix(suffix).read_bytes()
        if suffix == ".hea":
            data = data.replace(f"{name}.dat".encode(), f"{new_name}.dat".encode())
            data = data.replace(name.encode(), new_name.encode(), 1)
        (dest_dir / f"{new_name}{suffix}").write_bytes(data)


def _detak(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "detak.cli", *args], capture_output=True,
                          text=True, timeout=600)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_one_source_prints_one_json_object_with_the_contract_keys():
    proc = _detak("intervals", "ludb://1", "--json")
    obj = json.loads(proc.stdout)  # one object, possibly pretty-printed
    assert obj["source"] == "ludb://1"
    assert set(obj) >= KEYS
    assert {"per_lead", "quality", "reasons"} <= set(obj)
    assert obj["quality"]["verdict"] in {"ok", "warn", "reject"}
    assert set(obj["per_lead"]) <= {"I", "II", "III", "aVR", "aVL", "aVF",
                                    "V1", "V2", "V3", "V4", "V5", "V6"}
    assert set(obj["per_lead"]["II"]) >= KEYS
    for key in KEYS:
        assert obj[key] is not None or key in obj["reasons"]


def test_several_sources_print_json_lines_in_order_with_the_source_as_given(tmp_path):
    _copy_sample("ludb-2", tmp_path, "r")
    args = ["sample://ptbxl-00257", str(tmp_path / "r.hea"), str(tmp_path / "r")]
    proc = _detak("intervals", *args, "--json")
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 3
    objs = [json.loads(ln) for ln in lines]
    assert [o["source"] for o in objs] == args
    assert objs[1]["hr_bpm"] == pytest.approx(objs[2]["hr_bpm"])


def test_a_bad_source_is_reported_and_the_others_still_measured(tmp_path):
    missing = str(tmp_path / "nope.hea")
    proc = _detak("intervals", "ludb://2", missing, "ludb://1", "--json", check=False)
    assert proc.returncode == 1
    objs = [json.loads(ln) for ln in proc.stdout.strip().splitlines()]
    assert [o["source"] for o in objs] == ["ludb://2", missing, "ludb://1"]
    assert "nope.hea" in objs[1]["error"]
    assert objs[0]["hr_bpm"] is not None and objs[2]["hr_bpm"] is not None
    assert "nope.hea" in proc.stderr


def test_a_folder_is_measured_in_parallel_and_matches_the_serial_run(tmp_path):
    for i, name in enumerate(["ludb-1", "ludb-2", "ludb-8", "ptbxl-00215"]):
        _copy_sample(name, tmp_path, f"r{i}")
    par = [json.loads(ln) for ln in
           _detak("intervals", str(tmp_path), "--json", "-j", "2").stdout.splitlines()]
    ser = [json.loads(ln) for ln in
           _detak("intervals", str(tmp_path), "--json", "-j", "1").stdout.splitlines()]
    assert len(par) == 4
    assert [o["record"] for o in par] == [str(tmp_path / f"r{i}") for i in range(4)]
    assert [o["hr_bpm"] for o in par] == [o["hr_bpm"] for o in ser]
