"""`Recording`: the calibrated multi-lead ECG that crosses every boundary after calibration.

>>> import numpy as np
>>> rec = Recording(np.zeros((2, 500)), fs=250.0, leads=["ii", "AVR"])
>>> rec.leads, rec.n_samples, rec.duration_s
(('II', 'aVR'), 500, 2.0)
>>> rec.lead("aVR").shape
(500,)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np

from detak.data.leads import equivalent_standard_lead, normalize_lead_name


class MissingLeadError(KeyError):
    """A lead a caller asked for is not in the recording."""

    def __init__(self, lead: str, available: Sequence[str], name: str = "") -> None:
        where = f" in {name}" if name else ""
        super().__init__(f"lead {lead!r} not found{where}; available leads: {', '.join(available)}")
        self.lead = lead

    def __str__(self) -> str:  # KeyError quotes its message; we want it readable
        return str(self.args[0])


@dataclasses.dataclass(eq=False)
class Recording:
    """An ECG in millivolts: ``signal`` is float32 (n_leads, n_samples).

    Attributes:
        signal: float32 array (n_leads, n_samples), millivolts.
        fs: sample rate in Hz.
        leads: lead names, normalised (I, II, III, aVR, aVL, aVF, V1–V6, or device names).
        name: record name (file stem, ``ptbxl:123``...).
        start_time: when the recording started, if known.
        device_id: the device that recorded it, if known.
        calibration: the calibration profile used to turn counts into millivolts, if known.
        meta: anything else (age, sex, labels, source file, flagged gaps...), JSON-serialisable.
    """

    signal: np.ndarray
    fs: float
    leads: Sequence[str]
    name: str = ""
    start_time: datetime | None = None
    device_id: str | None = None
    calibration: str | None = None
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        sig = np.asarray(self.signal, dtype=np.float32)
        if sig.ndim == 1:
            sig = sig[np.newaxis, :]
        if sig.ndim != 2:
            raise ValueError(f"{self.name or 'recording'}: signal must be 2-D (leads, samples), "
                             f"got shape {sig.shape}")
        self.signal = np.ascontiguousarray(sig)
        self.leads = tuple(normalize_lead_name(str(lead)) for lead in self.leads)
        if len(self.leads) != sig.shape[0]:
            raise ValueError(f"{self.name or 'recording'}: {len(self.leads)} lead names for "
                             f"{sig.shape[0]} signal rows")
        self.fs = float(self.fs) if self.fs is not None else float("nan")

    @property
    def n_leads(self) -> int:
        return int(self.signal.shape[0])

    @property
    def n_samples(self) -> int:
        return int(self.signal.shape[1])

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.fs

    def index(self, lead: str) -> int:
        """Row index of ``lead``; a modified lead (MLII) answers for its standard lead (II)."""
        wanted = normalize_lead_name(lead)
        if wanted in self.leads:
            return self.leads.index(wanted)
        for i, have in enumerate(self.leads):
            if equivalent_standard_lead(have) == wanted:
                return i
        raise MissingLeadError(lead, self.leads, self.name)

    def lead(self, lead: str) -> np.ndarray:
        """The samples of one lead (a view)."""
        return self.signal[self.index(lead)]

    def has_lead(self, lead: str) -> bool:
        try:
            self.index(lead)
        except MissingLeadError:
            return False
        return True

    def select(self, leads: Sequence[str]) -> Recording:
        """A new recording with only ``leads``, in that order (missing → `MissingLeadError`)."""
        rows = [self.index(lead) for lead in leads]
        return self.replace(signal=self.signal[rows], leads=[self.leads[r] for r in rows])

    def replace(self, **changes: Any) -> Recording:
        """A copy with some fields changed (``rec.replace(signal=..., fs=...)``)."""
        return dataclasses.replace(self, **changes)
