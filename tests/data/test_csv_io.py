"""Tests for detak.data.csv_io: delimiters, number formats, sample-rate sources, errors."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from detak.data.csv_io import read_csv, read_text_table, write_csv
from detak.data.numbers import AmbiguousNumberFormatError, InvalidNumberError
from detak.data.recording import Recording
from detak.data.validation import RecordingError


def _write(tmp_path: Path, text: str, name: str = "ecg.csv") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def _problem(path: Path, **kw) -> RecordingError:
    with pytest.raises(RecordingError) as err:
        read_csv(path, **kw)
    assert str(path) in str(err.value)            # every error names the file
    return err.value


# --- bad input first -------------------------------------------------------------------------


def test_sample_rate_missing(tmp_path: Path) -> None:
    err = _problem(_write(tmp_path, "I,II\n0.1,0.2\n0.3,0.4\n"))
    assert err.problem == "sample_rate_missing"
    assert "sample rate missing" in str(err) and "fs=" in str(err)


def test_irregular_time_column_names_the_lines(tmp_path: Path) -> None:
    rows = [f"{i * 0.004:.3f},{np.sin(i / 10):.4f}" for i in range(100) if i != 40]  # 1 dropped
    p = _write(tmp_path, "time_s,II\n" + "\n".join(rows) + "\n")
    err = _problem(p)
    assert err.problem == "irregular_time"
    assert "line 41 to line 42" in str(err)      # header is line 1, sample i on line i + 2
    # An explicit rate ignores the time column (e.g. bursty host timestamps from BLE).
    assert read_csv(p, fs=250).fs == 250.0


def test_time_column_that_does_not_increase(tmp_path: Path) -> None:
    err = _problem(_write(tmp_path, "t,II\n0,1\n0,2\n0,3\n"))
    assert err.problem == "irregular_time" and "does not increase" in str(err)


def test_time_in_ms_under_a_seconds_name_is_refused_not_guessed(tmp_path: Path) -> None:
    rows = "\n".join(f"{1000 + 4 * i},{i % 7}" for i in range(50))
    err = _problem(_write(tmp_path, "timestamp,II\n" + rows + "\n"))
    assert err.problem == "irregular_time" and "timestamp_ms" in str(err)


def test_comment_and_time_column_disagree(tmp_path: Path) -> None:
    rows = "\n".join(f"{i / 250:.4f},{i % 5}" for i in range(50))
    p = _write(tmp_path, "# fs=500\ntime,II\n" + rows + "\n")
    err = _problem(p)
    assert err.problem == "sample_rate_conflict"
    assert "500" in str(err) and "250" in str(err)
    assert read_csv(p, fs=250).fs == 250.0        # the argument decides


def test_unknown_units(tmp_path: Path) -> None:
    p = _write(tmp_path, "# fs=500, units=mmHg\nII\n1\n2\n")
    err = _problem(p)
    assert err.problem == "unknown_units" and "'mmHg'" in str(err)
    err = _problem(_write(tmp_path, "# fs=500\nII\n1\n", "b.csv"), units="counts")
    assert err.problem == "unknown_units" and "'counts'" in str(err)


def test_ragged_row_names_the_line(tmp_path: Path) -> None:
    rows = "\n".join(f"{i},{i}" for i in range(60))
    err = _problem(_write(tmp_path, f"# fs=500\nI,II\n{rows}\n5,6,7\n"))
    assert err.problem == "ragged_rows" and "line 63 has 3 fields" in str(err)


def test_undecidable_delimiter(tmp_path: Path) -> None:
    err = _problem(_write(tmp_path, "# fs=500\nI;II\n1;2\n3\n"))
    assert err.problem == "ragged_rows" and "delimiter" in str(err)


def test_header_row_missing(tmp_path: Path) -> None:
    err = _problem(_write(tmp_path, "# fs=500\n0.1,0.2\n0.3,0.4\n"))
    assert err.problem == "no_header" and "header row" in str(err)


def test_empty_file_and_header_only(tmp_path: Path) -> None:
    assert _problem(_write(tmp_path, "# fs=500\n\n", "a.csv")).problem == "no_data"
    assert _problem(_write(tmp_path, "I,II\n", "b.csv")).problem == "no_data"


def test_only_a_time_column(tmp_path: Path) -> None:
    assert _problem(_write(tmp_path, "time_s\n0\n0.002\n")).problem == "no_leads"


def test_bad_comment_values(tmp_path: Path) -> None:
    err = _problem(_write(tmp_path, "# fs=fast\nII\n1\n", "a.csv"))
    assert err.problem == "bad_header_metadata" and "'fast'" in str(err)
    err = _problem(_write(tmp_path, "# fs=500\n# start_time=yesterday\nII\n1\n", "b.csv"))
    assert err.problem == "bad_header_metadata" and "start_time" in str(err)
    err = _problem(_write(tmp_path, "# fs=500\n# meta={not json}\nII\n1\n", "c.csv"))
    assert err.problem == "bad_header_metadata"


def test_invalid_number_names_line_column_token(tmp_path: Path) -> None:
    p = _write(tmp_path, "# fs=500\nI,II\n0.1,0.2\n0.3,O.4\n")
    with pytest.raises(InvalidNumberError) as err:
        read_csv(p)
    assert (err.value.line, err.value.column, err.value.token) == (4, "II", "O.4")
    assert str(p) in str(err.value)


def test_ambiguous_numbers_are_refused_until_a_format_is_given(tmp_path: Path) -> None:
    p = _write(tmp_path, "# fs=500\nII\n1.032\n-1.120\n2\n")
    with pytest.raises(AmbiguousNumberFormatError, match="number_format"):
        read_csv(p)
    assert read_csv(p, number_format="point").signal[0].tolist() == pytest.approx(
        [1.032, -1.12, 2.0])
    assert read_csv(p, number_format="dot-thousands", units="uV").signal[0].tolist() == \
        pytest.approx([1.032, -1.120, 0.002])


def test_negative_or_nan_fs_argument(tmp_path: Path) -> None:
    p = _write(tmp_path, "II\n1\n")
    with pytest.raises(ValueError, match="fs must be a positive"):
        read_csv(p, fs=-5)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        read_csv(tmp_path / "nope.csv")


# --- formats ---------------------------------------------------------------------------------


def test_point_decimals_comma_delimiter_time_in_seconds(tmp_path: Path) -> None:
    fs = 500.0
    t = np.arange(1000) / fs
    ii = 0.8 * np.sin(2 * np.pi * 1.2 * t)
    v1 = -0.3 * np.cos(2 * np.pi * 1.2 * t)
    rows = "\n".join(f"{a:.3f},{b:.4f},{c:.4f}" for a, b, c in zip(t, ii, v1, strict=True))
    rec = read_csv(_write(tmp_path, "time_s,ii,v1\n" + rows + "\n"))
    assert rec.fs == 500.0 and rec.leads == ("II", "V1") and rec.n_samples == 1000
    np.testing.assert_allclose(rec.signal, np.vstack([ii, v1]), atol=5.1e-5)
    assert rec.name == "ecg" and "time_offset_s" not in rec.meta


def test_comma_decimals_semicolon_delimiter_with_fs_comment(tmp_path: Path) -> None:
    text = "# fs=250 Hz; units=uV\nI;II;V1\n1.234,5;-12,5;0\n-500;0,25;1.000\n"
    rec = read_csv(_write(tmp_path, text))
    assert rec.fs == 250.0
    np.testing.assert_allclose(rec.signal, np.array([[1234.5, -500], [-12.5, 0.25],
                                                     [0, 1000]]) / 1000, rtol=1e-6)


def test_tab_delimiter_and_missing_cells(tmp_path: Path) -> None:
    rec = read_csv(_write(tmp_path, "# Sampling rate: 360 Hz\nMLII\tV5\n0.1\t\n-0.2\tnan\n"
                                    "0.3\t0.4\n", "t.tsv"))
    assert rec.fs == 360.0 and rec.leads == ("MLII", "V5")
    assert np.isnan(rec.signal[1, :2]).all() and rec.signal[1, 2] == pytest.approx(0.4)


def test_dot_thousands_explicit(tmp_path: Path) -> None:
    rec = read_csv(_write(tmp_path, "II\n1.032\n-2.500\n12\n"), fs=100,
                   number_format="dot-thousands", units="uV")
    assert rec.signal[0].tolist() == pytest.approx([1.032, -2.5, 0.012])


@pytest.mark.parametrize("name", ["time_ms", "ms", "Time (ms)", "t [ms]", "timestamp_ms"])
def test_time_column_in_milliseconds(tmp_path: Path, name: str) -> None:
    rows = "\n".join(f"{2 * i},{i % 3}" for i in range(20))
    assert read_csv(_write(tmp_path, f"{name},II\n{rows}\n")).fs == 500.0


def test_time_printed_with_coarse_precision_still_gives_the_rate(tmp_path: Path) -> None:
    # 360 Hz with times rounded to 1 ms: steps are 2 or 3 ms, none irregular.
    rows = "\n".join(f"{i / 360:.3f},{np.sin(i / 20):.3f}" for i in range(3600))
    assert read_csv(_write(tmp_path, "time,MLII\n" + rows + "\n")).fs == 360.0


def test_time_offset_and_unix_time(tmp_path: Path) -> None:
    rows = "\n".join(f"{12.5 + i / 200:.4f},{i % 4}" for i in range(40))
    rec = read_csv(_write(tmp_path, "t,II\n" + rows + "\n", "a.csv"))
    assert rec.fs == 200.0 and rec.meta["time_offset_s"] == pytest.approx(12.5)
    t0 = 1_714_550_400.0                               # 2024-05-01T08:00:00Z
    rows = "\n".join(f"{t0 + i / 100:.2f},{i % 4}" for i in range(40))
    rec = read_csv(_write(tmp_path, "timestamp,II\n" + rows + "\n", "b.csv"))
    assert rec.fs == 100.0 and rec.start_time == datetime(2024, 5, 1, 8, tzinfo=UTC)


def test_comment_metadata(tmp_path: Path) -> None:
    text = ("# fs=500, units=mV\n# device_id=emu-7; calibration=default\n"
            "# start_time=2024-05-01T10:00:00+07:00\n# meta={\"age\": 72, \"ward\": \"B\"}\n"
            "# site=Medan\n# recorded by the night nurse\nII\n0\n1\n")
    rec = read_csv(_write(tmp_path, text))
    assert (rec.device_id, rec.calibration) == ("emu-7", "default")
    assert rec.start_time.isoformat() == "2024-05-01T10:00:00+07:00"
    assert rec.meta == {"age": 72, "ward": "B", "site": "Medan",
                        "comments": "recorded by the night nurse"}


def test_bom_and_crlf(tmp_path: Path) -> None:
    p = tmp_path / "excel.csv"
    p.write_bytes("\ufeff# fs=500\r\nI;II\r\n0,5;1\r\n".encode())
    rec = read_csv(p)
    assert rec.leads == ("I", "II") and rec.signal[:, 0].tolist() == [0.5, 1.0]


def test_read_text_table_for_tabular_files(tmp_path: Path) -> None:
    p = _write(tmp_path, "# S3 interval export\nid,RR,QRS\n\nA1,1.032,88\nA2,876,1.104\n")
    t = read_text_table(p)
    assert t.header == ["id", "RR", "QRS"] and t.delimiter == ","
    assert t.line_numbers == [4, 5] and t.comments == ["S3 interval export"]
    assert t.columns()["RR"] == ["1.032", "876"]


# --- write ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fs", "n_leads"), [(100.0, 1), (360.0, 3), (500.0, 12)])
def test_write_then_read_round_trips_exactly(tmp_path: Path, fs: float, n_leads: int) -> None:
    rng = np.random.default_rng(int(fs))
    x = rng.normal(0, 0.7, (n_leads, int(4 * fs))).astype(np.float32)
    x[0, 7] = np.nan
    leads = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"][:n_leads]
    rec = Recording(x, fs, leads, name="kiosk:2024-05-01/7", device_id="emu-1",
                    calibration="cal-v2", start_time=datetime(2024, 5, 1, 10, 0, tzinfo=UTC),
                    meta={"age": 70, "gaps": [[0.01, 0.02]]})
    p = write_csv(rec, tmp_path / "out.csv")
    back = read_csv(p)
    assert np.array_equal(back.signal, x, equal_nan=True)           # bit-exact float32
    assert (back.fs, back.leads, back.name, back.device_id, back.calibration) == (
        fs, rec.leads, rec.name, "emu-1", "cal-v2")
    assert back.start_time == rec.start_time and back.meta == rec.meta


def test_write_with_semicolons_and_without_time(tmp_path: Path) -> None:
    rec = Recording(np.array([[0.5, -0.25, 1.0]]), 130.0, ["V2"])
    p = write_csv(rec, tmp_path / "v2.csv", delimiter=";", time_column=False)
    assert p.read_text().splitlines()[2:] == ["V2", "0.5", "-0.25", "1.0"]
    assert read_csv(p).fs == 130.0


def test_write_refuses_missing_rate(tmp_path: Path) -> None:
    with pytest.raises(RecordingError) as err:
        write_csv(Recording(np.zeros((1, 3)), float("nan"), ["II"]), tmp_path / "x.csv")
    assert err.value.problem == "sample_rate_missing"
