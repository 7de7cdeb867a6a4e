"""Probability calibration (detak.models.prob_calibration): the fits on synthetic data with a
known answer, the equal-mass ECE on a case worked by hand, the card block's round trip, and bad
card values rejected with a message naming the class and the value."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from detak.models.model_card import read_card, write_card
from detak.models.prob_calibration import (
    Calibration,
    CalibrationError,
    ClassCalibration,
    cross_fit,
    ece,
    ece_floor,
    fit_class,
    fit_isotonic,
    fit_temperature,
    isotonic_apply,
    patient_halves,
    reliability,
    sigmoid,
)

CLASSES = ("NORM", "MI", "STTC", "CD", "HYP")


@pytest.mark.parametrize("true_t", [0.6, 1.0, 2.5])
def test_temperature_fit_recovers_the_temperature_the_labels_were_drawn_with(true_t):
    rng = np.random.default_rng(int(true_t * 10))
    z = rng.normal(0.0, 3.0, 40000)
    y = (rng.random(len(z)) < sigmoid(z / true_t)).astype(int)
    assert fit_temperature(z, y) == pytest.approx(true_t, rel=0.04)


def test_temperature_fit_lowers_the_log_loss_against_its_neighbours():
    rng = np.random.default_rng(3)
    z = rng.normal(0.0, 2.0, 5000)
    y = (rng.random(len(z)) < sigmoid(z / 1.7)).astype(int)
    t = fit_temperature(z, y)

    def nll(temp: float) -> float:
        p = np.clip(sigmoid(z / temp), 1e-12, 1 - 1e-12)
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))

    assert nll(t) < nll(t * 1.05) and nll(t) < nll(t / 1.05)


def test_temperature_needs_both_labels():
    with pytest.raises(CalibrationError, match="positives and negatives"):
        fit_temperature(np.array([0.1, 0.2]), np.array([1, 1]))


def test_ece_equal_mass_bins_on_a_case_worked_by_hand():
    # 6 records, 3 bins of 2 (sorted by p): (0.1, 0.2 | y 0, 0) -> |0 - 0.15| = 0.15;
    # (0.4, 0.6 | y 1, 0) -> |0.5 - 0.5| = 0; (0.8, 0.9 | y 1, 0) -> |0.5 - 0.85| = 0.35
    p = np.array([0.9, 0.1, 0.6, 0.2, 0.8, 0.4])
    y = np.array([0, 0, 0, 0, 1, 1])
    assert ece(p, y, n_bins=3) == pytest.approx((2 * 0.15 + 2 * 0.0 + 2 * 0.35) / 6)
    rel = reliability(p, y, n_bins=3)
    assert [n for _, _, n in rel] == [2, 2, 2]
    assert [r for _, r, _ in rel] == [0.0, 0.5, 0.5]


def test_ece_bins_have_equal_mass_not_equal_width():
    # all probabilities below 0.1: equal-width bins would put everything in one bin
    p = np.linspace(0.01, 0.09, 30)
    y = np.zeros(30, int)
    y[-3:] = 1
    rel = reliability(p, y, n_bins=15)
    assert len(rel) == 15 and {n for _, _, n in rel} == {2}
    assert ece(p, y, 15) == pytest.approx(np.mean([abs(r - m) for m, r, _ in rel]))


def test_a_perfectly_calibrated_model_scores_near_its_floor_and_a_shifted_one_above():
    rng = np.random.default_rng(5)
    p = rng.beta(0.5, 2.0, 3000)
    y = (rng.random(3000) < p).astype(int)
    floor, draws = ece_floor(p, draws=100)
    assert ece(p, y) < np.quantile(draws, 0.99)
    assert ece(np.clip(p + 0.1, 0, 1), y) > np.quantile(draws, 0.99) + 0.05
    assert 0 < floor < 0.05


def test_isotonic_is_monotone_and_pools_violators():
    rng = np.random.default_rng(7)
    z = rng.normal(0, 2, 2000)
    y = (rng.random(2000) < sigmoid(z)).astype(int)
    x, v = fit_isotonic(z, y)
    assert (np.diff(x) > 0).all() and (np.diff(v) >= 0).all()
    grid = np.linspace(-8, 8, 500)
    assert (np.diff(isotonic_apply(grid, x, v)) >= 0).all()
    # a hand case: 1, 0 violate and are pooled to 0.5 at the mean logit
    x2, v2 = fit_isotonic(np.array([0.0, 1.0, 2.0, 3.0]), np.array([0, 1, 0, 1]))
    assert x2.tolist() == [0.0, 1.5, 3.0] and v2.tolist() == [0.0, 0.5, 1.0]


def test_isotonic_fit_is_the_least_squares_monotone_fit():
    """The pooled fit beats (or equals) any other non-decreasing step on its own points."""
    rng = np.random.default_rng(11)
    z = np.sort(rng.normal(0, 1, 60))
    y = (rng.random(60) < sigmoid(2 * z)).astype(int)
    x, v = fit_isotonic(z, y)
    fitted = isotonic_apply(z, x, v)
    sse = float(np.sum((fitted - y) ** 2))
    for _ in range(200):                          # random monotone competitors
        other = np.sort(rng.random(60))
        assert sse <= float(np.sum((other - y) ** 2)) + 1e-9


def _calibration() -> Calibration:
    per = {c: ClassCalibration("temperature", temperature=1.0 + 0.1 * i)
           for i, c in enumerate(CLASSES)}
    per["MI"] = ClassCalibration("isotonic", knots_x=(-2.0, 0.0, 3.0), knots_p=(0.01, 0.3, 0.9))
    return Calibration(per, CLASSES, "temperature / isotonic (MI), PTB-XL fold 9",
                       {"fitted_on": "toy"})


def test_the_card_block_round_trips_through_a_json_file(tmp_path):
    cal = _calibration()
    path = write_card({"name": "m", "calibration": cal.to_card()}, tmp_path / "card.json")
    back = Calibration.from_card(read_card(path)["calibration"], CLASSES)
    z = np.random.default_rng(0).normal(0, 3, (50, 5))
    np.testing.assert_allclose(back.probabilities(z), cal.probabilities(z), atol=1e-6)
    assert back.label == cal.label and back.info["fitted_on"] == "toy"
    assert json.loads(path.read_text())["calibration"]["classes"]["MI"]["method"] == "isotonic"


def test_applied_probabilities_follow_the_formula():
    cal = _calibration()
    z = np.array([[0.5, 1.5, -1.0, 2.0, 0.0]])
    got = cal.probabilities(z)[0]
    assert got[0] == pytest.approx(1 / (1 + math.exp(-0.5 / 1.0)), abs=1e-6)
    assert got[1] == pytest.approx(0.3 + 1.5 / 3.0 * 0.6, abs=1e-6)    # between knots 0 and 3
    assert got[3] == pytest.approx(1 / (1 + math.exp(-2.0 / 1.3)), abs=1e-6)


@pytest.mark.parametrize("entry, message", [
    ({"method": "temperature", "temperature": 0}, "temperature must be a positive"),
    ({"method": "temperature", "temperature": -1.2}, "temperature must be a positive"),
    ({"method": "temperature", "temperature": float("nan")}, "temperature must be a positive"),
    ({"method": "temperature", "temperature": "1.2"}, "temperature must be a positive"),
    ({"method": "temperature"}, "temperature must be a positive"),
    ({"method": "platt", "a": 1}, "method must be one of"),
    ({"method": "isotonic", "logits": [0, 0], "probabilities": [0.1, 0.2]}, "logits must "
     "increase"),
    ({"method": "isotonic", "logits": [0, 1], "probabilities": [0.5, 0.2]}, "non-decreasing"),
    ({"method": "isotonic", "logits": [0, 1], "probabilities": [0.5, 1.2]}, "non-decreasing"),
    ({"method": "isotonic", "logits": [0, 1, 2], "probabilities": [0.5, 0.6]}, "as many"),
    ("1.1", "not an object"),
])
def test_bad_class_entries_are_rejected_naming_the_class(entry, message):
    block = _calibration().to_card()
    block["classes"]["MI"] = entry
    with pytest.raises(CalibrationError, match=message) as err:
        Calibration.from_card(block, CLASSES)
    assert "MI" in str(err.value)


def test_a_missing_or_unknown_class_is_rejected():
    block = _calibration().to_card()
    del block["classes"]["HYP"]
    with pytest.raises(CalibrationError, match="no entry for class HYP"):
        Calibration.from_card(block, CLASSES)
    block = _calibration().to_card()
    block["classes"]["AFIB"] = {"method": "temperature", "temperature": 1.0}
    with pytest.raises(CalibrationError, match="AFIB"):
        Calibration.from_card(block, CLASSES)
    with pytest.raises(CalibrationError, match="label"):
        Calibration.from_card({**_calibration().to_card(), "label": ""}, CLASSES)
    with pytest.raises(CalibrationError, match="format"):
        Calibration.from_card({**_calibration().to_card(), "format": "x/2"}, CLASSES)


def test_patient_halves_never_split_a_patient_and_cross_fitting_holds_each_half_out():
    rng = np.random.default_rng(2)
    patients = rng.integers(0, 300, 1000)
    half = patient_halves(patients, seed=4)
    assert not set(patients[half]) & set(patients[~half])
    z = rng.normal(0, 2, 1000)
    y = (rng.random(1000) < sigmoid(z / 2)).astype(int)
    p = cross_fit(z, y, half, "temperature")
    t_other = fit_temperature(z[~half], y[~half])       # half's records use the other's fit
    np.testing.assert_allclose(p[half], sigmoid(z[half] / t_other))
    assert fit_class("temperature", z, y).temperature == pytest.approx(fit_temperature(z, y))


# --- identity: the raw sigmoid, chosen when no map beats it on held-out patients ----------

def test_identity_gives_the_raw_sigmoid_and_round_trips_through_the_card(tmp_path):
    rng = np.random.default_rng(3)
    z = rng.normal(0.0, 2.0, (50, len(CLASSES)))
    y = (rng.random(z.shape) < sigmoid(z)).astype(int)
    per_class = {c: fit_class("identity", z[:, j], y[:, j]) for j, c in enumerate(CLASSES)}
    assert all(cc == ClassCalibration("identity") for cc in per_class.values())
    assert ClassCalibration("identity").to_dict() == {"method": "identity"}
    cal = Calibration(per_class, CLASSES, "uncalibrated: test")
    np.testing.assert_allclose(cal.probabilities(z), sigmoid(z), atol=1e-7)
    path = tmp_path / "card.json"
    write_card({"name": "m", "calibration": cal.to_card()}, path)
    back = Calibration.from_card(json.loads(path.read_text())["calibration"], CLASSES)
    assert back.per_class == per_class and back.label == "uncalibrated: test"
    np.testing.assert_array_equal(back.probabilities(z), cal.probabilities(z))


def test_a_card_written_before_identity_still_loads_and_gives_the_same_probabilities():
    old = {"format": "detak-calibration/1",
           "label": "isotonic (CD, HYP) / temperature (NORM, MI, STTC), PTB-XL fold 9",
           "classes": {"NORM": {"method": "temperature", "temperature": 1.046901},
                       "MI": {"method": "temperature", "temperature": 1.002661},
                       "STTC": {"method": "temperature", "temperature": 1.01637},
                       "CD": {"method": "isotonic", "logits": [-3.0, 0.5, 2.0],
                              "probabilities": [0.01, 0.4, 0.9]},
                       "HYP": {"method": "isotonic", "logits": [-1.0, 1.0],
                               "probabilities": [0.1, 0.7]}}}
    cal = Calibration.from_card(old, CLASSES)
    z = np.array([[-2.0, 0.0, 1.0, 1.25, 0.0], [3.0, -1.0, 0.0, -4.0, 5.0]])
    want = np.column_stack([sigmoid(z[:, 0] / 1.046901), sigmoid(z[:, 1] / 1.002661),
                            sigmoid(z[:, 2] / 1.01637),
                            np.interp(z[:, 3], [-3.0, 0.5, 2.0], [0.01, 0.4, 0.9]),
                            np.interp(z[:, 4], [-1.0, 1.0], [0.1, 0.7])])
    np.testing.assert_allclose(cal.probabilities(z), want, atol=1e-6)
    assert cal.to_card()["classes"] == old["classes"]
    assert cal.statement == f"calibrated: {old['label']}"


def test_the_statement_says_uncalibrated_when_every_class_is_identity():
    ident = {c: ClassCalibration("identity") for c in CLASSES}
    label = "uncalibrated: fold-9 held-out ECE not improved by temperature or isotonic"
    assert Calibration(ident, CLASSES, label).statement == label
    assert Calibration(ident, CLASSES, "raw, fold 9").statement == "uncalibrated: raw, fold 9"
    mixed = {**ident, "HYP": ClassCalibration("temperature", temperature=1.2)}
    assert Calibration(mixed, CLASSES, "x, fold 9").statement == "calibrated: x, fold 9"


@pytest.mark.parametrize("method", ["platt", "", None, "Identity"])
def test_an_unknown_method_is_named_in_the_error(method):
    with pytest.raises(CalibrationError, match=f"MI: method must be one of identity, "
                                               f"temperature, isotonic, got {method!r}"):
        ClassCalibration.from_dict("MI", {"method": method})
    with pytest.raises(CalibrationError, match=f"got {method!r}"):
        fit_class(method, np.array([0.0, 1.0]), np.array([0, 1]))


def test_identity_entries_take_no_parameters():
    with pytest.raises(CalibrationError, match="MI: identity takes no parameters"):
        ClassCalibration.from_dict("MI", {"method": "identity", "temperature": 1.1})
