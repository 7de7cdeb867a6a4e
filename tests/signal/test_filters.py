"""Tests for detak.signal.filters: phase, pass and stop bands, resampling, bad input, the S1
chain on a Recording, and the Standardizer."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal as sps

from detak.data.ludb import load_ludb
from detak.data.recording import Recording
from detak.signal.filters import (
    FilterError,
    Standardizer,
    clean,
    lowpass,
    notch,
    remove_baseline,
    resample,
)


def _sine(f: float, fs: float, seconds: float, amp: float = 1.0) -> np.ndarray:
    return amp * np.sin(2 * np.pi * f * np.arange(int(seconds * fs)) / fs)


def _gain(y: np.ndarray, x: np.ndarray, fs: float) -> float:
    """RMS ratio away from the edges (2 s each side)."""
    e = int(2 * fs)
    return float(np.sqrt(np.mean(y[e:-e] ** 2) / np.mean(x[e:-e] ** 2)))


def _qrs_like(fs: float, at_s: float = 5.0, seconds: float = 10.0) -> np.ndarray:
    """A narrow symmetric spike (an R wave, ~60 ms wide) at ``at_s`` on a flat line: any move
    of its maximum comes from the filter's phase, not from its shape."""
    t = np.arange(int(seconds * fs)) / fs
    return np.exp(-0.5 * ((t - at_s) / 0.012) ** 2)


# ------------------------------------------------------------------------------ phase

@pytest.mark.parametrize("fs", [100.0, 500.0])
def test_filters_do_not_shift_a_qrs_like_peak(fs: float) -> None:
    x = _qrs_like(fs)
    peak = int(np.argmax(x))
    for y in (lowpass(x, fs), lowpass(x, fs, 15.0), remove_baseline(x, fs), notch(x, fs, 50.0),
              notch(x, fs, 60.0)):
        assert int(np.argmax(y)) == peak
    # the 15 Hz low-pass run one way (causal) does move the peak: the check above can fail
    causal = sps.sosfilt(sps.butter(4, 15.0, fs=fs, output="sos"), x)
    assert int(np.argmax(causal)) - peak >= 1


def test_clean_keeps_the_r_peak_of_real_beats_in_place() -> None:
    """LUDB record 1, lead II: every annotated R peak is still the local maximum after the S1
    chain at 500 Hz (within 1 sample)."""
    r = load_ludb(1)
    out = clean(r.recording).lead("II")
    raw = r.recording.lead("II") - np.median(r.recording.lead("II"))
    peaks = [w.peak for w in r.waves_of("II", "QRS")]
    assert len(peaks) >= 5
    for p in peaks:
        lo, hi = p - 25, p + 26
        assert abs((lo + int(np.argmax(out[lo:hi]))) - (lo + int(np.argmax(raw[lo:hi])))) <= 1


# ------------------------------------------------------------------------------ bands

def test_baseline_removal_attenuates_0_1_hz() -> None:
    fs = 100.0
    x = _sine(0.1, fs, 60.0, amp=2.0)
    assert _gain(remove_baseline(x, fs), x, fs) < 0.02


@pytest.mark.parametrize("f", [5.0, 10.0, 20.0, 30.0])
def test_baseline_removal_passes_5_to_30_hz(f: float) -> None:
    fs = 500.0
    x = _sine(f, fs, 10.0)
    assert _gain(remove_baseline(x, fs), x, fs) == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("fs", [100.0, 500.0])
@pytest.mark.parametrize("f", [5.0, 10.0, 20.0, 30.0])
def test_lowpass_40_passes_5_to_30_hz(f: float, fs: float) -> None:
    x = _sine(f, fs, 10.0)
    g = _gain(lowpass(x, fs, 40.0), x, fs)
    assert 0.9 <= g <= 1.001        # Butterworth order 4 run twice: 0.91 at 30 Hz, ~1 below 20
    if f <= 20:
        assert g > 0.99


def test_lowpass_40_attenuates_60_hz() -> None:
    fs = 500.0
    x = _sine(60.0, fs, 10.0)
    assert _gain(lowpass(x, fs, 40.0), x, fs) < 0.05


