"""detak.export.pipeline (``detak export``): the files, the export card's figures (recomputed
here from the files), `detak models list` over an exported folder, and the predict/evaluate
runtime switch."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from detak.export.compare import auc_summary
from detak.export.runtime import load_runtime
from tests.export.conftest import CALIBRATION_SIZE, EVAL_RECORDS


@pytest.fixture(scope="module")
def card(exported_edge) -> dict:
    return json.loads((exported_edge / "export.json").read_text())


def test_files_and_card(exported_edge, trained_edge, card):
    names = sorted(p.name for p in exported_edge.iterdir())
    assert names == ["card.json", "edge.fp32.onnx", "edge.fp32.tflite", "edge.int8.onnx",
                     "edge.int8.tflite", "export.json", "standardizer.json"]
    assert card["format"] == "detak-export-card/1" and card["cam"]["kind"] == "gap"
    assert card["cam"]["outputs"] == ["logits", "probs", "cam_mi", "cam_top"]
    for kind in ("onnx", "tflite"):
        e = card["exports"][kind]
        assert e["calibration"]["size"] == CALIBRATION_SIZE
        assert e["evaluation"]["records"] == EVAL_RECORDS and e["evaluation"]["fold"] == 9
        for prec in ("fp32", "int8"):
            f = exported_edge / e[prec]["file"]
            assert e[prec]["bytes"] == f.stat().st_size
        assert e["fp32"]["max_abs_prob_diff_vs_torch"] <= 1e-4
        assert e["fp32"]["cam_top_vs_torch"]["min_r"] >= 0.999
        auto = e["torch_fp32"]["fused_cam_vs_autograd"]["cam_top"]
        assert auto["defined"] > 0 and auto["min_r"] >= 0.999
        assert "--source" in e["command"] and str(trained_edge) in e["command"]
    assert card["exports"]["onnx"]["int8"]["calibration_method"] in ("minmax", "entropy",
                                                                    "percentile")


def test_card_aucs_are_what_the_files_give(exported_edge, card):
    from detak.models.cnn_data import fold_arrays
    from detak.signal.filters import Standardizer

    std = Standardizer.load(exported_edge / "standardizer.json")
    fa = fold_arrays(9)
    idx = np.flatnonzero(fa.labelled)[:EVAL_RECORDS]
    x = std.transform(np.asarray(fa.x[idx])).astype(np.float32)
    for kind in ("onnx", "tflite"):
        for prec in ("fp32", "int8"):
            entry = card["exports"][kind][prec]
            probs = load_runtime(exported_edge / entry["file"]).run(x).probs
            mine = auc_summary(fa.y[idx], probs)
            assert abs(mine["macro_auc"] - entry["macro_auc"]) < 1e-6, (kind, prec)
            assert abs(mine["mi_auc"] - entry["mi_auc"]) < 1e-6


def test_models_list_shows_runtime_precision_and_cam(exported_edge):
    from detak.export.catalog import list_models

    rows = list_models(exported_edge.parent, include_bundles=False)
    got = {(r["runtime"], r["precision"], r.get("cam")) for r in rows}
    assert got == {("onnx", "fp32", True), ("onnx", "int8", True), ("tflite", "fp32", True),
                   ("tflite", "int8", True)}


@pytest.mark.parametrize("runtime", ["onnx", "tflite"])
def test_predict_switches_runtime(exported_edge, trained_edge, runtime, tmp_path):
    from detak.cli import main
    from detak.export.predict import load_model, predict_sources

    out = tmp_path / "p.csv"
    assert main(["predict", "ptbxl://8", "ptbxl://11", "--model", str(exported_edge),
                 "--runtime", runtime, "--precision", "int8", "--out", str(out),
                 "--jobs", "1"]) == 0
    table = pd.read_csv(out)
    assert table.columns.tolist() == ["record", "NORM", "MI", "STTC", "CD", "HYP"]
    assert table["record"].tolist() == [8, 11]
    torch_table = predict_sources(["ptbxl://8", "ptbxl://11"], trained_edge, jobs=1)
    diff = np.abs(table.iloc[:, 1:].to_numpy() - torch_table.iloc[:, 1:].to_numpy()).max()
    assert 0 < diff < 0.08  # int8: close to torch fp32, not identical
    loaded = load_model(exported_edge, runtime=runtime, precision="int8")
    assert loaded.module.has_cam and loaded.module.precision == "int8"


def test_missing_export_is_a_named_error(trained_edge):
    from detak.export.predict import RuntimeNotAvailableError, load_model

    with pytest.raises(RuntimeNotAvailableError,
                       match=r"runtime onnx: no exported model for edge yet \(detak export "
                             r"onnx\); .*edge\.int8\.onnx does not exist"):
        load_model(trained_edge, runtime="onnx", precision="int8")


def test_evaluate_takes_the_runtime(exported_edge, card):
    from detak.export.predict_cli import evaluate_sources

    res = evaluate_sources(str(exported_edge), ["ptbxl://fold9"], n_boot=10, runtime="onnx",
                           precision="int8")
    assert res["runtime"] == "onnx" and res["precision"] == "int8" and res["records"] == 2183
    # the whole fold: what the int8 file itself gives on the fold's labelled records
    from detak.models.cnn_data import fold_arrays
    from detak.signal.filters import Standardizer

    fa = fold_arrays(9)
    idx = np.flatnonzero(fa.labelled)
    x = Standardizer.load(exported_edge / "standardizer.json").transform(np.asarray(fa.x[idx]))
    entry = card["exports"]["onnx"]["int8"]
    direct = auc_summary(fa.y[idx], load_runtime(exported_edge / entry["file"])
                         .run(x.astype(np.float32)).probs)
    assert abs(res["eval"]["macro_auc"] - direct["macro_auc"]) < 0.002
    assert abs(res["eval"]["mi_auc"] - direct["mi_auc"]) < 0.002
    # the card's own records (the first EVAL_RECORDS labelled ones): the card's figures
    ids = [f"ptbxl://{i}" for i in fa.ids[idx[:EVAL_RECORDS]]]
    same = evaluate_sources(str(exported_edge), ids, n_boot=10, runtime="onnx",
                            precision="int8")
    assert abs(same["eval"]["macro_auc"] - entry["macro_auc"]) < 0.002
    assert abs(same["eval"]["mi_auc"] - entry["mi_auc"]) < 0.002


def test_export_arguments_are_checked():
    from detak.export.pipeline import export_model

    with pytest.raises(ValueError, match="unknown export kind 'coreml'"):
        export_model("edge", kind="coreml")
    with pytest.raises(ValueError, match="a NAME or its folder"):
        export_model(None, kind="onnx")
