"""Fixtures of the review tests: ``clinic`` (module): a real server + PostgreSQL and a kiosk
store synced to it (tests/review/clinic.py)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.review.clinic import Clinic, make_clinic
from tests.server.conftest import outside_pytest_tmp  # noqa: F401 - the same folders rule
from tests.server.harness import Postgres, ServerProcess


@pytest.fixture(scope="module")
def clinic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clinic]:
    folder = Path(tempfile.mkdtemp(prefix="detak-test-review-"))
    pg = Postgres.start(folder)
    srv = ServerProcess(tmp_path_factory.mktemp("server") / "data", pg.new_database()).start()
    try:
        yield make_clinic(srv, tmp_path_factory.mktemp("kiosk") / "S")
    finally:
        srv.stop()
        pg.stop()
        shutil.rmtree(folder, ignore_errors=True)
