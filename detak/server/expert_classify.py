"""S4's classification on a case base: KNN with the sorted neighbour table and the vote, the
leave-one-out accuracy of the base, and naive Bayes and the decision tree on the same cases.

All three are the library's pipelines (`detak.models.tabular.make_model`: mean imputation,
min-max scaling and Euclidean distance for KNN, standard scaling for NB, an entropy tree); the
neighbour table is `TabularModel.neighbours`. Features without a single value in the base are
left out (they could not be imputed) and named.

>>> import pandas as pd
>>> X = pd.DataFrame({"a": [1.0, 1.2, 0.9, 5.0, 5.2, 4.8], "b": [0, 0, 1, 9, 8, 9.0]},
...                  index=[11, 12, 13, 14, 15, 16])
>>> y = pd.Series(["low"] * 3 + ["high"] * 3, index=X.index)
>>> r = classify(X, y, {"a": 1.0, "b": 0.0}, k=3)
>>> r["knn"]["label"], [n["index"] for n in r["neighbours"]], r["votes"]
('low', [11, 12, 13], {'low': 3})
>>> r["evaluation"]["knn"]["accuracy"], r["evaluation"]["knn"]["method"]
(1.0, 'leave-one-out')
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from detak.models.tabular import TabularModel, TabularModelError, make_model

LOO_MAX = 400          # up to this many cases: leave-one-out; above: 10-fold stratified CV
KINDS = ("knn", "nb", "dt")


class ClassifyError(ValueError):
    """The base cannot classify yet (too few cases, no classes, k out of range, ...)."""


def usable(X: pd.DataFrame) -> tuple[list[str], list[str]]:
    """``(features with at least one value, features with none)`` in ``X``'s order."""
    empty = [c for c in X.columns if X[c].isna().all()]
    return [c for c in X.columns if c not in empty], empty


def evaluate(X: pd.DataFrame, y: pd.Series, kind: str, k: int = 5,
             seed: int = 0) -> dict[str, Any]:
    """Accuracy of ``kind`` on the base: leave-one-out up to `LOO_MAX` cases, else 10-fold
    stratified CV. ``{"accuracy", "correct", "n", "method", "k"}``."""
    from sklearn.model_selection import LeaveOneOut, StratifiedKFold, cross_val_predict

    n = len(X)
    Xa, ya = X.to_numpy(dtype=float), y.to_numpy()
    params: dict[str, Any] = {}
    if kind == "knn":
        params["k"] = max(1, min(k, n - 1))
    if n <= LOO_MAX:
        cv, method = LeaveOneOut(), "leave-one-out"
    else:
        folds = int(min(10, Counter(ya).most_common()[-1][1]))
        if folds < 2:
            cv, method = LeaveOneOut(), "leave-one-out"
        else:
            cv, method = StratifiedKFold(folds, shuffle=True, random_state=seed), \
                f"{folds}-fold stratified CV"
    pred = cross_val_predict(make_model(kind, seed=seed, **params), Xa, ya, cv=cv)
    correct = int((pred == ya).sum())
    return {"accuracy": correct / n, "correct": correct, "n": n, "method": method,
            "k": params.get("k")}


def classify(X: pd.DataFrame, y: pd.Series, query: Mapping[str, float | None], k: int = 5,
             seed: int = 0) -> dict[str, Any]:
    """Classify ``query`` on the cases ``X`` (index = case ids) with classes ``y``.

    Returns ``knn`` (`TabularModel.predict`), ``neighbours`` (nearest first: rank, distance,
    label, index = case id, values), ``votes`` (class → neighbours), ``nb`` and ``dt``
    (their predictions), ``evaluation`` (per kind: `evaluate`), ``features`` used and
    ``left_out`` (no value in the base), ``imputed`` (features the query lacks).
    """
    n = len(X)
    if n < 2 or y.nunique() < 2:
        raise ClassifyError(f"the case base needs at least 2 cases of 2 classes to classify "
                            f"(it has {n} case(s), {y.nunique()} class(es))")
    if not 1 <= k <= n:
        raise ClassifyError(f"k must be between 1 and the number of cases ({n}); got {k}")
    feats, left_out = usable(X)
    if not feats:
        raise ClassifyError("no feature has a value in any case")
    row = {f: query.get(f) for f in feats}
    if all(v is None or (isinstance(v, float) and math.isnan(v)) for v in row.values()):
        raise ClassifyError("the case to classify has no value for any feature the base uses ("
                            + ", ".join(feats) + ")")
    Xu = X[feats]
    out: dict[str, Any] = {"features": feats, "left_out": left_out, "n": n, "k": k}
    try:
        knn = TabularModel.train("knn", Xu, y, name="expert-knn", description="case base",
                                 seed=seed, k=k)
        out["knn"] = knn.predict(row)
        out["neighbours"] = knn.neighbours(row, k)
        for kind in ("nb", "dt"):
            m = TabularModel.train(kind, Xu, y, name=f"expert-{kind}", description="case base",
                                   seed=seed)
            out[kind] = m.predict(row)
    except TabularModelError as exc:
        raise ClassifyError(str(exc)) from exc
    out["imputed"] = out["knn"]["imputed"]
    votes = Counter(nb["label"] for nb in out["neighbours"])
    out["votes"] = {c: votes[c] for c in sorted(votes, key=lambda c: (-votes[c], str(c)))}
    out["evaluation"] = {kind: evaluate(Xu, y, kind, k=k, seed=seed) for kind in KINDS}
    return out


def frame(cases: list[tuple[Any, str]], keys: list[str]) -> tuple[pd.DataFrame, pd.Series]:
    """``(X, y)`` from ``(case row, class name)`` pairs: X indexed by case id, NaN = missing."""
    ids = [c.id for c, _ in cases]
    X = pd.DataFrame([[_num(c.values.get(k)) for k in keys] for c, _ in cases],
                     columns=keys, index=pd.Index(ids, name="case"), dtype=float)
    return X, pd.Series([n for _, n in cases], index=X.index, dtype=object)


def _num(v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return np.nan
    return f if math.isfinite(f) else np.nan
