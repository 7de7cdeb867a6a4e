"""Limb-electrode reversal: the swap maths (`detak.signal.perturb.swap_limb_electrodes`), the
detector (`detak.signal.lead_reversal`) on real PTB-XL records of the training folds swapped and
unswapped, the quality gate's warning in both kiosk languages, and bad input (too few leads,
no beats) answered with "cannot tell", never a crash."""

from __future__ import annotations

import numpy as np
import pytest

from detak.data.leads import STANDARD_LEADS
from detak.data.recording import Recording
from detak.signal.lead_reversal import check_limb_reversal
from detak.signal.perturb import LIMB_SWAPS, PerturbationError, swap_limb_electrodes

NAMES = list(STANDARD_LEADS)
ROW = {name: i for i, name in enumerate(NAMES)}


def _einthoven(seed: int = 0, n: int = 400) -> np.ndarray:
    """12 rows with limb leads consistent with three random electrode potentials."""
    rng = np.random.default_rng(seed)
    ra, la, ll = rng.normal(size=(3, n))
    limb = [la - ra, ll - ra, ll - la, ra - (la + ll) / 2, la - (ra + ll) / 2,
            ll - (ra + la) / 2]
    return np.vstack([*limb, rng.normal(size=(6, n))])


@pytest.mark.parametrize("swap", LIMB_SWAPS)
def test_a_double_swap_is_the_identity_and_chest_leads_never_change(swap):
    x = np.random.default_rng(1).normal(size=(12, 300))
    once = swap_limb_electrodes(x, NAMES, swap)
    assert not np.allclose(once[:6], x[:6])
    assert np.array_equal(once[6:], x[6:])
    assert np.array_equal(swap_limb_electrodes(once, NAMES, swap), x)


def test_la_ra_inverts_i_and_trades_avr_avl_and_ii_iii():
    x = _einthoven()
    y = swap_limb_electrodes(x, NAMES, "LA/RA")
    assert np.array_equal(y[ROW["I"]], -x[ROW["I"]])
    assert np.array_equal(y[ROW["aVR"]], x[ROW["aVL"]])
    assert np.array_equal(y[ROW["aVL"]], x[ROW["aVR"]])
    assert np.array_equal(y[ROW["II"]], x[ROW["III"]])
    assert np.array_equal(y[ROW["III"]], x[ROW["II"]])
    assert np.array_equal(y[ROW["aVF"]], x[ROW["aVF"]])


@pytest.mark.parametrize("swap", LIMB_SWAPS)
def test_each_swap_equals_recording_from_the_swapped_electrode_potentials(swap):
    rng = np.random.default_rng(2)
    phi = dict(zip(("RA", "LA", "LL"), rng.normal(size=(3, 200)), strict=True))

    def leads(p):
        ra, la, ll = p["RA"], p["LA"], p["LL"]
        return np.vstack([la - ra, ll - ra, ll - la, ra - (la + ll) / 2, la - (ra + ll) / 2,
                          ll - (ra + la) / 2, np.zeros((6, ra.size))])

    a, b = swap.split("/")
    swapped = dict(phi, **{a: phi[b], b: phi[a]})
    assert np.allclose(swap_limb_electrodes(leads(phi), NAMES, swap), leads(swapped))


def test_swap_refuses_unknown_swaps_and_missing_limb_leads():
    x = np.zeros((12, 10))
    with pytest.raises(PerturbationError, match="unknown swap"):
        swap_limb_electrodes(x, NAMES, "LA/V1")
    with pytest.raises(PerturbationError, match="missing aVR"):
        swap_limb_electrodes(x[[0, 1, 2, 4, 5]], ["I", "II", "III", "aVL", "aVF"], "LA/RA")


@pytest.fixture(scope="module")
def normal_records():
    """NORM-only records of PTB-XL fold 3 (training folds: not where the detector is scored,
    nor fold 1 where its levels were chosen), 0.5-40 Hz, mV."""
    from detak.models.cnn_data import CLASSES, fold_arrays

    fa = fold_arrays(3)
    norm = CLASSES.index("NORM")
    only = np.flatnonzero((fa.y[:, norm] == 1) & (fa.y.sum(axis=1) == 1))[:30]
    return [np.asarray(fa.x[i], dtype=np.float64) for i in only]


def test_correlations_follow_the_swap_maths(normal_records):
    x = normal_records[0]
    a = check_limb_reversal(x, 100.0, NAMES)
    b = check_limb_reversal(swap_limb_electrodes(x, NAMES, "LA/RA"), 100.0, NAMES)
    assert b.corr_v6["I"] == pytest.approx(-a.corr_v6["I"], abs=1e-9)
    assert b.corr_v6["aVR"] == pytest.approx(a.corr_v6["aVL"], abs=1e-9)
    assert b.corr_v6["II"] == pytest.approx(a.corr_v6["III"], abs=1e-9)


