"""detak.models.cases for one case typed into a form and a schema held as data (the clinic
server's expert system): the same named errors as a case CSV, the same schema checks as a
schema file."""

import math

import pytest

from detak.models.cases import (
    MissingColumnError,
    NonNumericValueError,
    SchemaError,
    UnknownClassError,
    load_schema,
    parse_case,
    schema_from_doc,
)


def test_parse_case_reads_numbers_blank_as_missing_and_canonical_class():
    s = load_schema("ecg_intervals")
    cells = {k: "" for k in s.keys} | {"pr_ms": " 160 ", "hr_bpm": "72.5"}
    values, label = parse_case(s, cells, "  berpotensi   aritmia ")
    assert values["pr_ms"] == 160.0 and values["hr_bpm"] == 72.5
    assert values["qt_ms"] is None
    assert label == "Berpotensi Aritmia"


def test_parse_case_names_every_non_numeric_cell_with_the_comma_hint():
    s = load_schema("s4_echo")
    cells = {k: "1" for k in s.keys} | {"ef_pct": "62,5", "qt_ms": "long"}
    with pytest.raises(NonNumericValueError) as exc:
        parse_case(s, cells, "mitral stenosis")
    assert {c for _, c, _ in exc.value.problems} == {"EF", "QT"}
    assert "decimal point" in str(exc.value)


def test_parse_case_unknown_or_empty_class_and_missing_feature():
    s = load_schema("s4_echo")
    cells = {k: "1" for k in s.keys}
    with pytest.raises(UnknownClassError, match="'flu' is not a class"):
        parse_case(s, cells, "flu")
    with pytest.raises(UnknownClassError):
        parse_case(s, cells, "")
    del cells["ef_pct"]
    with pytest.raises(MissingColumnError, match="'EF'"):
        parse_case(s, cells, "mitral stenosis")


def test_parse_case_refuses_infinite_and_all_blank():
    s = load_schema("ecg_intervals")
    cells = {k: "" for k in s.keys}
    with pytest.raises(NonNumericValueError, match="no measurement"):
        parse_case(s, cells, "Normal")
    with pytest.raises(NonNumericValueError, match="'inf'"):
        parse_case(s, cells | {"pr_ms": "inf"}, "Normal")
    values, _ = parse_case(s, cells | {"pr_ms": "1e2"}, "Normal")
    assert values["pr_ms"] == 100.0 and not any(
        v is not None and math.isnan(v) for v in values.values())


def test_schema_from_doc_checks_like_a_schema_file():
    doc = {"name": "x", "target": "dx", "features": [{"key": "a"}, {"key": "b", "unit": "ms"}],
           "classes": {"names": ["yes", "no"]}}
    s = schema_from_doc(doc, "db:base 1")
    assert s.keys == ("a", "b") and s.features[1].unit == "ms" and s.classes == ("yes", "no")
    with pytest.raises(SchemaError, match="duplicate feature key"):
        schema_from_doc(doc | {"features": [{"key": "a"}, {"key": "a"}]}, "db:base 1")
    with pytest.raises(SchemaError, match="duplicate class"):
        schema_from_doc(doc | {"classes": {"names": ["Yes", "yes"]}}, "db:base 1")
    with pytest.raises(SchemaError, match="db:base 1: no features"):
        schema_from_doc(doc | {"features": []}, "db:base 1")
