"""benchmarks/mi_robustness.py: every condition changes what it says and only that, keeps the
shape at its stated rate, and the kiosk input path gives the model's (N, 12, 1000) windows;
the paired bootstrap difference of a model with itself is exactly 0."""

from __future__ import annotations

import numpy as np
import pytest

mi_robustness = pytest.importorskip("mi_robustness")


@pytest.fixture(scope="module")
def records():
    from detak.data.samples import load_sample

    return np.stack([load_sample(n).signal for n in ("ptbxl-00286", "ptbxl-00102")])


def test_each_condition_keeps_the_shape_at_its_rate_and_changes_the_signal(records):
    conds = mi_robustness.conditions()
    assert len([c for c in conds.values() if c[0] == "lead"]) == 12
    assert len([c for c in conds.values() if c[0] == "reversal"]) == 3
    for name, (_group, fn, fs) in conds.items():
        y = fn(records)
        assert y.shape == (2, 12, int(10 * fs)), name
        assert np.all(np.isfinite(y)), name
        if fs == 100.0:
            assert not np.array_equal(y, records), name


def test_a_missing_lead_is_that_lead_at_zero_and_nothing_else(records):
    y = mi_robustness.conditions()["lead V5 missing (0 mV)"][1](records)
    assert np.all(y[:, 10] == 0) and np.array_equal(np.delete(y, 10, 1),
                                                    np.delete(records, 10, 1))


def test_kiosk_input_at_500_hz_matches_100_hz_after_the_round_trip(records):
    from detak.export.predict import load_model
    from detak.signal import filters

    std = load_model("edge", runtime="auto", precision="int8", threads=1).standardizer
    a = mi_robustness.kiosk_input(records, 100.0, std)
    b = mi_robustness.kiosk_input(filters.resample(records, 100.0, 500.0), 500.0, std)
    assert a.shape == b.shape == (2, 12, 1000)
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.99


def test_paired_difference_of_a_model_with_itself_is_zero():
    rng = np.random.default_rng(0)
    y = (rng.random((60, 5)) < 0.4).astype(int)
    z = rng.normal(size=(60, 5))
    boots = mi_robustness.resamples(np.arange(60) // 2, y)[:20]
    assert np.all(mi_robustness.paired_diff(y, z, z, 1, boots) == 0)
