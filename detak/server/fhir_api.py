"""``GET /fhir/...``: the FHIR R4 reads of screenings, for doctors and integration tokens.

Who may read: a signed-in **doctor** (the staff session cookie; the facilities assigned to
them) or an **integration** client with a bearer token (``Authorization: Bearer dtk_…``, from
``detak server create-token --facility NAME``; that one facility). Nurses and admins get 403;
another facility's resource is 404 (its existence is not disclosed). Every read is audited
(``fhir.read``: actor ``user:<id>`` or ``token:<id>``, the screening or resident id).

Reads (resources from `detak.server.fhir_build`, the same builder as ``detak server export``):

* ``GET /fhir/metadata`` — the CapabilityStatement (no sign-in needed);
* ``GET /fhir/Patient/res-<n>``;
* ``GET /fhir/Device/<uuid>-device``, ``GET /fhir/Observation/<uuid>-ecg`` (the waveform),
  ``…/<uuid>-hr|rr|pr|qrs|qt|qtc``, ``GET /fhir/DiagnosticReport/<uuid>``;
* ``GET /fhir/Bundle/<uuid>`` — the screening's collection Bundle (what the export writes);
* ``GET /fhir/DiagnosticReport?patient=res-<n>&_count=N`` — a ``searchset`` Bundle of reports,
  newest first.

The waveform is read from the content store only for ``Observation/<uuid>-ecg`` and the
Bundle; other reads reference it without loading it (a recording that cannot be read is left
out of the Bundle, and its ``-ecg`` read is 404).

Answers are ``application/fhir+json``; errors are an OperationOutcome with the HTTP status.

>>> r = outcome(404, "not_found", "no screening here")
>>> r.status_code, r.media_type
(404, 'application/fhir+json')
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from detak.server import accounts
from detak.server.audit import audit
from detak.server.errors import ApiError
from detak.server.export_fhir import fhir_bundle, load_recording, screening_row
from detak.server.fhir_build import patient, screening_resources
from detak.server.models import Facility, Resident, Screening
from detak.server.tokens import token_of
from detak.server.verdict_read import latest_verdicts
from detak.server.web import session_user

router = APIRouter(prefix="/fhir", tags=["fhir"])
MEDIA = "application/fhir+json"
_SCREENING_ID = re.compile(r"(?P<uid>[0-9a-f]{32})(?:-(?P<part>[a-z]{2,6}))?")
_PATIENT_ID = re.compile(r"res-(?P<n>[0-9]{1,12})")
TYPES = ("Patient", "Device", "Observation", "DiagnosticReport", "Bundle")


@dataclass
class Reader:
    """Who reads: the audit actor and the facility ids they may see."""

    actor: str
    facilities: set[int]
    remote: str | None


def reader(request: Request, s: Any) -> Reader:
    """The caller: a bearer token (integration) or a doctor's session; 401/403 otherwise."""
    remote = request.client.host if request.client else None
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        tok = token_of(s, auth[7:].strip())
        if tok is None:
            audit(s, "anonymous", "fhir.token_refused", remote=remote)
            s.commit()
            raise ApiError(401, "token_invalid", "the bearer token is unknown or revoked",
                           headers={"WWW-Authenticate": "Bearer"})
        return Reader(f"token:{tok.id}", {tok.facility_id}, remote)
    user, _ = session_user(request, s)
    if user.role != "doctor":
        raise ApiError(403, "forbidden", "FHIR reads are for doctors and integration tokens")
    return Reader(f"user:{user.id}", accounts.user_facilities(s, user) or set(), remote)


def outcome(status: int, code: str, message: str, headers: dict | None = None) -> JSONResponse:
    """An OperationOutcome answer."""
    issue = {404: "not-found", 401: "login", 403: "forbidden"}.get(status, "processing")
    return JSONResponse({"resourceType": "OperationOutcome",
                         "issue": [{"severity": "error", "code": issue,
                                    "details": {"text": message}, "diagnostics": code}]},
                        status_code=status, headers=headers, media_type=MEDIA)


async def _answer(request: Request, fn: Callable[[Any, Reader], dict]) -> JSONResponse:
    def run() -> dict:
        with request.app.state.sessions() as s:
            who = reader(request, s)
            out = fn(s, who)
            s.commit()
            return out

    try:
        return JSONResponse(await run_in_threadpool(run), media_type=MEDIA)
    except ApiError as err:
        return outcome(err.status, err.code, err.message, err.headers)


def _not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"no {what} here")


def _screening(s: Any, who: Reader, uid: str) -> tuple[Screening, str, Resident | None]:
    row = s.execute(select(Screening, Facility.name, Resident).select_from(Screening)
                    .join(Facility, Facility.id == Screening.facility_id)
                    .outerjoin(Resident, Resident.id == Screening.resident_id)
                    .where(Screening.uuid == uid)).first()
    if row is None or row[0].facility_id not in who.facilities:
        raise _not_found(f"screening {uid}")
    return row[0], row[1], row[2]


def _read_screening(request: Request, s: Any, who: Reader, uid: str, what: str,
                    waveform: bool) -> tuple[dict, Any]:
    scr, fac, res = _screening(s, who, uid)
    verdict = latest_verdicts(s, [scr.id]).get(scr.id)
    rec = load_recording(request.app.state.store, scr.files) if waveform else None
    audit(s, who.actor, "fhir.read", object_kind="screening", object_id=scr.id,
          facility_id=scr.facility_id, remote=who.remote, detail={"resource": what})
    row = screening_row(scr, fac, res, verdict)
    row["waveform"] = rec is not None or not waveform  # a server screening has its WFDB
    return row, rec