def test_lowpass_at_or_above_nyquist_is_identity() -> None:
    x = np.random.default_rng(0).normal(size=500)
    assert np.allclose(lowpass(x, 50.0, 40.0), x.astype(np.float32))


@pytest.mark.parametrize("fs", [250.0, 500.0])
def test_notch_removes_50_hz_and_keeps_10_hz(fs: float) -> None:
    hum, ecg = _sine(50.0, fs, 10.0), _sine(10.0, fs, 10.0)
    assert _gain(notch(hum, fs, 50.0), hum, fs) < 0.02
    assert _gain(notch(ecg, fs, 50.0), ecg, fs) == pytest.approx(1.0, abs=0.01)
    mixed = notch(ecg + hum, fs, 50.0)
    e = int(2 * fs)
    assert np.abs(mixed[e:-e] - ecg[e:-e]).max() < 0.05


def test_notch_removes_harmonics_below_nyquist() -> None:
    fs = 500.0
    x = _sine(150.0, fs, 10.0)
    assert _gain(notch(x, fs, 50.0), x, fs) < 0.05
    assert _gain(notch(x, fs, 50.0, harmonics=False), x, fs) > 0.95


# ------------------------------------------------------------------------------ resample

@pytest.mark.parametrize(("fs", "target", "n_in", "n_out"), [
    (500.0, 100.0, 5000, 1000), (360.0, 100.0, 3600, 1000), (130.0, 100.0, 1300, 1000),
    (100.0, 500.0, 1000, 5000)])
def test_resample_shape_and_content(fs: float, target: float, n_in: int, n_out: int) -> None:
    t_in = np.arange(n_in) / fs
    x = np.vstack([np.sin(2 * np.pi * 3.0 * t_in), 1.5 + 0.2 * np.sin(2 * np.pi * 7.0 * t_in)])
    y = resample(x, fs, target)
    assert y.shape == (2, n_out) and y.dtype == np.float32
    t_out = np.arange(n_out) / target
    expected = np.vstack([np.sin(2 * np.pi * 3.0 * t_out),
                          1.5 + 0.2 * np.sin(2 * np.pi * 7.0 * t_out)])
    inner = slice(int(0.1 * target), -int(0.1 * target))
    assert np.abs(y[:, inner] - expected[:, inner]).max() < 0.01
    # the edges too: an offset must not sag toward zero at the first and last samples
    assert np.abs(y[1, [0, -1]] - expected[1, [0, -1]]).max() < 0.1


def test_resample_suppresses_content_above_the_new_nyquist() -> None:
    x = _sine(70.0, 500.0, 10.0)
    y = resample(x, 500.0, 100.0)                  # 70 Hz would alias to 30 Hz
    assert float(np.sqrt(np.mean(y[100:-100] ** 2))) < 0.05


def test_resample_keeps_real_r_peaks() -> None:
    """LUDB record 2, lead II 500 -> 100 Hz: R peaks (annotated at 500 Hz) stay within one
    100-Hz sample."""
    r = load_ludb(2)
    y = resample(r.recording.lead("II"), 500.0, 100.0)
    peaks = [w.peak for w in r.waves_of("II", "QRS")]
    assert len(peaks) >= 8
    base = np.median(y)
    for p in peaks:
        c = int(round(p / 5))
        lo = max(0, c - 4)
        seg = y[lo: c + 5] - base
        sign = 1.0 if r.recording.lead("II")[p] >= np.median(r.recording.lead("II")) else -1.0
        assert abs(lo + int(np.argmax(sign * seg)) - p / 5) <= 1.0


def test_resample_same_rate_is_identity() -> None:
    x = np.random.default_rng(1).normal(size=(3, 400))
    assert np.array_equal(resample(x, 250.0, 250.0), x.astype(np.float32))


# ------------------------------------------------------------------------------ bad input

@pytest.mark.parametrize("fn", [
    lambda x: lowpass(x, 100.0), lambda x: remove_baseline(x, 100.0),
    lambda x: notch(x, 500.0), lambda x: resample(x, 500.0, 100.0)])
def test_nan_input_raises_filter_error(fn) -> None:
    x = np.ones((2, 1000))
    x[1, 10] = np.nan
    with pytest.raises(FilterError, match="NaN or inf"):
        fn(x)


