"""Tests for detak.data.validation: every error, the gap option, flat and clipped leads."""

from __future__ import annotations

import numpy as np
import pytest
import wfdb

from detak.data.paths import data_root
from detak.data.recording import Recording
from detak.data.validation import RecordingError, ValidationReport, validate_recording
from detak.data.wfdb_io import read_wfdb


def _ludb_path(n: int):
    return data_root() / "ludb" / "data" / str(n)


def _good(fs: float = 250.0, seconds: float = 10.0, leads=("I", "II", "V1")) -> Recording:
    rng = np.random.default_rng(1)
    n = int(fs * seconds)
    t = np.arange(n) / fs
    x = np.vstack([(0.6 + 0.1 * k) * np.sin(2 * np.pi * 1.1 * t + k) ** 15
                   + rng.normal(0, 0.03, n) for k in range(len(leads))])
    return Recording(x, fs, list(leads), name="good")


def _error(rec: Recording, **kw) -> RecordingError:
    with pytest.raises(RecordingError) as err:
        validate_recording(rec, **kw)
    return err.value


# --- errors ----------------------------------------------------------------------------------


def test_nan_names_lead_and_first_bad_time() -> None:
    rec = _good()
    rec.signal[1, 617] = np.nan
    rec.signal[1, 900] = np.nan
    err = _error(rec)
    assert err.problem == "nonfinite_samples"
    assert "lead II (first at 2.468 s, sample 617)" in str(err)     # 617 / 250 Hz
    assert "I (" not in str(err).replace("II (", "")                # lead I is not blamed


def test_inf_in_several_leads() -> None:
    rec = _good()
    rec.signal[0, 10] = np.inf
    rec.signal[2, 2000] = -np.inf
    msg = str(_error(rec))
    assert "leads I (first at 0.040 s, sample 10), V1 (first at 8.000 s, sample 2000)" in msg


def test_too_short() -> None:
    err = _error(_good(fs=500.0, seconds=1.99))
    assert err.problem == "too_short" and "1.990 s" in str(err) and "2 s" in str(err)
    validate_recording(_good(fs=500.0, seconds=2.0))                # exactly 2 s is enough


@pytest.mark.parametrize("fs", [float("nan"), None, 0.0, -250.0, float("inf")])
def test_sample_rate_missing(fs) -> None:
    rec = _good().replace(fs=fs)
    err = _error(rec)
    assert err.problem == "sample_rate_missing"


def test_sample_rate_too_low() -> None:
    err = _error(_good(fs=40.0))
    assert err.problem == "sample_rate_too_low" and "40 Hz" in str(err) and "50 Hz" in str(err)
    validate_recording(_good(fs=50.0))


def test_duplicate_leads_after_normalisation() -> None:
    rec = _good(leads=("AVR", "aVR", "V1"))
    err = _error(rec)
    assert err.problem == "duplicate_leads" and "aVR" in str(err)


def test_zero_leads() -> None:
    err = _error(Recording(np.zeros((0, 2500)), 250.0, []))
    assert err.problem == "no_leads"


def test_all_errors_are_reported_together() -> None:
    rec = Recording(np.full((2, 40), np.nan), 25.0, ["V1", "v1"], name="bad")   # 1.6 s
    report = validate_recording(rec, raise_errors=False)
    assert not report.ok
    assert [e.problem for e in report.errors] == ["sample_rate_too_low", "too_short",
                                                  "duplicate_leads", "nonfinite_samples"]
    with pytest.raises(RecordingError) as err:
        report.raise_for_errors()
    assert err.value.problem == "sample_rate_too_low" and len(err.value.issues) == 4
    assert str(err.value).startswith("bad: ")


# --- flagged gaps ----------------------------------------------------------------------------


def _with_gap(gaps) -> Recording:
    rec = _good()
    rec.signal[:, 500:750] = np.nan                 # 2.0 s to 3.0 s on every lead
    rec.meta["gaps"] = gaps
    return rec


@pytest.mark.parametrize("gaps", [[[2.0, 3.0]], [{"start_s": 1.5, "end_s": 3.5}],
                                  [(0.0, 1.0), [2.0, 3.0]]])
def test_nan_inside_flagged_gaps_is_allowed_on_request(gaps) -> None:
    rec = _with_gap(gaps)
    assert validate_recording(rec, allow_flagged_gaps=True).ok
    err = _error(rec)                                # not by default
    assert "allow_flagged_gaps=True" in str(err)


