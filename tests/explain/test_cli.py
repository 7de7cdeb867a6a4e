"""``detak explain``: output files and their contents, and named errors for bad input."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from detak.explain.cli import add_explain_commands
from tests.export.test_predict import make_tiny_model


def _run(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="command")
    add_explain_commands(sub)
    args = p.parse_args(argv)
    return args.func(args)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("models") / "tiny-edge")


def test_unknown_method_class_and_model_are_named(tiny, tmp_path, capsys):
    assert _run(["explain", "ptbxl://8", "--model", str(tiny), "--method", "deeplift",
                 "--out", str(tmp_path)]) == 2
    assert "unknown method 'deeplift'" in capsys.readouterr().err
    assert _run(["explain", "ptbxl://8", "--model", str(tiny), "--class", "AFIB",
                 "--out", str(tmp_path)]) == 2
    assert "unknown class 'AFIB'" in capsys.readouterr().err
    assert _run(["explain", "ptbxl://8", "--model", str(tmp_path / "nope"),
                 "--out", str(tmp_path)]) == 2
    assert "not found" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.json"))


def test_missing_leads_name_the_record_and_leads(tiny, tmp_path, capsys):
    csv = tmp_path / "two_leads.csv"
    t = np.arange(1000) / 100.0
    csv.write_text("time,I,II\n" + "\n".join(f"{a:.2f},{np.sin(a):.4f},{np.cos(a):.4f}"
                                              for a in t))
    assert _run(["explain", str(csv), "--model", str(tiny), "--out",
                 str(tmp_path / "o")]) == 1  # a source failed (exit rule)
    err = capsys.readouterr().err
    assert "two_leads" in err and "V1" in err


def test_explain_writes_png_svg_json_consistent_with_predict(tiny, tmp_path, capsys,
                                                              monkeypatch):
    import detak.explain.lrp as lrp_mod
    from detak.export.predict import predict_sources

    # the default composite (s1) takes z^B bounds from the training folds; fold 9's range
    # stands in here (reading folds 1-8 is the slow part, not what is tested)
    calls = []
    real = lrp_mod.training_lead_range

    def fold9_range(folds=None, cache=True):
        calls.append(folds)
        return real([9], cache=False)

    monkeypatch.setattr(lrp_mod, "training_lead_range", fold9_range)
    out = tmp_path / "out"
    assert _run(["explain", "ptbxl://8", "--model", str(tiny), "--method", "lrp",
                 "--out", str(out)]) == 0
    assert calls == [None]      # the bounds were asked for, once
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    stem = "8.lrp_s1"
    assert sorted(p.name for p in out.iterdir()) == [f"{stem}.json", f"{stem}.png",
                                                       f"{stem}.svg"]
    doc = json.loads((out / f"{stem}.json").read_text())
    assert doc["record"] == "8" and doc["method"] == "lrp:s1" and doc["signed"]
    assert doc["lead_resolved"]
    a = np.asarray(doc["attribution"])
    assert a.shape == (12, 1000) and (a > 0).any() and (a < 0).any()
    assert sum(doc["lead_scores"].values()) == pytest.approx(1.0, abs=1e-6)
    assert doc["top3"] == line["top3"] and 1 <= doc["lead_utilisation"] <= 12
    # the explained probability is the one `detak predict` gives for the record
    p = predict_sources(["ptbxl://8"], model=str(tiny), jobs=1)
    assert doc["probability"] == pytest.approx(float(p["MI"].iloc[0]), abs=1e-5)


def test_gradcam_json_only(tiny, tmp_path, capsys):
    out = tmp_path / "g"
    assert _run(["explain", "ptbxl://8", "--model", str(tiny), "--method", "gradcam",
                 "--class", "NORM", "--no-plot", "--out", str(out)]) == 0
    doc = json.loads((out / "8.gradcam.json").read_text())
    a = np.asarray(doc["attribution"])
    assert doc["class"] == "NORM" and (a >= 0).all() and not doc["signed"]
    assert [p.suffix for p in out.iterdir()] == [".json"]


def test_shap_writes_signed_values_that_add_up_to_the_logit_change(tiny, tmp_path, capsys,
                                                                    monkeypatch):
    import torch

    import detak.explain.shap_cnn as shap_mod
    from detak.export.predict import load_model

    drawn = []
    real = shap_mod.training_background

    def recorded(standardizer, n=64, seed=0, folds=shap_mod.TRAIN_FOLDS):
        bg = real(standardizer, n=n, seed=seed, folds=(1,))  # one fold: faster, same code
        drawn.append(bg)
        return bg

    monkeypatch.setattr(shap_mod, "training_background", recorded)
    out = tmp_path / "s"
    assert _run(["explain", "ptbxl://8", "--model", str(tiny), "--method", "shap",
                 "--background", "16", "--shap-samples", "512", "--no-plot",
                 "--out", str(out)]) == 0
    assert len(drawn) == 1 and drawn[0].shape == (16, 12, 1000)
    doc = json.loads((out / "8.shap.json").read_text())
    assert doc["method"] == "shap" and doc["signed"] and doc["lead_resolved"]
    assert "GradientExplainer" in doc["method_note"]
    a = np.asarray(doc["attribution"])
    assert a.shape == (12, 1000) and (a > 0).any() and (a < 0).any()
    module = load_model(str(tiny), runtime="torch").module
    with torch.no_grad():
        base = float(module(torch.from_numpy(drawn[0]))[:, 1].mean())
    assert a.sum() == pytest.approx(doc["logit"] - base, rel=0.2, abs=0.02)


def test_shap_names_bad_counts_and_missing_training_data(tiny, tmp_path, capsys, monkeypatch):
    assert _run(["explain", "ptbxl://8", "--model", str(tiny), "--method", "shap",
                 "--background", "0", "--out", str(tmp_path / "a")]) == 2
    assert "--background >= 1" in capsys.readouterr().err
    import detak.explain.shap_cnn as shap_mod
    from detak.data.ptbxl import FoldNotAvailableError

    def no_folds(*a, **k):
        raise FoldNotAvailableError("PTB-XL fold 1 at 100 Hz is not in /nowhere")

    monkeypatch.setattr(shap_mod, "training_background", no_folds)
    assert _run(["explain", "ptbxl://8", "--model", str(tiny), "--method", "shap",
                 "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "PTB-XL training folds" in err and "fold 1" in err
    assert not (tmp_path / "b").exists()
