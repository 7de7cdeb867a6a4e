"""detak.models.tabular_cli: evaluate/train/classify functions behind the CLI contract."""

import json

import pandas as pd
import pytest

from detak.data.heart_failure import load_heart_failure, split_xy
from detak.models.tabular_cli import (
    classify,
    load_dataset,
    tabular_evaluate,
    tabular_train,
)
from tests.models.test_cases import synthetic_s4
from tests.models.test_s3_study import small_table


def test_evaluate_prints_the_contract_keys(capsys):
    r = tabular_evaluate("heart-failure", "nb", cv=5)
    printed = json.loads(capsys.readouterr().out)
    assert printed == r
    for key in ("auc_mean", "auc_sd", "accuracy_mean", "accuracy_sd", "f1_mean", "f1_sd",
                "precision_mean", "recall_mean"):
        assert isinstance(r[key], float), key
    assert r["folds"] == 5 and "time" not in r["features"] and len(r["per_fold"]["auc"]) == 5
    with_time = tabular_evaluate("heart-failure", "nb", cv=5, with_time=True, json_out=False)
    assert "time" in with_time["features"]


def test_unknown_datasets_are_named(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'heart'"):
        load_dataset("heart")


def test_ptbxl_intervals_dataset_is_the_elderly_s3_labelled_rows(monkeypatch, capsys):
    from detak.models import s3_study

    table = small_table()  # the full table takes ~25 min to build; same code path
    monkeypatch.setattr(s3_study, "load_table", lambda: table)
    ds = load_dataset("ptbxl-intervals")
    assert list(ds.X.columns) == ["rr_ms", "pr_ms", "qrs_ms", "qt_ms", "qtc_bazett_ms",
                                  "st_ms", "rs_ratio", "hr_bpm"]
    rows = table.loc[ds.X.index]
    assert (rows["age"] >= 60).all() and (rows["quality"] != "reject").all()
    pd.testing.assert_frame_equal(ds.X, rows[list(ds.X.columns)].astype(float))
    left_out = table[(table["age"] >= 60) & (table["quality"] != "reject")
                     & table[list(ds.X.columns)].isna().all(axis=1)]
    assert len(ds.y) == int(((table["age"] >= 60) & (table["quality"] != "reject")).sum()
                            ) - len(left_out)
    assert set(ds.y) <= {"Normal", "Abnormal", "Berpotensi Aritmia",
                         "Sangat Berpotensi Aritmia"}
    assert ds.y.loc[rows.index[rows["pr_ms"] > 200]].eq("Sangat Berpotensi Aritmia").all()
    r = tabular_evaluate("ptbxl-intervals", "nb", cv=3)
    assert json.loads(capsys.readouterr().out) == r
    assert r["dataset"] == "ptbxl-intervals" and r["rows"] == len(ds.y)
    assert 0.0 < r["auc_mean"] <= 1.0 and len(r["per_fold"]["auc"]) == 3


def test_train_then_classify_by_name(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DETAK_CACHE", str(tmp_path / "cache"))
    assert tabular_train("heart-failure", "knn", cv=3) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["name"] == "heart-failure-knn"
    assert out["model_path"] == str(tmp_path / "cache" / "models" / "heart-failure-knn"
                                    / "heart-failure-knn.joblib")
    X, _ = split_xy(load_heart_failure(), with_time=False)
    row = X.iloc[5].to_dict()
    r = classify(row, "heart-failure-knn")
    assert r["label"] in (0, 1) and set(r["probabilities"]) == {"0", "1"}
    assert [n["rank"] for n in r["neighbours"]] == [1, 2, 3, 4, 5]
    assert r["neighbours"][0]["index"] == 5 and r["neighbours"][0]["distance"] == 0.0
    # a JSON file and a CSV of rows give the same answer
    (tmp_path / "row.json").write_text(json.dumps(row))
    assert classify(tmp_path / "row.json", out["model_path"])["label"] == r["label"]
    X.iloc[[5, 6]].to_csv(tmp_path / "rows.csv", index=False)
    many = classify(str(tmp_path / "rows.csv"), out["card_path"])
    assert len(many["results"]) == 2 and many["results"][0]["label"] == r["label"]
    with pytest.raises(ValueError, match="not interval keys"):
        classify("sample://ludb-1", out["model_path"])


def test_train_and_evaluate_a_case_csv(tmp_path, capsys):
    synthetic_s4(tmp_path / "s4.csv", per_class=10)
    assert tabular_train(str(tmp_path / "s4.csv"), "dt", cv=5, out=tmp_path / "m",
                         schema="s4_echo", json_out=False) == 0
    card = json.loads((tmp_path / "m" / "s4-dt.json").read_text())
    assert card["training_data"]["rows"] == 80 and len(card["classes"]) == 8
    r = tabular_evaluate(str(tmp_path / "s4.csv"), "knn", cv=5, schema="s4_echo", k=3,
                         json_out=False)
    assert 0 <= r["accuracy_mean"] <= 1
