"""Enrolment (docs/sync.md §3): make the kiosk's Ed25519 key pair, present a one-time code with
the public half, and keep what the server answers: the kiosk id, the facility, the **pinned**
bundle-signing key and the clock offset. The private key is written to the store folder
(``sync-key.pem``, mode 0600) only after the server accepted it; the rest goes to the store's
``sync_state`` row.

>>> import tempfile, httpx
>>> def server(req):
...     return httpx.Response(403, json={"error": {"code": "enrolment_code_invalid",
...                                                "message": "used, expired or unknown"}})
>>> enroll(tempfile.mkdtemp() + "/s", "http://127.0.0.1:9", "abc",
...        transport=httpx.MockTransport(server))  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
detak.sync.errors.EnrolmentError: the server refused the enrolment code ...
"""

from __future__ import annotations

import logging
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from detak.sync.errors import ApiError, EnrolmentError
from detak.sync.http import API, Session
from detak.sync.retry import RetryPolicy
from detak.sync.url import check_server_url
from detak.sync.wire import new_private_key, private_key_pem, public_key_b64

log = logging.getLogger(__name__)


def _server_time(value: Any) -> float | None:
    try:
        t = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp()


def _bundle_key(pem: Any) -> str | None:
    """The PEM to pin; None when the server has no bundle key yet (its admin has not run
    `detak server bundle key PEM`): the kiosk then installs no bundle until enrolled again."""
    from detak.export.bundle import BundleKeyError, load_public_key

    if pem is None:
        log.info("the server has no bundle-signing key yet: this kiosk will install no "
                    "model bundle from it until it is enrolled again")
        return None
    if not isinstance(pem, str) or "BEGIN PUBLIC KEY" not in pem:
        raise EnrolmentError("the server's bundle-signing public key is not a PEM public key")
    try:
        load_public_key(pem.encode("ascii"))
    except (BundleKeyError, ValueError) as exc:
        raise EnrolmentError(f"the server's bundle-signing key is not an Ed25519 key: {exc}") \
            from exc
    return pem


def enroll(store_dir: str | Path, server_url: str, code: str, *, insecure: bool = False,
           name: str | None = None, transport: httpx.BaseTransport | None = None,
           policy: RetryPolicy | None = None) -> dict[str, Any]:
    """Enrol the kiosk whose store is ``store_dir`` with ``server_url`` using the one-time
    ``code``; returns ``{"kiosk_id", "facility", "server_url", "clock_offset_s"}``. Raises
    `EnrolmentError` (code refused, odd answer), `InsecureURLError`,
    `ServerUnreachableError`."""
    from detak.device.chunks import write_atomic
    from detak.kiosk import store_files as files
    from detak.kiosk.store import Store
    from detak.kiosk.store_sync import KEY_FILE

    url = check_server_url(server_url, insecure)
    code = str(code or "").strip()
    if not code:
        raise EnrolmentError("the enrolment code is empty")
    key = new_private_key()
    body = {"code": code, "public_key": public_key_b64(key),
            "name": (name if name is not None else socket.gethostname())[:200]}
    with Store.open(store_dir) as store, Session(url, transport=transport,
                                                 policy=policy) as session:
        try:
            status, answer = session.json("POST", f"{API}/enroll", body, signed=False)
        except ApiError as err:
            if err.code == "enrolment_code_invalid":
                raise EnrolmentError("the server refused the enrolment code (used, expired "
                                     "or unknown): ask the clinic's admin for a new one "
                                     "(`detak server enroll --facility NAME`)") from err
            raise EnrolmentError(f"enrolment failed: {err}") from err
        if not isinstance(answer, dict) or not answer.get("kiosk_id"):
            raise EnrolmentError(f"the server's enrolment answer ({status}) has no kiosk_id")
        pem = _bundle_key(answer.get("bundle_public_key"))
        facility = answer.get("facility") if isinstance(answer.get("facility"), dict) else {}
        server_time = _server_time(answer.get("server_time"))
        offset = 0.0 if server_time is None else server_time - datetime.now(UTC).timestamp()
        write_atomic(store.root / KEY_FILE, private_key_pem(key), mode=files.FILE_MODE,
                     sync_dir=True)
        store.save_enrolment(server_url=url, kiosk_id=str(answer["kiosk_id"]),
                             key_file=KEY_FILE, bundle_public_key=pem,
                             facility_id=facility.get("id"), facility_name=facility.get("name"),
                             insecure=insecure,
                             clock_offset_s=offset if abs(offset) > 2.0 else 0.0)
    log.info("kiosk enrolled as %s", answer["kiosk_id"])
    return {"kiosk_id": str(answer["kiosk_id"]), "facility": facility, "server_url": url,
            "clock_offset_s": offset, "bundle_key_pinned": pem is not None}
