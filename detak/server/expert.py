"""The expert-system pages (S4) of the clinic server, under ``/expert``.

* ``GET /expert``: the case bases; an admin creates (empty or from a bundled schema) and
  deletes them.
* ``GET /expert/bases/{id}``: a base's features, classes and cases; an admin adds, edits and
  deletes each (``POST`` forms, each with the session's CSRF token, each change audited). A
  rejected change re-renders the page (422) with the library's named error at the form.
* ``GET /expert/classify``: a doctor (or admin) classifies a typed-in case or a screening (its
  intervals; the doctor's facilities only, audited) by KNN: the class, the vote, the neighbour
  table (distance, class, the case's values), and beside it the leave-one-out accuracy of the
  base for KNN, naive Bayes and the decision tree, with their answers for the same case.

Roles: admin and doctor read, only admin changes the bases; a nurse gets 403, no session 401.
The language is Bahasa Indonesia unless the ``detak_lang`` cookie says ``en``
(``GET /expert/lang/en``).
"""

from __future__ import annotations

import hmac
import math
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from detak.kiosk.i18n import N_
from detak.models.cases import CasesFormatError, SchemaError
from detak.server import accounts
from detak.server import expert_store as store
from detak.server.audit import audit
from detak.server.bodies import read_limited
from detak.server.errors import ApiError
from detak.server.expert_classify import ClassifyError, classify, frame
from detak.server.expert_i18n import DEFAULT_LANGUAGE, LANGUAGES, number, translator
from detak.server.models import Facility, Screening, User
from detak.server.web import session_user