def test_nan_in_a_recording_raises_filter_error() -> None:
    sig = np.zeros((1, 1000), dtype=np.float32)
    sig[0, 5] = np.inf
    with pytest.raises(FilterError, match="NaN or inf"):
        clean(Recording(sig, 100.0, ["II"]))


@pytest.mark.parametrize("fs", [0.0, -100.0, float("nan")])
def test_invalid_sample_rate_raises_filter_error(fs: float) -> None:
    x = np.ones(1000)
    for fn in (lambda: lowpass(x, fs), lambda: remove_baseline(x, fs), lambda: notch(x, fs),
               lambda: resample(x, fs, 100.0)):
        with pytest.raises(FilterError, match="sample rate"):
            fn()
    with pytest.raises(FilterError, match=r"rec1: sample rate missing or invalid"):
        clean(Recording(np.ones((1, 1000)), fs, ["II"], name="rec1"))


def test_invalid_target_rate_and_empty_signal_raise_filter_error() -> None:
    with pytest.raises(FilterError, match="target sample rate"):
        resample(np.ones(100), 100.0, 0.0)
    with pytest.raises(FilterError, match="no samples"):
        lowpass(np.ones((2, 0)), 100.0)


# ------------------------------------------------------------------------------ clean()

def test_clean_records_its_steps_and_resamples() -> None:
    rec = load_ludb(3).recording
    out = clean(rec, notch_hz=50, target_fs=100)
    assert out.fs == 100.0 and out.signal.shape == (12, 1000) and out.leads == rec.leads
    assert out.meta["preprocessing"] == ["baseline removal 0.5 Hz", "notch 50 Hz",
                                         "low-pass 40 Hz", "resample 500→100 Hz"]
    assert rec.fs == 500.0 and "preprocessing" not in rec.meta       # input untouched
    # drift gone: every lead's median of 1-s medians is near zero
    med = np.median(out.signal.reshape(12, 10, 100), axis=2)
    assert np.abs(med).max() < 0.2


# ------------------------------------------------------------------------------ Standardizer

def test_standardizer_save_load_round_trip(tmp_path) -> None:
    x = np.random.default_rng(2).normal(3.0, 2.0, size=(20, 12, 100))
    s = Standardizer.fit(x)
    assert s.mean[0] == pytest.approx(x.mean()) and s.std[0] == pytest.approx(x.std())
    path = tmp_path / "std.json"
    s.save(path)
    back = Standardizer.load(path)
    assert back == s
    assert np.array_equal(back.transform(x[0]), s.transform(x[0]))
    z = s.transform(x)
    assert abs(float(z.mean())) < 1e-5 and float(z.std()) == pytest.approx(1.0, abs=1e-5)


def test_standardizer_per_lead(tmp_path) -> None:
    rng = np.random.default_rng(3)
    scales = np.array([0.1, 1.0, 5.0])
    offsets = np.array([-1.0, 0.0, 2.0])
    x = rng.normal(size=(30, 3, 200)) * scales[None, :, None] + offsets[None, :, None]
    s = Standardizer.fit(x, per_lead=True)
    assert s.per_lead and len(s.mean) == 3
    assert np.allclose(s.mean, x.mean(axis=(0, 2))) and np.allclose(s.std, x.std(axis=(0, 2)))
    z = s.transform(x)
    assert np.allclose(z.mean(axis=(0, 2)), 0.0, atol=1e-4)
    assert np.allclose(z.std(axis=(0, 2)), 1.0, atol=1e-4)
    one = s.transform(x[0])                                        # a single record (3, 200)
    assert one.shape == (3, 200) and np.allclose(one, z[0], atol=1e-5)
    s.save(tmp_path / "pl.json")
    assert Standardizer.load(tmp_path / "pl.json") == s
    # the global fit would leave the leads' scales unequal
    g = Standardizer.fit(x).transform(x)
    assert g.std(axis=(0, 2)).max() / g.std(axis=(0, 2)).min() > 10


def test_standardizer_zero_std_does_not_divide_by_zero() -> None:
    s = Standardizer.fit(np.full((2, 1, 10), 4.0))
    assert np.array_equal(s.transform(np.full((1, 10), 4.0)), np.zeros((1, 10), np.float32))
