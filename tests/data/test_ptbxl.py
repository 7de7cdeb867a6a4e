"""Tests for detak.data.ptbxl on the shared copy (compact layout, folds 1–9) and on a small
PhysioNet-layout tree (records100/ WFDB, trimmed CSVs, a fold-10 record) built in tmp_path from
decoded real samples."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import wfdb

from detak.data import ptbxl, ptbxl_compact
from detak.data.leads import STANDARD_LEADS
from detak.data.paths import DataNotFoundError, data_root
from detak.data.ptbxl import (
    SUPERCLASSES,
    FoldNotAvailableError,
    PtbXlFormatError,
    UnknownRecordError,
    UnlabelledRecordError,
    open_ptbxl,
)
from tests.data.test_ptbxl_compact import session_cache

PTBXL_NAMES = ["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]


def raw_rows() -> list[dict[str, str]]:
    with open(data_root() / "ptbxl" / "ptbxl_database.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def shared():
    return open_ptbxl(cache=session_cache())


# ------------------------------------------------------------ bad inputs and missing data
def test_missing_root_names_path_and_env(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DETAK_DATA", str(tmp_path))
    with pytest.raises(DataNotFoundError) as err:
        open_ptbxl()
    assert str(tmp_path / "ptbxl") in str(err.value) and "DETAK_DATA" in str(err.value)


def test_fold_10_is_not_in_the_shared_copy(shared) -> None:
    with pytest.raises(FoldNotAvailableError) as err:
        shared.load_fold(10)
    msg = str(err.value)
    assert msg.startswith(f"fold 10 signals are not in {shared.root}")
    assert "fold10.json" in msg and "records100" in msg and "DETAK_DATA" in msg
    fold10_id = int(shared.fold_ids(10)[0])
    with pytest.raises(FoldNotAvailableError, match="fold 10 signals"):
        shared.record(fold10_id)
    # metadata and labels of fold 10 stay available (the benchmark needs them)
    assert shared.labels(shared.labelled_ids([10])).shape[1] == 5


def test_500_hz_needs_the_physionet_layout(shared) -> None:
    with pytest.raises(FoldNotAvailableError, match="records500"):
        shared.record(1, fs=500)
    with pytest.raises(ValueError, match="fs=250"):
        shared.load_fold(1, fs=250)


def test_unknown_ids_and_folds(shared) -> None:
    with pytest.raises(UnknownRecordError, match="ecg_id 999999"):
        shared.record(999999)
    with pytest.raises(UnknownRecordError, match="ecg_id 999999"):
        shared.labels([1, 999999])
    with pytest.raises(ValueError, match="strat_fold 11"):
        shared.fold_ids(11)


def test_missing_csv_column_is_named(tmp_path: Path) -> None:
    src = data_root() / "ptbxl"
    shutil.copy(src / "scp_statements.csv", tmp_path)
    rows = raw_rows()[:3]
    cols = [c for c in rows[0] if c != "strat_fold"]
    with open(tmp_path / "ptbxl_database.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    with pytest.raises(PtbXlFormatError, match="'strat_fold' is missing"):
        _ = open_ptbxl(tmp_path).metadata


# ------------------------------------------------------------ labels and metadata
def test_superclass_counts_match_published_v103_figures(shared) -> None:
    ids = shared.metadata.index
    assert len(ids) == 21799
    counts = shared.labels(ids, allow_unlabelled=True).sum(axis=0)
    published = {"NORM": 9514, "MI": 5469, "STTC": 5235, "CD": 4898, "HYP": 2649}
    assert dict(zip(SUPERCLASSES, counts.tolist(), strict=True)) == published


def test_labelled_set_drops_records_without_superclass(shared) -> None:
    labelled = shared.labelled_ids()
    assert shared.labels(labelled).sum(axis=1).min() >= 1
    unlabelled = np.setdiff1d(shared.metadata.index.to_numpy(), labelled)
    assert len(unlabelled) > 0
    with pytest.raises(UnlabelledRecordError, match=f"ecg_id {unlabelled[0]}"):
        shared.labels([int(labelled[0]), int(unlabelled[0])])
    assert shared.labels(unlabelled[:3], allow_unlabelled=True).sum() == 0
    train = shared.labelled_ids(range(1, 9))
    assert set(shared.metadata.loc[train, "strat_fold"]) == set(range(1, 9))


def test_statement_counts_whatever_its_likelihood(shared) -> None:
    # ecg_id 351: {'AFIB': 100.0, 'NST_': 0.0}; AFIB is a rhythm statement, NST_ diagnostic STTC
    assert shared.metadata.at[351, "scp_codes"] == {"AFIB": 100.0, "NST_": 0.0}
    assert shared.labels([351]).tolist() == [[0, 0, 1, 0, 0]]


def test_metadata_conventions(shared) -> None:
    rows = raw_rows()
    md = shared.metadata
    n_male = sum(r["sex"] == "0" for r in rows)
    n_coded_age = sum(float(r["age"]) == 300 for r in rows if r["age"])
    assert int((md["sex"] == "M").sum()) == n_male
    assert int((md["sex"] == "F").sum()) == len(rows) - n_male
    assert int((md["age"] == 300).sum()) == n_coded_age > 0
    assert int(md["age_years"].isna().sum()) == n_coded_age
    first = rows[0]
    assert md.at[1, "age"] == int(float(first["age"])) and md.at[1, "sex"] == "F"


# ------------------------------------------------------------ signals, shared compact copy
def test_fold_and_record_agree(shared) -> None:
    ids, x = shared.load_fold(1)
    np.testing.assert_array_equal(ids, shared.fold_ids(1))
    assert x.shape == (len(ids), 12, 1000) and x.dtype == np.int16
    ecg_id = int(ids[5])
    rec = shared.record(ecg_id)
    assert rec.name == f"ptbxl:{ecg_id}" and rec.fs == 100.0 and rec.leads == STANDARD_LEADS
    assert rec.signal.dtype == np.float32
    np.testing.assert_allclose(rec.signal, x[5] / 1000.0, rtol=0, atol=1e-6)
    assert rec.meta["ecg_id"] == ecg_id and rec.meta["strat_fold"] == 1
    assert rec.meta["superclasses"] == [
        s for s, v in zip(SUPERCLASSES, shared.labels([ecg_id], True)[0], strict=True) if v]
    json.dumps(rec.meta)  # JSON-serialisable, as Recording.meta requires


def test_record_access_reuses_the_cache(shared, monkeypatch) -> None:
    shared.load_fold(9)  # decoded (or already cached) once

    def no_decoding(*args, **kwargs):
        raise AssertionError("a whole fold was decoded again")

    monkeypatch.setattr(ptbxl_compact, "decode_fold", no_decoding)
    fresh = open_ptbxl(cache=session_cache())  # new object: nothing in memory, only the cache
    ids = fresh.fold_ids(9)
    for ecg_id in ids[:20]:
        assert fresh.record(int(ecg_id)).meta["strat_fold"] == 9


# ------------------------------------------------------------ PhysioNet layout
def write_wfdb(root: Path, relpath: str, uv: np.ndarray, fs: int = 100,
               order: list[int] | None = None) -> None:
    order = list(range(12)) if order is None else order
    target = root / relpath
    target.parent.mkdir(parents=True, exist_ok=True)
    wfdb.wrsamp(target.name, fs=fs, units=["mV"] * len(order),
                sig_name=[PTBXL_NAMES[i] for i in order], d_signal=uv[order].T.astype(np.int64),
                fmt=["16"] * len(order), adc_gain=[1000.0] * len(order),
                baseline=[0] * len(order), write_dir=str(target.parent))


@pytest.fixture(scope="module")
def physionet_tree(shared, tmp_path_factory):
    """A PhysioNet-layout copy: 2 records of fold 1, 1 of fold 9 (with 500 Hz), 1 of fold 10."""
    root = tmp_path_factory.mktemp("ptb-xl-1.0.3")
    shutil.copy(shared.root / "scp_statements.csv", root)
    ids1, x1 = shared.load_fold(1)
    ids9, x9 = shared.load_fold(9)
    fold10_id = int(shared.fold_ids(10)[0])
    signals = {int(ids1[0]): x1[0], int(ids1[1]): x1[1], int(ids9[0]): x9[0],
               fold10_id: x9[1]}  # fold 10 is not shared: a real fold-9 signal stands in
    rows = [r for r in raw_rows() if int(r["ecg_id"]) in signals]
    with open(root / "ptbxl_database.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    for r in rows:
        ecg_id = int(r["ecg_id"])
        uv = np.asarray(signals[ecg_id])
        shuffled = [11, 3, 0, 5, 1, 7, 2, 9, 4, 6, 10, 8] if ecg_id == int(ids1[1]) else None
        write_wfdb(root, r["filename_lr"], uv, order=shuffled)
        if ecg_id == int(ids9[0]):
            write_wfdb(root, r["filename_hr"], np.repeat(uv, 5, axis=1), fs=500)
    return root, signals, {"fold1": [int(i) for i in ids1[:2]], "fold9": int(ids9[0]),
                           "fold10": fold10_id}


def test_physionet_layout_matches_compact_samples(physionet_tree, tmp_path: Path) -> None:
    root, signals, ids = physionet_tree
    ptb = open_ptbxl(root, cache=tmp_path / "cache")
    assert ptb.folds_with_signals() == [1, 9, 10]
    assert ptb.folds_with_signals(500) == [9]
    got_ids, x = ptb.load_fold(1)
    assert got_ids.tolist() == ids["fold1"]  # the second one was written with shuffled leads
    for n, ecg_id in enumerate(ids["fold1"]):
        np.testing.assert_array_equal(x[n], signals[ecg_id])
    rec = ptb.record(ids["fold9"])
    np.testing.assert_array_equal(np.rint(rec.signal * 1000).astype(np.int16),
                                  signals[ids["fold9"]])
    assert rec.meta["source"].endswith("_lr")


def test_physionet_layout_serves_fold_10(physionet_tree, shared, tmp_path: Path) -> None:
    root, signals, ids = physionet_tree
    ptb = open_ptbxl(root, cache=False)
    got_ids, x = ptb.load_fold(10)
    assert got_ids.tolist() == [ids["fold10"]]
    np.testing.assert_array_equal(x[0], signals[ids["fold10"]])
    rec = ptb.record(ids["fold10"])
    assert rec.meta["strat_fold"] == 10 and rec.name == f"ptbxl:{ids['fold10']}"
    assert ptb.labels([ids["fold10"]], True).tolist() == \
        shared.labels([ids["fold10"]], True).tolist()


def test_physionet_layout_500_hz(physionet_tree) -> None:
    root, signals, ids = physionet_tree
    rec = open_ptbxl(root, cache=False).record(ids["fold9"], fs=500)
    assert rec.fs == 500.0 and rec.signal.shape == (12, 5000)
    np.testing.assert_allclose(rec.signal[:, ::5], signals[ids["fold9"]] / 1000.0, atol=1e-6)
    with pytest.raises(FoldNotAvailableError, match="fold 1 signals at 500 Hz"):
        open_ptbxl(root, cache=False).load_fold(1, fs=500)


def test_physionet_fold_cache_reused_and_invalidated(physionet_tree, tmp_path: Path,
                                                     monkeypatch) -> None:
    src, signals, ids = physionet_tree
    root = tmp_path / "copy"
    shutil.copytree(src, root)
    cache = tmp_path / "cache"
    open_ptbxl(root, cache=cache).load_fold(10)

    def no_reading(*args, **kwargs):
        raise AssertionError("WFDB files read again although the cache is valid")

    with monkeypatch.context() as m:
        m.setattr(ptbxl, "read_wfdb_uv", no_reading)
        _, x = open_ptbxl(root, cache=cache).load_fold(10)
        np.testing.assert_array_equal(x[0], signals[ids["fold10"]])
    changed = np.array(signals[ids["fold10"]])
    changed[3, 100] += 7
    relpath = open_ptbxl(root).metadata.at[ids["fold10"], "filename_lr"]
    write_wfdb(root, relpath, changed)
    dat = root / (relpath + ".dat")  # the cache key is (name, size, mtime): make the change
    os.utime(dat, ns=(dat.stat().st_atime_ns, dat.stat().st_mtime_ns + 10**9))  # visible on
    _, x = open_ptbxl(root, cache=cache).load_fold(10)  # filesystems with coarse mtimes too
    assert x[0, 3, 100] == changed[3, 100]


def test_physionet_layout_bad_files(physionet_tree, tmp_path: Path) -> None:
    src, signals, ids = physionet_tree
    root = tmp_path / "copy"
    shutil.copytree(src, root)
    md = open_ptbxl(root).metadata
    # missing .dat of a fold-1 record
    dat = root / (md.at[ids["fold1"][0], "filename_lr"] + ".dat")
    dat.unlink()
    with pytest.raises(FoldNotAvailableError, match=str(dat.name)):
        open_ptbxl(root, cache=False).load_fold(1)
    assert open_ptbxl(root, cache=False).folds_with_signals() == [9, 10]
    # wrong sample rate
    relpath = md.at[ids["fold9"], "filename_lr"]
    write_wfdb(root, relpath, signals[ids["fold9"]], fs=250)
    with pytest.raises(PtbXlFormatError, match="sample rate 250"):
        open_ptbxl(root, cache=False).record(ids["fold9"])
    # a lead missing
    write_wfdb(root, relpath, signals[ids["fold9"]], order=list(range(11)))
    with pytest.raises(PtbXlFormatError, match="lead V6 missing"):
        open_ptbxl(root, cache=False).record(ids["fold9"])
