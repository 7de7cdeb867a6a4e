"""The kiosk-facing JSON API under ``/api/v1`` (docs/sync.md): enrolment, blobs, batches,
bundles. Bodies are read raw (the signature covers the bytes as sent) with early size limits.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from detak.server import accounts
from detak.server.audit import audit
from detak.server.auth import authenticate_kiosk
from detak.server.blobs import MAX_CHUNK, blob_state, write_chunk
from detak.server.bodies import check_declared_length, decode_json_body, read_limited
from detak.server.bundles import bundle_public_key, current_offer
from detak.server.errors import ApiError
from detak.server.filestore import SHA256_RE
from detak.server.ingest import ingest_item
from detak.server.models import Bundle
from detak.server.review_data import verdicts_for_kiosk
from detak.server.schemas import MAX_ITEMS, BatchRequest, EnrolRequest, openapi_body

PROTOCOLS = (1,)
SIGNED = {"X-Detak-Kiosk": "kiosk id", "X-Detak-Timestamp": "Unix seconds",
          "X-Detak-Nonce": "32 hex", "X-Detak-Signature": "base64 Ed25519 signature"}
_SIGNED_PARAMS = [{"name": k, "in": "header", "required": True,
                   "schema": {"type": "string", "maxLength": 200}} for k in SIGNED]
_MAX_ENROL = 16 << 10
#: the blob name in the path (a wrong one is 400 bad_blob_name, see `detak.server.app`)
BlobName = Path(pattern=r"^[0-9a-f]{64}$", description="lower-case hex SHA-256")

router = APIRouter(prefix="/api/v1")


def _iso_now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _remote(request: Request) -> str | None:
    return request.client.host if request.client else None


@contextlib.contextmanager
def _session(request: Request) -> Iterator[Session]:
    """A session on one pooled connection for the whole request: one checkout (and one
    pre-ping) however many transactions the request commits."""
    with request.app.state.engine.connect() as conn, \
            Session(bind=conn, expire_on_commit=False) as session:
        yield session


def _parse_json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ApiError(400, "bad_json", "the body is not JSON") from None


def _validate(model: Any, obj: Any) -> Any:
    try:
        return model.model_validate(obj)
    except ValidationError as err:
        e = err.errors()[0]
        where = ".".join(str(p) for p in e.get("loc", ()))
        raise ApiError(422, "schema_invalid", f"{where}: {e.get('msg', 'invalid')}"[:300]) \
            from None


def _blob_name(sha: str) -> str:
    if not SHA256_RE.fullmatch(sha):
        raise ApiError(400, "bad_blob_name", "a blob name is 64 lower-case hex characters")
    return sha


@router.post("/enroll", status_code=201, openapi_extra=openapi_body(EnrolRequest),
    responses={201: {"description": "enrolled"}, 403: {"description": "code invalid"}})
async def enroll(request: Request) -> JSONResponse:
    """Register a kiosk with a one-time code and its Ed25519 public key (§3)."""
    raw = await read_limited(request, _MAX_ENROL)
    req = _validate(EnrolRequest, _parse_json(decode_json_body(request, raw, _MAX_ENROL)))
    return await run_in_threadpool(_enroll, request, req)


def _enroll(request: Request, req: EnrolRequest) -> JSONResponse:
    with _session(request) as s:
        kiosk, fac = accounts.enrol_kiosk(s, req.code, req.public_key, req.name,
                                          _remote(request))
        body = {"kiosk_id": kiosk.id, "facility": {"id": fac.id, "name": fac.name},
                "bundle_public_key": bundle_public_key(s), "server_time": _iso_now()}
        s.commit()
    return JSONResponse(body, status_code=201)


@router.head("/blobs/{sha256}", openapi_extra={"parameters": _SIGNED_PARAMS})
async def blob_head(sha256: str = BlobName, *, request: Request) -> Response:
    """How many bytes of a blob the server holds durably (§5)."""
    sha = _blob_name(sha256)
    return await run_in_threadpool(_blob_head, request, sha)


def _blob_head(request: Request, sha: str) -> Response:
    with _session(request) as s:
        authenticate_kiosk(s, request, b"")
        st = blob_state(s, sha)
    return Response(status_code=200, headers={"Upload-Offset": str(st.offset),
                                              "Upload-Complete": "?1" if st.complete else "?0"})


@router.patch("/blobs/{sha256}", openapi_extra={"parameters": _SIGNED_PARAMS, "requestBody": {
    "required": True, "content": {"application/octet-stream": {
        "schema": {"type": "string", "format": "binary"}}}}})
async def blob_patch(request: Request, sha256: str = BlobName, *, offset: int,
                     size: int) -> JSONResponse:
    """Append one chunk (at most 1 MiB) at ``offset`` of a blob of ``size`` bytes (§5)."""
    sha = _blob_name(sha256)
    check_declared_length(request, MAX_CHUNK)
    if request.headers.get("content-encoding", "identity").lower() not in ("", "identity"):
        raise ApiError(415, "unsupported_encoding", "blob chunks are sent as they are")
    if offset < 0 or size < 0:
        raise ApiError(400, "bad_request", "offset and size are >= 0")
    data = await read_limited(request, MAX_CHUNK)
    return await run_in_threadpool(_blob_patch, request, sha, offset, size, data)


def _blob_patch(request: Request, sha: str, offset: int, size: int, data: bytes) -> JSONResponse:
    with _session(request) as s:
        kiosk = authenticate_kiosk(s, request, data)

        def stored(tx) -> None:  # noqa: ANN001 - the transaction that completes the blob
            audit(tx, f"kiosk:{kiosk.id}", "blob.store", object_kind="blob", object_id=sha,
                  facility_id=kiosk.facility_id, remote=_remote(request))

        st = write_chunk(s, request.app.state.store, sha, offset, size, data, on_complete=stored)
    return JSONResponse({"offset": st.offset, "complete": st.complete},
                        headers={"Upload-Offset": str(st.offset)})


@router.post("/sync/batch", openapi_extra={"parameters": _SIGNED_PARAMS,
                                           **openapi_body(BatchRequest)})
async def sync_batch(request: Request) -> JSONResponse:
    """Store up to 50 screenings; per-item results, verdicts and the bundle offer (§6, §7)."""
    raw = await read_limited(request, request.app.state.max_json)
    data = decode_json_body(request, raw, request.app.state.max_json)
    return await run_in_threadpool(_sync_batch, request, raw, data)


def _sync_batch(request: Request, raw: bytes, data: bytes) -> JSONResponse:
    with _session(request) as s:
        kiosk = authenticate_kiosk(s, request, raw)
        obj = _parse_json(data)
        if isinstance(obj, dict) and isinstance(obj.get("items"), list) \
                and len(obj["items"]) > MAX_ITEMS:
            raise ApiError(413, "too_many_items", f"a batch holds at most {MAX_ITEMS} items")
        if isinstance(obj, dict) and isinstance(obj.get("protocol"), int) \
                and obj["protocol"] not in PROTOCOLS:
            raise ApiError(400, "protocol_unsupported",
                           f"this server speaks protocol {', '.join(map(str, PROTOCOLS))}")
        req = _validate(BatchRequest, obj)
        remote = _remote(request)
        results = [ingest_item(s, kiosk, item, remote) for item in req.items]
        bundle = req.bundle
        offer = current_offer(s, bundle.name, bundle.version) if bundle else None
        verdicts, cursor = verdicts_for_kiosk(s, kiosk.facility_id, req.verdicts_since)
        if verdicts:
            audit(s, f"kiosk:{kiosk.id}", "verdict.deliver", object_kind="verdict",
                  facility_id=kiosk.facility_id, remote=remote,
                  detail={"screenings": [v["server_id"] for v in verdicts][:200]})
        s.commit()
    return JSONResponse({"server_time": _iso_now(), "results": results, "verdicts": verdicts,
                         "verdicts_cursor": cursor, "bundle_offer": offer})


@router.get("/bundles/{sha256}", openapi_extra={"parameters": _SIGNED_PARAMS},
            response_class=FileResponse)
async def bundle_file(request: Request, sha256: str = BlobName) -> FileResponse:
    """The bundle file with this SHA-256 (only a published bundle)."""
    sha = _blob_name(sha256)
    await run_in_threadpool(_bundle_check, request, sha)
    return FileResponse(request.app.state.store.path(sha), media_type="application/gzip")


def _bundle_check(request: Request, sha: str) -> None:
    with _session(request) as s:
        kiosk = authenticate_kiosk(s, request, b"")
        if s.get(Bundle, sha) is None:
            raise ApiError(404, "not_found", "no such bundle")
        audit(s, f"kiosk:{kiosk.id}", "bundle.download", object_kind="bundle", object_id=sha,
              facility_id=kiosk.facility_id, remote=_remote(request))
        s.commit()