router = APIRouter(prefix="/expert", include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
LANG_COOKIE = "detak_lang"
READERS = ("admin", "doctor")
MAX_FORM = 256 << 10
DEFAULT_K = 5
SCHEMAS = ("s4_echo", "ecg_intervals")
ANCHORS = {"feature": "features", "class": "classes", "case": "cases",
           "import": "cases"}
#: words shown through _() from data: roles and case sources
WORDS = (N_("admin"), N_("doctor"), N_("nurse"), N_("verdict"), N_("import"))
FORM_ERRORS = (CasesFormatError, SchemaError, store.ExpertError)


def lang_of(request: Request) -> str:
    c = request.cookies.get(LANG_COOKIE)
    return c if c in LANGUAGES else DEFAULT_LANGUAGE


def _remote(request: Request) -> str | None:
    return request.client.host if request.client else None


class PageError(Exception):
    """An error answered as a small HTML page (401, 403, 404)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _page(request: Request, template: str, status: int = 200, **ctx: Any) -> HTMLResponse:
    lg = lang_of(request)
    _ = translator(lg)

    def num(v: Any, digits: int = 2) -> str:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "–"
        return number(float(v), lg, digits)

    base = {"_": _, "lang": lg, "languages": LANGUAGES, "num": num,
            "pct": lambda v: number(100 * float(v), lg, 1) + " %",
            "path": request.url.path}
    return templates.TemplateResponse(request, template, {**base, **ctx}, status_code=status)


def _error_page(request: Request, err: PageError) -> HTMLResponse:
    return _page(request, "expert/message.html", status=err.status, status_code=err.status,
                 message=err.args[0])


def _staff(request: Request, s: Any, roles: tuple[str, ...] = READERS) -> tuple[User, str]:
    """The signed-in user if their role is one of ``roles`` (else PageError 401/403)."""
    _ = translator(lang_of(request))
    try:
        user, ws = session_user(request, s)
    except ApiError:
        raise PageError(401, _("Sign in first.")) from None
    if user.role not in roles:
        raise PageError(403, _("Your role may not open this page."))
    return user, ws.csrf


def _check_csrf(form: dict[str, str], csrf: str) -> None:
    if not hmac.compare_digest(form.get("csrf_token", ""), csrf):
        raise PageError(403, "CSRF token missing or wrong: reload the page and try again.")


async def _form(request: Request) -> dict[str, str]:
    body = await read_limited(request, MAX_FORM)
    try:
        return {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True,
                                             max_num_fields=300).items()}
    except (UnicodeDecodeError, ValueError):
        raise PageError(400, "not a form") from None


def _go(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _error_text(exc: Exception) -> dict[str, Any]:
    """A rejected change for the page: the named error, its message, the fields it names."""
    fields = [c for _, c, _v in getattr(exc, "problems", []) if c]
    return {"name": type(exc).__name__, "message": str(exc), "fields": fields}


def _run(request: Request, fn: Callable[[Any], Response]) -> Any:
    """Run ``fn(session)`` in a session; PageError becomes its HTML page."""
    def go() -> Response:
        try:
            with request.app.state.sessions() as s:
                return fn(s)
        except PageError as err:
            return _error_page(request, err)
    return run_in_threadpool(go)


# -- language ----------------------------------------------------------------------------------
@router.get("/lang/{code}")
async def set_language(request: Request, code: str, next: str = "/expert") -> Response:
    resp = _go(next if next.startswith("/expert") else "/expert")
    if code in LANGUAGES:
        resp.set_cookie(LANG_COOKIE, code, max_age=365 * 86400, samesite="strict",
                        secure=request.app.state.secure_cookies, path="/")
    return resp


# -- bases -------------------------------------------------------------------------------------
def _index(request: Request, s: Any, user: User, csrf: str, status: int = 200,
           error: dict | None = None, form: dict | None = None) -> HTMLResponse:
    if store.seed_bases(s):
        s.commit()
    counts = store.case_counts(s)
    bases = [{"base": b, "features": len(store.features_of(s, b)),
              "classes": len(store.classes_of(s, b)), "cases": counts.get(b.id, 0)}
             for b in s.scalars(select(store.ExpertBase).order_by(store.ExpertBase.id))]
    return _page(request, "expert/index.html", status=status, user=user, csrf=csrf,
                 bases=bases, schemas=SCHEMAS, error=error, form=form or {})


@router.get("", response_class=HTMLResponse)
async def index(request: Request) -> Response:
    def fn(s: Any) -> Response:
        user, csrf = _staff(request, s)
        return _index(request, s, user, csrf)
    return await _run(request, fn)


@router.post("/bases")
async def create_base(request: Request) -> Response:
    form = await _form(request)

    def fn(s: Any) -> Response:
        user, csrf = _staff(request, s, ("admin",))
        _check_csrf(form, csrf)
        try:
            base = store.create_base(s, form.get("name", ""), f"user:{user.id}",
                                     description=form.get("description", ""),
                                     target=form.get("target", ""),
                                     from_schema=form.get("schema") or None)
        except FORM_ERRORS as exc:
            s.rollback()
            return _index(request, s, user, csrf, 422, _error_text(exc), form)
        s.commit()
        return _go(f"/expert/bases/{base.id}")
    return await _run(request, fn)


@router.post("/bases/{base_id}/delete")
async def delete_base(request: Request, base_id: int) -> Response:
    form = await _form(request)

    def fn(s: Any) -> Response:
        user, csrf = _staff(request, s, ("admin",))
        _check_csrf(form, csrf)
        store.delete_base(s, _base(s, base_id), f"user:{user.id}")
        s.commit()
        return _go("/expert")
    return await _run(request, fn)


def _base(s: Any, base_id: int) -> store.ExpertBase:
    try:
        return store.get_base(s, base_id)
    except store.BaseNotFoundError as exc:
        raise PageError(404, str(exc)) from None


def _base_page(request: Request, s: Any, base: store.ExpertBase, user: User, csrf: str,
               status: int = 200, error: dict | None = None, section: str | None = None,
               form: dict | None = None, edit_case: Any = None) -> HTMLResponse:
    feats = store.features_of(s, base)
    classes = store.classes_of(s, base)
    cases = store.cases_of(s, base)
    counts: dict[int, int] = {}
    for c, _n in cases:
        counts[c.class_id] = counts.get(c.class_id, 0) + 1
    return _page(request, "expert/base.html", status=status, user=user, csrf=csrf, base=base,
                 features=feats, classes=classes, cases=cases, class_counts=counts,
                 admin=user.role == "admin", error=error, section=section, form=form or {},
                 edit_case=edit_case)


@router.get("/bases/{base_id}", response_class=HTMLResponse)
async def base_page(request: Request, base_id: int) -> Response:
    def fn(s: Any) -> Response:
        user, csrf = _staff(request, s)
        return _base_page(request, s, _base(s, base_id), user, csrf)
    return await _run(request, fn)


@router.get("/bases/{base_id}/cases/{case_id}", response_class=HTMLResponse)
async def case_page(request: Request, base_id: int, case_id: int) -> Response:
    def fn(s: Any) -> Response:
        user, csrf = _staff(request, s, ("admin",))
        base = _base(s, base_id)
        try:
            case = store.get_case(s, base, case_id)
        except store.BaseNotFoundError as exc:
            raise PageError(404, str(exc)) from None
        cls = s.get(store.ExpertClass, case.class_id)
        form = {f"f_{k}": "" if v is None else _plain(v) for k, v in case.values.items()}
        form.update(label=cls.name, note=case.note)
        return _base_page(request, s, base, user, csrf, form=form, edit_case=case,
                          section="case")
    return await _run(request, fn)


def _plain(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def _change(section: str, action: Callable[[Any, store.ExpertBase, str, dict], Any]):  # noqa: ANN202
    """A POST handler: admin + CSRF, ``action(session, base, actor, form)``, then back to the
    base page (303), or the page again with the named error (422)."""
    async def handler(request: Request, base_id: int, item_id: int | None = None) -> Response:
        form = await _form(request)

        def fn(s: Any) -> Response:
            user, csrf = _staff(request, s, ("admin",))
            _check_csrf(form, csrf)
            base = _base(s, base_id)
            try:
                action(s, base, f"user:{user.id}", {**form, "_id": item_id})
            except store.BaseNotFoundError as exc:
                raise PageError(404, str(exc)) from None
            except FORM_ERRORS as exc:
                s.rollback()
                base = _base(s, base_id)
                edit = (store.get_case(s, base, item_id) if section == "case" and item_id
                        else None)
                return _base_page(request, s, base, user, csrf, 422, _error_text(exc),
                                  f"{section}:{item_id or 'new'}", form, edit_case=edit)
            s.commit()
            return _go(f"/expert/bases/{base_id}#{ANCHORS[section]}")
        return await _run(request, fn)
    return handler


_DECIMAL_COMMA = re.compile(r"^\s*[-+]?\d+,\d+\s*$")


def typed_number(text: str) -> str:
    """A number typed on the form with a decimal comma (Indonesian: "62,5") as the decimal
    point the case parser reads; anything else unchanged (its named error stays).

    >>> typed_number("62,5"), typed_number(" 9 "), typed_number("1,234,5"), typed_number("x")
    ('62.5', ' 9 ', '1,234,5', 'x')
    """
    return text.replace(",", ".") if _DECIMAL_COMMA.match(text or "") else text


def _cells(form: dict) -> dict[str, str]:
    return {k[2:]: typed_number(v) for k, v in form.items() if k.startswith("f_")}


def _add_feature(s: Any, b: store.ExpertBase, actor: str, f: dict) -> None:
    store.add_feature(s, b, f.get("key", ""), actor, column=f.get("column", ""),
                      unit=f.get("unit", ""), description=f.get("description", ""))


def _edit_feature(s: Any, b: store.ExpertBase, actor: str, f: dict) -> None:
    store.edit_feature(s, b, store.get_feature(s, b, f["_id"]), actor,
                       column=f.get("column", ""), unit=f.get("unit", ""),
                       description=f.get("description", ""))


def _delete_feature(s: Any, b: store.ExpertBase, actor: str, f: dict) -> None:
    store.delete_feature(s, b, store.get_feature(s, b, f["_id"]), actor)


def _add_class(s: Any, b: store.ExpertBase, actor: str, f: dict) -> None:
    store.add_class(s, b, f.get("name", ""), actor)


def _rename_class(s: Any, b: store.ExpertBase, actor: str, f: dict) -> None:
    store.rename_class(s, b, store.get_class(s, b, f["_id"]), f.get("name", ""), actor)


def _delete_class(s: Any, b: store.ExpertBase, actor: str, f: dict) -> None:
    store.delete_class(s, b, store.get_class(s, b, f["_id"]), actor)


def _add_case(s: Any, b: store.ExpertBase, actor: str, f: dict) -> None:
    store.add_case(s, b, _cells(f), f.get("label", ""), actor, note=f.get("note", ""))


def _edit_case(s: Any, b: store.ExpertBase, actor: str, f: dict) -> None:
    store.edit_case(s, b, store.get_case(s, b, f["_id"]), _cells(f), f.get("label", ""),
                    actor, note=f.get("note", ""))


def _delete_case(s: Any, b: store.ExpertBase, actor: str, f: dict) -> None:
    store.delete_case(s, b, store.get_case(s, b, f["_id"]), actor)


def _import_cases(s: Any, b: store.ExpertBase, actor: str, f: dict) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cases.csv"
        path.write_text(f.get("csv", ""), encoding="utf-8")
        store.import_cases(s, b, path, actor)


for _path, _section, _action in (
        ("/bases/{base_id}/features", "feature", _add_feature),
        ("/bases/{base_id}/features/{item_id}", "feature", _edit_feature),
        ("/bases/{base_id}/features/{item_id}/delete", "feature", _delete_feature),
        ("/bases/{base_id}/classes", "class", _add_class),
        ("/bases/{base_id}/classes/{item_id}", "class", _rename_class),
        ("/bases/{base_id}/classes/{item_id}/delete", "class", _delete_class),
        ("/bases/{base_id}/cases", "case", _add_case),
        ("/bases/{base_id}/cases/{item_id}", "case", _edit_case),
        ("/bases/{base_id}/cases/{item_id}/delete", "case", _delete_case),
        ("/bases/{base_id}/import", "import", _import_cases)):
    router.add_api_route(_path, _change(_section, _action), methods=["POST"])


# -- classification ----------------------------------------------------------------------------
def _screenings(s: Any, user: User) -> list[dict[str, Any]]:
    """The newest screenings with intervals the user may see (for the picker; no names)."""
    facs = accounts.user_facilities(s, user)
    q = (select(Screening.id, Screening.created_at, Screening.screening, Facility.name)
         .join(Facility, Facility.id == Screening.facility_id)
         .order_by(Screening.id.desc()).limit(100))
    if facs is not None:
        q = q.where(Screening.facility_id.in_(facs or {-1}))
    out = []
    for sid, created, body, fac in s.execute(q):
        iv = (body or {}).get("intervals") or {}
        if any(isinstance(v, (int, float)) and math.isfinite(v) for v in iv.values()):
            out.append({"id": sid, "created_at": created, "facility": fac,
                        "hr": iv.get("hr_bpm")})
    return out


def _screening(s: Any, user: User, screening_id: int, remote: str | None) -> Screening:
    """A screening of the user's facilities (404 otherwise, the same as one that does not
    exist); the read is audited."""
    facs = accounts.user_facilities(s, user)
    row = s.get(Screening, screening_id)
    if row is None or (facs is not None and row.facility_id not in facs):
        raise PageError(404, f"no screening {screening_id}")
    audit(s, f"user:{user.id}", "screening.read", object_kind="screening", object_id=row.id,
          facility_id=row.facility_id, remote=remote, detail={"for": "expert.classify"})
    return row


def _float(text: str) -> float | None:
    t = typed_number(text or "").strip()
    if not t:
        return None
    v = float(t)
    if not math.isfinite(v):
        raise ValueError(t)
    return v


@router.get("/classify", response_class=HTMLResponse)
async def classify_page(request: Request) -> Response:
    q = dict(request.query_params)

    def fn(s: Any) -> Response:
        user, csrf = _staff(request, s)
        _ = translator(lang_of(request))
        if store.seed_bases(s):
            s.commit()
        bases = list(s.scalars(select(store.ExpertBase).order_by(store.ExpertBase.id)))
        if not bases:
            raise PageError(404, _("There is no case base yet."))
        try:
            base_id = int(q.get("base") or 0)
        except ValueError:
            base_id = 0
        base = next((b for b in bases if b.id == base_id), None) or next(
            (b for b in bases if b.name == store.VERDICT_BASE), bases[0])
        feats = store.features_of(s, base)
        keys = [f.key for f in feats]
        error: str | None = None
        query: dict[str, float | None] = {}
        values = {k: q.get(f"f_{k}", "") for k in keys}
        screening = None
        try:
            k = int(q.get("k") or DEFAULT_K)
        except ValueError:
            k, error = DEFAULT_K, _("k must be a whole number.")
        if q.get("screening"):
            try:
                sid = int(q["screening"])
            except ValueError:
                raise PageError(404, "no such screening") from None
            screening = _screening(s, user, sid, _remote(request))
            query = store.screening_values(screening.screening or {}, keys)
            values = {kk: "" if v is None else _plain(v) for kk, v in query.items()}
        elif any(v.strip() for v in values.values()):
            bad = []
            for f in feats:
                try:
                    query[f.key] = _float(values[f.key])
                except ValueError:
                    bad.append(f.column)
            if bad:
                error = _("Not a number: ") + ", ".join(bad)
        result = None
        if (screening is not None or query) and error is None:
            X, y = frame(store.cases_of(s, base), keys)
            try:
                result = classify(X, y, query, k=k)
            except ClassifyError as exc:
                error = f"ClassifyError: {exc}"
        s.commit()  # the audit entry of a screening read
        cases = {c.id: c for c, _n in store.cases_of(s, base)} if result else {}
        return _page(request, "expert/classify.html", user=user, csrf=csrf, bases=bases,
                     base=base, features=feats, values=values, query=query, k=k,
                     result=result,
                     error=error, screening=screening, screenings=_screenings(s, user),
                     cases=cases, qs=lambda **kw: urlencode({**q, **kw}))
    return await _run(request, fn)
