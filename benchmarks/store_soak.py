"""Soak of the kiosk store: kill -9 a real ``detak screen`` process many times, and the cost
of a durable save.

Kills: ``--iterations`` times (default 50), ``detak screen SOURCE... --store DIR --json`` is
started on one store folder with 2-4 sources drawn (seeded) from the bundled samples, LUDB
records 1-200 and PTB-XL records 1-10 of folds 1-9 (in a quarter of the runs one source is an
emulator device URL, ``emu://file/...``, which records first), and killed with SIGKILL: a third
of the kills at a uniform time in 0-``--span`` s after the start, the others aimed at a phase
of the run (store open, acquire, pipeline, PDF, recording files, report file, commit, saved:
its k-th start, then a short uniform delay; `detak.kiosk.screen_soak`). The process runs the
``detak`` entry point with phase marks on stderr, so each kill is counted by the phase it
actually hit. After each kill (`detak.kiosk.crash_check`): ``PRAGMA integrity_check`` on the
database as the kill left it; no row pointing at a missing or partial recording or report (the
SHA-256 of each file); every row in the outbox; ``detak store check`` (which opens and sweeps
the store) exits 0 with ``ok: N screenings``; no temporary, unreferenced or unexpected file
after that sweep; and every screening whose JSON line any killed command printed — over all
kills so far — still present with its report. An iteration with any problem is a failure;
there must be none.

Cost: in the same run, ``--saves`` saves into a fresh store, against plain SQLite inserts with
the same durability (WAL, ``synchronous=FULL``, one transaction per row) on the same disk: the
screening's JSON alone, and the JSON plus the same recording and PDF bytes as BLOBs. Given as
ratios (the machine is shared; absolute times are not comparable between runs).

Run: ``.venv/bin/python benchmarks/store_soak.py --iterations 50 [--seed 0] [--saves 40]
[--json OUT.json] [--results docs/results/store_soak.md]``.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from _provenance import provenance, provenance_line

from detak.data.samples import load_sample
from detak.kiosk.screen_soak import (
    AIM_SPAN_S,
    FINISHED,
    PHASES,
    emulator_source,
    kill_screen_and_check,
    source_pool,
)
from detak.kiosk.store import Store
from detak.kiosk.store_soak import DEFAULT_SAMPLE, PDF_BYTES, soak_screening

LIBRARIES = ("wfdb", "argon2-cffi", "matplotlib", "onnxruntime")
EMU_SAMPLES = ("ludb-1", "ludb-2", "ludb-8", "ptbxl-00286")


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


def soak(folder: Path, iterations: int, seed: int, span_s: float,
         echo: bool = True) -> dict:
    """The kill loop on one store under ``folder``; the figures."""
    rng = random.Random(seed)
    pool = source_pool()
    aims = ["random"] * 4 + list(AIM_SPAN_S)        # a third random, the rest aimed
    owed: dict[str, str | None] = {}
    hit: Counter[str] = Counter()
    failures, details, left, lines = 0, [], 0, 0
    t0 = time.monotonic()
    for i in range(iterations):
        sources = rng.sample(pool, rng.randint(2, 4))
        if rng.random() < 0.25:
            sources[rng.randrange(len(sources))] = emulator_source(rng.choice(EMU_SAMPLES))
        r = kill_screen_and_check(folder / "store", sources, rng, aim=rng.choice(aims),
                                  random_span_s=span_s, printed_so_far=owed)
        hit[r.phase] += 1
        left += r.left_for_sweep > 0
        lines += len(r.printed)
        if not r.ok:
            failures += 1
            details.append({"iteration": i, "aim": r.aim, "phase": r.phase,
                            "sources": r.sources, "problems": r.problems[:5]})
            if echo:
                print(f"iteration {i}: {len(r.problems)} problem(s): {r.problems[0]}",
                      flush=True)
    with Store.open(folder / "store") as store:
        stored, final = store.screening_count(), store.check()
    return {"iterations": iterations, "failures": failures + bool(final),
            "kills_by_phase": {p: hit[p] for p in (*PHASES, FINISHED) if hit[p]},
            "kills_leaving_files_for_the_sweep": left,
            "screenings_printed_before_kills": lines, "screenings_owed": len(owed),
            "screenings_in_store": stored, "final_check_problems": final,
            "soak_wall_s": round(time.monotonic() - t0, 1), "failure_details": details}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--iterations", type=int, default=50, help="kills (default 50)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--span", type=float, default=7.0,
                   help="random kills come 0..SPAN s after the start (default 7)")
    p.add_argument("--saves", type=int, default=40, help="saves timed for the cost ratio")
    p.add_argument("--json", default=None, metavar="OUT", help="also write the figures here")
    p.add_argument("--results", default=None, metavar="OUT.md",
                   help="also write the results page (docs/results/store_soak.md) with the "
                   "README's block")
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="detak-store-soak-") as tmp:
        out = soak(Path(tmp), a.iterations, a.seed, a.span)
        figures = time_saves(Path(tmp) / "timing", a.saves, a.seed)
    ratio_plain = figures["store_saves_per_s"] / figures["plain_inserts_per_s"]
    ratio_blob = figures["store_saves_per_s"] / figures["blob_inserts_per_s"]
    out.update({"save_vs_plain_insert": round(ratio_plain, 3),
                "save_vs_insert_with_blobs": round(ratio_blob, 3), "saves_timed": a.saves,
                "provenance": provenance(libraries=LIBRARIES)})
    by_phase = ", ".join(f"{k} {v}" for k, v in out["kills_by_phase"].items())
    lines = [
        f"iterations: {a.iterations}",
        f"failures: {out['failures']}",
        f"kills by the phase they hit ({FINISHED}: the process ended before its kill): "
        f"{by_phase}",
        f"kills that left a temporary or unreferenced file for the sweep: "
        f"{out['kills_leaving_files_for_the_sweep']}",
        f"screenings whose JSON line was printed before the kill (all checked present after "
        f"every later kill): {out['screenings_owed']}; screenings in the store at the end: "
        f"{out['screenings_in_store']}",
        "store save rate / plain SQLite insert rate (JSON row, WAL, synchronous=FULL): "
        f"{ratio_plain:.3f} (a save costs {1 / ratio_plain:.1f} plain inserts)",
        "store save rate / insert rate with the same recording and PDF as BLOBs: "
        f"{ratio_blob:.3f} (a save costs {1 / ratio_blob:.1f} such inserts)",
    ]
    print("\n".join(lines))
    prov = provenance_line(out["provenance"])
    print(prov)
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1) + "\n")
    if a.results:
        from readme_tables import write_results

        write_results(Path(a.results), "Kiosk store: kill -9 of `detak screen`", prov,
                      "\n".join(["```text", *lines, "```"]), {"store_soak": table(out)})
    return 1 if out["failures"] else 0


def table(out: dict) -> str:
    """The README's block: the soak's figures as a table."""
    by_phase = dict(out["kills_by_phase"])
    finished = by_phase.pop(FINISHED, 0)
    rows = [("`detak screen` processes started (iterations)", out["iterations"]),
            ("killed with SIGKILL", out["iterations"] - finished),
            ("finished before their kill (their output checked all the same)", finished),
            ("failures (any check failed after an iteration)", out["failures"]),
            *((f"kills that hit: {k}", v) for k, v in by_phase.items()),
            ("kills that left files for the startup sweep",
             out["kills_leaving_files_for_the_sweep"]),
            ("screenings printed before a kill, all present", out["screenings_owed"]),
            ("screenings in the store at the end", out["screenings_in_store"])]
    return "\n".join(["| measure | value |", "|---|---:|",
                      *(f"| {k} | {v} |" for k, v in rows)])


if __name__ == "__main__":
    sys.exit(main())
