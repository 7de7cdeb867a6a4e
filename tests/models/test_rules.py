"""Rule labellers (`detak.models.rules`): the s3 resolution policy at every boundary of S3's
Table 3, the clinical limits, reasons in both languages, missing values, rule-file errors.

Expected labels below are written from the policy (P1–P9 in s3.toml, sources in clinical.toml),
not from the implementation's output.
"""

import json
import math
import re
import shutil

import pytest

from detak.models.rules import (
    RULESET_DIR,
    InvalidValueError,
    NoMeasurementsError,
    RuleSetError,
    load_ruleset,
)

N, A, B, S = "Normal", "Abnormal", "Berpotensi Aritmia", "Sangat Berpotensi Aritmia"
S3_LABELS = {N, A, B, S}

# (input key, threshold, label just below, label on, label just above): every number printed
# in S3's Table 3, plus the tolerance ends of R/S "= 1".
S3_BOUNDARIES = [
    ("rr_ms", 600, A, N, N),       # < 600 Abnormal | 600–1000 Normal (P5)
    ("rr_ms", 1000, N, N, A),      # > 1000 in no column → Abnormal (P6)
    ("pr_ms", 120, A, N, N),
    ("pr_ms", 190, N, B, B),       # 190–200 nested in Normal 120–200 wins (P4)
    ("pr_ms", 200, B, B, S),
    ("qrs_ms", 60, A, N, N),
    ("qrs_ms", 100, N, N, B),      # 100 < x < 101 goes up (P1)
    ("qrs_ms", 101, B, B, B),
    ("qrs_ms", 120, B, B, S),
    ("qt_ms", 350, A, N, N),
    ("qt_ms", 440, N, N, B),       # 440–441 goes up (P1)
    ("qt_ms", 441, B, B, B),
    ("qt_ms", 460, B, B, S),
    ("st_ms", 80, A, N, N),
    ("st_ms", 120, N, N, B),       # shared end point 120 → Normal (P2)
    ("st_ms", 130, B, B, S),
    ("hr_bpm", 60, A, N, N),
    ("hr_bpm", 100, N, N, B),
    ("hr_bpm", 101, B, B, B),
    ("hr_bpm", 110, B, B, S),      # 110 < x ≤ 111 → Sangat (P3)
    ("hr_bpm", 111, S, S, S),
    ("rs_ratio", 0.95, N, S, S),   # |R/S − 1| ≤ 0.05 is "= 1" (P7)
    ("rs_ratio", 1.0, S, S, S),
    ("rs_ratio", 1.05, S, S, A),   # > 1 is Abnormal and Berpotensi → Abnormal (P5)
]


def _cases(boundaries):
    for key, t, below, on, above in boundaries:
        epsilons = (0.001,) if key == "rs_ratio" else (0.01, 0.5)
        for eps in epsilons:
            yield pytest.param(key, t - eps, below, id=f"{key}-{t}-minus{eps}")
            yield pytest.param(key, t + eps, above, id=f"{key}-{t}-plus{eps}")
        yield pytest.param(key, t, on, id=f"{key}-{t}-on")


@pytest.fixture(scope="module")
def s3():
    return load_ruleset("s3")


@pytest.fixture(scope="module")
def clinical():
    return load_ruleset("clinical")


@pytest.mark.parametrize(("key", "value", "expected"), list(_cases(S3_BOUNDARIES)))
def test_s3_policy_at_every_boundary_of_table_3(s3, key, value, expected):
    r = s3.label({key: value})
    assert r.label == expected
    evaluated = r.reasons + r.within_limits
    assert [e.parameter for e in evaluated] == [key]
    assert evaluated[0].category == expected
    assert evaluated[0].range.contains(value)
    assert (evaluated[0] in r.reasons) == (expected != N)


