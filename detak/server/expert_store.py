"""The expert system's case bases in PostgreSQL (S4): create, edit and delete features, classes
and cases, every change audited in the same transaction; cases from signed verdicts.

Validation is the library's (`detak.models.cases`): a base's features and classes are checked
as a schema file is (`schema_from_doc`: duplicate keys, columns, classes → `SchemaError`), a
typed-in case as a CSV row is (`parse_case`: `NonNumericValueError`, `UnknownClassError`,
`MissingColumnError`), an imported CSV by `read_cases`. What only the server can know has its
own named errors here (`ClassInUseError`, `BaseNotFoundError`, ...).

The first request after migration seeds two bases (`seed_bases`, once): ``ecg_verdicts`` (the
``ecg_intervals`` schema's measurements → the PTB-XL diagnostic superclass a doctor signed; the
verdicts' cases land here) and ``s4_echo`` (S4's 15 measurements and 8 classes). S4's own
training cases are not public and not in the repository, so both start empty; an admin can
import a case CSV (S4's layout) into a base.

>>> verdict_class(["STTC", "SR", "MI"]), verdict_class(["SR"])
('MI', None)
>>> screening_values({"intervals": {"qtc_bazett_ms": 452.0, "pr_ms": float("nan")}},
...                  ["qtc_ms", "pr_ms", "ef_pct"])
{'qtc_ms': 452.0, 'pr_ms': None, 'ef_pct': None}
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from detak.models.cases import (
    Schema,
    SchemaError,
    load_schema,
    parse_case,
    read_cases,
    schema_from_doc,
)
from detak.server.audit import audit
from detak.server.expert_tables import ExpertBase, ExpertCase, ExpertClass, ExpertFeature
from detak.server.models import Setting

SEEDED_KEY = "expert.seeded"
VERDICT_BASE = "ecg_verdicts"
#: PTB-XL's diagnostic superclasses, most serious first: a verdict naming several becomes a case
#: of the first one it names (the full label list is kept in the case's note)
SUPERCLASS_PRIORITY: tuple[str, ...] = ("MI", "STTC", "CD", "HYP", "NORM")
#: a base feature key -> the screening's interval key it reads when the names differ
INTERVAL_ALIASES: dict[str, str] = {"qtc_ms": "qtc_bazett_ms"}
#: the labels the ``ecg_verdicts`` base shows for the interval keys (S3's names)
VERDICT_LABELS: dict[str, str] = {"rr_ms": "RR", "pr_ms": "PR", "qrs_ms": "QRS", "qt_ms": "QT",
                                  "qtc_bazett_ms": "QTc", "st_ms": "ST", "rs_ratio": "R/S",
                                  "hr_bpm": "HR"}
KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
MAX_TEXT = 200


class ExpertError(ValueError):
    """An expert-system change that cannot be made (the message says why)."""


class BaseNotFoundError(ExpertError):
    """No case base, feature, class or case with that id (in that base)."""


class ClassInUseError(ExpertError):
    """A class still has cases: move or delete them first."""


class BaseNameError(ExpertError):
    """A base name that is empty, too long or taken."""


def _now() -> datetime:
    return datetime.now(UTC)


def _text(value: str | None, what: str, limit: int = MAX_TEXT, *, required: bool = False) -> str:
    v = (value or "").strip()
    if required and not v:
        raise SchemaError(f"{what}: required")
    if len(v) > limit:
        raise SchemaError(f"{what}: at most {limit} characters")
    return v


# -- reading ------------------------------------------------------------------------------------
def get_base(session: Session, base_id: int) -> ExpertBase:
    base = session.get(ExpertBase, base_id)
    if base is None:
        raise BaseNotFoundError(f"no case base {base_id}")
    return base


def base_by_name(session: Session, name: str) -> ExpertBase | None:
    return session.scalar(select(ExpertBase).where(ExpertBase.name == name))


def features_of(session: Session, base: ExpertBase) -> list[ExpertFeature]:
    return list(session.scalars(select(ExpertFeature).where(ExpertFeature.base_id == base.id)
                                .order_by(ExpertFeature.position, ExpertFeature.id)))


def classes_of(session: Session, base: ExpertBase) -> list[ExpertClass]:
    return list(session.scalars(select(ExpertClass).where(ExpertClass.base_id == base.id)
                                .order_by(ExpertClass.position, ExpertClass.id)))


def cases_of(session: Session, base: ExpertBase) -> list[tuple[ExpertCase, str]]:
    """The base's cases with their class names, oldest first."""
    rows = session.execute(select(ExpertCase, ExpertClass.name)
                           .join(ExpertClass, ExpertClass.id == ExpertCase.class_id)
                           .where(ExpertCase.base_id == base.id).order_by(ExpertCase.id))
    return [(c, n) for c, n in rows]


