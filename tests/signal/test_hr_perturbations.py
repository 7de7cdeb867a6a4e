"""detak's heart rate survives tall T waves and noise bursts (detak.signal.perturb) on a real
LUDB record, while the same perturbations throw the naive neurokit2 lead-II detector off.
Needs the shared LUDB data (fails, does not skip, when they are missing)."""

from __future__ import annotations

import warnings
from functools import cache

import numpy as np
import pytest

from detak.data.ludb import load_ludb
from detak.signal.intervals import measure_intervals
from detak.signal.perturb import noise_bursts, tall_t_waves

N = 1          # LUDB 1: sinus bradycardia, ~46 bpm; T waves and QRS annotated in every lead
FS = 500.0


@cache
def record():
    return load_ludb(N)


def _hr(signal: np.ndarray, leads: list[str] | None = None) -> float:
    rec = record().recording.replace(signal=signal)
    if leads:
        rec = rec.select(leads)
    hr = measure_intervals(rec).to_dict()["hr_bpm"]
    assert hr is not None
    return float(hr)


def _naive_hr(lead: np.ndarray) -> float:
    import neurokit2 as nk

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, info = nk.ecg_process(np.asarray(lead, dtype=float), sampling_rate=int(FS))
    return 60000.0 / (float(np.median(np.diff(info["ECG_R_Peaks"]))) / FS * 1000.0)


def _annotated_hr() -> float:
    peaks = sorted(w.peak for w in record().waves_of("II", "QRS"))
    return 60000.0 / (float(np.median(np.diff(peaks))) / FS * 1000.0)


def test_clean_rate_matches_the_annotation():
    x = record().recording.signal
    assert _hr(x) == pytest.approx(_annotated_hr(), abs=2)


def test_tall_t_waves_leave_detak_rate_but_fool_the_naive_detector():
    lr = record()
    rec = lr.recording
    x = rec.signal
    segs = [[(w.onset, w.offset) for w in lr.waves_of(lead, "T")
             if w.onset is not None and w.offset is not None] for lead in rec.leads]
    y = tall_t_waves(x, FS, segs, factor=3.0)
    ii = rec.index("II")
    # the perturbation is real: every lead-II T wave now stands at least 2.5x its old height
    # above the onset-offset line
    assert len(segs[ii]) >= 5
    for a, b in segs[ii]:
        line = np.linspace(x[ii, a], x[ii, b], b - a + 1)
        old = np.abs(x[ii, a: b + 1] - line).max()
        new = np.abs(y[ii, a: b + 1] - line).max()
        assert new >= 2.5 * old
    clean = _hr(x)
    assert abs(_naive_hr(y[ii]) - _naive_hr(x[ii])) > 5.0     # T waves counted as beats
    assert _hr(y) == pytest.approx(clean, abs=3)


def test_noise_bursts_in_three_leads_leave_detak_rate_unchanged():
    lr = record()
    rec = lr.recording
    x = rec.signal
    ii = rec.index("II")
    rows = [ii, rec.index("V1"), rec.index("V5")]
    qrs_h = float(np.median([np.ptp(x[ii, w.onset: w.offset + 1])
                             for w in lr.waves_of("II", "QRS")
                             if w.onset is not None and w.offset is not None]))
    clean = _hr(x)
    naive_clean = _naive_hr(x[ii])
    naive_off = []
    for seed in range(4):           # four placements of the two 1-s bursts
        y = noise_bursts(x, FS, leads=rows, seed=seed)
        d = y[ii] - x[ii]
        active = np.flatnonzero(d != 0)
        runs = np.split(active, np.flatnonzero(np.diff(active) > 1) + 1)
        assert len(runs) == 2
        # real: each burst's peak-to-peak in lead II is about the size of its QRS complexes
        assert all(np.ptp(d[r]) >= 0.8 * qrs_h for r in runs)
        assert _hr(y) == pytest.approx(clean, abs=3)
        naive_off.append(abs(_naive_hr(y[ii]) - naive_clean))
    assert max(naive_off) > 5.0     # some placements fool the single-lead naive detector


