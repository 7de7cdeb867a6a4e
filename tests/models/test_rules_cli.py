"""The `detak rules INPUT --ruleset ... --json` contract (`run_rules_command`)."""

import json

import pytest

from detak.models.rules import load_ruleset
from detak.models.rules_cli import (
    IntervalTableError,
    is_interval_table,
    label_interval_table,
    run_rules_command,
)

HEADER = "rr_ms,pr_ms,qrs_ms,qt_ms,qtc_bazett_ms,st_ms,rs_ratio,hr_bpm"


def _run(capsys, inputs, ruleset="s3", **kw):
    status = run_rules_command([str(i) for i in inputs], ruleset, **kw)
    captured = capsys.readouterr()
    return status, json.loads(captured.out) if captured.out else None, captured.err


def test_csv_rows_print_one_json_object_each(tmp_path, capsys):
    p = tmp_path / "iv.csv"
    p.write_text(f"# measured by hand\n{HEADER},sex\n"
                 "800,150,90,400,447,100,0.4,75,F\n"      # everything in range
                 "720,236,90,400,470,100,0.4,83,M\n"      # PR > 200
                 "800,,90,400,447,,0.4,75,\n")            # PR and ST not measured
    status, objs, err = _run(capsys, [p])
    assert status == 0 and err == ""
    assert [o["label"] for o in objs] == ["Normal", "Sangat Berpotensi Aritmia", "Normal"]
    assert [(o["source"], o["row"], o["line"]) for o in objs] == [
        (str(p), 1, 3), (str(p), 2, 4), (str(p), 3, 5)]
    assert objs[1]["reasons"][0]["parameter"] == "pr_ms"
    assert objs[1]["reasons"][0]["value"] == 236
    assert "PR 236 ms" in objs[1]["reasons"][0]["message"]["en"]
    assert objs[2]["missing"] == ["pr_ms", "st_ms"]
    assert objs[0]["missing"] == []
    # clinical: sex column picks the QTc limit (470 ≥ 450 for M; 447 < 460 for F)
    status, objs, _ = _run(capsys, [p], "clinical")
    assert [o["sex"] for o in objs] == ["F", "M", None]
    assert [sorted(r["finding"] for r in o["reasons"]) for o in objs] == [
        [], ["first_degree_av_block", "prolonged_qtc"], []]


def test_s3_dot_thousands_file_needs_its_number_format(tmp_path, capsys):
    p = tmp_path / "s3_export.csv"
    p.write_text("record;rr_ms;pr_ms;qrs_ms;qt_ms;st_ms;rs_ratio;hr_bpm\n"
                 "P01;1.032;180;90;400;100;0;58\n"
                 "P02;876;204;88;410;110;1;68\n")
    status, objs, err = _run(capsys, [p])      # "1.032": 1.032 ms or 1032 ms?
    assert status == 1 and objs[0]["label"] is None
    assert "rr_ms" in objs[0]["error"] and "dot-thousands" in objs[0]["error"]
    status, objs, _ = _run(capsys, [p], number_format="dot-thousands")
    assert status == 0
    assert [o["record"] for o in objs] == ["P01", "P02"]
    rr = [next(r for r in o["reasons"] + o["within_limits"] if r["parameter"] == "rr_ms")
          for o in objs]
    assert [r["value"] for r in rr] == [1032.0, 876.0]
    # P01: RR 1032 (> 1000) and BPM 58 → Abnormal; P02: PR 204 → Sangat, R/S 1 → Sangat
    assert [o["label"] for o in objs] == ["Abnormal", "Sangat Berpotensi Aritmia"]


@pytest.mark.parametrize(("text", "row", "column", "words"), [
    (f"{HEADER}\n800,150,90,400,447,100,0.4,75\n800,1S0,90,400,447,100,0.4,75\n", 2, "pr_ms",
     "invalid number '1S0'"),
    (f"{HEADER}\n800,150,90,400,447,100,0.4,-75\n", 1, "hr_bpm", "negative"),
    (f"{HEADER},sex\n800,150,90,400,447,100,0.4,75,X\n", 1, "sex", "sex must be"),
])
def test_bad_csv_values_name_row_and_column(tmp_path, capsys, text, row, column, words):
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(IntervalTableError) as exc:
        label_interval_table(p, load_ruleset("s3"), "point")
    assert (exc.value.row, exc.value.column) == (row, column)
    assert f"row {row}" in str(exc.value) and repr(column) in str(exc.value)
    assert words in str(exc.value)
    status, objs, err = _run(capsys, [p], number_format="point")
    assert status == 1 and len(objs) == 1 and objs[0]["label"] is None
    assert f"row {row}" in objs[0]["error"] and words in objs[0]["error"]
    assert f"row {row}" in err


