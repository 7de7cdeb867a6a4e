"""Staff sign-in: cookie flags, CSRF on the form and on state changes, rate limit."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.server.harness import ServerProcess
from tests.server.staff import login

PASSWORD = "a long enough password"


def test_cookie_flags_csrf_and_rate_limit(server_factory: Callable[..., ServerProcess]) -> None:
    srv = server_factory(env={"DETAK_INSECURE_COOKIES": "0"})  # production cookies
    srv.admin("facility", "add", "Wisma A")
    srv.admin("create-user", "--role", "nurse", "--name", "n1", "--facility", "Wisma A",
              input=PASSWORD + "\n")
    c, r = login(srv.url, "n1", PASSWORD)
    assert r.status_code == 200, r.text
    cookie = r.headers["set-cookie"]
    assert "detak_session=" in cookie
    for flag in ("Secure", "HttpOnly", "SameSite=strict"):
        assert flag.lower() in cookie.lower(), cookie
    # the form without its CSRF cookie/token is refused
    r = httpx.post(srv.url + "/login", data={"name": "n1", "password": PASSWORD,
                                             "csrf_token": "guess"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed"
    # five wrong passwords for a name, then even the right one waits
    for _ in range(5):
        assert login(srv.url, "n1", "wrong password!")[1].status_code == 401
    r = login(srv.url, "n1", PASSWORD)[1]
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0


def test_session_and_logout_csrf(detak_server: ServerProcess) -> None:
    detak_server.admin("create-user", "--role", "admin", "--name", "adm", input=PASSWORD + "\n")
    c, r = login(detak_server.url, "adm", PASSWORD)
    csrf = r.json()["csrf_token"]
    assert c.get("/api/v1/me").json()["role"] == "admin"
    assert c.post("/logout").status_code == 403  # no CSRF token
    assert c.post("/logout", headers={"X-CSRF-Token": csrf}).status_code == 200
    assert c.get("/api/v1/me").status_code == 401
