"""detak.models.cnn_data: PTB-XL folds and recordings → CNN input, S1's chain, named errors."""

import numpy as np
import pytest
from scipy import signal as sps

from detak.data.ludb import load_ludb
from detak.data.ptbxl import FoldNotAvailableError
from detak.data.recording import MissingLeadError, Recording
from detak.data.sources import _ptbxl as open_ptbxl  # the per-process cached handle
from detak.models.cnn_data import (
    InputError,
    ModelLeadsError,
    fit_standardizer,
    fold_arrays,
    preprocess_recording,
    split_arrays,
)
from detak.signal.filters import Standardizer, clean


def test_missing_leads_error_names_record_and_every_lead():
    rec = load_ludb(1).recording
    keep = [lead for lead in rec.leads if lead not in ("V3", "aVL")]
    rec = rec.select(keep).replace(name="ward7-bed2")
    with pytest.raises(ModelLeadsError) as err:
        preprocess_recording(rec)
    msg = str(err.value)
    assert "ward7-bed2" in msg and "aVL" in msg and "V3" in msg and "V4" not in msg.split(
        "missing")[1].split("(")[0]
    assert isinstance(err.value, MissingLeadError)  # callers catching the Foundation's error


def test_rate_below_100_hz_and_short_records_are_named_errors():
    rec = load_ludb(1).recording
    low = rec.replace(signal=rec.signal[:, ::10], fs=50.0, name="slow-device")
    with pytest.raises(InputError, match="slow-device.*50 Hz.*below"):
        preprocess_recording(low)
    short = rec.replace(signal=rec.signal[:, :2500], name="half")
    with pytest.raises(InputError, match=r"half: 5\.00 s"):
        preprocess_recording(short)
    nan = rec.signal.copy()
    nan[3, 100] = np.nan
    with pytest.raises(InputError, match="gappy.*NaN"):
        preprocess_recording(rec.replace(signal=nan, name="gappy"))


def test_fold_arrays_equal_s1_chain_per_record():
    fa = fold_arrays(9)
    ptb = open_ptbxl()
    for i in (0, 1234, len(fa) - 1):
        rec = ptb.record(int(fa.ids[i]))
        assert np.allclose(fa.x[i], clean(rec).signal, atol=1e-5)
        assert fa.y[i].tolist() == ptb.labels([fa.ids[i]], allow_unlabelled=True)[0].tolist()
    assert int(fa.labelled.sum()) == len(ptb.labelled_ids([9]))
    # and preprocess_recording (the prediction path) gives the same input
    rec = ptb.record(int(fa.ids[7]))
    assert np.allclose(preprocess_recording(rec)[0], fa.x[7], atol=1e-5)


def test_fold_10_works_only_where_present():
    ptb = open_ptbxl()
    if 10 in ptb.folds_with_signals():  # a full PTB-XL copy
        assert len(fold_arrays(10)) == len(ptb.fold_ids(10))
    else:
        with pytest.raises(FoldNotAvailableError, match="fold 10"):
            fold_arrays(10)


def test_split_max_records_takes_first_labelled_records_in_fold_order():
    s = split_arrays([1, 2], max_records=30)
    ptb = open_ptbxl()
    assert s.ids.tolist() == ptb.labelled_ids([1])[:30].tolist()
    assert s.y.sum(axis=1).min() >= 1 and s.x.shape == (30, 12, 1000)
    with pytest.raises(ValueError, match="max_records"):
        split_arrays([1], max_records=0)


def test_streaming_standardizer_equals_the_foundations():
    x = np.random.default_rng(2).normal(0.1, 0.4, (700, 3, 40)).astype(np.float32)
    a, b = fit_standardizer(x), Standardizer.fit(x)
    assert a.mean[0] == pytest.approx(b.mean[0], abs=1e-9)
    assert a.std[0] == pytest.approx(b.std[0], rel=1e-9)
    out = preprocess_recording(load_ludb(2).recording, a)
    assert out.dtype == np.float32


def test_500_hz_input_matches_its_100_hz_version():
    rec = load_ludb(3).recording  # 500 Hz, 10 s
    # an independent 100 Hz version: scipy's zero-phase FIR decimation, not filters.resample
    low = sps.decimate(rec.signal.astype(np.float64), 5, ftype="fir", zero_phase=True, axis=-1)
    rec100 = Recording(low.astype(np.float32), 100.0, rec.leads, name="ludb3-100")
    a, b = preprocess_recording(rec)[0], preprocess_recording(rec100)[0]
    assert a.shape == b.shape == (12, 1000)
    inner = slice(50, 950)  # edges differ with the padding of each method
    for lead in range(12):
        r = np.corrcoef(a[lead, inner], b[lead, inner])[0, 1]
        assert r > 0.99, (lead, r)
    assert np.abs(a[:, inner] - b[:, inner]).max() < 0.1  # mV


def test_long_records_are_cut_into_10_s_windows():
    rec = load_ludb(4).recording
    long = rec.replace(signal=np.concatenate([rec.signal, rec.signal[:, :2500]], axis=1))
    w = preprocess_recording(long)  # 15 s → windows at 0 s and 5 s
    assert w.shape == (2, 12, 1000)
    assert np.allclose(w[1, :, :500], w[0, :, 500:], atol=1e-4)