def case_counts(session: Session) -> dict[int, int]:
    return dict(session.execute(select(ExpertCase.base_id, func.count())
                                .group_by(ExpertCase.base_id)).all())


def _doc(base: ExpertBase, feats: Sequence[Mapping[str, str]], classes: Sequence[str]) -> dict:
    return {"name": base.name, "description": base.description, "target": base.target,
            "features": list(feats), "classes": {"names": list(classes)}}


def _feature_doc(f: ExpertFeature) -> dict[str, str]:
    return {"key": f.key, "column": f.column, "unit": f.unit, "description": f.description}


def schema_of(session: Session, base: ExpertBase, *, allow_empty: bool = False) -> Schema:
    """The base as a `Schema` (checked by `schema_from_doc`; `SchemaError` if incomplete)."""
    return schema_from_doc(_doc(base, [_feature_doc(f) for f in features_of(session, base)],
                                [c.name for c in classes_of(session, base)]),
                           f"case base {base.name!r}", allow_empty=allow_empty)


# -- bases --------------------------------------------------------------------------------------
def create_base(session: Session, name: str, actor: str, *, description: str = "",
                target: str = "diagnosis", from_schema: str | Path | None = None) -> ExpertBase:
    """A new base, empty or with the features and classes of a schema (bundled name or file)."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise BaseNameError("a case base name is 1 to 100 characters")
    if base_by_name(session, name) is not None:
        raise BaseNameError(f"a case base named {name!r} exists already")
    schema = load_schema(from_schema) if from_schema else None
    base = ExpertBase(name=name, description=_text(description or (schema.description
                                                                   if schema else ""),
                                                   "description", 1000),
                      target=_text(target or (schema.target if schema else ""), "target",
                                   100) or "diagnosis")
    session.add(base)
    session.flush()
    if schema is not None:
        for i, f in enumerate(schema.features):
            session.add(ExpertFeature(base_id=base.id, key=f.key, column=f.column, unit=f.unit,
                                      description=f.description, position=i))
        for i, c in enumerate(schema.classes):
            session.add(ExpertClass(base_id=base.id, name=c, position=i))
        session.flush()
    audit(session, actor, "expert.base.create", object_kind="expert_base", object_id=base.id,
          detail={"schema": schema.name if schema else None})
    return base


def delete_base(session: Session, base: ExpertBase, actor: str) -> None:
    n = session.scalar(select(func.count()).select_from(ExpertCase)
                       .where(ExpertCase.base_id == base.id))
    session.execute(delete(ExpertCase).where(ExpertCase.base_id == base.id))
    session.delete(base)
    audit(session, actor, "expert.base.delete", object_kind="expert_base", object_id=base.id,
          detail={"cases": n})


def seed_bases(session: Session) -> bool:
    """Once per database: the ``ecg_verdicts`` and ``s4_echo`` bases (see the module text)."""
    if session.get(Setting, SEEDED_KEY) is not None:
        return False
    session.add(Setting(key=SEEDED_KEY, value=_now().isoformat()))
    if base_by_name(session, VERDICT_BASE) is None:
        base = create_base(session, VERDICT_BASE, "server:seed", from_schema="ecg_intervals",
                           target="verdict", description="ECG intervals of screenings → the "
                           "diagnostic superclass the doctor signed")
        for c in classes_of(session, base):
            session.delete(c)
        for f in features_of(session, base):
            f.column = VERDICT_LABELS.get(f.key, f.column)
        session.flush()
        for i, c in enumerate(("NORM", "MI", "STTC", "CD", "HYP")):
            session.add(ExpertClass(base_id=base.id, name=c, position=i))
    if base_by_name(session, "s4_echo") is None:
        create_base(session, "s4_echo", "server:seed", from_schema="s4_echo")
    session.flush()
    return True


# -- features -----------------------------------------------------------------------------------
def _check_features(session: Session, base: ExpertBase, feats: list[dict[str, str]]) -> None:
    schema_from_doc(_doc(base, feats, [c.name for c in classes_of(session, base)]),
                    f"case base {base.name!r}", allow_empty=True)


def add_feature(session: Session, base: ExpertBase, key: str, actor: str, *, column: str = "",
                unit: str = "", description: str = "") -> ExpertFeature:
    """A new measurement. ``key``: lower-case letters, digits, ``_`` (it names the value in
    every case and never changes); ``column``: the label shown (default: the key)."""
    key = (key or "").strip()
    if not KEY_RE.match(key):
        raise SchemaError(f"case base {base.name!r}: feature key {key!r} must be lower-case "
                          "letters, digits and _ (a letter first, at most 63)")
    new = {"key": key, "column": _text(column, "column", 100) or key,
           "unit": _text(unit, "unit", 50), "description": _text(description, "description")}
    feats = features_of(session, base)
    _check_features(session, base, [_feature_doc(f) for f in feats] + [new])
    f = ExpertFeature(base_id=base.id, position=max((x.position for x in feats), default=-1) + 1,
                      **new)
    session.add(f)
    session.flush()
    audit(session, actor, "expert.feature.add", object_kind="expert_feature", object_id=f.id,
          detail={"base": base.id, "key": key})
    return f


def get_feature(session: Session, base: ExpertBase, feature_id: int) -> ExpertFeature:
    f = session.get(ExpertFeature, feature_id)
    if f is None or f.base_id != base.id:
        raise BaseNotFoundError(f"no feature {feature_id} in case base {base.name!r}")
    return f


def edit_feature(session: Session, base: ExpertBase, feature: ExpertFeature, actor: str, *,
                 column: str, unit: str, description: str) -> ExpertFeature:
    """Change a feature's label, unit and description (its key stays)."""
    changed = {"key": feature.key, "column": _text(column, "column", 100) or feature.key,
               "unit": _text(unit, "unit", 50), "description": _text(description,
                                                                     "description")}
    _check_features(session, base, [changed if f.id == feature.id else _feature_doc(f)
                                    for f in features_of(session, base)])
    feature.column, feature.unit, feature.description = (changed["column"], changed["unit"],
                                                         changed["description"])
    audit(session, actor, "expert.feature.edit", object_kind="expert_feature",
          object_id=feature.id, detail={"base": base.id})
    return feature


