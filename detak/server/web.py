"""Staff sign-in for the (later) doctors' pages: ``GET /login`` (a form with a CSRF token),
``POST /login`` (rate-limited), ``POST /logout``, ``GET /api/v1/me`` and the one read of
resident data this issue needs, ``GET /api/v1/screenings`` (the caller's facilities only).

Sessions: a random token in the ``detak_session`` cookie (Secure, HttpOnly, SameSite=Strict;
the database keeps only its SHA-256), 12 hours. CSRF: the login form's token is also a cookie
(double submit); a signed-in session has its own token, required on every state-changing
request (form field ``csrf_token`` or header ``X-CSRF-Token``). Rate limit: 5 failed sign-ins
per name or 20 per address in 15 minutes → 429 with ``Retry-After``.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import secrets
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool

from detak.server import accounts
from detak.server.audit import audit
from detak.server.bodies import read_limited
from detak.server.errors import ApiError
from detak.server.models import LoginAttempt, Screening, User, WebSession

router = APIRouter()
SESSION_COOKIE = "detak_session"
LOGIN_CSRF_COOKIE = "detak_login_csrf"
SESSION_TTL = timedelta(hours=12)
WINDOW = timedelta(minutes=15)
MAX_FAILS_NAME, MAX_FAILS_REMOTE = 5, 20


def _h(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _cookie(request: Request, resp: Response, name: str, value: str, max_age: int) -> None:
    resp.set_cookie(name, value, max_age=max_age, httponly=True, samesite="strict",
                    secure=request.app.state.secure_cookies, path="/")


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
async def login_form(request: Request, next: str = "") -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    back = (f"<input type='hidden' name='next' value='{html.escape(next)}'>"
            if _local_path(next) else "")
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>detak: sign in</title>"
            "</head><body><form method='post' action='/login'>"
            f"<input type='hidden' name='csrf_token' value='{html.escape(token)}'>{back}"
            "<label>Name <input name='name' autocomplete='username'></label>"
            "<label>Password <input name='password' type='password' "
            "autocomplete='current-password'></label><button>Sign in</button></form>"
            "</body></html>")
    resp = HTMLResponse(page)
    _cookie(request, resp, LOGIN_CSRF_COOKIE, token, 3600)
    return resp


def _local_path(path: str) -> bool:
    """A page of this server to return to after signing in (never another site).

    >>> _local_path("/review"), _local_path("//evil.example"), _local_path("https://x")
    (True, False, False)
    """
    return path.startswith("/") and not path.startswith("//") and "\\" not in path \
        and len(path) < 500


def _form(data: bytes) -> dict[str, str]:
    try:
        return {k: v[0] for k, v in parse_qs(data.decode(), max_num_fields=10).items()}
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, "bad_request", "not a form") from None


@router.post("/login", include_in_schema=False)
async def login(request: Request) -> Response:
    form = _form(await read_limited(request, 8 << 10))
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie, form.get("csrf_token", "")):
        raise ApiError(403, "csrf_failed", "the form's CSRF token is missing or wrong")
    name, password = form.get("name", "")[:200], form.get("password", "")[:1000]
    remote = request.client.host if request.client else None
    token, csrf = await run_in_threadpool(_login, request, name, password, remote)
    nxt = form.get("next", "")
    resp: Response = RedirectResponse(nxt, status_code=303) if _local_path(nxt) else \
        JSONResponse({"status": "ok", "csrf_token": csrf})
    _cookie(request, resp, SESSION_COOKIE, token, int(SESSION_TTL.total_seconds()))
    resp.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return resp


def _login(request: Request, name: str, password: str, remote: str | None) -> tuple[str, str]:
    now = datetime.now(UTC)
    with request.app.state.sessions() as s:
        since = now - WINDOW
        by_name = s.scalar(select(func.count()).select_from(LoginAttempt).where(
            LoginAttempt.name == name, LoginAttempt.ok.is_(False), LoginAttempt.at > since))
        by_remote = s.scalar(select(func.count()).select_from(LoginAttempt).where(
            LoginAttempt.remote == remote, LoginAttempt.ok.is_(False), LoginAttempt.at > since))
        if by_name >= MAX_FAILS_NAME or by_remote >= MAX_FAILS_REMOTE:
            raise ApiError(429, "rate_limited", "too many failed sign-ins; wait 15 minutes",
                           headers={"Retry-After": str(int(WINDOW.total_seconds()))})
        user = s.scalar(select(User).where(User.name == name, User.active.is_(True)))
        ok = accounts.verify_password(user.password_hash if user else None, password)
        s.add(LoginAttempt(name=name, remote=remote, ok=ok))
        if not ok or user is None:
            s.commit()
            raise ApiError(401, "login_failed", "wrong name or password")
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        s.add(WebSession(token_hash=_h(token), user_id=user.id, csrf=csrf,
                         expires_at=now + SESSION_TTL))
        audit(s, f"user:{user.id}", "user.login", remote=remote)
        s.commit()
    return token, csrf


def session_user(request: Request, s, *, csrf: bool = False) -> tuple[User, WebSession]:  # noqa: ANN001
    """The signed-in user of ``request`` (401 if none; 403 if ``csrf`` and the token is wrong)."""
    token = request.cookies.get(SESSION_COOKIE)
    ws = s.get(WebSession, _h(token)) if token else None
    if ws is None or ws.expires_at <= datetime.now(UTC):
        raise ApiError(401, "not_signed_in", "sign in first (POST /login)")
    user = s.get(User, ws.user_id)
    if user is None or not user.active:
        raise ApiError(401, "not_signed_in", "sign in first (POST /login)")
    if csrf and not hmac.compare_digest(request.headers.get("x-csrf-token", ""), ws.csrf):
        raise ApiError(403, "csrf_failed", "the CSRF token is missing or wrong")
    return user, ws


@router.post("/logout", include_in_schema=False)
async def logout(request: Request) -> JSONResponse:
    def run() -> None:
        with request.app.state.sessions() as s:
            user, ws = session_user(request, s, csrf=True)
            ws.expires_at = datetime.now(UTC)
            audit(s, f"user:{user.id}", "user.logout")
            s.commit()

    await run_in_threadpool(run)
    resp = JSONResponse({"status": "ok"})
    resp.delete_cookie(SESSION_COOKIE, path="/")
    return resp


@router.get("/api/v1/me")
async def me(request: Request) -> JSONResponse:
    """The signed-in user: name, role and facility ids (cookie session)."""
    def run() -> dict:
        with request.app.state.sessions() as s:
            user, _ = session_user(request, s)
            facs = accounts.user_facilities(s, user)
            return {"name": user.name, "role": user.role,
                    "facilities": None if facs is None else sorted(facs)}

    return JSONResponse(await run_in_threadpool(run))


@router.get("/api/v1/screenings")
async def screenings(request: Request, limit: int = 100) -> JSONResponse:
    """Screenings of the caller's facilities, newest first (staff session; audited)."""
    limit = max(1, min(limit, 500))

    def run() -> dict:
        with request.app.state.sessions() as s:
            user, _ = session_user(request, s)
            facs = accounts.user_facilities(s, user)
            q = select(Screening).order_by(Screening.id.desc()).limit(limit)
            if facs is not None:
                q = q.where(Screening.facility_id.in_(facs or {-1}))
            rows = list(s.scalars(q))
            audit(s, f"user:{user.id}", "screening.list", object_kind="screening",
                  detail={"ids": [r.id for r in rows][:500]},
                  remote=request.client.host if request.client else None)
            s.commit()
            return {"screenings": [{"server_id": r.id, "uuid": r.uuid,
                                    "facility_id": r.facility_id, "created_at": r.created_at,
                                    "received_at": r.received_at.isoformat()} for r in rows]}

    return JSONResponse(await run_in_threadpool(run))
