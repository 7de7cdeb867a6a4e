"""The append-only audit log: who, what, when (the database's clock), from where.

Every read or write of resident data calls `audit` in the same transaction as the access, so
the entry commits exactly when the access does. PostgreSQL refuses UPDATE, DELETE and TRUNCATE
on the table (a trigger, migration 0001). Entries name ids, never a resident's name.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from detak.server.models import AuditEntry


def audit(session: Session, actor: str, action: str, *, object_kind: str | None = None,
          object_id: Any = None, facility_id: int | None = None, remote: str | None = None,
          detail: dict | None = None) -> None:
    """Add one audit entry to ``session``'s transaction (committed with it).

    ``actor``: ``kiosk:<id>``, ``user:<id>`` or ``cli:<command>``."""
    session.connection().execute(_INSERT, {
        "actor": actor[:100], "action": action[:100], "object_kind": object_kind,
        "object_id": None if object_id is None else str(object_id)[:100],
        "facility_id": facility_id, "remote": (remote or None) and remote[:100],
        "detail": detail})


#: built once: the statement is compiled once per process, not per entry
_INSERT = insert(AuditEntry)
