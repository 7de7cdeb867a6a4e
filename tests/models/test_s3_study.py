"""detak.models.s3_study: elderly subset, rule labels, NB pipeline, agreement with SCP statements.

The real-data tests use the first `SMALL` records of PTB-XL fold 9 (measured once, cached under
their own key in ``cache_dir()``; ~15 s on two cores when the cache is cold).
"""

import json
import math

import numpy as np
import pandas as pd
import pytest

from detak.models.s3_study import (
    FEATURES,
    S3_LABELS,
    StudyError,
    agreement_table,
    arrhythmia_codes,
    elderly_subset,
    label_records,
    main,
    nb_pipeline,
    rr_irregularity_table,
    run_study,
    sens_spec,
    wilson,
)

SMALL = 150


def small_table() -> pd.DataFrame:
    """Real interval rows: the first SMALL records of fold 9 (cached)."""
    from detak.signal.interval_table import ptbxl_interval_table

    return ptbxl_interval_table(folds=[9], limit=SMALL, progress=False)


@pytest.fixture(scope="module")
def table():
    return small_table()


# ------------------------------------------------------------------- bad inputs first


def test_missing_columns_are_named():
    with pytest.raises(StudyError, match="quality"):
        elderly_subset(pd.DataFrame({"age": [70]}))
    with pytest.raises(StudyError, match="scp_codes"):
        run_study(pd.DataFrame({"age": [70], "quality": ["ok"], "sex": ["M"],
                                **{k: [1.0] for k in FEATURES}}), rr=False)


def test_nb_refuses_a_class_with_one_row():
    lab = pd.DataFrame({k: np.arange(5.0) for k in FEATURES})
    lab["s3_label"] = ["Normal", "Normal", "Abnormal", "Abnormal", "Berpotensi Aritmia"]
    with pytest.raises(StudyError, match="'Berpotensi Aritmia' \\(1\\)"):
        nb_pipeline(lab)


def test_sens_spec_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="3 predictions but 2 reference"):
        sens_spec([True, False, True], [True, False])


# ------------------------------------------------------------------- statistics


def test_wilson_matches_newcombe_1998():
    # Newcombe, Stat Med 17:857 (1998), Table I, method 3 (Wilson score without correction)
    for k, n, lo, hi in ((81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605),
                         (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718)):
        p, a, b = wilson(k, n)
        assert p == pytest.approx(k / n)
        assert (a, b) == pytest.approx((lo, hi), abs=1e-4), (k, n)
    assert all(math.isnan(v) for v in wilson(0, 0))


def test_sens_spec_counts_a_hand_made_table():
    # 3 TP, 2 FN, 1 FP, 4 TN
    pred = [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]
    ref = [1, 1, 1, 1, 1, 0, 0, 0, 0, 0]
    r = sens_spec(np.array(pred, bool), np.array(ref, bool))
    assert (r["tp"], r["fn"], r["fp"], r["tn"], r["n"]) == (3, 2, 1, 4, 10)
    assert r["sensitivity"] == pytest.approx(0.6) and r["specificity"] == pytest.approx(0.8)
    assert r["ppv"] == pytest.approx(0.75)
    assert r["sensitivity_ci"][0] < 0.6 < r["sensitivity_ci"][1]


# ------------------------------------------------------------------- subset and labels


def test_elderly_filter_keeps_300_drops_59_and_rejected():
    t = pd.DataFrame({"age": pd.array([59, 60, 300, None, 75, 88], dtype="Int64"),
                      "quality": ["ok", "warn", "ok", "ok", "reject", "ok"]},
                     index=pd.Index([1, 2, 3, 4, 5, 6], name="ecg_id"))
    sub, counts = elderly_subset(t)
    assert list(sub.index) == [2, 3, 6]
    assert counts == {"records": 6, "elderly": 4, "age_coded_over_89": 1, "rejected": 1,
                      "kept": 3}


def _hand_table() -> pd.DataFrame:
    nan = float("nan")
    rows = [  # pr, qrs, hr, qtc, sex, codes
        (250, 90, 70, 420, "M", {"1AVB": 100.0, "SR": 0.0}),   # TP for PR
        (250, 90, 70, 420, "M", {"SR": 0.0}),                  # FP for PR
        (150, 90, 70, 420, "F", {"1AVB": 50.0}),               # FN for PR
        (150, 90, 70, 420, "F", {"NORM": 100.0, "SR": 0.0}),   # TN for PR; nothing fires
        (nan, 130, 70, 455, "M", {"1AVB": 0.0, "CLBBB": 100.0}),  # PR missing; wide QRS TP
        (160, 130, 70, 455, "F", {"LNGQT": 0.0}),  # TN for PR; wide QRS FP; QTc normal (F)
    ]
    df = pd.DataFrame(rows, columns=["pr_ms", "qrs_ms", "hr_bpm", "qtc_bazett_ms", "sex",
                                     "scp_codes"])
    for k in FEATURES:
        if k not in df:
            df[k] = nan
    return df


