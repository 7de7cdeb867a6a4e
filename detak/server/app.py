"""`create_server`: the clinic server's FastAPI application.

``create_server(data_dir, database_url)`` opens the database (migrating it unless
``migrate=False``), the content store under ``data_dir``, recovers half-written uploads, and
mounts the kiosk API (`detak.server.api`), the sign-in pages (`detak.server.web`) and the
FHIR reads (`detak.server.fhir_api`). Every
answer carries ``X-Detak-Server-Time``; errors are ``{"error": {"code", "message"}}``; a
database that cannot be reached is 503 with ``Retry-After``.

With no arguments it reads ``DETAK_SERVER_DATA`` and ``DETAK_DATABASE_URL`` (how ``detak
server`` hands them to uvicorn's worker processes).

>>> import os
>>> "DETAK_SERVER_DATA" in (DATA_ENV,)
True
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from detak.server.bodies import MAX_JSON
from detak.server.errors import ApiError

log = logging.getLogger(__name__)
DATA_ENV = "DETAK_SERVER_DATA"
URL_ENV = "DETAK_DATABASE_URL"


class ServerTimeMiddleware:
    """Adds ``X-Detak-Server-Time`` (Unix seconds) to every HTTP answer (pure ASGI)."""

    def __init__(self, app) -> None:  # noqa: ANN001
        self.app = app

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_time(message) -> None:  # noqa: ANN001
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-detak-server-time", str(int(time.time())).encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_time)


def _error(status: int, code: str, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status,
                        headers=headers)


def _is_fhir(request: Request) -> bool:
    path = request.url.path.removeprefix(request.scope.get("root_path") or "")
    return path == "/fhir" or path.startswith("/fhir/")


def _answer_error(request: Request, status: int, code: str, message: str,
                  headers: dict | None = None) -> JSONResponse:
    """``{"error": ...}``; under ``/fhir`` an OperationOutcome (what FHIR clients read)."""
    if _is_fhir(request):
        from detak.server.fhir_api import outcome

        return outcome(status, code, message, headers)
    return _error(status, code, message, headers)


def _install_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, err: ApiError) -> JSONResponse:
        return _answer_error(request, err.status, err.code, err.message, err.headers)

    @app.exception_handler(RequestValidationError)
    async def validation(request: Request, err: RequestValidationError) -> JSONResponse:
        e = err.errors()[0] if err.errors() else {}
        if tuple(e.get("loc", ()))[:2] == ("path", "sha256"):
            return _error(400, "bad_blob_name", "a blob name is 64 lower-case hex characters")
        where = ".".join(str(p) for p in e.get("loc", ()))
        return _answer_error(request, 422, "schema_invalid",
                             f"{where}: {e.get('msg', 'invalid')}"[:300])

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(err.status_code, "http_error")
        return _answer_error(request, err.status_code, code, str(err.detail)[:300],
                             getattr(err, "headers", None))

    @app.exception_handler(OperationalError)
    async def db_down(_: Request, err: OperationalError) -> JSONResponse:
        log.warning("database unavailable: %s", type(err).__name__)
        return _error(503, "database_unavailable", "the database is unavailable; retry",
                      {"Retry-After": "5"})

    @app.exception_handler(DBAPIError)
    async def db_error(_: Request, err: DBAPIError) -> JSONResponse:
        if err.connection_invalidated:
            return _error(503, "database_unavailable", "the database is unavailable; retry",
                          {"Retry-After": "5"})
        raise err


def create_server(data_dir: str | Path | None = None, database_url: str | None = None, *,
                  migrate: bool = True, pool_size: int = 5,
                  admission: dict[str, Any] | None = None) -> FastAPI:
    """The server application for ``data_dir`` (content store) and ``database_url``.
    ``admission``: `detak.server.admission.Admission`'s ``limit``, ``waiting``, ``wait_s``
    (default: from ``$DETAK_SERVER_MAX_ACTIVE``, ``..._MAX_WAITING``, ``..._MAX_WAIT``)."""
    from detak.server import api, expert, fhir_api, review, web
    from detak.server.admission import Admission
    from detak.server.blobs import recover
    from detak.server.db import head_revision, make_engine
    from detak.server.db import migrate as run_migrations
    from detak.server.filestore import LocalFileStore

    data_dir = data_dir or os.environ.get(DATA_ENV)
    database_url = database_url or os.environ.get(URL_ENV)
    if not data_dir or not database_url:
        raise ValueError(f"create_server needs a data folder and a database URL (or ${DATA_ENV} "
                         f"and ${URL_ENV})")
    engine = make_engine(database_url, pool_size=pool_size)
    if migrate:
        run_migrations(engine)
    store = LocalFileStore(data_dir)
    sessions = sessionmaker(engine, expire_on_commit=False)
    with sessions() as s:
        recover(s, store)
    app = FastAPI(title="detak clinic server", version="1",
                  description="The kiosk sync API (docs/sync.md) and the staff sign-in.")
    app.state.engine, app.state.sessions, app.state.store = engine, sessions, store
    app.state.max_json = MAX_JSON
    app.state.head = head_revision()
    app.state.secure_cookies = os.environ.get("DETAK_INSECURE_COOKIES") != "1"
    _install_handlers(app)

    @app.get("/healthz")
    async def healthz(request: Request) -> JSONResponse:
        """200 ``{"status": "ok"}`` once the database answers and is migrated; else 503.
        ``admission``: this worker's admission control (never shed itself)."""
        def check() -> str | None:
            with engine.connect() as conn:
                return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()

        try:
            rev = await run_in_threadpool(check)
        except DBAPIError:
            return _error(503, "database_unavailable", "the database is unavailable",
                          {"Retry-After": "5"})
        if rev != app.state.head:
            return _error(503, "not_migrated", f"schema {rev}, expected {app.state.head}")
        gate = getattr(request.state, "admission", None)
        return JSONResponse({"status": "ok", "database": "ok", "schema": rev,
                             "protocol": 1, "admission": gate.snapshot() if gate else None})

    app.include_router(api.router)
    app.include_router(web.router)
    app.include_router(expert.router)
    app.include_router(fhir_api.router)
    app.include_router(review.router)
    if admission is None:
        app.add_middleware(Admission.from_env)
    else:
        app.add_middleware(Admission, **admission)
    app.add_middleware(ServerTimeMiddleware)   # outermost: a shed answer carries the time too
    return app
