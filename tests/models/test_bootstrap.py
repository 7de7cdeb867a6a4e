"""detak.models.bootstrap: patients stay whole, the draws are the ones the four former copies
made (redraw until n accepted, or n draws with rejects dropped), records as patients is the
plain record bootstrap, and the kiosk can import it without torch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from detak.models.bootstrap import patient_groups, patient_resamples


def _legacy(patients, n, seed, valid, redraw):
    """The loop teacher_ensemble / mi_subgroups (redraw) and operating_point (no redraw) had."""
    uniq, inv = np.unique(patients, return_inverse=True)
    members = [np.flatnonzero(inv == i) for i in range(len(uniq))]
    rng = np.random.default_rng(seed)
    out, drawn = [], 0
    while (len(out) if redraw else drawn) < n:
        idx = np.concatenate([members[i] for i in rng.integers(0, len(uniq), len(uniq))])
        drawn += 1
        if valid(idx):
            out.append(idx)
    return out


def test_draws_equal_the_former_loops_with_and_without_redraw():
    rng = np.random.default_rng(5)
    patients = rng.integers(0, 40, 120)
    y = np.zeros(120, bool)
    y[0] = True                                  # one positive: many resamples are rejected

    def valid(i):
        return bool(y[i].any() and not y[i].all())

    for redraw in (True, False):
        want = _legacy(patients, 200, 3, valid, redraw)
        got = list(patient_resamples(patients, 200, 3, valid=valid, redraw=redraw))
        assert len(got) == len(want) and all(np.array_equal(a, b) for a, b in
                                              zip(got, want, strict=True))
    assert len(list(patient_resamples(patients, 200, 3, valid=valid, redraw=False))) < 200


def test_a_patient_is_drawn_whole_and_records_as_patients_is_the_record_bootstrap():
    patients = np.array([4, 4, 9, 1, 9, 9])
    assert [g.tolist() for g in patient_groups(patients)] == [[3], [0, 1], [2, 4, 5]]
    for idx in patient_resamples(patients, 50, seed=2):
        for g in patient_groups(patients):
            assert np.isin(idx, g).sum() % len(g) == 0
    got = [i.tolist() for i in patient_resamples(np.arange(30), 5, seed=7)]
    rng = np.random.default_rng(7)
    assert got == [rng.integers(0, 30, 30).tolist() for _ in range(5)]


def test_the_kiosk_can_import_it_without_torch():
    code = ("import sys, detak.models.bootstrap; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'sklearn'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True).stdout.strip()
    assert out == "[]"
