"""``detak report ID --store DIR --lang id|en --out FILE.pdf``: re-render a stored screening's
PDF report (`detak.kiosk.report_pdf.render_report`) from the screening record and recording the
kiosk store keeps.

Errors are one line each (`detak.errors`): an unknown screening ID or a store folder that does
not exist (or holds no store) is a failed source, exit status 1; an unknown option or language
is a usage error, exit 2. The store is never created or changed by this command.

>>> import tempfile, pathlib
>>> store = tempfile.mkdtemp()
>>> from detak.kiosk.screen_cli import run_screen_command
>>> import io, json
>>> buf = io.StringIO()
>>> run_screen_command(["sample://ptbxl-00286"], store, lang="en", json_out=True, out=buf)
0
>>> sid = json.loads(buf.getvalue())["id"]
>>> out = pathlib.Path(store) / "copy.pdf"
>>> run_report_command(sid, store, lang="id", out=out) == str(out.resolve())
True
>>> out.read_bytes()[:5]
b'%PDF-'
>>> run_report_command("nope", store, out=out)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
detak.kiosk.report_cli.UnknownScreeningError: no screening 'nope' in the store at ...
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from detak.errors import DetakError


class StoreNotFoundError(DetakError):
    """The ``--store`` folder does not exist or holds no kiosk store (exit status 1)."""


class UnknownScreeningError(DetakError):
    """No screening with that ID in the store (exit status 1)."""


def add_report_command(sub: Any) -> None:
    """Register ``detak report`` on the sub-parsers ``sub`` of the ``detak`` parser."""
    from detak.errors import EXIT_RULE_SHORT
    from detak.kiosk.i18n import LANGUAGES

    p = sub.add_parser(
        "report",
        help="re-render the PDF report of a screening saved in the kiosk store",
        description="Write the one-page A4 PDF report of the stored screening ID (as `detak "
        "screen` saved it) to FILE.pdf: ECG at 25 mm/s and 10 mm/mV on a true-scale grid, "
        "intervals with normal ranges, rhythm-risk labels, NB, MI probability with its "
        "Grad-CAM band, urgency, versions, and a signature line for the reviewing doctor. "
        "Reasons stay in the language the screening was made in; --lang sets the page's own "
        "words (default: the screening's language). An unknown ID or store is exit status 1. "
        + EXIT_RULE_SHORT,
    )
    p.add_argument("id", metavar="ID", help="the screening id (as `detak screen` printed it)")
    p.add_argument("--store", required=True, metavar="DIR", help="the kiosk store folder")
    p.add_argument("--lang", choices=list(LANGUAGES), default=None,
                   help="language of the report (default: the screening's)")
    p.add_argument("--out", required=True, metavar="FILE.pdf", help="where to write the PDF")
    p.add_argument("--facility", default=None, metavar="NAME",
                   help="facility name for the header (default: the one stored with the "
                   "screening by `detak screen --facility` or the kiosk)")
    p.add_argument("--nurse", default=None, metavar="NAME",
                   help="nurse name for the header (default: the one stored with the "
                   "screening)")
    p.set_defaults(func=_cmd_report)


def _cmd_report(args: argparse.Namespace) -> int:
    path = run_report_command(args.id, args.store, lang=args.lang, out=args.out,
                              facility=args.facility, nurse=args.nurse)
    print(path)
    return 0


def open_existing_store(store_dir: str | Path) -> Any:
    """The store at ``store_dir`` (`detak.kiosk.screen_cli.open_store`), never created here:
    `StoreNotFoundError` when the folder is missing or holds no store (the store's own
    message)."""
    from detak.kiosk.screen_cli import open_store

    root = Path(store_dir).expanduser()
    if not root.is_dir():
        raise StoreNotFoundError(f"no store at {root.absolute()} (no such folder)")
    try:
        return open_store(root, create=False)
    except (OSError, ValueError) as err:
        raise StoreNotFoundError(str(err)) from err
    except DetakError as err:
        raise StoreNotFoundError(str(err)) from err
    except Exception as err:  # the store's own errors (StoreLocationError, ...)
        if type(err).__module__.startswith("detak."):
            raise StoreNotFoundError(str(err)) from err
        raise


def resident_for(store: Any, screening: dict[str, Any]) -> dict[str, Any] | None:
    """The resident of ``screening`` for the report header: the resident row the store links
    the screening to, else the row with the screening's resident number (or the store's id),
    else the resident number alone."""
    linked = getattr(store, "resident_of", None)
    if linked is not None and screening.get("id"):
        try:
            row = linked(screening["id"])
        except KeyError:
            row = None
        if row is not None:
            return dict(row)
    rid = screening.get("resident_id")
    if rid is None:
        return None
    try:
        if isinstance(rid, int) and not isinstance(rid, bool):
            return dict(store.get_resident(rid))
        row = store.resident_by_number(str(rid))
        if row is not None:
            return dict(row)
    except (KeyError, AttributeError):  # no such row, or a store without residents
        pass
    return {"resident_number": str(rid)}


def run_report_command(screening_id: str, store_dir: str | Path, *, lang: str | None = None,
                       out: str | Path, facility: str | None = None,
                       nurse: str | None = None) -> str:
    """Render the stored screening ``screening_id`` to ``out``; returns its absolute path."""
    from detak.kiosk.i18n import check_language
    from detak.kiosk.report_pdf import render_report

    if lang is not None:
        check_language(lang)
    store = open_existing_store(store_dir)
    try:
        try:
            screening = store.get_screening(screening_id)
            recording = store.load_recording(screening_id)
        except KeyError as err:  # the store's NotFoundError is a KeyError
            raise UnknownScreeningError(f"no screening {screening_id!r} in the store at "
                                        f"{Path(store_dir).expanduser().resolve()}") from err
        resident = resident_for(store, screening)
        verdicts = store.verdicts_for(screening_id) if hasattr(store, "verdicts_for") else []
    finally:
        getattr(store, "close", lambda: None)()
    pdf = render_report(screening, recording, lang=lang or screening.get("lang") or "id",
                        facility=facility, nurse=nurse, resident=resident,
                        review=verdicts[0] if verdicts else None)
    path = Path(out).expanduser()
    try:
        path.write_bytes(pdf)
    except OSError as err:
        raise OSError(f"cannot write {path}: {err.strerror or err}") from err
    return str(path.resolve())
