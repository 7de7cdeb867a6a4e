"""``detak server --data DIR`` with no database URL: its own PostgreSQL cluster in DIR; admin
commands work while it runs and do not stop it; it survives kill -9 and a database restart."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from tests.server.harness import Postgres, ServerProcess


def _postgres_running(data) -> bool:  # noqa: ANN001
    import psutil

    for proc in psutil.process_iter(attrs=("name", "cmdline")):
        if proc.info["name"] == "postgres" and str(data / "pgdata") in " ".join(
                proc.info["cmdline"] or []):
            return True
    return False


def test_managed_cluster_lifecycle(server_factory: Callable[..., ServerProcess]) -> None:
    srv = server_factory(managed=True)
    assert (srv.data / "pgdata" / "PG_VERSION").read_text().strip() == "18"
    srv.admin("facility", "add", "Wisma A")
    code = srv.enrollment_code("Wisma A")
    assert len(code) >= 20
    srv.admin("create-user", "--role", "nurse", "--name", "n1", "--facility", "Wisma A",
              env={"DETAK_PASSWORD": "a long enough password"})
    assert httpx.get(srv.url + "/healthz").status_code == 200  # admin commands left it up
    srv.kill()  # kill -9: the cluster outlives the server; the next start adopts it
    srv.start()
    assert "Wisma A" in srv.admin("facility", "list").stdout
    srv.stop()  # a normal stop stops the cluster too
    deadline = time.monotonic() + 10
    while _postgres_running(srv.data) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _postgres_running(srv.data)
    # with no server, an admin command starts the cluster and stops it again
    assert "Wisma A" in srv.admin("facility", "list").stdout
    time.sleep(0.5)
    assert not _postgres_running(srv.data)


def test_database_restart(postgres: Postgres, server_factory: Callable[..., ServerProcess]
                          ) -> None:
    srv = server_factory()
    assert httpx.get(srv.url + "/healthz").status_code == 200
    postgres.pause()
    try:
        r = httpx.get(srv.url + "/healthz", timeout=20)
        assert r.status_code == 503 and "Retry-After" in r.headers
        r = httpx.post(srv.url + "/api/v1/enroll", json={"code": "x", "public_key": "A" * 43 + "="},
                       timeout=20)
        assert r.status_code == 503 and r.json()["error"]["code"] == "database_unavailable"
    finally:
        postgres.resume()
    deadline = time.monotonic() + 20
    status = None
    while time.monotonic() < deadline:
        status = httpx.get(srv.url + "/healthz").status_code
        if status == 200:
            break
        assert status == 503
        time.sleep(0.2)
    assert status == 200


def test_backup_while_running(server_factory: Callable[..., ServerProcess], tmp_path) -> None:  # noqa: ANN001
    import subprocess

    from detak.server.cluster import pg_binary

    srv = server_factory(managed=True)
    srv.admin("facility", "add", "Wisma Backup")
    dump = tmp_path / "detak.dump"
    srv.admin("backup", "--out", str(dump))
    listing = subprocess.run([str(pg_binary("pg_restore")), "-l", str(dump)],
                             capture_output=True, text=True, check=True).stdout
    assert "TABLE DATA public facilities" in listing and "audit_log" in listing
    assert httpx.get(srv.url + "/healthz").status_code == 200