def test_detector_on_real_normal_records_swapped_and_not(normal_records):
    calls = {k: [] for k in ("none", *LIMB_SWAPS)}
    for x in normal_records:
        calls["none"].append(check_limb_reversal(x, 100.0, NAMES).suspected)
        for swap in LIMB_SWAPS:
            y = swap_limb_electrodes(x, NAMES, swap)
            calls[swap].append(check_limb_reversal(y, 100.0, NAMES).suspected)
    n = len(normal_records)
    assert n == 30
    # normal hearts, correct cables: no alarm at all; swapped: named right in most
    assert calls["none"].count(None) == n
    assert calls["LA/RA"].count("LA/RA") >= 0.8 * n
    assert calls["RA/LL"].count("RA/LL") >= 0.8 * n
    # LA/LL maps a normal axis onto a normal one: never called something else
    assert set(calls["LA/LL"]) <= {None}


@pytest.mark.parametrize("leads", [["I", "II"], ["I", "II", "III", "aVR", "aVL", "aVF"],
                                   NAMES[:6] + ["V1"]])
def test_fewer_leads_than_needed_cannot_tell(leads):
    x = np.random.default_rng(0).normal(size=(len(leads), 1000))
    r = check_limb_reversal(x, 100.0, leads)
    assert r.can_tell is False and r.suspected is None and "needs leads" in r.why_not


def test_no_beats_flat_leads_or_nan_cannot_tell(normal_records):
    x = normal_records[0]
    assert not check_limb_reversal(x, 100.0, NAMES, peaks=np.array([500])).can_tell
    flat = x.copy()
    flat[ROW["aVR"]] = 0.0
    r = check_limb_reversal(flat, 100.0, NAMES)
    assert not r.can_tell and "aVR" in r.why_not
    bad = x.copy()
    bad[0, 10] = np.nan
    assert not check_limb_reversal(bad, 100.0, NAMES).can_tell
    assert not check_limb_reversal(x[:, :50], 100.0, NAMES).can_tell


# ----------------------------------------------------------------------- the quality gate


@pytest.fixture(scope="module")
def sample():
    from detak.data.samples import load_sample

    return load_sample("ptbxl-00286")


def _swapped(rec: Recording, swap: str) -> Recording:
    return rec.replace(signal=swap_limb_electrodes(rec.signal, list(rec.leads), swap))


def test_gate_warns_on_a_swapped_recording_and_names_the_cables(sample):
    from detak.signal.quality import assess_quality

    clean = assess_quality(sample)
    assert "lead_reversal" not in {i["code"] for i in clean.issues}
    assert clean.lead_reversal["can_tell"] and clean.lead_reversal["suspected"] is None
    rep = assess_quality(_swapped(sample, "LA/RA"))
    rev = [i for i in rep.issues if i["code"] == "lead_reversal"]
    assert len(rev) == 1 and rev[0]["level"] == "warn" and rev[0]["electrodes"] == "LA/RA"
    assert rep.verdict == "warn" and not rep.rejected
    assert "LA and RA" in rep.reasons[0] and len(rep.reasons) == len(rep.issues)
    assert rep.to_dict()["lead_reversal"]["suspected"] == "LA/RA"


def test_gate_reason_in_both_languages(sample):
    from detak.kiosk.quality_text import advice, details
    from detak.signal.quality import assess_quality

    rep = assess_quality(_swapped(sample, "RA/LL"))
    rev = [i for i in rep.issues if i["code"] == "lead_reversal"]
    assert rev and rev[0]["electrodes"] == "RA/LL"
    texts = {lang: (advice(rev, lang), details(rev, lang)) for lang in ("id", "en")}
    for plain, tech in texts.values():
        assert len(plain) == 1 and "RA" in plain[0] and "LL" in plain[0]
        assert "{" not in plain[0] + tech[0]
    assert "swapped" in texts["en"][0][0] and "dextrocardia" in texts["en"][0][0]
    assert "tertukar" in texts["id"][0][0] and "dekstrokardia" in texts["id"][0][0]
    assert "swapped" not in texts["id"][0][0] + texts["id"][1][0]


def test_gate_with_too_few_leads_says_it_cannot_tell(sample):
    from detak.signal.quality import assess_quality

    rep = assess_quality(sample.select(["I", "II", "V6"]))
    assert "lead_reversal" not in {i["code"] for i in rep.issues}
    assert rep.lead_reversal["can_tell"] is False


def test_a_swapped_recording_is_screened_with_the_warning_not_silently(sample):
    from detak.kiosk.screening import screen

    s = screen(_swapped(sample, "LA/RA"), lang="id").to_dict()
    assert s["quality"]["verdict"] == "warn"
    assert any("LA" in r and "RA" in r and "tertukar" in r for r in s["quality"]["reasons"])
    assert "lead_reversal" in {i["code"] for i in s["quality"]["issues"]}
    clean = screen(sample, lang="id").to_dict()
    assert "lead_reversal" not in {i["code"] for i in clean["quality"]["issues"]}
