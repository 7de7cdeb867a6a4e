"""The heart rate's RR (issue 13, item 9): the ventricular rate, every QRS counts
(`detak.signal.beats.ventricular_rr_ms`): the median RR, or, when the RR alternates, the median
of the means of consecutive RR pairs. In bigeminy the RR alternates coupling / compensatory
interval, and the plain median RR of a 10-s window flips between them when one beat at the
window's edge is in or out; the pair means do not."""

from __future__ import annotations

import numpy as np
import pytest

from detak.signal.beats import Beats, ventricular_rr_ms

FS = 500.0


def train(rr_ms: list[float], noisy_interval: list[int] = ()) -> Beats:
    s = np.round(np.concatenate([[250.0], 250.0 + np.cumsum(rr_ms)]) * FS / 1000).astype(int)
    bad = np.zeros(len(rr_ms), dtype=bool)
    bad[list(noisy_interval)] = True
    return Beats(s, np.ones(s.size, int), [0], np.zeros(s.size, bool), interval_noisy=bad,
                 fs=FS)


def bigeminy(n_intervals: int, first: str) -> list[float]:
    short, long_ = 560.0, 1140.0          # coupling / compensatory: mean cycle 850 ms
    pair = [short, long_] if first == "short" else [long_, short]
    return (pair * n_intervals)[:n_intervals]


@pytest.mark.parametrize("first", ["short", "long"])
def test_bigeminy_edge_beat_does_not_flip_the_rate(first: str) -> None:
    # 11 RR (12 beats, as PTB-XL 2301) vs the same train with one beat more at the edge
    a, b = train(bigeminy(11, first)), train(bigeminy(12, first))
    old = [float(np.median(np.diff(x.samples))) * 1000 / FS for x in (a, b)]
    assert abs(old[0] - old[1]) > 200                   # the plain median RR flips
    new = [ventricular_rr_ms(x) for x in (a, b)]
    assert new[0] == pytest.approx(850.0, abs=1) and new[1] == pytest.approx(850.0, abs=1)


def test_regular_rhythm_gives_the_median_rr() -> None:
    rng = np.random.default_rng(0)
    rr = list(800.0 + rng.normal(0, 15, 11))
    b = train(rr)
    assert ventricular_rr_ms(b) == pytest.approx(float(np.median(np.diff(b.samples)))
                                                 * 1000 / FS, abs=10)


@pytest.mark.parametrize("change", ["missed", "extra"])
def test_one_missed_or_extra_beat_barely_moves_it(change: str) -> None:
    rr = [800.0] * 11
    if change == "missed":
        rr[5:7] = [1600.0]                # a beat not found: one RR of two cycles
    else:
        rr[5:6] = [300.0, 500.0]          # a T wave counted: one RR split in two
    assert ventricular_rr_ms(train(rr)) == pytest.approx(800.0, abs=1)


def test_intervals_across_a_burst_are_left_out() -> None:
    rr = [800.0] * 11
    rr[4] = 1600.0                         # across a noise burst: a beat may be missing there
    assert ventricular_rr_ms(train(rr, noisy_interval=[4])) == pytest.approx(800.0, abs=1)


def test_two_beats_give_their_interval_and_one_beat_none() -> None:
    assert ventricular_rr_ms(train([900.0])) == pytest.approx(900.0, abs=2)
    assert ventricular_rr_ms(train([])) is None