@pytest.mark.parametrize("leads", [None, ["II"]])
def test_mains_hum_does_not_add_beats(leads):
    """0.5 mV of 50 Hz (and of 60 Hz) hum: before the notch in `beat_train.prepare`, hum
    cycles leaking through the 40 Hz low-pass were counted as beats on many LUDB records."""
    from detak.data.ludb import load_ludb as load
    from detak.signal.perturb import mains_hum

    for n in (1, 26, 41):  # records where the hum broke beat detection before the notch
        rec = load(n).recording
        if leads:
            rec = rec.select(leads)
        clean = measure_intervals(rec).to_dict()["hr_bpm"]
        for hz in (50.0, 60.0):
            hum = rec.replace(signal=mains_hum(rec.signal, rec.fs, freq_hz=hz,
                                               amplitude_mv=0.5, seed=n))
            assert float(np.abs(hum.signal - rec.signal).max()) > 0.4
            assert measure_intervals(hum).to_dict()["hr_bpm"] == pytest.approx(clean, abs=2)


def _ref_hr(lr) -> float:
    peaks = sorted(w.peak for w in lr.waves_of("II", "QRS"))
    return 60000.0 / (float(np.median(np.diff(peaks))) / FS * 1000.0)


def _t_segments(lr):
    return [[(w.onset, w.offset) for w in lr.waves_of(lead, "T")
             if w.onset is not None and w.offset is not None] for lead in lr.recording.leads]


@pytest.mark.parametrize("n", [17, 34, 74, 108])
def test_single_lead_tall_t_waves_are_not_counted_as_beats(n):
    """Lead II alone with T waves x3: before `beats._drop_t_like` these LUDB records were
    read 20-50 bpm too fast (T waves counted as beats; benchmarks/hr_robustness.py, tII)."""
    from detak.data.ludb import load_ludb as load

    lr = load(n)
    rec = lr.recording
    y = tall_t_waves(rec.signal, FS, _t_segments(lr), factor=3.0)
    got = measure_intervals(rec.replace(signal=y).select(["II"]))
    assert got.to_dict()["hr_bpm"] == pytest.approx(_ref_hr(lr), abs=5)
    assert any("T waves" in note for note in got.notes)


@pytest.mark.parametrize(("n", "leads"), [(4, ["II"]), (5, ["II"]), (34, None), (158, ["II"])])
def test_noise_bursts_in_the_only_lead_are_not_counted_as_beats(n, leads):
    """Two 1-s bursts of muscle-like noise (QRS-sized) in lead II alone, or in all 12 leads:
    before the high-band burst test in `beats.noise_mask` these records were read 10-50 bpm
    too fast (noise counted as beats)."""
    from detak.data.ludb import load_ludb as load

    lr = load(n)
    rec = lr.recording
    y = noise_bursts(rec.signal, FS, seed=np.random.default_rng([0, n, 1]))
    r = rec.replace(signal=y)
    if leads:
        r = r.select(leads)
    assert measure_intervals(r).to_dict()["hr_bpm"] == pytest.approx(_ref_hr(lr), abs=5)


def test_noise_mask_leaves_clean_leads_alone_and_finds_bursts():
    from detak.signal.beats import noise_mask
    from detak.signal.filters import lowpass, remove_baseline

    x = np.asarray(remove_baseline(record().recording.signal, FS))
    lp = np.asarray(lowpass(x, FS))
    assert not noise_mask(lp, FS, raw=x).any()          # a clean 12-lead record: no burst
    y = noise_bursts(x, FS, leads=[1], starts_s=[2.0, 6.0], seed=0)
    m = noise_mask(np.asarray(lowpass(y, FS)), FS, raw=y)
    assert m[1, 1100:1400].all() and m[1, 3100:3400].all()   # inside both bursts
    assert not m[1, 2000:2800].any() and not m[[0, 2]].any()  # between them, other leads
