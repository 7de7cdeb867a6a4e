"""detak.signal.perturb: bad inputs get clear errors; each perturbation is what it claims
(frequency, amplitude, position, width), leaves the input untouched and is reproducible."""

from __future__ import annotations

import numpy as np
import pytest

from detak.signal.perturb import (
    PerturbationError,
    baseline_wander,
    mains_hum,
    noise_bursts,
    pacing_spikes,
    robust_amplitude,
    tall_t_waves,
)

FS = 500.0


def _beats(n_leads: int = 3, seconds: float = 10.0, fs: float = FS) -> np.ndarray:
    """Gaussian 'QRS' (1 mV) every 0.8 s plus a 0.25 mV 'T' 300 ms later; lead k scaled."""
    t = np.arange(int(seconds * fs)) / fs
    one = np.zeros_like(t)
    for c in np.arange(0.4, seconds - 0.5, 0.8):
        one += np.exp(-(((t - c) / 0.012) ** 2)) + 0.25 * np.exp(-(((t - c - 0.3) / 0.05) ** 2))
    return np.vstack([one * (1.0 - 0.2 * k) for k in range(n_leads)]).astype(np.float32)


def _dominant_hz(d: np.ndarray, fs: float) -> float:
    spec = np.abs(np.fft.rfft(d - d.mean()))
    return float(np.fft.rfftfreq(d.size, 1 / fs)[np.argmax(spec)])


# ---------------------------------------------------------------------- bad inputs -----
@pytest.mark.parametrize("fs", [0.0, -500.0, float("nan"), None])
def test_bad_sample_rate_is_named(fs):
    with pytest.raises(PerturbationError, match="sample rate"):
        baseline_wander(np.zeros(1000), fs)


def test_nan_samples_and_bad_shapes_are_refused():
    x = np.zeros((2, 1000))
    x[1, 10] = np.nan
    with pytest.raises(PerturbationError, match="NaN"):
        mains_hum(x, FS)
    with pytest.raises(PerturbationError, match=r"shape \(2, 3, 10\)"):
        mains_hum(np.zeros((2, 3, 10)), FS)
    with pytest.raises(PerturbationError, match="shape"):
        mains_hum(np.zeros((2, 0)), FS)


def test_tall_t_segments_must_match_leads_and_fit():
    x = _beats(2)
    with pytest.raises(PerturbationError, match="1 segment lists for 2 leads"):
        tall_t_waves(x, FS, [[(100, 200)]])
    with pytest.raises(PerturbationError, match=r"lead row 1: segment \(4900, 5200\)"):
        tall_t_waves(x, FS, [[], [(4900, 5200)]])
    with pytest.raises(PerturbationError, match=r"segment \(300, 200\)"):
        tall_t_waves(x, FS, [[(300, 200)], []])
    with pytest.raises(PerturbationError, match="factor"):
        tall_t_waves(x, FS, [[], []], factor=0.0)


def test_noise_burst_arguments_are_checked():
    x = _beats(3)
    with pytest.raises(PerturbationError, match="do not fit"):
        noise_bursts(x, FS, n_bursts=4, duration_s=3.0)
    with pytest.raises(PerturbationError, match="band .* empty at sample rate 30 Hz"):
        noise_bursts(np.zeros(3000), 30.0)
    with pytest.raises(PerturbationError, match=r"lead rows \[5\] do not exist"):
        noise_bursts(x, FS, leads=[0, 5])
    with pytest.raises(PerturbationError, match="2 start times for 3 bursts"):
        noise_bursts(x, FS, n_bursts=3, starts_s=[1.0, 5.0])
    with pytest.raises(PerturbationError, match="do not fit"):
        noise_bursts(x, FS, starts_s=[1.0, 9.5])
    with pytest.raises(PerturbationError, match="n_bursts"):
        noise_bursts(x, FS, n_bursts=0)


def test_sines_refuse_aliasing_and_nonpositive_amplitude():
    with pytest.raises(PerturbationError, match="Nyquist frequency of the 80-Hz signal"):
        mains_hum(np.zeros(800), 80.0)
    with pytest.raises(PerturbationError, match="amplitude_mv"):
        baseline_wander(np.zeros(800), FS, amplitude_mv=-1.0)
    with pytest.raises(PerturbationError, match="amplitude_mv"):
        pacing_spikes(np.zeros(800), FS, [400], amplitude_mv=0.0)


# ---------------------------------------------------------------- what they do -----
def test_inputs_untouched_shapes_kept_and_seeded_reproducibly():
    x = _beats(3)
    before = x.copy()
    for fn in (noise_bursts, baseline_wander, mains_hum):
        a, b, c = fn(x, FS, seed=7), fn(x, FS, seed=7), fn(x, FS, seed=8)
        assert a.shape == x.shape and a.dtype == np.float32
        assert np.array_equal(a, b)
        assert not np.allclose(a, c), fn.__name__
        assert fn(x[1], FS, seed=7).shape == (x.shape[1],)
    assert np.array_equal(x, before)