def test_missing_column_is_an_error_not_a_missing_value(tmp_path, capsys):
    p = tmp_path / "no_st.csv"
    p.write_text("rr_ms,pr_ms,qrs_ms,qt_ms,rs_ratio,hr_bpm\n800,150,90,400,0.4,75\n")
    status, objs, _ = _run(capsys, [p])
    assert status == 1
    assert "missing column(s) 'st_ms'" in objs[0]["error"] and "'s3'" in objs[0]["error"]
    # the clinical set does not read st_ms/rr_ms/rs_ratio but needs qtc_bazett_ms
    status, objs, _ = _run(capsys, [p], "clinical")
    assert "'qtc_bazett_ms'" in objs[0]["error"]


def test_a_row_without_any_value_is_not_labelled(tmp_path, capsys):
    p = tmp_path / "iv.csv"
    p.write_text(f"{HEADER}\n,,,,,,,\n800,150,90,400,447,100,0.4,75\n")
    status, objs, err = _run(capsys, [p])
    assert status == 1
    assert objs[0]["label"] is None and "no measured value" in objs[0]["error"]
    assert objs[1]["label"] == "Normal"
    assert "row 1" in err


def test_real_source_first_degree_av_block(capsys):
    """PTB-XL 102 (cardiologists: 1AVB, man, 64 years): PR ≈ 250 ms."""
    status, objs, err = _run(capsys, ["sample://ptbxl-00102"])
    assert status == 0, err
    (obj,) = objs
    assert obj["source"] == "sample://ptbxl-00102" and obj["record"] == "sample:ptbxl-00102"
    assert obj["label"] == "Sangat Berpotensi Aritmia"
    pr = next(r for r in obj["reasons"] if r["parameter"] == "pr_ms")
    assert pr["value"] > 200 and pr["category"] == "Sangat Berpotensi Aritmia"
    assert obj["sex"] == "M" and obj["quality"] in {"ok", "warn"}
    status, objs, _ = _run(capsys, ["sample://ptbxl-00102"], "clinical")
    assert status == 0
    assert "first_degree_av_block" in [r["finding"] for r in objs[0]["reasons"]]


def test_bad_source_and_bad_ruleset(tmp_path, capsys):
    status, objs, err = _run(capsys, ["nonsense://1"])
    assert status == 1 and objs[0]["label"] is None and "unknown source" in objs[0]["error"]
    status, objs, err = _run(capsys, [str(tmp_path / "x.csv")], ruleset="nope")
    assert status == 2 and objs is None and "unknown rule set 'nope'" in err


def test_ecg_csv_is_a_source_not_an_interval_table(tmp_path):
    p = tmp_path / "ecg.csv"
    p.write_text("# fs=250\ntime_s,II\n0,0.1\n0.004,0.2\n")
    assert not is_interval_table(p)
    q = tmp_path / "iv.tsv"
    q.write_text("PR_MS\tHR_BPM\n150\t70\n")
    assert is_interval_table(q)


def test_rejected_recording_gets_no_label_and_says_why(tmp_path, capsys):
    """A flat ECG (electrode off) is a SOURCE: no value is measured, so no label."""
    p = tmp_path / "flat_ecg.csv"
    p.write_text("# fs=250\ntime_s,II\n" + "".join(f"{i / 250:.3f},0\n" for i in range(2500)))
    status, objs, err = _run(capsys, [p])
    assert status == 1
    (obj,) = objs
    assert obj["label"] is None and obj["quality"] == "reject"
    assert obj["missing"] == load_ruleset("s3").keys
    assert "flat" in obj["missing_reasons"]["pr_ms"]
    assert "no measured value" in err
