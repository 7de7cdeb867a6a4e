"""Server-side reliability with real processes: the same batch delivered concurrently, kill -9
of the server mid-batch, two uvicorn workers. Afterwards every screening exists exactly once."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

import httpx
import psycopg

from tests.server.harness import ServerProcess
from tests.server.kiosk import Kiosk, make_item, recording_files


def _prepared(srv: ServerProcess, n: int, seed: int) -> tuple[Kiosk, list[dict]]:
    srv.admin("facility", "add", "Wisma R")
    k = Kiosk(srv.url)
    assert k.enroll(srv.enrollment_code("Wisma R")).status_code == 201
    items = []
    for i in range(n):
        hea, dat = recording_files(seed + i, n=2000)
        k.upload(hea)
        k.upload(dat)
        items.append(make_item(hea, dat, resident={
            "resident_number": f"R-{i % 3}", "name": f"Orang {i % 3}", "birth_date": None,
            "sex": None, "room": None}))
    return k, items


def _rows(srv: ServerProcess) -> dict[str, int]:
    url = srv.database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn:
        return dict(conn.execute("SELECT uuid, id FROM screenings").fetchall())


def test_same_batch_delivered_concurrently(server_factory: Callable[..., ServerProcess]) -> None:
    srv = server_factory(workers=2)
    k, items = _prepared(srv, 20, 1000)
    answers: list[dict] = []

    def send() -> None:
        signer = Kiosk(srv.url)
        signer.key, signer.kiosk_id = k.key, k.kiosk_id
        r = signer.batch(items)
        assert r.status_code == 200, r.text
        answers.append(r.json())

    threads = [threading.Thread(target=send) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(answers) == 3
    rows = _rows(srv)
    assert sorted(rows) == sorted(i["uuid"] for i in items)  # one row per uuid
    for ans in answers:
        for item, res in zip(items, ans["results"], strict=True):
            assert res["status"] in ("created", "duplicate")
            assert res["server_id"] == rows[item["uuid"]]
    created = sum(r["status"] == "created" for a in answers for r in a["results"])
    assert created == len(items)
    url = srv.database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM residents").fetchone()[0] == 3


def test_kill9_mid_batch_then_resend(server_factory: Callable[..., ServerProcess]) -> None:
    srv = server_factory()
    k, items = _prepared(srv, 50, 2000)
    done = threading.Event()

    def send() -> None:
        with contextlib.suppress(httpx.HTTPError):  # the server died under it: no answer
            k.batch(items)
        done.set()

    t = threading.Thread(target=send)
    t.start()
    time.sleep(0.15)
    srv.kill()
    t.join(30)
    srv.start()
    before = _rows(srv)
    print(f"rows committed before the kill: {len(before)} of {len(items)}")
    assert 0 <= len(before) <= len(items)  # how far it got is timing
    r = k.batch(items)
    assert r.status_code == 200
    statuses = [res["status"] for res in r.json()["results"]]
    assert set(statuses) <= {"created", "duplicate"}
    assert statuses.count("duplicate") == len(before)
    rows = _rows(srv)
    assert sorted(rows) == sorted(i["uuid"] for i in items)
    for item, res in zip(items, r.json()["results"], strict=True):
        assert res["server_id"] == rows[item["uuid"]]
