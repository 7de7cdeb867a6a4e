"""Faults with real processes (issue 15 item 5): the real `detak server` (uvicorn) on a real
PostgreSQL, a real kiosk store, real `detak sync` child processes, and tests/sync/fault_proxy.py
between them. After each case: every screening on the server exactly once with the kiosk's
bytes (SHA-256 of the .hea, .dat and PDF), every one marked synced on the kiosk with the
server's id, the kiosk store consistent. benchmarks/sync_faults.py runs the same with many
randomised iterations."""

from __future__ import annotations

import random
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from detak.kiosk.store import Store
from tests.server.harness import Postgres, ServerProcess
from tests.sync.conftest import add_screenings
from tests.sync.e2e import (
    drain,
    enroll_cli,
    kill9,
    point_at,
    run_sync,
    server_rows,
    start_sync,
    sync_env,
    verify_exactly_once,
)
from tests.sync.fault_proxy import FaultPlan, FaultProxy

CHUNK = 16 << 10          # small chunks: each recording's .dat takes several


@pytest.fixture(scope="module")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postgres]:
    cluster = Postgres.start(tmp_path_factory.mktemp("pg"))
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def stack(pg: Postgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("srv") / "data", pg.new_database())
    try:
        srv.start()
        srv.admin("facility", "add", "Wisma Sync")
        yield srv
    finally:
        srv.stop()


def _kiosk(stack: ServerProcess, tmp_path: Path, n: int,
           url: str | None = None) -> tuple[Path, dict[str, str]]:
    """A kiosk store with ``n`` screenings of its own (ids and recordings no other test of the
    module uses: blobs are shared on the server), enrolled through ``url``."""
    store_dir = tmp_path / "kiosk"
    seed = zlib.crc32(tmp_path.name.encode())
    with Store.open(store_dir) as store:
        add_screenings(store, n, seed=seed, seconds=8.0)
    env = sync_env(CHUNK)
    enroll_cli(store_dir, stack.url, stack.enrollment_code("Wisma Sync"), env)
    if url:
        point_at(store_dir, url)
    return store_dir, env


def _assert_clean(stack: ServerProcess, store_dir: Path, n: int) -> None:
    got = verify_exactly_once(stack, store_dir)
    assert got == {"screenings": n, "lost": 0, "duplicated": 0, "mismatched": 0,
                   "unsynced": 0}