def delete_feature(session: Session, base: ExpertBase, feature: ExpertFeature,
                   actor: str) -> int:
    """Delete a feature and its value from every case of the base; returns the cases changed."""
    changed = 0
    for case, _ in cases_of(session, base):
        if feature.key in case.values:
            case.values = {k: v for k, v in case.values.items() if k != feature.key}
            changed += 1
    session.delete(feature)
    audit(session, actor, "expert.feature.delete", object_kind="expert_feature",
          object_id=feature.id, detail={"base": base.id, "key": feature.key, "cases": changed})
    return changed


# -- classes ------------------------------------------------------------------------------------
def _check_classes(session: Session, base: ExpertBase, names: list[str]) -> None:
    schema_from_doc(_doc(base, [_feature_doc(f) for f in features_of(session, base)], names),
                    f"case base {base.name!r}", allow_empty=True)


def add_class(session: Session, base: ExpertBase, name: str, actor: str) -> ExpertClass:
    name = _text(name, "class name", required=True)
    classes = classes_of(session, base)
    _check_classes(session, base, [c.name for c in classes] + [name])
    c = ExpertClass(base_id=base.id, name=name,
                    position=max((x.position for x in classes), default=-1) + 1)
    session.add(c)
    session.flush()
    audit(session, actor, "expert.class.add", object_kind="expert_class", object_id=c.id,
          detail={"base": base.id})
    return c


