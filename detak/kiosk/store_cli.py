"""The ``store`` sub-command of ``detak``: ``detak store check --store DIR``, ``detak store
outbox --store DIR [--json]`` (what waits to be synced, and why) and ``detak store
add-resident --store DIR --number N --name NAME [--birth-date] [--sex] [--room]``.

>>> import argparse
>>> p = argparse.ArgumentParser(); sub = p.add_subparsers(dest="command")
>>> add_store_commands(sub)
>>> a = p.parse_args(["store", "check", "--store", "/srv/detak"])
>>> a.store_command, a.store, a.no_sweep
('check', '/srv/detak', False)
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from detak.errors import EXIT_FAILED, EXIT_OK, EXIT_RULE_SHORT

__all__ = ["add_store_commands", "run_store_check", "run_store_outbox"]


def add_store_commands(sub: Any) -> None:
    """Add ``store`` (``store check``, ``store outbox``, ``store add-resident``) to argparse
    sub-parsers."""
    p = sub.add_parser(
        "store", help="the kiosk's local store: check it, list its sync outbox",
        description="The kiosk's local store: SQLite (WAL) with residents, nurses, screenings "
        "and the sync outbox, recordings as WFDB files and PDF reports named by their SHA-256.")
    store_sub = p.add_subparsers(dest="store_command", metavar="ACTION", required=True)
    c = store_sub.add_parser(
        "check", help="verify a store; last line `ok: N screenings` (exit 0) or the problems",
        description="Open the store (as the kiosk does: schema migrations, then the sweep that "
        "removes files an interrupted write left), then verify it: SQLite integrity, every "
        "screening's recording and report present with its SHA-256, no half-written or "
        "unreferenced file, the outbox consistent, folders 0700 and files 0600. Prints each "
        "problem on its own line and exits 1, or prints `ok: N screenings` as its last line "
        "and exits 0. " + EXIT_RULE_SHORT)
    c.add_argument("--store", required=True, metavar="DIR", help="the store folder")
    c.add_argument("--no-sweep", action="store_true",
                   help="do not remove what interrupted writes left; report it instead")
    c.set_defaults(func=_cmd_store_check)
    o = store_sub.add_parser(
        "outbox", help="list the screenings waiting to be synced, with attempts and last error",
        description="For an administrator: list the store's pending outbox entries (the "
        "screenings not yet accepted by the clinic server), oldest first: screening id, when "
        "it was queued, send attempts, the last attempt's time and its error. No resident "
        "names or results are shown. The store is only read (no sweep). The last line is `N "
        "pending`; --json prints one object {store, pending, entries: [...]} instead. "
        + EXIT_RULE_SHORT)
    o.add_argument("--store", required=True, metavar="DIR", help="the store folder")
    o.add_argument("--json", action="store_true", help="print one JSON object")
    o.add_argument("--limit", type=int, default=None, metavar="N",
                   help="list only the N oldest entries (the count stays the total)")
    o.set_defaults(func=_cmd_store_outbox)
    r = store_sub.add_parser(
        "add-resident", help="register a resident (name and resident number); prints the id",
        description="Register a resident in the store, as the kiosk app's registration does, "
        "so that `detak screen --resident NUMBER` can link screenings to them. A resident "
        "number already used is an error. " + EXIT_RULE_SHORT)
    r.add_argument("--store", required=True, metavar="DIR", help="the store folder")
    r.add_argument("--number", required=True, help="the resident number (unique)")
    r.add_argument("--name", required=True, help="the resident's name")
    r.add_argument("--birth-date", default=None, metavar="YYYY-MM-DD")
    r.add_argument("--sex", choices=["F", "M"], default=None)
    r.add_argument("--room", default=None)
    r.set_defaults(func=_cmd_store_add_resident)


def run_store_check(store_dir: str, sweep: bool = True) -> int:
    """Check the store in ``store_dir``; print the problems or ``ok: N screenings``.

    >>> import tempfile
    >>> from detak.kiosk.store import Store
    >>> d = tempfile.mkdtemp() + "/s"; Store.open(d).close()
    >>> run_store_check(d)
    ok: 0 screenings
    0
    """
    from detak.kiosk.store import Store

    with Store.open(store_dir, create=False, sweep=sweep) as store:
        problems = store.check()
        count = store.screening_count()
    if problems:
        for line in problems:
            print(f"problem: {line}", flush=True)
        print(f"failed: {len(problems)} problem(s) in {count} screenings", flush=True)
        return EXIT_FAILED
    print(f"ok: {count} screenings", flush=True)
    return EXIT_OK


#: what `detak store outbox` shows of an entry (never a resident's name or results)
OUTBOX_FIELDS = ("screening_id", "created_at", "attempts", "last_attempt_at", "last_error")


def run_store_outbox(store_dir: str, json_out: bool = False, limit: int | None = None,
                     out: TextIO | None = None) -> int:
    """Print the pending outbox of the store in ``store_dir`` (see ``detak store outbox``).

    >>> import tempfile
    >>> from detak.kiosk.store import Store
    >>> d = tempfile.mkdtemp() + "/s"; Store.open(d).close()
    >>> run_store_outbox(d)
    0 pending
    0
    """
    from detak.kiosk.store import Store

    out = out or sys.stdout
    if limit is not None and limit < 0:
        from detak.errors import UsageError

        raise UsageError("--limit must be 0 or more")
    with Store.open(store_dir, create=False, sweep=False) as store:
        total = store.outbox_count()
        entries = [{k: e.get(k) for k in OUTBOX_FIELDS} for e in store.pending_outbox(limit)]
        root = str(store.root)
    if json_out:
        out.write(json.dumps({"store": root, "pending": total, "entries": entries},
                             ensure_ascii=False) + "\n")
        return EXIT_OK
    if entries:
        out.write(f"{'screening':<34} {'queued (UTC)':<20} {'tries':>5} "
                  f"{'last try (UTC)':<20} last error\n")
    for e in entries:
        error = " ".join(str(e["last_error"] or "—").split())
        out.write(f"{e['screening_id']:<34} {_short_time(e['created_at']):<20} "
                  f"{e['attempts']:>5} {_short_time(e['last_attempt_at']):<20} {error}\n")
    shown = f" ({len(entries)} shown)" if len(entries) < total else ""
    out.write(f"{total} pending{shown}\n")
    out.flush()
    return EXIT_OK


def _short_time(iso: str | None) -> str:
    """``2026-12-07T08:00:00.123456Z`` → ``2026-12-07 08:00:00``; None → ``—``."""
    return str(iso).replace("T", " ")[:19] if iso else "—"


def _cmd_store_outbox(args: argparse.Namespace) -> int:
    return run_store_outbox(args.store, json_out=args.json, limit=args.limit)


def _cmd_store_check(args: argparse.Namespace) -> int:
    return run_store_check(args.store, sweep=not args.no_sweep)


def _cmd_store_add_resident(args: argparse.Namespace) -> int:
    from detak.kiosk.store import Store

    with Store.open(args.store) as store:
        rid = store.add_resident(args.name, args.number, birth_date=args.birth_date,
                                 sex=args.sex, room=args.room)
    print(rid)   # the id only: the resident's name is not echoed (logs may keep stdout)
    return EXIT_OK
