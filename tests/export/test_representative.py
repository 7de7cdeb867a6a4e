"""detak.export.representative: the int8 calibration set is deterministic, stratified by
label combination, drawn from the training folds only, and carries the training inputs."""

from __future__ import annotations

import numpy as np
import pytest

from detak.data.sources import _ptbxl
from detak.export.representative import (
    CalibrationError,
    allocate,
    label_patterns,
    representative_ids,
    representative_set,
)
from detak.models.cnn_data import TRAIN_FOLDS


@pytest.fixture(scope="module")
def ptb():
    return _ptbxl()


def test_bad_requests_are_named_errors(ptb):
    with pytest.raises(CalibrationError, match="at least 1"):
        representative_ids(0, ptb=ptb)
    with pytest.raises(CalibrationError, match=r"exceeds the \d+ records"):
        representative_ids(10**6, ptb=ptb)
    with pytest.raises(CalibrationError, match=r"fold\(s\) \[9\]"):
        representative_ids(10, folds=[8, 9], ptb=ptb)
    with pytest.raises(CalibrationError, match=r"\[10\]"):
        representative_ids(10, folds=[10], ptb=ptb)
    with pytest.raises(CalibrationError, match="shape"):
        label_patterns(np.zeros(5))


def test_same_seed_same_set_other_seed_other_set(ptb):
    a = representative_ids(300, seed=0, ptb=ptb)
    b = representative_ids(300, seed=0, ptb=ptb)
    c = representative_ids(300, seed=1, ptb=ptb)
    assert np.array_equal(a, b)
    assert len(a) == len(c) == 300 and len(np.unique(a)) == 300
    assert len(np.intersect1d(a, c)) < 150  # a different draw, not a shuffle of the same one
    # a smaller set is not simply a prefix of the larger one's order: it is its own draw,
    # but equally reproducible
    assert np.array_equal(representative_ids(50, seed=3, ptb=ptb),
                          representative_ids(50, seed=3, ptb=ptb))


def test_training_folds_only_labelled_and_stratified(ptb):
    ids = representative_ids(300, seed=0, ptb=ptb)
    folds = ptb.metadata.loc[ids, "strat_fold"].to_numpy()
    assert set(folds) <= set(TRAIN_FOLDS)
    y = ptb.labels(ids)  # raises if any record is unlabelled
    pop_ids = ptb.labelled_ids(TRAIN_FOLDS)
    pop = label_patterns(ptb.labels(pop_ids))
    got = label_patterns(y)
    strata, counts = np.unique(pop, return_counts=True)
    # every label combination of the training folds is represented ...
    assert set(np.unique(got)) == set(strata)
    # ... and the rest in proportion (largest remainder): within one record of the quota; the
    # single-record combinations are used up by the first round
    rest = counts[counts > 1].sum()
    for s, n in zip(strata, counts, strict=True):
        k = int((got == s).sum())
        if n == 1:
            assert k == 1
            continue
        quota = (300 - len(strata)) * n / rest
        assert abs(k - 1 - quota) < 1.0, (s, k, quota)


def test_allocation_rules():
    # one each, then 95 shared by the four strata with records left: quotas 79.18, 14.25,
    # 1.43, 0.14 → floors 79, 14, 1, 0 and the last record to the largest remainder (1.43)
    assert allocate([5000, 900, 90, 9, 1], 100).tolist() == [80, 15, 3, 1, 1]
    # fewer records than strata: proportional only, the largest strata first
    assert allocate([50, 30, 20], 2).tolist() == [1, 1, 0]
    # capped by the stratum sizes, everything taken when asked for everything
    assert allocate([3, 2, 1], 6).tolist() == [3, 2, 1]
    with pytest.raises(CalibrationError):
        allocate([3, 2], 6)


def test_signals_are_the_training_inputs(ptb):
    from detak.models.cnn_data import fold_arrays

    cs = representative_set(24, seed=5, ptb=ptb)
    assert np.array_equal(cs.ids, representative_ids(24, seed=5, ptb=ptb))
    assert cs.x.shape == (24, 12, 1000) and cs.x.dtype == np.float32
    fold = int(ptb.metadata.loc[cs.ids[0], "strat_fold"])
    fa = fold_arrays(fold)  # the cached arrays training reads
    mine = np.flatnonzero(ptb.metadata.loc[cs.ids, "strat_fold"].to_numpy() == fold)
    rows = np.searchsorted(fa.ids, cs.ids[mine])
    np.testing.assert_allclose(cs.x[mine], np.asarray(fa.x[rows]), atol=1e-5)
    assert np.array_equal(cs.y, ptb.labels(cs.ids))
