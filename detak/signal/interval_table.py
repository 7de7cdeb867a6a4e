"""Intervals of every PTB-XL record with signals, measured once and cached as one table.

The S3 reproduction and the interval models train on this table: one row per record with the
`detak intervals` keys, the quality verdict, age, sex, fold and SCP codes. Measuring ~19,600
records takes a while on two cores, so the table is cached in ``cache_dir()/intervals`` under a
key made of the PTB-XL copy (its record list) and detak's measuring code (a hash of the
``detak/signal`` modules that decide the values): change either and it is measured again.

    .venv/bin/python -m detak.signal.interval_table          # build or load, print a summary

>>> t = ptbxl_interval_table(folds=[9], limit=3, cache=False, jobs=1)
>>> list(t.index.names), {"hr_bpm", "quality", "age", "strat_fold"} <= set(t.columns)
(['ecg_id'], True)
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from detak.data.paths import cache_dir, save_pickle_atomic
from detak.signal.analysis import INTERVAL_KEYS

_SIGNAL_DIR = Path(__file__).parent
# The modules whose code decides the measured values (a change re-measures the table).
_MEASURING = ("analysis.py", "beats.py", "delineation.py", "filters.py", "intervals.py",
              "intervals_cli.py", "quality.py", "interval_table.py")


def _code_hash() -> str:
    h = hashlib.sha256()
    for p in sorted(_SIGNAL_DIR / name for name in _MEASURING):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def _data_hash(ptb, folds: Sequence[int]) -> str:  # noqa: ANN001 - PtbXl
    h = hashlib.sha256(str(ptb.root.resolve()).encode())
    for k in folds:
        h.update(f"{k}:".encode() + ",".join(map(str, ptb.fold_ids(k))).encode())
    return h.hexdigest()[:16]


def _row(result: dict) -> dict:
    row = {k: result.get(k) for k in INTERVAL_KEYS}
    row["quality"] = (result.get("quality") or {}).get("verdict", "reject")
    row["n_beats"] = result.get("n_beats")
    row["error"] = result.get("error")
    return row


def ptbxl_interval_table(folds: Sequence[int] | None = None, *, jobs: int = 0,
                         cache: bool = True, refresh: bool = False, limit: int | None = None,
                         progress: bool | None = None) -> pd.DataFrame:
    """One row per PTB-XL record (index ``ecg_id``) of ``folds`` (default: all folds whose
    signals this copy has): the interval keys (NaN where null), ``quality``, ``n_beats``,
    ``error``, and from the metadata ``age``, ``age_years``, ``sex``, ``strat_fold``,
    ``scp_codes``, ``superclasses``."""
    from detak.data.sources import SourceRecord, _ptbxl
    from detak.signal.intervals_cli import measure_many

    ptb = _ptbxl()
    folds = list(folds) if folds is not None else ptb.folds_with_signals()
    key = f"{_data_hash(ptb, folds)}-{_code_hash()}" + (f"-n{limit}" if limit else "")
    path = cache_dir() / "intervals" / f"ptbxl_intervals_{key}.pkl"
    if cache and not refresh and path.is_file():
        return pd.read_pickle(path)
    ids = [int(i) for k in folds for i in ptb.fold_ids(k)[:limit]]
    items = [SourceRecord(f"ptbxl://{i}", f"ptbxl:{i}", "ptbxl", str(i)) for i in ids]
    if progress is None:
        progress = sys.stderr.isatty() or bool(os.environ.get("DETAK_PROGRESS"))
    results = measure_many(items, jobs=jobs)
    if progress:
        from tqdm import tqdm

        results = tqdm(results, total=len(items), unit="rec", desc="PTB-XL intervals",
                       file=sys.stderr)
    rows = [_row(r) for r in results]
    table = pd.DataFrame(rows, index=pd.Index(ids, name="ecg_id"))
    for k in INTERVAL_KEYS:
        table[k] = pd.to_numeric(table[k], errors="coerce")
    meta = ptb.metadata.loc[ids, ["age", "age_years", "sex", "strat_fold", "scp_codes",
                                  "superclasses"]]
    table = table.join(meta)
    if cache:
        save_pickle_atomic(path, table)
    return table


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--folds", type=int, nargs="*", default=None)
    ap.add_argument("--jobs", type=int, default=0)
    ap.add_argument("--refresh", action="store_true", help="measure again even if cached")
    args = ap.parse_args(argv)
    t = ptbxl_interval_table(args.folds, jobs=args.jobs, refresh=args.refresh, progress=True)
    summary = {"records": len(t), "quality": t["quality"].value_counts().to_dict(),
               "errors": int(t["error"].notna().sum()),
               "missing": {k: int(t[k].isna().sum()) for k in INTERVAL_KEYS}}
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
