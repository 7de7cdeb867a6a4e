"""detak.models.cases: schema files, case CSVs (bad ones named by row and column), S4's model
comparison. S4's 240 records are not public: these tests use synthetic cases written to
tmp_path, so they test the plumbing, not S4's accuracy."""

import numpy as np
import pandas as pd
import pytest

from detak.models.cases import (
    EmptyCasesError,
    MissingColumnError,
    NonNumericValueError,
    SchemaError,
    UnknownClassError,
    compare_models,
    load_schema,
    read_cases,
)

S4_FIELDS = ["AORTA", "ATRIUM K", "EF", "EDD", "ESD", "IVS D", "IVS S", "PW D", "PW S", "HR",
             "PR", "QRS", "QT", "QTc", "P"]
S4_CLASSES = ["atrial septal defect", "coronary artery disease", "diastolic dysfunction",
              "hypertensive heart disease", "mitral stenosis",
              "normal resting echocardiography", "pulmonary hypertension",
              "rheumatic heart disease"]


def synthetic_s4(path, per_class=20, seed=7):
    """Plausible values per class: a normal echo/ECG profile with a class-specific shift."""
    rng = np.random.default_rng(seed)
    normal = dict(zip(S4_FIELDS, [30, 35, 62, 48, 30, 9, 13, 9, 14, 75, 160, 90, 380, 410, 100],
                      strict=True))
    shifts = {"atrial septal defect": {"ATRIUM K": 8, "EDD": -5},
              "coronary artery disease": {"EF": -20, "ESD": 10, "QRS": 15},
              "diastolic dysfunction": {"IVS D": 3, "PW D": 3, "HR": 10},
              "hypertensive heart disease": {"IVS D": 5, "PW D": 5, "IVS S": 5, "PW S": 5},
              "mitral stenosis": {"ATRIUM K": 18, "P": 30},
              "normal resting echocardiography": {},
              "pulmonary hypertension": {"HR": 25, "AORTA": 5, "EDD": -8},
              "rheumatic heart disease": {"ATRIUM K": 12, "PR": 50, "EF": -8}}
    rows = []
    for cls in S4_CLASSES:
        for _ in range(per_class):
            r = {f: round(float(normal[f] + shifts[cls].get(f, 0)
                                + rng.normal(0, 0.06 * normal[f])), 1) for f in S4_FIELDS}
            r["diagnosis"] = cls
            rows.append(r)
    df = pd.DataFrame(rows).sample(frac=1, random_state=seed)
    df.to_csv(path, index=False)
    return df


def _write(path, text):
    path.write_text(text)
    return path


def test_s4_schema_ships_the_15_measurements_and_8_classes():
    s = load_schema("s4_echo")
    assert [f.column for f in s.features] == S4_FIELDS
    assert list(s.classes) == S4_CLASSES
    assert all(f.unit for f in s.features)
    assert {f.unit for f in s.features if f.column in ("PR", "QRS", "QT", "QTc", "P")} == {"ms"}
    assert load_schema("ecg_intervals").keys == ("rr_ms", "pr_ms", "qrs_ms", "qt_ms",
                                                 "qtc_bazett_ms", "st_ms", "rs_ratio", "hr_bpm")


def test_bad_schema_files_are_named(tmp_path):
    with pytest.raises(SchemaError, match="'nope'"):
        load_schema("nope")
    p = _write(tmp_path / "s.toml", 'name = "x"\ntarget = "y"\n[classes]\nnames = ["a"]\n')
    with pytest.raises(SchemaError, match="'features' missing"):
        load_schema(p)
    p = _write(tmp_path / "d.toml", 'name = "x"\ntarget = "y"\n[[features]]\nkey = "a"\n'
               '[[features]]\nkey = "a"\n[classes]\nnames = ["a"]\n')
    with pytest.raises(SchemaError, match="duplicate feature key"):
        load_schema(p)


