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


def test_p_off_level_finds_where_the_wave_falls_to_the_level():
    from detak.signal.delineation import p_off_level

    i = np.arange(400)
    z = np.exp(-(((i - 100) / 20.0) ** 2))
    expected = int(np.ceil(100 + 20 * np.sqrt(np.log(1 / 0.3))))
    assert p_off_level(z, 100, 399, 0.3) == expected
    assert p_off_level(z + 1.0, 100, 399, 0.3) == 399   # never falls: the search end


def test_small_p_wave_keeps_its_own_boundary_when_it_agrees():
    from detak.signal.delineation import P_MIN_MV, P_STRONG_MV, LeadWaves, combine_leads

    small = (P_MIN_MV + P_STRONG_MV) / 2   # a real but small P wave
    lws = {k: LeadWaves(p_on=-190.0, p_off=-100.0, p_amp=0.15) for k in ("I", "III", "aVF")}
    lws["II"] = LeadWaves(p_on=-225.0, p_off=-105.0, p_amp=small)
    lws["V1"] = LeadWaves(p_on=-300.0, p_off=-100.0, p_amp=small)   # disagrees by > AGREE_MS
    out = combine_leads(lws)
    assert out["p_on"] == -190.0              # the multi-lead value: the clear leads' median
    assert lws["II"].p_on == -225.0 and lws["II"].p_off == -105.0
    assert lws["V1"].p_on == -190.0           # too far from the others: takes theirs


def test_p_offset_averages_the_knee_and_level_rules(monkeypatch):
    from detak.signal import delineation as d

    # a P wave with a long shallow tail: the knee and the level rule disagree
    beat = (0.15 * np.exp(-((T + 0.17) / 0.02) ** 2) + 0.04 * np.exp(-((T + 0.12) / 0.03) ** 2)
            + _g(0, 10, 1.0))

    def p_off() -> float:
        return d.delineate_lead(beat, FS, t0=250, qrs=(-30.0, 30.0), rr_ms=900.0).p_off

    both = p_off()
    monkeypatch.setattr(d, "P_OFF_LEVEL_W", 0.0)
    knee = p_off()
    monkeypatch.setattr(d, "P_OFF_LEVEL_W", 1.0)
    level = p_off()
    assert abs(knee - level) > 4
    assert min(knee, level) < both < max(knee, level)
