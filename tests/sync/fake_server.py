"""An in-memory server that follows docs/sync.md, for the client's unit tests (httpx
MockTransport: no sockets, no PostgreSQL). The real server's tests are in tests/server/; the
end-to-end tests of tests/sync/ run the client against that one.

It checks what the spec says a server checks (signatures, timestamp window, nonce replay, blob
offsets and hashes, the content hash of each item) and can inject faults: a status for the next
requests, a lost answer after the request was processed, a cut in the middle of a chunk.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import itertools
import json
import re
import time
import uuid as uuidlib
from dataclasses import dataclass, field
from typing import Any

import httpx

from detak.sync.wire import canonical_json, content_sha256, verify_signature

_BLOB = re.compile(r"/api/v1/blobs/([^/?]+)")


def _error(status: int, code: str, message: str = "", **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": message}},
                          headers=headers)


@dataclass
class FakeServer:
    clock_offset: float = 0.0           # server time − real time
    codes: set[str] = field(default_factory=lambda: {"good-code"})
    bundle_public_key: str = ""
    kiosks: dict[str, dict[str, Any]] = field(default_factory=dict)
    blobs: dict[str, bytearray] = field(default_factory=dict)
    complete: set[str] = field(default_factory=set)
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)      # uuid -> row
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    verdicts: list[dict[str, Any]] = field(default_factory=list)
    bundle: dict[str, Any] | None = None   # {"name", "version", "data"}
    invalid_uuids: set[str] = field(default_factory=set)
    refuse_batch_with: set[str] = field(default_factory=set)  # whole batch 422 if it has these
    fail_next: list[int] = field(default_factory=list)   # statuses for the next requests
    overload_next: list[int] = field(default_factory=list)  # 503 overloaded, Retry-After each
    lose_answer_next: int = 0           # process, then raise a read error (answer lost)
    cut_chunk_at: int | None = None     # keep only this many bytes of the next PATCH, then cut
    requests: list[tuple[str, str]] = field(default_factory=list)
    nonces: set[tuple[str, str]] = field(default_factory=set)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    @property
    def now(self) -> float:
        return time.time() + self.clock_offset

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    # ------------------------------------------------------------------ dispatch
    def handle(self, req: httpx.Request) -> httpx.Response:
        path = req.url.raw_path.decode()
        self.requests.append((req.method, path))
        if self.overload_next:
            after = self.overload_next.pop(0)
            return self._stamp(_error(503, "overloaded", f"retry in {after} s",
                                      **{"Retry-After": str(after)}))
        if self.fail_next:
            status = self.fail_next.pop(0)
            return self._stamp(_error(status, f"http_{status}", "injected",
                                      **({"Retry-After": "0"} if status in (429, 503) else {})))
        resp = self._route(req, path)
        if self.lose_answer_next:
            self.lose_answer_next -= 1
            raise httpx.ReadError("connection reset (injected after the server processed it)")
        return self._stamp(resp)

    def _stamp(self, resp: httpx.Response) -> httpx.Response:
        resp.headers["X-Detak-Server-Time"] = str(int(self.now))
        return resp

    def _route(self, req: httpx.Request, path: str) -> httpx.Response:
        if req.method == "POST" and path == "/api/v1/enroll":
            return self._enroll(req)
        kiosk, problem = self._authenticate(req, path)
        if problem is not None:
            if req.method == "HEAD":                 # a HEAD answer has no body (§5)
                return httpx.Response(problem.status_code)
            return problem
        m = _BLOB.match(path)
        if m and req.method in ("HEAD", "PATCH"):
            sha = m.group(1)
            if not re.fullmatch(r"[0-9a-f]{64}", sha):
                return _error(400, "bad_blob_name")
            return self._head(sha) if req.method == "HEAD" else self._patch(req, sha)
        if req.method == "POST" and path == "/api/v1/sync/batch":
            return self._batch(req, kiosk)
        if req.method == "GET" and self.bundle and path == "/api/v1/bundles/" + hashlib.sha256(
                self.bundle["data"]).hexdigest():
            return httpx.Response(200, content=self.bundle["data"])
        return _error(404, "not_found")

    def _body(self, req: httpx.Request) -> bytes:
        body = req.content
        if req.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        return body

    # ------------------------------------------------------------------ auth
    def _enroll(self, req: httpx.Request) -> httpx.Response:
        data = json.loads(self._body(req))
        if data.get("code") not in self.codes:
            return _error(403, "enrolment_code_invalid")
        self.codes.discard(data["code"])
        kid = uuidlib.uuid4().hex
        self.kiosks[kid] = {"public_key": data["public_key"], "revoked": False}
        return httpx.Response(201, json={
            "kiosk_id": kid, "facility": {"id": 1, "name": "Wisma Invented"},
            "bundle_public_key": self.bundle_public_key,
            "server_time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.now))})

    def _authenticate(self, req: httpx.Request,
                      path: str) -> tuple[str | None, httpx.Response | None]:
        h = req.headers
        names = ("X-Detak-Kiosk", "X-Detak-Timestamp", "X-Detak-Nonce", "X-Detak-Signature")
        if not all(n in h for n in names):
            return None, _error(401, "signature_missing")
        kid = h["X-Detak-Kiosk"]
        kiosk = self.kiosks.get(kid)
        if kiosk is None:
            return None, _error(401, "kiosk_unknown")
        if kiosk["revoked"]:
            return None, _error(401, "kiosk_revoked")
        if not verify_signature(kiosk["public_key"], h, req.method, path, req.content):
            return None, _error(401, "signature_invalid")
        if abs(self.now - int(h["X-Detak-Timestamp"])) > 300:
            return None, _error(401, "timestamp_out_of_window")
        key = (kid, h["X-Detak-Nonce"])
        if key in self.nonces:
            return None, _error(401, "nonce_replayed")
        self.nonces.add(key)
        return kid, None

    # ------------------------------------------------------------------ blobs
    def _head(self, sha: str) -> httpx.Response:
        held = self.blobs.get(sha, bytearray())
        return httpx.Response(200, headers={"Upload-Offset": str(len(held)),
                                            "Upload-Complete": "?1" if sha in self.complete
                                            else "?0"})

    def _patch(self, req: httpx.Request, sha: str) -> httpx.Response:
        q = dict(req.url.params)
        offset, size = int(q["offset"]), int(q["size"])
        if sha in self.complete:
            return httpx.Response(200, json={"offset": size, "complete": True})
        held = self.blobs.setdefault(sha, bytearray())
        if offset != len(held):
            return _error(409, "offset_mismatch", "", **{"Upload-Offset": str(len(held))})
        chunk = req.content
        if self.cut_chunk_at is not None:
            held.extend(chunk[:self.cut_chunk_at])      # part of it durable, then the cut
            self.cut_chunk_at = None
            raise httpx.WriteError("link cut in the middle of a chunk (injected)")
        held.extend(chunk)
        if len(held) >= size:
            if hashlib.sha256(bytes(held)).hexdigest() != sha:
                del self.blobs[sha]
                return _error(422, "blob_hash_mismatch")
            self.complete.add(sha)
        return httpx.Response(200, json={"offset": len(held), "complete": sha in self.complete})

    # ------------------------------------------------------------------ batches
    def _batch(self, req: httpx.Request, kiosk: str | None) -> httpx.Response:
        data = json.loads(self._body(req))
        items = data.get("items", [])
        if len(items) > 50:
            return _error(413, "too_many_items")
        if any(i.get("uuid") in self.refuse_batch_with for i in items):
            return _error(422, "bad_request", "schema validation")
        results = []
        for item in items:
            results.append(self._item(item, kiosk))
        since = int(data.get("verdicts_since") or 0)
        out_verdicts = self.verdicts[since:]
        offer = None
        if self.bundle and data.get("bundle", {}).get("version") != self.bundle["version"]:
            sha = hashlib.sha256(self.bundle["data"]).hexdigest()
            offer = {"name": self.bundle["name"], "version": self.bundle["version"],
                     "sha256": sha, "size": len(self.bundle["data"]),
                     "url": f"/api/v1/bundles/{sha}"}
        return httpx.Response(200, json={
            "server_time": "now", "results": results, "verdicts": out_verdicts,
            "verdicts_cursor": str(len(self.verdicts)), "bundle_offer": offer})

    def _item(self, item: dict[str, Any], kiosk: str | None) -> dict[str, Any]:
        uid = item.get("uuid")
        base = {"uuid": uid, "server_id": None, "error": None}
        if uid in self.invalid_uuids or item.get("content_sha256") != content_sha256(item):
            return {**base, "status": "invalid",
                    "error": {"code": "content_hash_mismatch", "message": "hash"}}
        if uid in self.rows:
            row = self.rows[uid]
            if row["content_sha256"] == item["content_sha256"]:
                return {**base, "status": "duplicate", "server_id": row["id"]}
            self.conflicts.append(item)
            return {**base, "status": "conflict", "server_id": row["id"],
                    "error": {"code": "content_conflict", "message": "different content"}}
        for key in ("hea", "dat", "report_pdf"):
            f = item["files"].get(key)
            if f and f["sha256"] not in self.complete:
                return {**base, "status": "missing_blob",
                        "error": {"code": "missing_blob", "message": key}}
        row = {"id": next(self._ids), "content_sha256": item["content_sha256"], "item": item,
               "kiosk": kiosk, "canonical": canonical_json(item)}
        self.rows[uid] = row
        return {**base, "status": "created", "server_id": row["id"]}

    def revoke_all(self) -> None:
        for k in self.kiosks.values():
            k["revoked"] = True


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
