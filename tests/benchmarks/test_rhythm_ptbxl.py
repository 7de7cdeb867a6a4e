"""benchmarks/rhythm_ptbxl.py: the metrics, the subsample weights, the classifier switch."""

from __future__ import annotations

import sys
import types

import rhythm_ptbxl as bench


def _raw(ecg_id, statements, values):
    return {"ecg_id": ecg_id, "fold": 9, "age": 70.0, "statements": statements,
            "features": {"values": values, "reasons": {}}, "error": None}


AF = {"n_beats": 12, "ventricular_rate_bpm": 90.0, "mean_rr_ms": 660.0,
      "petrenas_irregularity": 0.2, "rr_irregularity": 0.2, "p_wave_template": False,
      "p_present_fraction": 0.0}
SR = {**AF, "petrenas_irregularity": 0.01, "rr_irregularity": 0.01, "p_wave_template": True,
      "p_present_fraction": 1.0}


def test_counts_sens_spec_ppv_f1_with_weights():
    rows, errors = bench.score([_raw(1, {"AFIB": 0.0}, AF), _raw(2, {"SR": 0.0}, SR),
                                _raw(3, {"SR": 0.0}, AF), _raw(4, {"AFIB": 0.0}, SR),
                                {"ecg_id": 5, "fold": 9, "statements": {}, "features": None,
                                 "error": "boom"}], "12lead", ["rules"])
    assert errors == 1
    c = bench.counts(rows, "rules", "AFIB")
    assert (c.tp, c.fp, c.fn, c.tn) == (1, 1, 1, 1)
    assert (c.sens, c.spec, c.ppv, c.f1) == (0.5, 0.5, 0.5, 0.5)
    rows[1].weight = 3.0                       # an SR-only record standing for 3
    assert bench.counts(rows, "rules", "AFIB").spec == 0.75
    assert bench.verdict(c, (0.5, 0.5)) == "PASS" and bench.verdict(c, (0.51, 0.5)) == "FAIL"


def test_prc_s_counts_pac_statements_and_sr_only_is_the_subsampled_stratum():
    assert bench.Row(1, 9, None, {"PAC": 0.0}, {}).states("PRC(S)")
    assert bench.sr_only({"SR": 0.0, "NORM": 100.0})
    assert not bench.sr_only({"SR": 0.0, "1AVB": 100.0})
    assert not bench.sr_only({"SR": 0.0, "SARRH": 0.0})


def test_the_classifier_is_scored_when_importable(monkeypatch):
    mod = types.ModuleType("detak.models.rhythm_classifier")
    seen = []

    def predict_findings(features, *, view):
        seen.append(view)
        return [{"code": "AFIB", "source": "classifier", "probability": 0.9, "urgency":
                 "refer today", "reasons": []}]

    mod.predict_findings = predict_findings
    monkeypatch.setitem(sys.modules, "detak.models.rhythm_classifier", mod)
    rows, _ = bench.score([_raw(2, {"SR": 0.0}, SR)], "II", ["classifier"])
    assert seen == ["II"] and rows[0].found("classifier", "AFIB")
    assert not rows[0].found("rules", "AFIB")


def test_fold_10_is_refused():
    import pytest

    with pytest.raises(SystemExit, match="fold 10"):
        bench._parse_folds("9-10")


def test_af_failures_counts_misses_by_rule_and_false_af_by_reference():
    rows, _ = bench.score([_raw(1, {"AFIB": 0.0}, SR), _raw(2, {"AFIB": 0.0}, SR),
                           _raw(3, {"SR": 0.0, "PVC": 0.0}, AF), _raw(4, {"AFIB": 0.0}, AF)],
                          "12lead", ["rules"])
    miss, _, false, _ = bench.af_failures(rows)
    assert miss.startswith("AF missed (2)") and "SR (sinus): 2" in miss
    assert false.startswith("False AF (1 records") and "SR+PVC (rule af): 1" in false


def test_af_screen_threshold_is_the_lowest_keeping_the_specificity():
    import numpy as np
    import rhythm_af_screen as screen

    truth = np.array([1, 1, 0, 0, 0, 0], bool)
    rules = np.array([1, 0, 0, 0, 0, 0], bool)
    p = np.array([0.9, 0.5, 0.3, 0.12, 0.02, 0.01])
    w = np.ones(6)
    # spec >= 0.75 allows one false positive: P >= 0.15 flags 0.3 only (spec 0.75)
    assert screen.choose_threshold(rules, p, truth, w, 0.75) == 0.15
    assert screen.choose_threshold(rules, p, truth, w, 1.0) == 0.35
    assert screen.choose_threshold(rules | ~truth, p, truth, w, 0.5) is None
    # the screen is af_screen's: the rules' AF, or the classifier's flag at the toml's P
    from detak.models.rhythm_rules import rhythm_findings
    from detak.models.rules import load_ruleset

    thr = load_ruleset("clinical").rhythm.af_classifier_p_12lead
    sinus = rhythm_findings(SR)
    assert screen.screened(sinus, thr, "12lead") and not screen.screened(sinus, thr - 0.01,
                                                                         "12lead")
    assert screen.screened(rhythm_findings(AF), 0.0, "12lead")


def test_ludb_conduction_column_gives_av_blocks_and_not_first_for_third():
    st = bench.ludb_statements({"rhythm": ["Sinus rhythm"], "pacemaker": False,
                                "diagnoses": ["Conduction abnormalities: Iii degree av-block"]})
    assert st == {"SR": 0.0, "3AVB": 0.0}
    st = bench.ludb_statements({"rhythm": [], "pacemaker": True,
                                "diagnoses": ["Conduction abnormalities: I degree av block"]})
    assert st == {"PACE": 0.0, "1AVB": 0.0}
    assert bench.ludb_statements({}) == {}


def test_a_moved_threshold_moves_the_finding_on_the_same_rows():
    import rhythm_why as why

    slow = {**SR, "ventricular_rate_bpm": 55.0, "mean_rr_ms": 1090.0}
    rows, _ = bench.score([_raw(1, {"SBRAD": 0.0}, slow), _raw(2, {"SR": 0.0}, SR)],
                          "12lead", ["rules"])
    res = why.sweep(rows, "SBRAD", "brady_bpm", (50.0, 60.0))
    assert res == [(50.0, 0.0, 1.0), (60.0, 1.0, 1.0)]
    assert all("_sweep" not in r.findings for r in rows)   # the rows are left as they were
