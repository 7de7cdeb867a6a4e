"""detak.models.tabular: factory, save/load round trips, model card, neighbour table, kiosk
imports."""

import hashlib
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from detak.data.heart_failure import default_path, load_heart_failure, split_xy
from detak.models.tabular import (
    KINDS,
    MissingFeatureError,
    ModelFileError,
    TabularModel,
    TabularModelError,
    UnknownModelKindError,
    load_model,
    make_model,
)


@pytest.fixture(scope="module")
def hf():
    X, y = split_xy(load_heart_failure(), with_time=False)
    return X, y


def test_unknown_kind_and_bad_param_are_named():
    with pytest.raises(UnknownModelKindError, match="'svm'"):
        make_model("svm")
    with pytest.raises(TabularModelError, match="n_trees"):
        make_model("rf", n_trees=3)


def test_factory_follows_the_studies():
    knn = make_model("knn", k=3)
    assert type(knn.named_steps["scale"]).__name__ == "MinMaxScaler"
    assert knn.named_steps["model"].metric == "euclidean"
    assert knn.named_steps["model"].n_neighbors == 3
    assert make_model("dt").named_steps["model"].criterion == "entropy"
    for kind in ("nb", "dt", "rf", "lr"):
        pipe = make_model(kind)
        assert type(pipe.named_steps["scale"]).__name__ == "StandardScaler"
        assert pipe.named_steps["impute"].strategy == "mean"


@pytest.mark.parametrize("kind", KINDS)
def test_save_load_round_trip_gives_the_same_predictions(tmp_path, hf, kind):
    X, y = hf
    m = TabularModel.train(kind, X, y, name=f"hf-{kind}", description="heart failure",
                           source=str(default_path()))
    path = m.save(tmp_path)
    assert path == tmp_path / f"hf-{kind}.joblib" and (tmp_path / f"hf-{kind}.json").is_file()
    loaded = load_model(tmp_path / f"hf-{kind}.json")
    np.testing.assert_array_equal(loaded.predict_proba(X), m.predict_proba(X))
    # one-row path (the RF fast path) agrees with scikit-learn's own pipeline
    for i in (0, 5, 100):
        row = X.iloc[i].to_dict()
        got = loaded.predict(row)
        want = m.pipeline.predict_proba(X.to_numpy(float)[i:i + 1])[0]
        np.testing.assert_allclose(list(got["probabilities"].values()), want, atol=1e-12)
        assert got["label"] == m.classes[int(np.argmax(want))]
    assert loaded.features == tuple(X.columns) and loaded.classes == (0, 1)


def test_model_card_fields_and_hashes(tmp_path, hf):
    X, y = hf
    src = default_path()
    src_hash = hashlib.sha256(src.read_bytes()).hexdigest()
    m = TabularModel.train("lr", X, y, name="hf-lr", description="heart failure, no time",
                           source=str(src), source_sha256=src_hash,
                           metrics={"cv": {"auc_mean": 0.8}}, seed=3)
    m.save(tmp_path)
    card = json.loads((tmp_path / "hf-lr.json").read_text())
    assert card["features"] == list(X.columns)
    assert card["classes"] == [0, 1]
    td = card["training_data"]
    assert td["source_sha256"] == src_hash
    assert td["rows"] == 299 and td["class_counts"] == {"0": 203, "1": 96}
    assert card["metrics"] == {"cv": {"auc_mean": 0.8}} and card["seed"] == 3
    import sklearn

    assert card["versions"]["scikit-learn"] == sklearn.__version__
    assert card["versions"]["numpy"] == np.__version__
    assert card["versions"]["python"].count(".") == 2 and card["created"]
    assert card["model_file"]["sha256"] == hashlib.sha256(
        (tmp_path / "hf-lr.joblib").read_bytes()).hexdigest()
    # the rows hash follows the data: one flipped label changes it, same data keeps it
    y2 = y.copy()
    y2.iloc[0] = 1 - y2.iloc[0]
    other = TabularModel.train("lr", X, y2, name="x", description="x")
    same = TabularModel.train("lr", X, y, name="x", description="x")
    assert other.card["training_data"]["rows_sha256"] != td["rows_sha256"]
    assert same.card["training_data"]["rows_sha256"] == td["rows_sha256"]


