"""The bytes of the sync protocol (docs/sync.md §4, §6.1): canonical JSON, the content hash of
a batch item, the string a kiosk signs, and its Ed25519 key.

>>> canonical_json({"b": 1, "a": ["ü", 0.1]})
b'{"a":["\\xc3\\xbc",0.1],"b":1}'
>>> item = {"uuid": "ab" * 16, "created_at": "2026-12-07T08:00:00Z", "content_sha256": "x"}
>>> content_sha256(item) == content_sha256({**item, "content_sha256": "other"})
True
>>> string_to_sign("post", "/api/v1/sync/batch", 1765094400, "00" * 16, b"").decode()
... # doctest: +NORMALIZE_WHITESPACE
'POST\\n/api/v1/sync/batch\\n1765094400\\n00000000000000000000000000000000\\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

HEADER_KIOSK = "X-Detak-Kiosk"
HEADER_TIMESTAMP = "X-Detak-Timestamp"
HEADER_NONCE = "X-Detak-Nonce"
HEADER_SIGNATURE = "X-Detak-Signature"
HEADER_SERVER_TIME = "X-Detak-Server-Time"


def canonical_json(obj: Any) -> bytes:
    """Keys sorted, no white space, UTF-8 with non-ASCII characters as themselves (§6.1).
    NaN and infinities are refused (`ValueError`): JSON has no such numbers."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def content_sha256(item: dict[str, Any]) -> str:
    """Hex SHA-256 of the canonical JSON of a batch item without its ``content_sha256``."""
    return hashlib.sha256(canonical_json({k: v for k, v in item.items()
                                          if k != "content_sha256"})).hexdigest()


def string_to_sign(method: str, path: str, timestamp: int, nonce: str, body: bytes) -> bytes:
    """The five lines a kiosk signs (§4): METHOD, PATH (with its query), TIMESTAMP, NONCE,
    BODY_SHA256 (of the body bytes as sent), joined by ``\\n``, no trailing newline."""
    return "\n".join([method.upper(), path, str(int(timestamp)), nonce,
                      hashlib.sha256(body).hexdigest()]).encode("utf-8")


def new_nonce() -> str:
    """32 lower-case hex characters (16 random bytes)."""
    return secrets.token_hex(16)


def signed_headers(key: Ed25519PrivateKey, kiosk_id: str, method: str, path: str,
                   body: bytes, timestamp: int, nonce: str | None = None) -> dict[str, str]:
    """The four ``X-Detak-*`` headers of a signed request."""
    nonce = nonce or new_nonce()
    sig = key.sign(string_to_sign(method, path, timestamp, nonce, body))
    return {HEADER_KIOSK: kiosk_id, HEADER_TIMESTAMP: str(int(timestamp)),
            HEADER_NONCE: nonce, HEADER_SIGNATURE: base64.b64encode(sig).decode("ascii")}


def verify_signature(public_key_b64: str, headers: Mapping[str, str], method: str, path: str,
                     body: bytes) -> bool:
    """Does ``headers`` carry a valid signature of the request by the key ``public_key_b64``
    (base64 of the 32 raw bytes)? What a server checks (the tests use it); ``headers`` may
    be a case-insensitive mapping (httpx, Starlette)."""
    from cryptography.exceptions import InvalidSignature

    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key_b64))
    try:
        key.verify(base64.b64decode(headers[HEADER_SIGNATURE]),
                   string_to_sign(method, path, int(headers[HEADER_TIMESTAMP]),
                                  headers[HEADER_NONCE], body))
    except (InvalidSignature, KeyError, ValueError):
        return False
    return True


def new_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def public_key_b64(key: Ed25519PrivateKey) -> str:
    """Base64 of the 32 raw bytes of the key's public half (what enrolment sends)."""
    raw = key.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    """PKCS#8 PEM, unencrypted (the file is 0600 in the store folder)."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    """The kiosk's key from its PEM file (`ValueError` if it is not an Ed25519 key)."""
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path}: not an Ed25519 private key")
    return key
