"""The client and a server shedding load (docs/sync.md §8.1): ``503 overloaded`` is a deferral
— waited out as ``Retry-After`` says, jittered, without spending the request's attempts —
bounded per run; the CLI and the kiosk app's background sync say "server busy", not an
error."""

from __future__ import annotations

import random

from detak.kiosk.store import Store
from detak.sync.background import BackgroundSync
from detak.sync.retry import RetryPolicy
from tests.sync.conftest import add_screenings, make_client
from tests.sync.fake_server import FakeServer


def test_overloaded_answers_are_waited_out_without_spending_attempts(
        enrolled: Store, server: FakeServer) -> None:
    add_screenings(enrolled, 2)
    server.overload_next = [3] * 10                    # more than the 6 attempts
    notices: list[str] = []
    client = make_client(enrolled, server, notify=notices.append,
                         policy=RetryPolicy(attempts=6))
    report = client.sync()
    assert (report.synced, report.pending, report.error, report.busy) == (2, 0, None, False)
    assert report.deferrals == 10 and report.requests_retried == 0
    assert len(client.sleeps) == 10
    assert all(3.0 <= s <= 4.5 for s in client.sleeps)          # Retry-After, jittered up
    assert len(set(client.sleeps)) == 10                         # not in lockstep
    assert abs(report.deferred_s - sum(client.sleeps)) < 0.01
    assert notices[0].startswith("server busy, retrying in ") and notices[0].endswith(" s")
    assert len(server.rows) == 2


def test_a_long_retry_after_is_capped(enrolled: Store, server: FakeServer) -> None:
    add_screenings(enrolled, 1)
    server.overload_next = [3600]
    client = make_client(enrolled, server)
    assert client.sync().synced == 1
    assert 30.0 <= client.sleeps[0] <= 45.0


def test_deferrals_are_bounded_per_run(enrolled: Store, server: FakeServer) -> None:
    ids = add_screenings(enrolled, 2)
    server.overload_next = [5] * 1000
    client = make_client(enrolled, server, policy=RetryPolicy(defer_s=60.0))
    report = client.sync()
    assert report.busy and report.synced == 0 and report.pending == 2
    assert "the server is busy" in report.error
    assert sum(client.sleeps) <= 60.0 and len(client.sleeps) >= 8
    assert {r["screening_id"] for r in enrolled.pending_outbox()} == set(ids)   # nothing lost
    server.overload_next = []
    assert make_client(enrolled, server).sync().synced == 2          # the next run goes on


def test_the_background_sync_says_busy_not_error(enrolled: Store, server: FakeServer) -> None:
    add_screenings(enrolled, 1)
    server.overload_next = [2] * 1000
    sleeps: list[float] = []
    bg = BackgroundSync(enrolled.root, policy=RetryPolicy(base=0.5, cap=5.0, attempts=3,
                                                          defer_s=10.0),
                        client_options={"transport": server.transport(), "sleep": sleeps.append,
                                        "rng": random.Random(2)})
    seen: list[dict] = []
    orig = bg._busy

    def spy(message: str) -> None:
        orig(message)
        seen.append(dict(bg.last))

    bg._busy = spy                                    # type: ignore[method-assign]
    last = bg.run_once()
    assert last["state"] == "busy" and last["pending"] == 1 and bg.failures == 1
    assert seen and seen[0]["state"] == "busy" and bg.busy_for_s() >= 1.0
    assert sum(sleeps) <= 10.0
    server.overload_next = []
    assert bg.run_once()["state"] == "ok" and bg.busy_for_s() is None


def test_the_kiosk_page_says_server_busy(tmp_path) -> None:  # noqa: ANN001
    from fastapi.testclient import TestClient

    from detak.kiosk.app import create_app

    app = create_app(tmp_path / "s", load_model=False, lang="en", sync_interval_s=None)
    client = TestClient(app)

    class Busy:
        def busy_for_s(self) -> float:
            return 12.4

    page = client.get("/login").text
    assert "server busy" not in page
    app.state.sync = Busy()
    assert "server busy, next try in 12 s" in client.get("/login").text
    client.cookies.set("detak_lang", "id")
    assert "server sibuk, coba lagi dalam 12 detik" in client.get("/login").text
    assert client.get("/healthz").json()["sync_busy_s"] == 12
