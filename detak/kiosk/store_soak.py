"""The store's crash soak: a real writer process killed with SIGKILL, then the store checked.

The writer (``python -m detak.kiosk.store_soak DIR N``) opens the store in ``DIR`` and saves
``N`` screenings through `Store.save_screening` — the call ``detak screen`` makes — each with a
real recording (a bundled sample; most saves change its ``meta`` so that new WFDB files are
written, every fourth reuses one) and a PDF-sized blob, printing each id once its save has
returned. `kill_and_check` starts it, kills it at a seeded random moment (during start-up,
the store's opening and sweep, or the saves), reopens the store (which sweeps) and returns
what `Store.check` finds plus every printed id the store lacks. Used by
``tests/kiosk/test_store_crash.py`` (a few iterations) and ``benchmarks/store_soak.py`` (≥ 50).

>>> import io, tempfile
>>> out = io.StringIO()
>>> write_screenings(tempfile.mkdtemp() + "/s", 2, prefix="doc", out=out)
2
>>> out.getvalue().split()
['doc-000000', 'doc-000001']
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from detak.kiosk.store import Store

DEFAULT_SAMPLE = "ptbxl-00286"
PDF_BYTES = 60_000                     # a one-page report with an ECG drawing is ~50-100 kB


@dataclass
class KillResult:
    """One kill: ids printed before it, screenings found after, and the problems."""

    delay_s: float
    printed: list[str]
    stored: int
    problems: list[str] = field(default_factory=list)
    swept: int = 0          # temporary and unreferenced files the kill left for the sweep

    @property
    def ok(self) -> bool:
        return not self.problems


def soak_screening(prefix: str, i: int, resident_id: int | None) -> dict:
    """A screening dict shaped like the pipeline's (id, created_at, resident, results)."""
    return {"id": f"{prefix}-{i:06d}", "created_at": datetime.now(UTC).isoformat(),
            "resident_id": resident_id, "source": f"sample://{DEFAULT_SAMPLE}",
            "quality": {"verdict": "ok", "reasons": []},
            "intervals": {"hr_bpm": 72.0 + i % 7, "qtc_bazett_ms": 430.0, "pr_ms": float("nan")},
            "urgency": {"level": "routine review", "reasons": ["soak"]}}


def write_screenings(store_dir: str | Path, n: int, prefix: str = "soak", seed: int = 0,
                     sample: str = DEFAULT_SAMPLE, out=None) -> int:  # noqa: ANN001
    """Save ``n`` screenings into the store, printing each id after its save returned."""
    from detak.data.samples import load_sample

    out = out or sys.stdout
    base = load_sample(sample)
    rng = random.Random(seed)
    with Store.open(store_dir) as store:
        rid = store.add_resident(f"Soak Resident {prefix}", f"SOAK-{prefix}")
        for i in range(n):
            rec = base if i % 4 == 3 else base.replace(
                meta={**base.meta, "soak": {"prefix": prefix, "i": i}})
            pdf = b"%PDF-1.4\n" + rng.randbytes(PDF_BYTES)
            sid = store.save_screening(soak_screening(prefix, i, rid), rec, report_pdf=pdf)
            print(sid, file=out, flush=True)
    return n


def _collect(stream, into: list[str]) -> None:  # noqa: ANN001
    for line in iter(stream.readline, ""):
        if line.endswith("\n"):                 # a line cut by the kill was not returned
            into.append(line.strip())


def kill_and_check(store_dir: str | Path, rng: random.Random, tag: str,
                   max_after_first_s: float = 0.6, early_share: float = 0.2,
                   python: str = sys.executable) -> KillResult:
    """Start a writer on ``store_dir``, SIGKILL it at a random moment, reopen and check.

    With probability ``early_share`` the kill comes at a uniform time in the first 1.5 s
    (imports, opening, migrations, sweep); otherwise after the first printed id plus a uniform
    0..``max_after_first_s`` s (in the middle of saves).
    """
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH")]
        if p)}
    proc = subprocess.Popen([python, "-m", "detak.kiosk.store_soak", str(store_dir), "1000000",
                             "--prefix", tag, "--seed", str(rng.randrange(2**31))],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=env)
    printed: list[str] = []
    reader = threading.Thread(target=_collect, args=(proc.stdout, printed), daemon=True)
    reader.start()
    start = time.monotonic()
    if rng.random() < early_share:
        delay = rng.uniform(0.0, 1.5)
        time.sleep(delay)
    else:
        while not printed and proc.poll() is None and time.monotonic() - start < 60:
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, max_after_first_s))
        delay = time.monotonic() - start
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    reader.join(timeout=10)
    ids = list(printed)
    with Store.open(store_dir, sweep=False) as store:
        counts = store.sweep()                      # what Store.open does, counted here
        problems = store.check()
        stored = store.screening_count()
        for sid in ids:
            try:
                store.get_screening(sid)
                store.load_recording(sid)
            except Exception as exc:  # noqa: BLE001 - each missing save is a finding
                problems.append(f"screening {sid} printed before the kill: {exc}")
    return KillResult(delay, ids, stored, problems, counts["temporary"] + counts["orphans"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m detak.kiosk.store_soak",
                                description="Save N screenings into the store DIR, printing "
                                "each id after its save returned (the store's crash soak).")
    p.add_argument("store")
    p.add_argument("n", type=int)
    p.add_argument("--prefix", default="soak")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sample", default=DEFAULT_SAMPLE)
    a = p.parse_args(argv)
    write_screenings(a.store, a.n, prefix=a.prefix, seed=a.seed, sample=a.sample)
    return 0


if __name__ == "__main__":
    sys.exit(main())
