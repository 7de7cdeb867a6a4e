"""Metrics of the multilabel CNNs: S1's Table 6 and the PTB-XL benchmark's (issue 4).

* S1 Table 6 (`table6_metrics`): accuracy, precision, recall and F1 over all label slots
  (records × 5 classes, i.e. micro-averaged) at threshold 0.5, and ROC AUC (macro over the 5
  classes, the benchmark's AUC; the micro AUC is reported beside it).
* Benchmark (`benchmark_metrics`): macro AUC with a seeded 95 % bootstrap interval over records
  (percentile method; resamples in which a class has no positive or no negative are redrawn),
  per-class AUC, and Fmax (Strodthoff et al. 2021, after CAFA): for thresholds
  0, 1/99, ..., 1, predictions ``p > t``; precision is averaged over the records with at least
  one predicted label, recall over all records; F = 2PR / (P + R); Fmax is the largest F.

AUCs are computed from ranks (Mann–Whitney, ties averaged), equal to scikit-learn's
``roc_auc_score``, fast enough for 1000 bootstrap resamples.

>>> y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
>>> p = np.array([[0.9, 0.2], [0.3, 0.8], [0.6, 0.4], [0.1, 0.3]])
>>> roc_auc(y[:, 0], p[:, 0]), table6_metrics(y, p)["accuracy"]
(1.0, 0.875)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import rankdata

from detak.data.ptbxl import SUPERCLASSES

FMAX_THRESHOLDS = np.linspace(0.0, 1.0, 100)


class MetricsError(ValueError):
    """Labels and scores that cannot be scored (shape mismatch, a class with one label only)."""


def _check(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true)
    p = np.asarray(scores, dtype=np.float64)
    if y.shape != p.shape:
        raise MetricsError(f"labels have shape {y.shape} but scores {p.shape}")
    if y.size == 0:
        raise MetricsError("no records to score")
    if not np.isin(y, (0, 1)).all():
        raise MetricsError("labels must be 0/1")
    if not np.isfinite(p).all():
        raise MetricsError("scores contain NaN or inf")
    return y.astype(bool), p


def roc_auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC of one binary label from ranks (= P(score of a positive > score of a negative),
    ties counted half).

    >>> roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    0.75
    >>> roc_auc(np.array([1, 1]), np.array([0.1, 0.2]))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    detak.models.cnn_metrics.MetricsError: ROC AUC needs positives and negatives; ...
    """
    y, p = _check(y_true, scores)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise MetricsError(f"ROC AUC needs positives and negatives; got {n_pos} positives and "
                           f"{n_neg} negatives")
    ranks = rankdata(p)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def per_class_auc(y_true: np.ndarray, scores: np.ndarray,
                  classes: Sequence[str] = SUPERCLASSES) -> dict[str, float]:
    """ROC AUC of each class (columns in ``classes`` order)."""
    y, p = _check(y_true, scores)
    if y.ndim != 2 or y.shape[1] != len(classes):
        raise MetricsError(f"expected (records, {len(classes)}) arrays, got {y.shape}")
    out = {}
    for j, c in enumerate(classes):
        try:
            out[c] = roc_auc(y[:, j], p[:, j])
        except MetricsError as err:
            raise MetricsError(f"class {c}: {err}") from None
    return out


