"""LUDB loader: real records from data_root()/ludb (tests fail if the data are missing)."""

from __future__ import annotations

import numpy as np
import pytest

from detak.data.leads import STANDARD_LEADS
from detak.data.ludb import LudbError, Wave, load_ludb, ludb_ids, ludb_root, parse_annotations


def test_bad_record_number_is_a_named_error():
    for bad in (0, 201, -3):
        with pytest.raises(LudbError, match=r"1\.\.200"):
            load_ludb(bad)


def test_missing_folder_names_the_file(tmp_path):
    with pytest.raises(LudbError, match=r"header file not found: .*7\.hea"):
        load_ludb(7, root=tmp_path)


def test_ids():
    ids = ludb_ids()
    assert ids == list(range(1, 201))


def test_data_are_there():
    # CI has the data: a missing LUDB must fail, not skip
    assert (ludb_root() / "data" / "1.hea").exists(), f"LUDB not found under {ludb_root()}"


def test_record_signal_and_meta():
    r = load_ludb(1)
    rec = r.recording
    assert rec.name == "ludb:1"
    assert rec.fs == 500.0
    assert rec.signal.dtype == np.float32 and rec.signal.shape == (12, 5000)
    assert tuple(rec.leads) == STANDARD_LEADS
    # millivolts: QRS amplitudes of a resting ECG are ~0.3–5 mV, not counts or volts
    ptp = np.ptp(rec.signal, axis=1)
    assert np.all(ptp > 0.1) and np.all(ptp < 10)
    assert r.meta["age"] == 51 and r.meta["sex"] == "F"
    assert r.meta["rhythm"] == ["Sinus bradycardia"]
    assert "Left ventricular hypertrophy" in r.meta["diagnoses"]
    assert r.meta["pacemaker"] is False


def test_annotations_are_sane():
    r = load_ludb(2)
    assert set(r.waves) == set(STANDARD_LEADS)
    for lead, waves in r.waves.items():
        n_qrs = sum(w.kind == "QRS" for w in waves)
        assert 5 <= n_qrs <= 25, (lead, n_qrs)          # 10 s of ECG
        for w in waves:
            assert w.kind in ("P", "QRS", "T")
            if w.onset is not None:
                assert w.onset < w.peak
            if w.offset is not None:
                assert w.peak < w.offset
            dur = (w.offset - w.onset) * 2 if w.onset is not None and w.offset is not None else 0
            assert dur < 600, (lead, w)                  # ms; no wave lasts longer
    # the annotated QRS peaks fall on the steep part of the signal, in every lead
    rec = r.recording
    x = rec.lead("II")
    peaks = [w.peak for w in r.waves_of("II", "QRS")]
    slope = np.abs(np.gradient(x))
    assert np.median([slope[max(0, p - 15): p + 15].max() for p in peaks]) > 3 * np.median(slope)


def test_af_record_has_no_p_annotations_and_meta_says_af():
    r = load_ludb(8)
    assert r.meta["atrial_fibrillation"] is True
    assert r.meta["pacemaker"] is True
    assert r.waves_of("II", "P") == []
    assert len(r.waves_of("II", "QRS")) > 5


def test_parse_annotations_missing_bounds():
    waves = parse_annotations(np.array([5, 9, 20, 31]), ["p", ")", "(", "N"])
    assert waves == [Wave("P", None, 5, 9), Wave("QRS", 20, 31, None)]