@pytest.mark.parametrize(("values", "expected"), [
    ({"rr_ms": 800}, N),               # RR in three columns → Normal (P5)
    ({"rr_ms": 1500}, A),              # RR > 1000: in no column → Abnormal (P6)
    ({"pr_ms": 195}, B),               # Normal and Berpotensi overlap → Berpotensi (P4)
    ({"hr_bpm": 100.5}, B),            # between the integer columns 100 and 101
    ({"hr_bpm": 110.5}, S),            # between 110 and "> 111"
    ({"hr_bpm": 111}, S),              # BPM 111 printed in no column
    ({"qt_ms": 440.5}, B),             # QT 440–441 gap
    ({"st_ms": 120}, N),               # ST 120 printed in Normal and Berpotensi
    ({"rs_ratio": 3.0}, A),            # R/S > 1: Abnormal and Berpotensi → Abnormal (P5)
    ({"rs_ratio": 0.2}, N),
])
def test_s3_overlaps_and_gaps(s3, values, expected):
    assert s3.label(values).label == expected


@pytest.mark.parametrize(("rs", "expected"), [
    (0.90, N), (0.949, N), (0.951, S), (0.99, S), (1.0, S), (1.01, S), (1.049, S), (1.051, A),
])
def test_rs_equal_one_means_within_005(s3, rs, expected):
    r = s3.label({"rs_ratio": rs})
    assert r.label == expected
    if expected == S:
        assert abs(rs - 1) <= 0.05
        assert r.reasons[0].finding == "rs_equal_1"


def test_record_label_is_the_most_severe_in_the_documented_order(s3):
    assert s3.label_names == [N, A, B, S]
    normal = {"rr_ms": 800, "pr_ms": 150, "qrs_ms": 90, "qt_ms": 400, "st_ms": 100,
              "rs_ratio": 0.5, "hr_bpm": 75}
    r = s3.label(normal)
    assert r.label == N and r.reasons == [] and len(r.within_limits) == 7 and r.complete
    # Abnormal alone → Abnormal; Abnormal + Berpotensi → Berpotensi; + Sangat → Sangat
    assert s3.label({**normal, "pr_ms": 100}).label == A
    r = s3.label({**normal, "pr_ms": 100, "qt_ms": 450})
    assert r.label == B
    assert [(x.parameter, x.category) for x in r.reasons] == [("qt_ms", B), ("pr_ms", A)]
    r = s3.label({**normal, "pr_ms": 100, "qt_ms": 450, "st_ms": 140})
    assert r.label == S
    assert [x.category for x in r.reasons] == [S, B, A]  # most severe first, none dropped


def test_s3_label_is_always_one_of_the_four_strings(s3):
    grid = {"rr_ms": [300, 600, 800, 1000, 1400], "pr_ms": [80, 120, 195, 200, 260],
            "qrs_ms": [50, 60, 100, 110, 150], "qt_ms": [300, 440, 450, 500],
            "st_ms": [60, 120, 125, 140], "hr_bpm": [40, 60, 100.5, 111, 150],
            "rs_ratio": [0.1, 1.0, 2.0]}
    seen = set()
    for key, vals in grid.items():
        for v in vals:
            seen.add(s3.label({key: v, "hr_bpm": 75} if key != "hr_bpm" else {key: v}).label)
    assert seen == S3_LABELS


def test_missing_values_are_listed_never_normal(s3):
    r = s3.label({"pr_ms": 150, "hr_bpm": float("nan"), "qrs_ms": None, "extra": "ignored"})
    assert r.label == N
    # in the order of the rule file (RR, PR, QRS, QT, ST, HR, R/S)
    assert r.missing == ["rr_ms", "qrs_ms", "qt_ms", "st_ms", "hr_bpm", "rs_ratio"]
    assert not r.complete
    assert [x.parameter for x in r.within_limits] == ["pr_ms"]
    assert "Not measured: RR, QRS, QT, ST, HR, R/S" in r.summary["en"]
    assert "Tidak terukur: RR, QRS, QT, ST, HR, R/S" in r.summary["id"]
    d = r.to_dict()
    assert d["missing"] == r.missing and d["complete"] is False


def test_all_missing_refuses_to_label(s3, clinical):
    for rs in (s3, clinical):
        with pytest.raises(NoMeasurementsError) as exc:
            rs.label({k: None for k in rs.keys})
        assert exc.value.missing == rs.keys
        assert rs.name in str(exc.value)
    with pytest.raises(NoMeasurementsError):
        s3.label({})


