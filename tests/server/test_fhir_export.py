"""The FHIR R4 builder (one for ``detak server export`` and ``GET /fhir/...``): structure,
stable ``urn:uuid`` references that resolve inside the Bundle, NaN left out, LOINC and MDC codes,
validation by the ``fhir.resources`` R4B models (a dev dependency: this test never skips), and
the waveform round trip: WFDB → SampledData → JSON → parsed → the same samples within half the
stated factor."""

from __future__ import annotations

import json
import re
import uuid

import numpy as np
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.observation import Observation

from detak.server.export_fhir import fhir_bundle
from detak.server.fhir_build import (
    MDC_LEADS,
    MEASURES,
    parse_sampled_data,
    screening_resources,
)

ROW = {"uuid": "ab" * 16, "created_at": "2026-12-07T08:00:00.123456Z",
       "received_at": "2026-12-07T09:00:00.5+00:00", "facility": "Wisma",
       "screening": {"intervals": {"hr_bpm": 72.0, "qrs_ms": 90, "pr_ms": float("nan"),
                                   "qt_ms": True}, "label": "normal",
                     "device": {"id": "emu-1", "model": "detak-emu", "serial": "SN-7"},
                     "calibration": {"gain_uv_per_count": 2.5, "source": "pulse"}},
       "report_pdf": True, "kiosk_id": "k" * 32,
       "resident": {"id": 3, "resident_number": "R-1", "name": "Tini Contoh", "sex": "F",
                    "birth_date": "1940-02-03"}}


def loinc_check_digit(number: str) -> int:
    """LOINC's mod-10 check digit (the digits from the right, every other one doubled)."""
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d // 10 + d % 10
    return (10 - total % 10) % 10


def test_loinc_codes_have_valid_check_digits() -> None:
    assert loinc_check_digit("8867") == 4 and loinc_check_digit("11524") == 6  # known codes
    for key, (_, code, _, _) in MEASURES.items():
        number, check = code.split("-")
        assert loinc_check_digit(number) == int(check), (key, code)
    assert {MEASURES[k][1] for k in ("pr_ms", "qrs_ms", "qt_ms", "qtc_bazett_ms")} == {
        "8625-6", "8633-0", "8634-8", "8636-3"}


def test_mdc_lead_codes_follow_the_fhir_ecg_example() -> None:
    assert MDC_LEADS["I"] == 131329 and MDC_LEADS["II"] == 131330
    assert [MDC_LEADS[f"V{i}"] for i in range(1, 7)] == list(range(131331, 131337))
    assert [MDC_LEADS[x] for x in ("III", "aVR", "aVL", "aVF")] == [131389, 131390, 131391,
                                                                   131392]


def test_structure_and_references() -> None:
    b = fhir_bundle(ROW)
    urls = [e["fullUrl"] for e in b["entry"]]
    for url in urls:
        assert re.fullmatch(r"urn:uuid:[0-9a-f-]{36}", url)
        uuid.UUID(url.removeprefix("urn:uuid:"))
    assert len(set(urls)) == len(urls) and fhir_bundle(ROW) == b  # stable
    kinds = [e["resource"]["resourceType"] for e in b["entry"]]
    assert kinds[0] == "Patient" and kinds[1] == "Device" and kinds[-1] == "DiagnosticReport"
    obs = [e["resource"] for e in b["entry"] if e["resource"]["resourceType"] == "Observation"]
    assert sorted(o["code"]["text"] for o in obs) == ["hr_bpm", "qrs_ms"]  # NaN, bool left out
    assert all(o["subject"]["reference"] == urls[0] for o in obs)
    assert all(o["device"]["reference"] == urls[1] for o in obs)
    report = b["entry"][-1]["resource"]
    assert {r["reference"] for r in report["result"]} <= set(urls)
    assert report["presentedForm"][0]["contentType"] == "application/pdf"
    assert report["status"] == "preliminary" and "not reviewed" in report["conclusion"]
    dev = b["entry"][1]["resource"]
    assert dev["serialNumber"] == "SN-7" and "pulse" in dev["note"][0]["text"]
    json.dumps(b, allow_nan=False)  # no NaN reaches the JSON


def test_the_rest_reads_use_relative_references() -> None:
    res = screening_resources(ROW)
    assert res[0]["id"] == "res-3"
    assert res[-1]["subject"] == {"reference": "Patient/res-3"}
    ids = {f"{r['resourceType']}/{r['id']}" for r in res}
    assert {r["reference"] for r in res[-1]["result"]} <= ids
    for r in res:  # FHIR ids: [A-Za-z0-9.-]{1,64}
        assert re.fullmatch(r"[A-Za-z0-9.\-]{1,64}", r["id"]), r["id"]


