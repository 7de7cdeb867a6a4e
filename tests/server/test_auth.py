"""Signed requests (docs/sync.md §4): each refusal has its code, the server time is on every
answer, a replayed nonce and a stale timestamp are refused."""

from __future__ import annotations

import base64
import time

import pytest

from tests.server.harness import ServerProcess
from tests.server.kiosk import Kiosk


@pytest.fixture(scope="module")
def kiosk(detak_server: ServerProcess) -> Kiosk:
    k = Kiosk(detak_server.url)
    assert k.enroll(detak_server.enrollment_code("Wisma A")).status_code == 201
    return k


def _code(r) -> str:  # noqa: ANN001
    assert r.status_code == 401, r.text
    assert "X-Detak-Server-Time" in r.headers
    return r.json()["error"]["code"]


def test_missing_unknown_invalid(kiosk: Kiosk) -> None:
    assert _code(kiosk.http.post("/api/v1/sync/batch", content=b"{}")) == "signature_missing"
    assert _code(kiosk.request("POST", "/api/v1/sync/batch", b"{}",
                               kiosk_id="0" * 32)) == "kiosk_unknown"
    h = kiosk.headers("POST", "/api/v1/sync/batch", b"{}")
    r = kiosk.http.post("/api/v1/sync/batch", content=b'{"x":1}', headers=h)  # body changed
    assert _code(r) == "signature_invalid"
    h = kiosk.headers("POST", "/api/v1/sync/batch", b"{}")
    r = kiosk.http.post("/api/v1/sync/batch?x=1", content=b"{}", headers=h)  # path changed
    assert _code(r) == "signature_invalid"
    other = Kiosk(kiosk.base)
    other.kiosk_id = kiosk.kiosk_id  # someone else's key under this kiosk's id
    assert _code(other.request("POST", "/api/v1/sync/batch", b"{}")) == "signature_invalid"
    h["X-Detak-Signature"] = base64.b64encode(b"x" * 64).decode()
    assert _code(kiosk.http.post("/api/v1/sync/batch?x=1", content=b"{}",
                                 headers=h)) == "signature_invalid"


def test_timestamp_window_and_server_time(kiosk: Kiosk) -> None:
    r = kiosk.request("POST", "/api/v1/sync/batch", b"{}", ts=int(time.time()) - 3 * 3600)
    assert _code(r) == "timestamp_out_of_window"
    offset = int(r.headers["X-Detak-Server-Time"]) - int(time.time())
    kiosk.clock_offset = offset  # what the client does: adopt the server's clock, retry
    body = b'{"protocol": 1, "items": []}'
    assert kiosk.request("POST", "/api/v1/sync/batch", body).status_code == 200


def test_nonce_replay(kiosk: Kiosk) -> None:
    body = b'{"protocol": 1, "items": []}'
    h = kiosk.headers("POST", "/api/v1/sync/batch", body)
    assert kiosk.http.post("/api/v1/sync/batch", content=body, headers=h).status_code == 200
    r = kiosk.http.post("/api/v1/sync/batch", content=body, headers=h)
    assert _code(r) == "nonce_replayed"


def test_expired_code(detak_server: ServerProcess) -> None:
    import psycopg

    code = detak_server.enrollment_code("Wisma A")
    url = detak_server.database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn:  # age every unused code past its expiry
        conn.execute("UPDATE enrolment_codes SET expires_at = now() - interval '1 second' "
                     "WHERE used_at IS NULL")
    r = Kiosk(detak_server.url).enroll(code)
    assert r.status_code == 403 and r.json()["error"]["code"] == "enrolment_code_invalid"


def test_enrol_validation(detak_server: ServerProcess) -> None:
    k = Kiosk(detak_server.url)
    r = k.http.post("/api/v1/enroll", json={"code": "x", "public_key": "QUJD"})
    assert r.status_code == 422
    r = k.http.post("/api/v1/enroll", content=b"not json",
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_json"


def test_root_path_behind_a_prefix_stripping_proxy(server_factory) -> None:  # noqa: ANN001
    """The kiosk signs /clinic/api/v1/...; the proxy strips /clinic; --root-path restores it."""
    srv = server_factory(args=("--root-path", "/clinic"))
    srv.admin("facility", "add", "Wisma P")
    k = Kiosk(srv.url)
    assert k.enroll(srv.enrollment_code("Wisma P")).status_code == 201
    body = b'{"protocol": 1, "items": []}'
    h = k.headers("POST", "/clinic/api/v1/sync/batch", body)
    assert k.http.post("/api/v1/sync/batch", content=body, headers=h).status_code == 200
    h = k.headers("POST", "/api/v1/sync/batch", body)  # signed without the prefix: refused
    assert _code(k.http.post("/api/v1/sync/batch", content=body,
                             headers=h)) == "signature_invalid"