def test_load_rejects_missing_or_mismatched_files(tmp_path, hf):
    X, y = hf
    with pytest.raises(ModelFileError, match="does not exist"):
        load_model(tmp_path / "nothing.joblib")
    TabularModel.train("nb", X, y, name="a", description="a").save(tmp_path / "a")
    TabularModel.train("lr", X, y, name="b", description="b").save(tmp_path / "b")
    (tmp_path / "a" / "a.joblib").write_bytes((tmp_path / "b" / "b.joblib").read_bytes())
    with pytest.raises(ModelFileError, match="not a pair"):
        load_model(tmp_path / "a")


def test_rows_with_missing_or_bad_features(hf):
    X, y = hf
    m = TabularModel.train("nb", X, y, name="nb", description="x")
    row = X.iloc[0].to_dict()
    del row["serum_creatinine"]
    with pytest.raises(MissingFeatureError, match="serum_creatinine"):
        m.predict(row)
    with pytest.raises(TabularModelError, match="'age'.*'old'"):
        m.predict({**X.iloc[0].to_dict(), "age": "old"})
    with pytest.raises(TabularModelError, match="no value"):
        m.predict(dict.fromkeys(X.columns))
    out = m.predict({**X.iloc[0].to_dict(), "age": None, "extra": 1})
    assert out["imputed"] == ["age"]


def test_knn_neighbour_table_matches_a_hand_computation():
    X = pd.DataFrame({"pr_ms": [150.0, 210.0, 170.0, 260.0, 240.0, np.nan],
                      "qrs_ms": [90.0, 100.0, 130.0, 96.0, 140.0, 110.0]},
                     index=[11, 12, 13, 14, 15, 16])
    y = ["N", "AV", "BBB", "AV", "BBB", "N"]
    m = TabularModel.train("knn", X, y, name="toy", description="toy", k=4)
    query = {"pr_ms": 230.0, "qrs_ms": None}
    # by hand: impute with the training mean, min-max scale with training min/max
    raw = X.to_numpy()
    filled = np.where(np.isnan(raw), np.nanmean(raw, axis=0), raw)
    lo, hi = filled.min(axis=0), filled.max(axis=0)
    q = np.array([230.0, np.nanmean(raw[:, 1])])
    d = np.sqrt((((filled - lo) / (hi - lo) - (q - lo) / (hi - lo)) ** 2).sum(axis=1))
    order = np.argsort(d, kind="stable")[:4]
    table = m.neighbours(query)
    assert [n["rank"] for n in table] == [1, 2, 3, 4]
    assert [n["index"] for n in table] == [int(X.index[i]) for i in order]
    assert [n["label"] for n in table] == [y[i] for i in order]
    np.testing.assert_allclose([n["distance"] for n in table], d[order], atol=1e-12)
    assert all(a["distance"] <= b["distance"] for a, b in zip(table, table[1:], strict=False))
    # raw values are reported, missing stays missing
    by_index = {n["index"]: n for n in m.neighbours(query, k=6)}
    assert by_index[16]["values"] == {"pr_ms": None, "qrs_ms": 110.0}
    assert len(m.neighbours(query, k=2)) == 2
    # the vote of the table is the prediction
    votes = pd.Series([n["label"] for n in table]).value_counts(normalize=True)
    assert m.predict(query)["probabilities"]["AV"] == pytest.approx(votes.get("AV", 0.0))
    with pytest.raises(TabularModelError, match="KNN"):
        TabularModel.train("nb", X, y, name="nb", description="x").neighbours(query)


