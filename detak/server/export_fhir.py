"""``detak server export``: every screening as a FHIR R4 Bundle plus its WFDB files.

For each screening ``OUT/<uuid>/`` holds ``bundle.json`` (a FHIR R4 ``collection`` Bundle built
by `detak.server.fhir_build`, the same builder the server's ``GET /fhir/...`` uses: Patient,
Device, the waveform Observation (SampledData per lead), the interval Observations, and the
DiagnosticReport with the model's findings and, once signed, the doctor's conclusion) and the
recording's ``<name>.hea`` / ``<name>.dat`` copied byte for byte from the content store (their
SHA-256 equal to the kiosk's), plus ``report.pdf``.

>>> b = fhir_bundle({"uuid": "ab" * 16, "created_at": "2026-12-07T08:00:00Z",
...                  "received_at": "2026-12-07T09:00:00+00:00", "facility": "Wisma",
...                  "screening": {"intervals": {"hr_bpm": 72.0}}, "resident": None})
>>> b["resourceType"], [e["resource"]["resourceType"] for e in b["entry"]]
('Bundle', ['Observation', 'DiagnosticReport'])
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from detak.server.audit import audit
from detak.server.fhir_build import as_bundle, screening_resources
from detak.server.filestore import LocalFileStore
from detak.server.models import Facility, Resident, Screening
from detak.server.verdict_read import latest_verdicts


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


def fhir_bundle(row: dict[str, Any], recording: Any = None) -> dict:
    """The FHIR R4 collection Bundle of one screening ``row`` (see
    `detak.server.fhir_build.screening_resources` for its keys)."""
    return as_bundle(screening_resources(row, recording), row["uuid"], row.get("received_at"))


def screening_row(scr: Screening, facility: str, res: Resident | None,
                  verdict: dict | None = None) -> dict[str, Any]:
    """The builder's row for one database screening."""
    return {"uuid": scr.uuid, "created_at": scr.created_at,
            "received_at": scr.received_at.isoformat(), "facility": facility,
            "screening": scr.screening, "report_pdf": bool((scr.files or {}).get("report_pdf")),
            "kiosk_id": scr.kiosk_id, "verdict": verdict,
            "resident": None if res is None else {
                "id": res.id, "resident_number": res.resident_number, "name": res.name,
                "sex": res.sex,
                "birth_date": res.birth_date.isoformat() if res.birth_date else None}}


def wfdb_names(header: bytes, fallback: str) -> tuple[str, str]:
    r"""The record name and signal file name a WFDB header names (WFDB opens the signal file
    by the name in the header, so the links must carry those names).

    >>> wfdb_names(b"# c\nr9 2 500 10\nr9.dat 16 1000/mV 16 0 0 0 0 I\n", "x")
    ('r9', 'r9.dat')
    >>> wfdb_names(b"", "x")
    ('x', 'x.dat')
    """
    lines = [ln.split() for ln in header.decode("utf-8", "replace").splitlines()
             if ln.strip() and not ln.lstrip().startswith("#")]
    name = lines[0][0].split("/")[0] if lines else fallback
    dat = lines[1][0] if len(lines) > 1 else f"{name}.dat"
    safe = all(x and "/" not in x and "\\" not in x and x not in (".", "..")
               for x in (name, dat))
    return (name, dat) if safe else (fallback, f"{fallback}.dat")


@contextlib.contextmanager
def wfdb_files(store: LocalFileStore, files: dict) -> Iterator[Path]:
    """The screening's ``<name>.hea`` path in a temporary folder of links to the store."""
    hea = store.path(files["hea"]["sha256"])
    name, dat = wfdb_names(hea.read_bytes()[:65536], str(files.get("recording") or "rec"))
    with tempfile.TemporaryDirectory(prefix="detak-fhir-") as d:
        os.symlink(hea, Path(d) / f"{name}.hea")
        os.symlink(store.path(files["dat"]["sha256"]), Path(d) / dat)
        yield Path(d) / f"{name}.hea"


def load_recording(store: LocalFileStore, files: dict) -> Any:
    """The screening's `Recording` from the content store; None if it cannot be read (the
    waveform is then left out of the FHIR resources, the rest stays)."""
    from detak.data.validation import RecordingError
    from detak.data.wfdb_io import read_wfdb

    try:
        with wfdb_files(store, files) as hea:
            return read_wfdb(hea)
    except (RecordingError, OSError, ValueError, KeyError, TypeError):
        return None


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
    rows = session.execute(q).all()
    verdicts = latest_verdicts(session, [scr.id for scr, _, _ in rows])
    n = 0
    for scr, fac, res in rows:
        folder = out / scr.uuid
        folder.mkdir(exist_ok=True)
        files = scr.files
        rec = files["recording"]
        for kind in ("hea", "dat"):
            shutil.copyfile(store.path(files[kind]["sha256"]), folder / f"{rec}.{kind}")
        pdf = files.get("report_pdf")
        if pdf:
            shutil.copyfile(store.path(pdf["sha256"]), folder / "report.pdf")
        recording = load_recording(store, files)
        bundle = fhir_bundle(screening_row(scr, fac, res, verdicts.get(scr.id)), recording)
        (folder / "bundle.json").write_text(json.dumps(bundle, indent=1, ensure_ascii=False,
                                                       allow_nan=False), encoding="utf-8")
        audit(session, "cli:export", "screening.export", object_kind="screening",
              object_id=scr.id, facility_id=scr.facility_id)
        n += 1
    return n
