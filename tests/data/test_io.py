"""Tests for detak.data.io: dispatch on suffix / .hea, errors for missing and unknown files."""

from __future__ import annotations

from pathlib import Path

import edfio
import numpy as np
import pytest

from detak.data.csv_io import read_csv
from detak.data.edf_io import read_edf
from detak.data.io import (
    UnsupportedFormatError,
    read_recording,
    recording_format,
    write_recording,
)
from detak.data.paths import data_root
from detak.data.recording import Recording
from detak.data.validation import RecordingError
from detak.data.wfdb_io import read_wfdb


def _rec(fs: float = 250.0) -> Recording:
    t = np.arange(int(3 * fs)) / fs
    return Recording(np.vstack([np.sin(2 * np.pi * t), np.cos(2 * np.pi * t)]), fs,
                     ["I", "II"], name="r")


# --- bad input first -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["missing.csv", "missing.edf", "missing", "missing.xyz"])
def test_missing_file_names_the_path(tmp_path: Path, name: str) -> None:
    with pytest.raises(FileNotFoundError) as err:
        read_recording(tmp_path / name)
    assert str(tmp_path / name) in str(err.value)


def test_dat_without_header_names_the_header(tmp_path: Path) -> None:
    (tmp_path / "x.dat").write_bytes(b"\0" * 10)
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "x.hea")):
        read_recording(tmp_path / "x.dat")


@pytest.mark.parametrize("name", ["ecg.json", "ecg.xml", "noext"])
def test_unknown_format_lists_supported_formats(tmp_path: Path, name: str) -> None:
    p = tmp_path / name
    p.write_text("{}")
    with pytest.raises(UnsupportedFormatError) as err:
        read_recording(p)
    msg = str(err.value)
    assert err.value.problem == "unsupported_format" and isinstance(err.value, RecordingError)
    assert str(p) in msg
    for fmt in ("WFDB", "CSV", "EDF", ".hea", ".csv", ".edf"):
        assert fmt in msg


def test_directory_is_not_a_record(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedFormatError):
        read_recording(tmp_path)


def test_write_to_unsupported_format(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedFormatError, match="cannot write"):
        write_recording(_rec(), tmp_path / "r.edf")


def test_validate_option_raises_on_invalid_recordings(tmp_path: Path) -> None:
    p = tmp_path / "short.csv"
    p.write_text("# fs=250\nII\n" + "\n".join("0.1" for _ in range(100)) + "\n")   # 0.4 s
    assert read_recording(p).n_samples == 100                  # reading alone does not judge
    with pytest.raises(RecordingError) as err:
        read_recording(p, validate=True)
    assert err.value.problem == "too_short"


# --- dispatch --------------------------------------------------------------------------------


def test_each_format_goes_to_its_reader(tmp_path: Path) -> None:
    rec = _rec()
    write_recording(rec, tmp_path / "w")
    write_recording(rec, tmp_path / "c.csv")
    write_recording(rec, tmp_path / "t.tsv")
    edf = tmp_path / "e.edf"
    edfio.Edf([edfio.EdfSignal(rec.signal[0].astype(float) * 1000, 250, label="ECG I",
                               physical_dimension="uV")]).write(edf)

    assert recording_format(tmp_path / "w") == recording_format(tmp_path / "w.dat") == "WFDB"
    assert recording_format(tmp_path / "c.csv") == "CSV"
    assert recording_format(edf) == "EDF"
    assert "\t" in (tmp_path / "t.tsv").read_text().splitlines()[-1]

    for path, direct in [(tmp_path / "w", read_wfdb(tmp_path / "w")),
                         (tmp_path / "w.hea", read_wfdb(tmp_path / "w")),
                         (tmp_path / "c.csv", read_csv(tmp_path / "c.csv")),
                         (tmp_path / "t.tsv", read_csv(tmp_path / "t.tsv")),
                         (edf, read_edf(edf))]:
        got = read_recording(path)
        assert got.leads == direct.leads and got.fs == direct.fs
        assert np.array_equal(got.signal, direct.signal)
    # the formats agree with each other on the same recording
    assert np.abs(read_recording(tmp_path / "w").signal - rec.signal).max() <= 0.5e-3 + 1e-6
    assert np.array_equal(read_recording(tmp_path / "c.csv").signal, rec.signal)


def test_reader_options_pass_through(tmp_path: Path) -> None:
    p = tmp_path / "counts.csv"
    p.write_text("II\n1.000\n2.000\n")
    rec = read_recording(p, fs=500, units="uV", number_format="dot-thousands")
    assert rec.fs == 500.0 and rec.signal[0].tolist() == pytest.approx([1.0, 2.0])


def test_real_ludb_record_by_every_path_form() -> None:
    base = data_root() / "ludb" / "data" / "2"
    recs = [read_recording(p) for p in (base, base.with_suffix(".hea"), base.with_suffix(".dat"))]
    assert all(r.signal.shape == (12, 5000) and r.fs == 500.0 for r in recs)
    assert np.array_equal(recs[0].signal, recs[2].signal)
    read_recording(base, validate=True)             # a real record passes validation
