"""A minimal kiosk for the server tests: signs requests as docs/sync.md §4 says.

Independent of ``detak.sync`` (the real client, tested in ``tests/sync``), so the server is
tested against the text of the protocol rather than against one client.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import secrets
import time
import uuid as uuidlib
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Kiosk:
    def __init__(self, base_url: str) -> None:
        self.base = base_url
        self.key = Ed25519PrivateKey.generate()
        self.kiosk_id: str | None = None
        self.clock_offset = 0
        self.http = httpx.Client(base_url=base_url, timeout=30)

    @property
    def public_b64(self) -> str:
        raw = self.key.public_key().public_bytes(serialization.Encoding.Raw,
                                                 serialization.PublicFormat.Raw)
        return base64.b64encode(raw).decode()

    def enroll(self, code: str) -> httpx.Response:
        r = self.http.post("/api/v1/enroll", json={"code": code, "public_key": self.public_b64,
                                                   "name": "test-kiosk"})
        if r.status_code == 201:
            self.kiosk_id = r.json()["kiosk_id"]
        return r

    def headers(self, method: str, path: str, body: bytes, *, ts: int | None = None,
                nonce: str | None = None, kiosk_id: str | None = None) -> dict[str, str]:
        ts = int(time.time()) + self.clock_offset if ts is None else ts
        nonce = nonce or secrets.token_hex(16)
        text = "\n".join([method, path, str(ts), nonce, sha(body)]).encode()
        return {"X-Detak-Kiosk": kiosk_id or self.kiosk_id or "", "X-Detak-Timestamp": str(ts),
                "X-Detak-Nonce": nonce,
                "X-Detak-Signature": base64.b64encode(self.key.sign(text)).decode()}

    def request(self, method: str, path: str, body: bytes = b"",
                headers: dict[str, str] | None = None, **sign: Any) -> httpx.Response:
        h = self.headers(method, path, body, **sign)
        h.update(headers or {})
        return self.http.request(method, path, content=body, headers=h)

    def upload(self, data: bytes, chunk: int = 256 << 10) -> str:
        digest = sha(data)
        r = self.request("HEAD", f"/api/v1/blobs/{digest}")
        assert r.status_code == 200, r.text
        offset = int(r.headers["Upload-Offset"])
        while offset < len(data) or not data:
            part = data[offset:offset + chunk]
            r = self.request("PATCH", f"/api/v1/blobs/{digest}?offset={offset}&size={len(data)}",
                             part, {"Content-Type": "application/octet-stream"})
            assert r.status_code == 200, r.text
            offset = r.json()["offset"]
            if r.json()["complete"]:
                break
        return digest

    def batch(self, items: list[dict], *, gzip_body: bool = False, protocol: int = 1,
              bundle: dict | None = None) -> httpx.Response:
        body = json.dumps({"protocol": protocol, "verdicts_since": None,
                           "bundle": bundle or {"name": "edge", "version": None},
                           "items": items}).encode()
        headers = {"Content-Type": "application/json"}
        if gzip_body:
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        return self.request("POST", "/api/v1/sync/batch", body, headers)


def recording_files(seed: int, n: int = 5000) -> tuple[bytes, bytes]:
    """A fake WFDB pair (header text, signal bytes) that differs with ``seed``."""
    import random

    rng = random.Random(seed)
    dat = bytes(rng.getrandbits(8) for _ in range(n))
    hea = f"rec{seed} 12 500 {n // 24}\n# detak test record\n".encode()
    return hea, dat


def make_item(hea: bytes, dat: bytes, *, resident: dict | None = None,
              screening: dict | None = None, pdf: bytes | None = None,
              uuid: str | None = None) -> dict:
    item = {"uuid": uuid or uuidlib.uuid4().hex,
            "created_at": "2026-12-07T08:00:00.000000Z",
            "resident": resident,
            "screening": screening or {"intervals": {"hr_bpm": 71.5, "qrs_ms": 92.0},
                                       "label": "normal"},
            "files": {"recording": sha(hea)[:16], "hea": {"sha256": sha(hea), "size": len(hea)},
                      "dat": {"sha256": sha(dat), "size": len(dat)},
                      "report_pdf": ({"sha256": sha(pdf), "size": len(pdf)} if pdf else None)}}
    item["content_sha256"] = sha(canonical(item))
    return item