def test_nan_outside_the_gaps_is_still_an_error() -> None:
    rec = _with_gap([[2.0, 2.9]])                    # gap ends 0.1 s too early
    err = _error(rec, allow_flagged_gaps=True)
    assert err.problem == "nonfinite_samples" and "2.900 s, sample 725" in str(err)
    assert "outside the gaps" in str(err)


def test_inf_inside_a_gap_is_still_an_error() -> None:
    rec = _with_gap([[2.0, 3.0]])
    rec.signal[0, 600] = np.inf
    assert _error(rec, allow_flagged_gaps=True).problem == "nonfinite_samples"


@pytest.mark.parametrize("gaps", ["2-3", [[3.0, 2.0]], [["a", "b"]], [{"start": 2}],
                                  [[2.0, float("nan")]]])
def test_malformed_gaps(gaps) -> None:
    err = _error(_with_gap(gaps), allow_flagged_gaps=True)
    assert err.problem == "bad_gaps" and 'meta["gaps"]' in str(err)


# --- flags -----------------------------------------------------------------------------------


def test_flat_lead_is_flagged_not_an_error() -> None:
    rec = _good()
    rec.signal[1] = 0.0
    rec.signal[2] = np.random.default_rng(0).uniform(-0.004, 0.004, rec.n_samples)
    report = validate_recording(rec)
    assert report.ok
    assert report.flagged_leads == {"II": ["flat"], "V1": ["flat"]}
    assert "0.02 mV" in report.flags[0].message


def test_clipping_on_a_real_lead_is_flagged() -> None:
    rec = read_wfdb(_ludb_path(1)).select(["II"])
    x = rec.signal[0]
    assert validate_recording(rec).flags == []
    clipped = np.minimum(x, np.quantile(x, 0.95))     # amplifier rail under the R peaks
    report = validate_recording(rec.replace(signal=clipped[None, :]))
    assert [(f.lead, f.problem) for f in report.flags] == [("II", "saturated")]
    assert "at the maximum" in report.flags[0].message
    # A rail touched by only a few samples (< 1 %) is not called clipping.
    barely = np.minimum(x, np.quantile(x, 0.997))
    assert validate_recording(rec.replace(signal=barely[None, :])).flags == []


def test_report_to_dict_is_json_ready() -> None:
    import json

    rec = _good()
    rec.signal[0] = 0.0
    d = validate_recording(rec).to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["ok"] is True and d["flags"][0]["lead"] == "I" and d["flags"][0]["problem"] == "flat"


# --- real data -------------------------------------------------------------------------------


def test_real_ludb_record_validates_clean() -> None:
    report = validate_recording(read_wfdb(_ludb_path(1)))
    assert isinstance(report, ValidationReport)
    assert report.ok and report.flags == []


def test_every_ludb_record_is_valid_and_none_is_flat() -> None:
    for n in range(1, 201):
        report = validate_recording(read_wfdb(_ludb_path(n)))
        assert report.ok, report.summary()
        assert "flat" not in {f.problem for f in report.flags}, report.summary()


def test_ludb_record_resting_on_its_minimum_is_flagged() -> None:
    # LUDB 115, lead II rests on its lowest digital value for >100 consecutive samples
    # (checked here from the raw digital samples, independently of detak).
    d = wfdb.rdrecord(str(_ludb_path(115)), physical=False, channel_names=["ii"]).d_signal[:, 0]
    at_min = np.r_[0, (d == d.min()).astype(int), 0]
    edges = np.flatnonzero(np.diff(at_min))
    assert (edges[1::2] - edges[::2]).max() >= 100
    report = validate_recording(read_wfdb(_ludb_path(115)))
    assert report.ok and ("II", "saturated") in [(f.lead, f.problem) for f in report.flags]


def test_the_recorders_sample_spans_are_accepted() -> None:
    """`Recorder` / `detak record` write ``[start, stop, reason]`` in samples (250 Hz here)."""
    rec = _with_gap([[500, 750, "lost"]])
    assert validate_recording(rec, allow_flagged_gaps=True).ok
    rec.meta["gaps"] = [[500, 700, "lost"]]          # 0.2 s short
    err = _error(rec, allow_flagged_gaps=True)
    assert err.problem == "nonfinite_samples" and "2.800 s, sample 700" in str(err)
