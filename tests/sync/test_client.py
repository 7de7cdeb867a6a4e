"""`SyncClient` against the in-memory spec server (tests/sync/fake_server.py): what reaches the
server, what the kiosk marks, and how each fault is survived."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import httpx
import pytest

from detak.kiosk import store_files as files
from detak.kiosk.store import Store
from detak.sync.client import SyncClient
from detak.sync.enroll import enroll
from detak.sync.errors import (
    EnrolmentError,
    InsecureURLError,
    KioskRevokedError,
    NotEnrolledError,
)
from detak.sync.retry import RetryPolicy
from tests.sync.conftest import add_screenings, make_client
from tests.sync.fake_server import FakeServer


def _kiosk_blobs(store: Store, sid: str) -> dict[str, str]:
    row = store._row(sid)
    rec = store.root / files.RECORDINGS / row["recording_sha256"]
    out = {"hea": hashlib.sha256(Path(f"{rec}.hea").read_bytes()).hexdigest(),
           "dat": hashlib.sha256(Path(f"{rec}.dat").read_bytes()).hexdigest()}
    if row["report_sha256"]:
        out["pdf"] = row["report_sha256"]
    return out


def _assert_on_server_once(server: FakeServer, store: Store, ids: list[str]) -> None:
    assert sorted(server.rows) == sorted(ids)
    assert len({r["id"] for r in server.rows.values()}) == len(ids)
    for sid in ids:
        for sha in _kiosk_blobs(store, sid).values():
            assert sha in server.complete
            assert hashlib.sha256(bytes(server.blobs[sha])).hexdigest() == sha
        assert store.server_id(sid) == server.rows[sid]["id"]


# ------------------------------------------------------------------ enrolment
def test_enrolment_keeps_key_0600_and_pins_the_bundle_key(store: Store, server: FakeServer,
                                                          bundle_keys: tuple[Path, Path]) -> None:
    got = enroll(store.root, "http://localhost:9/", "good-code", transport=server.transport())
    enr = store.enrolment()
    assert enr["kiosk_id"] == got["kiosk_id"] and enr["server_url"] == "http://localhost:9"
    assert enr["bundle_public_key"] == bundle_keys[1].read_text()
    key = Path(enr["key_file"])
    assert key.parent == store.root and stat.S_IMODE(key.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" in key.read_bytes()
    assert server.kiosks[got["kiosk_id"]]["public_key"]
    assert store.check() == []
    # the code was single use
    with pytest.raises(EnrolmentError, match="refused the enrolment code"):
        enroll(store.root, "http://localhost:9", "good-code", transport=server.transport())
    assert store.enrolment()["kiosk_id"] == got["kiosk_id"]     # the old one is kept


def test_enrolment_refuses_plain_http_elsewhere(store: Store, server: FakeServer) -> None:
    with pytest.raises(InsecureURLError):
        enroll(store.root, "http://192.168.1.20:8000", "good-code",
               transport=server.transport())
    assert not server.requests and store.enrolment() is None
    enroll(store.root, "http://192.168.1.20:8000", "good-code", insecure=True,
           transport=server.transport())
    assert store.enrolment()["insecure"] is True


def test_enrolment_takes_the_clock_offset(store: Store, server: FakeServer) -> None:
    server.clock_offset = -7200.0      # the kiosk's clock is 2 h ahead of the server's
    enroll(store.root, "http://127.0.0.1:9", "good-code", transport=server.transport())
    assert store.enrolment()["clock_offset_s"] == pytest.approx(-7200.0, abs=3)


def test_not_enrolled_and_insecure_stored_url(store: Store, server: FakeServer) -> None:
    with pytest.raises(NotEnrolledError):
        make_client(store, server).sync()
    enroll(store.root, "http://10.1.2.3", "good-code", insecure=True,
           transport=server.transport())
    with pytest.raises(InsecureURLError):           # each run must say --insecure again
        make_client(store, server).sync()
    assert make_client(store, server, insecure=True).sync().error is None


# ------------------------------------------------------------------ the happy path
def test_drain_in_batches_of_10_by_default(enrolled: Store, server: FakeServer) -> None:
    ids = add_screenings(enrolled, 53)
    report = make_client(enrolled, server).sync()
    assert (report.synced, report.pending, report.failed, report.error) == (53, 0, 0, None)
    assert report.line == "synced 53, pending 0, failed 0"
    batches = [p for m, p in server.requests if p == "/api/v1/sync/batch"]
    assert len(batches) == 6                     # 5 x 10 + 3
    _assert_on_server_once(server, enrolled, ids)
    assert report.server_ids == {sid: server.rows[sid]["id"] for sid in ids}
    assert enrolled.sync_status()["last_sync_at"] is not None
    more = add_screenings(enrolled, 53, seed=7)
    server.requests.clear()
    assert make_client(enrolled, server, batch_size=50).sync().synced == 53
    assert [p for m, p in server.requests if p == "/api/v1/sync/batch"] == [
        "/api/v1/sync/batch"] * 2                # the protocol's most: 50 + 3
    _assert_on_server_once(server, enrolled, ids + more)
    # a second run sends nothing again, but still asks for verdicts
    server.requests.clear()
    report = make_client(enrolled, server).sync()
    assert (report.synced, report.pending) == (0, 0)
    assert [p for _, p in server.requests] == ["/api/v1/sync/batch"]


def test_items_carry_resident_and_content_hash(enrolled: Store, server: FakeServer) -> None:
    [sid] = add_screenings(enrolled, 1, seed=4)
    make_client(enrolled, server).sync()
    item = server.rows[sid]["item"]
    assert item["resident"] == {"resident_number": "R-4", "name": "Invented Resident",
                                "birth_date": "1940-01-02", "sex": "F", "room": None}
    assert item["screening"] == enrolled.get_screening(sid)
    assert item["files"]["recording"] == enrolled._row(sid)["recording_sha256"]


def test_bodies_are_gzip_and_chunks_are_small(enrolled: Store, server: FakeServer) -> None:
    add_screenings(enrolled, 2)
    seen: list[httpx.Request] = []

    def spy(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return server.handle(req)

    client = make_client(enrolled, server, transport=httpx.MockTransport(spy), chunk_size=4096)
    assert client.sync().synced == 2
    batch = [r for r in seen if r.url.path == "/api/v1/sync/batch"][0]
    assert batch.headers["Content-Encoding"] == "gzip"
    patches = [r for r in seen if r.method == "PATCH"]
    assert patches and max(len(r.content) for r in patches) == 4096
    assert len(patches) > 2 * 3                   # the .dat files took several chunks


# ------------------------------------------------------------------ faults
def test_link_cut_mid_chunk_resumes_from_the_servers_offset(enrolled: Store,
                                                            server: FakeServer) -> None:
    [sid] = add_screenings(enrolled, 1)
    server.cut_chunk_at = 1000                      # the first chunk: 1000 bytes kept, then cut
    client = make_client(enrolled, server, chunk_size=4096)
    report = client.sync()
    assert report.synced == 1 and report.requests_retried >= 1
    _assert_on_server_once(server, enrolled, [sid])
    patches = [p for m, p in server.requests if m == "PATCH"]
    assert any("offset=0&" in p for p in patches)
    # after the cut, the retry at offset 0 got 409 and the upload went on from 1000
    assert any("offset=1000&" in p for p in patches)


def test_answer_lost_after_the_server_committed(enrolled: Store, server: FakeServer) -> None:
    ids = add_screenings(enrolled, 3)
    client = make_client(enrolled, server)
    original = server.handle

    def lose_batch_answer(req: httpx.Request) -> httpx.Response:
        if req.url.path == "/api/v1/sync/batch" and not getattr(lose_batch_answer, "done", 0):
            lose_batch_answer.done = 1             # type: ignore[attr-defined]
            original(req)                          # processed and committed...
            raise httpx.ReadError("reset")         # ...but the answer never arrives
        return original(req)

    client = make_client(enrolled, server, transport=httpx.MockTransport(lose_batch_answer))
    report = client.sync()
    assert report.synced == 3 and report.pending == 0
    _assert_on_server_once(server, enrolled, ids)   # the resent batch: duplicates, one row each


def test_the_same_batch_twice_is_duplicate_not_a_second_row(enrolled: Store,
                                                            server: FakeServer) -> None:
    ids = add_screenings(enrolled, 2)
    make_client(enrolled, server).sync()
    enrolled.requeue_failed()                        # nothing failed: no-op
    for sid in ids:                                  # the kiosk forgets it sent them
        enrolled._conn.execute("UPDATE outbox SET sent_at = NULL WHERE screening_id = ?",
                               (sid,))
    report = make_client(enrolled, server).sync()
    assert report.synced == 2 and len(server.rows) == 2
    _assert_on_server_once(server, enrolled, ids)


def test_5xx_and_429_are_retried_with_bounded_backoff(enrolled: Store,
                                                      server: FakeServer) -> None:
    [sid] = add_screenings(enrolled, 1)
    server.fail_next = [503, 502, 429]
    client = make_client(enrolled, server)
    report = client.sync()
    assert report.synced == 1 and report.requests_retried == 3
    assert len(client.sleeps) == 3
    assert all(0 <= s <= min(30.0, 0.5 * 2 ** (i + 1)) for i, s in enumerate(client.sleeps))


def test_an_unreachable_server_stops_the_run_and_keeps_items(enrolled: Store,
                                                             server: FakeServer) -> None:
    add_screenings(enrolled, 2)
    server.fail_next = [503] * 6
    client = make_client(enrolled, server, policy=RetryPolicy(attempts=6))
    report = client.sync()
    assert report.synced == 0 and report.pending == 2 and "after 6 attempt" in report.error
    assert len(client.sleeps) == 5                   # 6 attempts, 5 waits
    st = enrolled.sync_status()
    assert st["last_sync_at"] is None and "after 6 attempt" in st["last_error"]
    # the item it was sending keeps why, and is resumed (HEAD first) by the next run
    tried = [r for r in enrolled.pending_outbox() if r["last_error"]]
    assert len(tried) == 1 and tried[0]["attempts"] == 1
    assert "after 6 attempt" in tried[0]["last_error"]
    report = make_client(enrolled, server).sync()   # the next run starts over
    assert report.synced == 2 and report.error is None


def test_connection_refused_is_unreachable(enrolled: Store, server: FakeServer) -> None:
    add_screenings(enrolled, 1)

    def refuse(req: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    report = make_client(enrolled, server, transport=httpx.MockTransport(refuse),
                         policy=RetryPolicy(attempts=2)).sync()
    assert report.pending == 1 and "ConnectError" in report.error


def test_missing_blob_is_uploaded_and_retried(enrolled: Store, server: FakeServer) -> None:
    [sid] = add_screenings(enrolled, 1)
    original = server.handle
    dropped = {"n": 0}

    def forget_a_blob(req: httpx.Request) -> httpx.Response:
        if req.url.path == "/api/v1/sync/batch" and not dropped["n"]:
            gone = next(iter(server.complete))       # the server lost a blob (7-day cleanup)
            server.complete.discard(gone)
            server.blobs.pop(gone)
            dropped["n"] = 1
        return original(req)

    client = make_client(enrolled, server, transport=httpx.MockTransport(forget_a_blob))
    report = client.sync()
    assert report.synced == 1
    _assert_on_server_once(server, enrolled, [sid])
    assert [p for _, p in server.requests].count("/api/v1/sync/batch") == 2


def test_conflict_and_invalid_fail_and_are_not_retried(enrolled: Store,
                                                       server: FakeServer) -> None:
    ids = add_screenings(enrolled, 3)
    make_client(enrolled, server).sync()
    # the kiosk's copy of ids[0] changed after it was sent (a new report): a conflict
    enrolled.attach_report(ids[0], b"%PDF-1.4 another report")
    server.invalid_uuids = {ids[1]}
    enrolled._conn.execute("UPDATE outbox SET sent_at = NULL WHERE screening_id = ?", (ids[1],))
    report = make_client(enrolled, server).sync()
    assert (report.synced, report.pending, report.failed) == (0, 0, 2)
    assert {f["uuid"]: f["code"].split(":")[0] for f in report.failures} == {
        ids[0]: "conflict", ids[1]: "invalid"}
    assert len(server.conflicts) == 1 and len(server.rows) == 3
    server.requests.clear()
    report = make_client(enrolled, server).sync()    # not sent again
    assert report.failed == 2 and report.failures == []
    assert [p for _, p in server.requests] == ["/api/v1/sync/batch"]


def test_a_batch_refused_whole_is_halved_to_the_bad_item(enrolled: Store,
                                                         server: FakeServer) -> None:
    ids = add_screenings(enrolled, 5)
    server.refuse_batch_with = {ids[3]}
    report = make_client(enrolled, server).sync()
    assert (report.synced, report.failed) == (4, 1)
    assert [f["uuid"] for f in report.failures] == [ids[3]]
    assert ids[3] not in server.rows


def test_damaged_local_files_fail_that_item_only(enrolled: Store, server: FakeServer) -> None:
    ids = add_screenings(enrolled, 2)
    rec = enrolled._row(ids[0])["recording_sha256"]
    dat = enrolled.root / files.RECORDINGS / f"{rec}.dat"
    os.chmod(dat, 0o600)
    dat.write_bytes(dat.read_bytes()[:-10])
    report = make_client(enrolled, server).sync()
    assert (report.synced, report.failed) == (1, 1)
    assert report.failures[0]["code"] == "local_files_damaged"


def test_clock_skew_is_corrected_once_and_kept(enrolled: Store, server: FakeServer) -> None:
    add_screenings(enrolled, 1)
    server.clock_offset = 3 * 3600.0                 # the Pi lost its clock in a power cut
    report = make_client(enrolled, server).sync()
    assert report.synced == 1
    assert enrolled.enrolment()["clock_offset_s"] == pytest.approx(3 * 3600.0, abs=3)
    codes = len(server.requests)
    make_client(enrolled, server).sync()             # the kept offset: no second correction
    assert len(server.requests) == codes + 1


def test_revoked_kiosk_stops_and_says_so(enrolled: Store, server: FakeServer) -> None:
    add_screenings(enrolled, 1)
    server.revoke_all()
    with pytest.raises(KioskRevokedError):
        make_client(enrolled, server).sync()
    assert enrolled.sync_status()["revoked"] and enrolled.outbox_count() == 1
    server.requests.clear()
    with pytest.raises(KioskRevokedError):           # no request at all any more
        make_client(enrolled, server).sync()
    assert server.requests == []


def test_verdicts_are_stored_with_the_cursor(enrolled: Store, server: FakeServer) -> None:
    [sid] = add_screenings(enrolled, 1)
    make_client(enrolled, server).sync()
    server.verdicts.append({"uuid": sid, "server_id": 1, "label": "refer", "note": "see GP",
                            "doctor": "Dr. Invented", "reviewed_at": "2026-12-07T11:00:00Z"})
    report = make_client(enrolled, server).sync()
    assert report.verdicts == 1 and enrolled.verdicts_cursor() == "1"
    assert enrolled.verdicts_for(sid)[0]["label"] == "refer"
    assert make_client(enrolled, server).sync().verdicts == 0     # the cursor moved on


def test_another_run_holding_the_lock(enrolled: Store, server: FakeServer) -> None:
    from detak.sync.client import sync_lock
    from detak.sync.errors import SyncError

    with sync_lock(enrolled.root, None), pytest.raises(SyncError, match="another sync"):
        SyncClient(enrolled, transport=server.transport(), lock_wait_s=0.1).sync()


def test_fresh_blobs_skip_the_head_and_a_retry_asks_first(enrolled: Store,
                                                          server: FakeServer) -> None:
    # on a 3G link every round trip counts: a blob never tried is sent from offset 0 at
    # once; an item tried before asks the server's offset first (HEAD), to resume
    ids = add_screenings(enrolled, 2)
    enrolled.mark_failed(ids[1], "earlier run stopped")       # tried once already
    make_client(enrolled, server).sync()
    heads = [p for m, p in server.requests if m == "HEAD"]
    blobs = _kiosk_blobs(enrolled, ids[1])
    assert sorted(p.rsplit("/", 1)[1] for p in heads) == sorted(blobs.values())
    _assert_on_server_once(server, enrolled, ids)


def test_clock_skew_found_on_a_head_without_a_body(enrolled: Store, server: FakeServer) -> None:
    # an item tried before starts with HEAD; a HEAD's 401 carries no code, only the time
    [sid] = add_screenings(enrolled, 1)
    enrolled.mark_failed(sid, "earlier run stopped")
    server.clock_offset = -2 * 3600.0
    report = make_client(enrolled, server).sync()
    assert report.synced == 1 and report.error is None
    assert enrolled.enrolment()["clock_offset_s"] == pytest.approx(-7200.0, abs=3)
