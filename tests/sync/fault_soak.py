"""Randomised fault iterations against a real server (benchmarks/sync_faults.py runs ≥ 200;
tests/sync/test_faults.py a fast subset).

Each iteration adds 1-3 screenings (recordings of 2, 8 or 20 s, so blobs of one to several
chunks) to one kiosk store, draws one fault kind and syncs through it:

* ``cut_request``, ``cut_response``, ``delay``, ``duplicate``, ``reorder``: the fault proxy
  (tests/sync/fault_proxy.py) injures each request with probability 0.35 during one
  `SyncClient.sync` run;
* ``kill_sync``: a real ``detak sync`` child is killed with SIGKILL 0.3-2.0 s after its start
  (counted only when it was still running);
* ``kill_server``: the server (uvicorn, its process group) is killed with SIGKILL while a
  run is in flight, then started again — partial chunks on its disk, a batch half done;
* ``restart_db``: PostgreSQL is restarted under the server while a run is in flight.

A run may end early (retries spent): what it did not send stays pending for the next. Every
``verify_every`` iterations and at the end, the outbox is drained without faults and checked:
every screening on the server exactly once, byte-identical, marked synced on the kiosk with the
server's id; the kiosk's own count of screenings equal to what was added (nothing lost on the
kiosk either).
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from detak.kiosk.store import Store
from detak.sync.client import SyncClient
from detak.sync.retry import RetryPolicy
from tests.server.harness import Postgres, ServerProcess
from tests.sync.conftest import add_screenings
from tests.sync.e2e import enroll_cli, kill9, point_at, start_sync, sync_env, verify_exactly_once
from tests.sync.fault_proxy import FaultPlan, FaultProxy

PROXY_KINDS = ("cut_request", "cut_response", "delay", "duplicate", "reorder")
WEIGHTS = {"cut_request": 3, "cut_response": 3, "delay": 1, "duplicate": 2, "reorder": 2,
           "kill_sync": 2, "kill_server": 1, "restart_db": 0.5}
FAST = RetryPolicy(base=0.02, cap=0.25, attempts=6)
CHUNK = 16 << 10
FACILITY = "Wisma Soak"


@dataclasses.dataclass
class SoakResult:
    iterations: int = 0
    faults: Counter = dataclasses.field(default_factory=Counter)
    drawn: Counter = dataclasses.field(default_factory=Counter)
    added: int = 0
    screenings: int = 0
    lost: int = 0
    duplicated: int = 0
    mismatched: int = 0
    unsynced: int = 0
    lost_on_kiosk: int = 0
    runs_stopped_early: int = 0
    checks: int = 0
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.mismatched or self.unsynced
                    or self.lost_on_kiosk)


def _sync_once(store_dir: Path, url_policy: RetryPolicy = FAST) -> str | None:
    with Store.open(store_dir, sweep=False) as store:
        return SyncClient(store, policy=url_policy, chunk_size=CHUNK, lock_wait_s=60).sync().error


def _drain(store_dir: Path, max_runs: int = 40) -> None:
    for _ in range(max_runs):
        if _sync_once(store_dir) is None:
            with Store.open(store_dir, sweep=False) as store:
                if store.outbox_count() == 0:
                    return
        time.sleep(0.1)
    raise RuntimeError(f"the outbox did not drain in {max_runs} fault-free runs")


def _in_flight(store_dir: Path, errors: list[str]) -> threading.Thread:
    def run() -> None:
        try:
            _sync_once(store_dir)
        except Exception as err:  # noqa: BLE001 - recorded; the iteration checks the outcome
            errors.append(f"{type(err).__name__}: {err}")

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def soak(srv: ServerProcess, pg: Postgres, work: Path, iterations: int, seed: int = 0,
         verify_every: int = 25, log: Callable[[str], None] = print) -> SoakResult:
    """Run ``iterations`` randomised fault iterations (see the module docstring)."""
    rng = random.Random(seed)
    result = SoakResult()
    t0 = time.monotonic()
    store_dir = work / "kiosk"
    Store.open(store_dir).close()
    env = sync_env(CHUNK)
    srv.admin("facility", "add", FACILITY, check=False)
    enroll_cli(store_dir, srv.url, srv.enrollment_code(FACILITY), env)
    proxy = FaultProxy(srv.port, FaultPlan(seed=seed)).start()
    proxy.enabled = False
    point_at(store_dir, proxy.url)
    kinds, weights = list(WEIGHTS), list(WEIGHTS.values())
    errors: list[str] = []
    try:
        for i in range(iterations):
            with Store.open(store_dir, sweep=False) as store:
                n = rng.randint(1, 3)
                add_screenings(store, n, seed=seed * 1_000_003 + i, seconds=rng.choice(
                    (2.0, 8.0, 20.0)))
                result.added += n
            kind = rng.choices(kinds, weights)[0]
            result.drawn[kind] += 1
            if kind in PROXY_KINDS:
                proxy.plan = FaultPlan(**{kind: 0.35}, max_delay_s=0.2, reorder_delay_s=0.2)
                before = proxy.counts[kind]
                proxy.enabled = True
                try:
                    if _sync_once(store_dir) is not None:
                        result.runs_stopped_early += 1
                finally:
                    proxy.enabled = False
                result.faults[kind] += proxy.counts[kind] - before
            elif kind == "kill_sync":
                proxy.plan = FaultPlan(delay=1.0, max_delay_s=0.03)
                proxy.enabled = True
                proc = start_sync(store_dir, env)
                time.sleep(rng.uniform(0.3, 2.0))
                if proc.poll() is None:
                    result.faults[kind] += 1
                kill9(proc)
                proxy.enabled = False
            else:
                thread = _in_flight(store_dir, errors)
                time.sleep(rng.uniform(0.05, 0.8))
                if kind == "kill_server":
                    srv.kill()
                    thread.join(120)
                    srv.start()
                else:
                    pg.restart()
                    thread.join(120)
                    srv.wait_healthy(60)
                result.faults[kind] += 1
            result.iterations += 1
            if (i + 1) % verify_every == 0 or i + 1 == iterations:
                time.sleep(0.3)                          # late (reordered) copies land
                _drain(store_dir)
                got = verify_exactly_once(srv, store_dir)
                result.checks += 1
                result.screenings = got["screenings"]
                result.lost, result.duplicated = got["lost"], got["duplicated"]
                result.mismatched, result.unsynced = got["mismatched"], got["unsynced"]
                result.lost_on_kiosk = result.added - got["screenings"]
                log(f"after {i + 1} iterations: {got}, faults {dict(result.faults)}")
                if not result.ok:
                    break
    finally:
        proxy.stop()
    if errors:
        log(f"in-flight runs raised: {errors[:5]}")
    result.wall_s = time.monotonic() - t0
    return result
