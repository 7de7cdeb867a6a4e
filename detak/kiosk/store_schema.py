"""The kiosk store's SQLite schema: ordered migrations, the version in ``PRAGMA user_version``.

Migration ``n`` (``MIGRATIONS[n - 1]``) takes a database at version ``n - 1`` to version ``n``.
`migrate` runs the missing ones in one ``BEGIN IMMEDIATE`` transaction with the version bump,
so two processes opening a new store at once do not both migrate, and a crash mid-migration
leaves the old version. A database newer than this code is refused (`SchemaVersionError`).
Add a migration by appending a function; never edit one that has shipped.

>>> import sqlite3
>>> conn = sqlite3.connect(":memory:", isolation_level=None)
>>> migrate(conn), schema_version(conn) == SCHEMA_VERSION
((0, 3), True)
>>> sorted(r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'"))
['nurses', 'outbox', 'residents', 'screenings', 'sync_state', 'verdicts']
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from detak.kiosk.store_errors import SchemaVersionError


def _v1_tables(conn: sqlite3.Connection) -> None:
    """Residents, nurses, screenings and the outbox the sync client drains."""
    conn.execute("""
        CREATE TABLE residents (
            id INTEGER PRIMARY KEY,
            resident_number TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            birth_date TEXT,
            sex TEXT CHECK (sex IN ('F', 'M') OR sex IS NULL),
            room TEXT,
            created_at TEXT NOT NULL
        )""")
    conn.execute("""
        CREATE TABLE nurses (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            pin_hash TEXT NOT NULL,
            failed_attempts INTEGER NOT NULL DEFAULT 0,
            locked_until TEXT,
            created_at TEXT NOT NULL
        )""")
    conn.execute("""
        CREATE TABLE screenings (
            id TEXT PRIMARY KEY,
            resident_id INTEGER REFERENCES residents(id),
            created_at TEXT NOT NULL,
            screening_json TEXT NOT NULL,
            recording_sha256 TEXT NOT NULL,
            report_sha256 TEXT,
            status TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'sent'))
        )""")
    conn.execute("""
        CREATE TABLE outbox (
            screening_id TEXT PRIMARY KEY REFERENCES screenings(id),
            created_at TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            last_attempt_at TEXT,
            sent_at TEXT
        )""")


def _v2_indexes(conn: sqlite3.Connection) -> None:
    """Indexes for a resident's history, the pending outbox and resident search."""
    conn.execute("CREATE INDEX screenings_by_resident ON screenings (resident_id, created_at)")
    conn.execute("CREATE INDEX outbox_pending ON outbox (sent_at, created_at)")
    conn.execute("CREATE INDEX residents_by_name ON residents (name COLLATE NOCASE)")


def _v3_sync_state(conn: sqlite3.Connection) -> None:
    """Sync state (docs/sync.md): the enrolment (server URL, kiosk id, where the private key
    file is, the pinned bundle key, clock offset), the verdicts cursor and last sync times in
    one row; the doctors' verdicts; each screening's server id; failed outbox entries."""
    conn.execute("""
        CREATE TABLE sync_state (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            server_url TEXT,
            kiosk_id TEXT,
            key_file TEXT,
            bundle_public_key TEXT,
            facility_id INTEGER,
            facility_name TEXT,
            insecure INTEGER NOT NULL DEFAULT 0,
            clock_offset_s REAL NOT NULL DEFAULT 0,
            enrolled_at TEXT,
            revoked_at TEXT,
            verdicts_cursor TEXT,
            last_sync_at TEXT,
            last_attempt_at TEXT,
            last_error TEXT,
            bundle_rejected_sha256 TEXT
        )""")
    conn.execute("INSERT INTO sync_state (id) VALUES (1)")
    conn.execute("""
        CREATE TABLE verdicts (
            screening_id TEXT NOT NULL,
            reviewed_at TEXT NOT NULL,
            server_id INTEGER,
            label TEXT,
            note TEXT,
            doctor TEXT,
            verdict_json TEXT NOT NULL,
            received_at TEXT NOT NULL,
            PRIMARY KEY (screening_id, reviewed_at)
        )""")
    conn.execute("ALTER TABLE screenings ADD COLUMN server_id INTEGER")
    conn.execute("ALTER TABLE outbox ADD COLUMN failed_at TEXT")


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_v1_tables, _v2_indexes,
                                                                 _v3_sync_state)
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    """The database's schema version (0 for a new, empty database)."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, target: int = SCHEMA_VERSION) -> tuple[int, int]:
    """Bring the database to ``target`` (default: the newest); returns ``(before, after)``.

    ``conn`` must be in autocommit mode (``isolation_level=None``).
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        before = schema_version(conn)
        if before > SCHEMA_VERSION:
            raise SchemaVersionError(
                f"the store's schema version is {before}, newer than this detak knows "
                f"({SCHEMA_VERSION}): update detak, or open the store with the detak that "
                "wrote it")
        for version in range(before + 1, target + 1):
            MIGRATIONS[version - 1](conn)
            conn.execute(f"PRAGMA user_version = {int(version)}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return before, max(before, target)
