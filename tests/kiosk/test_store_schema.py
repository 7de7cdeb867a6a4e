"""Schema migrations of the kiosk store (detak/kiosk/store_schema.py), from version 0 up."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from detak.kiosk.store import DB_NAME, Store
from detak.kiosk.store_errors import SchemaVersionError
from detak.kiosk.store_schema import MIGRATIONS, SCHEMA_VERSION, migrate, schema_version


def _conn(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def test_every_step_from_version_0(tmp_path: Path) -> None:
    conn = _conn(tmp_path / "db")
    assert schema_version(conn) == 0
    for version in range(1, SCHEMA_VERSION + 1):
        assert migrate(conn, target=version) == (version - 1, version)
        assert schema_version(conn) == version
    assert migrate(conn) == (SCHEMA_VERSION, SCHEMA_VERSION)        # idempotent
    assert SCHEMA_VERSION == len(MIGRATIONS) >= 2


def test_data_survives_the_upgrade_from_version_1(tmp_path: Path) -> None:
    store_dir = tmp_path / "s"
    store_dir.mkdir(mode=0o700)
    conn = _conn(store_dir / DB_NAME)
    migrate(conn, target=1)
    conn.execute("INSERT INTO residents (resident_number, name, created_at) "
                 "VALUES ('R1', 'Old Resident', '2025-01-01T00:00:00Z')")
    conn.close()
    with Store.open(store_dir) as store:
        assert schema_version(store._conn) == SCHEMA_VERSION
        assert [r["name"] for r in store.find_residents("old")] == ["Old Resident"]
        indexes = {r["name"] for r in store._query(
            "SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert "outbox_pending" in indexes


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    Store.open(tmp_path / "s").close()
    conn = _conn(tmp_path / "s" / DB_NAME)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(SchemaVersionError, match="newer than this detak"):
        Store.open(tmp_path / "s")


def test_a_failed_migration_leaves_the_old_version(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import detak.kiosk.store_schema as schema

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half_done (x)")
        raise RuntimeError("boom")

    conn = _conn(tmp_path / "db")
    migrate(conn, target=1)
    monkeypatch.setattr(schema, "MIGRATIONS", (schema.MIGRATIONS[0], broken))
    monkeypatch.setattr(schema, "SCHEMA_VERSION", 2)
    with pytest.raises(RuntimeError):
        schema.migrate(conn, target=2)
    assert schema_version(conn) == 1
    assert not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'half_done'").fetchall()
