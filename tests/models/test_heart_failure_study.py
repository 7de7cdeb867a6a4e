"""S2 on the real heart-failure records: CV figures in a sane range, the time leak visible,
files written; evaluation errors named."""

import numpy as np
import pytest

from detak.models.evaluation import EvaluationError, cross_validate, holdout
from detak.models.heart_failure_study import run_study


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("hf")
    return out, run_study(out, kinds=("rf", "lr", "dt"))


def test_s2_figures_are_in_a_sane_range(study):
    _, res = study
    rf = res["with_time"]["rf"]["cv"]
    # S2: RF accuracy 0.833, AUC 0.90 with time; allow for a different split and seed
    assert rf["roc_auc_mean"] > 0.8
    assert 0.75 < rf["accuracy_mean"] < 0.92
    assert 0 < rf["roc_auc_sd"] < 0.15 and len(rf["per_fold"]["roc_auc"]) == 5
    # follow-up time leaks the outcome: every model does better with it
    for kind in ("rf", "lr", "dt"):
        assert (res["with_time"][kind]["cv"]["roc_auc_mean"]
                > res["without_time"][kind]["cv"]["roc_auc_mean"])
    # without time the models still carry signal (S2's creatinine/ejection fraction)
    assert res["without_time"]["rf"]["cv"]["roc_auc_mean"] > 0.65


def test_holdout_confusion_is_consistent(study):
    _, res = study
    h = res["with_time"]["rf"]["holdout"]
    cm = np.array(h["confusion"])
    assert cm.sum() == h["n_test"] == 60 and h["n_train"] == 239
    assert cm.sum(axis=1).tolist() == [41, 19]  # stratified: 203/96 of 299
    assert h["accuracy"] == pytest.approx(np.trace(cm) / cm.sum())
    assert h["recall"] == pytest.approx(cm[1, 1] / cm[1].sum())


def test_study_writes_table_json_and_roc_plots(study):
    out, _ = study
    for name in ("heart_failure.json", "heart_failure.md", "roc_with_time.png",
                 "roc_without_time.png"):
        assert (out / name).stat().st_size > 0
    assert (out / "roc_with_time.png").read_bytes()[:4] == b"\x89PNG"
    md = (out / "heart_failure.md").read_text()
    assert "| with | rf |" in md and "| without | dt |" in md


def test_evaluation_names_too_small_classes():
    X = np.arange(20, dtype=float)[:, None]
    y = np.array([0] * 17 + [1] * 3)
    with pytest.raises(EvaluationError, match=r"at least 5 rows per class.*1 \(3\)"):
        cross_validate("nb", X, y, cv=5)
    with pytest.raises(EvaluationError, match="only one class"):
        holdout("nb", X, np.zeros(20, int))
