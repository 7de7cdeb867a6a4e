"""``detak screen SOURCE... --store DIR [--resident ID] [--lang id|en] [--json] [--facility NAME]
[--nurse NAME]``.

Each SOURCE (as in ``detak intervals``, plus device URLs, which record 10 s first:
`detak.kiosk.acquire`) goes through the one screening pipeline (`detak.kiosk.screening.screen`);
each screening is saved in the store at DIR with its recording and PDF report. Output: with
``--json`` one JSON object per screening (JSON Lines for several; `output_view`), else one
line per screening (id, source, urgency). Exit status as every command (`detak.errors`): 0 when
every source was screened, 1 when one was rejected by the quality check (still saved: the
nurse sees why and records again) or could not be read (named on stderr, not saved), 2 for a
usage error (a model or language that does not exist).

The store is `detak.kiosk.store.Store` (SQLite WAL, content-addressed recording and report
files written before the row that points at them, an outbox entry per screening).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from detak.data.recording import Recording

CAM_KEYS = ("mi", "top")


def add_screen_command(sub: Any) -> None:
    """Register ``detak screen`` on the sub-parsers ``sub`` of the ``detak`` parser."""
    from detak.errors import EXIT_RULE_SHORT
    from detak.kiosk.i18n import DEFAULT_LANGUAGE, LANGUAGES

    p = sub.add_parser(
        "screen",
        help="screen residents' ECGs end to end (quality, intervals, rules, NB, MI, urgency) "
        "and save each screening in the kiosk store",
        description="Screen each SOURCE (as in `detak intervals`; a device URL such as "
        "emu://ptbxl/1 or serial:///dev/ttyUSB0 records 10 s first) with the kiosk's pipeline "
        "and save it in the store at DIR. --json prints one JSON object per screening (JSON "
        "Lines for several): id, source, quality{verdict,reasons}, intervals, rhythm{s3_label,"
        "clinical_label,reasons}, nb{label,probability}, mi{probability,model,bundle} or null "
        "with mi_reason, urgency{level,reasons}, report_pdf. A rejected recording is saved "
        "with its reasons and no measurements. " + EXIT_RULE_SHORT,
    )
    p.add_argument("sources", nargs="+", metavar="SOURCE")
    p.add_argument("--store", required=True, metavar="DIR",
                   help="the kiosk store folder (created 0700 if absent)")
    p.add_argument("--resident", default=None, metavar="ID",
                   help="resident number the screenings belong to")
    p.add_argument("--lang", choices=list(LANGUAGES), default=DEFAULT_LANGUAGE,
                   help="language of labels, reasons and the report (default id)")
    p.add_argument("--facility", default=None, metavar="NAME",
                   help="the facility's name, stored with each screening and shown in the "
                   "report's header")
    p.add_argument("--nurse", default=None, metavar="NAME",
                   help="the nurse's name, stored with each screening and shown in the "
                   "report's header")
    p.add_argument("--model", default="edge", help=argparse.SUPPRESS)
    p.add_argument("--json", action="store_true", help="print JSON (one object per screening)")
    p.set_defaults(func=_cmd_screen)


def _cmd_screen(args: argparse.Namespace) -> int:
    return run_screen_command(args.sources, args.store, resident=args.resident, lang=args.lang,
                              json_out=args.json, model=args.model, facility=args.facility,
                              nurse=args.nurse)


# ------------------------------------------------------------------------------- store


def open_store(path: str | Path, *, create: bool = True) -> Any:
    """The kiosk store at ``path`` (`detak.kiosk.store.Store.open`: created 0700, migrated,
    swept); ``create=False`` opens only a store that exists (`StoreLocationError`)."""
    from detak.kiosk.store import Store

    return Store.open(path, create=create)


def render_report(screening: dict[str, Any], recording: Recording,
                  resident: dict[str, Any] | None = None) -> bytes:
    """The PDF report of a screening (`detak.kiosk.report_pdf.render_report`) in the
    screening's language; ``resident``: the store's row (name, number, birth date, sex)."""
    from detak.kiosk.report_pdf import render_report as render_pdf

    return render_pdf(screening, recording, **_report_args(screening, resident))


def render_report_png(screening: dict[str, Any], recording: Recording,
                      resident: dict[str, Any] | None = None, dpi: float = 100.0) -> bytes:
    """The same report page as `render_report` (same figure, same arguments) as PNG bytes:
    the preview the kiosk app shows."""
    from detak.kiosk.report_pdf import render_report_png as render_png

    return render_png(screening, recording, dpi=dpi, **_report_args(screening, resident))


def _report_args(screening: dict[str, Any], resident: dict[str, Any] | None) -> dict[str, Any]:
    rid = screening.get("resident_id")
    if resident is None and rid is not None:
        resident = {"resident_number": str(rid)}
    return {"lang": screening.get("lang") or "id", "resident": resident}


def report_pdf_path(store: Any, screening_id: str) -> str | None:
    """Absolute path of the stored PDF report, if the store keeps one."""
    fn = getattr(store, "report_path", None)
    path = fn(screening_id) if fn is not None else None
    return str(Path(path).resolve()) if path else None


# ------------------------------------------------------------------------------ output


def output_view(screening: dict[str, Any], report_pdf: str | None) -> dict[str, Any]:
    """What ``--json`` prints for one screening: the record without the bulky arrays (the CAM
    maps and fiducials stay in the store) plus ``report_pdf``.

    >>> v = output_view({"id": "a", "mi": {"probability": 0.2, "cam": {"mi": [[0.1]]}},
    ...                  "fiducials": {"beats_s": [0.5]}}, None)
    >>> v["mi"]["cam"], "fiducials" in v, v["report_pdf"]
    (True, False, None)
    """
    out = {k: v for k, v in screening.items() if k != "fiducials"}
    if out.get("mi"):
        out["mi"] = {**out["mi"], "cam": bool(out["mi"].get("cam"))}
    out["report_pdf"] = report_pdf
    return out


def _summary_line(view: dict[str, Any]) -> str:
    """One line per screening: id, source, quality verdict, urgency, and the codes of the
    rhythm rules' findings ("rhythm AFIB, PVC"; none for a rejected recording)."""
    from detak.kiosk.rhythm_read import rhythm_findings

    urgency = view.get("urgency") or {}
    line = (f"{view['id']}  {view['source']}  {view['quality']['verdict']}  "
            f"{urgency.get('level_text') or urgency.get('level')}")
    codes = [str(f["code"]) for f in rhythm_findings(view.get("rhythm"), "rules")]
    return line + (f"  rhythm {', '.join(codes)}" if codes else "")


