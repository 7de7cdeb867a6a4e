"""Decoder (and on-disk cache) for the compact lossless PTB-XL signal format of ``signals100/``.

Each strat fold ``k`` has ``foldKK.json`` (``ecg_ids``, ``decoded_shape``, ``decoded_sha256``),
``foldKK.indep.xz`` (leads I, II, V1–V6) and ``foldKK.resid.xz`` (III, aVR, aVL, aVF as residuals
from their integer estimates out of I and II). Each payload is the int16 array's first
difference along time, low bytes then high bytes, xz-compressed. Decoded folds are int16
(N, 12, 1000) microvolts in the standard lead order, checked against ``decoded_sha256`` and cached
as ``.npy`` (memory-mapped on later loads). See ``shared/data/README.md`` for the format.

>>> from detak.data.paths import data_root
>>> info = fold_info(data_root() / "ptbxl" / "signals100", 1)
>>> info.n_records, info.shape
(2175, (2175, 12, 1000))
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import lzma
from pathlib import Path

import numpy as np

from detak.data.leads import STANDARD_LEADS
from detak.data.paths import DataNotFoundError, cache_dir, save_npy_atomic

INDEP_LEADS: tuple[str, ...] = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")
RESID_LEADS: tuple[str, ...] = ("III", "aVR", "aVL", "aVF")
CACHE_SUBDIR = "ptbxl100"


class CompactFormatError(ValueError):
    """A compact-format file is malformed, corrupted or truncated (the message names the file)."""


class ChecksumError(CompactFormatError):
    """Decoded samples do not hash to the ``decoded_sha256`` their fold's JSON promises."""


@dataclasses.dataclass(frozen=True)
class FoldInfo:
    """What ``foldKK.json`` says about one fold, and where its payloads are."""

    fold: int
    ecg_ids: np.ndarray
    shape: tuple[int, int, int]
    sha256: str
    json_path: Path
    indep_path: Path
    resid_path: Path

    @property
    def n_records(self) -> int:
        return int(self.shape[0])


def _stem(signals_dir: Path, fold: int) -> Path:
    return Path(signals_dir) / f"fold{int(fold):02d}"


def available_folds(signals_dir: Path | str) -> list[int]:
    """The folds that have a ``foldKK.json`` in ``signals_dir`` (empty if the folder is missing).

    >>> from detak.data.paths import data_root
    >>> available_folds(data_root() / "ptbxl" / "signals100")
    [1, 2, 3, 4, 5, 6, 7, 8, 9]
    """
    folder = Path(signals_dir)
    if not folder.is_dir():
        return []
    folds = []
    for p in folder.glob("fold*.json"):
        digits = p.stem[4:]
        if digits.isdigit():
            folds.append(int(digits))
    return sorted(folds)