def test_cli_contract_against_the_real_server(stack: ServerProcess, tmp_path: Path) -> None:
    store_dir, env = _kiosk(stack, tmp_path, 3)
    code, obj, err = run_sync(store_dir, env)
    assert code == 0, err
    assert (obj["synced"], obj["pending"], obj["failed"]) == (3, 0, 0)
    rows = server_rows(stack, list(obj["server_ids"]))
    assert {u: i for u, i, _ in rows} == obj["server_ids"]
    _assert_clean(stack, store_dir, 3)
    import subprocess

    from tests.server.harness import DETAK, REPO
    done = subprocess.run(DETAK + ["sync", "--store", str(store_dir)], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip().splitlines()[-1] == \
        "synced 0, pending 0, failed 0"


def test_kill_9_of_detak_sync_mid_upload(stack: ServerProcess, tmp_path: Path) -> None:
    with FaultProxy(stack.port, FaultPlan(delay=1.0, max_delay_s=0.05, seed=1)) as proxy:
        store_dir, env = _kiosk(stack, tmp_path, 6, proxy.url)
        rng = random.Random(5)
        kills = 0
        for _ in range(4):
            # killed after a random number of its requests reached the proxy: mid-upload
            # whatever the machine's speed (a whole run takes about 1 s on an idle machine)
            seen, after = proxy.requests, rng.randint(1, 8)
            proc = start_sync(store_dir, env)
            deadline = time.monotonic() + 60
            while (proxy.requests - seen < after and proc.poll() is None
                   and time.monotonic() < deadline):
                time.sleep(0.005)
            if proc.poll() is None:
                kills += 1
            kill9(proc)
        assert kills >= 2
        proxy.enabled = False
        drain(store_dir, env)
    _assert_clean(stack, store_dir, 6)


def test_link_cut_mid_chunk(stack: ServerProcess, tmp_path: Path) -> None:
    with FaultProxy(stack.port, FaultPlan(cut_request=0.15, cut_response=0.1, seed=2)) as proxy:
        store_dir, env = _kiosk(stack, tmp_path, 4, proxy.url)
        reports = drain(store_dir, env)
        assert proxy.counts["cut_request"] + proxy.counts["cut_response"] >= 3
    assert sum(r["synced"] for r in reports) >= 4       # each counted once or more (acks lost)
    _assert_clean(stack, store_dir, 4)


def test_the_same_requests_delivered_twice_and_out_of_order(stack: ServerProcess,
                                                             tmp_path: Path) -> None:
    with FaultProxy(stack.port, FaultPlan(duplicate=0.3, reorder=0.15, seed=3)) as proxy:
        store_dir, env = _kiosk(stack, tmp_path, 4, proxy.url)
        drain(store_dir, env)
        assert proxy.counts["duplicate"] >= 2 and proxy.counts["reorder"] >= 1
        time.sleep(0.5)                                    # the late copies have landed
    _assert_clean(stack, store_dir, 4)


def test_the_server_killed_mid_batch_and_restarted(stack: ServerProcess,
                                                   tmp_path: Path) -> None:
    with FaultProxy(stack.port, FaultPlan(delay=1.0, max_delay_s=0.05, seed=4)) as proxy:
        store_dir, env = _kiosk(stack, tmp_path, 6, proxy.url)
        proc = start_sync(store_dir, env)
        time.sleep(2.0)                                    # mid-upload / mid-batch
        stack.kill()
        out, _ = proc.communicate(timeout=300)             # the run gives up: pending kept
        stack.start()
        proxy.enabled = False
        drain(store_dir, env)
    _assert_clean(stack, store_dir, 6)


def test_kiosk_app_syncs_in_the_background(stack: ServerProcess, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from detak.kiosk.app import create_app

    with FaultProxy(stack.port) as proxy:
        store_dir, _ = _kiosk(stack, tmp_path, 3, proxy.url)
        proxy.stop()                                   # the link is down when the app starts
        app = create_app(store_dir, load_model=False, sync_interval_s=0.2)
        with TestClient(app) as client:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:         # the first run fails (3 tries)
                health = client.get("/healthz").json()
                if health["sync_error"]:
                    break
                time.sleep(0.2)
            assert health["pending_sync"] == 3 and health["last_sync"] is None
            assert "ConnectError" in health["sync_error"]    # why: named, for the admin
            point_at(store_dir, stack.url)             # the link is back
            app.state.sync.failures = 0                # (skip the backoff it built up)
            app.state.sync._not_before = 0.0
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                health = client.get("/healthz").json()
                if health["pending_sync"] == 0:
                    break
                time.sleep(0.2)
            assert health["pending_sync"] == 0 and health["last_sync"]
            assert health["sync_error"] is None
            client.get("/lang/en?next=/login")
            page = client.get("/login").text
            assert "Waiting to sync: 0" in page
            assert "last sync: " in page and "last sync: never" not in page
    _assert_clean(stack, store_dir, 3)


def test_randomised_fault_iterations_fast_subset(stack: ServerProcess, pg: Postgres,
                                                 tmp_path: Path) -> None:
    """A few iterations of benchmarks/sync_faults.py's loop (it runs >= 200)."""
    from tests.sync.fault_soak import soak

    result = soak(stack, pg, tmp_path, iterations=10, seed=11, verify_every=5,
                  log=lambda line: None)
    assert result.iterations == 10 and result.checks == 2
    assert sum(result.faults.values()) >= 5
    assert result.ok, result
    assert result.screenings == result.added


def test_the_database_restarted_mid_run(stack: ServerProcess, pg: Postgres,
                                        tmp_path: Path) -> None:
    with FaultProxy(stack.port, FaultPlan(delay=1.0, max_delay_s=0.05, seed=6)) as proxy:
        store_dir, env = _kiosk(stack, tmp_path, 5, proxy.url)
        proc = start_sync(store_dir, env)
        time.sleep(1.8)
        pg.restart()                                       # PostgreSQL under the server
        proc.communicate(timeout=300)
        stack.wait_healthy(60)
        proxy.enabled = False
        drain(store_dir, env)
    _assert_clean(stack, store_dir, 5)
