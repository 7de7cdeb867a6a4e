"""benchmarks/tabular_report.py: bad options are named, provenance says which commit and which
uncommitted code, the S4 case path round-trips the real records, skipped parts are marked."""

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tabular_report as tr

from detak.data.heart_failure import load_heart_failure, split_xy
from detak.models.cases import load_schema, read_cases

REPO = Path(__file__).resolve().parents[2]


def test_unknown_part_and_a_file_as_out_are_named(tmp_path):
    with pytest.raises(tr.ReportError, match="unknown part.*s5"):
        tr.main(["--out", str(tmp_path), "--only", "s2,s5"])
    f = tmp_path / "file.md"
    f.write_text("x")
    with pytest.raises(tr.ReportError, match="is a file"):
        tr.main(["--out", str(f), "--only", "s4"])


def _git(repo, *args):
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo,
                          capture_output=True, text=True, check=True).stdout.strip()


def test_git_state_names_the_commit_and_only_the_relevant_uncommitted_files(tmp_path):
    (tmp_path / "detak" / "models").mkdir(parents=True)
    (tmp_path / "detak" / "models" / "tabular.py").write_text("a = 1\n")
    (tmp_path / "notes.md").write_text("x\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "one")
    head = _git(tmp_path, "rev-parse", "HEAD")
    assert tr.git_state(tmp_path) == {"commit": head, "uncommitted": []}
    (tmp_path / "detak" / "models" / "tabular.py").write_text("a = 2\n")
    (tmp_path / "notes.md").write_text("y\n")  # not code the results depend on
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "tabular_report.py").write_text("new\n")
    state = tr.git_state(tmp_path)
    assert state["commit"] == head
    assert state["uncommitted"] == ["benchmarks/tabular_report.py", "detak/models/tabular.py"]
    assert tr.git_state(tmp_path / "detak")["commit"] == head  # a subfolder is the same repo
    no_git = tmp_path.parent / f"{tmp_path.name}-plain"
    no_git.mkdir()
    assert tr.git_state(no_git) == {"commit": None, "uncommitted": []}


def test_provenance_block_names_command_commit_changes_and_data():
    data = tr.heart_failure_data()
    prov = tr.provenance("python benchmarks/tabular_report.py --skip-s3", [data],
                         {"measuring_code": "hash abc"})
    text = "\n".join(tr.provenance_md(prov))
    assert "`python benchmarks/tabular_report.py --skip-s3`" in text
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                          text=True, check=True).stdout.strip()
    assert prov["git_commit"] == head and head[:12] in text
    for path in prov["git_uncommitted"]:
        assert f"`{path}`" in text
    assert data["sha256"][:16] in text and data["path"] in text
    assert "Measuring code: hash abc" in text
    assert prov["versions"]["scikit-learn"] in text


def test_add_provenance_goes_under_the_title_and_first_in_the_json(tmp_path):
    md, js = tmp_path / "r.md", tmp_path / "r.json"
    md.write_text("# Title\n\nBody line.\n")
    js.write_text(json.dumps({"meta": {"n": 3}, "provenance": {"old": True}}))
    prov = tr.provenance("cmd", [])
    tr.add_provenance(md, js, prov)
    lines = md.read_text().splitlines()
    assert lines[0] == "# Title" and lines[1] == "" and lines[2].startswith("> Produced by `cmd`")
    assert lines[-1] == "Body line." and "" in lines[2:-1]
    doc = json.loads(js.read_text())
    assert list(doc) == ["provenance", "meta"] and doc["provenance"]["command"] == "cmd"
    js.write_text("[1, 2]")
    with pytest.raises(tr.ReportError, match="r.json: expected a JSON object"):
        tr.add_provenance(md, js, prov)


