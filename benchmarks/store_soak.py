"""Soak of the kiosk store: kill -9 a real writer many times, and the cost of a durable save.

Kills: ``--iterations`` times (default 50), a writer process (``python -m
detak.kiosk.store_soak``: `Store.save_screening` with the bundled PTB-XL record 286, 12 leads
at 100 Hz, and a 60 kB PDF-sized blob per screening) is started on one store folder and killed
with SIGKILL at a seeded random moment — a quarter of the kills during start-up (imports,
opening, migrations, the sweep), the rest 0-0.6 s after its first save returned. After each
kill the store is reopened (which sweeps) and checked: ``PRAGMA integrity_check``, every row's
files present with their SHA-256, no temporary or unreferenced file, the outbox consistent,
and every id the writer printed (it prints after the save returned) is in the store. An
iteration with any problem is a failure; there must be none.

Cost: in the same run, ``--saves`` saves into a fresh store, against plain SQLite inserts with
the same durability (WAL, ``synchronous=FULL``, one transaction per row) on the same disk: the
screening's JSON alone, and the JSON plus the same recording and PDF bytes as BLOBs. Given as
ratios (the machine is shared; absolute times are not comparable between runs).

Run: ``.venv/bin/python benchmarks/store_soak.py --iterations 50 [--seed 0] [--saves 40]
[--json OUT.json]``.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from _provenance import provenance, provenance_line

from detak.data.samples import load_sample
from detak.kiosk.store import Store
from detak.kiosk.store_soak import DEFAULT_SAMPLE, PDF_BYTES, kill_and_check, soak_screening

LIBRARIES = ("wfdb", "argon2-cffi")


def time_saves(folder: Path, n: int, seed: int) -> dict[str, float]:
    """Saves per second of `Store.save_screening` and of two plain-SQLite baselines."""
    rec = load_sample(DEFAULT_SAMPLE)
    rng = random.Random(seed)
    pdfs = [b"%PDF-1.4\n" + rng.randbytes(PDF_BYTES) for _ in range(n)]
    recs = [rec.replace(meta={**rec.meta, "soak": i}) for i in range(n)]
    with Store.open(folder / "store") as store:
        store.save_screening(soak_screening("warm", 0, None), rec)       # imports, first file
        t0 = time.perf_counter()
        for i in range(n):
            store.save_screening(soak_screening("t", i, None), recs[i], report_pdf=pdfs[i])
        store_s = time.perf_counter() - t0
    signal_bytes = (folder / "store" / "recordings").glob("*.dat").__next__().read_bytes()
    conn = sqlite3.connect(folder / "plain.sqlite3", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE t (id TEXT PRIMARY KEY, js TEXT)")
    conn.execute("CREATE TABLE b (id TEXT PRIMARY KEY, js TEXT, rec BLOB, pdf BLOB)")
    rows = [(f"p{i}", json.dumps(soak_screening("p", i, None))) for i in range(n)]
    t0 = time.perf_counter()
    for row in rows:
        conn.execute("BEGIN")
        conn.execute("INSERT INTO t VALUES (?, ?)", row)
        conn.execute("COMMIT")
    plain_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for (rid, js), pdf in zip(rows, pdfs, strict=True):
        conn.execute("BEGIN")
        conn.execute("INSERT INTO b VALUES (?, ?, ?, ?)", (rid, js, signal_bytes, pdf))
        conn.execute("COMMIT")
    blob_s = time.perf_counter() - t0
    conn.close()
    return {"store_saves_per_s": n / store_s, "plain_inserts_per_s": n / plain_s,
            "blob_inserts_per_s": n / blob_s}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--iterations", type=int, default=50, help="kills (default 50)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--saves", type=int, default=40, help="saves timed for the cost ratio")
    p.add_argument("--json", default=None, metavar="OUT", help="also write the figures here")
    p.add_argument("--markdown", default=None, metavar="OUT.md",
                   help="also write the printed lines as a results page (docs/results/)")
    a = p.parse_args(argv)
    rng = random.Random(a.seed)
    with tempfile.TemporaryDirectory(prefix="detak-store-soak-") as tmp:
        folder = Path(tmp)
        failures, printed, early, mid_write, details = 0, 0, 0, 0, []
        t0 = time.monotonic()
        for i in range(a.iterations):
            result = kill_and_check(folder / "store", rng, f"k{i}")
            printed += len(result.printed)
            early += not result.printed
            mid_write += result.swept > 0
            if not result.ok:
                failures += 1
                details.append({"iteration": i, "delay_s": round(result.delay_s, 3),
                                "problems": result.problems[:5]})
                print(f"iteration {i}: {len(result.problems)} problem(s): "
                      f"{result.problems[0]}", flush=True)
        with Store.open(folder / "store") as store:
            stored = store.screening_count()
            final_problems = store.check()
        soak_s = time.monotonic() - t0
        figures = time_saves(folder / "timing", a.saves, a.seed)
    ratio_plain = figures["store_saves_per_s"] / figures["plain_inserts_per_s"]
    ratio_blob = figures["store_saves_per_s"] / figures["blob_inserts_per_s"]
    out = {
        "iterations": a.iterations, "failures": failures + bool(final_problems),
        "kills_before_first_save": early, "kills_mid_write": mid_write,
        "saves_returned_before_kills": printed,
        "screenings_in_store": stored, "final_check_problems": final_problems,
        "save_vs_plain_insert": round(ratio_plain, 3),
        "save_vs_insert_with_blobs": round(ratio_blob, 3),
        "saves_timed": a.saves, "soak_wall_s": round(soak_s, 1), "failure_details": details,
        "provenance": provenance(libraries=LIBRARIES),
    }
    lines = [
        f"iterations: {a.iterations}",
        f"failures: {out['failures']}",
        f"kills before the first save returned: {early}; kills that left a half-written or "
        f"unreferenced file for the sweep: {mid_write}",
        f"saves returned before the kills: {printed}; screenings in the store at the end: "
        f"{stored}",
        "store save rate / plain SQLite insert rate (JSON row, WAL, synchronous=FULL): "
        f"{ratio_plain:.3f} (a save costs {1 / ratio_plain:.1f} plain inserts)",
        "store save rate / insert rate with the same recording and PDF as BLOBs: "
        f"{ratio_blob:.3f} (a save costs {1 / ratio_blob:.1f} such inserts)",
    ]
    print("\n".join(lines))
    print(provenance_line(out["provenance"]))
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1) + "\n")
    if a.markdown:
        Path(a.markdown).write_text(
            "# Kiosk store: kill -9 soak\n\n" + provenance_line(out["provenance"]) + "\n\n"
            "Each iteration: a writer process saving screenings through "
            "`Store.save_screening` (PTB-XL record 286 from the bundled samples, 12 leads at "
            "100 Hz, and a 60 kB PDF-sized blob) killed with SIGKILL at a seeded random "
            "moment; the store reopened (sweep) and checked. Ratios compare rates measured in "
            "the same run on the same disk.\n\n```text\n" + "\n".join(lines) + "\n```\n")
    return 1 if out["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