def run_screen_command(sources: Sequence[str], store_dir: str | Path, *,
                       resident: str | None = None, lang: str = "id", json_out: bool = False,
                       model: str = "edge", out: TextIO | None = None,
                       err: TextIO | None = None, facility: str | None = None,
                       nurse: str | None = None) -> int:
    """Screen, save and print each source; returns the exit status (0, 1; usage errors
    raise). ``facility``, ``nurse``: names stored with each screening for the report header.

    >>> import io, json, tempfile
    >>> buf = io.StringIO()
    >>> run_screen_command(["sample://ptbxl-00286"], tempfile.mkdtemp(), lang="en",
    ...                    json_out=True, out=buf)
    0
    >>> o = json.loads(buf.getvalue())
    >>> o["urgency"]["level"], o["mi"]["model"], o["rhythm"]["clinical_label"]
    ('routine review', 'edge', 'abnormal')
    """
    from detak.errors import EXIT_USAGE, error_line, exit_code, report_rejected
    from detak.kiosk.acquire import acquire
    from detak.kiosk.i18n import check_language
    from detak.kiosk.quality_text import quality_texts
    from detak.kiosk.screening import load_screening_model, screen
    from detak.signal.intervals_cli import _error_text

    out, err = out or sys.stdout, err or sys.stderr
    check_language(lang)
    load_screening_model(model)  # a model that cannot be loaded is a usage error (exit 2)
    status = 0
    with open_store(store_dir) as store, tempfile.TemporaryDirectory(
            prefix="detak-screen-") as work:
        resident_key = _resident_key(store, resident)
        resident_row = store.get_resident(resident_key) if resident_key is not None else None
        for source in sources:
            try:
                items = list(acquire(source, work))
            except (OSError, ValueError) as e:
                status = 1
                print(error_line("screen", _error_text(e), source), file=err)
                _emit(out, {"id": None, "source": source, "error": _error_text(e)}, json_out)
                continue
            for item in items:
                try:
                    rec = item.load()
                except Exception as e:  # noqa: BLE001 - a failed source; the others go on
                    status = 1
                    print(error_line("screen", _error_text(e), item.record), file=err)
                    _emit(out, {"id": None, "source": source, "record": item.record,
                                "error": _error_text(e)}, json_out)
                    continue
                try:
                    s = screen(rec, lang=lang, model=model, resident_id=resident,
                               device=item.device, source=source, facility=facility,
                               nurse=nurse)
                except Exception as e:  # noqa: BLE001 - one source failed; the others go on
                    if exit_code(e) == EXIT_USAGE:
                        raise
                    status = 1
                    why = f"screening failed: {_error_text(e)}"
                    print(error_line("screen", why, item.record), file=err)
                    _emit(out, {"id": None, "source": source, "record": item.record,
                                "error": why}, json_out)
                    continue
                data = s.to_dict()
                sid = store.save_screening(data, rec,
                                           render_report(data, rec, resident_row),
                                           resident_id=resident_key)
                view = output_view(data, report_pdf_path(store, sid))
                if s.rejected:
                    # stderr is a log line: technical and in English whatever --lang is
                    status = report_rejected("screen", item.record,
                                             quality_texts(s.quality, "en")[1]
                                             or s.quality["reasons"], file=err)
                _emit(out, view, json_out)
    return status


def _resident_key(store: Any, number: str | None) -> int | None:
    """The store's id of the resident with resident number ``number`` (None without one); an
    unknown number is a usage error (exit 2) that says how to register the resident."""
    if number is None:
        return None
    from detak.errors import UsageError

    row = store.resident_by_number(number)
    if row is None:
        raise UsageError(f"no resident with number {number!r} in the store at {store.root}: "
                         "register the resident first (the kiosk app, or `detak store "
                         "add-resident --store DIR --number N --name NAME`)")
    return int(row["id"])


def _emit(out: TextIO, view: dict[str, Any], json_out: bool) -> None:
    if json_out:
        out.write(json.dumps(view, ensure_ascii=False, allow_nan=False) + "\n")
    elif view.get("error"):
        pass  # named on stderr already
    else:
        out.write(_summary_line(view) + "\n")
    out.flush()
