"""The screening pipeline: bad inputs first, then the lead cases and the record's JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from detak.data.recording import Recording
from detak.data.samples import load_sample
from detak.kiosk.i18n import LanguageError
from detak.kiosk.screening import ScreeningInputError, screen
from detak.kiosk.types import Screening, ScreeningFormatError
from detak.signal.analysis import INTERVAL_KEYS


@pytest.fixture(scope="module")
def twelve() -> Recording:
    return load_sample("ptbxl-00286")


def _no_measurements(s: Screening) -> bool:
    return all(s.intervals[k] is None for k in INTERVAL_KEYS)


# --- bad inputs -----------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [None, "sample://ptbxl-00286", np.zeros((12, 1000))])
def test_not_a_recording_is_refused(bad):
    with pytest.raises(ScreeningInputError, match="needs a Recording"):
        screen(bad)


def test_unknown_language_is_refused(twelve):
    with pytest.raises(LanguageError):
        screen(twelve, lang="de")


def test_half_second_recording_is_rejected_with_reasons_and_nothing_measured(twelve):
    s = screen(twelve.replace(signal=twelve.signal[:, :50]), lang="en")
    assert s.rejected and s.quality["reasons"]
    assert s.quality["reasons"][0] == ("The recording is too short: record the full 10 "
                                       "seconds again.")
    assert "0.5 s" in s.quality["details"][0] and s.quality["issues"][0]["code"] == "too_short"
    assert _no_measurements(s) and s.rhythm is None and s.nb is None and s.mi is None
    assert s.urgency["rules"] == ["record_again"] and s.urgency["level"] == "no finding"
    assert s.mi_reason.startswith("Not screened")


def test_flat_recording_is_rejected(twelve):
    s = screen(twelve.replace(signal=np.zeros_like(twelve.signal)), lang="id")
    assert s.rejected and "flat_line" in {i["code"] for i in s.quality["issues"]}
    assert any("garis datar" in r for r in s.quality["details"])
    assert any("kabel" in r for r in s.quality["reasons"])      # the cable, in Indonesian
    assert _no_measurements(s) and s.mi is None
    assert "ulangi perekaman" in s.urgency["reasons"][0]


def test_nan_recording_is_rejected_not_raised(twelve):
    sig = twelve.signal.copy()
    sig[:, :] = np.nan
    s = screen(twelve.replace(signal=sig), lang="en")
    assert s.rejected and _no_measurements(s)


def test_unknown_model_is_a_named_error(twelve):
    from detak.models.trained import ModelNotFoundError

    with pytest.raises(ModelNotFoundError):
        screen(twelve, model="no-such-model")


def test_recording_with_flagged_gaps_is_screened(twelve):
    sig = twelve.signal.copy()
    sig[:, 300:330] = np.nan
    rec = twelve.replace(signal=sig, meta={**twelve.meta, "gaps": [[3.0, 3.3]]})
    s = screen(rec, lang="en")
    assert not s.rejected and s.quality["gaps"]
    assert s.intervals["hr_bpm"] is not None
    # the CNN needs a gap-free or gap-filled 10-s window: a 0.3-s gap in 10 s is filled
    assert s.mi is not None and s.mi["notes"]


def test_cam_windows_are_placed_in_the_recording_when_a_gap_is_cut_out(twelve):
    sig = np.concatenate([twelve.signal, twelve.signal], axis=1)        # 20 s
    sig[:, 200:230] = np.nan                                             # gap at 2.0-2.3 s
    rec = twelve.replace(signal=sig, meta={**twelve.meta, "gaps": [[2.0, 2.3]]})
    s = screen(rec, lang="en")
    assert s.mi["notes"] and "gap-free" in s.mi["notes"][0]
    assert s.mi["cam"]["window_starts_s"][0] == pytest.approx(2.3)


# --- lead cases -----------------------------------------------------------------------------

def test_twelve_lead_has_mi_probabilities_and_cam(twelve):
    s = screen(twelve, lang="en", resident_id="R-7", device={"url": "emu://x"})
    mi = s.mi
    assert mi["model"] == "edge" and mi["runtime"] in ("onnx", "tflite")
    assert mi["precision"] == "int8" and mi["bundle"] is None
    assert set(mi["probabilities"]) == {"NORM", "MI", "STTC", "CD", "HYP"}
    assert mi["probability"] == mi["probabilities"]["MI"]
    assert mi["probabilities"]["CD"] > 0.5          # complete LBBB
    assert len(mi["cam"]["mi"]) == 1 and len(mi["cam"]["mi"][0]) == 1000
    assert mi["thresholds"]["MI"]["refer"] > mi["thresholds"]["MI"]["operating"] > 0
    assert s.rhythm["clinical_label"] == "abnormal"
    assert any(f["finding"] == "wide_qrs" for f in s.rhythm["interval_findings"])
    assert s.nb["label"] in s.nb["probabilities"] and 0 < s.nb["probability"] <= 1
    assert s.urgency["level"] == "routine review"
    assert s.resident_id == "R-7" and s.device["url"] == "emu://x"
    assert s.versions["detak"] and "edge" in s.versions["model"]
    assert set(s.versions["rulesets"]) == {"s3", "clinical"}


def test_reasons_follow_the_language(twelve):
    en, idn = screen(twelve, lang="en"), screen(twelve, lang="id")
    assert en.rhythm["reasons"] != idn.rhythm["reasons"]
    assert "konduksi" in " ".join(idn.urgency["reasons"])
    assert en.urgency["level"] == idn.urgency["level"]          # the code is language-free
    assert idn.urgency["level_text"] == "tinjauan rutin"


@pytest.mark.parametrize("leads", [["II"], ["I", "II", "III"]])
def test_single_and_three_lead_get_everything_but_mi(leads):
    rec = load_sample("ludb-1").select(leads)
    for lang, words in (("en", "MI screening needs 12 leads"),
                        ("id", "membutuhkan 12 sadapan")):
        s = screen(rec, lang=lang)
        assert s.mi is None and words in s.mi_reason
        assert s.intervals["hr_bpm"] is not None and s.rhythm["clinical_label"] is not None
        assert s.nb["label"] is not None
        assert s.mi_reason in s.urgency["notes"]


def test_eight_independent_leads_are_derived_to_twelve():
    rec = load_sample("ludb-1").select(["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"])
    s = screen(rec, lang="en")
    assert s.mi is not None
    assert sorted(s.mi["derived_leads"]) == ["III", "aVF", "aVL", "aVR"]


def test_short_but_accepted_recording_says_why_mi_did_not_run(twelve):
    s = screen(twelve.replace(signal=twelve.signal[:, :500]), lang="en")   # 5 s
    assert not s.rejected and s.mi is None
    assert s.mi_reason.startswith("MI screening was not run") and "10" in s.mi_reason


# --- the record -----------------------------------------------------------------------------

def test_screening_is_plain_json_and_round_trips(twelve):
    s = screen(twelve, lang="en")
    text = json.dumps(s.to_dict(), allow_nan=False)
    back = Screening.from_dict(json.loads(text))
    assert back == s and back.id == s.id and len(s.id) == 32
    assert s.created_at.endswith("+00:00")


def test_from_dict_refuses_unknown_keys_and_formats(twelve):
    d = screen(twelve.replace(signal=twelve.signal[:, :50]), lang="en").to_dict()
    with pytest.raises(ScreeningFormatError, match="unknown key"):
        Screening.from_dict({**d, "extra": 1})
    with pytest.raises(ScreeningFormatError, match="format"):
        Screening.from_dict({**d, "format": "detak-screening/99"})


def test_an_installed_bundle_is_used_and_named(twelve, tmp_path, monkeypatch):
    from detak.export.bundle import create_bundle, generate_keypair, install_bundle
    from detak.models.shipped import weights_dir

    priv, pub = generate_keypair(tmp_path / "k.pem", tmp_path / "k.pub")
    bundle = create_bundle(weights_dir() / "edge", tmp_path / "edge.tar.gz", priv,
                           version="2026.12-test")
    monkeypatch.setenv("DETAK_BUNDLES", str(tmp_path / "bundles"))
    before = screen(twelve, lang="en").mi
    assert before["bundle"] is None
    install_bundle(bundle, pub)
    after = screen(twelve, lang="en")
    assert after.mi["bundle"]["name"] == "edge"
    assert after.mi["bundle"]["version"] == "2026.12-test"
    assert after.versions["bundle"] == after.mi["bundle"]
    assert after.mi["probabilities"] == before["probabilities"]   # the same int8 file


def test_cam_in_the_record_is_the_runtime_map(twelve):
    from detak.kiosk.screening import load_screening_model
    from detak.models.cnn_data import preprocess_recording

    m = load_screening_model("edge")
    out = m.module.run(preprocess_recording(twelve, m.standardizer))
    s = screen(twelve, lang="en")
    np.testing.assert_allclose(s.mi["cam"]["mi"], out.cam_mi, rtol=1e-3, atol=1e-12)
    np.testing.assert_allclose(s.mi["cam"]["top"], out.cam_top, rtol=1e-3, atol=1e-12)
    assert s.mi["cam"]["window_starts_s"] == [0.0] and s.mi["windows"] == 1


def test_longer_recording_gets_one_map_per_window(twelve):
    rec = twelve.replace(signal=np.concatenate([twelve.signal, twelve.signal[:, :500]], axis=1))
    s = screen(rec, lang="en")                                   # 15 s: windows at 0 and 5 s
    assert s.mi["windows"] == 2 and s.mi["cam"]["window_starts_s"] == [0.0, 5.0]
    assert len(s.mi["cam"]["mi"]) == 2


@pytest.mark.parametrize("fault", ["flat", "noise"])
def test_a_loose_chest_electrode_stops_mi_but_not_the_rest(twelve, fault):
    sig = twelve.signal.copy()
    v3 = list(twelve.leads).index("V3")
    sig[v3] = 0.0 if fault == "flat" else 0.5 * np.random.default_rng(0).standard_normal(
        sig.shape[1])
    s = screen(twelve.replace(signal=sig), lang="en")
    assert not s.rejected and s.quality["verdict"] == "warn"
    assert s.mi is None and "V3" in s.mi_reason and "record again" in s.mi_reason
    assert s.intervals["hr_bpm"] is not None and s.rhythm["clinical_label"] is not None
    assert s.mi_reason in s.urgency["notes"]
    idn = screen(twelve.replace(signal=sig), lang="id")
    assert "ulangi perekaman" in idn.mi_reason


# --- rhythm findings (issue 17) ---------------------------------------------------------------

CONTRACT = {"code", "source", "probability", "urgency", "reasons"}


def test_rhythm_findings_sit_at_rhythm_findings_and_interval_findings_moved(twelve):
    s = screen(twelve, lang="en")
    assert s.rhythm["findings"] and all(set(f) >= CONTRACT for f in s.rhythm["findings"])
    assert all("ruleset" not in f for f in s.rhythm["findings"])
    assert {f["ruleset"] for f in s.rhythm["interval_findings"]} == {"s3", "clinical"}
    assert {"s3_label", "clinical_label", "reasons"} <= set(s.rhythm)   # issue 14's keys
    for f in s.rhythm["findings"]:
        assert all(set(r) >= {"en", "id"} for r in f["reasons"])


def test_rhythm_features_are_kept_without_the_per_beat_list(twelve):
    from detak.signal.rhythm import UNITS

    s = screen(twelve, lang="en")
    r = s.rhythm
    assert set(r["features"]) == set(UNITS) and r["feature_units"] == UNITS
    assert "beats" not in r and r["lead"] == "all"
    assert r["features"]["n_beats"] >= 8 and r["features"]["ventricular_rate_bpm"] > 30
    assert len(json.dumps({k: r[k] for k in ("features", "feature_units",
                                             "feature_reasons")})) < 4000


def test_beats_are_detected_once_per_screening(twelve, monkeypatch):
    """The rhythm features reuse the quality check's beat train (one beat detection)."""
    import detak.signal.quality as quality
    import detak.signal.rhythm as rhythm

    calls = {"quality": 0}
    real = quality.assess_quality

    def counting(*a, **k):
        calls["quality"] += 1
        return real(*a, **k)

    def no_detection(*a, **k):
        raise AssertionError("rhythm_features detected the beats again")

    monkeypatch.setattr(quality, "assess_quality", counting)
    monkeypatch.setattr(rhythm, "detect_beats", no_detection)
    s = screen(twelve, lang="en")
    assert calls["quality"] == 1 and s.rhythm["findings"]


