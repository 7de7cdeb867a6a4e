"""One beat train per recording (issue 13, item 9): a poor second lead must not double the
heart rate, the quality check and the intervals give one heart rate, and every QRS counts.

Two-lead 360-Hz recordings as a Holter gives them: lead II and V1 made poor
(`detak.signal.perturb.poor_lead`). References: LUDB's annotated QRS peaks; for PTB-XL,
neurokit2 on each of the 12 clean leads (the benchmark's reference, see
benchmarks/hr_robustness.py --suite twolead). Needs the shared data (fails when missing)."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from detak.data.ludb import load_ludb
from detak.data.ptbxl import open_ptbxl
from detak.data.recording import Recording
from detak.signal import analysis, beat_train
from detak.signal.analysis import analyse_recording
from detak.signal.filters import resample
from detak.signal.perturb import poor_lead

FS = 360.0


def two_lead(rec: Recording, kind: str, seed: int = 0) -> Recording:
    x = resample(np.asarray(rec.signal, dtype=np.float64), rec.fs, FS)
    leads = list(rec.leads)
    v = poor_lead(x[leads.index("V1")], FS, kind, seed=seed)
    return rec.replace(signal=np.vstack([x[leads.index("II")], v]).astype(np.float32), fs=FS,
                       leads=["II", "V1"])


@cache
def ludb_rr(n: int) -> float:
    peaks = sorted(w.peak for w in load_ludb(n).waves_of("II", "QRS"))
    return float(np.median(np.diff(peaks))) / 500.0 * 1000.0


# LUDB 1: sinus bradycardia 46 bpm, tall T waves; 5 and 20: sinus rhythm. Before the single
# beat train, a poor V1 doubled the rate of record 1 (RR 1316 ms measured as 654 ms).
@pytest.mark.parametrize("n", [1, 5, 20])
@pytest.mark.parametrize("kind", ["low", "noisy"])
def test_poor_second_lead_does_not_change_the_rate(n: int, kind: str) -> None:
    out = analyse_recording(two_lead(load_ludb(n).recording, kind, seed=n))
    assert out["rr_ms"] == pytest.approx(ludb_rr(n), abs=25)


def test_quality_and_intervals_give_one_heart_rate() -> None:
    out = analyse_recording(two_lead(load_ludb(1).recording, "noisy", seed=1))
    assert out["quality"]["heart_rate_bpm"] == pytest.approx(out["hr_bpm"], abs=0.05)


def test_disagreeing_leads_are_named_in_the_notes() -> None:
    out = analyse_recording(two_lead(load_ludb(1).recording, "noisy", seed=1))
    notes = " ".join(out["notes"])
    assert "leads disagree on the beat count" in notes and "beats taken from II," in notes
    assert out["quality"]["reference_lead"] == "II"
    snr = {k: v["metrics"]["qrs_snr"] for k, v in out["quality"]["per_lead"].items()}
    assert snr["II"] > 3 * snr["V1"]


def test_twelve_leads_all_vote() -> None:
    # LUDB 1: aVF counts 2 T waves more than the other leads; the majority keeps them out
    rec = load_ludb(1).recording
    b = beat_train.find_beats(rec.signal, rec.fs, list(rec.leads))
    assert b.trusted_leads == b.usable_leads == list(range(12))
    assert beat_train.ventricular_rr_ms(b) == pytest.approx(ludb_rr(1), abs=10)


def test_analysis_finds_the_beats_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from detak.signal import beats as beats_mod
    from detak.signal import intervals

    calls = []
    real = beats_mod.detect_beats

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(beat_train, "detect_beats", counting)
    monkeypatch.setattr(intervals, "detect_beats", counting)
    out = analysis.analyse_recording(load_ludb(2).recording)
    assert out["hr_bpm"] is not None and len(calls) == 1


def test_invalid_samples_give_no_beat_and_no_rr_across_them() -> None:
    rec = load_ludb(2).recording
    whole = beat_train.find_beats(rec.signal, rec.fs)
    valid = np.ones(rec.n_samples, dtype=bool)
    valid[2000:2600] = False                                   # 1.2 s at 500 Hz
    b = beat_train.find_beats(rec.signal, rec.fs, valid=valid)
    t = b.times_s
    assert not np.any((t > 2000 / rec.fs - 0.1) & (t < 2600 / rec.fs + 0.1))
    assert b.samples.size < whole.samples.size
    across = np.flatnonzero((t[:-1] < 4.0) & (t[1:] > 5.2))
    assert across.size == 1 and b.interval_noisy[across[0]]
    # the gap takes two RRs (918, 912 ms) out of a sinus arrhythmia of 890-942 ms: the median
    # of the others moves by ~12 ms (an RR across the gap, 1830 ms, is not among them)
    assert beat_train.ventricular_rr_ms(b) == pytest.approx(beat_train.ventricular_rr_ms(whole),
                                                           abs=15)
    assert beat_train.ventricular_rr_ms(b) < 1000


@cache
def ptbxl_with(code: str, k: int) -> Recording:
    ptb = open_ptbxl()
    m = ptb.metadata
    ids = sorted(int(i) for i, row in m.iterrows()
                 if code in row["scp_codes"] and int(row["strat_fold"]) <= 9)
    return ptb.record(ids[k])


def _consensus_rr(rec: Recording) -> float:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from hr_robustness import consensus_rr

    rr, agree = consensus_rr(rec)
    assert rr is not None, f"no 12-lead reference ({agree} leads agree)"
    return rr


# every QRS counts: bigeminy (every other beat ectopic) and paced rhythms at the ventricular
# rate, not half of it or twice it; and no P wave counts (2AVB 0 = ecg_id 1222: 2:1 block, its
# blocked P waves were counted as beats until weak detections were judged against the rhythm
# of the strong ones)
@pytest.mark.parametrize("code,k", [("BIGU", 0), ("BIGU", 3), ("PACE", 0), ("PACE", 5),
                                    ("2AVB", 0)])
def test_bigeminy_paced_and_av_block_count_every_qrs_only(code: str, k: int) -> None:
    rec = ptbxl_with(code, k)
    ref = _consensus_rr(rec)
    for kind in ("low", "noisy"):
        out = analyse_recording(two_lead(rec, kind, seed=k))
        assert out["rr_ms"] == pytest.approx(ref, abs=25), kind


def benchmark_window(rec: Recording, n: int, kind: str) -> Recording:
    """The two-lead window `benchmarks/hr_robustness.py --suite twolead` builds (same seed)."""
    x = resample(np.asarray(rec.signal, dtype=np.float64), rec.fs, FS)
    k = ["low", "noisy"].index(kind)
    v = poor_lead(x[list(rec.leads).index("V1")], FS, kind,
                  seed=np.random.default_rng([0, n, 100 + k]))
    return rec.replace(signal=np.vstack([x[list(rec.leads).index("II")], v]).astype(np.float32),
                       fs=FS, leads=["II", "V1"])


# PTB-XL bigeminy windows the two-lead benchmark got wrong (issue 13 item 9), by cause:
# 5786: the ectopic beats have little slope in II and were dropped as "low-slope early"
# (T waves?) although they come after any T wave and are half the sinus QRS or taller;
# 16455, 17248, 20972: tiny baseline wiggles in II (< 0.2x the QRS amplitude) taken for beats
# (not "early", so kept); 21384: the ectopic beats, 2x taller and steeper than the sinus
# beats, come at a steady 420 ms and were dropped as T waves; 17408: a wiggle 0.28x the QRS
# amplitude (with half the median slope) broke the short/long alternation; 6721 (II itself
# 0.3 mV and noisy, so both leads are trusted): noise peaks of the noisy V1 counted though II
# shows no deflection there. Each > 100 ms off before (6721 and 17408 still at commit a9c145f,
# which fixed the other five: 670/573 and 568 ms against 825 and 870 ms).
@pytest.mark.parametrize("n", [5786, 6721, 16455, 17248, 17408, 20972, 21384])
def test_bigeminy_every_ectopic_qrs_counts_and_no_baseline_wiggle(n: int) -> None:
    rec = open_ptbxl().record(n)
    ref = _consensus_rr(rec)
    for kind in ("low", "noisy"):
        out = analyse_recording(benchmark_window(rec, n, kind))
        assert out["rr_ms"] == pytest.approx(ref, abs=25), kind
        assert 60000.0 / out["quality"]["heart_rate_bpm"] == pytest.approx(ref, abs=25), kind
