"""``detak rhythm SOURCE... [--lead NAME] [--json]``: rhythm findings of ECG recordings.

Per source one JSON object (JSON Lines for several, in the order given)::

    {"source": "ludb://1", "record": "ludb:1",
     "rhythm": {"findings": [{"code", "source", "probability", "urgency", "reasons", ...}],
                "lead": "all"},
     "features": {...}, "units": {...}, "reasons": {...feature -> why it is null...},
     "quality": {"verdict": "ok", "reasons": [...]}}

``--lead NAME`` analyses that one lead only (what a single-lead device sees). A source that
cannot be read, or lacks the lead, prints ``{"source", "record", "error"}``; a recording the
quality check rejects prints null features with the reasons and one "cannot tell" finding.
Each is named in one stderr line and the exit status is then 1 (`detak.errors`).

>>> import io, json
>>> buf = io.StringIO()
>>> run_rhythm_command(["ludb://1"], lead="II", out=buf, classifier=False)
0
>>> obj = json.loads(buf.getvalue())
>>> [f["code"] for f in obj["rhythm"]["findings"]], obj["rhythm"]["lead"]
(['SBRAD'], 'II')
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TextIO

from detak.data.sources import SourceRecord
from detak.signal.intervals_cli import _error_text, _json_safe, expand_each

__all__ = ["rhythm_source_record", "run_rhythm_command"]


def rhythm_source_record(item: SourceRecord, lead: str | None = None,
                         classifier: bool = True) -> dict[str, Any]:
    """Load one record and find its rhythm; errors become an ``"error"`` entry, never an
    exception."""
    from detak.data.recording import MissingLeadError
    from detak.models.rhythm_rules import rhythm_block
    from detak.signal.intervals import measure_intervals
    from detak.signal.quality import assess_quality

    head = {"source": item.source, "record": item.record}
    try:
        rec = item.load()
    except Exception as err:  # noqa: BLE001 - reported per source, the run goes on
        return {**head, "error": _error_text(err)}
    try:
        view = rec.select([lead]) if lead is not None else rec
    except MissingLeadError as err:
        return {**head, "error": str(err)}
    try:
        q = assess_quality(view)
        # intervals on the same beats, as the classifier was trained (rhythm_cache.py)
        iv = None if q.rejected or not classifier else measure_intervals(
            view, beats=q.beats).to_dict()
        block = rhythm_block(view, lang="en", beats=None if q.rejected else q.beats,
                             classifier=classifier, intervals=iv)
    except Exception as err:  # noqa: BLE001
        return {**head, "error": f"rhythm analysis failed: {_error_text(err)}"}
    block["lead"] = view.leads[0] if lead is not None else "all"
    rhythm = {"findings": block["findings"], "lead": block["lead"]}
    if block.get("classifier_error"):
        rhythm["classifier_error"] = block["classifier_error"]
    out = {**head, "rhythm": rhythm,
           "features": block["features"], "units": block["units"], "reasons": block["reasons"],
           "quality": {"verdict": str(q.verdict), "reasons": list(q.reasons)}}
    return _json_safe(out)


def _worker_init() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def _star(args: tuple[SourceRecord, str | None, bool]) -> dict[str, Any]:
    return rhythm_source_record(*args)


def _run_many(items: Sequence[SourceRecord], lead: str | None, jobs: int,
              classifier: bool) -> Iterator[dict[str, Any]]:
    jobs = jobs or os.cpu_count() or 1
    if jobs == 1 or len(items) <= 2:
        for item in items:
            yield rhythm_source_record(item, lead, classifier)
        return
    import detak.models.rhythm_rules  # noqa: F401  - import once, inherited by forked workers
    import detak.signal.quality  # noqa: F401
    import detak.signal.rhythm  # noqa: F401

    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
    chunk = max(1, min(16, len(items) // (4 * jobs)))
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_worker_init) as ex:
        yield from ex.map(_star, [(it, lead, classifier) for it in items], chunksize=chunk)


def run_rhythm_command(sources: Sequence[str], lead: str | None = None, jobs: int = 0,
                       out: TextIO | None = None, classifier: bool = True) -> int:
    """Print the rhythm JSON of ``sources``; returns the exit status: 0 when every source was
    analysed, 1 when one could not be read, lacks ``lead`` or was rejected by the quality
    check (each named on stderr)."""
    from detak.errors import error_line, report_rejected

    out = out or sys.stdout
    items = expand_each(sources)
    single = len(sources) == 1 and len(items) == 1
    runnable = [it for it in items if it.kind != "error"]
    results = iter(_run_many(runnable, lead, jobs, classifier))
    status = 0
    for item in items:
        if item.kind == "error":
            res: dict[str, Any] = {"source": item.source, "record": item.record,
                                   "error": item.key}
        else:
            res = next(results)
        if "error" in res:
            status = 1
            print(error_line("rhythm", res["error"], res["record"]), file=sys.stderr)
        elif res["quality"]["verdict"] == "reject":
            status = report_rejected("rhythm", res["record"], res["quality"]["reasons"])
        out.write(json.dumps(res, indent=2 if single else None, ensure_ascii=False) + "\n")
        out.flush()
    return status
