"""Load shedding with real processes (docs/sync.md §8.1): a real `detak server` (uvicorn) on a
real PostgreSQL with a tiny admission limit (one kiosk request in progress, none waiting)
answers the kiosk API ``503 overloaded`` with ``Retry-After`` while its one slot is held —
but not ``/healthz``, the staff pages or a blob's ``HEAD`` — and the real `detak sync` waits as
told ("server busy, retrying in N s") and finishes once the slot frees: every screening on the
server exactly once, byte-identical, nothing lost or duplicated.

The slot is held deterministically: a raw socket sends a kiosk ``PATCH``'s headers and only
part of its body, so the request is admitted and stays in progress until the socket closes.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from detak.kiosk.store import Store
from tests.server.harness import Postgres, ServerProcess
from tests.server.kiosk import Kiosk, recording_files
from tests.sync.conftest import add_screenings
from tests.sync.e2e import enroll_cli, start_sync, sync_env, verify_exactly_once

TINY = ("--max-active", "1", "--max-waiting", "0")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    pg = Postgres.start(tmp_path_factory.mktemp("pg"))
    srv = ServerProcess(tmp_path_factory.mktemp("srv") / "data", pg.new_database(), args=TINY)
    try:
        srv.start()
        srv.admin("facility", "add", "Wisma Ramai")
        yield srv
    finally:
        srv.stop()
        pg.stop()


def _admission(srv: ServerProcess) -> dict:
    r = httpx.get(srv.url + "/healthz", timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["admission"]


@contextlib.contextmanager
def held_slot(srv: ServerProcess, kiosk: Kiosk) -> Iterator[None]:
    """A kiosk PATCH admitted and kept in progress (half its body sent) until the block ends."""
    body = b"x" * 100
    path = f"/api/v1/blobs/{'0' * 64}?offset=0&size=100"
    headers = kiosk.headers("PATCH", path, body)
    head = (f"PATCH {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
            "Content-Type: application/octet-stream\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode()
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
    try:
        sock.sendall(head + body[:10])
        deadline = time.monotonic() + 20
        while _admission(srv)["active"] < 1:
            assert time.monotonic() < deadline, "the held request was never admitted"
            time.sleep(0.05)
        yield
    finally:
        sock.close()


def test_a_full_server_sheds_the_kiosk_api_only(tiny: ServerProcess) -> None:
    k = Kiosk(tiny.url)
    assert k.enroll(tiny.enrollment_code("Wisma Ramai")).status_code == 201
    hea, _ = recording_files(7)
    sha = __import__("hashlib").sha256(hea).hexdigest()
    before = _admission(tiny)
    assert before["limit"] == 1 and before["max_waiting"] == 0
    with held_slot(tiny, k):
        r = k.request("PATCH", f"/api/v1/blobs/{sha}?offset=0&size={len(hea)}", hea,
                      {"Content-Type": "application/octet-stream"})
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "overloaded"
        assert r.headers["Retry-After"].isdigit() and 1 <= int(r.headers["Retry-After"]) <= 30
        assert "X-Detak-Server-Time" in r.headers
        batch = k.request("POST", "/api/v1/sync/batch", b'{"protocol":1,"items":[]}',
                          {"Content-Type": "application/json"})
        assert batch.status_code == 503 and batch.json()["error"]["code"] == "overloaded"
        # never shed: the health check, a staff page, a blob's HEAD (a resume probe)
        assert httpx.get(tiny.url + "/healthz", timeout=10).status_code == 200
        assert httpx.get(tiny.url + "/login", timeout=10).status_code == 200
        assert k.request("HEAD", f"/api/v1/blobs/{sha}").status_code == 200
        assert _admission(tiny)["shed_total"] >= before["shed_total"] + 2
    # the slot is free again: the same upload is accepted, nothing of the shed one was kept
    deadline = time.monotonic() + 20
    while _admission(tiny)["active"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    r = k.request("PATCH", f"/api/v1/blobs/{sha}?offset=0&size={len(hea)}", hea,
                  {"Content-Type": "application/octet-stream"})
    assert r.status_code == 200 and r.json() == {"offset": len(hea), "complete": True}


def test_detak_sync_waits_for_a_busy_server_and_loses_nothing(tiny: ServerProcess,
                                                             tmp_path: Path) -> None:
    store_dir = tmp_path / "kiosk"
    with Store.open(store_dir) as store:
        add_screenings(store, 5, seed=zlib.crc32(tmp_path.name.encode()), seconds=4.0)
    env = sync_env()
    enroll_cli(store_dir, tiny.url, tiny.enrollment_code("Wisma Ramai"), env)
    holder = Kiosk(tiny.url)
    assert holder.enroll(tiny.enrollment_code("Wisma Ramai")).status_code == 201
    shed0 = _admission(tiny)["shed_total"]
    with held_slot(tiny, holder):
        proc = start_sync(store_dir, env)
        deadline = time.monotonic() + 60
        while _admission(tiny)["shed_total"] < shed0 + 2:   # sent home at least twice
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "detak sync was never shed"
            time.sleep(0.1)
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    assert "detak sync: server busy, retrying in " in err
    assert "error" not in err.lower()
    import json

    report = json.loads(out.strip().splitlines()[-1])
    assert (report["synced"], report["pending"], report["failed"]) == (5, 0, 0)
    assert report["deferrals"] >= 2 and report["error"] is None
    assert verify_exactly_once(tiny, store_dir) == {
        "screenings": 5, "lost": 0, "duplicated": 0, "mismatched": 0, "unsynced": 0}


def test_many_kiosks_at_once_on_a_tiny_limit_all_arrive_once(tiny: ServerProcess,
                                                             tmp_path: Path) -> None:
    """Eight real `detak sync` runs at once against one slot: deferrals, then everything
    exactly once."""
    env = sync_env()
    stores = []
    for i in range(8):
        d = tmp_path / f"kiosk{i}"
        with Store.open(d) as store:
            add_screenings(store, 3, seed=zlib.crc32(f"{tmp_path.name}-{i}".encode()),
                           seconds=4.0)
        enroll_cli(d, tiny.url, tiny.enrollment_code("Wisma Ramai"), env)
        stores.append(d)
    shed0 = _admission(tiny)["shed_total"]
    procs = [start_sync(d, env) for d in stores]
    results: list[tuple[int, str, str]] = []
    lock = threading.Lock()

    def wait(p) -> None:  # noqa: ANN001
        out, err = p.communicate(timeout=300)
        with lock:
            results.append((p.returncode, out, err))

    threads = [threading.Thread(target=wait, args=(p,)) for p in procs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(code == 0 for code, _, _ in results), [e[-500:] for _, _, e in results]
    for d in stores:
        assert verify_exactly_once(tiny, d) == {
            "screenings": 3, "lost": 0, "duplicated": 0, "mismatched": 0, "unsynced": 0}
    assert _admission(tiny)["shed_total"] > shed0   # the limit did send some home
