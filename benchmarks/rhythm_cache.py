"""The shared rhythm feature cache: rhythm features and intervals of PTB-XL records, one JSON
line per record, so the rule benchmark and the classifier can be re-scored without re-running
the signal code.

Layout (the contract in the issue-17 lanes' shared notes): ``OUT/<view>-<fs>/fold<K>.jsonl``,
one object per line::

    {"ecg_id": int, "fold": int, "age": float|null, "sex": "M"|"F"|null,
     "statements": {code: likelihood}, "features": RhythmFeatures.to_dict(),
     "intervals": {rr_ms, pr_ms, qrs_ms, qt_ms, qtc_bazett_ms, qtc_fridericia_ms, st_ms,
                   rs_ratio, hr_bpm, "reasons", "n_beats", "quality": {"verdict", "reasons"}},
     "error": null | "ExceptionName: message"}

``fold<K>.done`` is written last, when every record of the fold (or of its subsample) has a
line. A run is resumable: ecg_ids already in the JSONL are skipped (a torn last line from a
kill is cut off first), each line is flushed as it is written. An exception on one record is
logged in its ``error`` field and the run goes on.

Per record the beats are found once, by the quality check (`detak.signal.quality`), and the
same beat train gives the intervals (`measure_intervals(rec, beats=...)`, as
`detak.signal.analysis.analyse_recording` does) and the rhythm features
(`rhythm_features(rec, beats=...)`); a record the quality check rejects gets the rhythm
features `rhythm_features(rec)` gives it (all null with the quality reasons) and null
intervals, as ``detak intervals`` writes them.

``age``: PTB-XL's ``age_years``; its anonymised ">= 90" code (age 300) is stored as 90.0.

Views: ``12lead`` (all 12 leads), ``II`` or ``I`` (that one lead alone: the single-lead
devices' view; lead I approximates a Polar H10 chest strap).

``--subsample`` (folds 1-8 only): every record of the fold whose ``scp_codes`` carry a rhythm
statement other than SR (PTB-XL's ``rhythm`` statements: AFIB, AFLT, BIGU, PACE, PSVT, SARRH,
SBRAD, STACH, SVARR, SVTAC, TRIGU) or any of 1AVB/2AVB/3AVB, plus the records among a seeded
random draw of ``SR_SAMPLE`` (1500) records from all "SR-only" records of folds 1-8 (rhythm
statements exactly {SR}, no AV block; seed ``SEED``). The draw is over folds 1-8 together, so
it is the same whichever folds one run covers. Fold 9 is always cached whole; fold 10 never.

    python benchmarks/rhythm_cache.py --view 12lead --folds 9
    python benchmarks/rhythm_cache.py --view 12lead --folds 1-8 --subsample
    python benchmarks/rhythm_cache.py --view II --folds 9 --out /work/rhythm-cache

>>> sorted(parse_folds("1-3,9"))
[1, 2, 3, 9]
>>> subsample_rule({"SR": 0.0, "1AVB": 100.0}), subsample_rule({"SR": 0.0, "NORM": 100.0})
('rhythm', 'sr_only')
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_OUT = Path("/work/rhythm-cache")
VIEWS = ("12lead", "II", "I")
SR_SAMPLE = 1500
SEED = 20261207
RHYTHM_STATEMENTS = frozenset({"AFIB", "AFLT", "BIGU", "PACE", "PSVT", "SARRH", "SBRAD", "SR",
                               "STACH", "SVARR", "SVTAC", "TRIGU"})
AV_BLOCKS = frozenset({"1AVB", "2AVB", "3AVB"})
INTERVAL_KEYS = ("rr_ms", "pr_ms", "qrs_ms", "qt_ms", "qtc_bazett_ms", "qtc_fridericia_ms",
                 "st_ms", "rs_ratio", "hr_bpm")


def parse_folds(text: str) -> list[int]:
    """``"1-8"``, ``"9"``, ``"1,2,9"`` -> sorted folds; fold 10 (the test fold) is refused."""
    out: set[int] = set()
    for part in text.split(","):
        a, _, b = part.strip().partition("-")
        out.update(range(int(a), int(b or a) + 1))
    if 10 in out or not out <= set(range(1, 10)):
        raise ValueError(f"folds must be within 1-9 (fold 10 is the test fold): {text}")
    return sorted(out)


def subsample_rule(codes: Mapping[str, float]) -> str | None:
    """``"rhythm"`` (a rhythm statement other than SR, or an AV block), ``"sr_only"`` (rhythm
    statements exactly {SR}) or None (no rhythm statement at all)."""
    keys = set(codes)
    if (keys & RHYTHM_STATEMENTS) - {"SR"} or keys & AV_BLOCKS:
        return "rhythm"
    return "sr_only" if "SR" in keys else None


def select_ids(meta: Any, fold: int, subsample: bool) -> list[int]:
    """ecg_ids of ``fold`` to cache: all of them, or the subsample (module docstring)."""
    in_fold = meta.index[meta["strat_fold"] == fold]
    if not subsample:
        return [int(i) for i in in_fold]
    if fold == 9:
        raise ValueError("fold 9 is cached whole (it is the selection/report fold)")
    train = meta[meta["strat_fold"].between(1, 8)]
    rule = train["scp_codes"].map(subsample_rule)
    sr_pool = np.sort(train.index[rule == "sr_only"].to_numpy())
    drawn = set(np.random.default_rng(SEED).permutation(sr_pool)[:SR_SAMPLE].tolist())
    keep = set(train.index[rule == "rhythm"].tolist()) | drawn
    return [int(i) for i in in_fold if int(i) in keep]


def _age(row: Mapping[str, Any]) -> float | None:
    age = row.get("age")
    if age is not None and np.isfinite(age) and float(age) >= 300:
        return 90.0
    years = row.get("age_years")
    return float(years) if years is not None and np.isfinite(years) else None


def record_features(rec: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(``RhythmFeatures.to_dict()``, intervals dict) of one `Recording`, from one beat train.

    >>> from detak.data.samples import load_sample
    >>> feats, iv = record_features(load_sample("ludb-1"))
    >>> feats["values"]["pvc_count"], iv["quality"]["verdict"] in ("ok", "warn"), iv["n_beats"] > 5
    (0, True, True)
    """
    from detak.signal.intervals import measure_intervals
    from detak.signal.quality import assess_quality
    from detak.signal.rhythm import rhythm_features

    q = assess_quality(rec)
    quality = {"verdict": q.to_dict().get("verdict"), "reasons": list(q.reasons)}
    if q.rejected:        # rhythm_features re-checks and nulls every feature with the reasons
        why = "; ".join(q.reasons) or "rejected by the quality check"
        iv = {**dict.fromkeys(INTERVAL_KEYS),
              "reasons": dict.fromkeys(INTERVAL_KEYS,
                                       f"not measured: recording rejected by quality check "
                                       f"({why})"), "n_beats": None}
        return rhythm_features(rec).to_dict(), {**iv, "quality": quality}
    ivd = measure_intervals(rec, beats=q.beats).to_dict()
    iv = {**{k: ivd[k] for k in INTERVAL_KEYS}, "reasons": ivd["reasons"],
          "n_beats": ivd["n_beats"], "quality": quality}
    return rhythm_features(rec, beats=q.beats).to_dict(), iv


