"""Alembic migrations of the clinic server (run by `detak.server.db.migrate`)."""
