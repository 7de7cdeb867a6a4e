"""detak.explain.tabular: SHAP values add up to the model output, files are written, LIME
explains S2's patient 5; importing the module does not import shap or lime."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from detak.data.heart_failure import load_heart_failure, split_xy
from detak.explain.tabular import lime_explain, shap_explain, shap_record, shap_summary
from detak.models.tabular import TabularModel, TabularModelError


@pytest.fixture(scope="module")
def data():
    return split_xy(load_heart_failure(), with_time=True)


@pytest.fixture(scope="module")
def models(data):
    X, y = data
    return {k: TabularModel.train(k, X, y, name=f"hf-{k}", description="hf")
            for k in ("rf", "dt", "lr", "nb", "knn")}


@pytest.mark.parametrize("kind", ["rf", "dt"])
def test_tree_shap_adds_up_to_the_probability(models, data, kind):
    X, _ = data
    res = shap_explain(models[kind], X.iloc[:40])
    assert res.explainer == "TreeExplainer" and res.values.shape == (40, 12)
    p1 = models[kind].predict_proba(X.iloc[:40])[:, 1]
    np.testing.assert_allclose(res.values.sum(axis=1) + res.base_values, p1, atol=1e-6)
    # class 0 is the mirror image
    res0 = shap_explain(models[kind], X.iloc[:5], class_label=0)
    np.testing.assert_allclose(res0.values.sum(axis=1) + res0.base_values, 1 - p1[:5],
                               atol=1e-6)


def test_linear_shap_adds_up_to_the_log_odds(models, data):
    X, _ = data
    m = models["lr"]
    res = shap_explain(m, X.iloc[:30], background=X)
    logit = m.pipeline.decision_function(X.to_numpy(float)[:30])
    np.testing.assert_allclose(res.values.sum(axis=1) + res.base_values, logit, atol=1e-6)
    assert res.output == "log-odds"


@pytest.mark.parametrize("kind", ["nb", "knn"])
def test_kernel_shap_adds_up_for_model_agnostic_kinds(models, data, kind):
    X, _ = data
    m = models[kind]
    res = shap_explain(m, X.iloc[:3], background=X, max_background=20)
    assert res.explainer == "KernelExplainer"
    np.testing.assert_allclose(res.values.sum(axis=1) + res.base_values,
                               m.predict_proba(X.iloc[:3])[:, 1], atol=1e-6)


def test_global_summary_writes_png_and_table(models, data, tmp_path):
    X, _ = data
    s = shap_summary(models["rf"], X, tmp_path)
    assert Path(s["png"]).read_bytes()[:4] == b"\x89PNG"
    table = pd.read_csv(s["csv"])
    assert sorted(table["feature"]) == sorted(X.columns)
    assert table["mean_abs_shap"].is_monotonic_decreasing
    # S2: with follow-up time in the data, time is among the strongest features
    assert "time" in table["feature"].head(3).tolist()


def test_per_record_shap(models, data):
    X, _ = data
    r = shap_record(models["rf"], X, 5)
    assert r["prediction"] == pytest.approx(models["rf"].predict_proba(X.loc[[5]])[0, 1],
                                            abs=1e-6)
    mags = [abs(c["shap"]) for c in r["contributions"]]
    assert mags == sorted(mags, reverse=True) and len(mags) == 12
    with pytest.raises(TabularModelError, match="row 999"):
        shap_record(models["rf"], X, 999)


def test_lime_patient_5_writes_png_and_json(models, data, tmp_path):
    X, _ = data
    r = lime_explain(models["rf"], X, 5, out_dir=tmp_path, num_samples=1000)
    assert Path(r["png"]).read_bytes()[:4] == b"\x89PNG"
    saved = json.loads(Path(r["json"]).read_text())
    assert saved["row"] == 5 and saved["weights"] == r["weights"]
    assert 1 <= len(r["weights"]) <= 10
    assert all(isinstance(w["weight"], float) and w["condition"] for w in r["weights"])
    assert r["values"]["serum_creatinine"] == X.loc[5, "serum_creatinine"]
    # the local surrogate tracks the model near the row (LIME's own fit quality is in "score")
    assert abs(r["local_prediction"] - r["probabilities"]["1"]) < 0.35
    # S2: serum creatinine above 1.40 pushes patient 5 towards death
    sc = [w for w in r["weights"] if "serum_creatinine" in w["condition"]]
    assert sc and sc[0]["weight"] > 0


def test_importing_the_module_does_not_import_shap_or_lime():
    code = ("import sys, detak.explain.tabular\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'shap', 'lime', 'torch'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