def view_of(rec: Any, view: str) -> Any:
    """The recording as ``view`` sees it: all leads, or one lead alone."""
    if view == "12lead":
        return rec
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, not {view!r}")
    return rec.select([view])


def cache_line(db: Any, meta_row: Mapping[str, Any], ecg_id: int, view: str,
               fs: int) -> dict[str, Any]:
    """The JSON object of one record (``error`` set instead of raising)."""
    line: dict[str, Any] = {"ecg_id": int(ecg_id), "fold": int(meta_row["strat_fold"]),
                            "age": _age(meta_row),
                            "sex": meta_row.get("sex") if meta_row.get("sex") in ("M", "F")
                            else None,
                            "statements": {str(k): float(v)
                                           for k, v in dict(meta_row["scp_codes"]).items()},
                            "features": None, "intervals": None, "error": None}
    try:
        rec = view_of(db.record(int(ecg_id), fs=fs), view)
        line["features"], line["intervals"] = record_features(rec)
    except Exception as err:  # noqa: BLE001 - one bad record must not stop the cache
        line["error"] = f"{type(err).__name__}: {err}"[:500]
    return line


def done_ids(path: Path) -> set[int]:
    """ecg_ids already in ``path``; a torn (unparsable) last line is cut off first."""
    if not path.exists():
        return set()
    ids: set[int] = set()
    good = 0
    with path.open("rb") as fh:
        for raw in fh:
            try:
                ids.add(int(json.loads(raw)["ecg_id"]))
            except (ValueError, KeyError, TypeError):
                break
            if not raw.endswith(b"\n"):
                ids.discard(int(json.loads(raw)["ecg_id"]))
                break
            good += len(raw)
    if good != path.stat().st_size:
        with path.open("r+b") as fh:
            fh.truncate(good)
    return ids


