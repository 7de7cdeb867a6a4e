"""The ``detak server`` command: run the clinic server, and its admin sub-commands.

``detak server --data DIR [--port P] [--database-url URL]`` runs the server; with no URL (and no
``$DETAK_DATABASE_URL``) it runs its own PostgreSQL cluster in ``DIR/pgdata``
(`detak.server.cluster`). Every admin sub-command takes the same ``--data`` / ``--database-url``
and works while the server runs.

>>> import argparse
>>> p = argparse.ArgumentParser(); sub = p.add_subparsers(dest="command")
>>> add_server_command(sub)
>>> a = p.parse_args(["server", "enroll", "--facility", "Wisma", "--data", "/srv/d"])
>>> a.server_command, a.facility, a.data
('enroll', 'Wisma', '/srv/d')
>>> p.parse_args(["server", "--data", "/srv/d", "--port", "0"]).port
0
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any

from detak.errors import UsageError

PASSWORD_ENV = "DETAK_PASSWORD"


def _db_args(p: argparse.ArgumentParser, top: bool = False) -> None:
    default = None if top else argparse.SUPPRESS
    p.add_argument("--data", metavar="DIR", default=default,
                   help="the server's data folder (content store; its PostgreSQL cluster when "
                   "no database URL is given)")
    p.add_argument("--database-url", metavar="URL", default=default,
                   help="an external PostgreSQL (postgresql://…); default "
                   "$DETAK_DATABASE_URL, else the cluster managed in DIR")


def add_server_command(sub: Any) -> None:
    """Add ``server`` and its admin sub-commands to argparse sub-parsers."""
    p = sub.add_parser(
        "server", help="the clinic server (sync API, accounts) and its admin commands",
        description="Without an ACTION: run the clinic server (FastAPI + uvicorn) on --host "
        "(default 127.0.0.1; put a TLS reverse proxy in front, docs/server.md) and --port. "
        "With no --database-url / $DETAK_DATABASE_URL it starts and manages its own PostgreSQL "
        "cluster in DIR/pgdata. The ACTIONs administer the same server and work while it "
        "runs; each takes --data DIR / --database-url URL.")
    _db_args(p, top=True)
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default "
                   "127.0.0.1)")
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    p.add_argument("--max-active", type=int, default=None, metavar="N",
                   help="kiosk API requests in progress per worker before the rest wait or are "
                   "answered 503 overloaded with Retry-After (default 4; 0 = no limit; "
                   "docs/server.md, Scaling)")
    p.add_argument("--max-waiting", type=int, default=None, metavar="N",
                   help="kiosk API requests that may wait for a slot per worker (default 16)")
    p.add_argument("--max-wait", type=float, default=None, metavar="S",
                   help="how long one may wait for a slot, seconds (default 0.75)")
    p.add_argument("--root-path", default="", metavar="PREFIX",
                   help="the path prefix a reverse proxy serves the server under and strips "
                   "(e.g. /clinic): kiosks sign the full path")
    p.set_defaults(func=_cmd_serve)
    ss = p.add_subparsers(dest="server_command", metavar="ACTION", required=False)

    c = ss.add_parser("create-user", help="add a staff account (password from stdin or "
                      f"${PASSWORD_ENV}, never the command line)")
    _db_args(c)
    c.add_argument("--role", required=True, choices=["admin", "doctor", "nurse"])
    c.add_argument("--name", required=True)
    c.add_argument("--facility", default=None, help="a nurse's facility (required for a "
                   "nurse); a doctor's first facility")
    c.set_defaults(func=_cmd_create_user)

    f = ss.add_parser("facility", help="facilities: add, list, assign a doctor")
    fs = f.add_subparsers(dest="facility_command", metavar="ACTION", required=True)
    fa = fs.add_parser("add", help="add a facility")
    _db_args(fa)
    fa.add_argument("name", metavar="NAME")
    fa.set_defaults(func=_cmd_facility_add)
    fl = fs.add_parser("list", help="list facilities")
    _db_args(fl)
    fl.set_defaults(func=_cmd_facility_list)
    fg = fs.add_parser("assign", help="let a doctor see a facility's screenings")
    _db_args(fg)
    fg.add_argument("--doctor", required=True)
    fg.add_argument("--facility", required=True)
    fg.set_defaults(func=_cmd_facility_assign)

    e = ss.add_parser("enroll", help="make a one-time kiosk enrolment code (last word of "
                      "the last line); single use, expires")
    _db_args(e)
    e.add_argument("--facility", required=True)
    e.add_argument("--hours", type=float, default=24.0, help="validity (default 24)")
    e.set_defaults(func=_cmd_enroll)

    t = ss.add_parser("create-token", help="make a bearer token for the integration role: it "
                      "reads GET /fhir/... of one facility; printed once (last word of the "
                      "last line), stored hashed")
    _db_args(t)
    t.add_argument("--facility", required=True)
    t.add_argument("--name", default="integration", help="what uses it (e.g. the hospital "
                   "system's name)")
    t.set_defaults(func=_cmd_create_token)
    tl = ss.add_parser("tokens", help="list integration tokens (id, facility, name, created, "
                       "last used, revoked)")
    _db_args(tl)
    tl.set_defaults(func=_cmd_tokens)
    tr = ss.add_parser("revoke-token", help="revoke an integration token")
    _db_args(tr)
    tr.add_argument("token_id", metavar="ID", type=int)
    tr.set_defaults(func=_cmd_revoke_token)

    k = ss.add_parser("kiosk", help="kiosks: list, revoke")
    ks = k.add_subparsers(dest="kiosk_command", metavar="ACTION", required=True)
    kl = ks.add_parser("list", help="list kiosks (id, facility, enrolled, last seen, revoked)")
    _db_args(kl)
    kl.set_defaults(func=_cmd_kiosk_list)
    kr = ks.add_parser("revoke", help="revoke a kiosk: its next request is refused")
    _db_args(kr)
    kr.add_argument("kiosk_id", metavar="ID")
    kr.set_defaults(func=_cmd_kiosk_revoke)

    b = ss.add_parser("bundle", help="model bundles offered to kiosks: key, publish, list")
    bs = b.add_subparsers(dest="bundle_command", metavar="ACTION", required=True)
    bk = bs.add_parser("key", help="set the bundle-signing public key kiosks pin at enrolment")
    _db_args(bk)
    bk.add_argument("pem", metavar="PEM")
    bk.set_defaults(func=_cmd_bundle_key)
    bp = bs.add_parser("publish", help="verify a signed bundle and offer it to kiosks")
    _db_args(bp)
    bp.add_argument("file", metavar="FILE")
    bp.set_defaults(func=_cmd_bundle_publish)

    cf = ss.add_parser("conflicts", help="list screenings sent twice with different content")
    _db_args(cf)
    cf.set_defaults(func=_cmd_conflicts)

    x = ss.add_parser("export", help="write every screening as a FHIR R4 Bundle JSON plus its "
                      "WFDB files (byte-identical to the kiosk's)")
    _db_args(x)
    x.add_argument("--out", required=True, metavar="DIR")
    x.add_argument("--since", default=None, metavar="DATE",
                   help="only screenings received on or after DATE (YYYY-MM-DD or ISO time)")
    x.set_defaults(func=_cmd_export)

    xl = ss.add_parser("export-labels", help="write the doctors' signed verdicts with their WFDB "
                       "records as labelled data for `detak train --finetune ... --extra DIR`")
    _db_args(xl)
    xl.add_argument("--out", required=True, metavar="DIR")
    xl.add_argument("--since", default=None, metavar="DATE",
                    help="only verdicts signed on or after DATE (YYYY-MM-DD or ISO time)")
    xl.set_defaults(func=_cmd_export_labels)

    bk = ss.add_parser("backup", help="dump the database (pg_dump -Fc) while the server runs; "
                       "then copy DIR/blobs (docs/server.md)")
    _db_args(bk)
    bk.add_argument("--out", required=True, metavar="FILE")
    bk.set_defaults(func=_cmd_backup)


def need_server_extra() -> None:
    """A one-line usage error when the ``[server]`` extra is not installed (a kiosk install).

    >>> need_server_extra()  # installed here
    """
    import importlib.util

    missing = [m for m in ("sqlalchemy", "alembic", "psycopg") if importlib.util.find_spec(m)
               is None]
    if missing:
        raise UsageError(f"detak server needs the server extra ({', '.join(missing)} missing): "
                         "pip install \"detak[server]\"")


@contextlib.contextmanager
def _url(args: argparse.Namespace, admin: bool = True) -> Iterator[str]:
    need_server_extra()
    url = getattr(args, "database_url", None) or os.environ.get("DETAK_DATABASE_URL")
    if url:
        yield url
        return
    data = getattr(args, "data", None)
    if not data:
        raise UsageError("give --data DIR (or --database-url URL)")
    from detak.server.cluster import admin_cluster

    with admin_cluster(data) as u:
        yield u


@contextlib.contextmanager
def admin_session(args: argparse.Namespace) -> Iterator[Any]:
    """A database session for one admin command (migrated; committed if it returns)."""
    from sqlalchemy.orm import Session

    from detak.server.db import make_engine, migrate

    with _url(args) as url:
        engine = make_engine(url, pool_size=1)
        try:
            migrate(engine)
            with Session(engine, expire_on_commit=False) as s:
                yield s
                s.commit()
        finally:
            engine.dispose()


def _named(fn):  # noqa: ANN001, ANN202 - turn account errors into one-line usage errors
    def run(args: argparse.Namespace) -> int:
        from detak.server.accounts import AccountError
        from detak.server.bundles import BundlePublishError

        try:
            return fn(args)
        except (AccountError, BundlePublishError) as err:
            raise UsageError(str(err)) from None
    return run


def _read_password() -> str:
    env = os.environ.get(PASSWORD_ENV)
    if env:
        return env
    if sys.stdin.isatty():
        import getpass

        first = getpass.getpass("password: ")
        if first != getpass.getpass("again: "):
            raise UsageError("the two passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


@_named
def _cmd_create_user(args: argparse.Namespace) -> int:
    from detak.server.accounts import create_user

    password = _read_password()
    with admin_session(args) as s:
        user = create_user(s, args.name, args.role, password, facility=args.facility)
        print(f"created {args.role} {user.name!r}: user id {user.id}")
    return 0


@_named
def _cmd_facility_add(args: argparse.Namespace) -> int:
    from detak.server.accounts import add_facility

    with admin_session(args) as s:
        fac = add_facility(s, args.name)
        print(f"added facility {fac.name!r}: id {fac.id}")
    return 0


@_named
def _cmd_facility_list(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from detak.server.models import Facility

    with admin_session(args) as s:
        for fac in s.scalars(select(Facility).order_by(Facility.id)):
            print(f"{fac.id}\t{fac.name}")
    return 0


@_named
def _cmd_facility_assign(args: argparse.Namespace) -> int:
    from detak.server.accounts import assign_doctor

    with admin_session(args) as s:
        assign_doctor(s, args.doctor, args.facility)
        print(f"doctor {args.doctor!r} now sees facility {args.facility!r}")
    return 0


@_named
def _cmd_enroll(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from detak.server.accounts import new_enrolment_code

    if not 0 < args.hours <= 24 * 7:
        raise UsageError("--hours is more than 0 and at most 168")
    with admin_session(args) as s:
        code, expires = new_enrolment_code(s, args.facility, timedelta(hours=args.hours))
    print(f"facility {args.facility!r}: single use, expires "
          f"{expires.strftime('%Y-%m-%d %H:%M UTC')}; on the kiosk: detak sync enroll "
          "SERVER_URL CODE --store DIR")
    print(f"enrolment code: {code}", flush=True)
    return 0


def _iso(t: Any) -> str:
    """A time for the listings: ISO 8601, or ``-`` when unset."""
    return t.isoformat() if t is not None else "-"


@_named
def _cmd_create_token(args: argparse.Namespace) -> int:
    from detak.server.tokens import create_token

    with admin_session(args) as s:
        token, row = create_token(s, args.facility, args.name)
        tid = row.id
    print(f"token {tid} for facility {args.facility!r} ({args.name}); shown only now: send it "
          "as 'Authorization: Bearer TOKEN' to GET /fhir/...")
    print(f"token: {token}", flush=True)
    return 0


@_named
def _cmd_tokens(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from detak.server.models import Facility, IntegrationToken

    with admin_session(args) as s:
        rows = s.execute(select(IntegrationToken, Facility.name).join(Facility)
                         .order_by(IntegrationToken.id)).all()
        print("id\tfacility\tname\tcreated\tlast_used\trevoked")
        for t, fac in rows:
            print("\t".join([str(t.id), fac, t.name, _iso(t.created_at), _iso(t.last_used_at),
                             _iso(t.revoked_at)]))
    return 0


@_named
def _cmd_revoke_token(args: argparse.Namespace) -> int:
    from detak.server.tokens import revoke_token

    with admin_session(args) as s:
        revoke_token(s, args.token_id)
    print(f"revoked token {args.token_id}: its next request is refused")
    return 0


@_named
def _cmd_kiosk_list(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from detak.server.models import Facility, Kiosk

    with admin_session(args) as s:
        rows = s.execute(select(Kiosk, Facility.name).join(Facility)
                         .order_by(Kiosk.enrolled_at)).all()
        print("id\tfacility\tname\tenrolled\tlast_seen\trevoked")
        for k, fac in rows:
            print("\t".join([k.id, fac, k.name or "-", _iso(k.enrolled_at),
                             _iso(k.last_seen_at), _iso(k.revoked_at)]))
    return 0


@_named
def _cmd_kiosk_revoke(args: argparse.Namespace) -> int:
    from detak.server.accounts import revoke_kiosk

    with admin_session(args) as s:
        revoke_kiosk(s, args.kiosk_id)
    print(f"revoked kiosk {args.kiosk_id}: its next request is refused")
    return 0


@_named
def _cmd_bundle_key(args: argparse.Namespace) -> int:
    from detak.server.bundles import set_bundle_key

    with admin_session(args) as s:
        kid = set_bundle_key(s, args.pem)
    print(f"bundle public key set (key id {kid}); kiosks enrolled from now on pin it")
    return 0


@_named
def _cmd_bundle_publish(args: argparse.Namespace) -> int:
    from detak.server.bundles import publish_bundle
    from detak.server.filestore import LocalFileStore

    if not getattr(args, "data", None):
        raise UsageError("give --data DIR (the content store holds the bundle)")
    with admin_session(args) as s:
        row = publish_bundle(s, LocalFileStore(args.data), args.file)
        print(f"published bundle {row.name} {row.version}: sha256 {row.sha256}")
    return 0


@_named
def _cmd_conflicts(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from detak.server.audit import audit
    from detak.server.models import Conflict

    with admin_session(args) as s:
        rows = list(s.scalars(select(Conflict).order_by(Conflict.id)))
        print("id\tuuid\tkiosk\treceived\tresolved")
        for c in rows:
            print(f"{c.id}\t{c.uuid}\t{c.kiosk_id}\t{c.received_at.isoformat()}\t"
                  f"{c.resolved_at.isoformat() if c.resolved_at else '-'}")
        audit(s, "cli:conflicts", "conflict.list", detail={"count": len(rows)})
    return 0


@_named
def _cmd_export(args: argparse.Namespace) -> int:
    from detak.server.export_fhir import export_screenings, parse_since
    from detak.server.filestore import LocalFileStore

    if not getattr(args, "data", None):
        raise UsageError("give --data DIR (the content store holds the recordings)")
    since = parse_since(args.since) if args.since else None
    with admin_session(args) as s:
        n = export_screenings(s, LocalFileStore(args.data), args.out, since=since)
    print(f"exported {n} screenings to {args.out}")
    return 0


@_named
def _cmd_export_labels(args: argparse.Namespace) -> int:
    from detak.server.export_fhir import parse_since
    from detak.server.export_labels import export_labels
    from detak.server.filestore import LocalFileStore

    if not getattr(args, "data", None):
        raise UsageError("give --data DIR (the content store holds the recordings)")
    since = parse_since(args.since) if args.since else None
    with admin_session(args) as s:
        n = export_labels(s, LocalFileStore(args.data), args.out, since=since)
    print(f"exported {n} reviewed screenings to {args.out} (labels.csv + records/); "
          f"next: detak train --model edge --finetune edge --extra {args.out}")
    return 0


@_named
def _cmd_backup(args: argparse.Namespace) -> int:
    import subprocess
    from pathlib import Path

    from detak.server.cluster import pg_binary

    out = Path(args.out)
    tmp = out.with_name(f".{out.name}.partial")
    with _url(args) as url:
        plain = url.replace("postgresql+psycopg://", "postgresql://", 1)
        done = subprocess.run([str(pg_binary("pg_dump")), "-Fc", "-f", str(tmp), plain],
                              capture_output=True, text=True)
    if done.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"pg_dump failed: {done.stderr.strip()[-500:]}")
    os.replace(tmp, out)
    print(f"database dumped to {out} ({out.stat().st_size} bytes); now copy DIR/blobs")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    if getattr(args, "server_command", None):
        raise UsageError(f"unknown action {args.server_command!r}")
    if not args.data:
        raise UsageError("give --data DIR")
    need_server_extra()
    from pathlib import Path

    data = Path(args.data).absolute()
    data.mkdir(parents=True, exist_ok=True, mode=0o700)
    url = args.database_url or os.environ.get("DETAK_DATABASE_URL")
    if url:
        return _serve(args, data, url)
    from detak.server.cluster import serve_cluster

    with serve_cluster(data) as managed:
        return _serve(args, data, managed)


def _serve(args: argparse.Namespace, data: Any, url: str) -> int:
    import uvicorn

    from detak.server.app import DATA_ENV, URL_ENV
    from detak.server.db import make_engine, migrate

    engine = make_engine(url, pool_size=1)
    try:
        migrate(engine)
    finally:
        engine.dispose()
    os.environ[DATA_ENV], os.environ[URL_ENV] = str(data), url
    from detak.server.admission import ACTIVE_ENV, WAIT_ENV, WAITING_ENV

    for env, value in ((ACTIVE_ENV, args.max_active), (WAITING_ENV, args.max_waiting),
                       (WAIT_ENV, args.max_wait)):
        if value is not None:
            if value < 0:
                raise UsageError("--max-active, --max-waiting and --max-wait are >= 0")
            os.environ[env] = str(value)
    # uvicorn re-raises the SIGTERM it caught after its graceful shutdown: make that an exit
    # that unwinds, so the managed cluster is stopped by `serve_cluster`
    import signal

    def _exit(signum: int, frame: Any) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _exit)
    uvicorn.run("detak.server.app:create_server", factory=True, host=args.host, port=args.port,
                workers=max(1, args.workers), log_level="info", access_log=False,
                proxy_headers=True, forwarded_allow_ips="127.0.0.1", timeout_graceful_shutdown=5,
                root_path=args.root_path.rstrip("/"))
    return 0