def test_heart_failure_cases_round_trip_through_the_schema_path(tmp_path):
    csv, schema, text = tr.heart_failure_cases(tmp_path)
    assert Path(schema).read_text() == text
    cases = read_cases(csv, load_schema(schema))
    X, y = split_xy(load_heart_failure(), with_time=False)
    assert list(cases.columns) == [*X.columns, "outcome"]
    np.testing.assert_array_equal(cases[list(X.columns)].to_numpy(float), X.to_numpy(float))
    np.testing.assert_array_equal(cases["outcome"].to_numpy() == "died", y.to_numpy() == 1)
    assert not any(str(REPO) in str(p) for p in (csv, schema))


def test_s4_neighbour_table_leaves_the_query_case_out(tmp_path):
    csv, schema, _ = tr.heart_failure_cases(tmp_path)
    study = tr.s4_case_study(csv, schema, query_row=6, cv=3)
    assert [r["model"] for r in study["comparison"]] == ["knn", "nb", "dt"]
    assert study["rows"] == 299 and study["class_counts"] == {"survived": 203, "died": 96}
    nb = study["neighbours"]
    assert len(nb) == tr.S4_K and 6 not in [n["index"] for n in nb]
    d = [n["distance"] for n in nb]
    assert d == sorted(d) and d[0] > 0  # the query itself is not its own neighbour
    votes = pd.Series([n["label"] for n in nb]).value_counts(normalize=True)
    for cls, p in study["prediction"]["probabilities"].items():
        assert p == pytest.approx(votes.get(cls, 0.0))
    # patient 5 (0-based) is data row 6 of the case CSV
    X, _ = split_xy(load_heart_failure(), with_time=False)
    assert study["query"] == {k: float(v) for k, v in X.iloc[tr.PATIENT].items()}


def test_bad_csv_errors_name_row_and_column(tmp_path):
    csv, schema, _ = tr.heart_failure_cases(tmp_path)
    msgs = tr.bad_csv_message(csv, schema, tmp_path)
    assert "row 6" in msgs["non_numeric"] and "'age'" in msgs["non_numeric"]
    assert "'sixty'" in msgs["non_numeric"]
    assert "row 9" in msgs["unknown_class"] and "'outcome'" in msgs["unknown_class"]
    assert str(tmp_path) not in msgs["non_numeric"]  # no temporary paths in the report


def test_parts_not_run_are_kept_and_marked_and_skipped_s3_files_are_untouched(tmp_path):
    s3_json = REPO / "docs" / "results" / "s3_ptbxl.json"
    shutil.copy(s3_json, tmp_path / "s3_ptbxl.json")
    before = (tmp_path / "s3_ptbxl.json").read_bytes()
    assert tr.main(["--out", str(tmp_path), "--only", "s4", "--skip-s3"]) == 0
    first = json.loads((tmp_path / "tabular.json").read_text())
    assert set(first["parts"]) == {"s4", "s3"}
    assert first["parts"]["s3"]["regenerated"] is False
    assert tr.main(["--out", str(tmp_path), "--only", "s2", "--skip-s3"]) == 0
    doc = json.loads((tmp_path / "tabular.json").read_text())
    assert doc["parts"]["s4"]["regenerated"] is False
    assert doc["parts"]["s4"]["headline"] == first["parts"]["s4"]["headline"]
    assert "regenerated" not in doc["parts"]["s2"]
    assert doc["provenance"]["command"].endswith("--only s2 --skip-s3")
    md = (tmp_path / "tabular.md").read_text()
    s3_doc = json.loads(before)
    assert "**Not regenerated in this run** (`--skip-s3`)" in md
    assert f"NB accuracy {s3_doc['nb']['accuracy']:.3f}" in md
    s4_section = md[md.index("## S4"):]
    assert "Not regenerated in this run" in s4_section.split("##")[1]
    assert (tmp_path / "s3_ptbxl.json").read_bytes() == before
    for f in ("heart_failure/heart_failure.md", "heart_failure/roc_without_time.png",
              "s4/s4_cases.md", "s4/s4_cases.json"):
        assert (tmp_path / f).is_file(), f
    hf = json.loads((tmp_path / "heart_failure" / "heart_failure.json").read_text())
    assert hf["provenance"]["data"][0]["sha256"] == tr.heart_failure_data()["sha256"]
