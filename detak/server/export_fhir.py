"""``detak server export``: every screening as a minimal FHIR R4 Bundle plus its WFDB files.

For each screening ``OUT/<uuid>/`` holds ``bundle.json`` (a FHIR R4 ``collection`` Bundle: a
Patient — the resident, identified by facility and resident number —, one Observation per
measured interval with its UCUM unit, and a DiagnosticReport that links them and presents the
PDF report when there is one) and the recording's ``<name>.hea`` / ``<name>.dat`` copied byte for
byte from the content store (their SHA-256 equal to the kiosk's), plus ``report.pdf``. The
complete FHIR mapping belongs to the review issue; this is the minimal valid structure.

>>> b = fhir_bundle({"uuid": "ab" * 16, "created_at": "2026-12-07T08:00:00Z",
...                  "received_at": "2026-12-07T09:00:00+00:00", "facility": "Wisma",
...                  "screening": {"intervals": {"hr_bpm": 72.0}}, "resident": None})
>>> b["resourceType"], [e["resource"]["resourceType"] for e in b["entry"]]
('Bundle', ['Observation', 'DiagnosticReport'])
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from detak.server.audit import audit
from detak.server.filestore import LocalFileStore
from detak.server.models import Facility, Resident, Screening

#: interval key → (LOINC code, display, UCUM unit)
MEASURES = {
    "hr_bpm": ("8867-4", "Heart rate", "/min"),
    "rr_ms": ("8637-5", "R-R interval by EKG", "ms"),
    "pr_ms": ("8625-6", "P-R Interval", "ms"),
    "qrs_ms": ("8633-4", "QRS duration", "ms"),
    "qt_ms": ("8634-2", "Q-T interval", "ms"),
    "qtc_bazett_ms": ("8636-7", "Q-T interval corrected", "ms"),
}
SYSTEM_RESIDENT = "urn:detak:resident-number"
SYSTEM_SCREENING = "urn:detak:screening"


def parse_since(text: str) -> datetime:
    """``YYYY-MM-DD`` or an ISO time → an aware UTC datetime.

    >>> parse_since("2026-12-01").isoformat()
    '2026-12-01T00:00:00+00:00'
    """
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"--since {text!r}: give YYYY-MM-DD or an ISO 8601 time") from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _intervals(screening: dict) -> dict:
    for key in ("intervals", "measurements"):
        if isinstance(screening.get(key), dict):
            return screening[key]
    return screening


def _fhir_time(text: str | None) -> str | None:
    if not text:
        return None
    try:
        t = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).isoformat()


def fhir_bundle(row: dict[str, Any]) -> dict:
    """The FHIR R4 collection Bundle of one exported screening ``row``."""
    uid = row["uuid"]
    when = _fhir_time(row["created_at"]) or _fhir_time(row["received_at"])
    entries: list[dict] = []
    subject = None
    res = row.get("resident")
    if res:
        pid = f"urn:uuid:{uid[:8]}-{uid[8:12]}-{uid[12:16]}-{uid[16:20]}-{uid[20:]}-p"
        patient = {"resourceType": "Patient",
                   "identifier": [{"system": SYSTEM_RESIDENT,
                                   "value": f"{row['facility']}/{res['resident_number']}"}],
                   "name": [{"text": res["name"]}]}
        if res.get("sex") in ("F", "M"):
            patient["gender"] = "female" if res["sex"] == "F" else "male"
        if res.get("birth_date"):
            patient["birthDate"] = res["birth_date"]
        entries.append({"fullUrl": pid, "resource": patient})
        subject = {"reference": pid}
    results = []
    values = _intervals(row["screening"] or {})
    for i, (key, (loinc, display, unit)) in enumerate(MEASURES.items()):
        v = values.get(key)
        if not isinstance(v, int | float) or isinstance(v, bool) or v != v:
            continue
        oid = f"urn:detak:{uid}:obs:{i}"
        obs = {"resourceType": "Observation", "status": "final",
               "category": [{"coding": [{
                   "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                   "code": "procedure"}]}],
               "code": {"coding": [{"system": "http://loinc.org", "code": loinc,
                                    "display": display}], "text": key},
               "valueQuantity": {"value": v, "unit": unit, "system": "http://unitsofmeasure.org",
                                 "code": unit}}
        if subject:
            obs["subject"] = subject
        if when:
            obs["effectiveDateTime"] = when
        entries.append({"fullUrl": oid, "resource": obs})
        results.append({"reference": oid})
    report = {"resourceType": "DiagnosticReport", "status": "preliminary",
              "identifier": [{"system": SYSTEM_SCREENING, "value": uid}],
              "code": {"coding": [{"system": "http://loinc.org", "code": "11524-6",
                                   "display": "EKG study"}]},
              "result": results}
    if subject:
        report["subject"] = subject
    if when:
        report["effectiveDateTime"] = when
    label = (row["screening"] or {}).get("label") or (row["screening"] or {}).get("rule_label")
    if isinstance(label, str):
        report["conclusion"] = label[:500]
    if row.get("report_pdf"):
        report["presentedForm"] = [{"contentType": "application/pdf", "url": "report.pdf"}]
    entries.append({"fullUrl": f"urn:detak:{uid}:report", "resource": report})
    return {"resourceType": "Bundle", "type": "collection",
            "identifier": {"system": SYSTEM_SCREENING, "value": uid},
            "timestamp": _fhir_time(row["received_at"]), "entry": entries}


def export_screenings(session: Session, store: LocalFileStore, out: str | Path,
                      since: datetime | None = None) -> int:
    """Write every screening (received on/after ``since``) under ``out``; returns the count."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    q = (select(Screening, Facility.name, Resident).select_from(Screening)
         .join(Facility, Facility.id == Screening.facility_id)
         .outerjoin(Resident, Resident.id == Screening.resident_id).order_by(Screening.id))
    if since is not None:
        q = q.where(Screening.received_at >= since)
    n = 0
    for scr, fac, res in session.execute(q):
        folder = out / scr.uuid
        folder.mkdir(exist_ok=True)
        files = scr.files
        rec = files["recording"]
        for kind in ("hea", "dat"):
            shutil.copyfile(store.path(files[kind]["sha256"]), folder / f"{rec}.{kind}")
        pdf = files.get("report_pdf")
        if pdf:
            shutil.copyfile(store.path(pdf["sha256"]), folder / "report.pdf")
        row = {"uuid": scr.uuid, "created_at": scr.created_at,
               "received_at": scr.received_at.isoformat(), "facility": fac,
               "screening": scr.screening, "report_pdf": bool(pdf),
               "resident": None if res is None else {
                   "resident_number": res.resident_number, "name": res.name, "sex": res.sex,
                   "birth_date": res.birth_date.isoformat() if res.birth_date else None}}
        (folder / "bundle.json").write_text(json.dumps(fhir_bundle(row), indent=1,
                                                       ensure_ascii=False), encoding="utf-8")
        audit(session, "cli:export", "screening.export", object_kind="screening",
              object_id=scr.id, facility_id=scr.facility_id)
        n += 1
    return n
