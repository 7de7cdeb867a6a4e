"""benchmarks/rhythm_cnn.py's metric code on synthetic scores: the AF threshold rule, the
paired bootstrap's sign, the elderly subset and the table."""

import numpy as np
import pytest
import rhythm_cnn as rc

CLASSES = ["SR", "AFIB", "PACE"]


def _data(n=400, seed=1):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, 3)) < [0.7, 0.15, 0.05]).astype(int)
    y[:3, 2] = 1                                       # every class has positives
    good = np.clip(y * 0.6 + rng.normal(0.2, 0.12, y.shape), 0, 1)
    poor = np.clip(y * 0.25 + rng.normal(0.3, 0.2, y.shape), 0, 1)
    patients = np.arange(n) // 2                       # two records per patient
    elderly = rng.random(n) < 0.5
    return y, good, poor, patients, elderly


def test_af_threshold_reaches_the_specificity_on_the_training_scores():
    rng = np.random.default_rng(0)
    y = rng.random(500) < 0.2
    p = np.clip(y * 0.5 + rng.random(500) * 0.6, 0, 1)
    t = rc.af_threshold(p, y, 0.97)
    assert (p[~y] < t).mean() >= 0.97
    lower = p[p < t].max()                             # the next score below: too unspecific
    assert (p[~y] < lower).mean() < 0.97


def test_compare_finds_the_better_model_with_a_paired_interval():
    y, good, poor, patients, elderly = _data()
    r = rc.compare(y, good, poor, CLASSES, patients, elderly, {"cnn": 0.5, "hgb": 0.5},
                   n_boot=200)
    assert r["n"] == 400 and r["patients"] == 200 and r["elderly"] == int(elderly.sum())
    d = r["af_auc_diff"]
    assert 0 < d["low"] <= d["diff"] <= d["high"]
    assert d["diff"] == pytest.approx(r["auc"]["cnn"]["AFIB"] - r["auc"]["hgb"]["AFIB"],
                                      abs=2e-4)
    # swapped roles: the same interval mirrored
    s = rc.compare(y, poor, good, CLASSES, patients, elderly, {"cnn": 0.5, "hgb": 0.5},
                   n_boot=200)
    assert s["af_auc_diff"]["diff"] == pytest.approx(-d["diff"], abs=1e-9)
    assert s["af_auc_diff"]["high"] < 0
    af = r["af"]["cnn"]
    assert af["all"]["sensitivity_ci"][0] <= af["all"]["sensitivity"] <= \
        af["all"]["sensitivity_ci"][1]
    assert af["elderly"]["n"] == int(elderly.sum())
    # identical models: no difference at all
    same = rc.compare(y, good, good, CLASSES, patients, elderly, {"cnn": 0.5, "hgb": 0.5},
                      n_boot=50)
    assert same["af_auc_diff"] == {"diff": 0.0, "low": 0.0, "high": 0.0}


def test_thresholds_change_sensitivity_and_specificity_only():
    y, good, poor, patients, elderly = _data()
    lo = rc.compare(y, good, poor, CLASSES, patients, elderly, {"cnn": 0.1, "hgb": 0.5},
                    n_boot=20)
    hi = rc.compare(y, good, poor, CLASSES, patients, elderly, {"cnn": 0.9, "hgb": 0.5},
                    n_boot=20)
    assert lo["af"]["cnn"]["all"]["sensitivity"] > hi["af"]["cnn"]["all"]["sensitivity"]
    assert lo["af"]["cnn"]["all"]["specificity"] < hi["af"]["cnn"]["all"]["specificity"]
    assert lo["auc"] == hi["auc"]


def test_view_table_lists_every_class_and_both_models():
    y, good, poor, patients, elderly = _data()
    r = rc.compare(y, good, poor, CLASSES, patients, elderly, {"cnn": 0.5, "hgb": 0.4},
                   n_boot=20)
    text = "\n".join(rc.view_tables("II", r, CLASSES))
    for c in CLASSES:
        assert f"| {c} |" in text
    assert "| int8 CNN | 0.5000 |" in text and "| gradient-boosted | 0.4000 |" in text
    assert "AF AUC +" in text and "lead II" in text


def test_verdict_reads_the_intervals():
    y, good, poor, patients, elderly = _data()
    better = rc.verdict("12lead", rc.compare(y, good, poor, CLASSES, patients, elderly,
                                             {"cnn": 0.5, "hgb": 0.5}, n_boot=100), CLASSES)
    assert "AF: the int8 CNN is better" in better[0]
    worse = rc.verdict("II", rc.compare(y, poor, good, CLASSES, patients, elderly,
                                        {"cnn": 0.5, "hgb": 0.5}, n_boot=100), CLASSES)
    assert "AF: the gradient-boosted classifier is better" in worse[0]
    assert "CNN lower on" in worse[2] and "AFIB" in worse[2]
    same = rc.verdict("II", rc.compare(y, good, good, CLASSES, patients, elderly,
                                       {"cnn": 0.5, "hgb": 0.5}, n_boot=20), CLASSES)
    assert "no difference" in same[0] and same[2].endswith("none.")


def test_assessment_follows_the_intervals():
    tie = {"af_auc_diff": {"low": -0.01, "high": 0.01},
           "macro_auc_diff": {"low": -0.08, "high": -0.02}}
    worse = {"af_auc_diff": {"low": -0.03, "high": -0.01},
             "macro_auc_diff": {"low": -0.08, "high": -0.02}}
    better = {"af_auc_diff": {"low": 0.001, "high": 0.02},
              "macro_auc_diff": {"low": -0.01, "high": 0.01}}
    assert "level with" in rc.assessment({"12lead": tie, "II": tie})[0]
    text = rc.assessment({"12lead": tie, "II": worse})[0]
    assert text.startswith("Not worth shipping") and "below 0 on lead II" in text
    assert rc.assessment({"12lead": better, "II": tie})[0].startswith(
        "Worth a closer look: the int8 CNN is better for AF on 12 leads")
