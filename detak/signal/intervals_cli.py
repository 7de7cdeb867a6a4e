"""``detak intervals``: measure many sources with one start-up, in parallel over cores.

One source prints one JSON object; several print JSON Lines in the order given, each with
``"source"`` (the argument as given) and ``"record"``. A source that cannot be read prints an
object with ``"error"``, a recording the quality check rejects null values with the reasons;
each is named in one stderr line and the run goes on; the exit status is then 1
(`detak.errors`).
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TextIO

from detak.data.sources import SourceError, SourceRecord, expand_sources


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    if hasattr(obj, "item"):  # numpy scalars
        return _json_safe(obj.item())
    return obj


def _error_text(err: BaseException) -> str:
    """A named error's message; an unexpected one's also with its type."""
    from detak.errors import is_named, message

    return message(err) if is_named(err) else f"{type(err).__name__}: {message(err)}"


def expand_each(sources: Sequence[str]) -> list[SourceRecord]:
    """`expand_sources` one argument at a time: a source that names nothing becomes an item of
    kind ``"error"`` whose ``key`` is the message, so the other sources still run.

    >>> [(it.kind, it.record) for it in expand_each(["ludb://1", "nosuch://2"])]
    [('ludb', 'ludb:1'), ('error', 'nosuch://2')]
    """
    items: list[SourceRecord] = []
    for s in sources:
        try:
            items.extend(expand_sources([s]))
        except (SourceError, OSError, ValueError) as err:
            items.append(SourceRecord(s, s, "error", _error_text(err)))
    return items


def measure_source_record(item: SourceRecord, notch_hz: float | None = None) -> dict[str, Any]:
    """Load and analyse one record; errors become an ``"error"`` entry, never an exception."""
    from detak.signal.analysis import analyse_recording

    head = {"source": item.source, "record": item.record}
    try:
        rec = item.load()
    except Exception as err:  # noqa: BLE001 - reported per source, the run goes on
        return {**head, "error": _error_text(err)}
    try:
        result = analyse_recording(rec, notch_hz=notch_hz)
    except Exception as err:  # noqa: BLE001
        return {**head, "error": f"measurement failed: {_error_text(err)}"}
    result.pop("record", None)
    return _json_safe({**head, **result})


def _worker_init() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def _measure_star(args: tuple[SourceRecord, float | None]) -> dict[str, Any]:
    return measure_source_record(*args)


def measure_many(items: Sequence[SourceRecord], jobs: int = 0,
                 notch_hz: float | None = None) -> Iterator[dict[str, Any]]:
    """Results in input order; uses a process pool when there is more than a few records."""
    jobs = jobs or os.cpu_count() or 1
    if jobs == 1 or len(items) <= 2:
        for item in items:
            yield measure_source_record(item, notch_hz)
        return
    import detak.signal.analysis  # noqa: F401  - import once, inherited by forked workers
    import detak.signal.intervals  # noqa: F401
    import detak.signal.quality  # noqa: F401

    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
    chunk = max(1, min(16, len(items) // (4 * jobs)))
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_worker_init) as ex:
        yield from ex.map(_measure_star, [(it, notch_hz) for it in items], chunksize=chunk)


def run_intervals_command(sources: Sequence[str], jobs: int = 0, notch_hz: float | None = None,
                          out: TextIO | None = None) -> int:
    """Print interval JSON for ``sources``; returns the exit status: 0 when every source was
    measured, 1 when one could not be read or its recording was rejected by the quality check
    (its values are then null; each such source is named on stderr)."""
    from detak.errors import error_line, report_rejected

    out = out or sys.stdout
    items = expand_each(sources)
    status = 0
    single = len(sources) == 1 and len(items) == 1
    runnable = [it for it in items if it.kind != "error"]
    results = iter(measure_many(runnable, jobs=jobs, notch_hz=notch_hz))
    progress = None
    if len(runnable) > 20 and (sys.stderr.isatty() or os.environ.get("DETAK_PROGRESS")):
        from tqdm import tqdm

        progress = tqdm(total=len(runnable), unit="rec", desc="intervals", file=sys.stderr)
    for item in items:
        if item.kind == "error":
            res: dict[str, Any] = {"source": item.source, "record": item.record,
                                   "error": item.key}
        else:
            res = next(results)
            if progress is not None:
                progress.update()
        if "error" in res:
            status = 1
            print(error_line("intervals", res["error"], res["record"]), file=sys.stderr)
        elif (res.get("quality") or {}).get("verdict") == "reject":
            status = report_rejected("intervals", res["record"], res["quality"]["reasons"])
        out.write(json.dumps(res, indent=2 if single else None, ensure_ascii=False) + "\n")
        out.flush()
    if progress is not None:
        progress.close()
    return status
