"""detak.models.cnn_metrics on hand-computable cases and against scikit-learn."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from detak.models.cnn_metrics import (
    MetricsError,
    benchmark_metrics,
    bootstrap_macro_auc,
    fmax,
    macro_auc,
    roc_auc,
    table6_metrics,
)


def test_bad_inputs_are_named():
    with pytest.raises(MetricsError, match="shape"):
        table6_metrics(np.zeros((3, 5)), np.zeros((3, 4)))
    with pytest.raises(MetricsError, match="0/1"):
        roc_auc(np.array([0, 2]), np.array([0.1, 0.2]))
    with pytest.raises(MetricsError, match="NaN"):
        roc_auc(np.array([0, 1]), np.array([0.1, np.nan]))
    with pytest.raises(MetricsError, match="positives and negatives"):
        roc_auc(np.array([0, 0, 0]), np.array([0.1, 0.2, 0.3]))


def test_auc_by_hand_with_a_tie():
    # positives 0.8, 0.4; negatives 0.4, 0.1: pairs (0.8>0.4) (0.8>0.1) (0.4=0.4: ½) (0.4>0.1)
    assert roc_auc(np.array([1, 1, 0, 0]), np.array([0.8, 0.4, 0.4, 0.1])) == 3.5 / 4


def test_auc_matches_sklearn_with_many_ties():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, (400, 5))
    p = np.round(y * 0.3 + rng.random((400, 5)), 1)  # rounding makes ties
    for j in range(5):
        assert roc_auc(y[:, j], p[:, j]) == pytest.approx(roc_auc_score(y[:, j], p[:, j]),
                                                          abs=1e-12)
    assert macro_auc(y, p) == pytest.approx(roc_auc_score(y, p, average="macro"), abs=1e-12)


def test_table6_counts_every_label_slot():
    y = np.array([[1, 0, 0], [0, 1, 1]])
    p = np.array([[0.7, 0.6, 0.1], [0.2, 0.9, 0.3]])
    # slots: TP (0,0), FP (0,1), TN (0,2), TN (1,0), TP (1,1), FN (1,2)
    m = table6_metrics(y, p)
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)


def test_fmax_by_hand():
    y = np.array([[1, 0, 0], [0, 1, 1]])
    p = np.array([[0.9, 0.6, 0.1], [0.2, 0.7, 0.3]])
    # t in [0.6, 0.7): predictions {0}, {1}: precision (1 + 1)/2 = 1, recall (1 + ½)/2 = ¾
    # t in [0.3, 0.6): {0, 1}, {1}: P = (½ + 1)/2 = ¾, R = ¾ → F = ¾
    # t in [0.2, 0.3): {0, 1}, {1, 2}: P = (½ + 1)/2, R = (1 + 1)/2 = 1 → F = 6/7 (the best)
    out = fmax(y, p)
    assert out["fmax"] == pytest.approx(6 / 7)
    assert 0.2 <= out["threshold"] < 0.3


def test_fmax_ignores_records_without_predictions_in_precision():
    y = np.array([[1, 0], [0, 1]])
    p = np.array([[0.9, 0.0], [0.0, 0.05]])
    # t in [0.05, 0.9): record 1 predicts nothing: precision 1 (record 0 only), recall ½
    # t < 0.05 is not reached on the grid except t = 0: {0}, {1} → perfect
    out = fmax(y, p, thresholds=np.array([0.5]))
    assert out["fmax"] == pytest.approx(2 * 1 * 0.5 / 1.5)


def test_bootstrap_is_seeded_and_brackets_the_point():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, (500, 5))
    p = y * 0.5 + rng.random((500, 5))
    a = bootstrap_macro_auc(y, p, n_boot=300, seed=7)
    b = bootstrap_macro_auc(y, p, n_boot=300, seed=7)
    c = bootstrap_macro_auc(y, p, n_boot=300, seed=8)
    assert a == b and a["low"] != c["low"]
    assert a["low"] < a["auc"] < a["high"]
    assert a["high"] - a["low"] < 0.1


def test_benchmark_metrics_report_mi_on_its_own():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, (300, 5))
    y[y.sum(axis=1) == 0, 0] = 1
    p = rng.random((300, 5))
    p[:, 1] = y[:, 1] * 0.5 + rng.random(300) * 0.6  # MI separable above chance
    m = benchmark_metrics(y, p, n_boot=50)
    assert m["mi_auc"] == m["per_class_auc"]["MI"] == pytest.approx(roc_auc(y[:, 1], p[:, 1]))
    assert m["mi_auc"] > 0.8 > m["per_class_auc"]["NORM"]
    assert m["table6"]["roc_auc"] == pytest.approx(m["macro_auc"])
