"""Real processes for the sync fault tests and benchmarks/sync_faults.py: a kiosk store, the
real ``detak sync`` / ``detak sync enroll`` as child processes, and the check that after any
fault every screening is on the server exactly once with the kiosk's bytes.

The server and PostgreSQL come from tests/server/harness.py (the server lane's harness).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from detak.kiosk import store_files as files
from detak.kiosk.store import Store
from tests.server.harness import DETAK, REPO, ServerProcess, _env

#: fast retries for child `detak sync` runs (the spec's 0.5 s / 30 s would make tests crawl)
FAST_RETRY = "base=0.05,cap=0.5,attempts=6"


def sync_env(chunk_bytes: int | None = None, retry: str = FAST_RETRY) -> dict[str, str]:
    env = _env({"DETAK_SYNC_RETRY": retry})
    if chunk_bytes:
        env["DETAK_SYNC_CHUNK_BYTES"] = str(chunk_bytes)
    return env


def enroll_cli(store_dir: Path, url: str, code: str, env: dict[str, str]) -> str:
    """`detak sync enroll URL CODE --store DIR`; returns its stdout (raises on failure)."""
    done = subprocess.run(DETAK + ["sync", "enroll", url, code, "--store", str(store_dir)],
                          env=env, capture_output=True, text=True, cwd=REPO, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"detak sync enroll failed ({done.returncode}): {done.stderr}")
    return done.stdout


def point_at(store_dir: Path, url: str) -> None:
    """Send the enrolled kiosk's requests to ``url`` (the fault proxy) from now on. Enrolment
    itself goes to the server directly: a one-time code is spent by the first delivery, so a
    duplicated or lost enrolment answer cannot be retried (see docs/sync.md §3)."""
    with Store.open(store_dir, sweep=False) as store, \
            store._transaction() as conn:               # noqa: SLF001
        conn.execute("UPDATE sync_state SET server_url = ? WHERE id = 1", (url,))


def start_sync(store_dir: Path, env: dict[str, str], *extra: str) -> subprocess.Popen:
    """A `detak sync --store DIR --json` child (its own process group, for kill -9)."""
    return subprocess.Popen(DETAK + ["sync", "--store", str(store_dir), "--json", *extra],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=REPO, start_new_session=True)


def kill9(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)


def run_sync(store_dir: Path, env: dict[str, str],
             timeout: float = 300.0) -> tuple[int, dict[str, Any] | None, str]:
    """Run `detak sync --json` to its end: ``(exit status, the JSON object or None, stderr)``."""
    proc = start_sync(store_dir, env)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill9(proc)
        raise
    lines = out.strip().splitlines()
    obj = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else None
    return proc.returncode, obj, err


def drain(store_dir: Path, env: dict[str, str], max_runs: int = 30) -> list[dict[str, Any]]:
    """Run `detak sync` until nothing is pending (a run may be stopped by the faults);
    returns the reports. Raises if ``max_runs`` runs do not drain it or one crashes."""
    reports = []
    for _ in range(max_runs):
        code, obj, err = run_sync(store_dir, env)
        if obj is None or "Traceback" in err:
            raise RuntimeError(f"detak sync crashed ({code}): {err[-3000:]}")
        reports.append(obj)
        if obj["pending"] == 0 and obj["error"] is None:
            return reports
        time.sleep(0.05)
    raise RuntimeError(f"not drained after {max_runs} runs: {reports[-1]}")


def kiosk_files(store: Store, sid: str) -> dict[str, bytes]:
    row = store._row(sid)                          # noqa: SLF001 - the test's view of the store
    rec = store.root / files.RECORDINGS / row["recording_sha256"]
    out = {"hea": Path(f"{rec}.hea").read_bytes(), "dat": Path(f"{rec}.dat").read_bytes()}
    if row["report_sha256"]:
        out["report_pdf"] = files.report_file(store.root, row["report_sha256"]).read_bytes()
    return out


def server_rows(srv: ServerProcess, uuids: list[str]) -> list[tuple[str, int, dict]]:
    """``(uuid, id, files)`` of the server's screening rows for ``uuids`` (every row, so a
    duplicate would show twice)."""
    import psycopg

    url = str(srv.database_url).replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn:
        return [(u, i, f) for u, i, f in conn.execute(
            "SELECT uuid, id, files FROM screenings WHERE uuid = ANY(%s) ORDER BY id",
            (list(uuids),)).fetchall()]


def verify_exactly_once(srv: ServerProcess, store_dir: Path) -> dict[str, int]:
    """Check every screening of the kiosk store is on the server once, byte-identical, and
    marked synced on the kiosk with the server's id; returns ``{"screenings", "lost",
    "duplicated", "mismatched", "unsynced"}`` (all but the first must be 0)."""
    from detak.server.filestore import LocalFileStore

    fs = LocalFileStore(srv.data)
    with Store.open(store_dir, sweep=False) as store:
        ids = [r["id"] for r in store.list_screenings(limit=1_000_000)]
        rows = server_rows(srv, ids)
        by_uuid: dict[str, list[tuple[int, dict]]] = {}
        for u, i, f in rows:
            by_uuid.setdefault(u, []).append((i, f))
        lost = sum(1 for sid in ids if sid not in by_uuid)
        duplicated = sum(len(v) - 1 for v in by_uuid.values())
        mismatched = unsynced = 0
        for sid in ids:
            if sid not in by_uuid:
                continue
            server_id, sfiles = by_uuid[sid][0]
            for key, data in kiosk_files(store, sid).items():
                sha = (sfiles.get(key) or {}).get("sha256")
                if sha != hashlib.sha256(data).hexdigest() or not fs.has(sha) or \
                        hashlib.sha256(fs.path(sha).read_bytes()).hexdigest() != sha:
                    mismatched += 1
            if store.server_id(sid) != server_id:
                unsynced += 1
        status = store.sync_status()
        unsynced += status["pending"] + status["failed"]
        problems = store.check()
    if problems:
        raise AssertionError(f"kiosk store problems: {problems}")
    return {"screenings": len(ids), "lost": lost, "duplicated": duplicated,
            "mismatched": mismatched, "unsynced": unsynced}
