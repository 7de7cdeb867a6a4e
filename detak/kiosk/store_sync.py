"""The kiosk store's sync state (schema v3; docs/sync.md): the enrolment, the outbox as the sync
client sees it, the server's ids, the doctors' verdicts with their cursor, the last sync.

`SyncStateMixin` is part of `detak.kiosk.store.Store`; its methods use the store's transaction
helper, so each call is one SQLite transaction. The kiosk's private key is not in the database:
it is a 0600 file in the store folder (`KEY_FILE`) whose name the enrolment row keeps.

An outbox entry is in one of three states: *pending* (``sent_at`` and ``failed_at`` NULL: the
client sends it), *synced* (``sent_at`` set, after the server acknowledged it; the screening
keeps its ``server_id``) or *failed* (``failed_at`` set: the server answered ``conflict`` or
``invalid``, or its files are damaged; it is not retried until re-queued).

>>> import tempfile
>>> from detak.kiosk.store import Store
>>> with Store.open(tempfile.mkdtemp() + "/s") as s:
...     s.enrolment() is None, s.sync_status()["pending"], s.sync_status()["last_sync_at"]
(True, 0, None)
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

#: the kiosk's Ed25519 private key (PKCS#8 PEM, mode 0600) in the store folder
KEY_FILE = "sync-key.pem"

_ENROLMENT = ("server_url", "kiosk_id", "key_file", "bundle_public_key", "facility_id",
              "facility_name", "insecure", "clock_offset_s", "enrolled_at", "revoked_at")


class _StoreBase(Protocol):  # what the mixin uses of `Store`
    root: Path

    def now(self) -> datetime: ...
    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]: ...
    def _query(self, sql: str, params: tuple | list = ()) -> list[dict[str, Any]]: ...


def _iso(t: datetime) -> str:
    from detak.kiosk.store import _iso as iso

    return iso(t)


def _one_line(text: object, limit: int = 1000) -> str:
    return " ".join(str(text).split())[:limit]


class SyncStateMixin:
    """The sync client's view of the store (mixed into `Store`)."""

    # ------------------------------------------------------------------ enrolment
    def save_enrolment(self: _StoreBase, *, server_url: str, kiosk_id: str, key_file: str,
                       bundle_public_key: str | None, facility_id: int | None = None,
                       facility_name: str | None = None, insecure: bool = False,
                       clock_offset_s: float = 0.0) -> None:
        """Record an enrolment (replacing an earlier one: a new server starts a new verdicts
        cursor, and a kiosk enrolled again is no longer revoked)."""
        with self._transaction() as conn:
            conn.execute(
                "UPDATE sync_state SET server_url = ?, kiosk_id = ?, key_file = ?, "
                "bundle_public_key = ?, facility_id = ?, facility_name = ?, insecure = ?, "
                "clock_offset_s = ?, enrolled_at = ?, revoked_at = NULL, verdicts_cursor = NULL, "
                "last_error = NULL, bundle_rejected_sha256 = NULL WHERE id = 1",
                (server_url, kiosk_id, key_file, bundle_public_key, facility_id, facility_name,
                 int(bool(insecure)), float(clock_offset_s), _iso(self.now())))

    def enrolment(self: _StoreBase) -> dict[str, Any] | None:
        """The enrolment (server URL, kiosk id, key file path, pinned bundle key, facility,
        insecure, clock offset, enrolled/revoked times), or None if the kiosk is not enrolled.
        ``key_file`` is an absolute path."""
        row = self._query(f"SELECT {', '.join(_ENROLMENT)} FROM sync_state WHERE id = 1")[0]
        if not row["kiosk_id"]:
            return None
        row["insecure"] = bool(row["insecure"])
        row["key_file"] = str(self.root / row["key_file"])
        return row

    def set_clock_offset(self: _StoreBase, offset_s: float) -> None:
        """Keep the kiosk's clock offset to the server (server time − kiosk time), seconds."""
        with self._transaction() as conn:
            conn.execute("UPDATE sync_state SET clock_offset_s = ? WHERE id = 1",
                         (float(offset_s),))

    def set_revoked(self: _StoreBase) -> None:
        """The server answered ``kiosk_revoked``: stop syncing until enrolled again."""
        with self._transaction() as conn:
            conn.execute("UPDATE sync_state SET revoked_at = ? WHERE id = 1 AND revoked_at IS "
                         "NULL", (_iso(self.now()),))

    # ------------------------------------------------------------------ the outbox
    def pending_sync_items(self: _StoreBase, limit: int | None = None) -> list[dict[str, Any]]:
        """Pending outbox entries, oldest first, with what a batch item needs: ``id``,
        ``created_at``, ``screening`` (the stored dict), ``recording_sha256``,
        ``report_sha256``, ``attempts``, ``resident`` (the row, or None)."""
        rows = self._query(
            "SELECT s.id, s.created_at, s.screening_json, s.recording_sha256, s.report_sha256, "
            "o.attempts, r.resident_number, r.name, r.birth_date, r.sex, r.room "
            "FROM outbox o JOIN screenings s ON s.id = o.screening_id "
            "LEFT JOIN residents r ON r.id = s.resident_id "
            "WHERE o.sent_at IS NULL AND o.failed_at IS NULL "
            "ORDER BY o.created_at, o.screening_id LIMIT ?", (-1 if limit is None else int(limit),))
        out = []
        for r in rows:
            resident = None if r["resident_number"] is None else {
                k: r[k] for k in ("resident_number", "name", "birth_date", "sex", "room")}
            out.append({"id": r["id"], "created_at": r["created_at"],
                        "screening": json.loads(r["screening_json"]),
                        "recording_sha256": r["recording_sha256"],
                        "report_sha256": r["report_sha256"], "attempts": r["attempts"],
                        "resident": resident})
        return out

    def mark_synced(self: _StoreBase, screening_id: str, server_id: int | None) -> None:
        """The server acknowledged the screening (``created`` or ``duplicate``): close its
        outbox entry and keep the server's id, in one transaction. Marking an entry that is
        already closed again is harmless (its server id is kept up to date)."""
        from detak.kiosk.store_errors import NotFoundError

        now = _iso(self.now())
        with self._transaction() as conn:
            cur = conn.execute(
                "UPDATE outbox SET sent_at = coalesce(sent_at, ?), last_attempt_at = ?, "
                "attempts = attempts + 1, last_error = NULL, failed_at = NULL "
                "WHERE screening_id = ?", (now, now, str(screening_id)))
            if cur.rowcount != 1:
                raise NotFoundError(f"no outbox entry for screening {screening_id}")
            conn.execute("UPDATE screenings SET status = 'sent', server_id = ? WHERE id = ?",
                         (None if server_id is None else int(server_id), str(screening_id)))

    def mark_sync_failed(self: _StoreBase, screening_id: str, code: str,
                         message: str = "") -> None:
        """The server refused the screening for good (``conflict``, ``invalid``) or its files
        are damaged: the entry leaves the pending list, keeping ``code: message``."""
        from detak.kiosk.store_errors import NotFoundError

        now = _iso(self.now())
        with self._transaction() as conn:
            cur = conn.execute(
                "UPDATE outbox SET failed_at = ?, last_attempt_at = ?, attempts = attempts + 1, "
                "last_error = ? WHERE screening_id = ? AND sent_at IS NULL",
                (now, now, _one_line(f"{code}: {message}" if message else code),
                 str(screening_id)))
            if cur.rowcount != 1:
                raise NotFoundError(f"no pending outbox entry for screening {screening_id}")

    def requeue_failed(self: _StoreBase, screening_id: str | None = None) -> int:
        """Put failed entries (one, or all) back in the pending list; returns how many."""
        where, params = ("AND screening_id = ?", (str(screening_id),)) \
            if screening_id is not None else ("", ())
        with self._transaction() as conn:
            cur = conn.execute("UPDATE outbox SET failed_at = NULL, attempts = 0 "
                               f"WHERE failed_at IS NOT NULL {where}", params)
        return int(cur.rowcount)

    def failed_sync_items(self: _StoreBase) -> list[dict[str, Any]]:
        """Failed entries: ``screening_id``, ``last_error``, ``failed_at``."""
        return self._query("SELECT screening_id, last_error, failed_at FROM outbox "
                           "WHERE failed_at IS NOT NULL ORDER BY failed_at, screening_id")

    def server_id(self: _StoreBase, screening_id: str) -> int | None:
        """The server's id of a synced screening (None before it is acknowledged)."""
        rows = self._query("SELECT server_id FROM screenings WHERE id = ?",
                           (str(screening_id),))
        return rows[0]["server_id"] if rows else None

    # ------------------------------------------------------------------ verdicts, status
    def save_verdicts(self: _StoreBase, verdicts: Iterable[dict[str, Any]],
                      cursor: str | None) -> int:
        """Store the doctors' verdicts and then the cursor, in one transaction (a verdict
        seen again replaces the earlier copy); returns how many were stored."""
        now, n = _iso(self.now()), 0
        with self._transaction() as conn:
            for v in verdicts:
                conn.execute(
                    "INSERT INTO verdicts (screening_id, reviewed_at, server_id, label, note, "
                    "doctor, verdict_json, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (screening_id, reviewed_at) DO UPDATE SET "
                    "server_id = excluded.server_id, label = excluded.label, "
                    "note = excluded.note, doctor = excluded.doctor, "
                    "verdict_json = excluded.verdict_json, received_at = excluded.received_at",
                    (str(v["uuid"]), str(v.get("reviewed_at") or ""), v.get("server_id"),
                     v.get("label"), v.get("note"), v.get("doctor"),
                     json.dumps(v, ensure_ascii=False, sort_keys=True), now))
                n += 1
            if cursor is not None:
                conn.execute("UPDATE sync_state SET verdicts_cursor = ? WHERE id = 1",
                             (str(cursor),))
        return n

    def verdicts_for(self: _StoreBase, screening_id: str) -> list[dict[str, Any]]:
        """The doctors' verdicts on a screening, newest first (the server's dicts)."""
        rows = self._query("SELECT verdict_json FROM verdicts WHERE screening_id = ? "
                           "ORDER BY reviewed_at DESC", (str(screening_id),))
        return [json.loads(r["verdict_json"]) for r in rows]

    def verdicts_cursor(self: _StoreBase) -> str | None:
        return self._query("SELECT verdicts_cursor FROM sync_state WHERE id = 1")[0][
            "verdicts_cursor"]

    def record_sync_attempt(self: _StoreBase, error: str | None = None) -> None:
        """A sync run ended: without ``error`` it reached the server and is the last
        successful sync; with one, its one-line reason is kept (names no resident)."""
        now = _iso(self.now())
        with self._transaction() as conn:
            if error is None:
                conn.execute("UPDATE sync_state SET last_attempt_at = ?, last_sync_at = ?, "
                             "last_error = NULL WHERE id = 1", (now, now))
            else:
                conn.execute("UPDATE sync_state SET last_attempt_at = ?, last_error = ? "
                             "WHERE id = 1", (now, _one_line(error)))

    def set_bundle_rejected(self: _StoreBase, sha256: str) -> None:
        """A bundle offer whose signature or content was wrong: not downloaded again."""
        with self._transaction() as conn:
            conn.execute("UPDATE sync_state SET bundle_rejected_sha256 = ? WHERE id = 1",
                         (str(sha256),))

    def sync_status(self: _StoreBase) -> dict[str, Any]:
        """``pending``, ``failed``, ``synced`` counts, ``last_sync_at``, ``last_attempt_at``,
        ``last_error``, ``enrolled``, ``revoked``, ``server_url``."""
        counts = self._query(
            "SELECT sum(sent_at IS NULL AND failed_at IS NULL) AS pending, "
            "sum(failed_at IS NOT NULL) AS failed, sum(sent_at IS NOT NULL) AS synced "
            "FROM outbox")[0]
        state = self._query("SELECT server_url, kiosk_id, revoked_at, last_sync_at, "
                            "last_attempt_at, last_error, bundle_rejected_sha256 "
                            "FROM sync_state WHERE id = 1")[0]
        return {"pending": int(counts["pending"] or 0), "failed": int(counts["failed"] or 0),
                "synced": int(counts["synced"] or 0), "last_sync_at": state["last_sync_at"],
                "last_attempt_at": state["last_attempt_at"], "last_error": state["last_error"],
                "enrolled": state["kiosk_id"] is not None,
                "revoked": state["revoked_at"] is not None, "server_url": state["server_url"],
                "bundle_rejected_sha256": state["bundle_rejected_sha256"]}

