"""Signed verdicts for the FHIR and training-loop tests, written straight into the database as
`detak.server.verdict_read` expects them (the review pages that write them are built
elsewhere; this is the table contract the two sides share)."""

from __future__ import annotations

import json

import psycopg

from tests.server.harness import ServerProcess


def sql(srv: ServerProcess, query: str, *params: object) -> list[tuple]:
    """Run one statement on the server's database; its rows (none for a command)."""
    url = srv.database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn:
        cur = conn.execute(query, params or None)
        return cur.fetchall() if cur.description else []


def sign(srv: ServerProcess, screening_uuid: str, labels: list[str], doctor: str,
         version: int = 1, action: str = "no action", note: str = "") -> None:
    """Insert a signed verdict (creating the ``verdicts`` table if this schema lacks it)."""
    sql(srv, "CREATE TABLE IF NOT EXISTS verdicts (id serial PRIMARY KEY, screening_id bigint "
             "REFERENCES screenings(id), version int NOT NULL, labels jsonb, action text, "
             "note text, signed_by int REFERENCES users(id), signed_at timestamptz)")
    sid = sql(srv, "SELECT id FROM screenings WHERE uuid = %s", screening_uuid)[0][0]
    uid = sql(srv, "SELECT id FROM users WHERE name = %s", doctor)[0][0]
    sql(srv, "INSERT INTO verdicts (screening_id, version, labels, action, note, signed_by, "
             "signed_at) VALUES (%s, %s, %s, %s, %s, %s, now())",
        sid, version, json.dumps(labels), action, note, uid)
