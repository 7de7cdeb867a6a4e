"""Honest evaluation of the tabular models: stratified k-fold CV (mean and SD) and an 80/20
stratified hold-out with confusion matrix and ROC curve.

Metrics: accuracy; precision, recall, F1 of the positive class (binary: the larger label, e.g.
``DEATH_EVENT = 1``) and their macro averages over classes; ROC AUC (multi-class: one-vs-rest,
macro). SD is the sample SD (ddof = 1) over folds. Each fold refits the whole Pipeline
(imputer and scaler included), so nothing from the test fold leaks into scaling.

>>> import pandas as pd
>>> rng = np.random.default_rng(0)
>>> X = pd.DataFrame({"a": np.r_[rng.normal(0, 1, 40), rng.normal(3, 1, 40)]})
>>> y = np.r_[np.zeros(40, int), np.ones(40, int)]
>>> cv = cross_validate("nb", X, y, cv=5)
>>> cv["folds"], cv["accuracy_mean"] > 0.8
(5, True)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from detak.models.tabular import SEED, make_model

METRICS: tuple[str, ...] = ("accuracy", "precision", "recall", "f1", "precision_macro",
                            "recall_macro", "f1_macro", "roc_auc")


class EvaluationError(ValueError):
    """The data cannot be evaluated as asked (too few rows of a class for the folds, ...)."""


def _check_counts(y: np.ndarray, needed: int, what: str) -> None:
    labels, counts = np.unique(y, return_counts=True)
    if len(labels) < 2:
        raise EvaluationError(f"{what}: only one class ({labels[0].item()!r}) in the data")
    small = [f"{lab.item()!r} ({c})" for lab, c in zip(labels, counts, strict=True) if c < needed]
    if small:
        raise EvaluationError(f"{what} needs at least {needed} rows per class; too few: "
                              f"{', '.join(small)}")


def scores(y_true: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> dict[str, float]:
    """The `METRICS` for true labels and predicted probabilities (columns in ``classes``
    order)."""
    from sklearn.metrics import (
        accuracy_score,
        precision_recall_fscore_support,
        roc_auc_score,
    )

    y_pred = classes[np.argmax(proba, axis=1)]
    out: dict[str, float] = {"accuracy": float(accuracy_score(y_true, y_pred))}
    binary = len(classes) == 2
    if binary:
        p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, pos_label=classes[-1],
                                                     average="binary", zero_division=0)
    else:
        p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average="weighted",
                                                     zero_division=0)
    pm, rm, fm, _ = precision_recall_fscore_support(y_true, y_pred, average="macro",
                                                    labels=classes, zero_division=0)
    out.update(precision=float(p), recall=float(r), f1=float(f), precision_macro=float(pm),
               recall_macro=float(rm), f1_macro=float(fm))
    try:
        if binary:
            out["roc_auc"] = float(roc_auc_score(y_true == classes[-1], proba[:, -1]))
        else:
            out["roc_auc"] = float(roc_auc_score(y_true, proba, multi_class="ovr",
                                                 average="macro", labels=classes))
    except ValueError:  # a class absent from this fold's truth
        out["roc_auc"] = float("nan")
    return out


def cross_validate(kind: str, X: Any, y: Any, cv: int = 5, seed: int = SEED,
                   **params: Any) -> dict[str, Any]:
    """Stratified ``cv``-fold CV (shuffled with ``seed``) of ``make_model(kind, **params)``:
    ``{METRIC_mean, METRIC_sd, ..., "folds": cv, "per_fold": {METRIC: [...]}}``."""
    from sklearn.model_selection import StratifiedKFold

    Xa = np.asarray(X.to_numpy(dtype=float) if hasattr(X, "to_numpy") else X, dtype=float)
    ya = np.asarray(y)
    if cv < 2:
        raise EvaluationError(f"cv must be at least 2 folds, got {cv}")
    _check_counts(ya, cv, f"{cv}-fold stratified CV")
    per_fold: dict[str, list[float]] = {m: [] for m in METRICS}
    for train, test in StratifiedKFold(cv, shuffle=True, random_state=seed).split(Xa, ya):
        pipe = make_model(kind, seed=seed, **params).fit(Xa[train], ya[train])
        s = scores(ya[test], pipe.predict_proba(Xa[test]), pipe.classes_)
        for m in METRICS:
            per_fold[m].append(s[m])
    out: dict[str, Any] = {}
    for m in METRICS:
        v = np.asarray(per_fold[m])
        out[f"{m}_mean"] = float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")
        out[f"{m}_sd"] = float(np.nanstd(v, ddof=1)) if np.isfinite(v).sum() > 1 else float("nan")
    out["folds"] = cv
    out["per_fold"] = per_fold
    return out


def holdout(kind: str, X: Any, y: Any, test_size: float = 0.2, seed: int = SEED,
            **params: Any) -> dict[str, Any]:
    """Stratified hold-out (``test_size`` of the rows, shuffled with ``seed``): the `METRICS`,
    ``confusion`` (rows = true, columns = predicted, in ``classes`` order), ``classes``, and for
    binary data the ROC curve (``roc_fpr``, ``roc_tpr``)."""
    from sklearn.metrics import confusion_matrix, roc_curve
    from sklearn.model_selection import train_test_split

    Xa = np.asarray(X.to_numpy(dtype=float) if hasattr(X, "to_numpy") else X, dtype=float)
    ya = np.asarray(y)
    _check_counts(ya, 2, f"stratified {1 - test_size:.0%}/{test_size:.0%} split")
    Xtr, Xte, ytr, yte = train_test_split(Xa, ya, test_size=test_size, stratify=ya,
                                          random_state=seed)
    pipe = make_model(kind, seed=seed, **params).fit(Xtr, ytr)
    proba = pipe.predict_proba(Xte)
    classes = pipe.classes_
    out: dict[str, Any] = scores(yte, proba, classes)
    out["classes"] = [c.item() if isinstance(c, np.generic) else c for c in classes]
    out["confusion"] = confusion_matrix(yte, classes[np.argmax(proba, axis=1)],
                                        labels=classes).tolist()
    out["n_train"], out["n_test"] = len(ytr), len(yte)
    if len(classes) == 2:
        fpr, tpr, _ = roc_curve(yte == classes[-1], proba[:, -1])
        out["roc_fpr"], out["roc_tpr"] = fpr.tolist(), tpr.tolist()
    return out
