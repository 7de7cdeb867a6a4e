"""Tests for detak.signal.quality on real records (LUDB 500 Hz, PTB-XL 100 Hz) with synthetic
corruptions: each corruption must be flagged on the lead it hits, and the clean record it came
from must not be flagged for it."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from scipy import signal as sps

from detak.data.ludb import load_ludb
from detak.data.ptbxl import open_ptbxl
from detak.data.recording import Recording
from detak.signal.filters import resample
from detak.signal.quality import (
    DEFAULT_THRESHOLDS,
    QualityError,
    QualityReport,
    RejectedRecordingError,
    assess_quality,
)

TH = DEFAULT_THRESHOLDS
ANNOTATIONS = ["baseline_drift", "static_noise", "burst_noise", "electrodes_problems",
               "extra_beats", "pacemaker"]


# ------------------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module")
def ptb_clean() -> list[Recording]:
    """The first 4 fold-9 PTB-XL records labelled NORM only, with no drift, noise, electrode,
    extra-beat or pacemaker annotation."""
    ptb = open_ptbxl()
    m = ptb.metadata
    ok = (m["strat_fold"] == 9) & m[ANNOTATIONS].isna().all(axis=1) & m["superclasses"].map(
        lambda s: s == ["NORM"])
    return [ptb.record(int(e)) for e in m.index[ok][:4]]


@pytest.fixture(scope="module")
def ludb_clean() -> list[Recording]:
    """The first 3 LUDB records in sinus rhythm without a pacemaker, leads I, II, V2, V3, V5
    (five leads keep neurokit2's cost down)."""
    out = []
    for n in range(1, 201):
        r = load_ludb(n)
        if r.meta["rhythm"] == ["Sinus rhythm"] and not r.meta["pacemaker"]:
            out.append(r.recording.select(["I", "II", "V2", "V3", "V5"]))
        if len(out) == 3:
            break
    return out


@pytest.fixture(scope="module")
def ptb(ptb_clean: list[Recording]) -> Recording:
    return ptb_clean[0]


@pytest.fixture(scope="module")
def ludb(ludb_clean: list[Recording]) -> Recording:
    return ludb_clean[0]


def _with_lead(rec: Recording, lead: str, new: np.ndarray) -> Recording:
    sig = rec.signal.copy()
    sig[rec.index(lead)] = new
    return rec.replace(signal=sig)


def _emg(n: int, fs: float, rms_mv: float, seed: int = 0) -> np.ndarray:
    """EMG-like noise: Gaussian, band-limited to 10-150 Hz (or 0.45 fs)."""
    sos = sps.butter(4, [10.0, min(150.0, 0.45 * fs)], btype="band", fs=fs, output="sos")
    e = sps.sosfiltfilt(sos, np.random.default_rng(seed).normal(size=n))
    return (e / e.std() * rms_mv).astype(np.float32)


def _flagged(report: QualityReport, lead: str, words: str) -> bool:
    return any(words in r for r in report.per_lead[lead].reasons)


# ------------------------------------------------------------------------------ bad input

def test_sample_rate_below_50_hz_is_an_error_naming_the_rate() -> None:
    rec = Recording(np.zeros((1, 300)), 30.0, ["II"], name="slow")
    with pytest.raises(QualityError, match=r"slow: sample rate 30 Hz is below the 50 Hz"):
        assess_quality(rec)


def test_missing_sample_rate_is_an_error() -> None:
    with pytest.raises(QualityError, match="sample rate missing or invalid"):
        assess_quality(Recording(np.zeros((1, 300)), float("nan"), ["II"]))


def test_empty_signal_is_an_error() -> None:
    with pytest.raises(QualityError, match="no samples"):
        assess_quality(Recording(np.zeros((1, 0)), 100.0, ["II"], name="empty"))


def test_too_short_recording_is_rejected_with_reason(ptb: Recording) -> None:
    short = ptb.replace(signal=ptb.signal[:, :150])       # 1.5 s
    rep = assess_quality(short)
    assert rep.rejected
    assert rep.reasons[0] == "recording too short (1.50 s < 2 s)"


# ------------------------------------------------------------------------------ clean records

def test_clean_ptbxl_records_are_ok(ptb_clean: list[Recording]) -> None:
    for rec in ptb_clean:
        rep = assess_quality(rec)
        assert rep.verdict == "ok", (rec.name, rep.reasons)
        assert 40 <= rep.heart_rate_bpm <= 120
        assert rep.reference_lead == "II"


def test_clean_ludb_records_are_ok(ludb_clean: list[Recording]) -> None:
    for rec in ludb_clean:
        rep = assess_quality(rec)
        assert rep.verdict == "ok", (rec.name, rep.reasons)
        assert rep.n_beats >= 5


# ------------------------------------------------------------------------------ lead off / flat

@pytest.mark.parametrize("which", ["ptb", "ludb"])
def test_lead_off_flat_line_rejects_that_lead(which: str, request: pytest.FixtureRequest) -> None:
    rec: Recording = request.getfixturevalue(which)
    off = _with_lead(rec, "V3", np.full(rec.n_samples, 0.35, dtype=np.float32))
    rep = assess_quality(off)
    v3 = rep.per_lead["V3"]
    assert v3.verdict == "reject"
    assert re.fullmatch(r"V3: flat line \(peak-to-peak 0\.000 mV < 0\.02 mV\): electrode off\?",
                        v3.reasons[0])
    assert rep.verdict == "warn" and not rep.rejected       # lead II still fine
    assert all(rep.per_lead[k].verdict == "ok" for k in rep.per_lead if k != "V3")


def test_lead_coming_off_half_way_is_flagged(ludb: Recording) -> None:
    x = ludb.lead("V2").copy()
    x[int(0.4 * x.size):] = x[int(0.4 * x.size)]             # stuck after 4 s
    rep = assess_quality(_with_lead(ludb, "V2", x))
    assert rep.per_lead["V2"].verdict == "reject"
    assert _flagged(rep, "V2", "flat for 6 of 10 s")
    assert rep.per_lead["V2"].metrics["flat_fraction"] >= 0.5


def test_lead_ii_off_rejects_the_recording(ptb: Recording) -> None:
    rep = assess_quality(_with_lead(ptb, "II", np.zeros(ptb.n_samples, dtype=np.float32)))
    assert rep.rejected
    assert "lead II, needed for measurement, is unusable" in rep.reasons
    assert any(r.startswith("II: flat line") for r in rep.reasons)
    with pytest.raises(RejectedRecordingError, match="ptbxl:.* rejected .*II: flat line"):
        rep.raise_if_rejected()


def test_most_leads_off_rejects_even_with_lead_ii_fine(ptb: Recording) -> None:
    off = ["I", "III", "aVR", "aVL", "V1", "V2", "V3"]
    sig = ptb.signal.copy()
    sig[[ptb.index(k) for k in off]] = 0.0
    rep = assess_quality(ptb.replace(signal=sig))
    assert rep.per_lead["II"].verdict == "ok" and rep.rejected
    assert f"7 of 12 leads unusable ({', '.join(off)})" in rep.reasons
    six = ptb.signal.copy()
    six[[ptb.index(k) for k in off[:6]]] = 0.0
    assert assess_quality(ptb.replace(signal=six)).verdict == "warn"     # 6 of 12: not most


def test_all_leads_off_means_no_beats(ptb: Recording) -> None:
    rep = assess_quality(ptb.replace(signal=np.zeros_like(ptb.signal)))
    assert rep.rejected and rep.n_beats == 0
    assert any(r.startswith("no heartbeats found in any usable lead") for r in rep.reasons)
    assert "12 of 12 leads unusable" in " ".join(rep.reasons)


# ------------------------------------------------------------------------------ clipping

@pytest.mark.parametrize("which", ["ptb", "ludb"])
def test_clipping_is_flagged(which: str, request: pytest.FixtureRequest) -> None:
    rec: Recording = request.getfixturevalue(which)
    x = rec.lead("V2")
    mid = float(np.median(x))
    rail = 0.5 * float(np.max(np.abs(x - mid)))               # amplifier range: half the peak
    clipped = np.clip(x, mid - rail, mid + rail)
    clean_rep = assess_quality(rec)
    rep = assess_quality(_with_lead(rec, "V2", clipped))
    assert clean_rep.per_lead["V2"].metrics["clipped_runs"] < TH.clip_runs_warn
    assert _flagged(rep, "V2", "clipping:")
    assert rep.per_lead["V2"].metrics["clipped_runs"] >= 5   # most beats of 10 s hit the rail
    assert rep.per_lead["V2"].verdict in ("warn", "reject")


def test_lead_stuck_at_the_rail_for_long_is_rejected(ludb: Recording) -> None:
    x = ludb.lead("V5").copy()
    rail = float(x.max()) + 1.0
    x[1000:2000] = rail                                       # 2 s at +rail
    x[3000:3600] = rail
    rep = assess_quality(_with_lead(ludb, "V5", x))
    assert rep.per_lead["V5"].verdict == "reject"


# ------------------------------------------------------------------------------ HF noise

@pytest.mark.parametrize("which", ["ptb", "ludb"])
def test_strong_emg_noise_rejects_the_lead(which: str, request: pytest.FixtureRequest) -> None:
    rec: Recording = request.getfixturevalue(which)
    noisy = rec.lead("V5") + _emg(rec.n_samples, rec.fs, 0.4)
    rep = assess_quality(_with_lead(rec, "V5", noisy))
    assert rep.per_lead["V5"].verdict == "reject"
    assert _flagged(rep, "V5", "strong high-frequency noise")
    assert rep.per_lead["V5"].metrics["noise_mv"] > TH.noise_reject_mv
    assert assess_quality(rec).per_lead["V5"].metrics["noise_mv"] < TH.noise_warn_mv


def test_moderate_emg_noise_warns(ptb: Recording) -> None:
    noisy = ptb.lead("V1") + _emg(ptb.n_samples, ptb.fs, 0.04, seed=1)
    rep = assess_quality(_with_lead(ptb, "V1", noisy))
    assert rep.per_lead["V1"].verdict == "warn"
    assert _flagged(rep, "V1", "high-frequency noise")


def test_noise_on_lead_ii_rejects_the_recording(ludb: Recording) -> None:
    noisy = ludb.lead("II") + _emg(ludb.n_samples, ludb.fs, 0.5, seed=2)
    rep = assess_quality(_with_lead(ludb, "II", noisy))
    assert rep.rejected
    assert rep.reasons[0] == "lead II, needed for measurement, is unusable"


# ------------------------------------------------------------------------------ powerline

def _hum(n: int, fs: float, amp_mv: float, f: float = 50.0) -> np.ndarray:
    return (amp_mv * np.sin(2 * np.pi * f * np.arange(n) / fs + 0.3)).astype(np.float32)


def test_50hz_hum_is_flagged_at_500hz(ludb: Recording) -> None:
    clean = assess_quality(ludb).per_lead["V3"].metrics["mains_50hz_mv"]
    assert clean < TH.mains_warn_mv
    rep = assess_quality(_with_lead(ludb, "V3", ludb.lead("V3") + _hum(ludb.n_samples, 500, 0.1)))
    v3 = rep.per_lead["V3"]
    assert v3.verdict == "warn" and _flagged(rep, "V3", "50 Hz powerline interference")
    assert v3.metrics["mains_50hz_mv"] == pytest.approx(0.1 / math.sqrt(2), rel=0.15)
    strong = _with_lead(ludb, "V3", ludb.lead("V3") + _hum(ludb.n_samples, 500, 1.5))
    assert assess_quality(strong).per_lead["V3"].verdict == "reject"


def test_60hz_hum_is_named_60hz(ludb: Recording) -> None:
    rep = assess_quality(_with_lead(ludb, "I", ludb.lead("I") + _hum(ludb.n_samples, 500, 0.1,
                                                                         60.0)))
    assert _flagged(rep, "I", "60 Hz powerline interference")


def test_50hz_hum_is_flagged_at_130hz(ptb: Recording) -> None:
    """Polar H10's rate: a PTB-XL record resampled to 130 Hz, hum added."""
    rec = ptb.replace(signal=resample(ptb.signal, 100.0, 130.0), fs=130.0)
    assert assess_quality(rec).per_lead["V2"].verdict == "ok"
    rep = assess_quality(_with_lead(rec, "V2", rec.lead("V2") + _hum(rec.n_samples, 130, 0.1)))
    assert _flagged(rep, "V2", "50 Hz powerline interference")


def test_powerline_not_measurable_at_100hz(ptb: Recording) -> None:
    m = assess_quality(ptb).per_lead["II"].metrics
    assert m["mains_50hz_mv"] is None and m["mains_60hz_mv"] is None


# ------------------------------------------------------------------------------ wander

def _wander(n: int, fs: float, ptp_mv: float) -> np.ndarray:
    t = np.arange(n) / fs
    return (0.5 * ptp_mv * np.sin(2 * np.pi * 0.2 * t + 0.5)).astype(np.float32)


@pytest.mark.parametrize("which", ["ptb", "ludb"])
def test_baseline_wander_warns_then_rejects(which: str, request: pytest.FixtureRequest) -> None:
    rec: Recording = request.getfixturevalue(which)
    assert assess_quality(rec).per_lead["V2"].metrics["wander_mv"] < TH.wander_warn_mv
    mild = assess_quality(_with_lead(rec, "V2", rec.lead("V2") + _wander(rec.n_samples, rec.fs,
                                                                          2.0)))
    assert mild.per_lead["V2"].verdict == "warn" and _flagged(mild, "V2", "baseline wander")
    strong_sig = rec.signal + _wander(rec.n_samples, rec.fs, 6.0)[None, :]
    strong = assess_quality(rec.replace(signal=strong_sig))
    assert strong.per_lead["V2"].verdict == "reject"
    assert _flagged(strong, "V2", "strong baseline wander")
    assert strong.rejected                                      # lead II too


# ------------------------------------------------------------------------------ NaN, leads, rates

def test_missing_samples(ptb: Recording) -> None:
    few = ptb.lead("V4").copy()
    few[100:110] = np.nan                                       # 1 %
    many = ptb.lead("V6").copy()
    many[200:500] = np.nan                                      # 30 %
    rec = _with_lead(_with_lead(ptb, "V4", few), "V6", many)
    rep = assess_quality(rec)
    assert rep.per_lead["V4"].verdict == "warn" and _flagged(rep, "V4", "missing samples (1.0 %")
    assert rep.per_lead["V6"].verdict == "reject"
    assert _flagged(rep, "V6", "missing samples (30.0 % > 20 %)")


def test_single_lead_130hz_device(ptb: Recording) -> None:
    x = resample(ptb.lead("II"), 100.0, 130.0)
    rec = Recording(x[None, :], 130.0, ["ECG"], name="polar")
    rep = assess_quality(rec)
    assert rep.verdict == "ok" and rep.reference_lead == "ECG"
    off = assess_quality(rec.replace(signal=np.zeros_like(rec.signal)))
    assert off.rejected and "1 of 1 leads unusable (ECG)" in off.reasons


def test_mlii_stands_in_for_lead_ii_at_360hz(ludb: Recording) -> None:
    sig = resample(ludb.select(["II", "V5"]).signal, 500.0, 360.0)
    rec = Recording(sig, 360.0, ["MLII", "V5"], name="mitbih-like")
    assert assess_quality(rec).verdict == "ok"
    sig[0] = 0.0
    rep = assess_quality(rec.replace(signal=sig))
    assert rep.rejected and "lead MLII, needed for measurement, is unusable" in rep.reasons


def test_works_at_50hz(ptb: Recording) -> None:
    rec = ptb.replace(signal=resample(ptb.signal, 100.0, 50.0), fs=50.0)
    rep = assess_quality(rec)
    assert not rep.rejected and rep.n_beats >= 5
    off = assess_quality(_with_lead(rec, "V3", np.zeros(rec.n_samples, dtype=np.float32)))
    assert off.per_lead["V3"].verdict == "reject"


# ------------------------------------------------------------------------------ report

def test_report_is_json_serialisable_and_complete(ptb: Recording) -> None:
    x = ptb.lead("V1").copy()
    x[:] = 0.0
    rep = assess_quality(_with_lead(ptb, "V1", x))
    d = json.loads(json.dumps(rep.to_dict(), allow_nan=False))
    assert d["verdict"] == "warn" and d["rejected"] is False
    assert list(d["per_lead"]) == list(ptb.leads)
    assert d["per_lead"]["V1"]["verdict"] == "reject"
    assert d["reasons"] == rep.reasons and d["reasons"][0].startswith("V1: flat line")
    assert d["thresholds"]["noise_reject_mv"] == TH.noise_reject_mv
    assert rep.usable_leads == [k for k in ptb.leads if k != "V1"]
    assert rep.summary().startswith(f"{ptb.name}: signal quality warn — V1: flat line")


def test_every_reason_names_its_lead_and_threshold(ludb: Recording) -> None:
    sig = ludb.signal.copy()
    sig[ludb.index("I")] += _hum(ludb.n_samples, 500, 0.1)
    sig[ludb.index("V5")] += _emg(ludb.n_samples, 500, 0.4)
    sig[ludb.index("V3")] += _wander(ludb.n_samples, 500, 2.0)
    rep = assess_quality(ludb.replace(signal=sig))
    for lead in ("I", "V5", "V3"):
        reasons = rep.per_lead[lead].reasons
        assert reasons, lead
        for r in reasons:
            assert r.startswith(f"{lead}: ") and re.search(r"[<>]=? ?\d", r), r


def test_template_match_equals_neurokit2_templatematch_on_real_records():
    """Our numpy template match must give neurokit2's number (it replaces it for speed)."""
    import neurokit2 as nk

    from detak.data.ludb import load_ludb
    from detak.signal.filters import clean
    from detak.signal.quality import _detect_beats, template_match

    ptb = open_ptbxl()
    recs = [ptb.record(int(i)) for i in ptb.fold_ids(9)[:4]]
    recs += [load_ludb(n).recording for n in (8, 93)]  # AF; paced with AF
    checked = 0
    for rec in recs:
        for lead in ("II", "V1"):
            z = clean(rec).lead(lead).astype(np.float64)
            peaks = _detect_beats(z, rec.fs)
            ours = template_match(z, peaks, rec.fs)
            ref = np.asarray(nk.ecg_quality(z, rpeaks=peaks, sampling_rate=int(rec.fs),
                                            method="templatematch"), dtype=np.float64)
            ref_mean = float(np.nanmean(ref[peaks[0]:peaks[-1]]))
            assert ours == pytest.approx(ref_mean, abs=0.005), (rec.name, lead)
            checked += 1
    assert checked == 12


# ------------------------------------------------------------------------------ flagged gaps

def _gapped(rec: Recording, spans: list[tuple[int, int]]) -> Recording:
    from detak.data.gaps import with_gaps

    return with_gaps(rec, [(a / rec.fs, b / rec.fs) for a, b in spans])


def test_flagged_gaps_are_named_once_with_a_code(ptb: Recording) -> None:
    rep = assess_quality(_gapped(ptb, [(22, 24), (300, 302), (806, 808)]))
    assert rep.n_beats >= 8                     # 2-sample gaps: only beats whose QRS they hit
    d = rep.to_dict()
    assert d["verdict"] == "warn"
    assert d["gaps"] == {"code": "gaps", "count": 3, "total_s": 0.06,
                         "spans_s": [[0.22, 0.24], [3.0, 3.02], [8.06, 8.08]],
                         "longest_gap_free_s": 5.04, "reject": None}
    assert d["reasons"][0].startswith("gaps: 3 gaps, 0.06 s in total, at 0.22-0.24 s")
    assert not any("missing samples" in r for r in d["reasons"])     # not again per lead
    assert 40 < rep.heart_rate_bpm < 120


def test_too_much_gap_rejects_with_the_rule(ptb: Recording) -> None:
    rep = assess_quality(_gapped(ptb, [(100, 200), (400, 550)]))       # 25 % of 10 s
    assert rep.rejected and rep.reasons[0].startswith("gaps:")
    assert "gaps cover 25 % of the recording (more than 20 %)" in rep.reasons[0]
    spans = [(k, k + 2) for k in range(150, 1000, 150)]                 # 1.48-1.5-s stretches
    rep = assess_quality(_gapped(ptb, spans))
    assert rep.rejected and "longest gap-free stretch 1.5 s (less than 1.7 s)" in rep.reasons[0]


def test_no_gaps_no_gap_entry(ptb: Recording) -> None:
    assert assess_quality(ptb).to_dict()["gaps"] is None
