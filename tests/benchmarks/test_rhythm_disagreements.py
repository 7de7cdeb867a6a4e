"""benchmarks/rhythm_disagreements.py: which disagreements are found, ranked and picked."""

from __future__ import annotations

import pytest
import rhythm_disagreements as dis

THR = {"SR": 0.4, "AFIB": 0.1, "SBRAD": 0.55}


def _lines(n):
    return [{"ecg_id": i, "statements": {}} for i in range(n)]


def test_only_the_side_that_finds_a_class_alone_is_a_disagreement():
    probs = {"SR": [0.9, 0.9, 0.9, 0.1], "AFIB": [0.05, 0.5, 0.05, 0.9],
             "SBRAD": [0.0, 0.0, 0.9, 0.0]}
    codes = [["SR"], ["SR"], ["SBRAD"], ["AFIB"]]
    ds = dis.disagreements(_lines(4), probs, THR, codes)
    # record 0: both say SR only; 2: both SBRAD; 3: both AFIB -> only record 1 disagrees
    assert [(d.ecg_id, d.code, d.direction, d.strength) for d in ds] == [
        (1, "AFIB", "classifier only", 0.5)]


def test_rules_only_strength_is_one_minus_p_and_sr_is_never_the_class():
    probs = {"SR": [0.0], "AFIB": [0.02], "SBRAD": [0.3]}
    ds = dis.disagreements(_lines(1), probs, THR, [["AFIB", "SBRAD"]])
    assert ds[0].code == "AFIB" and ds[0].direction == "rules only" and ds[0].strength == 0.98
    # SR found by the classifier alone (0.9 >= 0.4) is not counted
    assert dis.disagreements(_lines(1), {"SR": [0.9], "AFIB": [0.0], "SBRAD": [0.0]}, THR,
                             [[]]) == []


def test_pick_caps_each_class_and_direction():
    mk = [dis.Disagreement(i, c, "rules only", s, [], {}, {}) for i, (c, s) in
          enumerate([("AFIB", 0.99), ("AFIB", 0.98), ("AFIB", 0.97), ("SBRAD", 0.5)])]
    assert [d.ecg_id for d in dis.pick(mk, 3, 2)] == [0, 1, 3]
    assert [d.ecg_id for d in dis.pick(mk, 2, 1)] == [0, 3]


def test_a_missing_threshold_class_is_a_key_error_not_a_silent_skip():
    with pytest.raises(KeyError):
        dis.disagreements(_lines(1), {"PACE": [0.9]}, THR, [[]])


def test_the_index_says_when_no_one_has_looked():
    d = dis.Disagreement(7, "AFIB", "classifier only", 0.9, ["SR"], {"AFIB": 0.9, "SR": 0.1},
                         {"AFIB": 0.0})
    from collections import Counter

    facts = {"records": 10, "disagreeing": 1, "model": "m", "kinds": Counter(
        {("AFIB", "classifier only"): 1})}
    text = dis.index([d], facts, {}, "prov")
    assert "| [7](7.png) | AFIB | SR | AFIB 0.90, SR 0.10 |" in text
    assert "(not looked at yet)" in text
    assert "irregular" in dis.index([d], facts, {"7": "irregular"}, "prov")
