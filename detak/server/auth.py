"""Kiosk request signatures (docs/sync.md §4): Ed25519 over METHOD, PATH?QUERY, TIMESTAMP,
NONCE and the body's SHA-256, a ±300 s window and a nonce remembered for 600 s.

>>> string_to_sign("POST", "/api/v1/sync/batch", "1700000000", "ab" * 16, b"{}")[:30]
b'POST\\n/api/v1/sync/batch\\n170000'
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, String, bindparam, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session
from starlette.requests import Request

from detak.server.errors import ApiError
from detak.server.models import Kiosk, Nonce

WINDOW_S = 300
NONCE_TTL_S = 600
PRUNE_EVERY = 50
#: a kiosk's ``last_seen_at`` is written when it is older than this (not at every request)
LAST_SEEN_STEP = timedelta(seconds=60)
_NONCE = re.compile(r"[0-9a-f]{32}")
_KIOSK = re.compile(r"[0-9a-f]{32}")


def string_to_sign(method: str, path: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    """The bytes a kiosk signs (five lines, no trailing newline)."""
    return "\n".join([method.upper(), path, timestamp, nonce,
                      hashlib.sha256(body).hexdigest()]).encode()


def request_path(request: Request) -> str:
    """The path and query string exactly as the kiosk sent them (its signed ``PATH``)."""
    raw = (request.scope.get("raw_path") or request.url.path.encode()).decode("latin-1")
    root = request.scope.get("root_path") or ""  # `detak server --root-path /clinic` behind a
    if root and not raw.startswith(root + "/"):  # proxy that strips the prefix it serves under
        raw = root + raw
    query = request.scope.get("query_string") or b""
    return raw + ("?" + query.decode("latin-1") if query else "")


def _unauth(code: str, message: str) -> ApiError:
    return ApiError(401, code, message)


@dataclass(frozen=True)
class KioskIdentity:
    """The kiosk a request was signed by: what the handlers need of it."""

    id: str
    facility_id: int


#: kiosk id -> its Ed25519 public key. A kiosk's key never changes (enrolling again makes a new
#: kiosk id), so it is read from the database once per worker process; whether the kiosk is
#: revoked is read at every request (in the statement that records the nonce).
_KEYS: dict[str, bytes] = {}
_MAX_KEYS = 100_000


def _public_key(conn: Connection, kid: str) -> bytes | None:
    key = _KEYS.get(kid)
    if key is None:
        key = conn.execute(_KEY_OF, {"kid": kid}).scalar()
        if key is not None:
            if len(_KEYS) >= _MAX_KEYS:
                _KEYS.clear()
            _KEYS[kid] = key = bytes(key)
    return key


def _refuse(conn: Connection, kid: str, code: str, message: str) -> ApiError:
    """A refusal after the kiosk is known: a revoked kiosk is told so first (§4's order)."""
    revoked = conn.execute(_REVOKED_OF, {"kid": kid}).scalar()
    if revoked is not None:
        return _unauth("kiosk_revoked", "this kiosk was revoked by an admin")
    return _unauth(code, message)


def _record_nonce():  # noqa: ANN202 - a sqlalchemy Select
    """One statement (built once; bound ``kid`` and ``nonce``): the kiosk's facility,
    revocation and last contact, the nonce recorded (only for a kiosk not revoked; nothing
    when it was seen already) and this transaction's ``synchronous_commit`` set off (see
    `authenticate_kiosk`)."""
    k = select(Kiosk.id, Kiosk.facility_id, Kiosk.revoked_at, Kiosk.last_seen_at) \
        .where(Kiosk.id == bindparam("kid")).cte("k")
    n = pg_insert(Nonce).from_select(
        ["kiosk_id", "nonce"], select(k.c.id, bindparam("nonce", type_=String)).where(
            k.c.revoked_at.is_(None))).on_conflict_do_nothing().returning(Nonce.nonce).cte("n")
    return select(k.c.facility_id, k.c.revoked_at, k.c.last_seen_at,
                  select(n.c.nonce).scalar_subquery().label("fresh"),
                  func.set_config("synchronous_commit", "off", True).label("sync"))


_RECORD_NONCE = _record_nonce()
_KEY_OF = select(Kiosk.public_key).where(Kiosk.id == bindparam("kid"))
_REVOKED_OF = select(Kiosk.revoked_at).where(Kiosk.id == bindparam("kid"))
_TOUCH = update(Kiosk).where(Kiosk.id == bindparam("kid")).values(last_seen_at=bindparam("now"))
_PRUNE = delete(Nonce).where(Nonce.seen_at < bindparam("before"))


def authenticate_kiosk(session: Session, request: Request, body: bytes) -> KioskIdentity:
    """The kiosk that signed ``request`` (with ``body`` as sent), or 401 with §4's code.
    Records the nonce and the kiosk's last contact (to the minute), committed at once."""
    h = request.headers
    kid, ts, nonce, sig = (h.get("x-detak-kiosk"), h.get("x-detak-timestamp"),
                           h.get("x-detak-nonce"), h.get("x-detak-signature"))
    if not (kid and ts and nonce and sig):
        raise _unauth("signature_missing", "sign the request (X-Detak-Kiosk, -Timestamp, "
                      "-Nonce, -Signature)")
    conn = session.connection()
    key = _public_key(conn, kid) if _KIOSK.fullmatch(kid) else None
    if key is None:
        raise _unauth("kiosk_unknown", "no such kiosk: enrol it again")
    if not _NONCE.fullmatch(nonce) or not ts.isdigit() or len(ts) > 12:
        raise _refuse(conn, kid, "signature_invalid", "malformed timestamp or nonce")
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(key).verify(
            base64.b64decode(sig, validate=True),
            string_to_sign(request.method, request_path(request), ts, nonce, body))
    except (InvalidSignature, ValueError):
        raise _refuse(conn, kid, "signature_invalid", "the signature does not verify") from None
    if abs(time.time() - int(ts)) > WINDOW_S:
        raise _refuse(conn, kid, "timestamp_out_of_window", f"the timestamp is more than "
                      f"{WINDOW_S} s from the server's time (X-Detak-Server-Time)")
    now = datetime.now(UTC)
    # the nonce's commit need not wait for its WAL flush (no fsync per request): a database
    # crash could forget the last fraction of a second of nonces, whose requests are still
    # bound to a 300 s timestamp window and a signature; everything else commits durably
    if secrets.randbelow(PRUNE_EVERY) == 0:  # forget expired nonces now and then
        conn.execute(_PRUNE, {"before": now - timedelta(seconds=NONCE_TTL_S)})
    row = conn.execute(_RECORD_NONCE, {"kid": kid, "nonce": nonce}).one_or_none()
    if row is None:                          # removed since its key was read
        session.rollback()
        raise _unauth("kiosk_unknown", "no such kiosk: enrol it again")
    if row.revoked_at is not None:
        session.rollback()
        raise _unauth("kiosk_revoked", "this kiosk was revoked by an admin")
    if row.fresh is None:
        session.rollback()
        raise _unauth("nonce_replayed", "this nonce was used already")
    if row.last_seen_at is None or now - row.last_seen_at >= LAST_SEEN_STEP:
        # to the minute: not one UPDATE per request of a sync run
        conn.execute(_TOUCH, {"kid": kid, "now": now})
    session.commit()
    return KioskIdentity(kid, row.facility_id)