@pytest.mark.parametrize(("values", "param"), [
    ({"pr_ms": -5}, "pr_ms"),
    ({"qt_ms": float("inf")}, "qt_ms"),
    ({"hr_bpm": "72"}, "hr_bpm"),
    ({"st_ms": True}, "st_ms"),
])
def test_unusable_values_are_named(s3, values, param):
    with pytest.raises(InvalidValueError) as exc:
        s3.label(values)
    assert exc.value.parameter == param
    assert str(exc.value).startswith(param)


def test_unknown_sex_spelling_is_an_error(clinical):
    with pytest.raises(InvalidValueError, match="sex"):
        clinical.label({"qtc_bazett_ms": 455}, sex="X")


def test_to_dict_is_json_and_carries_the_reason_fields(s3):
    d = s3.label({"pr_ms": 252, "hr_bpm": 83}).to_dict()
    back = json.loads(json.dumps(d, allow_nan=False))
    assert back["label"] == S
    (reason,) = back["reasons"]
    assert reason["parameter"] == "pr_ms" and reason["value"] == 252
    assert reason["category"] == S and reason["finding"] == "pr_long"
    assert reason["range"] == {"lower": 200.0, "upper": None, "lower_inclusive": False,
                               "upper_inclusive": False, "text": "(200, inf)"}
    assert "PR > 200 ms" in reason["message"]["en"] and "252" in reason["message"]["en"]
    assert "PR > 200 ms" in reason["message"]["id"]
    assert [w["parameter"] for w in back["within_limits"]] == ["hr_bpm"]


def test_indonesian_numbers_use_a_decimal_comma(s3):
    r = s3.label({"hr_bpm": 100.5})
    assert "100.5 bpm" in r.reasons[0].message["en"]
    assert "100,5 bpm" in r.reasons[0].message["id"]


def _inside(rng):
    lo, hi = rng.lower, rng.upper
    if math.isinf(lo):
        return hi - 1 if hi > 1 else hi / 2
    if math.isinf(hi):
        return lo + 1
    return (lo + hi) / 2


@pytest.mark.parametrize("name", ["s3", "clinical"])
def test_every_band_gives_a_reason_in_english_and_bahasa_indonesia(name):
    rs = load_ruleset(name)
    n = 0
    for p in rs.parameters:
        for band in p.bands:
            for sex in ("M", "F"):
                x = _inside(band.range_for(sex))
                if x < 0:
                    continue
                r = rs.label({p.key: x}, sex=sex)
                (reason,) = r.reasons + r.within_limits
                if reason.finding != band.finding:
                    continue  # the other sex's band holds this value
                n += 1
                en, id_ = reason.message["en"], reason.message["id"]
                assert en and id_
                assert band.en in en and band.id in id_
                label = next(lb for lb in rs.labels if lb.name == band.label)
                assert en.endswith(label.en) and id_.endswith(label.id)
                assert r.summary["id"] and r.summary["en"] != r.summary["id"]
    assert n >= sum(len(p.bands) for p in rs.parameters)


# ------------------------------------------------------------------------------ clinical

CLINICAL_BOUNDARIES = [
    # key, threshold, (label, finding) below / on / above
    ("hr_bpm", 50, ("abnormal", "bradycardia"), ("normal", "hr_normal"),
     ("normal", "hr_normal")),
    ("hr_bpm", 100, ("normal", "hr_normal"), ("normal", "hr_normal"),
     ("abnormal", "tachycardia")),
    ("pr_ms", 120, ("borderline", "short_pr"), ("normal", "pr_normal"),
     ("normal", "pr_normal")),
    ("pr_ms", 200, ("normal", "pr_normal"), ("normal", "pr_normal"),
     ("abnormal", "first_degree_av_block")),
    ("qrs_ms", 110, ("normal", "qrs_normal"), ("borderline", "incomplete_conduction_delay"),
     ("borderline", "incomplete_conduction_delay")),
    ("qrs_ms", 120, ("borderline", "incomplete_conduction_delay"), ("abnormal", "wide_qrs"),
     ("abnormal", "wide_qrs")),
    ("qtc_bazett_ms", 340, ("abnormal", "short_qtc"), ("abnormal", "short_qtc"),
     ("normal", "qtc_normal")),
    ("qtc_bazett_ms", 500, ("abnormal", "prolonged_qtc"), ("high risk", "high_risk_qtc"),
     ("high risk", "high_risk_qtc")),
]


