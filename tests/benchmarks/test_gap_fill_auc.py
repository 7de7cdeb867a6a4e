"""benchmarks/gap_fill_auc.py: the gap sits where it was drawn, in every lead, and only there;
fold 10 is refused."""

import gap_fill_auc as gfa
import numpy as np
import pytest


@pytest.mark.parametrize("method", ["linear", "baseline", "zero"])
def test_gap_is_filled_in_every_lead_only_where_drawn(method: str) -> None:
    rng = np.random.default_rng(0)
    raw = rng.normal(0, 1, (3, 12, 1000)).astype(np.float32)
    starts = np.array([0, 400, 950])
    out = gfa.gapped(raw, 50, starts, method)
    assert np.isfinite(out).all()
    for i, s in enumerate(starts):
        changed = np.flatnonzero((out[i] != raw[i]).any(axis=0))
        assert changed.min() >= s and changed.max() < s + 50
        assert (out[i] != raw[i])[:, s + 1:s + 49].all()


def test_fold_10_is_refused() -> None:
    with pytest.raises(SystemExit):
        gfa.main(["--fold", "10"])
