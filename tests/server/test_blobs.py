"""Blob uploads (docs/sync.md §5): offsets, resume, hash check, names, early size refusal, and
recovery of a half-written chunk after kill -9."""

from __future__ import annotations

import socket
import time

import pytest

from tests.server.harness import ServerProcess
from tests.server.kiosk import Kiosk, sha


@pytest.fixture(scope="module")
def kiosk(detak_server: ServerProcess) -> Kiosk:
    k = Kiosk(detak_server.url)
    assert k.enroll(detak_server.enrollment_code("Wisma A")).status_code == 201
    return k


def _patch(k: Kiosk, digest: str, offset: int, size: int, data: bytes):  # noqa: ANN202
    return k.request("PATCH", f"/api/v1/blobs/{digest}?offset={offset}&size={size}", data,
                     {"Content-Type": "application/octet-stream"})


def test_resume_from_the_servers_offset(kiosk: Kiosk) -> None:
    data = bytes(range(256)) * 40
    digest = sha(data)
    assert _patch(kiosk, digest, 0, len(data), data[:4000]).json() == {"offset": 4000,
                                                                        "complete": False}
    head = kiosk.request("HEAD", f"/api/v1/blobs/{digest}")
    assert head.headers["Upload-Offset"] == "4000" and head.headers["Upload-Complete"] == "?0"
    r = _patch(kiosk, digest, 1000, len(data), data[1000:2000])  # a stale retry
    assert r.status_code == 409 and r.headers["Upload-Offset"] == "4000"
    assert r.json()["error"]["code"] == "offset_mismatch"
    assert _patch(kiosk, digest, 4000, len(data), data[4000:]).json()["complete"] is True
    head = kiosk.request("HEAD", f"/api/v1/blobs/{digest}")
    assert head.headers["Upload-Complete"] == "?1" and head.headers["Upload-Offset"] == str(
        len(data))
    again = _patch(kiosk, digest, 0, len(data), data[:10])  # complete: no write
    assert again.json() == {"offset": len(data), "complete": True}


def test_hash_mismatch_discards(kiosk: Kiosk) -> None:
    digest = sha(b"what was promised")
    r = _patch(kiosk, digest, 0, 5, b"other")
    assert r.status_code == 422 and r.json()["error"]["code"] == "blob_hash_mismatch"
    assert kiosk.request("HEAD", f"/api/v1/blobs/{digest}").headers["Upload-Offset"] == "0"


@pytest.mark.parametrize("name", ["ABC", "../../etc/passwd", "a" * 63, "g" * 64, "A" * 64])
def test_bad_blob_names(kiosk: Kiosk, name: str) -> None:
    r = kiosk.request("HEAD", f"/api/v1/blobs/{name}")
    assert r.status_code in (400, 404)
    r = _patch(kiosk, name, 0, 1, b"x")
    assert r.status_code in (400, 404)
    if "/" not in name:
        assert r.json()["error"]["code"] == "bad_blob_name"


def test_chunk_and_blob_limits(kiosk: Kiosk) -> None:
    big = b"x" * ((1 << 20) + 1)
    r = _patch(kiosk, sha(big), 0, len(big), big)
    assert r.status_code == 413
    r = _patch(kiosk, "a" * 64, 0, 65 << 20, b"x")
    assert r.status_code == 413


def _declare_huge(port: int, method: str, path: str, headers: dict[str, str],
                  length: int) -> str:
    """Send only the head of a request that declares ``length`` bytes (and 64 kB of them)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {length}",
                "Content-Type: application/octet-stream"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        s.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + b"x" * 65536)
        return s.recv(4096).decode(errors="replace")


def test_huge_upload_is_refused_before_it_is_read(detak_server: ServerProcess,
                                                  kiosk: Kiosk) -> None:
    """A 2 GB Content-Length gets 413 at once: the server does not wait for (or buffer) it."""
    path = f"/api/v1/blobs/{'b' * 64}?offset=0&size=2000000000"
    start = time.monotonic()
    answer = _declare_huge(detak_server.port, "PATCH", path,
                           kiosk.headers("PATCH", path, b""), 2_000_000_000)
    assert answer.startswith("HTTP/1.1 413"), answer[:200]
    path = "/api/v1/sync/batch"
    answer = _declare_huge(detak_server.port, "POST", path, kiosk.headers("POST", path, b""),
                           2_000_000_000)
    assert answer.startswith("HTTP/1.1 413"), answer[:200]
    assert time.monotonic() - start < 5


def test_half_written_chunk_after_kill9_is_truncated(detak_server: ServerProcess,
                                                     kiosk: Kiosk) -> None:
    """A crash after the fsync but before the commit leaves extra bytes in the partial file;
    the restarted server trusts the recorded offset only."""
    data = bytes(range(200)) * 50
    digest = sha(data)
    assert _patch(kiosk, digest, 0, len(data), data[:3000]).json()["offset"] == 3000
    detak_server.kill()
    partial = detak_server.data / "blobs" / "partial" / digest
    with open(partial, "ab") as fh:  # what an interrupted chunk leaves: bytes never recorded
        fh.write(b"\0garbage" * 100)
    (detak_server.data / "blobs" / "partial" / ("c" * 64)).write_bytes(b"orphan")
    detak_server.start()
    assert partial.stat().st_size == 3000
    assert not (detak_server.data / "blobs" / "partial" / ("c" * 64)).exists()
    head = kiosk.request("HEAD", f"/api/v1/blobs/{digest}")
    assert head.headers["Upload-Offset"] == "3000"
    assert _patch(kiosk, digest, 3000, len(data), data[3000:]).json()["complete"] is True
    stored = detak_server.data / "blobs" / digest[:2] / digest
    assert sha(stored.read_bytes()) == digest


def _db(srv: ServerProcess, sql: str, *params: object) -> list[tuple]:
    import psycopg

    url = str(srv.database_url).replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def test_a_blob_in_one_chunk_is_stored_once_and_audited_once(detak_server: ServerProcess,
                                                             kiosk: Kiosk) -> None:
    """The one-chunk path: no partial-upload row or file left, the blob's row and its audit
    row committed together; a retry of the same chunk is answered complete, not audited
    again; a temp file a crash left in partial/ is removed at start-up."""
    data = b"one chunk " * 999
    digest = sha(data)
    assert _patch(kiosk, digest, 0, len(data), data).json() == {"offset": len(data),
                                                                "complete": True}
    assert _patch(kiosk, digest, 0, len(data), data).json()["complete"] is True
    stored = detak_server.data / "blobs" / digest[:2] / digest
    assert stored.read_bytes() == data
    partial = detak_server.data / "blobs" / "partial"
    assert [p.name for p in partial.iterdir() if p.name.startswith(digest)] == []
    assert _db(detak_server, "SELECT count(*) FROM partial_uploads WHERE sha256 = %s",
               digest) == [(0,)]
    assert _db(detak_server, "SELECT size FROM blobs WHERE sha256 = %s", digest) == [
        (len(data),)]
    assert _db(detak_server, "SELECT count(*) FROM audit_log WHERE action = 'blob.store' "
               "AND object_id = %s", digest) == [(1,)]
    leftover = partial / f"{'d' * 64}.0123456789abcdef"
    detak_server.kill()
    leftover.write_bytes(b"a crash between the write and the rename")
    detak_server.start()
    assert not leftover.exists()
