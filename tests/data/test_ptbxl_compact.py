"""Tests for detak.data.ptbxl_compact: the compact PTB-XL decoder, its checks and its cache.

Synthetic folds are built with an encoder written here from the format description in
shared/data/README.md (not from the decoder). The real-data test decodes every available fold
into a fresh per-session cache (about 1.5 s per fold) and hashes the cached arrays.
"""

from __future__ import annotations

import atexit
import csv
import functools
import hashlib
import json
import lzma
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from detak.data import ptbxl_compact
from detak.data.paths import DataNotFoundError, data_root
from detak.data.ptbxl_compact import (
    ChecksumError,
    CompactFormatError,
    available_folds,
    combine_leads,
    decode_fold,
    fold_info,
    load_fold,
)

ORDER = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
INDEP_ROWS = [0, 1, 6, 7, 8, 9, 10, 11]  # I, II, V1..V6 in the order above


@functools.cache
def session_cache() -> Path:
    """A cache folder fresh for this test session (so every fold is really decoded once)."""
    folder = Path(tempfile.mkdtemp(prefix="detak-test-ptbxl-cache-"))
    atexit.register(shutil.rmtree, folder, True)
    return folder


def signals_dir() -> Path:
    return data_root() / "ptbxl" / "signals100"


# ------------------------------------------------------------ a reference encoder (README)
def encode_payload(x: np.ndarray) -> bytes:
    x = np.ascontiguousarray(x, dtype="<i2")
    d = np.empty_like(x)
    d[..., 0] = x[..., 0]
    d[..., 1:] = x[..., 1:] - x[..., :-1]  # int16 arithmetic wraps around
    raw = np.frombuffer(d.tobytes(), dtype=np.uint8)
    return lzma.compress(np.concatenate([raw[0::2], raw[1::2]]).tobytes())


def residuals(full: np.ndarray) -> np.ndarray:
    lead_i = full[:, 0].astype(np.int64)
    lead_ii = full[:, 1].astype(np.int64)
    estimates = [lead_ii - lead_i, -np.floor_divide(lead_i + lead_ii, 2),
                 lead_i - np.floor_divide(lead_ii, 2), lead_ii - np.floor_divide(lead_i, 2)]
    r = np.stack([full[:, row].astype(np.int64) - est
                  for row, est in zip((2, 3, 4, 5), estimates, strict=True)], axis=1)
    assert r.min() >= -32768 and r.max() <= 32767, "test data: residual must fit int16"
    return r.astype(np.int16)


