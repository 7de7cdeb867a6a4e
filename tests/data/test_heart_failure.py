"""Tests for detak.data.heart_failure: loading, dtypes and named errors for broken CSVs."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from detak.data.heart_failure import (
    FEATURES,
    TARGET,
    HeartFailureFormatError,
    default_path,
    load_heart_failure,
    split_xy,
)
from detak.data.paths import DataNotFoundError


def raw() -> tuple[list[str], list[list[str]]]:
    with open(default_path(), newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[1:]


def write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows([header, *rows])
    return path


# ------------------------------------------------------------ bad inputs first
def test_missing_column_is_named(tmp_path: Path) -> None:
    header, rows = raw()
    drop = header.index("serum_sodium")
    path = write(tmp_path / "hf.csv", [h for i, h in enumerate(header) if i != drop],
                 [[v for i, v in enumerate(r) if i != drop] for r in rows])
    with pytest.raises(HeartFailureFormatError, match=r"hf\.csv: column\(s\) serum_sodium missing"):
        load_heart_failure(path)


def test_non_numeric_value_is_named(tmp_path: Path) -> None:
    header, rows = raw()
    rows = [list(r) for r in rows]
    rows[4][header.index("ejection_fraction")] = "n/a"
    with pytest.raises(HeartFailureFormatError, match="'ejection_fraction', data row 5: 'n/a'"):
        load_heart_failure(write(tmp_path / "hf.csv", header, rows))


def test_binary_column_out_of_range(tmp_path: Path) -> None:
    header, rows = raw()
    rows = [list(r) for r in rows]
    rows[0][header.index("smoking")] = "2"
    with pytest.raises(HeartFailureFormatError, match="'smoking', data row 1: '2' is not 0 or 1"):
        load_heart_failure(write(tmp_path / "hf.csv", header, rows))


def test_fraction_in_integer_column(tmp_path: Path) -> None:
    header, rows = raw()
    rows = [list(r) for r in rows]
    rows[2][header.index("serum_sodium")] = "136.5"
    with pytest.raises(HeartFailureFormatError, match="'serum_sodium', data row 3: '136.5' is not"):
        load_heart_failure(write(tmp_path / "hf.csv", header, rows))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match="nothing.csv"):
        load_heart_failure(tmp_path / "nothing.csv")


# ------------------------------------------------------------ the real file
def test_shape_target_and_dtypes() -> None:
    df = load_heart_failure()
    assert df.shape == (299, 13) and len(FEATURES) == 12
    assert df[TARGET].value_counts().to_dict() == {0: 203, 1: 96}  # figures from the README
    assert not df.isna().any().any()
    assert str(df["age"].dtype) == "float64" and str(df["serum_sodium"].dtype) == "int64"
    assert {str(df[c].dtype) for c in ("anaemia", "sex", TARGET)} == {"int8"}


def test_values_match_the_csv() -> None:
    header, rows = raw()
    df = load_heart_failure()
    for col in ("age", "platelets", "serum_creatinine", "time"):
        j = header.index(col)
        assert df[col].tolist() == [float(r[j]) for r in rows], col


def test_split_without_time() -> None:
    X, y = split_xy(load_heart_failure(), with_time=False)
    assert "time" not in X.columns and X.shape == (299, 11) and y.name == TARGET
    X, _ = split_xy(load_heart_failure())
    assert list(X.columns) == list(FEATURES)
    with pytest.raises(HeartFailureFormatError, match="DEATH_EVENT"):
        split_xy(load_heart_failure().drop(columns=[TARGET]))
