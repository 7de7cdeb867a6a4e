"""Alembic environment of the detak server: runs on the connection `detak.server.db.migrate`
passes in (``config.attributes["connection"]``), online only."""

from __future__ import annotations

from alembic import context

from detak.server.models import Base


def run(config) -> None:  # noqa: ANN001 - alembic.config.Config
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=Base.metadata)
        with context.begin_transaction():
            context.run_migrations()
        return
    from detak.server.db import make_engine  # `alembic` run by hand: the URL of alembic.ini

    engine = config.attributes.get("engine") or make_engine(
        config.get_main_option("sqlalchemy.url"))
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=Base.metadata)
        with context.begin_transaction():
            context.run_migrations()


try:
    _config = context.config
except AttributeError:  # imported outside alembic (pytest's doctest collection)
    _config = None
if _config is not None:
    run(_config)