def test_agreement_table_against_a_hand_made_table():
    lab = label_records(_hand_table())
    assert lab.loc[3, "s3_label"] == "Normal" and lab.loc[3, "clinical_label"] == "normal"
    rows = {r["test"]: r for r in agreement_table(lab, ["1AVB", "CLBBB"])}
    pr = rows["PR > 200 ms (s3 PR 'Sangat')"]
    assert (pr["tp"], pr["fp"], pr["fn"], pr["tn"], pr["n"]) == (1, 1, 1, 2, 5)
    assert (pr["not_measured"], pr["not_measured_with_reference"]) == (1, 1)
    assert pr["sensitivity"] == 0.5 and pr["specificity"] == pytest.approx(2 / 3)
    wide = rows["QRS >= 120 ms (clinical wide_qrs)"]
    assert (wide["tp"], wide["fp"], wide["fn"], wide["tn"]) == (1, 1, 0, 4)
    # QTc 455: prolonged for the man (limit 450), normal for the woman (limit 460)
    qtc = rows["QTc >= 450 M / 460 F ms (clinical prolonged_qtc or high_risk_qtc)"]
    assert (qtc["tp"], qtc["fp"], qtc["fn"], qtc["tn"]) == (0, 1, 1, 4)
    # record labels vs "any arrhythmia" = {1AVB, CLBBB}: rows 0, 2, 4 carry one
    s3 = rows["s3 record label in {Berpotensi Aritmia, Sangat Berpotensi Aritmia}"]
    assert s3["tp"] + s3["fn"] == 3 and s3["n"] == 6


def test_arrhythmia_codes_come_from_the_statements_file():
    codes = set(arrhythmia_codes())
    assert {"AFIB", "STACH", "SBRAD", "1AVB", "CLBBB", "IRBBB", "PVC", "PAC"} <= codes
    assert not codes & {"SR", "NORM", "IMI", "LVH", "LNGQT"}


# ------------------------------------------------------------------- real data


def test_rr_irregularity_separates_afib_from_sinus_rhythm(table):
    irr = rr_irregularity_table(table.index)
    codes = table["scp_codes"]
    afib = irr[[("AFIB" in d) for d in codes]]
    sinus = irr[[("SR" in d and len(set(d) & {"PVC", "PAC", "SARRH", "BIGU"}) == 0)
                 for d in codes]]
    assert len(afib) >= 5 and len(sinus) >= 50
    assert afib.median() > 0.1 > 0.05 > sinus.median()


def test_study_runs_on_real_rows_and_writes_its_files(table, tmp_path, capsys):
    res = run_study(table, tmp_path, rr=True)
    c = res["meta"]["counts"]
    age = pd.to_numeric(table["age"], errors="coerce")
    assert c["elderly"] == int((age >= 60).sum()) and c["labelled"] <= c["kept"]
    for name in ("s3_ptbxl.md", "s3_ptbxl.json", "s3_confusion.png", "s3_roc.png"):
        assert (tmp_path / name).stat().st_size > 500, name
    doc = json.loads((tmp_path / "s3_ptbxl.json").read_text())
    nb = doc["nb"]
    assert set(nb["classes"]) <= set(S3_LABELS)
    assert nb["n_test"] == pytest.approx(0.3 * nb["n"], abs=1)
    assert np.sum(nb["confusion"]) == nb["n_test"]
    assert 0 <= nb["accuracy"] <= 1 and len(nb["roc"]) >= 2
    assert sum(doc["labels"]["s3"].values()) == c["labelled"]
    tests = [r["test"] for r in doc["agreement"]]
    assert any(t.startswith("RR irregularity") for t in tests)
    md = (tmp_path / "s3_ptbxl.md").read_text()
    assert "Circularity" in md and "S3 reported" in md and "Wilson" in md
    # each markdown table row has as many cells as its header
    for line in md.splitlines():
        if line.startswith("| PR > 200"):
            assert line.count("|") == 13, line
    # the CLI entry point prints the same report
    assert main(["--folds", "9", "--limit", str(SMALL), "--no-rr"]) == 0
    assert "Gaussian NB" in capsys.readouterr().out
