"""Training and evaluation data of the rhythm classifier: the shared feature cache's JSON lines
as a feature matrix, one-vs-rest labels from PTB-XL's statements, sample weights that undo the
cache's subsample, and per-class sensitivity/specificity/PPV/F1/AUC.

Host-side helpers (`tools/train_rhythm_clf.py`, `benchmarks/rhythm_classifier.py`, tests); the
kiosk only needs `detak.models.rhythm_classifier`. numpy only (plus scikit-learn's AUC).

Classes (``CLASS_GROUPS``): a record is positive for a class when its ``scp_codes`` carry any
statement of the group, whatever its likelihood (PTB-XL gives rhythm statements likelihood 0
meaning "stated, unquantified"). SVTAC and PSVT are one class (SVTAC: 21 + 19 records in
folds 1-8); classes with fewer than ``MIN_TRAIN_POSITIVES`` training records are left to the
rules (TRIGU 16, 2AVB 12, 3AVB 12 in folds 1-8).

>>> labels_of({"AFIB": 100.0, "PVC": 0.0}, CLASS_GROUPS)["AFIB"]
1
>>> m = binary_metrics(np.array([1, 1, 0, 0]), np.array([0.9, 0.4, 0.2, 0.6]), 0.5)
>>> m["sensitivity"], m["specificity"], m["ppv"], m["auc"]
(0.5, 0.5, 0.5, 0.75)
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from detak.models.rhythm_classifier import FEATURES, feature_vector

CLASS_GROUPS: dict[str, tuple[str, ...]] = {
    "SR": ("SR",), "AFIB": ("AFIB",), "AFLT": ("AFLT",), "STACH": ("STACH",),
    "SBRAD": ("SBRAD",), "SARRH": ("SARRH",), "SVTAC": ("SVTAC", "PSVT"), "BIGU": ("BIGU",),
    "PACE": ("PACE",), "1AVB": ("1AVB",), "TRIGU": ("TRIGU",), "2AVB": ("2AVB",),
    "3AVB": ("3AVB",),
}
MIN_TRAIN_POSITIVES = 30
ELDERLY_AGE = 65.0


def read_cache(path: Path | str) -> list[dict[str, Any]]:
    """The usable lines of one cache file (lines with an ``error`` or no features left out)."""
    rows = []
    with Path(path).open(encoding="utf-8") as fh:
        for raw in fh:
            try:
                line = json.loads(raw)
            except json.JSONDecodeError:
                break                 # a torn last line of a file still being written
            if line.get("error") is None and line.get("features"):
                rows.append(line)
    return rows


def labels_of(statements: Mapping[str, float],
              groups: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """1/0 per class: does any statement of its group appear in ``statements``."""
    return {c: int(any(s in statements for s in codes)) for c, codes in groups.items()}


def matrix(lines: Sequence[Mapping[str, Any]], *, with_intervals: bool = True) -> np.ndarray:
    """Feature rows (`FEATURES` order) of cache lines; intervals as NaN when not wanted."""
    if not lines:
        return np.empty((0, len(FEATURES)))
    return np.vstack([feature_vector(ln["features"],
                                     (ln.get("intervals") or {}) if with_intervals else {})
                      for ln in lines])


def label_matrix(lines: Sequence[Mapping[str, Any]],
                 groups: Mapping[str, Sequence[str]]) -> dict[str, np.ndarray]:
    """class -> 0/1 array over ``lines``."""
    out = {c: np.zeros(len(lines), dtype=int) for c in groups}
    for i, ln in enumerate(lines):
        for c, v in labels_of(ln["statements"], groups).items():
            out[c][i] = v
    return out


def is_elderly(lines: Iterable[Mapping[str, Any]]) -> np.ndarray:
    """True where the cached age is >= 65 (`ELDERLY_AGE`)."""
    return np.array([ln.get("age") is not None and ln["age"] >= ELDERLY_AGE for ln in lines],
                    dtype=bool)


def _div(a: float, b: float) -> float | None:
    return round(a / b, 4) if b else None


def binary_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, Any]:
    """Counts, sensitivity, specificity, PPV, F1 at ``threshold`` and ROC AUC (None without
    both classes)."""
    y = np.asarray(y).astype(bool)
    hit = np.asarray(p) >= threshold
    tp, fp = int((hit & y).sum()), int((hit & ~y).sum())
    fn, tn = int((~hit & y).sum()), int((~hit & ~y).sum())
    sens, ppv = _div(tp, tp + fn), _div(tp, tp + fp)
    f1 = _div(2 * tp, 2 * tp + fp + fn)
    auc = None
    if 0 < y.sum() < y.size:
        from sklearn.metrics import roc_auc_score

        auc = round(float(roc_auc_score(y, p)), 4)
    return {"n": int(y.size), "positives": int(y.sum()), "tp": tp, "fp": fp, "fn": fn, "tn": tn,
            "sensitivity": sens, "specificity": _div(tn, tn + fp), "ppv": ppv, "f1": f1,
            "auc": auc}


def fmt(v: float | None, digits: int = 2) -> str:
    """A table cell: ``-`` for None/NaN."""
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"
