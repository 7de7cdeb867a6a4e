"""Database engine and schema migrations (Alembic, run programmatically at start-up).

`database_url` normalises a URL to the psycopg 3 driver; `migrate` brings the schema to the
newest revision shipped in ``detak/server/migrations`` (safe when several processes start at
once: PostgreSQL's advisory lock serialises them).

>>> database_url("postgresql://u@h/db")
'postgresql+psycopg://u@h/db'
>>> database_url("postgres://u@h/db")
'postgresql+psycopg://u@h/db'
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, text

MIGRATIONS = Path(__file__).with_name("migrations")
_LOCK_KEY = 0x6465_7461_6B  # "detak": the advisory lock migrations take


def database_url(url: str) -> str:
    """``url`` with the psycopg 3 driver named (``postgresql+psycopg://``)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def make_engine(url: str, pool_size: int = 5) -> Engine:
    """An engine for ``url`` (pre-ping: a restarted PostgreSQL costs one failed request)."""
    return create_engine(database_url(url), pool_size=pool_size, max_overflow=5,
                         pool_pre_ping=True, pool_timeout=10,
                         connect_args={"connect_timeout": 5})


def _config(engine: Engine):  # noqa: ANN202 - alembic.config.Config
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def head_revision() -> str:
    """The newest migration this code ships."""
    from alembic.script import ScriptDirectory

    return str(ScriptDirectory.from_config(_config(None)).get_current_head())  # type: ignore[arg-type]


def current_revision(engine: Engine) -> str | None:
    """The database's migration revision (None before the first migration)."""
    with engine.connect() as conn:
        exists = conn.execute(text("SELECT to_regclass('alembic_version')")).scalar()
        if exists is None:
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def migrate(engine: Engine) -> tuple[str | None, str]:
    """Upgrade the schema to the head revision; returns ``(before, after)``."""
    from alembic import command

    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
        before = None
        cfg = _config(engine)
        cfg.attributes["connection"] = conn
        exists = conn.execute(text("SELECT to_regclass('alembic_version')")).scalar()
        if exists is not None:
            before = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        command.upgrade(cfg, "head")
    return before, head_revision()
