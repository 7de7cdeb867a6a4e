"""The export's FHIR R4 Bundle: structure, stable urn:uuid references, NaN left out; validated by
the fhir.resources R4B models when that package is installed (not in the dev extras: run
``pip install fhir.resources`` to include the check)."""

from __future__ import annotations

import json
import re
import uuid

import pytest

from detak.server.export_fhir import fhir_bundle

ROW = {"uuid": "ab" * 16, "created_at": "2026-12-07T08:00:00.123456Z",
       "received_at": "2026-12-07T09:00:00.5+00:00", "facility": "Wisma",
       "screening": {"intervals": {"hr_bpm": 72.0, "qrs_ms": 90, "pr_ms": float("nan"),
                                   "qt_ms": True}, "label": "normal"},
       "report_pdf": True,
       "resident": {"resident_number": "R-1", "name": "Tini Contoh", "sex": "F",
                    "birth_date": "1940-02-03"}}


def test_structure_and_references() -> None:
    b = fhir_bundle(ROW)
    urls = [e["fullUrl"] for e in b["entry"]]
    for url in urls:
        assert re.fullmatch(r"urn:uuid:[0-9a-f-]{36}", url)
        uuid.UUID(url.removeprefix("urn:uuid:"))
    assert len(set(urls)) == len(urls) and fhir_bundle(ROW) == b  # stable
    obs = [e["resource"] for e in b["entry"] if e["resource"]["resourceType"] == "Observation"]
    assert sorted(o["code"]["text"] for o in obs) == ["hr_bpm", "qrs_ms"]  # NaN, bool left out
    assert all(o["subject"]["reference"] == urls[0] for o in obs)
    report = b["entry"][-1]["resource"]
    assert {r["reference"] for r in report["result"]} <= set(urls)
    assert report["presentedForm"][0]["contentType"] == "application/pdf"
    json.dumps(b, allow_nan=False)  # no NaN reaches the JSON


def test_validates_with_fhir_models() -> None:
    models = pytest.importorskip("fhir.resources.R4B.bundle")
    for row in (ROW, {**ROW, "resident": None, "report_pdf": False}):
        bundle = models.Bundle.model_validate_json(json.dumps(fhir_bundle(row)))
        assert bundle.type == "collection"
