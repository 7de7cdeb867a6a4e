"""`check_store`: is a kiosk store consistent? (``detak store check`` prints its findings.)

It checks, holding the store's lock alone (no writer in flight):

* SQLite's ``PRAGMA integrity_check`` and ``foreign_key_check``, and the schema version;
* every screening row: its JSON readable and its id the row's; its recording's ``.hea`` and
  ``.dat`` present and hashing to the row's SHA-256; its report likewise;
* no half-written (temporary) file, no file that no row points at, no unexpected file;
* the outbox: every entry points at a screening; a screening not marked sent has an open
  entry, one marked sent has a closed one;
* permissions: the folders 0700, the files not readable by others.

>>> import tempfile
>>> from detak.kiosk.store import Store
>>> with Store.open(tempfile.mkdtemp() + "/s") as store:
...     check_store(store)
[]
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from detak.kiosk import store_files as files
from detak.kiosk.store_schema import SCHEMA_VERSION, schema_version
from detak.kiosk.store_sync import KEY_FILE

if TYPE_CHECKING:
    from detak.kiosk.store import Store

#: the check waits this long for writers in flight before it reports the store busy (seconds)
CHECK_LOCK_WAIT_S = 30.0


def _database_problems(conn: sqlite3.Connection) -> list[str]:
    problems = []
    rows = [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()]
    if rows != ["ok"]:
        problems += [f"database: integrity_check: {r}" for r in rows[:20]]
    for table, rowid, parent, _ in conn.execute("PRAGMA foreign_key_check").fetchall():
        problems.append(f"database: {table} row {rowid} points at a missing {parent} row")
    version = schema_version(conn)
    if version != SCHEMA_VERSION:
        problems.append(f"database: schema version {version}, expected {SCHEMA_VERSION}")
    return problems


def _outbox_problems(conn: sqlite3.Connection) -> list[str]:
    problems = []
    for (sid,) in conn.execute("SELECT o.screening_id FROM outbox o LEFT JOIN screenings s "
                               "ON s.id = o.screening_id WHERE s.id IS NULL"):
        problems.append(f"outbox: entry for screening {sid}, which does not exist")
    for sid, status, has_entry, sent_at in conn.execute(
            "SELECT s.id, s.status, o.screening_id IS NOT NULL, o.sent_at FROM screenings s "
            "LEFT JOIN outbox o ON o.screening_id = s.id"):
        if status != "sent" and not has_entry:
            problems.append(f"outbox: screening {sid} is unsent and has no outbox entry")
        elif status != "sent" and sent_at is not None:
            problems.append(f"outbox: screening {sid} is unsent but its entry is marked sent")
        elif status == "sent" and has_entry and sent_at is None:
            problems.append(f"outbox: screening {sid} is marked sent but its entry is open")
    return problems


def _permission_problems(root: Path) -> list[str]:
    problems = []
    for path in [root, *(root / sub for sub in (files.RECORDINGS, files.REPORTS, files.TMP))]:
        if path.is_dir() and path.stat().st_mode & 0o077:
            problems.append(f"permissions: folder {path} is open to others "
                            f"({oct(path.stat().st_mode & 0o777)}; expected 0o700)")
    for path in [*root.glob("detak.sqlite3*"), root / KEY_FILE,
                 *(root / files.RECORDINGS).glob("*"), *(root / files.REPORTS).glob("*")]:
        if path.is_file() and path.stat().st_mode & 0o077:
            problems.append(f"permissions: {path} is readable by others "
                            f"({oct(path.stat().st_mode & 0o777)}; expected 0o600)")
    return problems


def _file_problems(root: Path, rows: list[tuple[str, str, str | None]]) -> list[str]:
    problems = []
    used_recs: set[str] = set()
    used_reps: set[str] = set()
    for sid, rec_sha, rep_sha in rows:
        used_recs.add(rec_sha)
        problem = files.verify_recording(root, rec_sha)
        if problem:
            problems.append(f"screening {sid}: {problem}")
        if rep_sha:
            used_reps.add(rep_sha)
            problem = files.verify_report(root, rep_sha)
            if problem:
                problems.append(f"screening {sid}: {problem}")
    recs, reps, temps, odd = files.stored_files(root)
    problems += [f"half-written file left by an interrupted write: {p}" for p in temps]
    for found, used in ((recs, used_recs), (reps, used_reps)):
        for sha, paths in sorted(found.items()):
            if sha not in used:
                problems += [f"file no screening points at: {p}" for p in paths]
    problems += [f"unexpected file in the store: {p}" for p in odd]
    return problems


def check_store(store: Store) -> list[str]:
    """Every problem found in ``store`` as one line each; empty when consistent."""
    root = store.root
    # the files lock first, then the store's thread lock: a thread of this process that is
    # saving holds the files lock (shared) and then wants the thread lock for its commit
    with files.store_lock(root, exclusive=True, wait_s=CHECK_LOCK_WAIT_S) as alone, \
            store._lock:                              # noqa: SLF001 - the store's own helper
        conn = store._conn                           # noqa: SLF001
        try:
            problems = _database_problems(conn)
        except sqlite3.DatabaseError as exc:
            return [f"database: {exc}"]
        if not alone:
            return [*problems, f"store busy: writers kept it locked for "
                               f"{CHECK_LOCK_WAIT_S:g} s; files not checked"]
        rows = conn.execute("SELECT id, recording_sha256, report_sha256, screening_json "
                            "FROM screenings ORDER BY id").fetchall()
        for sid, _, _, text in rows:
            try:
                if json.loads(text).get("id") != sid:
                    problems.append(f"screening {sid}: its JSON carries another id")
            except (ValueError, AttributeError):
                problems.append(f"screening {sid}: its JSON cannot be read")
        problems += _file_problems(root, [(r[0], r[1], r[2]) for r in rows])
        problems += _outbox_problems(conn)
    problems += _permission_problems(root)
    return problems
