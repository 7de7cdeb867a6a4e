"""R and S amplitudes of `delineate_lead` on the QRS shapes clinicians name."""

import numpy as np
import pytest

from detak.signal.delineation import delineate_lead

FS = 500.0
T = np.arange(-0.5, 0.8, 1 / FS)


def _g(centre_ms: float, width_ms: float, amp: float) -> np.ndarray:
    return amp * np.exp(-((T - centre_ms / 1000) / (width_ms / 1000)) ** 2)


def _rs(beat: np.ndarray) -> tuple[float, float]:
    w = delineate_lead(beat, FS, t0=250, qrs=(-40.0, 50.0), rr_ms=900.0)
    return w.r_amp, w.s_amp


def test_rs_complex_with_j_point_elevation_keeps_the_small_r_and_deep_s():
    # V1-like: small r, deep S, then the signal rises to +0.25 mV at the QRS end (J elevation)
    beat = _g(-25, 6, 0.15) + _g(5, 10, -1.0) + 0.25 / (1 + np.exp(-(T - 0.035) / 0.004))
    r, s = _rs(beat)
    assert r == pytest.approx(0.15, abs=0.05)
    assert s == pytest.approx(1.0, abs=0.1)


def test_qr_complex_has_no_s_wave():
    # lead II-like qR: a small q before a tall R, nothing negative after it
    beat = _g(-25, 5, -0.1) + _g(0, 10, 1.2)
    r, s = _rs(beat)
    assert r == pytest.approx(1.2, abs=0.05)
    assert s < 0.02  # the q wave is not an S wave


def test_qs_complex_has_no_r_wave():
    r, s = _rs(_g(0, 12, -0.9))
    assert r < 0.02 and s == pytest.approx(0.9, abs=0.05)


def test_rsr_prime_uses_the_tall_r_prime_and_the_s_between():
    # RBBB in V1: r, s, tall R'
    beat = _g(-25, 5, 0.2) + _g(-5, 6, -0.4) + _g(25, 8, 0.9)
    r, s = _rs(beat)
    assert r == pytest.approx(0.9, abs=0.05)
    assert s == pytest.approx(0.4, abs=0.08)
