"""The kiosk store's sync state (schema v3, detak/kiosk/store_sync.py): the upgrade of an old
store, and the outbox as the sync client marks it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from detak.kiosk.store import DB_NAME, Store
from detak.kiosk.store_errors import NotFoundError
from detak.kiosk.store_schema import SCHEMA_VERSION, migrate, schema_version
from tests.sync.conftest import add_screenings, make_recording


def test_a_version_2_store_with_screenings_upgrades_to_3(tmp_path: Path) -> None:
    root = tmp_path / "old"
    root.mkdir(mode=0o700)
    conn = sqlite3.connect(root / DB_NAME, isolation_level=None)
    assert migrate(conn, target=2) == (0, 2)          # the schema as shipped before sync
    conn.execute("INSERT INTO screenings (id, created_at, screening_json, recording_sha256) "
                 "VALUES ('old-1', '2026-01-01T00:00:00Z', '{\"id\": \"old-1\"}', 'x')")
    conn.execute("INSERT INTO outbox (screening_id, created_at) VALUES ('old-1', 'now')")
    conn.close()
    with Store.open(root, sweep=False) as s:
        assert schema_version(s._conn) == SCHEMA_VERSION == 3
        assert s.outbox_count() == 1 and s.enrolment() is None
        assert [r["id"] for r in s.pending_sync_items()] == ["old-1"]
        assert s.server_id("old-1") is None
        st = s.sync_status()
        assert (st["pending"], st["failed"], st["synced"], st["last_sync_at"]) == (1, 0, 0, None)


def test_mark_synced_keeps_the_server_id_in_one_transaction(store: Store) -> None:
    ids = add_screenings(store, 3)
    store.mark_synced(ids[0], 41)
    assert store.server_id(ids[0]) == 41 and store.outbox_count() == 2
    assert [r["id"] for r in store.pending_sync_items()] == ids[1:]
    assert store.list_screenings(limit=10)[-1]["status"] in ("sent", "queued")
    store.mark_synced(ids[0], 41)            # acknowledged twice (a retried batch): harmless
    assert store.sync_status()["synced"] == 1
    assert store.check() == []
    with pytest.raises(NotFoundError):
        store.mark_synced("nosuch", 1)


def test_a_failed_item_leaves_the_pending_list_until_requeued(store: Store) -> None:
    ids = add_screenings(store, 2)
    store.mark_sync_failed(ids[0], "conflict", "the same id with other content")
    assert [r["id"] for r in store.pending_sync_items()] == [ids[1]]
    st = store.sync_status()
    assert (st["pending"], st["failed"]) == (1, 1)
    assert store.failed_sync_items()[0]["last_error"].startswith("conflict")
    assert store.check() == []               # a failed entry is an unsent, open entry
    assert store.requeue_failed(ids[0]) == 1
    assert store.outbox_count() == 2
    store.mark_synced(ids[0], 5)
    with pytest.raises(NotFoundError):       # synced: it cannot fail any more
        store.mark_sync_failed(ids[0], "invalid")


def test_a_new_report_requeues_a_failed_screening(store: Store) -> None:
    [sid] = add_screenings(store, 1)
    store.mark_sync_failed(sid, "invalid", "x")
    store.attach_report(sid, b"%PDF-1.4 new report")
    assert store.outbox_count() == 1 and store.sync_status()["failed"] == 0


def test_verdicts_and_cursor_together(store: Store) -> None:
    [sid] = add_screenings(store, 1)
    v = {"uuid": sid, "server_id": 3, "label": "normal", "note": "", "doctor": "Dr. Invented",
         "reviewed_at": "2026-12-07T10:00:00Z"}
    assert store.save_verdicts([v], "c1") == 1
    assert store.verdicts_cursor() == "c1"
    store.save_verdicts([{**v, "label": "refer"}], "c2")   # the same review, updated
    assert [x["label"] for x in store.verdicts_for(sid)] == ["refer"]
    store.save_verdicts([{**v, "reviewed_at": "2026-12-08T10:00:00Z"}], None)
    assert len(store.verdicts_for(sid)) == 2 and store.verdicts_cursor() == "c2"
    with pytest.raises(KeyError):            # a verdict without uuid stores nothing at all
        store.save_verdicts([v, {"label": "x"}], "c3")
    assert store.verdicts_cursor() == "c2"


def test_enrolment_round_trip_and_revocation(store: Store) -> None:
    store.save_enrolment(server_url="https://clinic.example", kiosk_id="k1",
                         key_file="sync-key.pem", bundle_public_key="PEM", facility_id=2,
                         facility_name="Wisma", clock_offset_s=-3600.0)
    enr = store.enrolment()
    assert enr is not None and enr["kiosk_id"] == "k1" and enr["clock_offset_s"] == -3600.0
    assert enr["key_file"] == str(store.root / "sync-key.pem")
    store.set_clock_offset(5.0)
    store.set_revoked()
    enr = store.enrolment()
    assert enr["clock_offset_s"] == 5.0 and enr["revoked_at"]
    store.save_enrolment(server_url="https://clinic.example", kiosk_id="k2",
                         key_file="sync-key.pem", bundle_public_key="PEM")
    assert store.enrolment()["revoked_at"] is None


def test_sync_attempts_record_the_last_success(store: Store) -> None:
    store.record_sync_attempt("no answer")
    st = store.sync_status()
    assert st["last_sync_at"] is None and st["last_error"] == "no answer"
    store.record_sync_attempt()
    st = store.sync_status()
    assert st["last_sync_at"] and st["last_error"] is None


def test_store_with_a_screening_recording(store: Store) -> None:
    store.save_screening({"id": "c" * 32, "created_at": "2026-12-07T08:00:00Z"},
                         make_recording(3))
    row = store.pending_sync_items()[0]
    assert row["resident"] is None and row["report_sha256"] is None
