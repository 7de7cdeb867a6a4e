"""Signed session cookies for the kiosk app: which nurse is signed in, and until when.

The secret is generated once per store and kept in the store folder (``kiosk-secret``, mode
0600); a cookie is ``NURSE_ID.EXPIRY.HMAC`` (SHA-256), so it names no person and cannot be forged
without the secret.

>>> import tempfile
>>> key = load_secret(tempfile.mkdtemp())
>>> c = sign(key, 7, now=1000.0)
>>> verify(key, c, now=1001.0), verify(key, c + "x", now=1001.0), verify(key, c, now=1e9)
(7, None, None)
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path

SECRET_FILE = "kiosk-secret"
SESSION_SECONDS = 8 * 3600  # one shift


def load_secret(store_dir: str | Path) -> bytes:
    """The store's session secret (created 0600 on first use)."""
    path = Path(store_dir) / SECRET_FILE
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    os.chmod(path, 0o600)
    return bytes.fromhex(path.read_text().strip())


def _mac(key: bytes, payload: str) -> str:
    return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()


def sign(key: bytes, nurse_id: int, *, now: float | None = None,
         seconds: float = SESSION_SECONDS) -> str:
    """A cookie value for ``nurse_id`` valid for ``seconds``."""
    payload = f"{int(nurse_id)}.{int((now or time.time()) + seconds)}"
    return f"{payload}.{_mac(key, payload)}"


def verify(key: bytes, cookie: str | None, *, now: float | None = None) -> int | None:
    """The nurse id in a valid, unexpired cookie, else None."""
    try:
        nid, exp, mac = str(cookie or "").split(".")
        ok = hmac.compare_digest(mac, _mac(key, f"{nid}.{exp}"))
        return int(nid) if ok and int(exp) > (now or time.time()) else None
    except ValueError:
        return None
