"""Calibrated probabilities wherever they leave the runtime: `detak predict`, the screening
(kiosk, `detak screen`, the PDF), each compared with the raw model output passed through the
card's own calibration (no numbers written here); a bad calibration in a card stops the model
with a clear error; the kiosk applies it without torch."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from detak.data.samples import load_sample
from detak.export.predict import CalibrationCardError, load_model
from detak.models.cnn_data import CLASSES, preprocess_recording
from detak.models.prob_calibration import Calibration, sigmoid
from detak.models.shipped import shipped_model_dir

SAMPLE = "ptbxl-00286"


def _edge_card() -> dict:
    return json.loads((shipped_model_dir("edge") / "card.json").read_text())


def _expected(sample: str) -> np.ndarray:
    """The raw int8 logits of the sample's windows through the card's calibration, averaged."""
    raw = load_model("edge", runtime="onnx", precision="int8", threads=1, calibrated=False)
    x = preprocess_recording(load_sample(sample), raw.standardizer)
    logits = raw.module.run(x).logits
    cal = Calibration.from_card(_edge_card()["calibration"], list(CLASSES))
    return cal.probabilities(logits).mean(axis=0)


def test_the_shipped_edge_card_holds_a_calibration_fitted_on_its_int8_file():
    cal = _edge_card()["calibration"]
    from detak.models.model_card import sha256_file

    assert cal["model_file"] == "edge.int8.onnx"
    assert cal["model_file_sha256"] == sha256_file(shipped_model_dir("edge") / "edge.int8.onnx")
    assert "fold 9" in cal["label"] and set(cal["classes"]) == set(CLASSES)
    for c, h in cal["held_out_ece"].items():        # the chosen method is the held-out best
        means = h["mean_20_splits"]
        best = min(means["uncalibrated"], means["temperature"], means["isotonic"])
        key = "uncalibrated" if h["chosen"] == "identity" else h["chosen"]
        assert means[key] == best, c
        if h["chosen"] != "identity":                # a map ships only if it beats the raw
            assert means[key] < means["uncalibrated"], c


def test_detak_predict_writes_calibrated_probabilities(tmp_path):
    from detak.cli import main

    out = tmp_path / "p.csv"
    assert main(["predict", f"sample://{SAMPLE}", "--model", "edge", "--runtime", "onnx",
                 "--precision", "int8", "--jobs", "1", "--out", str(out)]) == 0
    got = pd.read_csv(out).loc[0, list(CLASSES)].to_numpy(float)
    np.testing.assert_allclose(got, _expected(SAMPLE), atol=2e-6)
    raw = load_model("edge", runtime="onnx", precision="int8", threads=1, calibrated=False)
    x = preprocess_recording(load_sample(SAMPLE), raw.standardizer)
    uncal = sigmoid(raw.module.run(x).logits).mean(axis=0)
    assert np.abs(got - uncal).max() > 1e-3        # calibration changed the numbers


def test_the_screening_carries_the_same_calibrated_probabilities_and_says_so():
    from detak.kiosk.screening import screen

    s = screen(load_sample(SAMPLE), lang="en")
    got = np.array([s.mi["probabilities"][c] for c in CLASSES])
    np.testing.assert_allclose(got, _expected(SAMPLE), atol=6e-5)   # rounded to 4 decimals
    assert s.mi["probability"] == s.mi["probabilities"]["MI"]
    assert s.mi["calibration"].startswith("calibrated: ") and "fold 9" in s.mi["calibration"]
    card = _edge_card()
    mi_op = card["operating_points"]["classes"]["MI"]["operating"]["threshold"]
    assert s.mi["thresholds"]["MI"]["operating"] == mi_op


def test_operating_points_were_computed_on_the_calibration_in_the_card():
    # tools/mi_operating_point.py by path, under its own name: benchmarks/ has a module of the
    # same name, which an earlier test of the session may have imported as mi_operating_point
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "tools" / "mi_operating_point.py"
    spec = importlib.util.spec_from_file_location("tools_mi_operating_point_test", path)
    assert spec is not None and spec.loader is not None
    mop = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mop)

    card = _edge_card()
    assert card["operating_points"]["calibration_sha256"] == mop.calibration_digest(card)
    assert card["operating_points"]["probabilities"].startswith("calibrated")


def _model_copy(tmp_path: Path, edit) -> Path:
    folder = tmp_path / "edge"
    shutil.copytree(shipped_model_dir("edge"), folder)
    card = json.loads((folder / "card.json").read_text())
    edit(card)
    (folder / "card.json").write_text(json.dumps(card))
    return folder


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["calibration"]["classes"]["NORM"].update(method="temperature", temperature=0),
     "NORM: temperature must be a positive"),
    (lambda c: c["calibration"]["classes"]["NORM"].update(method="temperature",
                                                          temperature=-1.0),
     "NORM: temperature must be a positive"),
    (lambda c: c["calibration"]["classes"].pop("HYP"), "no entry for class HYP"),
    (lambda c: c["calibration"].update(model_file_sha256="0" * 64), "fitted on another"),
])
def test_a_bad_calibration_in_the_card_stops_the_model(tmp_path, edit, message):
    folder = _model_copy(tmp_path, edit)
    with pytest.raises(CalibrationCardError, match=message):
        load_model(folder, runtime="onnx", precision="int8")
    from detak.cli import main

    assert main(["predict", f"sample://{SAMPLE}", "--model", str(folder), "--runtime", "onnx",
                 "--precision", "int8", "--jobs", "1", "--out", str(tmp_path / "x.csv")]) == 2
    assert not (tmp_path / "x.csv").exists()


def test_a_card_without_calibration_gives_the_raw_sigmoid_and_says_so(tmp_path):
    folder = _model_copy(tmp_path, lambda c: c.pop("calibration"))
    m = load_model(folder, runtime="onnx", precision="int8", threads=1)
    x = preprocess_recording(load_sample(SAMPLE), m.standardizer)
    np.testing.assert_allclose(m.predict(x), sigmoid(m.module.run(x).logits), atol=1e-6)
    assert m.probabilities == "uncalibrated model output"


_GUARD = """
import importlib.abc, json, sys
BLOCKED = ("torch", "onnx")
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(name + " is not installed on the kiosk")
sys.meta_path.insert(0, Block())
from detak.data.samples import load_sample
from detak.kiosk.screening import screen
s = screen(load_sample("ptbxl-00286"), lang="en")
print("RESULT" + json.dumps({"p": s.mi["probabilities"], "cal": s.mi["calibration"],
      "mods": sorted(k for k in sys.modules if k.split(".")[0] in ("torch", "onnx"))}))
