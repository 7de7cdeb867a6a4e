"""The label sets the CNNs can be trained on (``detak train --labels NAME``; issues 4 and 17).

* ``superclass`` (default, the shipped MI models): PTB-XL's 5 diagnostic superclasses (NORM,
  MI, STTC, CD, HYP) as `detak.data.ptbxl.PtbXl.labels` gives them; a record without one is
  unlabelled.
* ``rhythm``: the rhythm classes of the gradient-boosted rhythm classifier
  (`detak.models.rhythm_clf_data.CLASS_GROUPS`, the same groups: SVTAC = SVTAC or PSVT):
  SR, AFIB, AFLT, STACH, SBRAD, SARRH, SVTAC, BIGU, PACE, 1AVB. A record is positive for a
  class when its ``scp_codes`` carry a statement of the class's group, whatever the likelihood
  (PTB-XL gives rhythm statements likelihood 0, "stated, unquantified"); a record with none of
  them is unlabelled (dropped from training and selection, as records without a superclass
  are). TRIGU, 2AVB and 3AVB are left out (16, 12 and 12 records in folds 1-8), as the
  gradient-boosted classifier leaves them to the rules.

The class at index 1 is the set's *focus* class (MI; AFIB): the exported graph's fused
class-activation output ``cam_mi`` (`detak.export.cam.MI_INDEX`) is the map of that class, and
training logs its AUC each epoch.

>>> ls = label_set("rhythm")
>>> ls.vector({"AFIB": 0.0, "PVC": 100.0}).tolist()
[0, 1, 0, 0, 0, 0, 0, 0, 0, 0]
>>> ls.focus, ls.classes.index(ls.focus)
('AFIB', 1)
>>> label_set("beats")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
detak.models.label_sets.UnknownLabelSetError: unknown label set 'beats'; use one of superclass, ...
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from detak.data.ptbxl import SUPERCLASSES

__all__ = ["DEFAULT_LABELS", "LABEL_SETS", "LabelSet", "UnknownLabelSetError", "label_set"]

DEFAULT_LABELS = "superclass"
FOCUS_INDEX = 1


class UnknownLabelSetError(ValueError):
    """A label-set name that is not one of `LABEL_SETS`."""


@dataclasses.dataclass(frozen=True)
class LabelSet:
    """A multi-label target: class names, and for statement-based sets the PTB-XL statements
    that make each class positive (``groups``; None: the diagnostic superclasses)."""

    name: str
    classes: tuple[str, ...]
    groups: Mapping[str, tuple[str, ...]] | None
    description: str

    @property
    def focus(self) -> str:
        """The class at index 1 (see the module docstring)."""
        return self.classes[FOCUS_INDEX]

    def vector(self, scp_codes: Mapping[str, float]) -> np.ndarray:
        """0/1 per class (uint8) for one record's ``scp_codes`` (statement-based sets only)."""
        if self.groups is None:
            raise ValueError(f"label set {self.name!r} is read from PTB-XL's superclasses; "
                             "use labels(ptb, ids)")
        return np.array([int(any(s in scp_codes for s in self.groups[c])) for c in self.classes],
                        dtype=np.uint8)

    def labels(self, ptb: Any, ids: Iterable[int]) -> np.ndarray:
        """Targets (n, classes) uint8 of PTB-XL records ``ids`` (unlabelled rows all zero)."""
        if self.groups is None:
            return ptb.labels(ids, allow_unlabelled=True)
        arr = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, dtype=np.int64)
        codes = ptb.metadata.loc[arr, "scp_codes"]
        out = np.zeros((len(arr), len(self.classes)), dtype=np.uint8)
        for i, c in enumerate(codes):
            out[i] = self.vector(c)
        return out


def _rhythm() -> LabelSet:
    from detak.models.rhythm_clf_data import CLASS_GROUPS

    classes = ("SR", "AFIB", "AFLT", "STACH", "SBRAD", "SARRH", "SVTAC", "BIGU", "PACE", "1AVB")
    return LabelSet("rhythm", classes, {c: tuple(CLASS_GROUPS[c]) for c in classes},
                    "PTB-XL rhythm statements (any likelihood) as the rhythm classifier groups "
                    "them (SVTAC = SVTAC or PSVT), multi-hot; records with none dropped")


LABEL_SETS: dict[str, Any] = {
    "superclass": lambda: LabelSet(
        "superclass", SUPERCLASSES, None,
        "diagnostic superclasses (scp_statements.csv diagnostic_class), multi-hot, records "
        "without one dropped"),
    "rhythm": _rhythm,
}


def label_set(name: str) -> LabelSet:
    """The label set called ``name`` (`UnknownLabelSetError` otherwise)."""
    try:
        return LABEL_SETS[name]()
    except KeyError:
        raise UnknownLabelSetError(f"unknown label set {name!r}; use one of "
                                   f"{', '.join(LABEL_SETS)}") from None