def _clinical_cases():
    for key, t, below, on, above in CLINICAL_BOUNDARIES:
        for eps in (0.01, 0.5):
            yield pytest.param(key, t - eps, None, below, id=f"{key}-{t}-minus{eps}")
            yield pytest.param(key, t + eps, None, above, id=f"{key}-{t}-plus{eps}")
        yield pytest.param(key, t, None, on, id=f"{key}-{t}-on")
    # sex-specific QTc prolongation: men >= 450, women >= 460 (Rautaharju 2009)
    for sex, t in (("M", 450), ("F", 460)):
        norm, prol = ("normal", "qtc_normal"), ("abnormal", "prolonged_qtc")
        for eps in (0.01, 0.5):
            yield pytest.param("qtc_bazett_ms", t - eps, sex, norm, id=f"qtc-{sex}-{t}-m{eps}")
            yield pytest.param("qtc_bazett_ms", t + eps, sex, prol, id=f"qtc-{sex}-{t}-p{eps}")
        yield pytest.param("qtc_bazett_ms", t, sex, prol, id=f"qtc-{sex}-{t}-on")


@pytest.mark.parametrize(("key", "value", "sex", "expected"), list(_clinical_cases()))
def test_clinical_thresholds_at_their_boundaries(clinical, key, value, sex, expected):
    r = clinical.label({key: value}, sex=sex)
    (reason,) = r.reasons + r.within_limits
    assert (r.label, reason.finding) == expected


def test_qtc_sex_from_record_and_unknown_sex_uses_mens_limit(clinical):
    assert clinical.label({"qtc_bazett_ms": 455, "sex": "F"}).label == "normal"
    assert clinical.label({"qtc_bazett_ms": 455, "sex": "M"}).label == "abnormal"
    r = clinical.label({"qtc_bazett_ms": 455})
    assert r.label == "abnormal" and r.sex is None
    reason = r.reasons[0]
    assert reason.sex == "M" and reason.sex_assumed
    assert "sex unknown" in reason.message["en"]
    assert "jenis kelamin tidak diketahui" in reason.message["id"]
    d = r.to_dict()["reasons"][0]
    assert d["limits_for_sex"] == "M" and d["sex_assumed"] is True
    known = clinical.label({"qtc_bazett_ms": 455}, sex="male").reasons[0]
    assert known.sex == "M" and not known.sex_assumed and "unknown" not in known.message["en"]


def test_clinical_uses_bazett_unless_the_file_says_fridericia(clinical, tmp_path):
    vals = {"qtc_bazett_ms": 470, "qtc_fridericia_ms": 430}
    assert clinical.label(vals, sex="M").label == "abnormal"
    text = (RULESET_DIR / "clinical.toml").read_text()
    assert text.count('key = "qtc_bazett_ms"') == 1
    p = tmp_path / "fridericia.toml"
    p.write_text(text.replace('key = "qtc_bazett_ms"', 'key = "qtc_fridericia_ms"'))
    fr = load_ruleset(p)
    assert fr.label(vals, sex="M").label == "normal"
    assert fr.label(vals, sex="M").within_limits[0].parameter == "qtc_fridericia_ms"


def test_clinical_overall_label_order(clinical):
    assert clinical.label_names == ["normal", "borderline", "abnormal", "high risk"]
    r = clinical.label({"pr_ms": 100, "qrs_ms": 125, "qtc_bazett_ms": 520, "hr_bpm": 70},
                       sex="F")
    assert r.label == "high risk"
    assert [x.finding for x in r.reasons] == ["high_risk_qtc", "wide_qrs", "short_pr"]


# ------------------------------------------------------------------------------ rule files


def test_a_user_edited_rule_file_changes_the_labels(s3, tmp_path):
    text = (RULESET_DIR / "s3.toml").read_text()
    edited = text.replace('range = "[190, 200]"', 'range = "[190, 220]"').replace(
        'range = "(200, inf)"', 'range = "(220, inf)"')
    assert edited != text
    p = tmp_path / "my_s3.toml"
    p.write_text(edited)
    mine = load_ruleset(str(p))
    assert s3.label({"pr_ms": 210}).label == S
    assert mine.label({"pr_ms": 210}).label == B
    assert mine.label({"pr_ms": 221}).label == S
    assert mine.path == str(p)