def write_fold(folder: Path, fold: int, full: np.ndarray, ids: list[int]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"fold{fold:02d}"
    Path(f"{stem}.indep.xz").write_bytes(encode_payload(full[:, INDEP_ROWS]))
    Path(f"{stem}.resid.xz").write_bytes(encode_payload(residuals(full)))
    meta = {"fold": fold, "n_records": len(ids), "ecg_ids": ids,
            "decoded_shape": list(full.shape),
            "decoded_sha256": hashlib.sha256(np.ascontiguousarray(full).tobytes()).hexdigest()}
    Path(f"{stem}.json").write_text(json.dumps(meta))
    return folder


def synthetic_signals(n_samples: int = 50) -> np.ndarray:
    rng = np.random.default_rng(7)
    full = np.zeros((3, 12, n_samples), dtype=np.int16)
    # record 0: limb leads derived from I and II (residuals in -1..1), odd negatives included
    i0 = rng.integers(-3000, 3000, n_samples)
    ii0 = rng.integers(-3000, 3000, n_samples)
    derived = [ii0 - i0, -((i0 + ii0) // 2), i0 - ii0 // 2, ii0 - i0 // 2]
    full[0, 0], full[0, 1] = i0, ii0
    for row, value in zip((2, 3, 4, 5), derived, strict=True):
        full[0, row] = value + rng.integers(-1, 2, n_samples)
    full[0, 6:] = rng.integers(-2000, 2000, (6, n_samples))
    # record 1: independently recorded limb leads (large residuals kept exactly)
    full[1, :6] = rng.integers(-8000, 8000, (6, n_samples))
    full[1, 6:] = rng.integers(-8000, 8000, (6, n_samples))
    # record 2: full-scale swings, so first differences wrap around in int16
    swing = np.where(np.arange(n_samples) % 2 == 0, 32767, -32768).astype(np.int16)
    full[2, 6:] = swing
    full[2, 0] = swing // 4
    return full


@pytest.fixture
def synthetic_fold(tmp_path: Path) -> tuple[Path, np.ndarray]:
    full = synthetic_signals()
    return write_fold(tmp_path / "signals100", 3, full, [5, 17, 40]), full


# ------------------------------------------------------------ bad inputs first
def test_truncated_payload_is_named(synthetic_fold) -> None:
    folder, _ = synthetic_fold
    payload = folder / "fold03.indep.xz"
    payload.write_bytes(payload.read_bytes()[:-40])
    with pytest.raises(CompactFormatError) as err:
        decode_fold(folder, 3)
    assert not isinstance(err.value, ChecksumError)
    assert "fold03.indep.xz" in str(err.value)
    assert "truncated" in str(err.value)


def test_corrupted_payload_is_rejected(synthetic_fold) -> None:
    folder, _ = synthetic_fold
    payload = folder / "fold03.resid.xz"
    data = bytearray(payload.read_bytes())
    data[len(data) // 2] ^= 0xFF
    payload.write_bytes(bytes(data))
    with pytest.raises(CompactFormatError):
        decode_fold(folder, 3)


def test_payload_of_wrong_size_is_named(synthetic_fold) -> None:
    folder, full = synthetic_fold
    (folder / "fold03.resid.xz").write_bytes(encode_payload(residuals(full)[:, :3]))
    with pytest.raises(CompactFormatError, match=r"fold03\.resid\.xz: decompressed to 900 bytes"):
        decode_fold(folder, 3)


def test_wrong_checksum_raises(synthetic_fold) -> None:
    folder, _ = synthetic_fold
    meta = json.loads((folder / "fold03.json").read_text())
    meta["decoded_sha256"] = "0" * 64
    (folder / "fold03.json").write_text(json.dumps(meta))
    with pytest.raises(ChecksumError, match="expected 0000"):
        decode_fold(folder, 3)
    assert decode_fold(folder, 3, verify=False).shape == (3, 12, 50)


def test_json_field_problems_are_named(synthetic_fold) -> None:
    folder, _ = synthetic_fold
    path = folder / "fold03.json"
    meta = json.loads(path.read_text())
    path.write_text(json.dumps({k: v for k, v in meta.items() if k != "decoded_sha256"}))
    with pytest.raises(CompactFormatError, match="'decoded_sha256' is missing"):
        fold_info(folder, 3)
    path.write_text(json.dumps({**meta, "decoded_shape": [4, 12, 50]}))
    with pytest.raises(CompactFormatError, match="decoded_shape"):
        fold_info(folder, 3)
    path.write_text(json.dumps({**meta, "ecg_ids": [17, 5, 40]}))
    with pytest.raises(CompactFormatError, match="ascending"):
        fold_info(folder, 3)


def test_missing_files_raise_data_not_found(synthetic_fold) -> None:
    folder, _ = synthetic_fold
    with pytest.raises(DataNotFoundError, match="fold04.json"):
        fold_info(folder, 4)
    (folder / "fold03.resid.xz").unlink()
    with pytest.raises(DataNotFoundError, match="fold03.resid.xz"):
        fold_info(folder, 3)


# ------------------------------------------------------------ decoding
def test_limb_estimates_use_floor_division() -> None:
    indep = np.zeros((2, 8, 1), dtype=np.int16)
    indep[0, :2, 0] = (-3, 5)  # I, II
    indep[1, :2, 0] = (3, -5)
    out = combine_leads(indep, np.zeros((2, 4, 1), dtype=np.int16))
    # by hand: III = II-I, aVR = -floor((I+II)/2), aVL = I - floor(II/2), aVF = II - floor(I/2)
    assert out[0, :6, 0].tolist() == [-3, 5, 8, -1, -5, 7]
    assert out[1, :6, 0].tolist() == [3, -5, -8, 1, 6, -6]


def test_int32_arithmetic_for_full_scale_leads() -> None:
    indep = np.zeros((1, 8, 1), dtype=np.int16)
    indep[0, :2, 0] = (-30000, 30000)
    resid = np.zeros((1, 4, 1), dtype=np.int16)
    # estimates 60000, 0, -45000, 45000 overflow int16; only int32 sums give the right leads
    resid[0, :, 0] = (-30000, 0, 20000, -20000)
    assert combine_leads(indep, resid)[0, 2:6, 0].tolist() == [30000, 0, -25000, 25000]
    resid[0, 0, 0] = 0
    with pytest.raises(CompactFormatError, match="lead III"):
        combine_leads(indep, resid)


def test_synthetic_fold_round_trips(synthetic_fold) -> None:
    folder, full = synthetic_fold
    decoded = decode_fold(folder, 3)
    assert decoded.dtype == np.int16
    np.testing.assert_array_equal(decoded, full)
    assert available_folds(folder) == [3]


# ------------------------------------------------------------ cache
def test_cache_is_written_keyed_and_reused(synthetic_fold, tmp_path: Path, monkeypatch) -> None:
    folder, full = synthetic_fold
    cache = tmp_path / "cache"
    ids, arr = load_fold(folder, 3, cache=cache)
    assert ids.tolist() == [5, 17, 40]
    np.testing.assert_array_equal(arr, full)
    sha = hashlib.sha256(full.tobytes()).hexdigest()
    assert [p.name for p in cache.iterdir()] == [f"ptbxl100_fold03_{sha}.npy"]

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again although the cache is valid")

    monkeypatch.setattr(ptbxl_compact, "decode_fold", no_decoding)
    _, again = load_fold(folder, 3, cache=cache)
    assert isinstance(again, np.memmap) and not again.flags.writeable
    np.testing.assert_array_equal(again, full)


def test_changed_dataset_invalidates_cache(synthetic_fold, tmp_path: Path) -> None:
    folder, full = synthetic_fold
    cache = tmp_path / "cache"
    load_fold(folder, 3, cache=cache)
    changed = full.copy()
    changed[1, 7, 10] += 1
    write_fold(folder, 3, changed, [5, 17, 40])
    _, arr = load_fold(folder, 3, cache=cache)
    assert arr[1, 7, 10] == full[1, 7, 10] + 1
    assert len(list(cache.iterdir())) == 2


def test_damaged_cache_file_is_rebuilt(synthetic_fold, tmp_path: Path) -> None:
    folder, full = synthetic_fold
    cache = tmp_path / "cache"
    load_fold(folder, 3, cache=cache)
    (cached,) = cache.iterdir()
    cached.write_bytes(cached.read_bytes()[:200])
    _, arr = load_fold(folder, 3, cache=cache)
    np.testing.assert_array_equal(arr, full)


# ------------------------------------------------------------ real data
def test_shared_copy_has_folds_1_to_9() -> None:
    assert available_folds(signals_dir()) == list(range(1, 10))


def test_fold_ids_match_the_database() -> None:
    by_fold: dict[int, list[int]] = {}
    with open(data_root() / "ptbxl" / "ptbxl_database.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            by_fold.setdefault(int(row["strat_fold"]), []).append(int(float(row["ecg_id"])))
    for fold in range(1, 10):
        assert fold_info(signals_dir(), fold).ecg_ids.tolist() == sorted(by_fold[fold])


@pytest.mark.slow
def test_every_fold_decodes_to_its_published_sha256() -> None:
    """Decode each fold (into a cache fresh for this session) and hash the cached array."""
    folds = available_folds(signals_dir())
    assert folds, f"no compact folds in {signals_dir()}"
    for fold in folds:
        meta = json.loads((signals_dir() / f"fold{fold:02d}.json").read_text())
        ids, arr = load_fold(signals_dir(), fold, cache=session_cache())
        assert arr.shape == tuple(meta["decoded_shape"]) and arr.dtype == np.int16
        assert ids.tolist() == meta["ecg_ids"]
        digest = hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()
        assert digest == meta["decoded_sha256"], f"fold {fold}"
