"""Staff sign-in for the server tests (form with its CSRF cookie, then the session cookie)."""

from __future__ import annotations

import re

import httpx


def login(base_url: str, name: str, password: str) -> tuple[httpx.Client, httpx.Response]:
    c = httpx.Client(base_url=base_url, timeout=30)
    form = c.get("/login")
    token = re.search(r"name='csrf_token' value='([^']+)'", form.text).group(1)
    # sent by hand: a Secure cookie is not sent back over the tests' plain http
    r = c.post("/login", data={"name": name, "password": password, "csrf_token": token},
               headers={"Cookie": f"detak_login_csrf={token}"})
    session = r.cookies.get("detak_session")
    if session:
        c.headers["Cookie"] = f"detak_session={session}"
    return c, r
