"""PTB-XL folds and single recordings → the arrays the CNNs read (issue 4).

The input of every CNN is S1's chain at 100 Hz: baseline removal (0.5 Hz low-pass subtracted)
and a 40 Hz zero-phase low-pass (`detak.signal.filters`), then global z-normalisation with a
`Standardizer` fitted on the training folds (1–8) only and saved with the model. Records at
other rates are resampled to 100 Hz first (PTB-XL's own 100 Hz files are downsampled 500 Hz
recordings), so a 500 Hz recording and its 100 Hz version give the same input.

Filtered folds (float32 mV, not yet standardised; every record of the fold, labelled or not)
are cached as ``.npy`` in ``cache_dir()/cnn_inputs``, keyed by the SHA-256 of the raw int16
fold and its ecg_ids (the data checksum) and by `preprocessing_key` (the version, the
cut-offs and a hash of ``filters.py``): change the data or the filters and the fold is filtered
again. A fold takes ~4 s to filter on one core.

Fold 10 is the benchmark's test fold: nothing here selects on it, and it works only where a
full PTB-XL copy is given (`FoldNotAvailableError` otherwise).

>>> fa = fold_arrays(9)
>>> fa.x.shape, fa.x.dtype, fa.y.shape, int(fa.labelled.sum())
((2183, 12, 1000), dtype('float32'), (2183, 5), 2146)
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from detak.data.leads import STANDARD_LEADS
from detak.data.paths import cache_dir, save_npy_atomic
from detak.data.ptbxl import SUPERCLASSES, FoldNotAvailableError, PtbXl
from detak.data.recording import MissingLeadError, Recording
from detak.models.label_sets import DEFAULT_LABELS, label_set
from detak.signal import filters
from detak.signal.filters import Standardizer

__all__ = ["CLASSES", "MODEL_FS", "N_SAMPLES", "TRAIN_FOLDS", "VAL_FOLD", "TEST_FOLD",
           "PREPROCESSING_VERSION", "FoldArrays", "FoldNotAvailableError", "InputError",
           "ModelLeadsError", "fold_arrays", "keep_leads", "split_arrays", "preprocess_array",
           "preprocess_recording", "fit_standardizer", "preprocessing_key"]

CLASSES: tuple[str, ...] = SUPERCLASSES
MODEL_FS = 100.0
N_SAMPLES = 1000  # 10 s at 100 Hz
TRAIN_FOLDS: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8)
VAL_FOLD = 9
TEST_FOLD = 10
PREPROCESSING_VERSION = "s1-100hz/1"
PREPROCESSING = (f"resample to {MODEL_FS:g} Hz (polyphase) if needed; baseline removal "
                 f"({filters.BASELINE_CUTOFF_HZ:g} Hz low-pass subtracted); "
                 f"{filters.LOWPASS_CUTOFF_HZ:g} Hz zero-phase Butterworth low-pass; global "
                 "z-normalisation with mean/SD of the training folds")
_CHUNK = 256
CACHE_SUBDIR = "cnn_inputs"


class InputError(ValueError):
    """A recording cannot be turned into model input (rate below 100 Hz, shorter than 10 s,
    NaN samples); the message names the record."""


class ModelLeadsError(MissingLeadError):
    """The recording lacks leads the model needs; names the record and every missing lead."""

    def __init__(self, record: str, missing: Sequence[str], available: Sequence[str]) -> None:
        KeyError.__init__(self, f"{record}: the model needs the 12 standard leads; missing "
                                f"{', '.join(missing)} (the record has: "
                                f"{', '.join(available) or 'no leads'})")
        self.lead = missing[0]
        self.missing = list(missing)
        self.record = record
        self.available = list(available)

    def __reduce__(self):  # noqa: ANN204 - picklable across worker processes
        return (type(self), (self.record, self.missing, self.available))


def preprocessing_key() -> str:
    """Version, cut-offs and a hash of ``detak/signal/filters.py``: the part of the cache key
    that changes when the preprocessing does.

    >>> preprocessing_key().startswith("s1-100hz-1-")
    True
    """
    h = hashlib.sha256(Path(filters.__file__).read_bytes())
    h.update(f"{filters.BASELINE_CUTOFF_HZ}|{filters.LOWPASS_CUTOFF_HZ}|{MODEL_FS}".encode())
    return f"{PREPROCESSING_VERSION.replace('/', '-')}-{h.hexdigest()[:12]}"


def preprocess_array(x_mv: np.ndarray, fs: float = MODEL_FS) -> np.ndarray:
    """S1's filters (baseline removal, then 40 Hz low-pass) on (..., n_samples) millivolts,
    in chunks of records; float32 out. Row by row it equals `filters.clean` of each record.

    >>> x = np.zeros((3, 12, 1000), np.float32); x[..., 500] = 1.0
    >>> y = preprocess_array(x)
    >>> y.shape, y.dtype, bool(abs(y.sum()) < 1.0)
    ((3, 12, 1000), dtype('float32'), True)
    """
    arr = np.asarray(x_mv)
    if arr.ndim < 3:
        return filters.lowpass(filters.remove_baseline(arr, fs), fs)
    out = np.empty(arr.shape, dtype=np.float32)
    for s in range(0, len(arr), _CHUNK):
        chunk = np.asarray(arr[s:s + _CHUNK], dtype=np.float32)
        out[s:s + _CHUNK] = filters.lowpass(filters.remove_baseline(chunk, fs), fs)
    return out


def _default_ptb() -> PtbXl:
    from detak.data.sources import _ptbxl  # one parsed PTB-XL per process

    return _ptbxl()


def _uv_to_mv(raw: np.ndarray) -> np.ndarray:
    # the same float32 arithmetic as PtbXl.record, so fold arrays equal per-record cleaning
    return np.asarray(raw).astype(np.float32) / np.float32(1000.0)


@dataclasses.dataclass
class FoldArrays:
    """Records of one or more PTB-XL folds, filtered (float32 mV (N, 12, 1000), not
    standardised), with multi-hot labels (N, 5) uint8 (all zero where ``labelled`` is False)."""

    ids: np.ndarray
    x: np.ndarray
    y: np.ndarray
    labelled: np.ndarray
    folds: tuple[int, ...]
    checksums: dict[int, str]

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, mask_or_index: np.ndarray) -> FoldArrays:
        """The records selected by a boolean mask or an index array (arrays are copied)."""
        return dataclasses.replace(self, ids=self.ids[mask_or_index],
                                   x=np.asarray(self.x[mask_or_index]),
                                   y=self.y[mask_or_index], labelled=self.labelled[mask_or_index])


def _fold_checksum(ids: np.ndarray, raw: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(ids, dtype="<i8").tobytes())
    h.update(str(raw.shape).encode())
    h.update(np.ascontiguousarray(raw, dtype="<i2").tobytes())
    return h.hexdigest()


def fold_arrays(fold: int, *, ptb: PtbXl | None = None, cache: bool = True,
                labels: str = DEFAULT_LABELS) -> FoldArrays:
    """Every record of strat fold ``fold``, filtered, with labels (see the module docstring)
    of the label set ``labels`` (`detak.models.label_sets`; ``y`` is (N, its classes)).

    `FoldNotAvailableError` where the fold's signals are not in this copy (fold 10 in the shared
    copy).
    """
    ptb = ptb or _default_ptb()
    ids, raw = ptb.load_fold(int(fold))  # FoldNotAvailableError if absent
    checksum = _fold_checksum(ids, raw)
    path = (cache_dir() / CACHE_SUBDIR /
            f"ptbxl100_fold{int(fold):02d}_{checksum[:16]}_{preprocessing_key()}.npy")
    x = None
    if cache and path.is_file():
        try:
            x = np.load(path, mmap_mode="r", allow_pickle=False)
            if x.shape != raw.shape or x.dtype != np.float32:
                x = None
        except (ValueError, OSError, EOFError):
            x = None
    if x is None:
        x = preprocess_array(_uv_to_mv(raw))
        if cache:
            save_npy_atomic(path, x)
            x = np.load(path, mmap_mode="r", allow_pickle=False)
    y = label_set(labels).labels(ptb, ids)
    return FoldArrays(ids=np.asarray(ids, dtype=np.int64), x=x, y=y, labelled=y.sum(axis=1) > 0,
                      folds=(int(fold),), checksums={int(fold): checksum})


def split_arrays(folds: Sequence[int], *, max_records: int | None = None,
                 labelled_only: bool = True, ptb: PtbXl | None = None,
                 cache: bool = True, labels: str = DEFAULT_LABELS) -> FoldArrays:
    """The records of ``folds`` (in fold order, ascending ecg_id within a fold) as one in-memory
    `FoldArrays`; only labelled records unless ``labelled_only=False``.

    ``max_records`` keeps the first N records in that order (smoke runs): only the folds they
    come from are read, and only those records are filtered (no fold cache is written).
    ``labels`` names the label set (`detak.models.label_sets`) that ``y`` and "labelled" follow.

    >>> s = split_arrays([9], max_records=20)
    >>> len(s), s.folds, bool(s.labelled.all())
    (20, (9,), True)
    """
    ptb = ptb or _default_ptb()
    targets = label_set(labels)  # UnknownLabelSetError before any data is read
    if max_records is not None and max_records < 1:
        raise ValueError(f"max_records must be at least 1, got {max_records}")
    parts: list[FoldArrays] = []
    left = max_records
    for fold in folds:
        if left is not None and left <= 0:
            break
        if left is None:
            fa = fold_arrays(fold, ptb=ptb, cache=cache, labels=labels)
            keep = fa.labelled if labelled_only else np.ones(len(fa), bool)
            parts.append(fa.subset(keep))
            continue
        ids, raw = ptb.load_fold(int(fold))
        y = targets.labels(ptb, ids)
        lab = y.sum(axis=1) > 0
        idx = np.flatnonzero(lab if labelled_only else np.ones(len(ids), bool))[:left]
        parts.append(FoldArrays(ids=np.asarray(ids[idx], np.int64),
                                x=preprocess_array(_uv_to_mv(raw[idx])), y=y[idx],
                                labelled=lab[idx], folds=(int(fold),),
                                checksums={int(fold): _fold_checksum(ids, raw)}))
        left -= len(idx)
    if not parts:
        raise ValueError(f"no records selected from folds {list(folds)}")
    checksums: dict[int, str] = {}
    for p in parts:
        checksums.update(p.checksums)
    return FoldArrays(ids=np.concatenate([p.ids for p in parts]),
                      x=np.concatenate([np.asarray(p.x) for p in parts]),
                      y=np.concatenate([p.y for p in parts]),
                      labelled=np.concatenate([p.labelled for p in parts]),
                      folds=tuple(f for p in parts for f in p.folds), checksums=checksums)


def keep_leads(x: np.ndarray, leads: Sequence[str] | None) -> np.ndarray:
    """Zero every lead of ``x`` (N, 12, L) in `STANDARD_LEADS` order but ``leads``, in place
    (``x`` must be writable); returns ``x``. ``None`` keeps all 12. A one-lead model reads the
    12-channel input with the other 11 leads at zero (before standardisation), so the exporter,
    the int8 calibration and the runtimes stay the 12-lead ones.

    >>> x = np.ones((1, 12, 3), np.float32)
    >>> keep_leads(x, ["II"]).sum(axis=(0, 2)).tolist()[:3]
    [0.0, 3.0, 0.0]
    >>> keep_leads(x, ["X"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: unknown lead(s) X; use the standard leads I, II, III, aVR, ...
    """
    if leads is None:
        return x
    bad = [lead for lead in leads if lead not in STANDARD_LEADS]
    if bad or not leads:
        raise ValueError(f"unknown lead(s) {', '.join(bad) or '(none given)'}; use the standard "
                         f"leads {', '.join(STANDARD_LEADS)}")
    drop = [i for i, lead in enumerate(STANDARD_LEADS) if lead not in leads]
    for s in range(0, len(x), _CHUNK):
        x[s:s + _CHUNK, drop] = 0.0
    return x


def fit_standardizer(x: np.ndarray) -> Standardizer:
    """Global mean and (population) SD of ``x`` (N, leads, samples), accumulated in float64
    chunk by chunk — the same numbers as ``Standardizer.fit(x)`` without a float64 copy of
    the whole training set.

    >>> x = np.random.default_rng(0).normal(2.0, 3.0, (600, 2, 50)).astype(np.float32)
    >>> a, b = fit_standardizer(x), Standardizer.fit(x)
    >>> bool(np.isclose(a.mean[0], b.mean[0]) and np.isclose(a.std[0], b.std[0]))
    True
    """
    n = x.size
    if n == 0:
        raise ValueError("cannot fit a standardizer on an empty array")
    total = 0.0
    for s in range(0, len(x), _CHUNK):
        total += float(np.asarray(x[s:s + _CHUNK], dtype=np.float64).sum())
    mean = total / n
    sq = 0.0
    for s in range(0, len(x), _CHUNK):
        sq += float(((np.asarray(x[s:s + _CHUNK], dtype=np.float64) - mean) ** 2).sum())
    return Standardizer([mean], [float(np.sqrt(sq / n))], False)


def preprocess_recording(rec: Recording, standardizer: Standardizer | None = None) -> np.ndarray:
    """One recording → model input windows (n_windows, 12, 1000) float32.

    The 12 standard leads are taken in order (`ModelLeadsError` names the record and the
    missing leads), the record is resampled to 100 Hz (any rate ≥ 100 Hz; lower →
    `InputError`), filtered, cut into consecutive 10-s windows (the last one aligned with the
    end of the record when the length is not a multiple of 10 s; records shorter than 10 s →
    `InputError`) and standardised if a ``standardizer`` is given. Predictions average the
    windows' probabilities.

    >>> from detak.data.ludb import load_ludb
    >>> preprocess_recording(load_ludb(1).recording).shape   # 10 s at 500 Hz
    (1, 12, 1000)
    """
    name = rec.name or "recording"
    missing = [lead for lead in STANDARD_LEADS if not rec.has_lead(lead)]
    if missing:
        raise ModelLeadsError(name, missing, rec.leads)
    fs = float(rec.fs)
    if not np.isfinite(fs) or fs <= 0:
        raise InputError(f"{name}: sample rate missing or invalid ({rec.fs})")
    if fs < MODEL_FS - 1e-6:
        raise InputError(f"{name}: sample rate {fs:g} Hz is below the model's {MODEL_FS:g} Hz; "
                         "the CNNs need recordings at 100 Hz or more")
    x = rec.select(STANDARD_LEADS).signal
    if not np.all(np.isfinite(x)):
        raise InputError(f"{name}: signal contains NaN or inf samples; fill or cut gaps first")
    if abs(fs - MODEL_FS) > 1e-6:
        x = filters.resample(x, fs, MODEL_FS)
    n = x.shape[-1]
    if n < N_SAMPLES:
        raise InputError(f"{name}: {n / MODEL_FS:.2f} s long; the model needs at least "
                         f"{N_SAMPLES / MODEL_FS:g} s")
    x = preprocess_array(x)
    starts = list(range(0, n - N_SAMPLES + 1, N_SAMPLES))
    if starts[-1] + N_SAMPLES < n:
        starts.append(n - N_SAMPLES)
    windows = np.stack([x[:, s:s + N_SAMPLES] for s in starts])
    if standardizer is not None:
        windows = standardizer.transform(windows)
    return windows.astype(np.float32)
