"""One batch item into the database (docs/sync.md §6): idempotent by uuid, conflicts kept,
residents merged by number within a facility (§6.3), audited; one transaction per item.

>>> canonical_sha256({"b": 1, "a": "ä"}) == canonical_sha256({"a": "ä", "b": 1})
True
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection, bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from detak.server.audit import audit
from detak.server.errors import ApiError
from detak.server.models import Blob, Conflict, Resident, ResidentMismatch, Screening
from detak.server.schemas import Item


def canonical_sha256(obj: Any) -> str:
    """SHA-256 of the canonical JSON of ``obj`` (sorted keys, compact, UTF-8 as itself)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":"),
                                     ensure_ascii=False).encode()).hexdigest()


def _result(uuid: str | None, status: str, server_id: int | None = None,
            code: str | None = None, message: str | None = None) -> dict:
    return {"uuid": uuid, "status": status, "server_id": server_id,
            "error": {"code": code, "message": message} if code else None}


def _first_error(err: ValidationError) -> str:
    e = err.errors()[0]
    where = ".".join(str(p) for p in e.get("loc", ()))
    return f"{where}: {e.get('msg', 'invalid')}"[:300]


_ADD_RESIDENT = pg_insert(Resident).on_conflict_do_nothing(
    index_elements=["facility_id", "resident_number"])
_RESIDENT = select(Resident.id, Resident.name, Resident.birth_date, Resident.sex).where(
    Resident.facility_id == bindparam("facility_id"),
    Resident.resident_number == bindparam("resident_number"))
_EXISTING = select(Screening.id, Screening.content_sha256, Screening.facility_id).where(
    Screening.uuid == bindparam("uuid"))
_BLOB_SIZES = select(Blob.sha256, Blob.size).where(
    Blob.sha256.in_(bindparam("shas", expanding=True)))
_ADD_SCREENING = pg_insert(Screening).on_conflict_do_nothing(index_elements=["uuid"]) \
    .returning(Screening.id)


def _resident(conn: Connection, kiosk: Any, item: Item) -> Any:
    """The facility's resident of this number (a row: id, name, birth_date, sex), made when
    new (§6.3); None for an item without a resident."""
    r = item.resident
    if r is None:
        return None
    birth = date.fromisoformat(r.birth_date) if r.birth_date else None
    conn.execute(_ADD_RESIDENT, {
        "facility_id": kiosk.facility_id, "resident_number": r.resident_number, "name": r.name,
        "birth_date": birth, "sex": r.sex, "room": r.room, "created_by_kiosk": kiosk.id})
    return conn.execute(_RESIDENT, {"facility_id": kiosk.facility_id,
                                    "resident_number": r.resident_number}).one()


def ingest_item(session: Session, kiosk: Any, raw: Any, remote: str | None) -> dict:
    """Store one item; returns its result object. Commits (or rolls back) its transaction.
    ``kiosk``: the signing kiosk (``id``, ``facility_id``)."""
    uuid = raw.get("uuid") if isinstance(raw, dict) and isinstance(raw.get("uuid"), str) else None
    try:
        item = Item.model_validate(raw)
    except ValidationError as err:
        return _result(uuid if uuid and len(uuid) <= 64 else None, "invalid",
                       code="schema_invalid", message=_first_error(err))
    if item.resident and item.resident.birth_date:
        try:
            date.fromisoformat(item.resident.birth_date)
        except ValueError:
            return _result(item.uuid, "invalid", code="schema_invalid",
                           message="resident.birth_date: not a date")
    body = {k: v for k, v in raw.items() if k != "content_sha256"}
    if canonical_sha256(body) != item.content_sha256:
        return _result(item.uuid, "invalid", code="content_hash_mismatch",
                       message="content_sha256 is not the SHA-256 of the item's canonical JSON")
    actor = f"kiosk:{kiosk.id}"
    for _ in range(2):  # a second pass if another request inserted the same uuid meanwhile
        conn = session.connection()
        existing = conn.execute(_EXISTING, {"uuid": item.uuid}).one_or_none()
        if existing is not None:
            if (existing.content_sha256 == item.content_sha256
                    and existing.facility_id == kiosk.facility_id):
                audit(session, actor, "screening.duplicate", object_kind="screening",
                      object_id=existing.id, facility_id=kiosk.facility_id, remote=remote)
                session.commit()
                return _result(item.uuid, "duplicate", existing.id)
            conn.execute(pg_insert(Conflict).values(
                uuid=item.uuid, content_sha256=item.content_sha256,
                facility_id=kiosk.facility_id, kiosk_id=kiosk.id, item=raw,
            ).on_conflict_do_nothing())
            audit(session, actor, "screening.conflict", object_kind="screening_uuid",
                  object_id=item.uuid, facility_id=kiosk.facility_id, remote=remote)
            session.commit()
            return _result(item.uuid, "conflict", code="conflict",
                           message="this uuid exists with different content; kept for an admin")
        refs = [item.files.hea, item.files.dat] + ([item.files.report_pdf]
                                                    if item.files.report_pdf else [])
        sizes = dict(conn.execute(_BLOB_SIZES, {"shas": [ref.sha256 for ref in refs]})
                     .tuples().all())
        for ref in refs:
            if sizes.get(ref.sha256) != ref.size:
                session.rollback()
                return _result(item.uuid, "missing_blob", code="missing_blob",
                               message=f"blob {ref.sha256} is not complete on the server")
        resident = _resident(conn, kiosk, item)
        new_id = conn.execute(_ADD_SCREENING, {
            "uuid": item.uuid, "content_sha256": item.content_sha256,
            "facility_id": kiosk.facility_id, "kiosk_id": kiosk.id,
            "resident_id": resident.id if resident else None, "created_at": item.created_at,
            "screening": item.screening, "files": item.files.model_dump(), "item": raw,
        }).scalar()
        if new_id is None:
            session.rollback()
            continue
        if resident is not None:
            r = item.resident
            theirs = {"name": r.name, "birth_date": r.birth_date, "sex": r.sex}
            ours = {"name": resident.name, "sex": resident.sex,
                    "birth_date": resident.birth_date.isoformat() if resident.birth_date else None}
            if theirs != ours:
                session.add(ResidentMismatch(resident_id=resident.id, screening_id=new_id,
                                             kiosk_id=kiosk.id, reported=theirs))
                audit(session, actor, "resident.mismatch", object_kind="resident",
                      object_id=resident.id, facility_id=kiosk.facility_id, remote=remote)
            audit(session, actor, "resident.upsert", object_kind="resident",
                  object_id=resident.id, facility_id=kiosk.facility_id, remote=remote)
        audit(session, actor, "screening.create", object_kind="screening", object_id=new_id,
              facility_id=kiosk.facility_id, remote=remote)
        session.commit()
        return _result(item.uuid, "created", new_id)
    raise ApiError(503, "busy", "the same screening is being stored by another request",
                   headers={"Retry-After": "1"})
