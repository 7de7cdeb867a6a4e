"""Agreement between two models' outputs: probability differences, AUCs, and Grad-CAM map
correlation (numpy only; used by the exporter's card and `benchmarks/edge_inference.py`).

>>> a = np.array([[0.0, 1.0, 2.0], [1.0, 1.0, 1.0]])
>>> rowwise_pearson(a, 2 * a + 1).round(6).tolist()  # a constant row has no correlation
[1.0, nan]
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["rowwise_pearson", "cam_agreement", "auc_summary"]


def rowwise_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r of each row of ``a`` with the same row of ``b`` (N,); NaN where either row is
    constant (e.g. a map that is zero everywhere after the ReLU)."""
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 2:
        raise ValueError(f"need two (N, L) arrays of the same shape, got {x.shape} and {y.shape}")
    constant = (np.ptp(x, axis=1) == 0) | (np.ptp(y, axis=1) == 0)
    x = x - x.mean(axis=1, keepdims=True)
    y = y - y.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (x * y).sum(axis=1) / np.sqrt((x * x).sum(axis=1) * (y * y).sum(axis=1))
    r[constant | ~np.isfinite(r)] = np.nan
    return r


def cam_agreement(cams: np.ndarray, reference: np.ndarray,
                  mask: np.ndarray | None = None) -> dict[str, Any]:
    """Per-record Pearson r of ``cams`` with ``reference`` over the records in ``mask``:
    ``{"records", "defined", "mean_r", "median_r", "min_r", "p05_r"}``. Records whose reference
    map is constant are counted in ``records`` but not in ``defined``; a constant map against a
    reference with structure counts as r = 0.

    >>> ref = np.array([[0.0, 1.0, 2.0, 1.0], [2.0, 0.0, 0.0, 1.0]])
    >>> cam_agreement(ref + 0.01, ref)["min_r"]
    1.0
    """
    r = rowwise_pearson(cams, reference)
    ref_constant = np.ptp(np.asarray(reference, dtype=np.float64), axis=1) == 0
    r[np.isnan(r) & ~ref_constant] = 0.0  # a flat map where the reference has structure
    if mask is not None:
        r = r[np.asarray(mask, dtype=bool)]
    ok = r[np.isfinite(r)]
    out: dict[str, Any] = {"records": int(len(r)), "defined": int(len(ok))}
    if len(ok):
        out.update(mean_r=round(float(ok.mean()), 6), median_r=round(float(np.median(ok)), 6),
                   min_r=round(float(ok.min()), 6), p05_r=round(float(np.quantile(ok, 0.05)), 6))
    return out


def auc_summary(y: np.ndarray, probs: np.ndarray,
                classes: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Macro AUC, MI AUC (when ``classes`` has MI) and per-class AUCs of ``probs`` against
    multi-hot ``y``; ``classes`` default to the 5 superclasses.

    >>> y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    >>> auc_summary(y, y * 0.8 + 0.1, ("SR", "AFIB"))
    {'macro_auc': 1.0, 'per_class_auc': {'SR': 1.0, 'AFIB': 1.0}}
    """
    from detak.models.cnn_metrics import macro_auc, per_class_auc

    pc = per_class_auc(y, probs, *(() if classes is None else (classes,)))
    out: dict[str, Any] = {"macro_auc": round(macro_auc(y, probs), 6)}
    if "MI" in pc:
        out["mi_auc"] = round(pc["MI"], 6)
    out["per_class_auc"] = {k: round(v, 6) for k, v in pc.items()}
    return out
