"""Tests for detak.data.numbers: the three number formats, the per-file "auto" rule, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from detak.data.numbers import (
    AmbiguousNumberFormatError,
    InvalidNumberError,
    detect_number_format,
    is_missing,
    millivolts_per_unit,
    parse_columns,
    parse_number,
    resolve_number_formats,
)

# --- bad input first -------------------------------------------------------------------------


@pytest.mark.parametrize(("token", "fmt"), [
    ("1,234.5", "point"),       # English thousands: not a supported format
    ("12,5", "point"),
    ("1.03", "comma"),          # a dot in "comma" must group exactly three digits
    ("0.500", "comma"),         # a group cannot start with 0
    ("12,5", "dot-thousands"),  # no decimal part in dot-thousands
    ("1.5e3", "comma"),
    ("1.2.3", "point"),
    ("inf", "point"),
    ("abc", "dot-thousands"),
    ("--1", "point"),
])
def test_invalid_token_is_refused_and_named(token: str, fmt: str) -> None:
    with pytest.raises(InvalidNumberError) as err:
        parse_number(token, fmt)
    assert repr(token) in str(err.value)
    assert err.value.token == token


def test_decimal_comma_in_dot_thousands_points_to_comma_format() -> None:
    with pytest.raises(InvalidNumberError, match="number_format='comma'"):
        parse_number("58,1", "dot-thousands")


def test_unknown_format_name() -> None:
    with pytest.raises(ValueError, match="number_format must be one of"):
        parse_number("1", "german")
    with pytest.raises(ValueError, match="'auto'"):
        parse_number("1", "auto")           # auto decides per file, not per token


def test_invalid_token_error_names_line_column_and_token() -> None:
    cols = {"RR": ["800", "1.0x2", "900"], "HR": ["70", "71", "72"]}
    with pytest.raises(InvalidNumberError) as err:
        parse_columns(cols, source="s3.csv", line_numbers=[5, 6, 7])
    e = err.value
    assert (e.line, e.column, e.token, e.source) == (6, "RR", "1.0x2", "s3.csv")
    assert "s3.csv, line 6, column 'RR'" in str(e) and "'1.0x2'" in str(e)


def test_invalid_token_in_explicit_format_names_row_when_no_lines_given() -> None:
    with pytest.raises(InvalidNumberError) as err:
        parse_columns({"QT": ["400", "41O"]}, "point")       # letter O typed for zero
    assert "row 2, column 'QT'" in str(err.value)


# --- "auto": the ambiguity is refused, never guessed -----------------------------------------


def test_only_ambiguous_values_are_refused_with_the_options_to_pass() -> None:
    with pytest.raises(AmbiguousNumberFormatError) as err:
        detect_number_format({"RR": ["876", "1.032", "1.104"]}, source="s3.csv",
                             line_numbers=[2, 3, 4])
    msg = str(err.value)
    assert "s3.csv, line 3, column 'RR'" in msg
    assert "1.032" in msg and "1032" in msg
    assert "number_format='point'" in msg and "'dot-thousands'" in msg
    assert err.value.token == "1.032" and err.value.line == 3


def test_column_without_own_evidence_next_to_decimal_point_column_is_refused() -> None:
    # S3-like: RR written with dot thousands, R/S ratio with a decimal point.
    cols = {"RR": ["1.032", "876", "1.120"], "RS": ["0.85", "1.2", "0.5"]}
    with pytest.raises(AmbiguousNumberFormatError) as err:
        detect_number_format(cols)
    assert "column 'RR'" in str(err.value)
    assert "'RS'" in str(err.value)                 # names the evidence elsewhere
    # ... and the mapping the message suggests reads the file.
    out = parse_columns(cols, {"RR": "dot-thousands", "*": "point"})
    assert out["RR"].tolist() == [1032.0, 876.0, 1120.0]
    assert out["RS"].tolist() == [0.85, 1.2, 0.5]


def test_mixed_conventions_are_refused() -> None:
    with pytest.raises(AmbiguousNumberFormatError, match="mix decimal points"):
        detect_number_format({"I": ["0.125", "0.5"], "HR": ["58,1", "60"]})
    with pytest.raises(AmbiguousNumberFormatError, match="correct the file"):
        detect_number_format({"I": ["0.125", "1.234.567"]})


def test_auto_decides_per_file_not_per_value() -> None:
    # The same token "1.032" reads differently depending on the rest of the file.
    point_file = parse_columns({"II": ["1.032", "0.950", "-0.2"]})
    dot_file = parse_columns({"RR": ["1.032", "1.234.567"]})
    comma_file = parse_columns({"RR": ["1.032", "876"], "RS": ["0,85", "1,2"]})
    assert point_file["II"][0] == pytest.approx(1.032)
    assert dot_file["RR"][0] == 1032.0
    assert comma_file["RR"][0] == 1032.0 and comma_file["RS"].tolist() == [0.85, 1.2]


@pytest.mark.parametrize(("cols", "expected"), [
    ({"a": ["1", "-2", "300"]}, "point"),                    # integers read the same anyway
    ({"a": ["0.1", "12.5", "1e-3"]}, "point"),
    ({"a": ["1.250", "0.125"]}, "point"),                    # ambiguous + own evidence
    ({"a": ["1.234,5", "12"]}, "comma"),
    ({"a": ["12,5"], "b": ["1.032"]}, "comma"),
    ({"a": ["1.234.567", "876"]}, "dot-thousands"),
    ({"a": ["", "NaN", "1"]}, "point"),
])
def test_detect(cols: dict[str, list[str]], expected: str) -> None:
    assert detect_number_format(cols) == expected


# --- the formats themselves ------------------------------------------------------------------


@pytest.mark.parametrize(("token", "fmt", "value"), [
    ("1234.5", "point", 1234.5),
    ("-0.25", "point", -0.25),
    ("+.5", "point", 0.5),
    ("1e-3", "point", 0.001),
    ("1.032", "point", 1.032),
    ("1.234,5", "comma", 1234.5),
    ("1234,5", "comma", 1234.5),
    ("-0,25", "comma", -0.25),
    ("1.234", "comma", 1234.0),
    ("12.500.000,75", "comma", 12500000.75),
    ("1.032", "dot-thousands", 1032.0),
    ("1.234.567", "dot-thousands", 1234567.0),
    ("876", "dot-thousands", 876.0),
    (" 42 ", "point", 42.0),
])
def test_parse_number(token: str, fmt: str, value: float) -> None:
    assert parse_number(token, fmt) == pytest.approx(value, rel=0, abs=1e-12)


@pytest.mark.parametrize("token", ["", "  ", "nan", "NaN", "NA", "n/a", "null", "None"])
def test_missing_values_are_nan(token: str) -> None:
    assert is_missing(token)
    assert math.isnan(parse_number(token, "comma"))


def test_parse_columns_returns_float_arrays_with_nan_for_missing() -> None:
    out = parse_columns({"RR": ["1.032", "", "876"]}, "dot-thousands")
    assert out["RR"].dtype == np.float64
    assert np.isnan(out["RR"][1]) and out["RR"][[0, 2]].tolist() == [1032.0, 876.0]


def test_mapping_errors() -> None:
    with pytest.raises(KeyError, match="'QRS'"):
        resolve_number_formats({"RR": ["1"]}, {"QRS": "point"})
    with pytest.raises(ValueError, match="must be one of"):
        resolve_number_formats({"RR": ["1"]}, {"RR": "european"})


def test_mapping_default_auto_applies_to_the_remaining_columns_only() -> None:
    cols = {"RR": ["1.032"], "HR": ["58,1"]}
    assert resolve_number_formats(cols, {"RR": "dot-thousands"}) == {
        "RR": "dot-thousands", "HR": "comma"}


def test_millivolts_per_unit() -> None:
    assert millivolts_per_unit("mV") == 1.0
    assert millivolts_per_unit("uV") == millivolts_per_unit("µV") == 1e-3
    assert millivolts_per_unit(" V ") == 1000.0
    assert millivolts_per_unit("mmHg") is None
