"""The kiosk app: the pages a nurse touches (FastAPI + Jinja2 + a little plain JS; every asset
in the package, nothing from the network).

Flow (one decision per screen): sign in (name + PIN) → resident (search or register; history
with HR/QTc trend) → device → electrode placement → record 10 s with a live trace → quality
verdict (retake) or results (intervals with normal ranges, rhythm, MI probability with the CAM
over the ECG, urgency) → save (queued for sync) → print/PDF. URLs carry only store ids, never a
resident's name (uvicorn's access log prints URLs).

>>> import tempfile
>>> from fastapi.testclient import TestClient
>>> client = TestClient(create_app(tempfile.mkdtemp(), load_model=False))
>>> r = client.get("/healthz")
>>> r.status_code, r.json()["status"], r.json()["pending_sync"]
(200, 'ok', 0)
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from detak.kiosk.i18n import DEFAULT_LANGUAGE, LANGUAGES, N_, check_language, number, translator
from detak.kiosk.verdict_text import action_text

HERE = Path(__file__).parent
COOKIE, LANG_COOKIE = "detak_session", "detak_lang"
TRAINING_DEVICE = "emu://ptbxl/1?speed=1"
MAX_KEPT_JOBS = 8        # finished recordings kept in memory (results not yet saved)

#: the measurements shown with their normal range; the ranges are the rule sets' own
#: (`detak.kiosk.report_pdf.normal_ranges`: the limits the labels used, as on the PDF report)
MEASURES: tuple[tuple[str, str, str], ...] = (
    ("hr_bpm", N_("Heart rate"), "bpm"),
    ("pr_ms", N_("PR interval"), "ms"),
    ("qrs_ms", N_("QRS duration"), "ms"),
    ("qt_ms", N_("QT interval"), "ms"),
    ("qtc_bazett_ms", N_("QTc (Bazett)"), "ms"),
    ("st_ms", N_("ST segment"), "ms"),
)


def _is_training(url: str) -> bool:
    return url.startswith("emu://")


def create_app(store_dir: str | Path, *, device: str | list[str] | None = None,
               lang: str = DEFAULT_LANGUAGE,
               load_model: bool = True, discover: Any = None,
               facility: str | None = None,
               sync_interval_s: float | None = 30.0) -> FastAPI:
    """The kiosk app over the store at ``store_dir``; ``device``: the configured device URL
    (the training device, the emulator, is offered beside it); ``lang``: the default
    language (``device`` may be a list: the nurse chooses). ``load_model`` loads the int8
    model at start (the first screening is then quick; False for tests that never screen).
    ``discover``: the coroutine function behind "Find devices" (default `detak devices`
    discovery, `detak.kiosk.devices.scan_devices`; tests inject one: no BLE scan).
    ``facility``: the facility's name; it and the signed-in nurse's name are stored with each
    saved screening (``facility``, ``nurse``) and shown in its report's header.
    While the app runs, `detak.sync.background.BackgroundSync` sends the outbox to the
    server the store is enrolled with, looking every ``sync_interval_s`` (None: no sync)."""
    from detak.kiosk.acquire import without_practice_faults
    from detak.kiosk.live import RecordingJob
    from detak.kiosk.store import Store
    from detak.kiosk.store_errors import DuplicateError, NotFoundError, NurseLockedError, StoreError
    from detak.kiosk.web_session import load_secret, sign, verify

    check_language(lang)
    store = Store.open(store_dir)
    lock = threading.RLock()  # re-entrant: a page rendered inside db() reads the outbox
    secret = load_secret(store.root)
    model_info: dict[str, Any] = {"model": None, "bundle": None}
    if load_model:
        from detak.kiosk.screening import _bundle_of, load_screening_model

        loaded = load_screening_model("edge")
        model_info = {"model": f"{loaded.name} {loaded.precision} {loaded.runtime}",
                      "bundle": _bundle_of(Path(loaded.folder))}
    devices = [device] if isinstance(device, str) else list(device or [])
    if not any(_is_training(d) for d in devices):
        devices.append(TRAINING_DEVICE)
    configured = set(devices)
    found_names: dict[str, Any] = {}     # url -> FoundDevice: what discovery found
    if discover is None:
        from detak.kiosk.devices import scan_devices as discover
    jobs: dict[str, RecordingJob] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        syncer = None
        if sync_interval_s is not None:
            from detak.sync.background import BackgroundSync

            syncer = BackgroundSync(store.root, interval_s=sync_interval_s).start()
        app.state.sync = syncer
        yield
        if syncer is not None:
            await asyncio.to_thread(syncer.stop)

    app = FastAPI(title="detak kiosk", docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=lifespan)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    templates = Jinja2Templates(directory=HERE / "templates")
    app.state.store = store

    @contextmanager
    def db() -> Iterator[Any]:
        with lock:
            yield store

    def lang_of(request: Request) -> str:
        c = request.cookies.get(LANG_COOKIE)
        return c if c in LANGUAGES else lang

    def nurse_of(request: Request) -> int | None:
        return verify(secret, request.cookies.get(COOKIE))

    def page(request: Request, template: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        lg = lang_of(request)
        with db() as st:
            sync = st.sync_status()
        base = {"_": translator(lg), "lang": lg, "languages": LANGUAGES,
                "pending": sync["pending"], "last_sync": local_time(sync["last_sync_at"], lg)
                if sync["last_sync_at"] else None, "signed_in": nurse_of(request) is not None,
                "num": lambda v, d=0: number(v, lg, d), "when": lambda t: local_time(t, lg),
                "action_text": action_text, "path": request.url.path,
                "sync_busy_s": _busy_s(request)}
        return templates.TemplateResponse(request, template, {**base, **ctx},
                                          status_code=status)

    def _busy_s(request: Request) -> int | None:
        """Seconds until the background sync tries a busy server again (None: not busy)."""
        syncer = getattr(request.app.state, "sync", None)
        busy = syncer.busy_for_s() if syncer is not None else None
        return None if busy is None else int(busy + 0.5)

    async def form(request: Request) -> dict[str, str]:
        body = (await request.body()).decode("utf-8", "replace")
        return {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}

    def go(url: str) -> RedirectResponse:
        return RedirectResponse(url, status_code=303)

    def need_nurse(request: Request) -> RedirectResponse | None:
        return None if nurse_of(request) is not None else go("/login")

    def message(request: Request, title: str, text: str, status: int = 404,
                back: str = "/residents") -> HTMLResponse:
        return page(request, "message.html", status=status, title=title, text=text, back=back)

    # ------------------------------------------------------------------ health, language
    @app.get("/healthz")
    def healthz(request: Request) -> JSONResponse:
        with db() as st:
            sync = st.sync_status()
        return JSONResponse({"status": "ok", "store": str(store.root), **model_info,
                             "pending_sync": sync["pending"], "last_sync": sync["last_sync_at"],
                             "failed_sync": sync["failed"], "sync_error": sync["last_error"],
                             "sync_busy_s": _busy_s(request)})

    @app.get("/lang/{code}")
    def set_lang(code: str, request: Request, next: str = "/") -> Response:
        resp = go(next if next.startswith("/") and not next.startswith("//") else "/")
        if code in LANGUAGES:
            resp.set_cookie(LANG_COOKIE, code, max_age=365 * 86400, samesite="strict")
        return resp

    # ------------------------------------------------------------------ sign-in
    @app.get("/")
    def home(request: Request) -> Response:
        return go("/residents" if nurse_of(request) is not None else "/login")

    @app.get("/login")
    def login_page(request: Request) -> HTMLResponse:
        return page(request, "login.html", error=None, name="")

    @app.post("/login")
    async def login(request: Request) -> Response:
        f = await form(request)
        _ = translator(lang_of(request))
        name, pin = f.get("name", "").strip(), f.get("pin", "")
        try:
            with db() as st:
                nid = st.verify_nurse(name, pin) if name and pin else None
        except NurseLockedError as exc:
            until = exc.until.astimezone().strftime("%H:%M")
            err = _("Too many wrong PINs. Sign-in is locked until {time}. Wait, then try "
                    "again, or ask another nurse to sign in.").format(time=until)
            return page(request, "login.html", status=403, error=err, name=name)
        if nid is None:
            err = _("That name and PIN do not match. Check the name and type the PIN again.")
            return page(request, "login.html", status=401, error=err, name=name)
        resp = go("/residents")
        resp.set_cookie(COOKIE, sign(secret, nid), httponly=True, samesite="strict")
        return resp

    @app.post("/logout")
    def logout() -> Response:
        resp = go("/login")
        resp.delete_cookie(COOKIE)
        return resp

    # ------------------------------------------------------------------ residents
    @app.get("/residents")
    def residents(request: Request) -> Response:
        if (r := need_nurse(request)) is not None:
            return r
        return page(request, "residents.html", q="", found=[], searched=False)

    @app.post("/residents")
    async def search_residents(request: Request) -> Response:
        """The search is a POST: a name typed in it never lands in a URL (access logs)."""
        if (r := need_nurse(request)) is not None:
            return r
        q = (await form(request)).get("q", "")
        with db() as st:
            found = st.find_residents(q, limit=20) if q.strip() else []
        return page(request, "residents.html", q=q, found=found, searched=bool(q.strip()))

    @app.get("/residents/new")
    def new_resident_page(request: Request) -> Response:
        if (r := need_nurse(request)) is not None:
            return r
        return page(request, "resident_new.html", error=None, f={})

    @app.post("/residents/new")
    async def new_resident(request: Request) -> Response:
        if (r := need_nurse(request)) is not None:
            return r
        f = await form(request)
        _ = translator(lang_of(request))
        try:
            with db() as st:
                rid = st.add_resident(f.get("name", ""), f.get("number", ""),
                                      birth_date=f.get("birth_date") or None,
                                      sex=f.get("sex") or None, room=f.get("room") or None)
        except DuplicateError:
            err = _("That resident number is already registered. Search for it instead, or "
                    "check the number.")
            return page(request, "resident_new.html", status=409, error=err, f=f)
        except StoreError:
            err = _("Please fill in the name and the resident number; the birth date must be "
                    "a past date.")
            return page(request, "resident_new.html", status=400, error=err, f=f)
        return go(f"/residents/{rid}")

    def _resident(rid: int) -> dict[str, Any] | None:
        with db() as st:
            try:
                return st.get_resident(rid)
            except NotFoundError:
                return None

    @app.get("/residents/{rid}")
    def resident(request: Request, rid: int) -> Response:
        if (r := need_nurse(request)) is not None:
            return r
        res = _resident(rid)
        if res is None:
            _ = translator(lang_of(request))
            return message(request, _("Resident not found"),
                           _("Search for the resident again."))
        from detak.kiosk.ecg_svg import trend_svg

        with db() as st:
            history = st.list_screenings(resident_id=rid, limit=20)
            for h in history:  # the doctors' newest verdict, once synced back
                h["verdict"] = next(iter(st.verdicts_for(h["id"])), None)
        oldest_first = list(reversed(history))
        hr = trend_svg([(h["created_at"], (h["screening"].get("intervals") or {}).get("hr_bpm"))
                        for h in oldest_first])
        qtc = trend_svg([(h["created_at"],
                          (h["screening"].get("intervals") or {}).get("qtc_bazett_ms"))
                         for h in oldest_first])
        return page(request, "resident.html", r=res, history=history, hr_svg=hr, qtc_svg=qtc)

    # ------------------------------------------------------------------ device, placement
    @app.get("/residents/{rid}/device")
    async def choose_device(request: Request, rid: int, scan: int = 0) -> Response:
        """The configured devices and the training device; "Find devices" (``scan=1``) adds
        what `detak devices` discovery finds (USB serial ECGs, BLE ECGs with a profile)."""
        if (r := need_nurse(request)) is not None:
            return r
        scan_error = None
        if scan:
            from detak.kiosk.devices import discovered

            found = await discover()
            scan_error = found.get("ble_error")
            with lock:
                for d in discovered(found):
                    found_names[d.url] = d
                    if d.url not in devices:
                        devices.append(d.url)
        listed = [(i, d, _is_training(d), found_names.get(d)) for i, d in enumerate(devices)
                  if d in configured or d in found_names]
        return page(request, "device.html", rid=rid, devices=listed, scanned=bool(scan),
                    scan_error=scan_error,
                    n_found=sum(1 for d in devices if d in found_names and d not in configured))

    @app.get("/residents/{rid}/place")
    def placement(request: Request, rid: int, dev: int = 0, leads: str = "",
                  retake: int = 0) -> Response:
        if (r := need_nurse(request)) is not None:
            return r
        url = devices[dev] if 0 <= dev < len(devices) else devices[0]
        kind = leads if leads in ("1", "3", "12") else ("12" if _is_training(url) else "3")
        return page(request, "place.html", rid=rid, dev=dev, kind=kind,
                    training=_is_training(url), n_devices=len(devices), retake=retake == 1)

    # ------------------------------------------------------------------ recording
    @app.post("/residents/{rid}/record")
    async def start_record(request: Request, rid: int) -> Response:
        if (r := need_nurse(request)) is not None:
            return r
        f = await form(request)
        res = _resident(rid)
        if res is None:
            return go("/residents")
        try:
            dev = int(f.get("dev", "0"))
        except ValueError:
            dev = 0
        url = devices[dev] if 0 <= dev < len(devices) else devices[0]
        if f.get("retake") == "1":          # "record again" after a reject: on the training
            url = without_practice_faults(url)  # device the nurse has fixed what it showed
        job = RecordingJob(url, resident_id=rid, lang=lang_of(request), sex=res.get("sex"),
                           dev_index=dev)
        finished = [k for k, j in jobs.items() if j.state in ("done", "cancelled", "failed")]
        for old in finished[:-MAX_KEPT_JOBS]:       # oldest first: keep the last few results
            jobs.pop(old, None)
        jobs[job.id] = job.start()
        return go(f"/record/{job.id}")

    def _job(request: Request, jid: str) -> Any:
        return jobs.get(jid)

    @app.get("/record/{jid}")
    def record_page(request: Request, jid: str) -> Response:
        if (r := need_nurse(request)) is not None:
            return r
        job = _job(request, jid)
        if job is None:
            return go("/residents")
        return page(request, "record.html", job=job)

    @app.get("/record/{jid}/events")
    async def record_events(request: Request, jid: str) -> Response:
        if nurse_of(request) is None:
            return PlainTextResponse("sign in first", status_code=401)
        job = _job(request, jid)
        if job is None:
            return PlainTextResponse("no such recording", status_code=404)

        async def stream() -> Any:
            cursor = 0
            while True:
                msg = job.trace_since(cursor)
                cursor = msg["cursor"]
                yield f"data: {json.dumps(msg)}\n\n"
                if msg["state"] in ("done", "failed", "cancelled"):
                    return
                if await request.is_disconnected():
                    return
                await asyncio.sleep(0.1)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    @app.post("/record/{jid}/cancel")
    def cancel(request: Request, jid: str) -> Response:
        job = _job(request, jid)
        if job is None:
            return go("/residents")
        job.cancel()
        return go(f"/residents/{job.resident_id}/place?dev={job.dev_index}")

    @app.get("/record/{jid}/result")
    def result(request: Request, jid: str) -> Response:
        if (r := need_nurse(request)) is not None:
            return r
        job = _job(request, jid)
        if job is None:
            return go("/residents")
        if job.saved_id:
            return go(f"/screenings/{job.saved_id}")
        if job.state in ("starting", "recording", "screening"):
            return go(f"/record/{jid}")
        _ = translator(lang_of(request))
        if job.state != "done":
            text = _("The recording stopped before it was complete. Check that the device is "
                     "switched on and connected, then record again.")
            return page(request, "reject.html", job=job, reasons=[text], details=[job.error],
                        title=_("Recording did not finish"))
        s = job.screening
        if s["quality"]["verdict"] == "reject":
            from detak.kiosk.quality_text import quality_texts

            plain, details = quality_texts(s["quality"], lang_of(request),
                                           job.electrodes_off_seen)
            return page(request, "reject.html", job=job, reasons=plain, details=details,
                        title=_("Recording quality: rejected"))
        return _result_page(request, s, job.recording, job=job, saved_id=None)

    @app.post("/record/{jid}/save")
    def save(request: Request, jid: str) -> Response:
        if (r := need_nurse(request)) is not None:
            return r
        job = _job(request, jid)
        if job is None or job.screening is None:
            return go("/residents")
        from detak.kiosk.screen_cli import render_report

        with db() as st:        # under the lock: a double tap on Save saves once
            if job.saved_id is None:
                data = {**job.screening, "nurse": st.nurse_name(nurse_of(request)),
                        "facility": " ".join((facility or "").split()) or None}
                pdf = render_report(data, job.recording, _resident(job.resident_id))
                job.saved_id = st.save_screening(data, job.recording, pdf,
                                                 resident_id=job.resident_id)
        return go(f"/screenings/{job.saved_id}")

    def _result_page(request: Request, s: dict[str, Any], rec: Any, *, job: Any,
                     saved_id: str | None) -> HTMLResponse:
        from detak.kiosk.ecg_svg import ecg_with_cam

        _ = translator(lang_of(request))
        from detak.kiosk.ranges import normal_ranges, range_text

        iv = s.get("intervals") or {}
        ranges = normal_ranges((s.get("rhythm") or {}).get("sex"))
        rows = []
        for key, label, unit in MEASURES:
            v = iv.get(key)
            lo, hi = ranges.get(key, (float("-inf"), float("inf")))
            flag = None if v is None else ("low" if v < lo else "high" if v > hi else None)
            shown = ("—" if lo == float("-inf") and hi == float("inf")
                     else f"{range_text(lo, hi, lang_of(request))} {unit}")
            rows.append({"label": _(label), "value": v, "range": shown, "unit": unit,
                         "flag": flag})
        mi = s.get("mi")
        svg = ecg_with_cam(rec, (mi or {}).get("cam"), label=_("12-lead ECG")) if rec else ""
        from detak.kiosk import urgency as urg
        from detak.kiosk.quality_text import quality_texts

        q = s.get("quality") or {}
        q_notes = quality_texts(q, lang_of(request))[0] if q.get("verdict") == "warn" else []
        from detak.kiosk.rhythm_text import finding_rows

        rhythm = s.get("rhythm") or {}
        return page(request, "result.html", s=s, rows=rows, mi=mi, ecg_svg=svg, job=job,
                    quality_notes=q_notes, rhythm_rows=finding_rows(rhythm, lang_of(request)),
                    rhythm_new="interval_findings" in rhythm,
                    saved_id=saved_id, level_meaning=urg.LEVEL_MEANING,
                    s3_risk=urg.S3_RISK_LABELS, s3_explained=urg.S3_EXPLAINED,
                    s3_beside_no_finding=urg.S3_BESIDE_NO_FINDING)

    @app.get("/screenings/{sid}")
    def saved(request: Request, sid: str) -> Response:
        if (r := need_nurse(request)) is not None:
            return r
        _ = translator(lang_of(request))
        with db() as st:
            try:
                s = st.get_screening(sid)
                rec = st.load_recording(sid)
            except NotFoundError:
                return message(request, _("Screening not found"),
                               _("Open the resident and choose the screening again."))
        return _result_page(request, s, rec, job=None, saved_id=sid)

    @app.get("/screenings/{sid}/report")
    def report_page(request: Request, sid: str) -> Response:
        """The report inside the app (kiosk-mode Chromium has no back button: a PDF opened on
        its own would leave the nurse stuck), with Print and Back."""
        if (r := need_nurse(request)) is not None:
            return r
        _ = translator(lang_of(request))
        with db() as st:
            try:
                path = st.report_path(sid)
            except NotFoundError:
                return message(request, _("Screening not found"),
                               _("Open the resident and choose the screening again."))
        if path is None or not Path(path).is_file():
            return message(request, _("No report yet"),
                           _("There is no PDF report for this screening yet. The screening "
                             "itself is saved; ask the administrator to create the report."),
                           back=f"/screenings/{sid}")
        return page(request, "report.html", sid=sid)

    previews: dict[str, bytes] = {}

    @app.get("/screenings/{sid}/report.png")
    def report_png(request: Request, sid: str) -> Response:
        """The report page as a picture (the same figure as the PDF): headless and kiosk-mode
        Chromium may draw an embedded PDF black."""
        if nurse_of(request) is None:
            return go("/login")
        if sid not in previews:
            from detak.kiosk.screen_cli import render_report_png

            with db() as st:
                try:
                    s, rec = st.get_screening(sid), st.load_recording(sid)
                except NotFoundError:
                    return PlainTextResponse("no such screening", status_code=404)
            rid = s.get("resident_id")
            png = render_report_png(s, rec, _resident(int(rid)) if str(rid).isdigit() else None)
            for old in list(previews)[:-3]:        # keep the last few pages in memory
                previews.pop(old, None)
            previews[sid] = png
        return Response(previews[sid], media_type="image/png",
                        headers={"Cache-Control": "private, max-age=3600"})

    @app.get("/screenings/{sid}/report.pdf")
    def report(request: Request, sid: str) -> Response:
        if nurse_of(request) is None:
            return go("/login")
        _ = translator(lang_of(request))
        with db() as st:
            try:
                path = st.report_path(sid)
            except NotFoundError:
                path = None
        if path is None or not Path(path).is_file():
            return PlainTextResponse(_("There is no PDF report for this screening yet. The "
                                       "screening itself is saved; ask the administrator to "
                                       "create the report."), status_code=404)
        return FileResponse(path, media_type="application/pdf")

    return app


def local_time(iso: str, lang: str) -> str:
    """A stored UTC time in the kiosk's local time, in the locale's words.

    >>> local_time("2026-12-07T14:30:00+00:00", "en").startswith("Dec 7, 2026")
    True
    """
    from datetime import datetime

    from babel.dates import format_date, format_time

    t = datetime.fromisoformat(str(iso).replace("Z", "+00:00")).astimezone()
    return f"{format_date(t, 'medium', locale=lang)} {format_time(t, 'short', locale=lang)}"