def test_kiosk_path_imports_no_torch_shap_or_lime(tmp_path, hf):
    X, y = hf
    for kind in KINDS:
        TabularModel.train(kind, X, y, name=f"m-{kind}", description="x").save(tmp_path)
    row = {k: float(v) for k, v in X.iloc[5].items()}
    code = f"""
import sys
from detak.models.tabular import load_model
for kind in {KINDS!r}:
    m = load_model({str(tmp_path)!r} + f"/m-{{kind}}.joblib")
    out = m.predict({row!r})
    assert out["label"] in (0, 1), out
assert len(load_model({str(tmp_path)!r} + "/m-knn.json").neighbours({row!r})) == 5
bad = sorted({{n.split(".")[0] for n in sys.modules}} & {{"torch", "shap", "lime", "captum"}})
print("IMPORTED:" + ",".join(bad))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "IMPORTED:"
    # the check can fail: shap and lime are installed in the test environment
    import importlib.util

    assert all(importlib.util.find_spec(n) for n in ("torch", "shap", "lime"))


# -- file format detak-tabular/2, RF defaults, one-thread KNN (kiosk budget) -----------------


def _rewrite(path, payload):
    """Write ``payload`` with joblib to ``path`` and make the card's hash match it."""
    import joblib

    joblib.dump(payload, path)
    card_path = path.with_suffix(".json")
    card = json.loads(card_path.read_text())
    card["model_file"]["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    card_path.write_text(json.dumps(card))


def test_unreadable_or_foreign_model_files_are_named(tmp_path, hf):
    X, y = hf
    path = TabularModel.train("nb", X, y, name="nb", description="x").save(tmp_path)
    _rewrite(path, {"format": "someone-else/9", "objects": b""})
    with pytest.raises(ModelFileError, match="'someone-else/9'"):
        load_model(path)
    _rewrite(path, {"format": "detak-tabular/2", "features": ["a"], "classes": [0, 1],
                    "kind": "nb", "objects": b"not a pickle"})
    with pytest.raises(ModelFileError, match="'objects' pickle does not load"):
        load_model(path)
    path.write_bytes(b"garbage")
    with pytest.raises(ModelFileError, match="not readable as a joblib file"):
        load_model(path, verify=False)


def test_joblib_layer_holds_no_estimator_objects(tmp_path, hf):
    """The Pipeline goes through the C unpickler, not joblib's pure-Python one (the forest's
    load time): joblib's layer is a dict of plain values with the objects as pickle bytes."""
    import joblib

    X, y = hf
    path = TabularModel.train("rf", X, y, name="rf", description="x").save(tmp_path)
    payload = joblib.load(path)
    assert payload["format"] == "detak-tabular/2"
    assert isinstance(payload["objects"], bytes)
    assert all(isinstance(v, (str, list, bytes)) for v in payload.values())
    assert all(isinstance(c, (int, str)) for c in payload["classes"])


def test_models_saved_in_the_first_format_still_load(tmp_path, hf):
    X, y = hf
    m = TabularModel.train("knn", X, y, name="old", description="x", k=3)
    path = m.save(tmp_path)
    _rewrite(path, {"format": "detak-tabular/1", "pipeline": m.pipeline,
                    "features": list(m.features), "classes": list(m.classes), "kind": "knn",
                    "train_values": m.train_values, "train_ids": m.train_ids,
                    "train_labels": m.train_labels})
    old = load_model(path)
    np.testing.assert_array_equal(old.predict_proba(X), m.predict_proba(X))
    row = X.iloc[7].to_dict()
    assert old.neighbours(row) == m.neighbours(row)


def test_forest_defaults_and_the_card_records_the_effective_parameters(hf):
    X, y = hf
    rf = make_model("rf").named_steps["model"]
    assert (rf.n_estimators, rf.min_samples_leaf) == (30, 5)  # benchmarks/tabular_latency.py
    m = TabularModel.train("rf", X, y, name="rf", description="x")
    assert m.card["estimator"]["class"] == "RandomForestClassifier"
    assert m.card["estimator"]["params"]["n_estimators"] == len(m.pipeline[-1].estimators_)
    m7 = TabularModel.train("rf", X, y, name="rf", description="x", n_estimators=7)
    assert m7.card["params"] == {"n_estimators": 7}
    assert m7.card["estimator"]["params"]["n_estimators"] == 7
    assert m7.card["estimator"]["params"]["min_samples_leaf"] == 5
    assert json.loads(json.dumps(m7.card)) == m7.card  # JSON-ready


def test_one_row_knn_runs_on_one_openmp_thread_and_restores_the_pool(hf, monkeypatch):
    from threadpoolctl import threadpool_info

    import detak.models.tabular as tab

    def openmp_threads():
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "openmp"]

    X, y = hf
    m = TabularModel.train("knn", X, y, name="knn", description="x")
    before = openmp_threads()
    assert before, "scikit-learn's OpenMP runtime should be loaded (else nothing is tested)"
    seen = []
    real = m._est.predict_proba

    def spy(Z):
        seen.append(openmp_threads())
        return real(Z)

    monkeypatch.setattr(m._est, "predict_proba", spy)
    row = X.iloc[3].to_dict()
    one = m.predict(row)["probabilities"]
    assert seen == [[1] * len(before)]
    assert openmp_threads() == before
    m.predict_proba(X.to_numpy(float))  # a batch keeps every thread
    assert seen[-1] == before
    want = m.pipeline.predict_proba(X.to_numpy(float)[3:4])[0]
    np.testing.assert_array_equal(list(one.values()), want)
    assert tab._OPENMP is not None
