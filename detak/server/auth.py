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
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, text
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


def authenticate_kiosk(session: Session, request: Request, body: bytes) -> Kiosk:
    """The kiosk that signed ``request`` (with ``body`` as sent), or 401 with §4's code.
    Records the nonce and the kiosk's last contact (to the minute), committed at once."""
    h = request.headers
    kid, ts, nonce, sig = (h.get("x-detak-kiosk"), h.get("x-detak-timestamp"),
                           h.get("x-detak-nonce"), h.get("x-detak-signature"))
    if not (kid and ts and nonce and sig):
        raise _unauth("signature_missing", "sign the request (X-Detak-Kiosk, -Timestamp, "
                      "-Nonce, -Signature)")
    kiosk = session.get(Kiosk, kid) if _KIOSK.fullmatch(kid) else None
    if kiosk is None:
        raise _unauth("kiosk_unknown", "no such kiosk: enrol it again")
    if kiosk.revoked_at is not None:
        raise _unauth("kiosk_revoked", "this kiosk was revoked by an admin")
    if not _NONCE.fullmatch(nonce) or not ts.isdigit() or len(ts) > 12:
        raise _unauth("signature_invalid", "malformed timestamp or nonce")
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(kiosk.public_key).verify(
            base64.b64decode(sig, validate=True),
            string_to_sign(request.method, request_path(request), ts, nonce, body))
    except (InvalidSignature, ValueError):
        raise _unauth("signature_invalid", "the signature does not verify") from None
    if abs(time.time() - int(ts)) > WINDOW_S:
        raise _unauth("timestamp_out_of_window", f"the timestamp is more than {WINDOW_S} s from "
                      "the server's time (X-Detak-Server-Time)")
    now = datetime.now(UTC)
    # the nonce's commit need not wait for its WAL flush (no fsync per request): a database
    # crash could forget the last fraction of a second of nonces, whose requests are still
    # bound to a 300 s timestamp window and a signature; everything else commits durably
    session.execute(text("SET LOCAL synchronous_commit = off"))
    if secrets.randbelow(PRUNE_EVERY) == 0:  # forget expired nonces now and then
        session.execute(delete(Nonce).where(Nonce.seen_at < now - timedelta(seconds=NONCE_TTL_S)))
    fresh = session.execute(pg_insert(Nonce).values(kiosk_id=kiosk.id, nonce=nonce)
                            .on_conflict_do_nothing().returning(Nonce.nonce)).first()
    if fresh is None:
        session.rollback()
        raise _unauth("nonce_replayed", "this nonce was used already")
    if kiosk.last_seen_at is None or now - kiosk.last_seen_at >= LAST_SEEN_STEP:
        kiosk.last_seen_at = now      # to the minute: not one UPDATE per request of a sync run
    session.commit()
    return kiosk