@router.get("/metadata")
async def metadata() -> JSONResponse:
    """The server's CapabilityStatement (FHIR 4.0.1, JSON, the reads above)."""
    return JSONResponse({
        "resourceType": "CapabilityStatement", "status": "active", "date": "2026-12-07",
        "kind": "instance", "fhirVersion": "4.0.1", "format": ["json"],
        "software": {"name": "detak clinic server"},
        "implementation": {"description": "detak screenings as FHIR R4 (read-only)"},
        "rest": [{"mode": "server",
                  "security": {"description": "a doctor's session or an integration bearer "
                                              "token (detak server create-token)"},
                  "resource": [{"type": t, "interaction": [{"code": "read"}]
                                + ([{"code": "search-type"}] if t == "DiagnosticReport"
                                   else []),
                                **({"searchParam": [{"name": "patient", "type": "reference"}]}
                                   if t == "DiagnosticReport" else {})}
                               for t in TYPES]}]}, media_type=MEDIA)


@router.get("/Patient/{pid}")
async def read_patient(request: Request, pid: str) -> JSONResponse:
    """One resident as a Patient."""
    def fn(s: Any, who: Reader) -> dict:
        m = _PATIENT_ID.fullmatch(pid)
        res = s.get(Resident, int(m["n"])) if m else None
        if res is None or res.facility_id not in who.facilities:
            raise _not_found(f"Patient {pid}")
        fac = s.get(Facility, res.facility_id)
        audit(s, who.actor, "fhir.read", object_kind="resident", object_id=res.id,
              facility_id=res.facility_id, remote=who.remote, detail={"resource": "Patient"})
        return patient({"id": res.id, "resident_number": res.resident_number, "name": res.name,
                        "sex": res.sex, "birth_date": res.birth_date}, fac.name)

    return await _answer(request, fn)


def _resource_reader(kind: str) -> Callable:
    async def read(request: Request, rid: str) -> JSONResponse:
        def fn(s: Any, who: Reader) -> dict:
            m = _SCREENING_ID.fullmatch(rid)
            if m is None or (kind == "DiagnosticReport") != (m["part"] is None):
                raise _not_found(f"{kind} {rid}")
            wave = kind == "Observation" and m["part"] == "ecg"
            row, rec = _read_screening(request, s, who, m["uid"], f"{kind}/{rid}", wave)
            for r in screening_resources(row, rec):
                if r["resourceType"] == kind and r["id"] == rid:
                    return r
            raise _not_found(f"{kind} {rid}")

        return await _answer(request, fn)

    read.__doc__ = f"One {kind} of a screening (id as in the module docstring)."
    return read


for _kind in ("Device", "Observation", "DiagnosticReport"):
    router.add_api_route(f"/{_kind}/{{rid}}", _resource_reader(_kind), methods=["GET"],
                         name=f"read_{_kind}")


@router.get("/Bundle/{uid}")
async def read_bundle(request: Request, uid: str) -> JSONResponse:
    """The screening's collection Bundle: every resource above, waveform included."""
    def fn(s: Any, who: Reader) -> dict:
        if _SCREENING_ID.fullmatch(uid) is None or "-" in uid:
            raise _not_found(f"Bundle {uid}")
        row, rec = _read_screening(request, s, who, uid, "Bundle", True)
        return fhir_bundle(row, rec)

    return await _answer(request, fn)


@router.get("/DiagnosticReport")
async def search_reports(request: Request, patient: str | None = None,
                         _count: int = 50) -> JSONResponse:
    """A searchset Bundle of the caller's DiagnosticReports (of one Patient when given)."""
    count = max(1, min(_count, 200))
    base = str(request.base_url).rstrip("/")

    def fn(s: Any, who: Reader) -> dict:
        q = (select(Screening, Facility.name, Resident).select_from(Screening)
             .join(Facility, Facility.id == Screening.facility_id)
             .outerjoin(Resident, Resident.id == Screening.resident_id)
             .where(Screening.facility_id.in_(who.facilities or {-1}))
             .order_by(Screening.id.desc()).limit(count))
        if patient is not None:
            m = _PATIENT_ID.fullmatch(patient.removeprefix("Patient/"))
            q = q.where(Screening.resident_id == (int(m["n"]) if m else -1))
        rows = s.execute(q).all()
        verdicts = latest_verdicts(s, [r[0].id for r in rows])
        entries = []
        for scr, fac, res in rows:
            row = {**screening_row(scr, fac, res, verdicts.get(scr.id)), "waveform": True}
            report = screening_resources(row)[-1]
            entries.append({"fullUrl": f"{base}/fhir/DiagnosticReport/{report['id']}",
                            "resource": report,
                            "search": {"mode": "match"}})
        audit(s, who.actor, "fhir.search", object_kind="screening",
              remote=who.remote, detail={"ids": [r[0].id for r in rows][:200]})
        return {"resourceType": "Bundle", "type": "searchset", "total": len(entries),
                "entry": entries}

    return await _answer(request, fn)
