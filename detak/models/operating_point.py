"""A screening operating point: the threshold reaching a target sensitivity, its confusion
counts, predictive values at a given prevalence, and bootstrap intervals that resample
patients (not records), so one patient's several ECGs move together.

numpy only.

>>> p = np.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.8]); y = np.array([0, 0, 1, 0, 1, 1])
>>> t = threshold_for_sensitivity(p, y, 0.9); t
0.3
>>> r = rates(p, y, t); r["sensitivity"], r["specificity"]
(1.0, 0.6667)
>>> round(predictive_values(0.9, 0.8, 0.1)["ppv"], 4)
0.3333
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from detak.models.bootstrap import patient_resamples


def rates(p: np.ndarray, y: np.ndarray, t: float) -> dict[str, Any]:
    """Threshold, sensitivity, specificity (4 decimals) and the counts at ``p >= t``, with
    ``t`` rounded to the 4 decimals stored (the figures hold for the threshold as written)."""
    p = np.asarray(p, dtype=np.float64)
    yb = np.asarray(y).astype(bool)
    t = round(float(t), 4)
    pred = p >= t
    tp, fn = int((pred & yb).sum()), int((~pred & yb).sum())
    tn, fp = int((~pred & ~yb).sum()), int((pred & ~yb).sum())
    return {"threshold": round(float(t), 4), "sensitivity": round(tp / max(tp + fn, 1), 4),
            "specificity": round(tn / max(tn + fp, 1), 4), "tp": tp, "fn": fn, "tn": tn,
            "fp": fp}


def threshold_for_sensitivity(p: np.ndarray, y: np.ndarray, target: float) -> float:
    """The highest threshold t (one of the positives' scores) with sensitivity(p >= t) >=
    ``target``: as specific as the target allows."""
    p = np.asarray(p, dtype=np.float64)
    pos = np.sort(p[np.asarray(y).astype(bool)])[::-1]
    if not len(pos):
        raise ValueError("no positives: no sensitivity to reach")
    k = int(np.ceil(target * len(pos) - 1e-9))
    return float(pos[max(k, 1) - 1])


def threshold_for_specificity(p: np.ndarray, y: np.ndarray, target: float) -> float:
    """The lowest threshold t (one of the scores) with specificity(p >= t) >= ``target``.

    >>> threshold_for_specificity(np.array([0.1, 0.2, 0.3, 0.9]), np.array([0, 0, 0, 1]), 0.6)
    0.3
    """
    p = np.asarray(p, dtype=np.float64)
    neg = np.sort(p[~np.asarray(y).astype(bool)])
    if not len(neg):
        raise ValueError("no negatives: no specificity to reach")
    k = int(np.ceil(target * len(neg) - 1e-9))      # negatives that must fall below t
    cands = np.unique(p)
    ok = cands[np.searchsorted(neg, cands, side="left") >= k]   # negatives below each
    return float(ok.min()) if len(ok) else float(np.nextafter(neg[-1], np.inf))


def predictive_values(sensitivity: float, specificity: float,
                      prevalence: float) -> dict[str, float]:
    """PPV and NPV at ``prevalence`` (Bayes' rule)."""
    se, sp, pi = float(sensitivity), float(specificity), float(prevalence)
    tp, fp = se * pi, (1 - sp) * (1 - pi)
    tn, fn = sp * (1 - pi), (1 - se) * pi
    return {"ppv": tp / (tp + fp) if tp + fp else float("nan"),
            "npv": tn / (tn + fn) if tn + fn else float("nan")}


def patient_bootstrap(p: np.ndarray, y: np.ndarray, patients: np.ndarray, threshold: float,
                      prevalences: Mapping[str, float], n_boot: int = 1000, seed: int = 0,
                      target_sensitivity: float | None = None,
                      level: float = 0.95) -> dict[str, list[float]]:
    """Percentile intervals of sensitivity, specificity, and PPV/NPV at each named prevalence,
    at the fixed ``threshold``, resampling patients with replacement (all of a patient's
    records together). With ``target_sensitivity`` also the interval of the threshold chosen
    again in each resample.

    >>> rng = np.random.default_rng(0); y = rng.random(400) < 0.3
    >>> p = np.clip(y * 0.4 + rng.random(400) * 0.6, 0, 1)
    >>> ci = patient_bootstrap(p, y, np.arange(400), 0.4, {"x": 0.1}, n_boot=50)
    >>> ci["sensitivity"][0] <= rates(p, y, 0.4)["sensitivity"] <= ci["sensitivity"][1]
    True
    """
    p = np.asarray(p, dtype=np.float64)
    yb = np.asarray(y).astype(bool)
    stats: dict[str, list[float]] = {"sensitivity": [], "specificity": []}
    for name in prevalences:
        stats[f"ppv@{name}"] = []
        stats[f"npv@{name}"] = []
    if target_sensitivity is not None:
        stats["threshold"] = []
    for idx in patient_resamples(np.asarray(patients), n_boot, seed, redraw=False,
                                 valid=lambda i: bool(yb[i].any() and not yb[i].all())):
        pb, yb_b = p[idx], yb[idx]
        se, sp = tp_rate(pb, yb_b, threshold), tn_rate(pb, yb_b, threshold)
        stats["sensitivity"].append(se)
        stats["specificity"].append(sp)
        for name, pi in prevalences.items():
            pv = predictive_values(se, sp, pi)
            stats[f"ppv@{name}"].append(pv["ppv"])
            stats[f"npv@{name}"].append(pv["npv"])
        if target_sensitivity is not None:
            stats["threshold"].append(threshold_for_sensitivity(pb, yb_b, target_sensitivity))
    a = (1 - level) / 2
    return {k: [float(np.nanquantile(v, a)), float(np.nanquantile(v, 1 - a))]
            for k, v in stats.items()}


def tp_rate(p: np.ndarray, y: np.ndarray, t: float) -> float:
    """Sensitivity (unrounded) at ``p >= t``."""
    yb = np.asarray(y).astype(bool)
    return float((np.asarray(p)[yb] >= t).mean())


def tn_rate(p: np.ndarray, y: np.ndarray, t: float) -> float:
    """Specificity (unrounded) at ``p >= t``."""
    yb = np.asarray(y).astype(bool)
    return float((np.asarray(p)[~yb] < t).mean())


def summary(p: np.ndarray, y: np.ndarray, patients: np.ndarray, threshold: float,
            prevalences: Mapping[str, float], n_boot: int = 1000, seed: int = 0,
            target_sensitivity: float | None = None) -> dict[str, Any]:
    """`rates` at ``threshold`` with predictive values at each prevalence and the patient
    bootstrap intervals (``ci``), all rounded to 4 decimals."""
    r = rates(p, y, threshold)
    se, sp = tp_rate(p, y, threshold), tn_rate(p, y, threshold)
    r["predictive_values"] = {name: {k: round(v, 4) for k, v in
                                     predictive_values(se, sp, pi).items()}
                              for name, pi in prevalences.items()}
    ci = patient_bootstrap(p, y, patients, threshold, prevalences, n_boot, seed,
                           target_sensitivity)
    r["ci95"] = {k: [round(v[0], 4), round(v[1], 4)] for k, v in ci.items()}
    return r


def cross_fitted(p: np.ndarray, y: np.ndarray, half: np.ndarray,
                 target_sensitivity: float) -> list[dict[str, Any]]:
    """The threshold chosen on one half and measured on the other, both ways (held-out
    sensitivity and specificity of the rule, not of a threshold fitted to the same records).

    >>> p = np.linspace(0, 1, 40); y = (np.arange(40) % 3 == 0) | (p > 0.7)
    >>> [r["sensitivity"] > 0.5 for r in cross_fitted(p, y, np.arange(40) % 2 == 0, 0.9)]
    [True, True]
    """
    out = []
    for fit, test in ((half, ~half), (~half, half)):
        t = threshold_for_sensitivity(np.asarray(p)[fit], np.asarray(y)[fit], target_sensitivity)
        out.append(rates(np.asarray(p)[test], np.asarray(y)[test], t))
    return out

