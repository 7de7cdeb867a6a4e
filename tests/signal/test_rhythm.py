"""Beat-level rhythm features (issue 17 item 1) on real records with cardiologists' statements.

PTB-XL records from folds 1-8 (never 10) chosen by their ``scp_codes`` (the first records in
ecg_id order whose statement has likelihood 100, so the cardiologist was sure), LUDB's rhythm
column as a second reference, and real records edited in known ways (a pause cut in, pacing
spikes added, a record cut to 3 beats). Needs the shared data (fails when missing)."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from detak.data.ludb import load_ludb, ludb_ids
from detak.data.ptbxl import open_ptbxl
from detak.data.recording import Recording
from detak.signal import rhythm
from detak.signal.rhythm import RhythmError, rhythm_features


@cache
def ptbxl_ids(code: str, n: int, also: str | None = None) -> tuple[int, ...]:
    """The first ``n`` folds-1-8 records (ecg_id order) stating ``code`` with likelihood 100
    (and stating ``also``, if given, with any likelihood: PTB-XL gives rhythm statements such
    as SR likelihood 0)."""
    m = open_ptbxl().metadata
    ok = [int(i) for i, row in m.iterrows()
          if row["scp_codes"].get(code) == 100.0 and int(row["strat_fold"]) <= 8
          and (also is None or also in row["scp_codes"])]
    assert len(ok) >= n, f"only {len(ok)} records state {code}"
    return tuple(sorted(ok)[:n])


@cache
def features(ecg_id: int) -> rhythm.RhythmFeatures:
    return rhythm_features(open_ptbxl().record(ecg_id))


# --- AF against sinus rhythm -------------------------------------------------------------

def test_af_records_are_irregular_without_p_waves() -> None:
    ids = ptbxl_ids("AFIB", 8)
    fs = [features(i) for i in ids]
    irregular = [f["nrmssd"] is not None and f["nrmssd"] > 0.1 for f in fs]
    no_p = [f["p_present_fraction"] is not None and f["p_present_fraction"] < 0.5 for f in fs]
    assert sum(irregular) >= 7, dict(zip(ids, [f["nrmssd"] for f in fs], strict=True))
    assert sum(no_p) >= 7, dict(zip(ids, [f["p_present_fraction"] for f in fs], strict=True))


def test_sinus_records_are_regular_with_p_waves_before_each_qrs() -> None:
    # COSEn alone is not enough on 10 s: ecg_id 14 (sinus arrhythmia, RR variable but with P
    # waves before every QRS) reaches -0.87, AF's range; P waves and the 8-beat measure hold
    cos = [features(i)["cosen"] for i in ptbxl_ids("NORM", 8, also="SR")]
    assert sum(c is not None and c < -1.4 for c in cos) >= 7, cos
    for i in ptbxl_ids("NORM", 8, also="SR"):
        f = features(i)
        # below the irregularity the delineation calls irregular (AF: 0.1 and more); sinus
        # arrhythmia (ecg_id 14: 0.07) stays under it
        assert f["petrenas_irregularity"] < 0.1, (i, f["petrenas_irregularity"])
        assert f["p_wave_template"] is True, i
        assert f["p_present_fraction"] >= 0.8, (i, f["p_present_fraction"])
        assert f["pause_2s_count"] == 0 and f["pvc_count"] == 0, i


def test_af_has_more_atrial_activity_between_beats_than_sinus_rhythm() -> None:
    af = [features(i)["fwave_band_ratio"] for i in ptbxl_ids("AFIB", 8)]
    sr = [features(i)["fwave_band_ratio"] for i in ptbxl_ids("NORM", 8, also="SR")]
    assert np.median([v for v in af if v is not None]) > np.median(
        [v for v in sr if v is not None]) + 0.1


def test_ludb_rhythm_column_af_vs_sinus() -> None:
    af = [i for i in ludb_ids() if load_ludb(i).meta["atrial_fibrillation"]]
    sr = [i for i in ludb_ids() if load_ludb(i).meta["rhythm"] == ["Sinus rhythm"]][:15]
    f_af = [rhythm_features(load_ludb(i).recording) for i in af]
    f_sr = [rhythm_features(load_ludb(i).recording) for i in sr]
    assert len(af) >= 14
    assert sum(not f["p_wave_template"] for f in f_af) >= len(af) - 2
    assert all(f["p_wave_template"] and f["p_present_fraction"] >= 0.8 for f in f_sr)
    # irregularity (COSEn): a few LUDB AF strips are regular (slow ventricular response)
    assert sum((f["cosen"] or -9) > -1.8 for f in f_af) >= 10
    assert all(f["cosen"] is not None and f["cosen"] < -1.8 for f in f_sr)


# --- ectopy --------------------------------------------------------------------------------

def test_pvc_records_count_ventricular_beats_that_are_wide_or_of_another_shape() -> None:
    ids = [i for i in ptbxl_ids("PVC", 8) if "AFIB" not in open_ptbxl().metadata.at[
        i, "scp_codes"]]
    counted = 0
    for i in ids:
        f = features(i)
        v = [b for b in f.beats if b["class"] == "V"]
        assert f["pvc_count"] == len(v)
        assert all((b["qrs_corr"] or 1) < rhythm.OTHER_SHAPE or (b["qrs_ms"] or 0)
                   >= rhythm.WIDE_QRS_MS for b in v), i
        counted += f["pvc_count"] >= 1
    assert counted >= len(ids) - 1, ids


def test_bigeminy_is_named_and_filtered_out_of_the_petrenas_irregularity() -> None:
    ids = ptbxl_ids("BIGU", 12)
    named = [i for i in ids if features(i)["ectopy_pattern"] == "bigeminy"]
    assert len(named) >= len(ids) // 2, ids
    for i in named:
        f = features(i)
        # every other RR short: raw irregularity high, the 8-beat measure after ectopy
        # filtering and bigeminy suppression is not (bigeminy is not AF)
        assert f["nrmssd"] > 0.15 or f["petrenas_irregularity"] is None
        assert f["petrenas_irregularity"] is None or f["petrenas_irregularity"] < 0.1, i
        assert f["pvc_count"] + (f["pac_count"] or 0) >= 3, i


def test_ectopic_beats_in_af_are_not_called_pacs() -> None:
    for i in ptbxl_ids("AFIB", 8):
        f = features(i)
        if f["rr_irregularity"] is not None and f["rr_irregularity"] >= 0.15:
            assert f["pac_count"] is None and "irregular" in f.reasons["pac_count"], i


# --- PR, pauses, pacing --------------------------------------------------------------------

def test_first_degree_av_block_has_a_long_constant_pr() -> None:
    prs = [features(i)["pr_median_ms"] for i in ptbxl_ids("1AVB", 8)]
    got = [p for p in prs if p is not None]
    assert len(got) >= 5 and sum(p > 200 for p in got) >= len(got) - 1, prs
    for i in ptbxl_ids("1AVB", 8):
        r = features(i)["pr_range_ms"]
        assert r is None or r < 40, (i, r)


def _flatten(rec: Recording, t_a: float, t_b: float) -> Recording:
    x = np.array(rec.signal, dtype=np.float64)
    a, b = int(t_a * rec.fs), int(t_b * rec.fs)
    for row in x:
        row[a:b] = np.linspace(row[a], row[b], b - a)
    return rec.replace(signal=x.astype(np.float32))


@pytest.mark.parametrize("n_removed,two,three", [(1, 1, 0), (2, 1, 1)])
def test_pause_when_beats_are_missing(n_removed: int, two: int, three: int) -> None:
    rec = load_ludb(1).recording                    # sinus bradycardia, RR ~1.3 s
    base = rhythm_features(rec)
    t = [b["time_s"] for b in base.beats]
    assert base["pause_2s_count"] == 0
    # replace beats 4.. by a straight line from 0.7 s after beat 3 to 0.35 s before the next
    paused = rhythm_features(_flatten(rec, t[3] + 0.7, t[4 + n_removed] - 0.35))
    assert paused["pause_2s_count"] == two and paused["pause_3s_count"] == three
    assert paused["longest_rr_ms"] == pytest.approx(
        (t[4 + n_removed] - t[3]) * 1000, abs=30)


def test_added_pacing_spikes_make_paced_beats() -> None:
    from detak.signal.perturb import pacing_spikes

    lr = load_ludb(2)
    rec = lr.recording
    onsets = sorted(w.onset for w in lr.waves_of("II", "QRS"))
    paced = rec.replace(signal=pacing_spikes(np.asarray(rec.signal, dtype=np.float64), rec.fs,
                                             onsets, seed=0).astype(np.float32))
    assert rhythm_features(rec)["paced_count"] == 0
    f = rhythm_features(paced)
    assert f["pacing_spikes"] is True
    assert f["paced_count"] >= len(onsets) - 2


# --- too little to go on, bad input ----------------------------------------------------------

def test_three_beat_record_gives_nulls_with_a_reason() -> None:
    rec = load_ludb(1).recording
    short = rec.replace(signal=rec.signal[:, : int(3.2 * rec.fs)])
    f = rhythm_features(short)
    assert f["n_beats"] <= 4
    for k in ("nrmssd", "cosen", "prr_rel", "petrenas_irregularity", "pvc_count",
              "p_present_fraction"):
        assert f[k] is None and "too few beats" in f.reasons[k], k
    d = f.to_dict()
    assert d["values"]["n_beats"] == f["n_beats"] and d["units"]["nrmssd"] == "1"


def test_cosen_null_with_a_reason_on_few_rr() -> None:
    v, why = rhythm.cosen(np.array([800.0, 700, 900, 750]))
    assert v is None and "8 RR" in why


@pytest.mark.parametrize("bad,kw,msg", [
    (np.zeros((2, 3, 4)), {"fs": 500.0}, "shape"),
    (np.zeros(5000), {}, "sample rate"),
    (np.array(["a", "b"]), {"fs": 500.0}, "numeric"),
    (np.full(5000, np.nan), {"fs": 500.0}, "NaN"),
    (np.zeros(5000), {"fs": 20.0}, "below 50 Hz"),
])
def test_bad_input_is_named(bad: np.ndarray, kw: dict, msg: str) -> None:
    with pytest.raises(RhythmError, match=msg):
        rhythm_features(bad, **kw)


def test_a_plain_array_is_one_lead() -> None:
    rec = load_ludb(3).recording
    ii = np.asarray(rec.signal[list(rec.leads).index("II")])
    f = rhythm_features(ii, fs=rec.fs)
    assert f["n_beats"] >= 8 and f["nrmssd"] < 0.1 and f["p_wave_template"] is True


def test_rejected_recording_gives_nulls_with_the_quality_reason() -> None:
    flat = Recording(np.zeros((1, 5000), dtype=np.float32), 500.0, ["II"])
    f = rhythm_features(flat)
    assert f["nrmssd"] is None and "quality" in f.reasons["nrmssd"]


# --- artefacts must not become AF (the conditions of benchmarks/hr_robustness.py) ----------

def _t_segments(lr) -> list[list[tuple[int, int]]]:  # noqa: ANN001 - a LudbRecord
    return [[(w.onset, w.offset) for w in lr.waves_of(lead, "T")
             if w.onset is not None and w.offset is not None and w.offset > w.onset]
            for lead in lr.recording.leads]


def _irregularity(f: rhythm.RhythmFeatures) -> tuple[float, float]:
    return f["rr_irregularity"], f["petrenas_irregularity"] or 0.0


# LUDB 74, lead II alone, T waves x3: two T waves are kept as beats by the shared beat
# detector (RR 343/583/470/604 ms among 1000 ms; irregularity 0.005 -> 0.11): a defect of
# `detak.signal.beats._drop_t_like` on this record, left for the beat detector's owner.
# (LUDB 108, in the heart-rate test's list, is an irregular sinus rhythm to begin with.)
@pytest.mark.parametrize("n", [17, 34, pytest.param(74, marks=pytest.mark.xfail(
    strict=True, reason="tall T waves counted as beats in lead II alone"))])
def test_tall_t_waves_in_lead_ii_alone_do_not_make_an_irregular_rhythm(n: int) -> None:
    from detak.signal.perturb import tall_t_waves

    lr = load_ludb(n)
    clean = rhythm_features(lr.recording.select(["II"]))
    y = tall_t_waves(lr.recording.signal, 500.0, _t_segments(lr), factor=3.0)
    f = rhythm_features(lr.recording.replace(signal=y).select(["II"]))
    for got, ref in zip(_irregularity(f), _irregularity(clean), strict=True):
        assert got <= ref + 0.03, (got, ref)


@pytest.mark.parametrize(("n", "leads"), [(4, ["II"]), (5, ["II"]), (34, None), (158, ["II"])])
def test_noise_bursts_do_not_make_an_irregular_rhythm(n: int, leads: list[str] | None) -> None:
    from detak.signal.perturb import noise_bursts

    lr = load_ludb(n)
    rec = lr.recording if leads is None else lr.recording.select(leads)
    clean = rhythm_features(rec)
    y = noise_bursts(np.asarray(rec.signal, dtype=np.float64), 500.0, seed=n)
    f = rhythm_features(rec.replace(signal=y.astype(np.float32)))
    if f["rr_irregularity"] is None:       # rejected as too noisy: said so, not AF
        assert "quality" in f.reasons["rr_irregularity"]
        return
    for got, ref in zip(_irregularity(f), _irregularity(clean), strict=True):
        assert got <= ref + 0.04, (got, ref)


def test_the_quality_checks_beat_train_is_reused_and_the_result_is_json() -> None:
    import json

    from detak.signal.quality import assess_quality

    rec = load_ludb(38).recording                          # AF
    q = assess_quality(rec)
    f = rhythm_features(rec, beats=q.beats)
    assert f.values == rhythm_features(rec).values
    assert f["n_beats"] == q.n_beats
    d = json.loads(json.dumps(f.to_dict(), allow_nan=False))
    assert len(d["beats"]) == f["n_beats"] and set(d["units"]) == set(d["values"])