S3_TEXT = (RULESET_DIR / "s3.toml").read_text()
CLINICAL_TEXT = (RULESET_DIR / "clinical.toml").read_text()


@pytest.mark.parametrize(("base", "old", "new", "key", "words"), [
    ("s3", 'range = "[120, 190)"', 'range = "[120, 189)"', "parameters.pr.bands",
     "gap"),
    ("s3", 'range = "[120, 190)"', 'range = "[120, 191)"', "parameters.pr.bands",
     "overlap"),
    ("s3", 'range = "[120, 190)"', 'range = "[120, 190]"', "parameters.pr.bands",
     "overlap"),
    ("s3", 'range = "(-inf, 600)"', 'range = "(0, 600)"', "parameters.rr.bands",
     "uncovered"),
    ("s3", 'range = "(1000, inf)"', 'range = "(1000, 5000)"', "parameters.rr.bands",
     "uncovered"),
    ("s3", 'range = "[120, 190)"', 'range = "120-190"', "parameters.pr.bands[1].range",
     "not a range"),
    ("s3", 'range = "[120, 190)"', 'range = "[190, 120)"', "parameters.pr.bands[1].range",
     "empty"),
    ("s3", 'label = "Berpotensi Aritmia"\nfinding = "pr_upper_normal"',
     'label = "Berpotensi"\nfinding = "pr_upper_normal"', "parameters.pr.bands[2].label",
     "unknown label"),
    ("s3", 'en = "short PR"\nid = "PR pendek"\n', 'en = "short PR"\n',
     "parameters.pr.bands[0].id", "required"),
    ("s3", 'key = "pr_ms"', 'key = "pr"', "parameters.pr.key", "not an interval key"),
    ("s3", 'key = "pr_ms"', 'key = "pr_ms"\nunits = "ms"', "parameters.pr", "unknown key"),
    ("s3", "schema = 1", "schema = 2", "schema", "not supported"),
    ("s3", 'key = "st_ms"', 'key = "pr_ms"', "parameters.st.key", "already read"),
    ("clinical", 'sex_unknown = "M"\n', "", "sex_unknown", "per-sex"),
    ("clinical", 'range = { M = "[450, 500)", F = "[460, 500)" }',
     'range = { M = "[450, 500)", F = "[470, 500)" }', "parameters.qtc.bands", "(sex F)"),
])
def test_malformed_rule_files_name_file_and_key(tmp_path, base, old, new, key, words):
    text = S3_TEXT if base == "s3" else CLINICAL_TEXT
    assert old in text
    p = tmp_path / "bad.toml"
    p.write_text(text.replace(old, new, 1))
    with pytest.raises(RuleSetError) as exc:
        load_ruleset(p)
    assert exc.value.source == str(p)
    assert exc.value.key == key
    assert str(p) in str(exc.value) and key in str(exc.value)
    assert words in str(exc.value)


def test_toml_syntax_error_names_the_file_and_line(tmp_path):
    p = tmp_path / "broken.toml"
    p.write_text(S3_TEXT.replace('name = "s3"', 'name = "s3'))
    with pytest.raises(RuleSetError) as exc:
        load_ruleset(p)
    assert exc.value.source == str(p)
    assert re.search(r"line \d+", str(exc.value))


def test_missing_rule_file_and_unknown_name(tmp_path):
    with pytest.raises(RuleSetError, match="not found"):
        load_ruleset(tmp_path / "none.toml")
    with pytest.raises(RuleSetError, match="clinical, s3"):
        load_ruleset("s4")


def test_shipped_files_cite_their_sources_and_state_the_policy():
    for tag in ("P1", "P2", "P3", "P4", "P5", "P6", "P7", "P8", "P9"):
        assert f"#  {tag} " in S3_TEXT
    for cite in ("Rautaharju", "Surawicz", "Kusumoto", "Mason", "Drew", "Priori"):
        assert cite in CLINICAL_TEXT


def test_rule_files_copy_elsewhere_and_load(tmp_path):
    for name in ("s3", "clinical"):
        dst = tmp_path / f"{name}.toml"
        shutil.copy(RULESET_DIR / f"{name}.toml", dst)
        assert load_ruleset(dst).label_names == load_ruleset(name).label_names
