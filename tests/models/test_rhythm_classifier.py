"""The shipped rhythm classifier: contract keys, probabilities, AF separated on real PTB-XL
records of the training folds, a missing model, bad input."""

from __future__ import annotations

import json
import math
import shutil
import warnings

import pytest

from detak.models import rhythm_classifier as rc
from detak.models.rhythm_classifier import (
    FEATURES,
    RhythmClassifierError,
    feature_vector,
    load_model,
    model_path,
    predict_findings,
    predict_proba,
)
from detak.models.rhythm_rules import URGENCY_LEVELS

URGENCIES = set(URGENCY_LEVELS)  # the rules' (and the kiosk's) level names


def _features(rec):
    from detak.signal.intervals import measure_intervals
    from detak.signal.quality import assess_quality
    from detak.signal.rhythm import rhythm_features

    warnings.simplefilter("ignore")
    q = assess_quality(rec)
    assert not q.rejected
    return (rhythm_features(rec, beats=q.beats).to_dict(),
            measure_intervals(rec, beats=q.beats).to_dict())


@pytest.fixture(scope="module")
def shipped():
    path = model_path("12lead")
    if not path.is_file():
        pytest.fail(f"the 12-lead rhythm model is not shipped ({path})")
    return load_model(path)


@pytest.fixture(scope="module")
def records():
    """The first fold-1 record stated AFIB (likelihood 100) and the first fold-1 record stated
    NORM and SR only (training records: the model has seen them, the test checks it learnt)."""
    from detak.data.ptbxl import open_ptbxl

    db = open_ptbxl()
    m = db.metadata
    f1 = m[m["strat_fold"] == 1]
    af_id = int(f1.index[f1["scp_codes"].map(lambda c: c.get("AFIB") == 100.0)][0])
    sr_id = int(f1.index[f1["scp_codes"].map(lambda c: set(c) == {"NORM", "SR"})][0])
    return {"af": db.record(af_id), "sr": db.record(sr_id)}


@pytest.fixture(scope="module")
def af_and_sinus(records):
    """Their 12-lead features and intervals."""
    return {k: _features(rec) for k, rec in records.items()}


@pytest.mark.parametrize("view", ["II", "I"])
def test_single_lead_models_rank_af_above_sinus(view, records):
    path = model_path(view)
    if not path.is_file():
        pytest.fail(f"the {view} rhythm model is not shipped ({path})")
    model = load_model(path)
    assert model.card["view"] == view
    p = {}
    for k, rec in records.items():
        feats, iv = _features(rec.select([view]))
        p[k] = predict_proba(feats, view=view, intervals=iv, model=model)["AFIB"]
    assert p["af"] > p["sr"]


def test_card_is_small_and_names_its_data(shipped):
    card = shipped.card
    assert model_path("12lead").stat().st_size < 2_000_000
    assert card["view"] == "12lead" and card["features"] == list(FEATURES)
    assert 10 not in [int(k) for k in card["training_data"]["source"]]
    assert card["selection_data"]["fold"] == 9
    assert "AFIB" in card["classes"] and card["command"].startswith(".venv/bin/python tools/")
    for cls in card["classes"]:
        m = card["metrics"][cls]["fold9"]
        assert m["positives"] > 0 and 0 <= m["sensitivity"] <= 1
    for cls, why in card["left_to_rules"].items():
        assert cls not in card["classes"] and why["train_positives"] < 30


def test_af_record_scores_above_sinus_record(shipped, af_and_sinus):
    (af_f, af_iv), (sr_f, sr_iv) = af_and_sinus["af"], af_and_sinus["sr"]
    p_af = predict_proba(af_f, view="12lead", intervals=af_iv, model=shipped)["AFIB"]
    p_sr = predict_proba(sr_f, view="12lead", intervals=sr_iv, model=shipped)["AFIB"]
    assert p_af > p_sr
    codes = [f["code"] for f in predict_findings(af_f, view="12lead", intervals=af_iv,
                                                 model=shipped)]
    assert "AFIB" in codes
    assert "AFIB" not in [f["code"] for f in predict_findings(sr_f, view="12lead",
                                                              intervals=sr_iv, model=shipped)]


