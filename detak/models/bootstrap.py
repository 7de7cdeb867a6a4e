"""Patient bootstrap: resample patients with replacement, all of a patient's records together.

numpy only (the kiosk may import it). One place for what the benchmarks and the operating-point
tool each wrote before (teacher_ensemble, mi_subgroups, mi_ludb — records as their own
"patients" — and `detak.models.operating_point.patient_bootstrap`): the draws are unchanged,
so their figures are too.

* `patient_groups`: the record indices of each patient (patients in sorted order, each
  patient's records in their original order).
* `patient_resamples`: ``n`` resamples as record-index arrays: each draws as many patients as
  there are, uniformly with replacement (``rng.integers``), and concatenates their records.
  ``valid(idx)`` rejects a resample (e.g. one without a positive); ``redraw=True`` draws
  again until ``n`` are accepted, ``redraw=False`` makes ``n`` draws and yields the accepted
  ones.

>>> [g.tolist() for g in patient_groups(np.array([7, 3, 7, 5]))]
[[1], [3], [0, 2]]
>>> [idx.tolist() for idx in patient_resamples(np.array([7, 3, 7, 5]), 2, seed=0)]
[[0, 2, 3, 3], [1, 1, 1]]
>>> y = np.array([0, 1, 0, 1])
>>> def mixed(i): return 0 < y[i].sum() < len(i)
>>> ok = list(patient_resamples(np.arange(4), 5, seed=1, valid=mixed))
>>> len(ok), all(mixed(i) for i in ok)
(5, True)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np


def patient_groups(patients: np.ndarray) -> list[np.ndarray]:
    """Record indices of each patient (patients sorted; records in their original order)."""
    _, inv = np.unique(np.asarray(patients), return_inverse=True)
    order = np.argsort(inv, kind="stable")
    return np.split(order, np.flatnonzero(np.diff(inv[order])) + 1)


def patient_resamples(patients: np.ndarray, n: int, seed: int = 0, *,
                      valid: Callable[[np.ndarray], bool] | None = None,
                      redraw: bool = True) -> Iterator[np.ndarray]:
    """``n`` patient resamples as record-index arrays (see the module docstring)."""
    groups = patient_groups(patients)
    rng = np.random.default_rng(seed)
    accepted = drawn = 0
    while (accepted if redraw else drawn) < n:
        idx = np.concatenate([groups[i] for i in rng.integers(0, len(groups), len(groups))])
        drawn += 1
        if valid is not None and not valid(idx):
            continue
        accepted += 1
        yield idx