def get_class(session: Session, base: ExpertBase, class_id: int) -> ExpertClass:
    c = session.get(ExpertClass, class_id)
    if c is None or c.base_id != base.id:
        raise BaseNotFoundError(f"no class {class_id} in case base {base.name!r}")
    return c


def rename_class(session: Session, base: ExpertBase, cls: ExpertClass, name: str,
                 actor: str) -> ExpertClass:
    """Rename a class (its cases follow: they point at the class, not at its name)."""
    name = _text(name, "class name", required=True)
    _check_classes(session, base, [name if c.id == cls.id else c.name
                                   for c in classes_of(session, base)])
    cls.name = name
    audit(session, actor, "expert.class.edit", object_kind="expert_class", object_id=cls.id,
          detail={"base": base.id})
    return cls


def delete_class(session: Session, base: ExpertBase, cls: ExpertClass, actor: str) -> None:
    n = session.scalar(select(func.count()).select_from(ExpertCase)
                       .where(ExpertCase.class_id == cls.id))
    if n:
        raise ClassInUseError(f"class {cls.name!r} has {n} case(s): change their class or "
                              "delete them first")
    session.delete(cls)
    audit(session, actor, "expert.class.delete", object_kind="expert_class", object_id=cls.id,
          detail={"base": base.id})


# -- cases --------------------------------------------------------------------------------------
def _class_id(session: Session, base: ExpertBase, name: str) -> int:
    return session.scalar(select(ExpertClass.id).where(ExpertClass.base_id == base.id,
                                                       ExpertClass.name == name))


def add_case(session: Session, base: ExpertBase, cells: Mapping[str, str], label: str,
             actor: str, *, note: str = "") -> ExpertCase:
    """A typed-in case: ``cells`` maps feature keys to the text typed, ``label`` the class
    (checked by `parse_case`; its named errors say which field is wrong)."""
    values, cls = parse_case(schema_of(session, base), cells, label)
    case = ExpertCase(base_id=base.id, class_id=_class_id(session, base, cls), values=values,
                      source="admin", note=_text(note, "note", 1000), created_by=actor[:100])
    session.add(case)
    session.flush()
    audit(session, actor, "expert.case.add", object_kind="expert_case", object_id=case.id,
          detail={"base": base.id})
    return case


def get_case(session: Session, base: ExpertBase, case_id: int) -> ExpertCase:
    c = session.get(ExpertCase, case_id)
    if c is None or c.base_id != base.id:
        raise BaseNotFoundError(f"no case {case_id} in case base {base.name!r}")
    return c


def edit_case(session: Session, base: ExpertBase, case: ExpertCase, cells: Mapping[str, str],
              label: str, actor: str, *, note: str = "") -> ExpertCase:
    values, cls = parse_case(schema_of(session, base), cells, label)
    case.values, case.class_id = values, _class_id(session, base, cls)
    case.note, case.updated_at = _text(note, "note", 1000), _now()
    audit(session, actor, "expert.case.edit", object_kind="expert_case", object_id=case.id,
          detail={"base": base.id})
    return case


def delete_case(session: Session, base: ExpertBase, case: ExpertCase, actor: str) -> None:
    session.delete(case)
    audit(session, actor, "expert.case.delete", object_kind="expert_case", object_id=case.id,
          detail={"base": base.id, "screening": case.screening_id})


def import_cases(session: Session, base: ExpertBase, csv_path: str | Path,
                 actor: str) -> int:
    """Add every case of a CSV (S4's layout: one column per feature ``column`` or ``key``, the
    class in the base's ``target`` column), all or none; `read_cases`' named errors give the
    row and column of every bad cell. Returns the number of cases added."""
    frame = read_cases(csv_path, schema_of(session, base))
    ids = {c.name: c.id for c in classes_of(session, base)}
    keys = [f.key for f in features_of(session, base)]
    for _, row in frame.iterrows():
        values = {k: (None if math.isnan(row[k]) else float(row[k])) for k in keys}
        session.add(ExpertCase(base_id=base.id, class_id=ids[row[base.target]], values=values,
                               source="import", created_by=actor[:100]))
    session.flush()
    audit(session, actor, "expert.case.import", object_kind="expert_base", object_id=base.id,
          detail={"cases": len(frame), "sha256": frame.attrs.get("sha256")})
    return len(frame)


