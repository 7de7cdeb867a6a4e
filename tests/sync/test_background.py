"""The kiosk app's background sync (detak/sync/background.py) against the in-memory server."""

from __future__ import annotations

import time

from detak.kiosk.store import Store
from detak.sync.background import BackgroundSync
from detak.sync.retry import RetryPolicy
from tests.sync.conftest import add_screenings
from tests.sync.fake_server import FakeServer

NO_WAIT = RetryPolicy(base=0.0, cap=0.0, attempts=2)


def _bg(store: Store, server: FakeServer, **kw: object) -> BackgroundSync:
    return BackgroundSync(store.root, policy=NO_WAIT,
                          client_options={"transport": server.transport()}, **kw)


def test_not_enrolled_is_only_rechecked(store: Store, server: FakeServer) -> None:
    add_screenings(store, 1)
    bg = _bg(store, server)
    assert bg.run_once() == {"state": "not enrolled"}
    assert server.requests == [] and store.outbox_count() == 1


def test_runs_when_pending_and_idles_otherwise(enrolled: Store, server: FakeServer) -> None:
    bg = _bg(enrolled, server, interval_s=30.0, idle_s=300.0)
    now = time.monotonic()
    assert bg.due(now)                                    # never ran: due
    bg._last_run = now
    assert bg.run_once()["state"] == "ok"
    assert not bg.due(now + 31)                           # nothing pending, not idle long
    add_screenings(enrolled, 2)
    assert bg.due(now + 31)                               # pending: due
    assert bg.run_once() == {"state": "ok", "synced": 2, "pending": 0, "failed": 0,
                             "error": None}
    assert bg.due(now + 301)                              # idle long enough: verdicts, bundles


def test_backoff_grows_after_unreachable_runs_and_resets(enrolled: Store,
                                                         server: FakeServer) -> None:
    add_screenings(enrolled, 1)
    bg = _bg(enrolled, server, interval_s=30.0, max_backoff_s=600.0)
    assert bg.backoff_s() == 0.0
    for n in range(1, 7):
        server.fail_next = [503, 503]
        assert bg.run_once()["state"] == "unreachable" and bg.failures == n
        waits = [bg.backoff_s() for _ in range(200)]
        assert all(30.0 <= w <= min(600.0, 30.0 * 2 ** n) for w in waits)
    assert max(bg.backoff_s() for _ in range(200)) > 500     # the cap is reached, not passed
    assert bg.run_once()["state"] == "ok" and bg.failures == 0 and bg.backoff_s() == 0.0


def test_revoked_kiosk_is_left_alone(enrolled: Store, server: FakeServer) -> None:
    add_screenings(enrolled, 1)
    server.revoke_all()
    bg = _bg(enrolled, server)
    assert bg.run_once() == {"state": "revoked"}
    server.requests.clear()
    assert bg.run_once() == {"state": "revoked"} and server.requests == []


def test_the_thread_drains_and_stops(enrolled: Store, server: FakeServer) -> None:
    add_screenings(enrolled, 3)
    bg = _bg(enrolled, server, interval_s=0.05).start()
    try:
        deadline = time.monotonic() + 30
        while enrolled.outbox_count() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        bg.stop()
    assert enrolled.outbox_count() == 0 and not bg._thread.is_alive()
    assert enrolled.sync_status()["last_sync_at"]