def test_a_signed_verdict_makes_the_report_final_with_the_doctors_conclusion() -> None:
    verdict = {"labels": ["MI", "SR"], "action": "refer to cardiology", "note": "old MI",
               "signed_by": "dr. Ana", "signed_at": "2026-12-07T10:00:00+00:00", "version": 1}
    report = screening_resources({**ROW, "verdict": verdict})[-1]
    assert report["status"] == "final"
    assert report["conclusion"].startswith("Reviewed by dr. Ana on 2026-12-07: MI, SR")
    assert [c["text"] for c in report["conclusionCode"]] == ["MI", "SR"]
    amended = screening_resources({**ROW, "verdict": {**verdict, "version": 2}})[-1]
    assert amended["status"] == "amended"
    DiagnosticReport.model_validate(report)


def test_validates_with_fhir_models() -> None:
    for row in (ROW, {**ROW, "resident": None, "report_pdf": False, "kiosk_id": None,
                      "screening": {"intervals": {"hr_bpm": 60}}}):
        bundle = Bundle.model_validate_json(json.dumps(fhir_bundle(row)))
        assert bundle.type == "collection"


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    from detak.data.samples import load_sample
    from detak.data.wfdb_io import read_wfdb, write_wfdb

    rec = load_sample("ptbxl-00286")
    rec.signal[3, 5] = np.nan  # a missing sample travels as "E"
    folder = tmp_path_factory.mktemp("wfdb")
    write_wfdb(rec, folder / "r1")
    return read_wfdb(folder / "r1.hea")  # what the kiosk stored and the server holds


def test_waveform_round_trip_validates_and_keeps_the_samples(recording) -> None:  # noqa: ANN001
    b = fhir_bundle(ROW, recording)
    text = json.dumps(b, allow_nan=False)
    parsed = Bundle.model_validate_json(text)  # FHIR R4B models accept it
    ecg = [e.resource for e in parsed.entry if e.resource.get_resource_type() == "Observation"
           and e.resource.component]
    assert len(ecg) == 1
    obs: Observation = ecg[0]
    assert [c.code.text for c in obs.component] == list(recording.leads)
    assert obs.component[0].code.coding[0].code == "131329"
    for i, comp in enumerate(obs.component):
        sd = comp.valueSampledData
        assert float(sd.period) == pytest.approx(1000.0 / recording.fs)
        assert sd.origin.unit == "mV"
        back = parse_sampled_data(json.loads(sd.model_dump_json()))
        want = recording.signal[i].astype(np.float64)
        assert back.shape == want.shape
        assert np.array_equal(np.isnan(back), np.isnan(want))
        ok = ~np.isnan(want)
        assert np.max(np.abs(back[ok] - want[ok])) <= float(sd.factor) / 2 + 1e-6  # + float32
    assert np.isnan(recording.signal[3, 5])
    report = b["entry"][-1]["resource"]
    ecg_url = next(e["fullUrl"] for e in b["entry"] if e["resource"].get("component"))
    assert {"reference": ecg_url} in report["result"]


def test_rhythm_findings_are_in_the_conclusion_and_old_screenings_export_as_before():
    """Issue 17: the DiagnosticReport's conclusion lists the rhythm findings (code, name,
    source, classifier probability, the rules' urgency and reasons) as it lists rule labels;
    a screening stored before (interval findings at rhythm.findings) exports without them."""
    af = {"code": "AFIB", "source": "rules", "probability": None, "urgency": "routine review",
          "reasons": [{"en": "Mean ventricular rate 87 bpm at or below 110 bpm.", "id": "x"}]}
    clf = {"code": "AFIB", "source": "classifier", "probability": 0.93, "urgency": "none",
           "reasons": []}
    new = {**ROW, "screening": {**ROW["screening"], "rhythm": {
        "clinical_label": "abnormal", "findings": [af, clf], "interval_findings": []}}}
    report = next(r for r in screening_resources(new) if r["resourceType"] == "DiagnosticReport")
    DiagnosticReport.model_validate(report)
    assert ("Rhythm findings: AFIB Atrial fibrillation (AF) (rules, routine review: Mean "
            "ventricular rate 87 bpm at or below 110 bpm.); AFIB Atrial fibrillation (AF) "
            "(classifier, p 0.93).") in report["conclusion"]
    old = {**ROW, "screening": {**ROW["screening"], "rhythm": {
        "clinical_label": "abnormal",
        "findings": [{"ruleset": "clinical", "finding": "bradycardia", "label": "abnormal"}]}}}
    report = next(r for r in screening_resources(old) if r["resourceType"] == "DiagnosticReport")
    assert "Rule labels: clinical abnormal" in report["conclusion"]
    assert "Rhythm findings" not in report["conclusion"]