def test_rejected_recording_has_no_rhythm_findings(twelve):
    flat = twelve.replace(signal=np.zeros_like(twelve.signal))
    s = screen(flat, lang="en")
    assert s.rejected and s.rhythm is None


def test_af_record_is_found_and_feeds_the_banner():
    """PTB-XL 4531 (fold <= 8, AFIB likelihood 100, mean rate 87 bpm): AF by the rules,
    routine review with the AF reason in both languages."""
    from detak.data.ptbxl import open_ptbxl

    rec = open_ptbxl().record(4531)
    for lang, word in (("en", "Atrial fibrillation"), ("id", "Fibrilasi atrium")):
        s = screen(rec, lang=lang)
        af = [f for f in s.rhythm["findings"] if f["code"] == "AFIB" and f["source"] == "rules"]
        assert af and "rhythm_af" in s.urgency["rules"]
        assert any(word in r and "stroke" in r for r in s.urgency["reasons"])


def test_recording_the_features_cannot_take_gets_no_findings_and_a_reason(twelve, monkeypatch):
    from detak.signal.rhythm import RhythmError

    def broken(*a, **k):
        raise RhythmError("the signal has NaN samples")

    import detak.models.rhythm_rules as rr

    monkeypatch.setattr(rr, "rhythm_block", broken)
    s = screen(twelve, lang="en")
    assert s.rhythm["findings"] == [] and "NaN" in s.rhythm["feature_reasons"]["all"]
    assert s.urgency["level"] == "routine review"     # the other rules still run


def test_a_recording_with_a_flagged_gap_gets_rhythm_findings_from_its_longest_clean_stretch(
        twelve):
    """A BLE packet lost (0.3 s NaN, flagged) must not cost the AF screening: the rhythm is
    read on the longest gap-free stretch (never across the gap, where a filled gap could
    make a pause or an irregular RR), and the screening says which stretch."""
    sig = twelve.signal.copy()
    sig[:, 300:330] = np.nan
    rec = twelve.replace(signal=sig, meta={**twelve.meta, "gaps": [[3.0, 3.3]]})
    s = screen(rec, lang="en")
    whole = screen(twelve, lang="en")                 # sinus bradycardia, 54 bpm
    first = [f["code"] for f in whole.rhythm["findings"] if f["source"] == "rules"][0]
    assert first in ("SR", "SBRAD")
    assert [f["code"] for f in s.rhythm["findings"] if f["source"] == "rules"][0] == first
    assert s.rhythm["window_s"] == [3.3, 10.0]
    assert s.rhythm["features"]["duration_s"] == pytest.approx(6.7, abs=0.01)