def macro_auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Mean of the per-class ROC AUCs (the PTB-XL benchmark's ``macro_auc``)."""
    y, p = _check(y_true, scores)
    return float(np.mean([roc_auc(y[:, j], p[:, j]) for j in range(y.shape[1])]))


def bootstrap_macro_auc(y_true: np.ndarray, scores: np.ndarray, n_boot: int = 1000,
                        seed: int = 0, level: float = 0.95) -> dict[str, float]:
    """Macro AUC and its percentile bootstrap interval: ``{"auc", "low", "high", "n_boot"}``.

    Records are resampled with replacement (seeded); a resample in which some class has only
    positives or only negatives is drawn again.

    >>> rng = np.random.default_rng(1)
    >>> y = rng.integers(0, 2, (300, 2)); p = y + rng.normal(0, 0.8, y.shape)
    >>> ci = bootstrap_macro_auc(y, p, n_boot=200)
    >>> bool(ci["low"] < ci["auc"] < ci["high"])
    True
    """
    y, p = _check(y_true, scores)
    point = macro_auc(y, p)
    rng = np.random.default_rng(seed)
    n = len(y)
    stats: list[float] = []
    tries = 0
    while len(stats) < n_boot:
        tries += 1
        if tries > 20 * n_boot:
            raise MetricsError(f"bootstrap: too few records of some class to resample ({n})")
        idx = rng.integers(0, n, n)
        yb = y[idx]
        pos = yb.sum(axis=0)
        if (pos == 0).any() or (pos == n).any():
            continue
        stats.append(macro_auc(yb, p[idx]))
    alpha = (1.0 - level) / 2
    low, high = np.quantile(stats, [alpha, 1.0 - alpha])
    return {"auc": point, "low": float(low), "high": float(high), "n_boot": int(n_boot),
            "level": level, "seed": seed}


def fmax(y_true: np.ndarray, scores: np.ndarray,
         thresholds: np.ndarray = FMAX_THRESHOLDS) -> dict[str, float]:
    """Fmax as in the PTB-XL benchmark (see the module docstring): ``{"fmax", "threshold"}``.

    >>> y = np.array([[1, 0], [0, 1]])
    >>> fmax(y, np.array([[0.9, 0.1], [0.2, 0.7]]))["fmax"]   # some threshold is perfect
    1.0
    """
    y, p = _check(y_true, scores)
    best_f, best_t = -1.0, float("nan")
    n_true = y.sum(axis=1)
    if (n_true == 0).any():
        raise MetricsError("Fmax: every record needs at least one true label "
                           f"({int((n_true == 0).sum())} have none)")
    for t in thresholds:
        pred = p > t
        tp = (pred & y).sum(axis=1)
        n_pred = pred.sum(axis=1)
        has = n_pred > 0
        if not has.any():
            continue
        prec = float(np.mean(tp[has] / n_pred[has]))
        rec = float(np.mean(tp / n_true))
        f = 2 * prec * rec / (prec + rec) if prec + rec > 0 else 0.0
        if f > best_f:
            best_f, best_t = f, float(t)
    return {"fmax": float(best_f), "threshold": best_t}


def table6_metrics(y_true: np.ndarray, scores: np.ndarray,
                   threshold: float = 0.5) -> dict[str, float]:
    """S1's Table 6: accuracy, precision, recall, F1 over all label slots at ``threshold``
    (probabilities), ROC AUC (macro) and ROC AUC micro.

    >>> y = np.array([[1, 0], [0, 1]])
    >>> m = table6_metrics(y, np.array([[0.9, 0.6], [0.2, 0.4]]))   # TP 1, FP 1, FN 1, TN 1
    >>> m["accuracy"], m["precision"], m["recall"], m["f1"]
    (0.5, 0.5, 0.5, 0.5)
    """
    y, p = _check(y_true, scores)
    pred = p >= threshold
    tp = int((pred & y).sum())
    fp = int((pred & ~y).sum())
    fn = int((~pred & y).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"accuracy": float((pred == y).mean()), "precision": float(precision),
            "recall": float(recall), "f1": float(f1), "roc_auc": macro_auc(y, p),
            "roc_auc_micro": roc_auc(y.ravel(), p.ravel()), "threshold": threshold}


def benchmark_metrics(y_true: np.ndarray, scores: np.ndarray, *, n_boot: int = 1000,
                      seed: int = 0, classes: Sequence[str] = SUPERCLASSES) -> dict[str, Any]:
    """Everything issue 4 reports for one set of predictions: ``n``, ``table6``,
    ``macro_auc`` with ``macro_auc_ci`` (95 % bootstrap), ``per_class_auc``, ``mi_auc``, ``fmax``,
    ``fmax_threshold`` and the class prevalences."""
    y, p = _check(y_true, scores)
    ci = bootstrap_macro_auc(y, p, n_boot=n_boot, seed=seed)
    pc = per_class_auc(y, p, classes)
    fm = fmax(y, p)
    return {
        "n": int(len(y)),
        "macro_auc": ci["auc"],
        "macro_auc_ci": [ci["low"], ci["high"]],
        "bootstrap": {"n_boot": n_boot, "seed": seed, "level": 0.95},
        "per_class_auc": pc,
        "mi_auc": pc.get("MI"),
        "fmax": fm["fmax"],
        "fmax_threshold": fm["threshold"],
        "table6": table6_metrics(y, p),
        "prevalence": {c: float(y[:, j].mean()) for j, c in enumerate(classes)},
    }
