"""A fast store writer for the store's concurrency tests and the save-cost benchmark.

The writer (``python -m detak.kiosk.store_soak DIR N``) opens the store in ``DIR`` and saves
``N`` screenings through `Store.save_screening` — the call ``detak screen`` makes — each with a
real recording (a bundled sample; most saves change its ``meta`` so that new WFDB files are
written, every fourth reuses one) and a PDF-sized blob, printing each id once its save has
returned. ``tests/kiosk/test_store.py`` and ``test_store_crash.py`` run sweeps and a second
writer against it; ``benchmarks/store_soak.py`` times its saves. The kill -9 soak itself kills
real ``detak screen`` processes: `detak.kiosk.screen_soak`.

>>> import io, tempfile
>>> out = io.StringIO()
>>> write_screenings(tempfile.mkdtemp() + "/s", 2, prefix="doc", out=out)
2
>>> out.getvalue().split()
['doc-000000', 'doc-000001']
"""

from __future__ import annotations

import argparse
import random
import sys
from datetime import UTC, datetime
from pathlib import Path

from detak.kiosk.store import Store

DEFAULT_SAMPLE = "ptbxl-00286"
PDF_BYTES = 60_000                     # a one-page report with an ECG drawing is ~50-100 kB


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
