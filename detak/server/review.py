"""The doctors' review pages (issue 16 items 1–3): ``/review`` (the queue), ``/review/screening/
{id}`` (the ECG viewer with the model's evidence and the verdict form) and their JSON API under
``/api/v1/review`` (the screening, its samples, the lock, signing).

Doctors only (a nurse or an admin: 403); a doctor sees the screenings of the facilities they
are assigned to — any other id is 404, as if it did not exist. Every read and write is audited.
The pages speak Bahasa Indonesia (default) and English from the kiosk's gettext catalogs; the
viewer is plain vendored JS (``detak/server/static``), no CDN.

>>> [r.path for r in router.routes][:2]
['/review', '/review/screening/{sid}']
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from detak.kiosk.i18n import LANGUAGES, N_, number, translator
from detak.kiosk.ranges import normal_ranges, range_text
from detak.kiosk.rhythm_text import feature_rows, finding_rows
from detak.server import review_data as rd
from detak.server.audit import audit
from detak.server.bodies import read_limited
from detak.server.errors import ApiError
from detak.server.web import _local_path, session_user

HERE = Path(__file__).parent
LANG_COOKIE = "detak_lang"
STATIC = {"review.js": "text/javascript", "ecg_viewer.js": "text/javascript",
          "review.css": "text/css"}
#: the kiosk's quality verdicts in words (the report's)
QUALITY = {"ok": N_("good"), "warn": N_("acceptable"), "reject": N_("rejected")}
router = APIRouter()


def _env() -> Any:
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                             autoescape=True, trim_blocks=True, lstrip_blocks=True)
    return env


_ENV = None


def _template(name: str) -> Any:
    global _ENV
    if _ENV is None:
        _ENV = _env()
    return _ENV.get_template(name)


def _remote(request: Request) -> str | None:
    return request.client.host if request.client else None


def lang_of(request: Request) -> str:
    c = request.cookies.get(LANG_COOKIE)
    return c if c in LANGUAGES else "id"


def _fmt(v: Any, lang: str, digits: int = 0) -> str:
    if not isinstance(v, (int, float)) or not math.isfinite(v):
        return "—"
    return number(v, lang, digits)


def _page(request: Request, template: str, status: int = 200, **ctx: Any) -> HTMLResponse:
    lg = lang_of(request)
    base = {"_": translator(lg), "lang": lg, "languages": LANGUAGES, "fmt": _fmt,
            "quality_word": lambda q: QUALITY.get(q or "", q or "—"),
            "path": quote(request.url.path + (("?" + request.url.query)
                                              if request.url.query else ""), safe="/?=&")}
    return HTMLResponse(_template(template).render(**base, **ctx), status_code=status)


def _signed_in_page(request: Request, build: Any) -> Any:
    """Run ``build(session, user, web_session)``; not signed in → the sign-in page (and back)."""
    def run() -> Any:
        with request.app.state.sessions() as s:
            try:
                user, ws = session_user(request, s)
            except ApiError as err:
                if err.status == 401:
                    return None
                raise
            return build(s, user, ws)

    return run


async def _html(request: Request, build: Any) -> Response:
    out = await run_in_threadpool(_signed_in_page(request, build))
    if out is None:
        return RedirectResponse("/login?next=" + quote(str(request.url.path), safe="/"),
                                status_code=303)
    template, status, ctx = out
    return _page(request, template, status, **ctx)


#: the refusals a page shows, in the page's language
REFUSALS = {403: N_("The review pages are for doctors."),
            404: N_("No such screening in your facilities.")}


def _forbidden(err: ApiError) -> tuple[str, int, dict]:
    return "message.html", err.status, {"title": err.status,
                                        "message": REFUSALS.get(err.status, err.message)}


@router.get("/review", response_class=HTMLResponse, include_in_schema=False)
async def queue_page(request: Request, facility: str = "", urgency: str = "", label: str = "",
                     date_from: str = "", date_to: str = "", status: str = "open") -> Response:
    status = status if status in ("open", "reviewed", "all") else "open"
    fac = int(facility) if facility.isdigit() else None

    def build(s: Any, user: Any, ws: Any) -> tuple[str, int, dict]:
        try:
            q = rd.queue(s, user, facility=fac, urgency=urgency or None, label=label or None,
                         date_from=date_from or None, date_to=date_to or None, status=status,
                         remote=_remote(request))
        except ApiError as err:
            s.commit()
            return _forbidden(err)
        s.commit()
        return "review/queue.html", 200, {
            **q, "user": user, "csrf": ws.csrf, "urgencies": list(rd.URGENCY_ORDER),
            "label_options": list(rd.SUPERCLASSES) + ["AFIB", "AFLT", "3AVB", "SBRAD", "STACH",
                                                      "1AVB", "LNGQT", "abnormal",
                                                      "borderline", "high risk"],
            "f": {"facility": fac, "urgency": urgency, "label": label, "date_from": date_from,
                  "date_to": date_to, "status": status}}

    return await _html(request, build)


def _intervals_rows(scr: dict, sex: str | None, lang: str, _: Any) -> list[dict]:
    iv = scr.get("intervals") or {}
    ranges = normal_ranges(sex)
    names = [("hr_bpm", _("Heart rate"), "bpm"), ("rr_ms", "RR", "ms"), ("pr_ms", "PR", "ms"),
             ("qrs_ms", "QRS", "ms"), ("qt_ms", "QT", "ms"),
             ("qtc_bazett_ms", "QTc (Bazett)", "ms"), ("qtc_fridericia_ms", "QTc (Fridericia)",
                                                       "ms"), ("st_ms", "ST", "ms"),
             ("rs_ratio", "R/S", "")]
    out = []
    for key, name, unit in names:
        v = iv.get(key)
        lo, hi = ranges.get(key, (None, None))
        flag = ""
        if isinstance(v, (int, float)) and lo is not None:
            flag = "low" if v < lo else "high" if v > hi else "ok"
        out.append({"key": key, "name": name, "unit": unit,
                    "value": _fmt(v, lang, 2 if key == "rs_ratio" else 0),
                    "range": range_text(lo, hi, lang) if lo is not None else "—", "flag": flag,
                    "reason": (iv.get("reasons") or {}).get(key)})
    return out


@router.get("/review/screening/{sid}", response_class=HTMLResponse, include_in_schema=False)
async def screening_page(request: Request, sid: int) -> Response:
    lang = lang_of(request)

    def build(s: Any, user: Any, ws: Any) -> tuple[str, int, dict]:
        _ = translator(lang)
        try:
            scr = rd.doctor_screening(s, user, sid, _remote(request))
        except ApiError as err:
            s.commit()
            return _forbidden(err)
        versions = [rd.verdict_dict(v) for v in rd.verdicts_of(s, scr.id)]
        if versions:  # reviewed: locked only when a doctor starts a correction
            from detak.server.review_models import ReviewLock

            lock = s.get(ReviewLock, scr.id)
            if lock is not None and lock.expires_at <= rd._now():
                lock = None
            mine = lock is not None and lock.user_id == user.id
        else:
            lock = rd.take_lock(s, user, scr)
            mine = lock.user_id == user.id
            if mine:
                audit(s, f"user:{user.id}", "review.lock", object_kind="screening",
                      object_id=scr.id, facility_id=scr.facility_id, remote=_remote(request))
        q = rd.queue(s, user, remote=_remote(request))
        prev_id, next_id = rd.neighbours(q["rows"], scr.id)
        from detak.server.models import Facility, Resident

        res = s.get(Resident, scr.resident_id) if scr.resident_id else None
        fac = s.get(Facility, scr.facility_id)
        d = scr.screening or {}
        hist = rd.history(s, scr)
        s.commit()
        mi = d.get("mi") or {}
        probs = [{"cls": c, "p": (mi.get("probabilities") or {}).get(c),
                  "op": ((mi.get("thresholds") or {}).get(c) or {}).get("operating"),
                  "refer": ((mi.get("thresholds") or {}).get(c) or {}).get("refer")}
                 for c in rd.SUPERCLASSES]
        return "review/screening.html", 200, {
            "user": user, "csrf": ws.csrf, "scr": scr, "s": d, "resident": res,
            "facility": fac.name if fac else "", "lock": lock, "mine": mine,
            "prev_id": prev_id, "next_id": next_id, "versions": versions, "history": hist,
            "history_json": json.dumps(hist), "probs": probs,
            "intervals": _intervals_rows(d, res.sex if res else None, lang, _),
            "rhythm_rows": finding_rows(d.get("rhythm"), lang),
            "rhythm_features": feature_rows(d.get("rhythm"), lang),
            "proposed": versions[0]["labels"] if versions else rd.proposed_labels(d),
            "superclasses": rd.SUPERCLASSES, "rhythms": rd.RHYTHMS,
            "actions": [("none", _("no action")), ("routine", _("routine follow-up")),
                        ("cardiology", _("refer to cardiology")), ("urgent", _("urgent"))],
            "lrp": rd.lrp_available(),
            "fiducials_json": json.dumps(d.get("fiducials") or {}),
            "cam_json": json.dumps((mi.get("cam")) or None),
            "cam_empty": rd.mi_map_empty(mi.get("cam"))}

    return await _html(request, build)


@router.get("/review/lang/{code}", include_in_schema=False)
async def set_lang(code: str, next: str = "/review") -> Response:
    target = next if _local_path(next) else "/review"
    resp = RedirectResponse(target, status_code=303)
    if code in LANGUAGES:
        resp.set_cookie(LANG_COOKIE, code, max_age=365 * 86400, samesite="strict", path="/")
    return resp


@router.get("/review/static/{name}", include_in_schema=False)
async def static(name: str) -> FileResponse:
    if name not in STATIC:
        raise ApiError(404, "not_found", "no such file")
    return FileResponse(HERE / "static" / name, media_type=STATIC[name],
                        headers={"Cache-Control": "no-cache"})


# ---------------------------------------------------------------------------- the JSON API
def _json(request: Request, fn: Any, *, csrf: bool = False) -> Any:
    def run() -> Any:
        with request.app.state.sessions() as s:
            user, _ws = session_user(request, s, csrf=csrf)
            out = fn(s, user)
            s.commit()
            return out

    return run


@router.get("/api/v1/review/screenings/{sid}")
async def screening_json(request: Request, sid: int) -> JSONResponse:
    """The screening record, its verdict versions and the lock (doctor of its facility)."""
    def fn(s: Any, user: Any) -> dict:
        scr = rd.doctor_screening(s, user, sid, _remote(request))
        from detak.server.review_models import ReviewLock

        lk = s.get(ReviewLock, scr.id)
        return {"id": scr.id, "uuid": scr.uuid, "facility_id": scr.facility_id,
                "created_at": scr.created_at, "screening": scr.screening,
                "verdicts": [rd.verdict_dict(v) for v in rd.verdicts_of(s, scr.id)],
                "proposed_labels": rd.proposed_labels(scr.screening or {}),
                "lock": None if lk is None else {"by": lk.user_name,
                                                 "expires_at": lk.expires_at.isoformat()}}

    return JSONResponse(await run_in_threadpool(_json(request, fn)))


@router.get("/api/v1/review/screenings/{sid}/samples")
async def samples_json(request: Request, sid: int) -> JSONResponse:
    """The recording in mV (one list per lead) and the per-lead relevance from the CAM."""
    def fn(s: Any, user: Any) -> dict:
        scr = rd.doctor_screening(s, user, sid, _remote(request), action="screening.samples")
        out = rd.read_samples(request.app.state.store, scr)
        out["relevance"] = rd.lead_relevance(out, scr.screening or {})
        out["lrp_available"] = rd.lrp_available()
        return out

    return JSONResponse(await run_in_threadpool(_json(request, fn)),
                        headers={"Cache-Control": "private, no-store"})


@router.get("/api/v1/review/screenings/{sid}/lrp")
async def lrp_json(request: Request, sid: int) -> JSONResponse:
    """Per-lead relevance of MI by LRP of the torch edge model, on request (host extra only:
    501 ``lrp_unavailable`` otherwise)."""
    def fn(s: Any, user: Any) -> dict:
        scr = rd.doctor_screening(s, user, sid, _remote(request), action="screening.lrp")
        rec = rd.read_recording(request.app.state.store, scr)
        return rd.lrp_relevance(rec)

    return JSONResponse(await run_in_threadpool(_json(request, fn)),
                        headers={"Cache-Control": "private, no-store"})


@router.post("/api/v1/review/screenings/{sid}/lock")
async def renew_lock(request: Request, sid: int) -> JSONResponse:
    """Take or renew the lock (the page calls it every few minutes while open)."""
    def fn(s: Any, user: Any) -> dict:
        scr = rd.doctor_screening(s, user, sid, _remote(request), action="review.lock")
        lk = rd.take_lock(s, user, scr)
        return {"mine": lk.user_id == user.id, "by": lk.user_name,
                "expires_at": lk.expires_at.isoformat()}

    return JSONResponse(await run_in_threadpool(_json(request, fn, csrf=True)))


@router.post("/api/v1/review/screenings/{sid}/unlock")
async def unlock(request: Request, sid: int) -> JSONResponse:
    """Release the caller's lock (the page leaves without signing)."""
    def fn(s: Any, user: Any) -> dict:
        scr = rd.doctor_screening(s, user, sid, _remote(request), action="review.unlock")
        rd.release_lock(s, user, scr)
        return {"status": "ok"}

    return JSONResponse(await run_in_threadpool(_json(request, fn, csrf=True)))


@router.post("/api/v1/review/screenings/{sid}/verdict", status_code=201)
async def sign(request: Request, sid: int) -> JSONResponse:
    """Sign a verdict: ``{"labels": [...], "action": "none|routine|cardiology|urgent",
    "note": "...", "password": "...", "previous_version": 0}`` (0 for the first; the version
    being corrected otherwise). 201 with the signed version."""
    raw = await read_limited(request, 32 << 10)
    try:
        body = json.loads(raw)
        assert isinstance(body, dict)
    except (ValueError, AssertionError):
        raise ApiError(400, "bad_json", "the body is not a JSON object") from None

    def fn(s: Any, user: Any) -> dict:
        scr = rd.doctor_screening(s, user, sid, _remote(request), action="verdict.open")
        labels = body.get("labels")
        v = rd.sign_verdict(
            s, user, scr, labels=labels if isinstance(labels, list) else [],
            action=str(body.get("action") or ""), note=str(body.get("note") or ""),
            password=str(body.get("password") or ""),
            previous_version=int(body.get("previous_version") or 0),
            remote=_remote(request))
        return rd.verdict_dict(v)

    return JSONResponse(await run_in_threadpool(_json(request, fn, csrf=True)),
                        status_code=201)
