"""The ``sync`` sub-command of ``detak``: ``detak sync enroll URL CODE --store DIR [--insecure]``
registers the kiosk with a clinic server; ``detak sync --store DIR [--json] [--insecure]``
drains the outbox once and prints ``synced N, pending M, failed K`` as its last line.

>>> import argparse
>>> p = argparse.ArgumentParser(); sub = p.add_subparsers(dest="command")
>>> add_sync_command(sub)
>>> a = p.parse_args(["sync", "enroll", "https://clinic.example", "c0de", "--store", "/s"])
>>> a.sync_command, a.url, a.code, a.store, a.insecure
('enroll', 'https://clinic.example', 'c0de', '/s', False)
>>> a = p.parse_args(["sync", "--store", "/s", "--json"])
>>> a.sync_command, a.store, a.json
(None, '/s', True)
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from detak.errors import EXIT_FAILED, EXIT_OK, UsageError

__all__ = ["add_sync_command", "run_sync", "run_enroll", "protect_enroll_code"]

_ENROLL_OPTIONS = {"--store", "--insecure", "-h", "--help"}

_DESCRIPTION = (
    "Send the kiosk's screenings to the clinic server (docs/sync.md). `detak sync --store DIR` "
    "drains the outbox once: it uploads each pending screening's files (in chunks, resuming an "
    "interrupted upload), sends the screenings in batches of 10, marks each one the "
    "server acknowledged as synced, stores the doctors' verdicts and installs a model bundle "
    "the server offers once it verifies against the key pinned at enrolment. Its last line is "
    "`synced N, pending M, failed K`: N sent in this run, M still waiting (the server could not "
    "be reached, or a file is still missing there), K refused by the server for good "
    "(`conflict`: the same screening id with other content; `invalid`) or damaged on the "
    "kiosk — those are not retried. With --json it prints one JSON object instead: synced, "
    "pending, failed, server_ids (screening id -> the server's id), failures, error. Retries "
    "back off exponentially with jitter (at most 6 tries per request); a server that does not "
    "answer ends the run, and the next run starts over. A busy server that answers "
    "'503 overloaded' is waited for as it asks (stderr says 'server busy, retrying in N s'; "
    "at most 10 minutes in one run), without spending those tries. Plain http:// is refused "
    "except to this machine (127.0.0.1, ::1, localhost) unless --insecure is given. Exit "
    "status: 0 = nothing failed and the server answered, 1 = a screening failed or the "
    "server could not be reached (named on stderr), 2 = usage error (not enrolled, an insecure "
    "URL).")


def add_sync_command(sub: Any) -> None:
    """Register ``detak sync`` (and ``detak sync enroll``) on the sub-parsers ``sub``."""
    p = sub.add_parser("sync", help="send screenings to the clinic server; `sync enroll` "
                       "registers the kiosk", description=_DESCRIPTION)
    p.add_argument("--store", default=None, metavar="DIR", help="the kiosk store folder")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--insecure", action="store_true",
                   help="allow plain http:// to a server that is not this machine")
    p.set_defaults(func=_cmd_sync, sync_command=None)
    ssub = p.add_subparsers(dest="sync_command", metavar="ACTION")
    e = ssub.add_parser(
        "enroll", help="register this kiosk with a clinic server (a one-time code)",
        description="Register the kiosk whose store is DIR with the clinic server at URL, "
        "using a one-time CODE from the admin (`detak server enroll --facility NAME`). It "
        "makes the kiosk's Ed25519 key pair, keeps the private key in DIR/sync-key.pem (mode "
        "0600; it never leaves the kiosk) and pins the server's bundle-signing key: a model "
        "bundle that does not verify against it is never installed. A code is single use. "
        "Enrolling again replaces the earlier enrolment. Plain http:// is refused except to "
        "this machine unless --insecure is given (the choice is kept for the kiosk app's "
        "background sync). Prints the kiosk id. Exit status: 0 = enrolled, 1 = refused or no "
        "answer, 2 = usage error.")
    e.add_argument("url", metavar="URL", help="the server, e.g. https://clinic.example.org")
    e.add_argument("code", metavar="CODE", help="the one-time enrolment code")
    e.add_argument("--store", required=True, metavar="DIR", help="the kiosk store folder")
    e.add_argument("--insecure", action="store_true",
                   help="allow plain http:// to a server that is not this machine")
    e.set_defaults(func=_cmd_enroll)


def protect_enroll_code(argv: list[str]) -> list[str]:
    """``argv`` with a ``sync enroll`` URL or CODE that begins with ``-`` (a one-time code is
    URL-safe base64: one in 64 does) moved behind ``--``, so that argparse takes it for the
    positional it is, not for an unknown option. Other command lines are returned as they are.

    >>> protect_enroll_code(["sync", "enroll", "https://c.org", "-Zx9", "--store", "/s"])
    ['sync', 'enroll', 'https://c.org', '--store', '/s', '--', '-Zx9']
    >>> protect_enroll_code(["sync", "enroll", "https://c.org", "Zx9", "--store", "/s"])
    ['sync', 'enroll', 'https://c.org', 'Zx9', '--store', '/s']
    """
    try:
        at = argv.index("sync")
    except ValueError:
        return argv
    if argv[at + 1:at + 2] != ["enroll"] or "--" in argv:
        return argv
    head, rest = argv[:at + 2], argv[at + 2:]
    kept: list[str] = []
    moved: list[str] = []
    after_store = False
    for tok in rest:
        if after_store:
            kept.append(tok)
            after_store = False
        elif tok == "--store":
            kept.append(tok)
            after_store = True
        elif tok.startswith("-") and tok not in _ENROLL_OPTIONS and \
                not tok.startswith("--store="):
            moved.append(tok)
        else:
            kept.append(tok)
    return [*head, *kept, "--", *moved] if moved else argv


def run_enroll(store_dir: str, url: str, code: str, insecure: bool = False) -> int:
    """Enrol; prints ``enrolled: kiosk ID at URL (facility NAME)``."""
    import sys

    from detak.sync.enroll import enroll

    got = enroll(store_dir, url, code, insecure=insecure)
    facility = (got.get("facility") or {}).get("name")
    if not got["bundle_key_pinned"]:
        print("detak sync enroll: warning: the server has no bundle-signing key yet (its admin "
              "runs `detak server bundle key PEM`); this kiosk installs no model bundle from "
              "it until it is enrolled again", file=sys.stderr, flush=True)
    print(f"enrolled: kiosk {got['kiosk_id']} at {got['server_url']}"
          + (f" (facility {facility})" if facility else ""), flush=True)
    return EXIT_OK


def run_sync(store_dir: str, *, json_out: bool = False, insecure: bool = False) -> int:
    """Drain the outbox of the store at ``store_dir`` once; print the summary; exit status.

    >>> import tempfile
    >>> from detak.kiosk.store import Store
    >>> d = tempfile.mkdtemp() + "/s"; Store.open(d).close()
    >>> run_sync(d)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    detak.sync.errors.NotEnrolledError: this kiosk is not enrolled: ...
    """
    import sys

    from detak.kiosk.store import Store
    from detak.sync.client import SyncClient

    def busy(message: str) -> None:
        print(f"detak sync: {message}", file=sys.stderr, flush=True)

    with Store.open(store_dir, create=False) as store:
        report = SyncClient(store, insecure=insecure, notify=busy).sync()
    if report.busy:
        print(f"detak sync: server busy: {report.pending} screening(s) still pending, the next "
              f"run sends them ({report.error})", file=sys.stderr, flush=True)
    elif report.error:
        print(f"detak sync: error: {report.error}", file=sys.stderr, flush=True)
    for failure in report.failures:
        print(f"detak sync: failed: screening {failure['uuid']}: {failure['code']}"
              + (f": {failure['message']}" if failure["message"] else ""),
              file=sys.stderr, flush=True)
    if json_out:
        print(json.dumps(report.to_dict(), ensure_ascii=False), flush=True)
    else:
        print(report.line, flush=True)
    return EXIT_OK if report.failed == 0 and report.error is None else EXIT_FAILED


def _cmd_sync(args: argparse.Namespace) -> int:
    if not args.store:
        raise UsageError("give the store: detak sync --store DIR (or detak sync enroll URL "
                         "CODE --store DIR)")
    return run_sync(args.store, json_out=args.json, insecure=args.insecure)


def _cmd_enroll(args: argparse.Namespace) -> int:
    return run_enroll(args.store, args.url, args.code, insecure=args.insecure)
