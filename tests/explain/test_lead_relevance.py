"""S1's lead relevance score and lead utilisation."""

from __future__ import annotations

import numpy as np
import pytest

from detak.explain.lead_relevance import lead_scores, lead_utilisation, summarize_leads


def test_bad_shapes_and_empty_scores_are_named():
    with pytest.raises(ValueError, match=r"\(batch, leads, samples\), got shape \(5,\)"):
        lead_scores(np.zeros(5))
    with pytest.raises(ValueError, match="scores are empty, zero or NaN"):
        lead_utilisation(np.zeros(12))
    with pytest.raises(ValueError, match="no record with a finite score"):
        summarize_leads(np.full((2, 12), np.nan))


def test_scores_use_absolute_relevance_and_sum_to_one():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 12, 100))
    s = lead_scores(a)
    np.testing.assert_allclose(s.sum(axis=1), 1.0)
    np.testing.assert_allclose(lead_scores(-a), s)
    assert np.isnan(lead_scores(np.zeros((1, 12, 10)))).all()


def test_utilisation_counts_leads_to_reach_80_percent():
    assert lead_utilisation(np.r_[0.5, 0.3, np.full(10, 0.02)]) == 2
    assert lead_utilisation(np.r_[0.5, 0.29, np.full(10, 0.021)]) == 3
    assert lead_utilisation(np.eye(12)[4]) == 1


def test_summary_ranks_leads_and_drops_nan_rows():
    s = np.full((3, 12), 1 / 24)
    s[:, 6] += 0.25   # V1
    s[:, 11] += 0.25  # V6
    s = np.vstack([s, np.full((1, 12), np.nan)])
    d = summarize_leads(s)
    assert d["n"] == 3 and d["top3"][:2] == ["V1", "V6"]
    assert d["mean"]["V1"] == pytest.approx(0.25 + 1 / 24)
    # 2 × 0.29 + 6 × 0.042 = 0.83 >= 0.8 (5 more would give 0.79)
    assert d["utilisation"] == d["utilisation_per_record"] == 8
