"""Bearer tokens of the ``integration`` role (a hospital system reading ``GET /fhir/...``).

A token belongs to one facility, is random (256 bits, prefix ``dtk_``), shown once by
``detak server create-token --facility NAME`` and stored as its SHA-256 (like the enrolment
codes: a high-entropy secret needs no slow hash). ``detak server revoke-token ID`` ends it.

>>> token_hash("dtk_x") == token_hash("dtk_x") != token_hash("dtk_y")
True
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from detak.server.accounts import AccountError, facility_by_name
from detak.server.audit import audit
from detak.server.models import IntegrationToken

PREFIX = "dtk_"


def token_hash(token: str) -> str:
    """The stored form of ``token`` (SHA-256 hex)."""
    return hashlib.sha256(token.strip().encode()).hexdigest()


def create_token(session: Session, facility: str, name: str = "integration",
                 actor: str = "cli:admin") -> tuple[str, IntegrationToken]:
    """A new token for ``facility``: returns (the token — show it once —, its row)."""
    name = " ".join(name.split())
    if not name or len(name) > 200:
        raise AccountError("a token name is 1 to 200 characters")
    fac = facility_by_name(session, facility)
    token = PREFIX + secrets.token_urlsafe(32)
    row = IntegrationToken(name=name, token_hash=token_hash(token), facility_id=fac.id)
    session.add(row)
    session.flush()
    audit(session, actor, "token.create", object_kind="integration_token", object_id=row.id,
          facility_id=fac.id)
    return token, row


def revoke_token(session: Session, token_id: int, actor: str = "cli:admin") -> None:
    """Revoke token ``token_id``: its next request is refused."""
    row = session.get(IntegrationToken, token_id)
    if row is None:
        raise AccountError(f"no token {token_id} (detak server tokens)")
    session.execute(update(IntegrationToken).where(IntegrationToken.id == token_id,
                                                   IntegrationToken.revoked_at.is_(None))
                    .values(revoked_at=datetime.now(UTC)))
    audit(session, actor, "token.revoke", object_kind="integration_token", object_id=token_id,
          facility_id=row.facility_id)


def token_of(session: Session, bearer: str) -> IntegrationToken | None:
    """The live token row of a presented ``bearer`` token (None: unknown or revoked)."""
    if not bearer.startswith(PREFIX) or len(bearer) > 200:
        return None
    row = session.scalar(select(IntegrationToken).where(
        IntegrationToken.token_hash == token_hash(bearer)))
    if row is None or row.revoked_at is not None:
        return None
    row.last_used_at = datetime.now(UTC)
    return row
