"""`Screening`: one resident's screening as the kiosk stores it, the report shows it and sync
sends it (docs/architecture.md, "The types that cross boundaries").

Plain JSON inside: every field is a JSON value (numbers, text, lists, dicts, null), so
``Screening.from_dict(s.to_dict()) == s`` and ``json.dumps(s.to_dict())`` always works. Field by
field:

* ``id`` (uuid4 hex), ``created_at`` (UTC, ISO 8601), ``resident_id``, ``source`` (what was
  screened: a source string or a device URL), ``lang`` (``id``/``en``: the language of every
  text in the record);
* ``recording``: ``name``, ``fs``, ``leads``, ``duration_s``, ``derived_leads``, ``gaps``;
* ``quality``: ``verdict`` (ok / warn / reject), ``reasons`` (plain sentences in ``lang`` with
  what to do), ``details`` (one technical line per reason in ``lang``), ``issues`` (the reasons
  as codes with parameters: `detak.signal.quality.REASON_CODES`), ``gaps``;
* ``intervals``: the ``detak intervals`` keys (``rr_ms`` … ``hr_bpm``; null when not measured)
  and ``reasons`` (why a value is null); empty values and a reason when rejected;
* ``fiducials``: beat times (s) and wave boundaries (ms), for drawing where intervals were
  measured;
* ``rhythm``: ``s3_label``, ``clinical_label`` (with ``*_text`` in ``lang``), ``reasons`` (text
  in ``lang``), ``interval_findings`` (structured: rule set, code, parameter, value, label),
  ``findings`` (the rhythm findings of issue 17: code, source, probability, urgency, reasons in
  both languages), ``features`` / ``feature_units`` / ``feature_reasons`` (the rhythm feature
  values behind them), ``lead``. Screenings stored before issue 17 have the interval findings
  at ``findings``; read both through `detak.kiosk.rhythm_read`;
* ``nb``: ``label``, ``probability``, ``probabilities``, ``model`` (or label null + ``reason``);
* ``mi``: ``probability``, ``model``, ``bundle``, ``runtime``, ``precision``,
  ``probabilities`` (the five superclasses, calibrated by the model card), ``calibration``
  (which: "calibrated: ..., PTB-XL fold 9", "uncalibrated: fold-9 held-out ECE not improved
  ..." when the card keeps every class's raw output, or "uncalibrated model output"), ``thresholds``
  (the card's operating points, on the same calibrated scale), ``cam`` (fused Grad-CAM maps) — or
  null, with ``mi_reason`` saying why (e.g. MI screening needs 12 leads);
* ``urgency``: ``level``, ``level_text``, ``rules``, ``reasons``, ``notes``;
* ``versions``: detak, model, bundle, NB model, rule sets; ``device``; ``calibration``;
* ``facility`` and ``nurse``: the names the report's header shows (null when not given).

>>> s = Screening.new(source="sample://ptbxl-00286", lang="en")
>>> len(s.id), s.created_at.endswith("+00:00"), s.mi is None
(32, True, True)
>>> Screening.from_dict(s.to_dict()) == s
True
>>> Screening.from_dict({"id": "x"})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
detak.kiosk.types.ScreeningFormatError: screening record lacks key(s): created_at, source, ...
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any

FORMAT = "detak-screening/1"


class ScreeningFormatError(ValueError):
    """A dict that is not a screening record (missing or unknown keys)."""


@dataclasses.dataclass
class Screening:
    """One screening (see the module docstring for every field)."""

    id: str
    created_at: str
    source: str
    lang: str
    resident_id: str | None = None
    recording: dict[str, Any] = dataclasses.field(default_factory=dict)
    quality: dict[str, Any] = dataclasses.field(default_factory=dict)
    intervals: dict[str, Any] = dataclasses.field(default_factory=dict)
    fiducials: dict[str, Any] = dataclasses.field(default_factory=dict)
    rhythm: dict[str, Any] | None = None
    nb: dict[str, Any] | None = None
    mi: dict[str, Any] | None = None
    mi_reason: str | None = None
    urgency: dict[str, Any] = dataclasses.field(default_factory=dict)
    versions: dict[str, Any] = dataclasses.field(default_factory=dict)
    device: dict[str, Any] | None = None
    calibration: str | None = None
    facility: str | None = None
    nurse: str | None = None
    format: str = FORMAT

    @classmethod
    def new(cls, *, source: str, lang: str, resident_id: str | None = None,
            **fields: Any) -> Screening:
        """A screening with a fresh id (uuid4 hex) and the current UTC time."""
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        return cls(id=uuid.uuid4().hex, created_at=now, source=source, lang=lang,
                   resident_id=resident_id, **fields)

    @property
    def rejected(self) -> bool:
        """True when the quality check rejected the recording (nothing measured)."""
        return self.quality.get("verdict") == "reject"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (a deep copy: changing it leaves the screening as it was)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Screening:
        """The screening ``to_dict`` wrote; `ScreeningFormatError` names missing or unknown
        keys."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        required = [n for n, f in fields.items() if f.default is dataclasses.MISSING
                    and f.default_factory is dataclasses.MISSING]
        missing = [n for n in required if n not in data]
        if missing:
            raise ScreeningFormatError(f"screening record lacks key(s): {', '.join(missing)}")
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise ScreeningFormatError(f"screening record has unknown key(s): "
                                       f"{', '.join(unknown)}")
        if data.get("format", FORMAT) != FORMAT:
            raise ScreeningFormatError(f"screening format {data['format']!r} is not "
                                       f"{FORMAT!r}")
        import copy

        return cls(**copy.deepcopy(data))
