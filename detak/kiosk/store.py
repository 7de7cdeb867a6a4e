"""The kiosk's local store: residents, nurses, screenings and the sync outbox in SQLite (WAL),
recordings and PDF reports as content-addressed files beside it (`detak.kiosk.store_files`).

A screening is saved in this order: the recording's WFDB files and the PDF are written
atomically (temporary file, fsync, rename, folder fsync), then one transaction inserts the
screening row and its outbox entry. ``kill -9`` at any moment leaves a consistent store: a row
is never committed before its files, and what a killed writer leaves (temporary or unreferenced
files) is removed by the sweep that `Store.open` runs. SQLite runs in WAL mode with
``synchronous=FULL``: a save that returned survives a crash of the process or the machine.

Resident data (names, numbers, birth dates) never goes to the log; the log names ids only.

>>> import tempfile, numpy as np
>>> from detak.data.recording import Recording
>>> rec = Recording(np.zeros((12, 1000)), 100.0, ["I", "II", "III", "aVR", "aVL", "aVF",
...                 "V1", "V2", "V3", "V4", "V5", "V6"])
>>> with Store.open(tempfile.mkdtemp() + "/store") as store:
...     rid = store.add_resident("Siti Aminah", "R-001", birth_date="1941-03-02", sex="F")
...     sid = store.save_screening({"id": "s1", "created_at": "2026-12-07T08:00:00Z",
...                                 "resident_id": rid}, rec, report_pdf=b"%PDF-1.4 ...")
...     print(sid, store.outbox_count(), store.report_path(sid).suffix, store.check())
s1 1 .pdf []
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from detak.data.recording import Recording
from detak.kiosk import store_files as files
from detak.kiosk.store_errors import (
    CorruptStoreError,
    DuplicateError,
    InvalidScreeningError,
    NotFoundError,
    NurseLockedError,
    StoreError,
    StoreLocationError,
)
from detak.kiosk.store_schema import migrate
from detak.kiosk.store_sync import SyncStateMixin

log = logging.getLogger(__name__)

DB_NAME = "detak.sqlite3"
#: wrong PINs in a row before a nurse's sign-in locks, and for how long
MAX_FAILED_PINS = 5
LOCKOUT = timedelta(minutes=5)
#: how long a write waits for another process's transaction (SQLite busy timeout), seconds
BUSY_TIMEOUT_S = 15.0
_MAX_ID_LEN = 200


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, datetime | date):
        return obj.isoformat()
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")


def _password_hasher() -> Any:
    from argon2 import PasswordHasher  # argon2id by default

    return PasswordHasher()


@cache
def _dummy_hash() -> str:
    return _password_hasher().hash("not-a-pin")


class Store(SyncStateMixin):
    """An open kiosk store (use `Store.open`). Safe to share between threads of one process;
    several processes may open the same folder (WAL, busy timeout, the files lock)."""

    def __init__(self, root: Path, conn: sqlite3.Connection,
                 now: Callable[[], datetime] = _utcnow) -> None:
        self.root = root
        self._conn = conn
        self._lock = threading.RLock()
        self.now = now

    # ------------------------------------------------------------------ opening, closing
    @classmethod
    def open(cls, path: str | Path, *, create: bool = True, sweep: bool = True) -> Store:
        """Open the store in folder ``path``: create it (0700) if ``create``, bring its schema
        up to date, and sweep what killed writers left (unless ``sweep=False``).

        Raises `StoreLocationError` (a file, or a missing folder with ``create=False``),
        `CorruptStoreError` (not a SQLite database) or `SchemaVersionError` (newer detak).

        >>> import tempfile
        >>> with Store.open(tempfile.mkdtemp() + "/s") as s:
        ...     oct(s.root.stat().st_mode & 0o777), s.outbox_count()
        ('0o700', 0)
        """
        root = Path(path).expanduser().absolute()
        if root.exists() and not root.is_dir():
            raise StoreLocationError(f"store folder {root} is a file, not a folder")
        if not root.exists():
            if not create:
                raise StoreLocationError(f"no store at {root} (no such folder)")
            try:
                root.mkdir(mode=files.DIR_MODE, parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreLocationError(f"cannot create the store folder {root}: "
                                         f"{exc.strerror or exc}") from exc
        db = root / DB_NAME
        if not create and not db.is_file():
            raise StoreLocationError(f"no store at {root} ({DB_NAME} missing)")
        try:
            os.chmod(root, files.DIR_MODE)
            files.make_layout(root)
            if not db.exists():   # SQLite gives the -wal and -shm files the database's mode
                os.close(os.open(db, os.O_WRONLY | os.O_CREAT, files.FILE_MODE))
        except OSError as exc:
            raise StoreLocationError(f"cannot use the store folder {root}: "
                                     f"{exc.strerror or exc}") from exc
        conn = cls._connect(db)
        store = cls(root, conn)
        if sweep:
            counts = store.sweep()
            if counts["temporary"] or counts["orphans"]:
                log.info("store sweep removed %d temporary and %d unreferenced files",
                         counts["temporary"], counts["orphans"])
        return store

    @staticmethod
    def _connect(db: Path) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(db, isolation_level=None, timeout=BUSY_TIMEOUT_S,
                                   check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreLocationError(f"{db}: cannot open: {exc}") from exc
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise CorruptStoreError(f"{db}: cannot switch to WAL mode (got {mode})")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            migrate(conn)
        except sqlite3.DatabaseError as exc:
            conn.close()
            if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                raise StoreError(f"{db}: busy (another process holds it): {exc}") from exc
            raise CorruptStoreError(f"{db}: {exc} (restore it from a backup, or move the "
                                    "folder away to start a new store)") from exc
        except BaseException:
            conn.close()
            raise
        return conn

    def close(self) -> None:
        """Close the database (the store's files stay as they are)."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _query(self, sql: str, params: tuple | list = ()) -> list[dict[str, Any]]:
        with self._lock:
            cur = self._conn.execute(sql, params)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    # ------------------------------------------------------------------ residents
    def add_resident(self, name: str, resident_number: str, *, birth_date: str | date | None
                     = None, sex: str | None = None, room: str | None = None) -> int:
        """Register a resident; returns the id. ``sex``: ``"F"``, ``"M"`` or None;
        ``birth_date``: a date or ``YYYY-MM-DD``. A resident number already used is a
        `DuplicateError`."""
        name, number = str(name or "").strip(), str(resident_number or "").strip()
        if not name or not number:
            raise StoreError("a resident needs a name and a resident number")
        if isinstance(birth_date, str) and birth_date.strip():
            try:
                birth_date = date.fromisoformat(birth_date.strip())
            except ValueError as exc:
                raise StoreError("birth date must be YYYY-MM-DD") from exc
        if isinstance(birth_date, date) and birth_date > self.now().date():
            raise StoreError("birth date is in the future")
        born = birth_date.isoformat() if isinstance(birth_date, date) else None
        sex = (str(sex).strip().upper()[:1] or None) if sex else None
        if sex not in (None, "F", "M"):
            raise StoreError("sex must be F or M")
        try:
            with self._transaction() as conn:
                cur = conn.execute(
                    "INSERT INTO residents (resident_number, name, birth_date, sex, room, "
                    "created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (number, name, born, sex, (str(room).strip() or None) if room else None,
                     _iso(self.now())))
        except sqlite3.IntegrityError as exc:
            raise DuplicateError("that resident number is already registered") from exc
        rid = int(cur.lastrowid)
        log.info("resident %d registered", rid)
        return rid

    def get_resident(self, resident_id: int) -> dict[str, Any]:
        """The resident's row as a dict (`NotFoundError` if there is none)."""
        rows = self._query("SELECT * FROM residents WHERE id = ?", (int(resident_id),))
        if not rows:
            raise NotFoundError(f"no resident with id {resident_id}")
        return rows[0]

    def find_residents(self, query: str = "", limit: int = 50) -> list[dict[str, Any]]:
        """Residents whose name contains ``query`` (any case) or whose resident number starts
        with it, by name; an empty query lists everyone."""
        q = str(query or "").strip()
        like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        prefix = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        return self._query(
            "SELECT * FROM residents WHERE name LIKE ? ESCAPE '\\' OR resident_number LIKE ? "
            "ESCAPE '\\' ORDER BY name COLLATE NOCASE, id LIMIT ?", (like, prefix, int(limit)))

    def resident_by_number(self, resident_number: str) -> dict[str, Any] | None:
        """The resident with exactly this resident number, or None."""
        rows = self._query("SELECT * FROM residents WHERE resident_number = ?",
                           (str(resident_number or "").strip(),))
        return rows[0] if rows else None

    # ------------------------------------------------------------------ nurses
    def add_nurse(self, name: str, pin: str) -> int:
        """Add a nurse with a PIN of 4 to 12 digits (stored as an argon2id hash); returns id."""
        name, pin = str(name or "").strip(), str(pin or "")
        if not name:
            raise StoreError("a nurse needs a name")
        if not (pin.isdigit() and 4 <= len(pin) <= 12):
            raise StoreError("the PIN must be 4 to 12 digits")
        digest = _password_hasher().hash(pin)
        try:
            with self._transaction() as conn:
                cur = conn.execute("INSERT INTO nurses (name, pin_hash, created_at) "
                                   "VALUES (?, ?, ?)", (name, digest, _iso(self.now())))
        except sqlite3.IntegrityError as exc:
            raise DuplicateError("a nurse with that name already exists") from exc
        return int(cur.lastrowid)

    def nurse_name(self, nurse_id: int | None) -> str | None:
        """The nurse's name (for a report's header), or None for an unknown id."""
        if nurse_id is None:
            return None
        rows = self._query("SELECT name FROM nurses WHERE id = ?", (int(nurse_id),))
        return rows[0]["name"] if rows else None

    def verify_nurse(self, name: str, pin: str) -> int | None:
        """The nurse's id if ``pin`` is right, None if the name or PIN is wrong.

        After `MAX_FAILED_PINS` wrong PINs in a row the sign-in locks for `LOCKOUT`: until
        then every attempt (even with the right PIN) raises `NurseLockedError`.
        """
        from argon2.exceptions import InvalidHashError, VerificationError

        hasher = _password_hasher()
        now = self.now()
        rows = self._query("SELECT id, pin_hash, failed_attempts, locked_until FROM nurses "
                           "WHERE name = ?", (str(name or "").strip(),))
        if not rows:
            with suppress(VerificationError):   # same work as a real check: no name probing
                hasher.verify(_dummy_hash(), str(pin or ""))
            return None
        row = rows[0]
        if row["locked_until"]:
            until = datetime.fromisoformat(row["locked_until"].replace("Z", "+00:00"))
            if now < until:
                raise NurseLockedError(until)
        try:
            ok = hasher.verify(row["pin_hash"], str(pin or ""))
        except (VerificationError, InvalidHashError):
            ok = False
        with self._transaction() as conn:
            if ok:
                new_hash = hasher.hash(str(pin)) if hasher.check_needs_rehash(
                    row["pin_hash"]) else row["pin_hash"]
                conn.execute("UPDATE nurses SET failed_attempts = 0, locked_until = NULL, "
                             "pin_hash = ? WHERE id = ?", (new_hash, row["id"]))
                return int(row["id"])
            failed = int(conn.execute("SELECT failed_attempts FROM nurses WHERE id = ?",
                                      (row["id"],)).fetchone()[0]) + 1
            until = now + LOCKOUT if failed >= MAX_FAILED_PINS else None
            conn.execute("UPDATE nurses SET failed_attempts = ?, locked_until = ? WHERE id = ?",
                         (0 if until else failed, _iso(until) if until else None, row["id"]))
        log.info("nurse %d: wrong PIN (%d in a row)%s", row["id"], failed,
                 ", sign-in locked" if until else "")
        if until is not None:
            raise NurseLockedError(until)
        return None

    # ------------------------------------------------------------------ screenings
    @staticmethod
    def _screening_fields(screening: dict[str, Any]) -> tuple[str, str, str]:
        if not isinstance(screening, dict):
            raise InvalidScreeningError("a screening must be a dict (the screening record)")
        sid = screening.get("id")
        if not isinstance(sid, str) or not sid.strip():
            raise InvalidScreeningError("the screening has no \"id\" (a non-empty string)")
        if len(sid) > _MAX_ID_LEN or any(c in sid for c in "\n\r\t\0/\\"):
            raise InvalidScreeningError("the screening id must be one line of at most "
                                        f"{_MAX_ID_LEN} characters without slashes")
        created = screening.get("created_at")
        if not isinstance(created, str) or not created.strip():
            raise InvalidScreeningError(f"screening {sid}: no \"created_at\" (ISO time)")
        try:
            when = datetime.fromisoformat(created.strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise InvalidScreeningError(f"screening {sid}: \"created_at\" is not an ISO "
                                        "time") from exc
        # the column holds UTC (a time without zone is taken as UTC) so that rows sort by time
        created = _iso(when if when.tzinfo else when.replace(tzinfo=UTC))
        try:
            text = json.dumps(screening, default=_json_default, ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            raise InvalidScreeningError(f"screening {sid}: not JSON-serialisable: {exc}") \
                from exc
        return sid, created, text

    def save_screening(self, screening: dict[str, Any], recording: Recording,
                       report_pdf: bytes | None = None, *,
                       resident_id: int | None = None) -> str:
        """Save a screening with its recording (and PDF report); returns its id.

        ``screening`` carries its own ``"id"`` and ``"created_at"``; its ``"resident_id"``
        (or the ``resident_id`` argument) links it to a resident. The files are durable
        before the row commits; the row and its outbox entry commit together, and are durable
        when this returns. An id already saved is a `DuplicateError`.
        """
        sid, created, text = self._screening_fields(screening)
        if not isinstance(recording, Recording):
            raise InvalidScreeningError(f"screening {sid}: the recording must be a Recording")
        rid = resident_id if resident_id is not None else screening.get("resident_id")
        if rid is not None and (isinstance(rid, bool) or not isinstance(rid, int)):
            raise InvalidScreeningError(f"screening {sid}: resident_id must be an integer id")
        with files.store_lock(self.root, exclusive=False):
            rec_sha = files.write_recording_files(self.root, recording)
            pdf_sha = (files.write_report_file(self.root, report_pdf)
                       if report_pdf is not None else None)
            try:
                with self._transaction() as conn:
                    conn.execute(
                        "INSERT INTO screenings (id, resident_id, created_at, screening_json, "
                        "recording_sha256, report_sha256, status) "
                        "VALUES (?, ?, ?, ?, ?, ?, 'queued')",
                        (sid, rid, created, text, rec_sha, pdf_sha))
                    conn.execute("INSERT INTO outbox (screening_id, created_at) VALUES (?, ?)",
                                 (sid, _iso(self.now())))
            except sqlite3.IntegrityError as exc:
                if "FOREIGN KEY" in str(exc):
                    raise NotFoundError(f"screening {sid}: no resident with id {rid}") from exc
                raise DuplicateError(f"screening {sid} is already saved") from exc
        log.info("screening %s saved (recording %s, report %s)", sid, rec_sha[:12],
                 pdf_sha[:12] if pdf_sha else "none")
        return sid

    def attach_report(self, screening_id: str, pdf_bytes: bytes) -> None:
        """Store (or replace) the PDF report of a saved screening; it is queued for sync
        again if it had been sent."""
        self._row(screening_id)
        with files.store_lock(self.root, exclusive=False):
            sha = files.write_report_file(self.root, pdf_bytes)
            with self._transaction() as conn:
                conn.execute("UPDATE screenings SET report_sha256 = ?, status = 'queued' "
                             "WHERE id = ?", (sha, screening_id))
                conn.execute("INSERT INTO outbox (screening_id, created_at) VALUES (?, ?) "
                             "ON CONFLICT (screening_id) DO UPDATE SET sent_at = NULL, "
                             "failed_at = NULL, attempts = 0, last_error = NULL",
                             (screening_id, _iso(self.now())))
        log.info("screening %s: report %s attached", screening_id, sha[:12])

    def _row(self, screening_id: str) -> dict[str, Any]:
        rows = self._query("SELECT * FROM screenings WHERE id = ?", (str(screening_id),))
        if not rows:
            raise NotFoundError(f"no screening with id {screening_id}")
        return rows[0]

    def get_screening(self, screening_id: str) -> dict[str, Any]:
        """The screening dict as it was saved (JSON round trip)."""
        return json.loads(self._row(screening_id)["screening_json"])

    def resident_of(self, screening_id: str) -> dict[str, Any] | None:
        """The resident row the saved screening is linked to, or None (no resident)."""
        rid = self._row(screening_id)["resident_id"]
        return self.get_resident(rid) if rid is not None else None

    def load_recording(self, screening_id: str) -> Recording:
        """The screening's recording (WFDB; NaN where gaps were flagged, ``meta`` kept)."""
        return files.read_recording_files(self.root, self._row(screening_id)["recording_sha256"])

    def report_path(self, screening_id: str) -> Path | None:
        """The screening's PDF report, or None if it has none yet."""
        sha = self._row(screening_id)["report_sha256"]
        return files.report_file(self.root, sha) if sha else None

    def list_screenings(self, resident_id: int | None = None,
                        limit: int = 100) -> list[dict[str, Any]]:
        """Newest first: ``{"id", "resident_id", "created_at", "status", "has_report",
        "screening"}`` (``screening`` is the saved dict), for one resident or all."""
        where, params = ("WHERE resident_id = ?", [int(resident_id)]) \
            if resident_id is not None else ("", [])
        rows = self._query(f"SELECT * FROM screenings {where} ORDER BY created_at DESC, id "
                           "LIMIT ?", [*params, int(limit)])
        return [{"id": r["id"], "resident_id": r["resident_id"], "created_at": r["created_at"],
                 "status": r["status"], "has_report": r["report_sha256"] is not None,
                 "screening": json.loads(r["screening_json"])} for r in rows]

    def screening_count(self) -> int:
        return int(self._query("SELECT count(*) AS n FROM screenings")[0]["n"])

    # ------------------------------------------------------------------ outbox
    def outbox_count(self) -> int:
        """Screenings waiting to be sent (not those the server refused for good: failed)."""
        return int(self._query("SELECT count(*) AS n FROM outbox WHERE sent_at IS NULL "
                               "AND failed_at IS NULL")[0]["n"])

    def pending_outbox(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Unsent outbox entries, oldest first: ``screening_id``, ``created_at``, ``attempts``,
        ``last_error``, ``last_attempt_at``."""
        return self._query(
            "SELECT screening_id, created_at, attempts, last_error, last_attempt_at FROM outbox "
            "WHERE sent_at IS NULL AND failed_at IS NULL ORDER BY created_at, screening_id "
            "LIMIT ?",
            (-1 if limit is None else int(limit),))

    def mark_sent(self, screening_id: str) -> None:
        """The server has the screening: close its outbox entry."""
        now = _iso(self.now())
        with self._transaction() as conn:
            cur = conn.execute("UPDATE outbox SET sent_at = ?, last_attempt_at = ?, "
                               "attempts = attempts + 1, last_error = NULL "
                               "WHERE screening_id = ?", (now, now, str(screening_id)))
            if cur.rowcount != 1:
                raise NotFoundError(f"no outbox entry for screening {screening_id}")
            conn.execute("UPDATE screenings SET status = 'sent' WHERE id = ?",
                         (str(screening_id),))

    def mark_failed(self, screening_id: str, error: str) -> None:
        """A send failed: count the attempt and keep the error (the entry stays pending; an
        entry already synced or failed for good is `NotFoundError`)."""
        with self._transaction() as conn:
            cur = conn.execute("UPDATE outbox SET attempts = attempts + 1, last_error = ?, "
                               "last_attempt_at = ? WHERE screening_id = ? AND sent_at IS NULL "
                               "AND failed_at IS NULL",
                               (" ".join(str(error).split())[:1000], _iso(self.now()),
                                str(screening_id)))
            if cur.rowcount != 1:
                raise NotFoundError(f"no pending outbox entry for screening {screening_id}")

    # ------------------------------------------------------------------ upkeep
    def referenced_files(self) -> tuple[set[str], set[str]]:
        """The recording and report hashes that rows point at."""
        rows = self._query("SELECT recording_sha256, report_sha256 FROM screenings")
        return ({r["recording_sha256"] for r in rows},
                {r["report_sha256"] for r in rows if r["report_sha256"]})

    def sweep(self, wait_s: float = files.LOCK_WAIT_S) -> dict[str, int]:
        """Remove temporary files and files no row points at (see `store_files.sweep`)."""
        return files.sweep(self.root, self.referenced_files, wait_s=wait_s)

    def check(self) -> list[str]:
        """Problems found in the store (an empty list: consistent); see `store_check`."""
        from detak.kiosk.store_check import check_store

        return check_store(self)
