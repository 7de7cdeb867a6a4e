"""Migration 0002_review on a real PostgreSQL: it follows 0001, upgrades, downgrades to 0001
(the review tables and the trigger function gone) and upgrades again."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from sqlalchemy import text

from tests.server.harness import Postgres


def test_0002_review_up_down_up():
    from alembic import command

    from detak.server.db import _config, current_revision, head_revision, make_engine, migrate

    folder = Path(tempfile.mkdtemp(prefix="detak-test-mig-"))
    pg = Postgres.start(folder)
    try:
        engine = make_engine(pg.new_database())
        assert migrate(engine) == (None, head_revision())
        assert current_revision(engine) == head_revision()

        def tables() -> set[str]:
            with engine.connect() as conn:
                return {r[0] for r in conn.execute(text(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))}

        assert {"review_verdicts", "review_locks", "screenings"} <= tables()
        with engine.begin() as conn:
            cfg = _config(engine)
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0001")
        assert current_revision(engine) == "0001"
        assert not {"review_verdicts", "review_locks"} & tables() and "screenings" in tables()
        with engine.connect() as conn:
            assert conn.execute(text("SELECT to_regproc('detak_verdict_immutable')")).scalar() \
                is None
        assert migrate(engine) == ("0001", head_revision())
        engine.dispose()
    finally:
        pg.stop()
        shutil.rmtree(folder, ignore_errors=True)
