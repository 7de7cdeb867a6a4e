"""Labelled screenings from the clinic (``detak server export-labels``) as CNN inputs.

Reads ``DIR/labels.csv`` (format ``detak-labels/1``, written by
`detak.server.export_labels`): each row names a WFDB record under ``DIR`` and its
multi-hot PTB-XL superclasses (``NORM MI STTC CD HYP``) from the doctor's signed verdict, and
the ``group`` (the resident) that held-out splits keep together. Rows without any superclass
(a verdict of rhythm statements only) are skipped, as PTB-XL's records without one are. Each
recording goes through the models' preprocessing (`detak.models.cnn_data.preprocess_recording`,
unstandardised); a record longer than 10 s contributes its first 10-s window.

>>> groups = ["r1", "r1", "r2", "r3", "r4", "r5"]      # r1 has two screenings
>>> train, held = split_groups(groups, 0.4, seed=0)
>>> len({groups[i] for i in held}), {groups[i] for i in held} & {groups[i] for i in train}
(2, set())
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from detak.data.ptbxl import SUPERCLASSES

LABELS_FILE = "labels.csv"


class ExtraLabelsError(ValueError):
    """The labelled folder cannot be read (the message names the file and row)."""


@dataclasses.dataclass
class ExtraArrays:
    """Labelled extra records: ``x`` (N, 12, 1000) float32 preprocessed, ``y`` (N, 5) 0/1,
    ``groups`` (the resident of each), ``records`` (the screening uuids)."""

    x: np.ndarray
    y: np.ndarray
    groups: list[str]
    records: list[str]

    def __len__(self) -> int:
        return len(self.records)

    def take(self, idx: Sequence[int]) -> ExtraArrays:
        idx = list(idx)
        return ExtraArrays(self.x[idx], self.y[idx], [self.groups[i] for i in idx],
                           [self.records[i] for i in idx])


def read_labels(folder: str | Path) -> list[dict[str, str]]:
    """The rows of ``folder/labels.csv`` (comment lines starting with ``#`` skipped)."""
    path = Path(folder) / LABELS_FILE
    if not path.is_file():
        raise ExtraLabelsError(f"{path}: no labels file (write one with detak server "
                               "export-labels)")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(line for line in f if not line.startswith("#"))
        rows = list(reader)
        missing = {"record", "group", *SUPERCLASSES} - set(reader.fieldnames or ())
    if missing:
        raise ExtraLabelsError(f"{path}: columns missing: {', '.join(sorted(missing))}")
    return rows


def load_extra(folder: str | Path) -> ExtraArrays:
    """Read and preprocess every labelled record of ``folder`` (see the module docstring)."""
    from detak.data.wfdb_io import read_wfdb
    from detak.models.cnn_data import N_SAMPLES, preprocess_recording

    folder = Path(folder)
    xs, ys, groups, records = [], [], [], []
    for i, row in enumerate(read_labels(folder), start=2):
        try:
            y = [int(row[c]) for c in SUPERCLASSES]
        except (TypeError, ValueError):
            raise ExtraLabelsError(f"{folder / LABELS_FILE} row {i}: superclass columns "
                                   "must be 0 or 1") from None
        if not any(y):
            continue
        rec_path = (folder / row["record"]).resolve()
        if not rec_path.is_relative_to(folder.resolve()):
            raise ExtraLabelsError(f"{folder / LABELS_FILE} row {i}: record outside the folder")
        windows = preprocess_recording(read_wfdb(rec_path))
        xs.append(windows[0])
        ys.append(y)
        groups.append(row["group"] or row.get("screening") or str(i))
        records.append(row.get("screening") or row["record"])
    x = np.stack(xs).astype(np.float32) if xs else np.empty((0, 12, N_SAMPLES), np.float32)
    return ExtraArrays(x, np.array(ys, dtype=np.int8).reshape(-1, len(SUPERCLASSES)), groups,
                       records)


def split_groups(groups: Sequence[str], holdout: float, seed: int = 0
                 ) -> tuple[list[int], list[int]]:
    """(train indices, held-out indices): whole groups (residents) held out, about
    ``holdout`` of them (at least one when there are two or more), chosen by a hash of the
    group and ``seed`` — stable when screenings are added."""
    names = sorted(set(groups))
    if len(names) < 2 or holdout <= 0:
        return list(range(len(groups))), []
    n_out = min(len(names) - 1, max(1, math.ceil(holdout * len(names))))
    ranked = sorted(names, key=lambda g: hashlib.sha256(f"{seed}/{g}".encode()).hexdigest())
    out = set(ranked[:n_out])
    return ([i for i, g in enumerate(groups) if g not in out],
            [i for i, g in enumerate(groups) if g in out])
