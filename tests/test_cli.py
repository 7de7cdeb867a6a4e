"""The `detak` sub-commands other than `intervals` (tested in tests/signal)."""

import json
import subprocess
import sys

import numpy as np
import pytest


def _detak(*args):
    return subprocess.run([sys.executable, "-m", "detak.cli", *args], capture_output=True,
                          text=True, timeout=600)


def test_help_lists_one_sub_command_per_task():
    out = _detak("--help").stdout
    for cmd in ("intervals", "quality", "plot", "convert", "data", "demo"):
        assert cmd in out


def test_quality_rejects_a_flat_recording_and_passes_a_clean_one(tmp_path):
    from detak.data.io import write_recording
    from detak.data.recording import Recording
    from detak.data.samples import load_sample

    flat = Recording(np.zeros((12, 5000)), 500.0, load_sample("ludb-2").leads, name="flat")
    path = write_recording(flat, tmp_path / "flat.hea")
    proc = _detak("quality", "sample://ludb-2", str(path))
    assert proc.returncode == 1
    good, bad = (json.loads(ln) for ln in proc.stdout.splitlines())
    assert good["verdict"] in {"ok", "warn"} and bad["verdict"] == "reject"
    assert any("flat" in r.lower() for r in bad["reasons"])


def test_convert_round_trips_through_csv(tmp_path):
    from detak.data.io import read_recording
    from detak.data.ptbxl import open_ptbxl

    proc = _detak("convert", "ptbxl://257", str(tmp_path / "r.csv"))
    assert proc.returncode == 0, proc.stderr
    back = read_recording(tmp_path / "r.csv")
    orig = open_ptbxl().record(257)
    assert back.fs == orig.fs and back.leads == orig.leads
    np.testing.assert_allclose(back.signal, orig.signal, atol=1e-6)


def test_convert_refuses_a_fold(tmp_path):
    proc = _detak("convert", "ptbxl://fold9", str(tmp_path / "x.csv"))
    assert proc.returncode != 0 and "give one record" in proc.stderr


def test_plot_writes_one_file_per_record(tmp_path):
    proc = _detak("plot", "ludb://1", "sample://ptbxl-00102", "--out", str(tmp_path),
                  "--format", "svg")
    assert proc.returncode == 0, proc.stderr
    paths = proc.stdout.split()
    assert [p.rsplit("/", 1)[-1] for p in paths] == ["ludb-1.svg", "sample-ptbxl-00102.svg"]
    assert all((tmp_path / p.rsplit("/", 1)[-1]).stat().st_size > 10_000 for p in paths)


def test_data_summarises_the_shared_datasets():
    proc = _detak("data")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["ptbxl"]["records"] == 21799
    assert summary["ptbxl"]["folds_with_signals_100hz"] == list(range(1, 10))
    assert summary["ludb"]["records"] == 200
    assert summary["heart_failure"]["patients"] == 299


@pytest.mark.parametrize("args", [["intervals"], ["plot", "ludb://1"], ["nope"]])
def test_bad_command_lines_exit_with_usage(args):
    proc = _detak(*args)
    assert proc.returncode == 2 and "usage:" in proc.stderr


def test_rules_command_labels_a_first_degree_av_block_sample():
    proc = _detak("rules", "sample://ptbxl-00102", "--ruleset", "clinical", "--json")
    assert proc.returncode == 0, proc.stderr
    (obj,) = json.loads(proc.stdout)
    assert obj["label"] == "abnormal"
    assert "first_degree_av_block" in [r["finding"] for r in obj["reasons"]]


def test_tabular_evaluate_train_and_classify_heart_failure(tmp_path):
    import os

    env = {**os.environ, "DETAK_CACHE": str(tmp_path)}

    def run(*args):
        proc = subprocess.run([sys.executable, "-m", "detak.cli", *args], capture_output=True,
                              text=True, timeout=600, env=env)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    ev = run("tabular", "evaluate", "--dataset", "heart-failure", "--model", "lr", "--json")
    assert {"auc_mean", "auc_sd", "accuracy_mean", "f1_mean"} <= set(ev)
    assert 0.5 < ev["auc_mean"] <= 1.0
    tr = run("tabular", "train", "--dataset", "heart-failure", "--model", "knn", "--json")
    assert tr["name"] == "heart-failure-knn"
    row = {"age": 75, "anaemia": 0, "creatinine_phosphokinase": 582, "diabetes": 0,
           "ejection_fraction": 20, "high_blood_pressure": 1, "platelets": 265000,
           "serum_creatinine": 1.9, "serum_sodium": 130, "sex": 1, "smoking": 0}
    (tmp_path / "row.json").write_text(json.dumps(row))
    out = run("classify", str(tmp_path / "row.json"), "--model", "heart-failure-knn", "--k", "3")
    assert len(out["neighbours"]) == 3
    assert [n["rank"] for n in out["neighbours"]] == [1, 2, 3]
    assert str(out["label"]) in out["probabilities"]