"""

_NUMPY_ONLY = """
import importlib.abc, json, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("torch", "sklearn", "scipy", "pandas"):
            raise ImportError(name + " blocked")
sys.meta_path.insert(0, Block())
import numpy as np
from detak.models.prob_calibration import Calibration
card = json.load(open(sys.argv[1]))
cal = Calibration.from_card(card["calibration"], card["architecture"]["outputs"])
print(json.dumps(cal.probabilities(np.zeros((1, 5))).tolist()))
"""


def test_the_kiosk_applies_the_calibration_without_torch_or_scikit_learn():
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run([sys.executable, "-c", _GUARD], capture_output=True, text=True,
                          timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads(proc.stdout.split("RESULT", 1)[1])
    assert res["mods"] == [] and res["cal"].startswith("calibrated")
    np.testing.assert_allclose([res["p"][c] for c in CLASSES], _expected(SAMPLE), atol=6e-5)
    card = shipped_model_dir("edge") / "card.json"      # applying it needs numpy alone
    proc = subprocess.run([sys.executable, "-c", _NUMPY_ONLY, str(card)], capture_output=True,
                          text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    cal = Calibration.from_card(_edge_card()["calibration"], list(CLASSES))
    np.testing.assert_allclose(json.loads(proc.stdout)[0], cal.probabilities(np.zeros((1, 5)))[0])


def test_models_list_says_which_models_are_calibrated(capsys):
    from detak.cli import main

    assert main(["models", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    edge = [r for r in rows if r["name"] == "edge" and r["runtime"] == "onnx"
            and r["precision"] == "int8"]
    assert edge and edge[0]["calibration"] == _edge_card()["calibration"]["label"]


def _all_identity(card: dict) -> None:
    cal = card["calibration"]
    cal["classes"] = {c: {"method": "identity"} for c in cal["classes"]}
    cal["label"] = "uncalibrated: fold-9 held-out ECE not improved by temperature or isotonic"


def test_a_card_with_no_map_gives_the_raw_sigmoid_and_never_says_calibrated(tmp_path, capsys):
    from detak.cli import main
    from detak.kiosk.report_pdf import render_report
    from detak.kiosk.screening import screen

    folder = _model_copy(tmp_path, _all_identity)
    m = load_model(folder, runtime="onnx", precision="int8", threads=1)
    rec = load_sample(SAMPLE)
    x = preprocess_recording(rec, m.standardizer)
    np.testing.assert_allclose(m.predict(x), sigmoid(m.module.run(x).logits), atol=1e-6)
    want = "uncalibrated: fold-9 held-out ECE not improved by temperature or isotonic"
    assert m.probabilities == want
    capsys.readouterr()
    assert main(["predict", f"sample://{SAMPLE}", "--model", str(folder), "--runtime", "onnx",
                 "--precision", "int8", "--jobs", "1", "--out", str(tmp_path / "p.csv")]) == 0
    err = capsys.readouterr().err                          # the `detak predict` stderr line
    assert f"probabilities {want})" in err and " calibrated:" not in err
    s = screen(rec, lang="en", model=str(folder))          # the screening JSON
    assert s.mi["calibration"] == want
    pdf = tmp_path / "r.pdf"                               # the PDF claims no calibration
    pdf.write_bytes(render_report(s.to_dict(), rec, lang="en"))
    text = " ".join(subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True,
                                   text=True, check=True).stdout.split())
    assert "MI probability" in text and "calibrated on PTB-XL" not in text