def test_tall_t_scales_the_t_wave_only_and_smoothly():
    x = _beats(2)
    # T of the beat at 1.2 s peaks at 1.5 s: its segment 1.35-1.65 s
    seg = (int(1.35 * FS), int(1.65 * FS))
    y = tall_t_waves(x, FS, [[seg], []], factor=3.0)
    peak = int(1.5 * FS)
    line = np.interp(peak, seg, x[0, list(seg)])
    assert (y[0, peak] - line) == pytest.approx(3.0 * (x[0, peak] - line), rel=1e-3)
    outside = np.ones(x.shape[1], dtype=bool)
    outside[seg[0]: seg[1] + 1] = False
    assert np.allclose(y[0, outside], x[0, outside], atol=1e-6)
    assert np.allclose(y[1], x[1], atol=1e-6)            # no segment in lead 1
    # smooth: no step anywhere larger than the steepest step of the original QRS
    assert np.abs(np.diff(y[0] - x[0])).max() < np.abs(np.diff(x[0])).max()


def test_noise_bursts_sit_where_said_in_band_and_as_big_as_the_qrs():
    x = _beats(4)
    y = noise_bursts(x, FS, leads=[0, 2], seed=3)
    d = y - x
    assert np.allclose(d[[1, 3]], 0.0)
    for row in (0, 2):
        active = np.flatnonzero(np.abs(d[row]) > 1e-9)
        runs = np.split(active, np.flatnonzero(np.diff(active) > 1) + 1)
        assert len(runs) == 2
        for run in runs:
            assert run.size == pytest.approx(FS, abs=2)     # 1 s
            ratio = np.ptp(d[row, run]) / robust_amplitude(x, FS)[row]
            assert ratio == pytest.approx(1.0, abs=0.02)
        spec = np.abs(np.fft.rfft(d[row])) ** 2
        f = np.fft.rfftfreq(d.shape[1], 1 / FS)
        assert spec[(f >= 15) & (f <= 160)].sum() > 0.9 * spec.sum()


def test_noise_burst_positions_vary_with_seed_but_stay_apart():
    x = _beats(1)
    starts = set()
    for seed in range(5):
        d = noise_bursts(x, FS, seed=seed)[0] - x[0]
        active = np.flatnonzero(np.abs(d) > 1e-9)
        runs = np.split(active, np.flatnonzero(np.diff(active) > 1) + 1)
        assert len(runs) == 2 and runs[1][0] > runs[0][-1]
        starts.add(int(runs[0][0]))
    assert len(starts) > 1


@pytest.mark.parametrize(("fs", "width_ms", "n_samples"), [(500.0, 1.5, 1), (1000.0, 2.0, 2)])
def test_pacing_spikes_before_each_onset_narrow_and_large(fs, width_ms, n_samples):
    x = np.zeros((3, int(5 * fs)))
    onsets = [int(1.0 * fs), int(2.0 * fs), int(3.0 * fs), 2]     # the last one: no room before
    y = pacing_spikes(x, fs, onsets, amplitude_mv=3.0, width_ms=width_ms, before_ms=10.0,
                      seed=0)
    for row in range(3):
        big = np.flatnonzero(np.abs(y[row]) > 1.0)
        expected = [o - int(0.01 * fs) + k for o in onsets[:3] for k in range(n_samples)]
        assert big.tolist() == expected
        amp = np.abs(y[row, big])
        assert np.all((amp >= 1.5 - 1e-6) & (amp <= 3.0 + 1e-6))
        # recovery tail of opposite sign right after the pulse, small
        after = y[row, expected[-1] + 1]
        assert np.sign(after) == -np.sign(y[row, expected[-1]])
        assert abs(after) < 0.4


def test_baseline_wander_and_hum_frequency_and_amplitude():
    x = np.zeros((2, 10000))
    w = baseline_wander(x, FS, freq_hz=0.3, amplitude_mv=1.0, seed=1)
    assert _dominant_hz(w[0], FS) == pytest.approx(0.3, abs=0.06)
    assert np.ptp(w, axis=1) == pytest.approx([2.0, 2.0], abs=0.01)
    assert not np.allclose(w[0], w[1])                     # per-lead phase
    for hz in (50.0, 60.0):
        h = mains_hum(x, FS, freq_hz=hz, amplitude_mv=0.3, seed=1)
        assert _dominant_hz(h[1], FS) == pytest.approx(hz, abs=0.1)
        assert np.abs(h).max() == pytest.approx(0.3, abs=0.005)


def test_robust_amplitude_tracks_qrs_size_per_lead():
    x = _beats(3)
    amp = robust_amplitude(x, FS)
    assert amp[0] == pytest.approx(1.0, abs=0.15)
    assert amp[1] / amp[0] == pytest.approx(0.8, abs=0.02)
    assert amp[2] / amp[0] == pytest.approx(0.6, abs=0.02)