def _one(job: tuple[int, str, int, str | None]) -> dict[str, Any]:
    ecg_id, view, fs, root = job
    warnings.simplefilter("ignore")
    from detak.data.ptbxl import open_ptbxl

    db = open_ptbxl(root) if root else open_ptbxl()
    return cache_line(db, db.metadata.loc[ecg_id].to_dict(), ecg_id, view, fs)


def run_fold(out_dir: Path, fold: int, view: str, fs: int, subsample: bool, jobs: int = 1,
             limit: int | None = None, log: Any = sys.stderr) -> Path:
    """Fill ``out_dir/fold<fold>.jsonl`` (resuming), then write ``fold<fold>.done``."""
    from detak.data.ptbxl import open_ptbxl

    warnings.simplefilter("ignore")
    db = open_ptbxl()
    ids = select_ids(db.metadata, fold, subsample and fold != 9)
    if limit:
        ids = ids[:limit]
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"fold{fold}.jsonl"
    done = out_dir / f"fold{fold}.done"
    have = done_ids(path)
    todo = [i for i in ids if i not in have]
    print(f"{out_dir.name} fold {fold}: {len(ids)} records, {len(have)} cached, "
          f"{len(todo)} to do", file=log, flush=True)
    t0 = time.time()
    n_err = 0
    jobs_ = [(i, view, fs, None) for i in todo]
    if jobs > 1:
        from multiprocessing import get_context

        pool = get_context("spawn").Pool(jobs)
        results: Iterable[dict[str, Any]] = pool.imap(_one, jobs_, chunksize=4)
    else:
        pool = None
        meta = db.metadata
        results = (cache_line(db, meta.loc[i].to_dict(), i, view, fs) for i in todo)
    with path.open("a", encoding="utf-8") as fh:
        for k, line in enumerate(results, 1):
            n_err += line["error"] is not None
            fh.write(json.dumps(line, separators=(",", ":"), allow_nan=False) + "\n")
            fh.flush()
            if k % 200 == 0:
                rate = (time.time() - t0) / k
                print(f"  {k}/{len(todo)} ({rate:.2f} s/record, {n_err} errors)", file=log,
                      flush=True)
    if pool is not None:
        pool.close()
        pool.join()
    if limit is None and done_ids(path) >= set(ids):
        done.write_text(json.dumps({"records": len(ids), "subsample": subsample and fold != 9,
                                    "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                              time.gmtime())}) + "\n")
    print(f"{out_dir.name} fold {fold}: {len(todo)} computed in {time.time() - t0:.0f} s, "
          f"{n_err} errors", file=log, flush=True)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default {DEFAULT_OUT}")
    ap.add_argument("--view", choices=VIEWS, default="12lead")
    ap.add_argument("--fs", type=int, choices=(100, 500), default=100)
    ap.add_argument("--folds", default="9", help="e.g. 9, 1-8, 1,2,3 (fold 10 refused)")
    ap.add_argument("--subsample", action="store_true",
                    help="folds 1-8: rhythm/AV-block records + a seeded SR-only draw")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--limit", type=int, help="first N records only (a smoke test; no .done)")
    args = ap.parse_args(argv)
    try:
        folds = parse_folds(args.folds)
    except ValueError as err:
        ap.error(str(err))
    out_dir = args.out / f"{args.view}-{args.fs}"
    status = 0
    for fold in folds:
        try:
            run_fold(out_dir, fold, args.view, args.fs, args.subsample, args.jobs, args.limit)
        except Exception:  # noqa: BLE001 - the next fold still runs
            traceback.print_exc()
            status = 1
    return status


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    raise SystemExit(main())
