"""Tests for detak.data.edf_io: EDF files written with edfio, read back as millivolts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import edfio
import numpy as np
import pytest

from detak.data.edf_io import read_edf
from detak.data.validation import RecordingError

LEADS_12 = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]


def _ecg(fs: float, seconds: float = 4.0, amp: float = 1.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(fs * seconds)) / fs
    return amp * (np.sin(2 * np.pi * 1.2 * t) ** 21 + 0.05 * rng.normal(size=t.size))


def _signal(data: np.ndarray, fs: float, label: str, unit: str) -> edfio.EdfSignal:
    return edfio.EdfSignal(data, fs, label=label, physical_dimension=unit)


def _write(path: Path, signals: list[edfio.EdfSignal], **kw) -> Path:
    edfio.Edf(signals, **kw).write(path)
    return path


def _resolution(x: np.ndarray) -> float:
    """Physical size of one EDF digital step for a signal edfio scaled to its own range."""
    return float(x.max() - x.min()) / 65535


# --- bad input first -------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="gone.edf"):
        read_edf(tmp_path / "gone.edf")


def test_garbage_is_corrupt_file(tmp_path: Path) -> None:
    p = tmp_path / "junk.edf"
    p.write_bytes(b"this is not an EDF header" * 20)
    with pytest.raises(RecordingError) as err:
        read_edf(p)
    assert err.value.problem == "corrupt_file" and "junk.edf" in str(err.value)


def test_header_only_file_is_corrupt(tmp_path: Path) -> None:
    p = _write(tmp_path / "full.edf", [_signal(_ecg(250), 250, "ECG II", "uV")])
    cut = tmp_path / "cut.edf"
    cut.write_bytes(p.read_bytes()[:200])
    with pytest.raises(RecordingError) as err:
        read_edf(cut)
    assert err.value.problem == "corrupt_file"


def test_truncated_file_is_refused_unless_allowed(tmp_path: Path) -> None:
    p = _write(tmp_path / "full.edf", [_signal(_ecg(250, seconds=10), 250, "ECG II", "uV")])
    data = p.read_bytes()
    cut = tmp_path / "cut.edf"
    cut.write_bytes(data[: len(data) - 700])      # lose the last data records
    with pytest.raises(RecordingError) as err:
        read_edf(cut)
    assert err.value.problem == "truncated_file" and "allow_truncated=True" in str(err.value)
    rec = read_edf(cut, allow_truncated=True)
    assert 0 < rec.n_samples < 2500


def test_ecg_leads_at_different_rates_are_refused_with_the_rates(tmp_path: Path) -> None:
    p = _write(tmp_path / "mixed.edf", [_signal(_ecg(500), 500, "ECG I", "uV"),
                                        _signal(_ecg(250), 250, "ECG II", "uV")])
    with pytest.raises(RecordingError) as err:
        read_edf(p)
    msg = str(err.value)
    assert err.value.problem == "mixed_sample_rates"
    assert "ECG I (500 Hz" in msg and "ECG II (250 Hz" in msg and "signals=" in msg
    rec = read_edf(p, signals=["ECG II"])
    assert rec.leads == ("II",) and rec.fs == 250.0


def test_non_voltage_ecg_signal_is_unknown_units(tmp_path: Path) -> None:
    p = _write(tmp_path / "u.edf", [_signal(_ecg(250), 250, "ECG II", "mmHg")])
    with pytest.raises(RecordingError) as err:
        read_edf(p)
    assert err.value.problem == "unknown_units"
    assert "'ECG II'" in str(err.value) and "'mmHg'" in str(err.value) and "u.edf" in str(err.value)


def test_no_ecg_signal_at_all(tmp_path: Path) -> None:
    p = _write(tmp_path / "resp.edf", [_signal(_ecg(25), 25, "Resp", "Ohm")])
    with pytest.raises(RecordingError) as err:
        read_edf(p)
    assert err.value.problem == "no_leads" and "Resp (25 Hz, Ohm)" in str(err.value)


def test_asking_for_an_absent_signal(tmp_path: Path) -> None:
    p = _write(tmp_path / "a.edf", [_signal(_ecg(250), 250, "ECG II", "uV")])
    with pytest.raises(RecordingError, match="'V1'") as err:
        read_edf(p, signals=["V1"])
    assert err.value.problem == "missing_lead"


# --- reading ---------------------------------------------------------------------------------


def test_twelve_leads_in_microvolts(tmp_path: Path) -> None:
    data = [_ecg(500, amp=800 + 50 * k, seed=k) for k in range(12)]          # µV
    start = dt.datetime(2024, 5, 1, 9, 15, 30)
    p = _write(tmp_path / "12.edf",
               [_signal(d, 500, f"ECG {lead}", "uV") for d, lead in zip(data, LEADS_12,
                                                                         strict=True)],
               starttime=start.time(),
               recording=edfio.Recording(startdate=start.date()))
    rec = read_edf(p)
    assert rec.leads == tuple(LEADS_12) and rec.fs == 500.0 and rec.n_samples == 2000
    assert rec.start_time == start and rec.name == "12"
    for k, d in enumerate(data):
        np.testing.assert_allclose(rec.signal[k], d / 1000, rtol=0,
                                   atol=_resolution(d) / 1000 + 1e-6)


@pytest.mark.parametrize(("unit", "to_mv"), [("mV", 1.0), ("V", 1e3), ("uV", 1e-3),
                                             ("nV", 1e-6)])
def test_physical_dimension_is_converted(tmp_path: Path, unit: str, to_mv: float) -> None:
    d = _ecg(256) / to_mv                     # 1 mV peaks expressed in ``unit``
    rec = read_edf(_write(tmp_path / "u.edf", [_signal(d, 256, "EKG V2", unit)]))
    assert rec.leads == ("V2",)
    np.testing.assert_allclose(rec.signal[0], d * to_mv, rtol=0,
                               atol=_resolution(d) * to_mv + 1e-6)


def test_other_signals_are_dropped_and_listed(tmp_path: Path) -> None:
    p = _write(tmp_path / "psg.edf", [_signal(_ecg(256), 256, "EEG Fpz-Cz", "uV"),
                                      _signal(_ecg(256), 256, "ECG", "mV"),
                                      _signal(_ecg(32), 32, "Resp", "Ohm")])
    rec = read_edf(p)
    assert rec.leads == ("ECG",) and rec.fs == 256.0
    assert rec.meta["edf_dropped_signals"] == ["EEG Fpz-Cz (256 Hz, uV)", "Resp (32 Hz, Ohm)"]


def test_unlabelled_device_channels_with_voltage_units_are_taken(tmp_path: Path) -> None:
    p = _write(tmp_path / "dev.edf", [_signal(_ecg(200), 200, "CH1", "mV"),
                                      _signal(_ecg(200), 200, "CH2", "mV"),
                                      _signal(_ecg(20), 20, "Battery", "%")])
    rec = read_edf(p)
    assert rec.leads == ("CH1", "CH2") and rec.meta["edf_dropped_signals"] == [
        "Battery (20 Hz, %)"]


def test_annotations_and_patient_without_identifying_fields(tmp_path: Path) -> None:
    patient = edfio.Patient(code="MRN-0001", sex="F", birthdate=dt.date(1940, 6, 15),
                            name="Siti_Aminah")
    recording = edfio.Recording(startdate=dt.date(2024, 5, 1), equipment_code="detak-emu")
    p = _write(tmp_path / "ann.edf", [_signal(_ecg(250), 250, "ECG II", "uV")],
               patient=patient, recording=recording,
               annotations=[edfio.EdfAnnotation(1.5, 0.5, "lead off")])
    rec = read_edf(p)
    assert rec.meta["sex"] == "F" and rec.meta["age"] == 83        # 2024-05-01 minus 1940-06-15
    assert rec.meta["equipment"] == "detak-emu"
    assert rec.meta["annotations"] == [{"onset_s": 1.5, "duration_s": 0.5, "text": "lead off"}]
    flat = repr(rec.meta)
    assert "Siti" not in flat and "MRN-0001" not in flat and "1940" not in flat


def test_bdf(tmp_path: Path) -> None:
    d = _ecg(512) * 1000
    p = tmp_path / "r.bdf"
    edfio.Bdf([edfio.BdfSignal(d, 512, label="ECG II", physical_dimension="uV")]).write(p)
    rec = read_edf(p)
    assert rec.leads == ("II",) and rec.fs == 512.0
    np.testing.assert_allclose(rec.signal[0], d / 1000, rtol=0, atol=1e-4)
