"""Signed verdicts for the FHIR and training-loop tests, written straight into the review's
``review_verdicts`` table (the rows `detak.server.review_data.sign_verdict` writes; the review
tests sign through the pages and the API)."""

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
         version: int = 1, action: str = "none", note: str = "") -> None:
    """Insert signed verdict ``version`` of the screening by ``doctor`` (a user's name)."""
    sid = sql(srv, "SELECT id FROM screenings WHERE uuid = %s", screening_uuid)[0][0]
    uid = sql(srv, "SELECT id FROM users WHERE name = %s", doctor)[0][0]
    sql(srv, "INSERT INTO review_verdicts (screening_id, version, doctor_id, doctor_name, "
             "labels, model_labels, action, note) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        sid, version, uid, doctor, json.dumps(labels), json.dumps([]), action, note)
