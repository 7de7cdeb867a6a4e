"""Tests for detak.data.wfdb_io: WFDB read/write round trips, unit conversion, real LUDB."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
import wfdb

from detak.data.paths import data_root
from detak.data.recording import Recording
from detak.data.validation import RecordingError
from detak.data.wfdb_io import read_wfdb, write_wfdb

LEADS_12 = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
HALF_MICROVOLT = 0.5e-3 + 1e-6      # 1 µV quantisation, plus float32 slack


def _ludb(n: int) -> Path:
    return data_root() / "ludb" / "data" / str(n)


def _synthetic(fs: float, n_leads: int, seconds: float = 3.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds * fs)
    t = np.arange(n) / fs
    beats = np.sin(2 * np.pi * 1.1 * t) ** 15            # sharp periodic peaks
    x = np.vstack([(0.5 + 0.2 * k) * beats + 0.1 * np.cumsum(rng.normal(0, 0.02, n))
                   for k in range(n_leads)])
    return x.astype(np.float32)


# --- bad input first -------------------------------------------------------------------------


def test_missing_record_names_the_header_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "nope.hea"))):
        read_wfdb(tmp_path / "nope")


def test_missing_signal_file_is_file_not_found(tmp_path: Path) -> None:
    write_wfdb(Recording(np.zeros((1, 600)), 300.0, ["II"]), tmp_path / "r")
    (tmp_path / "r.dat").unlink()
    with pytest.raises(FileNotFoundError, match="r.dat"):
        read_wfdb(tmp_path / "r")


def test_garbled_header_is_corrupt_file(tmp_path: Path) -> None:
    (tmp_path / "bad.hea").write_text("bad 2 abc\nnot a signal line\n")
    with pytest.raises(RecordingError) as err:
        read_wfdb(tmp_path / "bad.hea")
    assert err.value.problem == "corrupt_file"
    assert "bad.hea" in str(err.value)


def test_truncated_signal_file_is_corrupt_file(tmp_path: Path) -> None:
    write_wfdb(Recording(np.ones((3, 1000)), 250.0, ["I", "II", "V1"]), tmp_path / "t")
    data = (tmp_path / "t.dat").read_bytes()
    (tmp_path / "t.dat").write_bytes(data[: len(data) // 2])
    with pytest.raises(RecordingError) as err:
        read_wfdb(tmp_path / "t")
    assert err.value.problem == "corrupt_file"


def _wrsamp(tmp_path: Path, name: str, units: list[str], sig_name: list[str],
            p_signal: np.ndarray, fs: float = 360.0, **kw) -> Path:
    wfdb.wrsamp(name, fs=fs, units=units, sig_name=sig_name, p_signal=p_signal,
                fmt=["16"] * len(units), write_dir=str(tmp_path), **kw)
    return tmp_path / name


def test_unknown_units_name_file_and_lead(tmp_path: Path) -> None:
    x = np.column_stack([np.linspace(-1, 1, 720), np.linspace(60, 120, 720)])
    base = _wrsamp(tmp_path, "abp", ["mV", "mmHg"], ["MLII", "ABP"], x)
    with pytest.raises(RecordingError) as err:
        read_wfdb(base)
    msg = str(err.value)
    assert err.value.problem == "unknown_units"
    assert "abp.hea" in msg and "'ABP'" in msg and "'mmHg'" in msg
    # Choosing the ECG lead reads it.
    rec = read_wfdb(base, leads=["MLII"])
    assert rec.leads == ("MLII",)
    np.testing.assert_allclose(rec.lead("II"), x[:, 0], atol=0.01)


def test_asking_for_absent_lead(tmp_path: Path) -> None:
    write_wfdb(Recording(np.zeros((1, 600)), 300.0, ["II"]), tmp_path / "r")
    with pytest.raises(RecordingError, match="V1") as err:
        read_wfdb(tmp_path / "r", leads=["V1"])
    assert err.value.problem == "missing_lead"


@pytest.mark.parametrize(("rec_kw", "problem"), [
    ({"leads": ["II", "ii"]}, "duplicate_leads"),
    ({"fs": float("nan")}, "sample_rate_missing"),
    ({"signal_fn": lambda x: np.where(np.arange(x.shape[1]) == 5, np.inf, x)},
     "nonfinite_samples"),
    ({"meta": {"when": object()}}, "meta_not_json"),
    ({"signal_fn": lambda x: x * 1e7}, "out_of_range"),
])
def test_write_refuses_bad_recordings(tmp_path: Path, rec_kw: dict, problem: str) -> None:
    x = np.full((2, 500), 0.5)
    x = rec_kw.pop("signal_fn", lambda v: v)(x)
    rec = Recording(x, rec_kw.pop("fs", 250.0), rec_kw.pop("leads", ["II", "V1"]), **rec_kw)
    with pytest.raises(RecordingError) as err:
        write_wfdb(rec, tmp_path / "out")
    assert err.value.problem == problem
    assert "out.hea" in str(err.value)


def test_write_refuses_record_names_wfdb_cannot_hold(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="ptbxl:1") as err:
        write_wfdb(Recording(np.zeros((1, 500)), 250.0, ["II"]), tmp_path / "ptbxl:1")
    assert err.value.problem == "bad_record_name"


# --- round trips -----------------------------------------------------------------------------


def _header_lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


@pytest.mark.parametrize("fs", [100.0, 130.0, 150.0, 360.0, 500.0])
@pytest.mark.parametrize("n_leads", [1, 3, 12])
def test_round_trip(tmp_path: Path, fs: float, n_leads: int) -> None:
    x = _synthetic(fs, n_leads, seed=int(fs) + n_leads)
    gap = slice(int(0.5 * fs), int(0.7 * fs))
    x[:, gap] = np.nan                                  # a drop-out on every lead
    x[n_leads - 1, -1] = np.nan                         # and one lone invalid sample
    start = datetime(2024, 5, 1, 9, 30, 15, 250000, tzinfo=timezone(timedelta(hours=7)))
    meta = {"age": 81, "sex": "F", "gaps": [[0.5, 0.7]], "labels": ["NORM"],
            "site": {"home": "Medan-3", "room": 12}}
    rec = Recording(x, fs, LEADS_12[:n_leads], name="ptbxl:17", start_time=start,
                    device_id="detak-bridge-0042", calibration="adc24-gain6", meta=meta)
    hea = write_wfdb(rec, tmp_path / "rec")
    assert hea == tmp_path / "rec.hea"

    back = read_wfdb(tmp_path / "rec")
    assert back.leads == rec.leads
    assert back.fs == fs and back.signal.shape == x.shape and back.signal.dtype == np.float32
    assert np.array_equal(np.isnan(back.signal), np.isnan(x))
    assert np.nanmax(np.abs(back.signal - x)) <= HALF_MICROVOLT
    assert (back.name, back.start_time, back.device_id, back.calibration) == (
        "ptbxl:17", start, "detak-bridge-0042", "adc24-gain6")
    assert back.meta == meta
    assert all(len(line) <= 255 for line in _header_lines(hea))


def test_written_files_follow_the_wfdb_format_byte_for_byte(tmp_path: Path) -> None:
    """Check the .dat and header against the WFDB spec directly, not through wfdb-python."""
    x = _synthetic(500.0, 3)
    x[1, 10:20] = np.nan
    write_wfdb(Recording(x, 500.0, ["I", "II", "V1"]), tmp_path / "spec")
    raw = np.fromfile(tmp_path / "spec.dat", dtype="<i2").reshape(-1, 3).T   # interleaved
    expected = np.rint(np.nan_to_num(x.astype(np.float64)) * 1000).astype(np.int64)
    expected[np.isnan(x)] = -32768                                            # invalid sample
    assert np.array_equal(raw, expected)
    lines = _header_lines(tmp_path / "spec.hea")
    assert lines[0].split()[:4] == ["spec", "3", "500", str(x.shape[1])]
    for ch, line in enumerate(lines[1:4]):
        f = line.split()
        assert f[0] == "spec.dat" and f[1] == "16"
        assert re.fullmatch(r"1000(\.0)?\(0\)/mV", f[2])
        assert int(f[5]) == raw[ch, 0]                                 # initial value
        assert (int(f[6]) - int(raw[ch].astype(np.int64).sum())) % 65536 == 0    # checksum
        assert f[8] == ["I", "II", "V1"][ch]


def test_large_amplitudes_switch_to_format_32(tmp_path: Path) -> None:
    x = _synthetic(250.0, 2) * 100                         # up to ~±70 mV: beyond int16 at 1 µV
    x[0, 3] = np.nan
    assert np.nanmax(np.abs(x)) * 1000 > 32767
    write_wfdb(Recording(x, 250.0, ["II", "V2"]), tmp_path / "big")
    assert _header_lines(tmp_path / "big.hea")[1].split()[1] == "32"
    raw = np.fromfile(tmp_path / "big.dat", dtype="<i4").reshape(-1, 2).T
    assert raw[0, 3] == -(2**31)
    back = read_wfdb(tmp_path / "big")
    assert np.isnan(back.signal[0, 3])
    assert np.nanmax(np.abs(back.signal - x)) <= HALF_MICROVOLT + 1e-5   # float32 at ~70 mV


def test_start_time_goes_into_the_standard_header_fields(tmp_path: Path) -> None:
    start = datetime(2023, 12, 31, 23, 59, 58)
    write_wfdb(Recording(np.zeros((1, 600)), 300.0, ["II"], start_time=start), tmp_path / "s")
    header = wfdb.rdheader(str(tmp_path / "s"))
    assert header.base_datetime == start


def test_long_meta_is_split_over_short_header_lines(tmp_path: Path) -> None:
    meta = {"note": "pasien lansia; " * 60, "quote": 'say "hi"\tand\\bye ' * 20}
    write_wfdb(Recording(np.zeros((1, 600)), 300.0, ["II"], meta=meta), tmp_path / "m")
    lines = _header_lines(tmp_path / "m.hea")
    assert sum(line.startswith("# detak.meta+") for line in lines) > 3
    assert all(len(line) <= 255 for line in lines)
    assert read_wfdb(tmp_path / "m").meta == meta


def test_write_accepts_hea_and_dat_paths(tmp_path: Path) -> None:
    rec = Recording(np.zeros((1, 600)), 300.0, ["II"])
    assert write_wfdb(rec, tmp_path / "a.hea") == tmp_path / "a.hea"
    assert write_wfdb(rec, tmp_path / "sub" / "b.dat") == tmp_path / "sub" / "b.hea"
    assert (tmp_path / "sub" / "b.dat").is_file()


# --- reading records written by others -------------------------------------------------------


def test_units_are_converted_to_millivolts(tmp_path: Path) -> None:
    x = np.column_stack([np.linspace(-800, 800, 720), np.linspace(-0.002, 0.002, 720)])
    base = _wrsamp(tmp_path, "uv", ["uV", "V"], ["ML2", "V5"], x,
                   adc_gain=[1.0, 1e6], baseline=[0, 0])
    rec = read_wfdb(base)
    assert rec.leads == ("MLII", "V5")
    assert rec.index("II") == 0                         # MLII answers for II
    np.testing.assert_allclose(rec.lead("MLII"), x[:, 0] / 1000, atol=1e-3)
    np.testing.assert_allclose(rec.lead("V5"), x[:, 1] * 1000, atol=1e-3)


def test_foreign_comments_go_into_meta(tmp_path: Path) -> None:
    base = _wrsamp(tmp_path, "c", ["mV"], ["MLII"], np.zeros((720, 1)),
                   comments=["69 M 1085 1629 x1", "Aldomet, Inderal", "Age: 74", "Dx: 164889003",
                             "<weight>: 72.5"])
    meta = read_wfdb(base).meta
    assert meta["comments"] == ["69 M 1085 1629 x1", "Aldomet, Inderal"]
    assert (meta["age"], meta["dx"], meta["weight"]) == (74, 164889003, 72.5)


def test_uncalibrated_and_unnamed_signals(tmp_path: Path) -> None:
    (np.arange(600) % 50).astype("<i2").tofile(tmp_path / "g.dat")
    # Second signal line has no gain and no name: WFDB assumes 200 adu/mV, "uncalibrated".
    (tmp_path / "g.hea").write_text("g 2 300 300\ng.dat 16 0 16 0 0 0 0 II\ng.dat 16\n")
    rec = read_wfdb(tmp_path / "g")
    assert rec.leads == ("II", "ch2")
    assert rec.meta["uncalibrated_leads"] == ["II", "ch2"]
    assert rec.signal[0, :3].tolist() == pytest.approx([0.0, 0.01, 0.02])   # 2 counts / 200


def test_paths_with_and_without_suffix_read_the_same_record(tmp_path: Path) -> None:
    x = _synthetic(130.0, 2)
    write_wfdb(Recording(x, 130.0, ["I", "II"]), tmp_path / "r")
    a, b, c = (read_wfdb(tmp_path / n) for n in ("r", "r.hea", "r.dat"))
    assert np.array_equal(a.signal, b.signal) and np.array_equal(a.signal, c.signal)
    assert a.name == b.name == c.name == "r"


def test_real_ludb_record_matches_wfdb_physical_signal() -> None:
    base = _ludb(1)
    rec = read_wfdb(base.with_suffix(".hea"))
    ref = wfdb.rdrecord(str(base))
    assert rec.fs == ref.fs == 500
    assert rec.leads == tuple(LEADS_12)                 # LUDB writes i, ii, avr... in lower case
    assert [s.lower() for s in ref.sig_name] == [s.lower() for s in rec.leads]
    np.testing.assert_allclose(rec.signal, ref.p_signal.T.astype(np.float32), rtol=0, atol=1e-6)
    # Header comments, read independently from the text of the header.
    text = base.with_suffix(".hea").read_text()
    age = int(re.search(r"#<age>:\s*(\d+)", text).group(1))
    sex = re.search(r"#<sex>:\s*(\w)", text).group(1)
    diagnoses = text.split("#<diagnoses>:")[1].strip().splitlines()
    assert rec.meta["age"] == age and rec.meta["sex"] == sex
    assert rec.meta["diagnoses"] == [d.lstrip("#").strip() for d in diagnoses]


def test_real_ludb_record_survives_our_round_trip(tmp_path: Path) -> None:
    rec = read_wfdb(_ludb(7))
    write_wfdb(rec, tmp_path / "ludb7")
    back = read_wfdb(tmp_path / "ludb7")
    assert back.leads == rec.leads and back.meta == rec.meta and back.name == "7"
    assert np.abs(back.signal - rec.signal).max() <= HALF_MICROVOLT


def test_multi_segment_record_is_merged(tmp_path: Path) -> None:
    for k in (1, 2):
        write_wfdb(Recording(np.full((2, 300), 0.1 * k), 300.0, ["II", "V1"]), tmp_path / f"s_{k}")
    (tmp_path / "multi.hea").write_text("multi/2 2 300 600\ns_1 300\ns_2 300\n")
    rec = read_wfdb(tmp_path / "multi")
    assert rec.leads == ("II", "V1") and rec.signal.shape == (2, 600)
    assert rec.signal[:, :300] == pytest.approx(0.1) and rec.signal[:, 300:] == pytest.approx(0.2)
    assert "uncalibrated_leads" not in rec.meta
