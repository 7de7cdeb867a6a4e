"""Chunked, resumable blob uploads (docs/sync.md §5), durable before they are acknowledged.

A chunk is appended to ``DIR/blobs/partial/<sha>`` and fsynced, then its new length is committed
to ``partial_uploads.offset``: that column is the truth. A crash between the fsync and the
commit leaves the file longer than the recorded offset; `recover` (at start-up) and every
`write_chunk` truncate the file back to the recorded offset first, so ``HEAD`` never reports
bytes that are not on disk. Two uploads of the same blob at once are serialised by a row lock.

A blob sent whole in one chunk (offset 0, the chunk its full size, no partial upload of it on
record) takes a shorter path: its hash is checked in memory, it is written to a uniquely named
file under ``partial/`` (a crash leaves a file without a record, which `recover` removes),
fsynced and moved into place, and its row committed — no ``partial_uploads`` row at all. Nearly
every recording and report a kiosk sends is such a blob (chunks are 1 MiB).
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from detak.server.errors import ApiError
from detak.server.filestore import LocalFileStore
from detak.server.models import Blob, PartialUpload

MAX_CHUNK = 1 << 20
MAX_BLOB = 64 << 20


@dataclass(frozen=True)
class BlobState:
    offset: int
    complete: bool


def _file_sha(path: os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def blob_state(session: Session, sha: str) -> BlobState:
    """How much of ``sha`` the server holds durably."""
    size, offset = session.connection().execute(_STATE, {"sha": sha}).one()
    if size is not None:
        return BlobState(size, True)
    return BlobState(offset or 0, False)


_ADD_BLOB = pg_insert(Blob).on_conflict_do_nothing()
#: one statement: the complete blob's size, or the partial upload's recorded offset
_STATE = select(
    select(Blob.size).where(Blob.sha256 == bindparam("sha")).scalar_subquery(),
    select(PartialUpload.offset).where(PartialUpload.sha256 == bindparam("sha"))
    .scalar_subquery())


def _write_whole(session: Session, store: LocalFileStore, sha: str, data: bytes,
                 on_complete: Callable[[Session], None] | None) -> BlobState:
    """The one-chunk path (module docstring): no partial-upload row; commits."""
    if hashlib.sha256(data).hexdigest() != sha:
        session.rollback()
        raise ApiError(422, "blob_hash_mismatch", "the bytes do not have this SHA-256; "
                       "the partial upload was discarded")
    tmp = store.partial_dir / f"{sha}.{secrets.token_hex(8)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    store.adopt(tmp, sha)
    session.connection().execute(_ADD_BLOB, {"sha256": sha, "size": len(data)})
    if on_complete is not None:
        on_complete(session)
    session.commit()
    return BlobState(len(data), True)


def write_chunk(session: Session, store: LocalFileStore, sha: str, offset: int, size: int,
                data: bytes, on_complete: Callable[[Session], None] | None = None) -> BlobState:
    """Append ``data`` at ``offset`` to the upload of ``sha`` (total ``size``); commits.
    ``on_complete(session)`` runs in the transaction that completes the blob (for its audit
    row), only when this chunk completes it."""
    if size < 0 or size > MAX_BLOB:
        raise ApiError(413, "blob_too_large", f"a blob may hold at most {MAX_BLOB} bytes")
    if len(data) > MAX_CHUNK:
        raise ApiError(413, "chunk_too_large", f"a chunk may hold at most {MAX_CHUNK} bytes")
    done, recorded = session.connection().execute(_STATE, {"sha": sha}).one()
    if done is not None:
        return BlobState(done, True)
    if offset == 0 and len(data) == size and size > 0 and recorded is None:
        return _write_whole(session, store, sha, data, on_complete)
    session.execute(pg_insert(PartialUpload).values(sha256=sha, size=size, offset=0)
                    .on_conflict_do_nothing())
    part = session.execute(select(PartialUpload).where(PartialUpload.sha256 == sha)
                           .with_for_update()).scalar_one()
    if session.get(Blob, sha) is not None:  # completed by another request while we waited
        session.execute(delete(PartialUpload).where(PartialUpload.sha256 == sha))
        session.commit()
        return blob_state(session, sha)
    if part.size != size:
        session.rollback()
        raise ApiError(400, "bad_request", "size differs from the upload's size "
                       f"({part.size})")
    if offset != part.offset:
        current = part.offset
        session.rollback()
        raise ApiError(409, "offset_mismatch", f"the server holds {current} bytes",
                       headers={"Upload-Offset": str(current)})
    if offset + len(data) > size:
        session.rollback()
        raise ApiError(400, "bad_request", "chunk goes past the blob's size")
    path = store.partial_path(sha)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        on_disk = os.fstat(fd).st_size
        if on_disk < offset:  # bytes recorded but lost from the disk: continue from what is there
            part.offset = on_disk
            session.commit()
            raise ApiError(409, "offset_mismatch", f"the server holds {on_disk} bytes",
                           headers={"Upload-Offset": str(on_disk)})
        os.ftruncate(fd, offset)  # drop bytes a crash left beyond the recorded offset
        os.lseek(fd, offset, os.SEEK_SET)
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        os.fsync(fd)
    finally:
        os.close(fd)
    new = offset + len(data)
    if new < size:
        part.offset = new
        session.commit()
        return BlobState(new, False)
    if _file_sha(path) != sha:
        path.unlink(missing_ok=True)
        session.execute(delete(PartialUpload).where(PartialUpload.sha256 == sha))
        session.commit()
        raise ApiError(422, "blob_hash_mismatch", "the bytes do not have this SHA-256; "
                       "the partial upload was discarded")
    store.adopt(path, sha)
    session.execute(pg_insert(Blob).values(sha256=sha, size=size).on_conflict_do_nothing())
    session.execute(delete(PartialUpload).where(PartialUpload.sha256 == sha))
    if on_complete is not None:
        on_complete(session)
    session.commit()
    return BlobState(size, True)


def recover(session: Session, store: LocalFileStore) -> dict[str, int]:
    """After a crash: truncate partial files to their recorded offsets, forget partial files
    without a record, adopt complete files whose row did not commit. Returns counts."""
    counts = {"truncated": 0, "removed": 0, "reset": 0, "adopted": 0}
    parts = {p.sha256: p for p in session.scalars(select(PartialUpload))}
    for path in store.partial_dir.iterdir():
        part = parts.get(path.name)
        if part is None:
            path.unlink(missing_ok=True)
            counts["removed"] += 1
            continue
        length = path.stat().st_size
        if length > part.offset:
            with open(path, "r+b") as fh:
                fh.truncate(part.offset)
                os.fsync(fh.fileno())
            counts["truncated"] += 1
    for sha, part in parts.items():
        path = store.partial_path(sha)
        length = path.stat().st_size if path.exists() else 0
        if length < part.offset:  # the file lost bytes (or was adopted): start again there
            if store.has(sha) and _file_sha(store.path(sha)) == sha:
                session.execute(insert(Blob).values(sha256=sha, size=store.size(sha)))
                session.execute(delete(PartialUpload).where(PartialUpload.sha256 == sha))
                counts["adopted"] += 1
            else:
                part.offset = length
                counts["reset"] += 1
    session.commit()
    return counts
