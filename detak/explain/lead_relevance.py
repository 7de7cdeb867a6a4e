"""S1's lead relevance score and lead utilisation.

Score of lead l for one record: ``sum_t |R_l(t)| / sum_{l,t} |R_l(t)|`` (12 numbers summing to
1); averaged over records per model, method and class. *Lead utilisation* is how many leads,
taken from the most relevant down, carry 80 % of the relevance: of the averaged scores
(``utilisation``, the basis of S1's verdict that InceptionTime uses the most leads) and, per
record, averaged (``utilisation_per_record``).

>>> import numpy as np
>>> a = np.zeros((1, 12, 10)); a[0, 6] = 3.0; a[0, 7] = -1.0
>>> s = lead_scores(a)
>>> float(s[0, 6]), float(s[0, 7]), lead_utilisation(s[0])
(0.75, 0.25, 2)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from detak.data.leads import STANDARD_LEADS

__all__ = ["UTILISATION_SHARE", "lead_scores", "lead_utilisation", "summarize_leads"]

UTILISATION_SHARE = 0.8


def lead_scores(attr: np.ndarray) -> np.ndarray:
    """(B, leads) relevance share of each lead (see the module doc); rows of an all-zero
    attribution are NaN."""
    a = np.abs(np.asarray(attr, dtype=np.float64))
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise ValueError(f"expected attribution (batch, leads, samples), got shape {a.shape}")
    per_lead = a.sum(axis=-1)
    total = per_lead.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, per_lead / total, np.nan)


def lead_utilisation(scores: np.ndarray, share: float = UTILISATION_SHARE) -> int:
    """Fewest leads (most relevant first) whose scores reach ``share`` of their total.

    >>> lead_utilisation(np.full(12, 1 / 12))
    10
    """
    s = np.sort(np.asarray(scores, dtype=np.float64))[::-1]
    total = s.sum()
    if not np.isfinite(total) or total <= 0:
        raise ValueError("lead_utilisation: scores are empty, zero or NaN")
    return int(np.searchsorted(np.cumsum(s) / total, share - 1e-12) + 1)


def summarize_leads(scores: np.ndarray, leads: Sequence[str] = STANDARD_LEADS,
                    share: float = UTILISATION_SHARE) -> dict[str, Any]:
    """Mean and SD of the per-record scores (B, leads) per lead, the top three leads, the least
    three, ``utilisation`` (of the mean scores) and ``utilisation_per_record`` (mean over
    records), ``n`` records used (NaN rows dropped).

    >>> s = np.tile(np.r_[np.full(4, 0.2), np.full(8, 0.025)], (3, 1))
    >>> d = summarize_leads(s)
    >>> d["top3"], d["utilisation"], d["n"]
    (['I', 'II', 'III'], 4, 3)
    """
    s = np.asarray(scores, dtype=np.float64)
    s = s[np.isfinite(s).all(axis=1)]
    if len(s) == 0:
        raise ValueError("summarize_leads: no record with a finite score")
    mean = s.mean(axis=0)
    order = np.argsort(-mean, kind="stable")
    return {
        "mean": {lead: float(v) for lead, v in zip(leads, mean, strict=True)},
        "sd": {lead: float(v) for lead, v in zip(leads, s.std(axis=0), strict=True)},
        "top3": [leads[i] for i in order[:3]],
        "bottom3": [leads[i] for i in order[::-1][:3]],
        "rank": [leads[i] for i in order],
        "utilisation": lead_utilisation(mean, share),
        "utilisation_per_record": float(np.mean([lead_utilisation(r, share) for r in s])),
        "n": int(len(s)),
    }
