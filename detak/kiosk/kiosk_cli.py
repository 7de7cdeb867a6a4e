"""``detak kiosk --store DIR [--port 8080] [--device URL] [--lang id|en] [--facility NAME]``:
serve the kiosk app (`detak.kiosk.app.create_app`) with uvicorn on 127.0.0.1 only (Chromium in
kiosk mode on the same machine opens http://127.0.0.1:PORT/). Stops cleanly on SIGINT / SIGTERM.
The facility's name comes from ``--facility`` or the ``DETAK_FACILITY`` environment variable.

>>> import argparse
>>> sub = argparse.ArgumentParser().add_subparsers()
>>> add_kiosk_command(sub)
"""

from __future__ import annotations

import argparse
import os
from typing import Any

HOST = "127.0.0.1"
#: the environment variable `detak kiosk` reads the facility's name from (systemd's
#: EnvironmentFile keeps its spaces; an argument in DETAK_KIOSK_ARGS would be split at them)
FACILITY_ENV = "DETAK_FACILITY"


def add_kiosk_command(sub: Any) -> None:
    """Register ``detak kiosk`` on the sub-parsers ``sub`` of the ``detak`` parser."""
    from detak.kiosk.i18n import DEFAULT_LANGUAGE, LANGUAGES

    p = sub.add_parser(
        "kiosk", help="serve the nurse's kiosk app on 127.0.0.1 (open it in Chromium)",
        description="Serve the kiosk app (sign-in, residents, recording, results, reports) "
        "over the store at DIR on http://127.0.0.1:PORT/ (loopback only). GET /healthz "
        "answers {\"status\": \"ok\", \"store\", \"model\", \"bundle\", \"pending_sync\", "
        "\"last_sync\", \"failed_sync\", \"sync_error\"}. A store enrolled with a clinic "
        "server (detak sync enroll) is synced in the background whenever the server answers. "
        "--device is the ECG device URL (e.g. serial:///dev/ttyUSB0); the training device "
        "(the emulator) is always offered beside it.")
    p.add_argument("--store", required=True, metavar="DIR", help="the kiosk store folder")
    p.add_argument("--port", type=int, default=8080, help="TCP port on 127.0.0.1 (default 8080)")
    p.add_argument("--device", action="append", default=None, metavar="URL",
                   help="the ECG device URL; repeat it to let the nurse choose")
    p.add_argument("--lang", choices=list(LANGUAGES), default=DEFAULT_LANGUAGE,
                   help="default language of the pages (default id)")
    p.add_argument("--facility", default=None, metavar="NAME",
                   help="the facility's name for the reports' header (stored with each "
                   "screening, with the signed-in nurse's name; default: $DETAK_FACILITY)")
    p.set_defaults(func=_cmd_kiosk)


def check_port(port: int) -> None:
    """A usage error (exit 2) naming what to do when ``port`` on 127.0.0.1 cannot be served."""
    import socket

    from detak.errors import UsageError

    if not 1 <= port <= 65535:
        raise UsageError(f"--port {port}: choose a port from 1 to 65535")
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError as exc:
            raise UsageError(f"port {port} on {HOST} is not free ({exc.strerror}): is another "
                             "detak kiosk running? Stop it, or choose another --port") from None


def _cmd_kiosk(args: argparse.Namespace) -> int:
    import uvicorn

    from detak.kiosk.app import create_app

    check_port(args.port)
    facility = args.facility or os.environ.get(FACILITY_ENV) or None
    app = create_app(args.store, device=args.device, lang=args.lang, facility=facility)
    uvicorn.run(app, host=HOST, port=args.port, log_level="info", access_log=True)
    return 0
