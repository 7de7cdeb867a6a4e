"""The 1 mV pulse's levels, gain and offset from counts (detak/calibration/pulse_levels.py):
channels without a clean square wave are named with the reason; levels are medians."""

from __future__ import annotations

import numpy as np
import pytest

from detak.calibration.pulse_levels import measure_pulse


def _square(n: int = 500, period: int = 100, low: float = 0.0, high: float = 1000.0):
    t = np.arange(n)
    return np.where((t // (period // 2)) % 2 == 0, high, low)


# --- bad input first ---------------------------------------------------------------------------


def test_channels_without_a_clean_pulse_are_named_with_the_reason() -> None:
    rng = np.random.default_rng(0)
    rows = np.stack([
        _square(),                                             # fine
        np.full(500, 7.0),                                     # flat
        _square() + rng.normal(0, 150, 500),                   # drowned in noise
        np.where(np.arange(500) < 450, 1000.0, 0.0),           # high 90 % of the time
        _square(high=20000.0),                                 # 20 mV by the declared LSB
    ])
    m = measure_pulse(rows, 1000.0, ["A", "B", "C", "D", "E"])
    assert [x.ok for x in m] == [True, False, False, False, False]
    assert m[1].problem == "flat: no pulse seen"
    assert "not a clean square wave" in m[2].problem
    assert "high level holds 90% of the time" in m[3].problem
    assert "a step of 20 mV by the declared LSB (1000 nV); expected about 1 mV" in m[4].problem
    with pytest.raises(ValueError, match="counts of shape \\(5, 500\\) for 2 channels"):
        measure_pulse(rows, 1000.0, ["A", "B"])


# --- behaviour ---------------------------------------------------------------------------------


def test_missing_samples_are_ignored_and_levels_are_medians() -> None:
    x = _square(high=1080.0, low=30.0).astype(float)           # 1 mV = 1050 counts
    x[::7] = np.nan
    x[3] = 5000.0                                              # a spike
    (m,) = measure_pulse(x[None], 1000.0, ["II"])
    assert (m.low, m.high, m.ok) == (30.0, 1080.0, True)
    assert m.gain == pytest.approx(1 / 1.05) and m.measured_mv == pytest.approx(1.05)