def test_read_cases_reads_a_good_file(tmp_path):
    df = synthetic_s4(tmp_path / "cases.csv", per_class=3)
    cases = read_cases(tmp_path / "cases.csv", "s4_echo")
    assert len(cases) == 24 and list(cases.index[:2]) == [1, 2]
    assert cases["ef_pct"].tolist() == df["EF"].tolist()
    assert set(cases["diagnosis"]) == set(S4_CLASSES)
    assert len(cases.attrs["sha256"]) == 64


def test_keys_case_and_empty_cells_are_accepted(tmp_path):
    s = load_schema("ecg_intervals")
    p = _write(tmp_path / "iv.csv", ",".join(k.upper() for k in s.keys) + ",Label\n"
               "800,,90,380,425,100,0.5,75,  normal \n"
               "600,210,100,360,465,90,1.2,100,Berpotensi aritmia\n")
    cases = read_cases(p, s)
    assert np.isnan(cases.loc[1, "pr_ms"]) and cases.loc[2, "pr_ms"] == 210
    assert cases["label"].tolist() == ["Normal", "Berpotensi Aritmia"]


def test_missing_column_is_named(tmp_path):
    df = synthetic_s4(tmp_path / "c.csv", per_class=2).drop(columns=["EF"])
    df.to_csv(tmp_path / "c.csv", index=False)
    with pytest.raises(MissingColumnError, match=r"'EF' missing") as exc:
        read_cases(tmp_path / "c.csv", "s4_echo")
    assert str(tmp_path / "c.csv") in str(exc.value)


def test_unknown_class_names_row_and_column(tmp_path):
    df = synthetic_s4(tmp_path / "c.csv", per_class=2)
    df.iloc[4, df.columns.get_loc("diagnosis")] = "heart attack"
    df.iloc[6, df.columns.get_loc("diagnosis")] = ""
    df.to_csv(tmp_path / "c.csv", index=False)
    with pytest.raises(UnknownClassError, match=r"row 5 \(line 6\), column 'diagnosis': "
                                                "'heart attack'") as exc:
        read_cases(tmp_path / "c.csv", "s4_echo")
    assert [(r, c) for r, c, _ in exc.value.problems] == [(5, "diagnosis"), (7, "diagnosis")]


def test_text_in_a_numeric_field_names_row_and_column(tmp_path):
    df = synthetic_s4(tmp_path / "c.csv", per_class=2).astype({"QTc": object, "EF": object})
    df.iloc[2, df.columns.get_loc("QTc")] = "long"
    df.iloc[9, df.columns.get_loc("EF")] = "55,5"
    df.to_csv(tmp_path / "c.csv", index=False)
    with pytest.raises(NonNumericValueError, match=r"row 3 \(line 4\), column 'QTc': 'long'"
                       ) as exc:
        read_cases(tmp_path / "c.csv", "s4_echo")
    assert "decimal point" in str(exc.value)
    assert [(r, c) for r, c, _ in exc.value.problems] == [(3, "QTc"), (10, "EF")]


def test_empty_files(tmp_path):
    with pytest.raises(EmptyCasesError, match="empty file"):
        read_cases(_write(tmp_path / "e.csv", ""), "s4_echo")
    header = ",".join(f'"{c}"' if " " in c else c for c in S4_FIELDS) + ",diagnosis\n"
    with pytest.raises(EmptyCasesError, match="no data rows"):
        read_cases(_write(tmp_path / "h.csv", header), "s4_echo")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_cases(tmp_path / "none.csv", "s4_echo")


def test_compare_models_runs_s4s_table_on_synthetic_cases(tmp_path):
    synthetic_s4(tmp_path / "c.csv", per_class=20)
    cases = read_cases(tmp_path / "c.csv", "s4_echo")
    table = compare_models(cases, "s4_echo", k=5, cv=5)
    assert table["model"].tolist() == ["knn", "nb", "dt"]
    # the synthetic classes are separable, so every model beats chance (1/8) by far
    assert (table["cv_accuracy_mean"] > 0.5).all()
    assert table[["holdout_accuracy", "cv_accuracy_mean"]].le(1).all().all()
    assert (table["cv_accuracy_sd"] >= 0).all()
