"""Server CPU per kiosk request, one request at a time (no queueing): what a blob PATCH and a
batch item cost the `detak server` process and PostgreSQL.

A real PostgreSQL 18 (tests/server/harness.py) and one real ``detak server --workers 1``;
one kiosk (tests/server/kiosk.py, signing as docs/sync.md §4 says) sends ``--blobs`` distinct
blobs of ``--blob-bytes`` bytes each in one chunk (the kiosk's common case), then the screenings
that reference them in batches of 10 (three blobs per screening, a resident each). CPU seconds
of the server's process tree and of PostgreSQL's are sampled around each phase (psutil), so the
figures are per request with nothing else in flight; the machine is shared, so the wall times
are noisy, the CPU times much less so.

Run: ``python benchmarks/sync_server_cpu.py [--blobs 300] [--blob-bytes 80000] [--repeat 3]``
(prints ms of server and PostgreSQL CPU per PATCH and per batch item; median of the repeats).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(Path(__file__).resolve().parent)]

from sync_load import _cpu_s, _pg_pid, _tree  # noqa: E402


def _phase(fn, server_pid: int, pg_pid: int) -> tuple[float, float, float]:  # noqa: ANN001
    s0, p0, t0 = _cpu_s(_tree(server_pid)), _cpu_s(_tree(pg_pid)), time.monotonic()
    fn()
    return (_cpu_s(_tree(server_pid)) - s0, _cpu_s(_tree(pg_pid)) - p0,
            time.monotonic() - t0)


def main(argv: list[str] | None = None) -> int:
    from tests.server.harness import Postgres, ServerProcess
    from tests.server.kiosk import Kiosk, make_item, sha

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--blobs", type=int, default=300, help="blobs per repeat (3 per screening)")
    p.add_argument("--blob-bytes", type=int, default=80_000)
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args(argv)
    rng = random.Random(0)
    with tempfile.TemporaryDirectory(prefix="detak-cpu-") as tmp:
        work = Path(tmp)
        work.chmod(0o755)
        pg = Postgres.start(work / "pg")
        srv = ServerProcess(work / "srv" / "data", pg.new_database(), workers=1)
        try:
            srv.start()
            srv.admin("facility", "add", "Wisma CPU")
            k = Kiosk(srv.url)
            assert k.enroll(srv.enrollment_code("Wisma CPU")).status_code == 201
            patch_ms, patch_pg, item_ms, item_pg = [], [], [], []
            for rep in range(a.repeat):
                blobs = [rng.randbytes(a.blob_bytes) for _ in range(a.blobs - a.blobs % 3)]

                def send_blobs(blobs: list[bytes] = blobs) -> None:
                    for b in blobs:
                        r = k.request("PATCH", f"/api/v1/blobs/{sha(b)}?offset=0&size={len(b)}",
                                      b, {"Content-Type": "application/octet-stream"})
                        assert r.status_code == 200, r.text

                items = []
                for i in range(0, len(blobs), 3):
                    hea, dat, pdf = blobs[i:i + 3]
                    items.append(make_item(hea, dat, pdf=pdf, resident={
                        "resident_number": f"R-{rep}-{i % 20}", "name": "Invented Resident",
                        "birth_date": "1940-01-02", "sex": "F", "room": None}))

                def send_items(items: list[dict] = items) -> None:
                    for j in range(0, len(items), 10):
                        r = k.batch(items[j:j + 10])
                        assert r.status_code == 200, r.text
                        assert all(x["status"] == "created" for x in r.json()["results"])

                srv_pid, pgp = srv.proc.pid, _pg_pid(pg)
                s, q, w = _phase(send_blobs, srv_pid, pgp)
                patch_ms.append(1000 * s / len(blobs))
                patch_pg.append(1000 * q / len(blobs))
                s, q, w = _phase(send_items, srv_pid, pgp)
                item_ms.append(1000 * s / len(items))
                item_pg.append(1000 * q / len(items))
        finally:
            srv.stop()
            pg.stop()
    med = statistics.median
    print(f"blob PATCH ({a.blob_bytes} B, one chunk): server {med(patch_ms):.2f} ms CPU, "
          f"PostgreSQL {med(patch_pg):.2f} ms CPU (median of {a.repeat} x {len(blobs)})")
    print(f"batch item (in batches of 10): server {med(item_ms):.2f} ms CPU, "
          f"PostgreSQL {med(item_pg):.2f} ms CPU (median of {a.repeat} x {len(items)})")
    per = 3 * med(patch_ms) + med(item_ms)
    print(f"per screening (3 PATCHes + 1 item): server {per:.1f} ms, PostgreSQL "
          f"{3 * med(patch_pg) + med(item_pg):.1f} ms; load average {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
