"""The representative set that calibrates int8 quantization (issue 5): a stratified, seeded
sample of PTB-XL training-fold records.

Population: the labelled records of the training folds (strat folds 1–8; never fold 9, on which
the quantized models are selected, nor fold 10). Strata: the combination of the 5 diagnostic
superclasses a record carries (NORM, MI, STTC, CD, HYP as a 5-bit pattern; 21 combinations
occur in folds 1–8). Allocation of ``size`` records:

1. every combination present gets one record (when ``size`` is at least the number of
   combinations), so rare label mixes are seen by the activation observers;
2. the rest is shared in proportion to the strata's sizes by the largest-remainder method
   (ties: the larger stratum, then the lower pattern), capped at each stratum's size;
3. within a stratum, records are drawn without replacement by ``numpy.random.default_rng(seed)``
   — one generator, strata visited in ascending pattern order — so the set depends only on
   ``size``, ``seed`` and the PTB-XL metadata.

Signals are S1's filtered 100 Hz inputs (`detak.models.cnn_data.preprocess_array`, the same
numbers as the training arrays), not standardised: the exporter standardises them with each
model's own statistics.

>>> ids = representative_ids(300, seed=0)
>>> len(ids), bool((ids == representative_ids(300, seed=0)).all()), bool((ids[1:] > ids[:-1]).all())
(300, True, True)
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["DEFAULT_SIZE", "DEFAULT_SEED", "CalibrationError", "label_patterns", "allocate",
           "representative_ids", "representative_set", "ids_digest", "describe"]

DEFAULT_SIZE = 300
DEFAULT_SEED = 0


class CalibrationError(ValueError):
    """A calibration set cannot be drawn as asked (size, folds); the message says why."""


def label_patterns(y: np.ndarray) -> np.ndarray:
    """The stratum of each record: its multi-hot labels (N, 5) read as a 5-bit number
    (NORM = 1, MI = 2, STTC = 4, CD = 8, HYP = 16).

    >>> label_patterns(np.array([[1, 0, 0, 0, 0], [0, 1, 1, 0, 0]])).tolist()
    [1, 6]
    """
    arr = np.asarray(y)
    if arr.ndim != 2:
        raise CalibrationError(f"labels must be (records, classes), got shape {arr.shape}")
    return (arr.astype(np.int64) << np.arange(arr.shape[1])).sum(axis=1)


def allocate(counts: Sequence[int], size: int) -> np.ndarray:
    """Records to draw from each stratum: one per non-empty stratum when ``size`` allows, the
    rest proportional to ``counts`` by largest remainder, never more than a stratum holds.

    >>> allocate([1000, 100, 10, 1], 20).tolist()
    [15, 3, 1, 1]
    >>> int(allocate([5, 5], 10).sum()), allocate([5, 5], 3).tolist()
    (10, [2, 1])
    """
    c = np.asarray(counts, dtype=np.int64)
    if size < 1:
        raise CalibrationError(f"calibration size must be at least 1, got {size}")
    if size > c.sum():
        raise CalibrationError(f"calibration size {size} exceeds the {int(c.sum())} records "
                               "available")
    out = np.zeros_like(c)
    nonempty = c > 0
    if size >= int(nonempty.sum()):
        out[nonempty] = 1
    left = size - int(out.sum())
    while left > 0:  # more than once only when a stratum runs out of records
        room = c - out
        share = np.where(room > 0, c, 0).astype(np.float64)
        quota = share / share.sum() * left
        base = np.minimum(np.floor(quota).astype(np.int64), room)
        extra = left - int(base.sum())
        open_ = np.flatnonzero(base < room)
        order = sorted(open_, key=lambda j: (-(quota[j] - base[j]), -c[j], j))
        base[order[:extra]] += 1
        out += base
        left = size - int(out.sum())
    return out


def _population(folds: Sequence[int], ptb: Any) -> tuple[np.ndarray, np.ndarray]:
    from detak.models.cnn_data import TEST_FOLD, VAL_FOLD

    bad = sorted({int(f) for f in folds} & {VAL_FOLD, TEST_FOLD})
    if bad:
        raise CalibrationError(f"calibration records come from training folds only; fold(s) "
                               f"{bad} are used for selection (9) or testing (10)")
    ids = ptb.labelled_ids([int(f) for f in folds])
    if len(ids) == 0:
        raise CalibrationError(f"no labelled records in folds {list(folds)}")
    return ids, ptb.labels(ids)


def _default_ptb() -> Any:
    from detak.data.sources import _ptbxl  # one parsed PTB-XL per process

    return _ptbxl()


def representative_ids(size: int = DEFAULT_SIZE, seed: int = DEFAULT_SEED,
                       folds: Sequence[int] | None = None, ptb: Any = None) -> np.ndarray:
    """Ascending ecg_ids of the calibration set (see the module docstring). Reads only the
    PTB-XL metadata.

    >>> representative_ids(10, folds=[9])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    detak.export.representative.CalibrationError: calibration records come from ...
    """
    from detak.models.cnn_data import TRAIN_FOLDS

    ptb = ptb or _default_ptb()
    ids, y = _population(TRAIN_FOLDS if folds is None else folds, ptb)
    patterns = label_patterns(y)
    strata, counts = np.unique(patterns, return_counts=True)
    take = allocate(counts, int(size))
    rng = np.random.default_rng(int(seed))
    chosen = [rng.choice(ids[patterns == s], size=int(k), replace=False)
              for s, k in zip(strata, take, strict=True) if k > 0]
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def representative_set(size: int = DEFAULT_SIZE, seed: int = DEFAULT_SEED,
                       folds: Sequence[int] | None = None, ptb: Any = None) -> Any:
    """The calibration records as `detak.models.cnn_data.FoldArrays`: filtered float32 mV
    (size, 12, 1000), not standardised, with their labels; records in ascending ecg_id.

    >>> cs = representative_set(24, seed=1)
    >>> cs.x.shape, cs.x.dtype, bool(cs.labelled.all())
    ((24, 12, 1000), dtype('float32'), True)
    """
    from detak.models.cnn_data import FoldArrays, _fold_checksum, _uv_to_mv, preprocess_array

    ptb = ptb or _default_ptb()
    ids = representative_ids(size, seed, folds, ptb)
    folds_of = ptb.metadata.loc[ids, "strat_fold"].to_numpy()
    x = np.empty((len(ids), 12, 1000), dtype=np.float32)
    checksums: dict[int, str] = {}
    for fold in np.unique(folds_of):
        fids, raw = ptb.load_fold(int(fold))
        rows = np.searchsorted(fids, ids[folds_of == fold])
        x[folds_of == fold] = preprocess_array(_uv_to_mv(raw[rows]))
        checksums[int(fold)] = _fold_checksum(fids, raw)
    y = ptb.labels(ids)
    return FoldArrays(ids=ids, x=x, y=y, labelled=y.sum(axis=1) > 0,
                      folds=tuple(int(f) for f in np.unique(folds_of)), checksums=checksums)


def ids_digest(ids: np.ndarray) -> str:
    """SHA-256 of the ids (int64 little-endian): names a calibration set in a model card.

    >>> ids_digest(np.array([1, 2, 3]))[:12]
    'e2e2033ae7e1'
    """
    return hashlib.sha256(np.ascontiguousarray(ids, dtype="<i8").tobytes()).hexdigest()


def describe(ids: np.ndarray, size: int, seed: int, ptb: Any = None) -> dict[str, Any]:
    """A JSON-able description of a calibration set for the export card."""
    from detak.models.cnn_data import CLASSES, TRAIN_FOLDS

    ptb = ptb or _default_ptb()
    y = ptb.labels(ids)
    return {"size": int(size), "seed": int(seed), "folds": list(TRAIN_FOLDS),
            "strata": "5-superclass label combination; one record per combination, the rest "
                      "proportional (largest remainder); numpy default_rng(seed)",
            "ids_sha256": ids_digest(ids), "first_ids": [int(i) for i in ids[:10]],
            "label_counts": dict(zip(CLASSES, y.sum(axis=0).tolist(), strict=True)),
            "combinations": int(len(np.unique(label_patterns(y))))}