def fold_info(signals_dir: Path | str, fold: int) -> FoldInfo:
    """Read and check ``foldKK.json``; `DataNotFoundError` if it or a payload is missing.

    >>> from detak.data.paths import data_root
    >>> info = fold_info(data_root() / "ptbxl" / "signals100", 9)
    >>> info.fold, len(info.ecg_ids) == info.n_records, info.indep_path.name
    (9, True, 'fold09.indep.xz')
    """
    stem = _stem(Path(signals_dir), fold)
    json_path = stem.with_name(stem.name + ".json")
    if not json_path.is_file():
        raise DataNotFoundError(f"fold {fold} of the compact PTB-XL signals not found: "
                                f"{json_path} does not exist")
    try:
        meta = json.loads(json_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CompactFormatError(f"{json_path}: not valid JSON ({exc})") from exc
    for field in ("ecg_ids", "decoded_shape", "decoded_sha256"):
        if field not in meta:
            raise CompactFormatError(f"{json_path}: field {field!r} is missing")
    ids = np.asarray(meta["ecg_ids"], dtype=np.int64)
    shape = tuple(int(s) for s in meta["decoded_shape"])
    if len(shape) != 3 or shape[1] != len(STANDARD_LEADS) or shape[0] != len(ids):
        raise CompactFormatError(
            f"{json_path}: decoded_shape {list(shape)} does not fit {len(ids)} ecg_ids "
            f"x {len(STANDARD_LEADS)} leads x samples")
    if "n_records" in meta and int(meta["n_records"]) != len(ids):
        raise CompactFormatError(f"{json_path}: n_records is {meta['n_records']} but ecg_ids "
                                 f"lists {len(ids)} records")
    if len(ids) > 1 and not np.all(np.diff(ids) > 0):
        raise CompactFormatError(f"{json_path}: ecg_ids are not strictly ascending")
    if "fold" in meta and int(meta["fold"]) != int(fold):
        raise CompactFormatError(f"{json_path}: field 'fold' is {meta['fold']}, expected {fold}")
    sha = str(meta["decoded_sha256"]).lower()
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise CompactFormatError(f"{json_path}: decoded_sha256 {sha!r} is not a SHA-256 hex digest")
    indep = stem.with_name(stem.name + ".indep.xz")
    resid = stem.with_name(stem.name + ".resid.xz")
    for p in (indep, resid):
        if not p.is_file():
            raise DataNotFoundError(f"fold {fold} of the compact PTB-XL signals is incomplete: "
                                    f"{p} does not exist")
    ids.setflags(write=False)
    return FoldInfo(int(fold), ids, shape, sha, json_path, indep, resid)  # type: ignore[arg-type]


def decode_payload(data: bytes, shape: tuple[int, ...], source: str = "payload") -> np.ndarray:
    """Decode one ``.xz`` payload into an int16 array of ``shape`` (time is the last axis).

    >>> x = np.array([[3, -1, 250]], dtype=np.int16)
    >>> d = np.diff(x, prepend=np.int16(0)).astype("<i2").ravel().view(np.uint8)
    >>> blob = lzma.compress(np.concatenate([d[0::2], d[1::2]]).tobytes())
    >>> decode_payload(blob, (1, 3)).tolist()
    [[3, -1, 250]]
    """
    try:
        raw = lzma.decompress(data)
    except lzma.LZMAError as exc:
        raise CompactFormatError(f"{source}: not a valid xz stream ({exc}); the file is corrupted "
                                 "or truncated") from exc
    n = int(np.prod(shape))
    if len(raw) != 2 * n:
        raise CompactFormatError(f"{source}: decompressed to {len(raw)} bytes, expected {2 * n} "
                                 f"for an int16 array of shape {tuple(shape)}")
    halves = np.frombuffer(raw, dtype=np.uint8)
    interleaved = np.empty(2 * n, dtype=np.uint8)
    interleaved[0::2] = halves[:n]  # low bytes
    interleaved[1::2] = halves[n:]  # high bytes
    diffs = interleaved.view("<i2").reshape(shape)
    # int16 cumulative sum wraps around exactly like the encoder's int16 differences did
    return np.cumsum(diffs, axis=-1, dtype=np.int16)


def combine_leads(indep: np.ndarray, resid: np.ndarray, source: str = "fold") -> np.ndarray:
    """Rebuild (N, 12, T) int16 in standard lead order from (N, 8, T) independent leads and
    (N, 4, T) residuals, in int32 with floor division, as the format defines.

    >>> i_ii = np.zeros((1, 8, 1), np.int16); i_ii[0, :2, 0] = (-3, 5)
    >>> combine_leads(i_ii, np.zeros((1, 4, 1), np.int16))[0, :6, 0].tolist()
    [-3, 5, 8, -1, -5, 7]
    """
    if indep.ndim != 3 or resid.ndim != 3 or indep.shape[1] != 8 or resid.shape[1] != 4 \
            or indep.shape[0] != resid.shape[0] or indep.shape[2] != resid.shape[2]:
        raise CompactFormatError(f"{source}: independent leads {indep.shape} and residuals "
                                 f"{resid.shape} do not fit (N, 8, T) and (N, 4, T)")
    n, _, t = indep.shape
    out = np.empty((n, 12, t), dtype=np.int16)
    lead_i = indep[:, 0].astype(np.int32)
    lead_ii = indep[:, 1].astype(np.int32)
    estimates = {
        "III": lead_ii - lead_i,
        "aVR": -((lead_i + lead_ii) // 2),
        "aVL": lead_i - lead_ii // 2,
        "aVF": lead_ii - lead_i // 2,
    }
    for j, name in enumerate(INDEP_LEADS):
        out[:, STANDARD_LEADS.index(name)] = indep[:, j]
    for j, name in enumerate(RESID_LEADS):
        value = estimates[name] + resid[:, j].astype(np.int32)
        if value.size and (value.min() < -32768 or value.max() > 32767):
            raise CompactFormatError(f"{source}: lead {name} leaves the int16 range after adding "
                                     "its residual; the residual payload is not consistent")
        out[:, STANDARD_LEADS.index(name)] = value
    return out


def array_sha256(array: np.ndarray) -> str:
    """SHA-256 hex digest of an array's bytes in C order (how ``decoded_sha256`` is defined).

    >>> array_sha256(np.zeros(0, np.int16))[:12]
    'e3b0c44298fc'
    """
    h = hashlib.sha256()
    arr = np.ascontiguousarray(array)
    flat = arr.reshape(-1)
    step = 1 << 22
    for start in range(0, flat.size, step):
        h.update(flat[start:start + step].tobytes())
    return h.hexdigest()


def check_sha256(array: np.ndarray, expected: str, source: str = "array") -> str:
    """Return the array's SHA-256; `ChecksumError` if it is not ``expected``.

    >>> empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    >>> check_sha256(np.zeros(0, np.int16), empty) == empty
    True
    """
    got = array_sha256(array)
    if got != expected.lower():
        raise ChecksumError(f"{source}: decoded samples hash to {got}, expected {expected} "
                            "(decoded_sha256); the data or the decoder is wrong")
    return got


def decode_fold(signals_dir: Path | str, fold: int, verify: bool = True) -> np.ndarray:
    """Decode fold ``fold`` to int16 (N, 12, 1000) µV (no cache); checks the SHA-256 if ``verify``.

    >>> from detak.data.paths import data_root
    >>> decode_fold(data_root() / "ptbxl" / "signals100", 9).shape   # about a second
    (2183, 12, 1000)
    """
    info = fold_info(signals_dir, fold)
    n, _, t = info.shape
    indep = decode_payload(info.indep_path.read_bytes(), (n, 8, t), str(info.indep_path))
    resid = decode_payload(info.resid_path.read_bytes(), (n, 4, t), str(info.resid_path))
    signals = combine_leads(indep, resid, f"fold {fold} in {info.json_path.parent}")
    if verify:
        check_sha256(signals, info.sha256, f"fold {fold} decoded from {info.json_path.parent}")
    return signals


def cache_path(info: FoldInfo, cache: Path | str | None = None) -> Path:
    """Where the decoded fold is cached: keyed by fold and ``decoded_sha256``, so a changed
    dataset never reuses a stale file.

    >>> from detak.data.paths import data_root
    >>> cache_path(fold_info(data_root() / "ptbxl" / "signals100", 1), "/c").name[:20]
    'ptbxl100_fold01_a6e3'
    """
    folder = Path(cache) if cache is not None else cache_dir() / CACHE_SUBDIR
    return folder / f"ptbxl100_fold{info.fold:02d}_{info.sha256}.npy"


def _load_cached(path: Path, info: FoldInfo) -> np.ndarray | None:
    if not path.is_file():
        return None
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError):
        return None
    if arr.dtype != np.int16 or tuple(arr.shape) != info.shape:
        return None
    return arr


def load_fold(signals_dir: Path | str, fold: int,
              cache: Path | str | bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``(ecg_ids, signals)`` of one fold: int16 (N, 12, 1000) µV, standard lead order.

    With ``cache=True`` (default) the fold is decoded and checksum-verified once, then written
    atomically to ``cache_dir()/ptbxl100/`` and memory-mapped (read-only) on every later call;
    a folder may be given instead, and ``cache=False`` decodes in memory every time.

    >>> from detak.data.paths import data_root
    >>> ids, x = load_fold(data_root() / "ptbxl" / "signals100", 1)
    >>> x.dtype, x.shape, int(ids[0])
    (dtype('int16'), (2175, 12, 1000), 32)
    """
    info = fold_info(signals_dir, fold)
    if cache is False:
        return info.ecg_ids, decode_fold(signals_dir, fold)
    path = cache_path(info, None if cache is True else Path(cache))
    arr = _load_cached(path, info)
    if arr is None:
        save_npy_atomic(path, decode_fold(signals_dir, fold, verify=True))
        arr = _load_cached(path, info)
        if arr is None:  # pragma: no cover - the file we just wrote is unreadable
            raise CompactFormatError(f"{path}: cache file written but cannot be read back")
    return info.ecg_ids, arr