def test_findings_follow_the_contract(shipped, af_and_sinus):
    feats, iv = af_and_sinus["af"]
    found = predict_findings(feats, view="12lead", intervals=iv, all_classes=True,
                             model=shipped)
    assert [f["code"] for f in found] and {f["code"] for f in found} == set(shipped.classes)
    probs = [f["probability"] for f in found]
    assert probs == sorted(probs, reverse=True)
    for f in found:
        assert f["source"] == "classifier" and 0.0 <= f["probability"] <= 1.0
        assert f["urgency"] in URGENCIES
        assert f["reasons"] and all(r["en"] and r["id"] for r in f["reasons"])
    top = found[0]
    if top["probability"] >= top["threshold"]:      # named features with their values
        assert top["top_features"] and any(ch.isdigit() for ch in top["reasons"][-1]["en"])
    json.dumps(found, allow_nan=False)


def test_shipped_model_loads_through_predict_findings(af_and_sinus):
    feats, _ = af_and_sinus["af"]
    rc._shipped.cache_clear()
    found = predict_findings(feats, view="12lead")      # no intervals: still answers
    assert all(f["source"] == "classifier" for f in found)


def test_missing_model_gives_no_findings(tmp_path, monkeypatch, af_and_sinus):
    monkeypatch.setattr(rc, "WEIGHTS_DIR", tmp_path)
    rc._shipped.cache_clear()
    try:
        assert predict_findings(af_and_sinus["af"][0], view="II") == []
        assert predict_proba(af_and_sinus["af"][0], view="12lead") == {}
    finally:
        rc._shipped.cache_clear()
    assert predict_findings(af_and_sinus["af"][0], view="V7") == []


def test_model_file_not_matching_its_card_is_refused(tmp_path, shipped):
    src = model_path("12lead")
    dst = tmp_path / src.name
    shutil.copy(src, dst)
    card = json.loads(src.with_suffix(".json").read_text())
    card["model_file"]["sha256"] = "0" * 64
    dst.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(RhythmClassifierError, match="SHA-256"):
        load_model(dst)


@pytest.mark.parametrize("bad, match", [
    ([1, 2, 3], "must be a mapping"),
    ({"values": {"unrelated": 1.0}}, "none of the rhythm features"),
    ({"values": {"nrmssd": "irregular"}}, "'nrmssd' is 'irregular'"),
    ({"values": [0.1, 0.2]}, "'values' must be a mapping"),
])
def test_bad_input_is_named(bad, match, shipped):
    with pytest.raises(RhythmClassifierError, match=match):
        predict_findings(bad, view="12lead", model=shipped)


def test_missing_keys_and_nan_are_missing_features(shipped, af_and_sinus):
    feats, iv = af_and_sinus["af"]
    values = dict(feats["values"])
    values.pop("cosen")
    values["nrmssd"] = float("nan")
    values["fwave_band_ratio"] = None
    x = feature_vector({"values": values}, {"qrs_ms": float("inf")})
    for name in ("cosen", "nrmssd", "fwave_band_ratio", "iv_qrs_ms", "iv_pr_ms"):
        assert math.isnan(x[FEATURES.index(name)])
    probs = predict_proba({"values": values}, view="12lead", model=shipped)
    assert probs and all(0.0 <= p <= 1.0 for p in probs.values())


def test_cache_line_is_accepted_as_input(shipped, af_and_sinus):
    feats, iv = af_and_sinus["af"]
    line = {"ecg_id": 1, "features": feats, "intervals": iv}
    a = predict_proba(line, view="12lead", model=shipped)
    b = predict_proba(feats, view="12lead", intervals=iv, model=shipped)
    assert a == b


def test_classifier_does_not_import_torch():
    from tests.test_imports import _run

    body = ("from detak.data.samples import load_sample\n"
            "from detak.signal.rhythm import rhythm_features\n"
            "from detak.models.rhythm_classifier import predict_findings\n"
            "feats = rhythm_features(load_sample('ludb-1')).to_dict()\n"
            "assert isinstance(predict_findings(feats, view='12lead'), list)\n"
            "import sklearn.ensemble\n")
    assert _run(body) == ""


def test_a_record_without_rr_series_gets_no_classifier_finding(shipped):
    from detak.data.samples import load_sample
    from detak.signal.rhythm import rhythm_features

    rec = load_sample("ludb-1")
    short = rec.replace(signal=rec.signal[:, : int(2.5 * rec.fs)])     # ~2 beats
    feats = rhythm_features(short, check_quality=False).to_dict()
    assert feats["values"]["mean_rr_ms"] is None
    assert predict_findings(feats, view="12lead", model=shipped) == []
    assert predict_findings(feats, view="12lead", model=shipped, all_classes=True) == []
