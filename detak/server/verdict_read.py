"""The minimal read of signed verdicts that FHIR and ``export-labels`` need (the hook between
this code and the review pages that write verdicts).

The table is ``review_verdicts`` (`detak.server.review_models.Verdict`, migration
0002_review): ``screening_id``, ``version`` (a correction is a new row with the next version;
rows are never changed), ``labels`` (JSONB list of codes: PTB-XL superclasses
NORM/MI/STTC/CD/HYP and the rhythm statements SR, SBRAD, STACH, AFIB, 1AVB, CLBBB, CRBBB, …),
``action``, ``note``, ``doctor_name`` (answered as ``signed_by``), ``signed_at``. A database
migrated to an older head has no such table: every function then answers "no verdict", so the
FHIR report stays ``preliminary`` and ``export-labels`` writes nothing.

>>> _LATEST.count("DISTINCT ON (v.screening_id)"), TABLE
(1, 'review_verdicts')
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

TABLE = "review_verdicts"

_LATEST = """
SELECT DISTINCT ON (v.screening_id) v.screening_id, v.version, v.labels, v.action, v.note,
       v.signed_at, v.doctor_name AS signed_by
FROM review_verdicts v
WHERE v.signed_at IS NOT NULL {where}
ORDER BY v.screening_id, v.version DESC
"""


def has_verdicts(session: Session) -> bool:
    """Does the verdicts table exist in this database?"""
    return session.execute(text("SELECT to_regclass(:t)"), {"t": TABLE}).scalar() is not None


def _row(r: Any) -> dict[str, Any]:
    return {"screening_id": r.screening_id, "version": r.version,
            "labels": list(r.labels or []), "action": r.action, "note": r.note,
            "signed_by": r.signed_by, "signed_at": r.signed_at.isoformat()
            if isinstance(r.signed_at, datetime) else r.signed_at}


def latest_verdicts(session: Session, screening_ids: Iterable[int]) -> dict[int, dict]:
    """The newest signed verdict of each of ``screening_ids`` (absent: not reviewed)."""
    ids = [int(i) for i in screening_ids]
    if not ids or not has_verdicts(session):
        return {}
    rows = session.execute(text(_LATEST.format(where="AND v.screening_id = ANY(:ids)")),
                           {"ids": ids})
    return {r.screening_id: _row(r) for r in rows}


def signed_verdicts(session: Session, since: datetime | None = None) -> list[dict]:
    """The newest signed verdict of every reviewed screening (signed on/after ``since``
    when given: a correction signed later brings its screening back), by screening id."""
    if not has_verdicts(session):
        return []
    sql = "SELECT * FROM (" + _LATEST.format(where="") + ") l"
    if since is not None:
        sql += " WHERE l.signed_at >= :since"
    rows = session.execute(text(sql + " ORDER BY l.screening_id"), {"since": since})
    return [_row(r) for r in rows]
