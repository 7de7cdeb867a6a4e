"""The CNN commands of `detak` (train: detak/models/cnn_cli.py; evaluate, predict, models:
detak/export/predict_cli.py): flags as contracted, info, evaluate on PTB-XL."""

import json

import pytest

from detak.cli import build_parser, main
from detak.data.sources import _ptbxl
from tests.export.test_predict import make_tiny_model


def test_contract_flags_parse():
    p = build_parser()
    a = p.parse_args(["train", "--model", "resnet1d", "--epochs", "3", "--batch-size", "8",
                      "--lr", "0.01", "--patience", "2", "--seed", "5", "--resume", "--out",
                      "d", "--max-records", "100", "--threads", "1"])
    assert (a.model, a.epochs, a.batch_size, a.lr, a.patience, a.seed, a.resume, a.out,
            a.max_records, a.threads) == ("resnet1d", 3, 8, 0.01, 2, 5, True, "d", 100, 1)
    a = p.parse_args(["evaluate", "--model", "edge", "--source", "ptbxl://fold9", "--json"])
    assert a.source == ["ptbxl://fold9"] and a.json
    a = p.parse_args(["predict", "a", "b", "--model", "edge", "--runtime", "tflite",
                      "--precision", "int8", "--out", "x.csv"])
    assert (a.sources, a.runtime, a.precision, a.out) == (["a", "b"], "tflite", "int8", "x.csv")
    a = p.parse_args(["predict", "a", "--model", "edge", "--out", "x.csv"])
    assert (a.runtime, a.precision) == ("auto", None)
    assert p.parse_args(["models", "list", "--json"]).json
    assert p.parse_args(["models", "info", "edge"]).name == "edge"
    with pytest.raises(SystemExit):
        p.parse_args(["train", "--model", "vgg"])


def test_models_info_prints_counts(capsys):
    assert main(["models", "info", "resnet1d"]) == 0
    out = capsys.readouterr().out
    assert "473,349 parameters" in out and "(1, 12, 1000)" in out
    assert main(["models", "info", "edge", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["parameters"] <= 150_000 and info["macs"] <= 30_000_000


def test_evaluate_on_ptbxl_records(tmp_path, capsys):
    tiny = make_tiny_model(tmp_path / "tiny")
    ptb = _ptbxl()
    labelled = ptb.labelled_ids([9])
    unlabelled = [int(i) for i in ptb.fold_ids(9) if int(i) not in set(labelled)][:2]
    ids = [f"ptbxl://{i}" for i in [*unlabelled, *labelled[:58]]]
    assert main(["evaluate", "--model", str(tiny), "--source", *ids, "--json",
                 "--boot", "20"]) == 0
    res = json.loads(capsys.readouterr().out)
    ev = res["eval"]
    assert res["records"] == 60 and res["unlabelled_left_out"] == 2 and ev["n"] == 58
    assert set(ev["per_class_auc"]) == {"NORM", "MI", "STTC", "CD", "HYP"}
    assert ev["macro_auc_ci"][0] <= ev["macro_auc"] <= ev["macro_auc_ci"][1]
    assert {"accuracy", "precision", "recall", "f1", "roc_auc"} <= set(ev["table6"])
    assert main(["evaluate", "--model", str(tiny), "--source", "ludb://1"]) == 1
    assert "labelled PTB-XL" in capsys.readouterr().err


def test_evaluate_errors_are_one_named_line(tmp_path, capsys):
    tiny = make_tiny_model(tmp_path / "tiny")
    # one record: its AUC cannot be computed (MetricsError) - the sources failed, exit 1
    assert main(["evaluate", "--model", str(tiny), "--source", "ptbxl://8",
                 "--runtime", "torch"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("detak evaluate: error: ptbxl://8: ")
    assert main(["evaluate", "--model", "no-such-model", "--source", "ptbxl://8"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no-such-model" in err[0]