# -- the loop from signed verdicts --------------------------------------------------------------
def verdict_class(labels: Sequence[str]) -> str | None:
    """The diagnostic superclass a verdict's labels name, most serious first (None: none)."""
    named = {str(x).strip().upper() for x in labels}
    return next((c for c in SUPERCLASS_PRIORITY if c in named), None)


def screening_values(screening: Mapping[str, Any], keys: Sequence[str]) -> dict[str, float | None]:
    """The screening JSON's intervals for ``keys`` (`INTERVAL_ALIASES` applied; NaN, text and
    absent values are None)."""
    iv = screening.get("intervals") or {}
    out: dict[str, float | None] = {}
    for k in keys:
        v = iv.get(k, iv.get(INTERVAL_ALIASES.get(k, k)))
        try:
            f = float(v) if v is not None and not isinstance(v, bool) else math.nan
        except (TypeError, ValueError):
            f = math.nan
        out[k] = f if math.isfinite(f) else None
    return out


_ABSENT = object()


def _field(obj: Any, name: str, default: Any = None) -> Any:
    return obj.get(name, default) if isinstance(obj, Mapping) else getattr(obj, name, default)


def case_from_verdict(session: Session, verdict: Any, screening: Any, *,
                      base_name: str = VERDICT_BASE, actor: str | None = None
                      ) -> ExpertCase | None:
    """Turn a doctor's signed verdict into a case of ``base_name`` (default ``ecg_verdicts``)
    with a link back to its screening; call it in the transaction that signs the verdict.

    ``verdict``: a row or mapping with ``id`` (kept as ``verdict_ref``), ``labels`` (the
    confirmed labels: superclasses and rhythm codes), ``signed_by`` (user id, for the audit
    actor), optionally ``version`` and ``signed_at``; an unsigned verdict (``signed_at`` given
    and None) is refused with `ExpertError`. ``screening``: the `Screening` row or a mapping
    with ``id`` and ``screening`` (the kiosk's JSON, whose ``intervals`` are the values).

    Returns None (nothing stored) when the screening has no interval for any of the base's
    features, when the labels name no class of the base (`verdict_class`), or when the base
    does not exist. A later version of a verdict on the same screening updates that case
    instead of adding another: one screening, one case, the newest signed class.
    """
    if _field(verdict, "signed_at", _ABSENT) is None:
        raise ExpertError("only a signed verdict becomes a case")
    base = base_by_name(session, base_name)
    if base is None:
        return None
    labels = [str(x) for x in (_field(verdict, "labels") or [])]
    cls_name = verdict_class(labels)
    cls = next((c for c in classes_of(session, base) if cls_name and c.name == cls_name), None)
    if cls is None:
        return None
    keys = [f.key for f in features_of(session, base)]
    values = screening_values(_field(screening, "screening") or {}, keys)
    if all(v is None for v in values.values()):
        return None
    screening_id = int(_field(screening, "id"))
    ref = f"{_field(verdict, 'id')}" + (f"/v{_field(verdict, 'version')}"
                                         if _field(verdict, "version") is not None else "")
    who = actor or (f"user:{_field(verdict, 'signed_by')}" if _field(verdict, "signed_by")
                    is not None else "server:verdict")
    note = "verdict labels: " + ", ".join(labels)
    case = session.scalar(select(ExpertCase).where(ExpertCase.base_id == base.id,
                                                   ExpertCase.screening_id == screening_id,
                                                   ExpertCase.source == "verdict"))
    if case is None:
        case = ExpertCase(base_id=base.id, class_id=cls.id, values=values, source="verdict",
                          screening_id=screening_id, verdict_ref=ref[:100], note=note[:1000],
                          created_by=who[:100])
        session.add(case)
        action = "expert.case.from_verdict"
    else:
        case.class_id, case.values, case.verdict_ref = cls.id, values, ref[:100]
        case.note, case.updated_at = note[:1000], _now()
        action = "expert.case.from_verdict_update"
    session.flush()
    audit(session, who, action, object_kind="expert_case", object_id=case.id,
          facility_id=_field(screening, "facility_id"),
          detail={"base": base.id, "screening": screening_id, "verdict": ref[:100]})
    return case
