"""Chunked, resumable blob upload (docs/sync.md §5): ``HEAD`` for the server's durable offset,
then ``PATCH`` chunks from there; a ``409 offset_mismatch`` names the server's offset and the
upload continues from it, so an upload cut at any byte resumes without sending the whole file.

>>> import hashlib, httpx
>>> from detak.sync.http import Session
>>> data = b"x" * 10
>>> sha = hashlib.sha256(data).hexdigest()
>>> held = bytearray()
>>> def server(req):
...     if req.method == "HEAD":
...         return httpx.Response(200, headers={"Upload-Offset": str(len(held)),
...                                             "Upload-Complete": "?0"})
...     held.extend(req.content)
...     return httpx.Response(200, json={"offset": len(held), "complete": len(held) == 10})
>>> s = Session("http://127.0.0.1:9", kiosk_id="k", key=__import__(
...     "detak.sync.wire", fromlist=["x"]).new_private_key(),
...     transport=httpx.MockTransport(server))
>>> upload_blob(s, sha, data, chunk_size=4), bytes(held) == data
(3, True)
"""

from __future__ import annotations

import hashlib
import logging
import re

from detak.sync.errors import ApiError
from detak.sync.http import API, Session

log = logging.getLogger(__name__)

#: the largest chunk the protocol allows (§2)
MAX_CHUNK = 1 << 20
_SHA = re.compile(r"[0-9a-f]{64}")


def blob_path(sha256: str) -> str:
    if not _SHA.fullmatch(sha256):
        raise ValueError(f"{sha256!r} is not a SHA-256 in lower-case hex")
    return f"{API}/blobs/{sha256}"


def blob_offset(session: Session, sha256: str) -> tuple[int, bool]:
    """``(durable offset, complete)`` the server holds for the blob."""
    resp = session.request("HEAD", blob_path(sha256))
    try:
        offset = int(resp.headers.get("Upload-Offset", "0"))
    except ValueError as exc:
        raise ApiError(resp.status_code, "bad_answer", "Upload-Offset is not a number") from exc
    return offset, resp.headers.get("Upload-Complete", "?0").strip() == "?1"


def _server_offset(resp_headers: object, size: int) -> int:
    try:
        offset = int(resp_headers.get("Upload-Offset", ""))  # type: ignore[attr-defined]
    except ValueError:
        offset = -1
    if not 0 <= offset <= size:
        raise ApiError(409, "offset_mismatch", f"the server's offset {offset} is not in "
                       f"0..{size}")
    return offset


def upload_blob(session: Session, sha256: str, data: bytes,
                chunk_size: int = MAX_CHUNK, probe: bool = True) -> int:
    """Make the server hold ``data`` (whose SHA-256 is ``sha256``) completely; returns the
    number of PATCH requests sent (0: the server had it). Raises `ApiError` when the server
    refuses it (too large, or it does not hash to ``sha256`` twice over).

    ``probe=False`` skips the HEAD and sends from offset 0 at once: one round trip less for a
    blob the server has never seen (a server holding some of it answers 409 with its offset, one
    holding all of it 200 complete, and the upload goes on from there)."""
    if not 0 < chunk_size <= MAX_CHUNK:
        raise ValueError(f"chunk size must be 1..{MAX_CHUNK} bytes")
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ValueError(f"blob {sha256[:12]}: the bytes do not hash to its name")
    path, size = blob_path(sha256), len(data)
    offset, complete = blob_offset(session, sha256) if probe else (0, False)
    if complete:
        return 0
    if offset > size:
        offset = 0
    patches, mismatches = 0, 0
    # each PATCH either advances the offset or learns the server's: bounded
    budget = 4 * (size // chunk_size + 1) + 16
    while patches < budget:
        chunk = data[offset:offset + chunk_size]
        patches += 1
        try:
            resp = session.request(
                "PATCH", f"{path}?offset={offset}&size={size}", body=chunk,
                headers={"Content-Type": "application/octet-stream"}, ok_statuses=(409,))
        except ApiError as err:
            if err.code == "blob_hash_mismatch" and mismatches == 0:
                mismatches += 1        # the server discarded its partial bytes: once more
                log.warning("blob %s: the server's copy did not hash right; sending it again",
                            sha256[:12])
                offset = 0
                continue
            raise
        if resp.status_code == 409:
            offset = _server_offset(resp.headers, size)
            continue
        answer = resp.json()
        if answer.get("complete"):
            return patches
        new = int(answer.get("offset", -1))
        if not 0 <= new <= size:
            raise ApiError(resp.status_code, "bad_answer", f"offset {new} outside 0..{size}")
        offset = new
    raise ApiError(409, "offset_mismatch", f"blob {sha256[:12]}: no progress after {patches} "
                   "chunks")
