"""One screening as FHIR R4 resources: the one builder behind ``detak server export`` and the
server's ``GET /fhir/...`` reads.

`screening_resources(row, recording)` returns the resources with their ``id`` and *relative*
references (``Patient/res-3``), as the REST reads serve them; `as_bundle` turns them into a
self-contained ``collection`` Bundle whose entries are ``urn:uuid:`` full URLs and whose
references point at those (what the export writes and ``GET /fhir/Bundle/<uuid>`` answers).

Resources of screening ``U`` (its 32-hex uuid) and resident number ``N`` (database id):

* ``Patient/res-N`` — the resident (facility and resident number as identifier, name, sex,
  birth date);
* ``Device/U-device`` — the ECG that recorded it: id, model, serial number, and the
  calibration used (a ``property`` per numeric field, the whole dict in a note);
* ``Observation/U-ecg`` — the waveform: code MDC_ECG_ELEC_POTL (131328), one ``component`` per
  lead coded MDC_ECG_ELEC_POTL_<lead> (I 131329 … as in the FHIR specification's ECG example)
  with ``valueSampledData``: ``origin`` 0 mV, ``factor`` `FACTOR_MV` (1 µV, the kiosk's WFDB
  resolution, so nothing is lost), ``period`` 1000/fs ms, ``dimensions`` 1, ``data`` the
  integers (``E`` where the sample is missing). Reading back: mV = origin + factor × datum;
* ``Observation/U-hr``, ``-rr``, ``-pr``, ``-qrs``, ``-qt``, ``-qtc`` — LOINC 8867-4, 8637-1,
  8625-6, 8633-0, 8634-8, 8636-3 with UCUM units (``/min``, ``ms``), ``derivedFrom`` the
  waveform; an interval that could not be measured is left out;
* ``DiagnosticReport/U`` — LOINC 11524-6 (EKG study) tying them together: ``result`` lists
  every Observation above; ``conclusion`` states the model's findings (urgency with its
  reasons, rule labels, the NB label, superclass probabilities against the model card's
  operating points). Status ``preliminary`` until a doctor signs; with a signed verdict
  (``row["verdict"]``, see `verdict_conclusion`) it is ``final`` and the conclusion starts with
  the doctor's, and ``conclusionCode`` carries the confirmed labels.

>>> row = {"uuid": "ab" * 16, "created_at": "2026-12-07T08:00:00Z",
...        "received_at": "2026-12-07T09:00:00+00:00", "facility": "Wisma",
...        "screening": {"intervals": {"hr_bpm": 72.0}}, "resident": None}
>>> [r["resourceType"] + "/" + r["id"][-3:] for r in screening_resources(row)]
['Observation/-hr', 'DiagnosticReport/bab']
>>> as_bundle(screening_resources(row), "ab" * 16)["entry"][0]["fullUrl"][:9]
'urn:uuid:'
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import numpy as np

#: interval key → (id suffix, LOINC code, display, UCUM unit)
MEASURES: dict[str, tuple[str, str, str, str]] = {
    "hr_bpm": ("hr", "8867-4", "Heart rate", "/min"),
    "rr_ms": ("rr", "8637-1", "R-R interval by EKG", "ms"),
    "pr_ms": ("pr", "8625-6", "P-R Interval", "ms"),
    "qrs_ms": ("qrs", "8633-0", "QRS duration", "ms"),
    "qt_ms": ("qt", "8634-8", "Q-T interval", "ms"),
    "qtc_bazett_ms": ("qtc", "8636-3", "Q-T interval corrected", "ms"),
}
MDC = "urn:oid:2.16.840.1.113883.6.24"  # ISO/IEEE 11073-10101 (MDC), as the FHIR ECG example
MDC_ECG_ELEC_POTL = ("131328", "MDC_ECG_ELEC_POTL")
#: lead → MDC code (ISO/IEEE 11073-10101 lead table: 131328 + lead number)
MDC_LEADS: dict[str, int] = {"I": 131329, "II": 131330, "V1": 131331, "V2": 131332,
                             "V3": 131333, "V4": 131334, "V5": 131335, "V6": 131336,
                             "III": 131389, "aVR": 131390, "aVL": 131391, "aVF": 131392}
FACTOR_MV = 0.001  # one datum = 1 µV (the kiosk writes WFDB at 1000 adu/mV)
LOINC, UCUM = "http://loinc.org", "http://unitsofmeasure.org"
SYSTEM_RESIDENT = "urn:detak:resident-number"
SYSTEM_SCREENING = "urn:detak:screening"
SYSTEM_DEVICE = "urn:detak:device"
SYSTEM_LABEL = "urn:detak:ptbxl-statement"  # PTB-XL superclasses and SCP rhythm statements
NAMESPACE = uuid.UUID("6a0b6f2e-6f1d-5e55-9d3c-0d5e7a6b1c15")  # detak's FHIR export (uuid5)
_CATEGORY = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                          "observation-category", "code": "procedure"}]}]


def fhir_time(text: Any) -> str | None:
    """An ISO time (``Z`` or offset; naive = UTC) as a FHIR dateTime, None if unreadable.

    >>> fhir_time("2026-12-07T08:00:00Z"), fhir_time("garbage")
    ('2026-12-07T08:00:00+00:00', None)
    """
    if not text:
        return None
    try:
        t = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).isoformat()


def _number(v: Any) -> float | None:
    if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v):
        return None
    return v


def _intervals(screening: dict) -> dict:
    for key in ("intervals", "measurements"):
        if isinstance(screening.get(key), dict):
            return screening[key]
    return screening


def patient_id(resident: dict) -> str:
    """``res-<database id>``; without one (an old export row) a uuid5 of facility/number."""
    if resident.get("id") is not None:
        return f"res-{int(resident['id'])}"
    return str(uuid.uuid5(NAMESPACE, f"patient/{resident.get('facility')}/"
                                     f"{resident['resident_number']}"))


def patient(resident: dict, facility: str) -> dict:
    """The Patient resource of ``resident`` (a dict: id, resident_number, name, sex, ...)."""
    out: dict[str, Any] = {
        "resourceType": "Patient", "id": patient_id({**resident, "facility": facility}),
        "identifier": [{"system": SYSTEM_RESIDENT,
                        "value": f"{facility}/{resident['resident_number']}"}]}
    if resident.get("name"):
        out["name"] = [{"text": resident["name"]}]
    if resident.get("sex") in ("F", "M"):
        out["gender"] = "female" if resident["sex"] == "F" else "male"
    if resident.get("birth_date"):
        out["birthDate"] = str(resident["birth_date"])[:10]
    return out


def device(uid: str, scr: dict, kiosk_id: str | None = None) -> dict:
    """The Device (the ECG) that recorded screening ``uid``, with its calibration."""
    dev = scr.get("device") if isinstance(scr.get("device"), dict) else {}
    out: dict[str, Any] = {"resourceType": "Device", "id": f"{uid}-device",
                           "type": {"coding": [{"system": "http://snomed.info/sct",
                                                "code": "706767009",
                                                "display": "Electrocardiograph"}],
                                    "text": "electrocardiograph"}}
    ident = [{"system": SYSTEM_DEVICE, "value": str(dev["id"])}] if dev.get("id") else []
    if kiosk_id:
        ident.append({"system": "urn:detak:kiosk", "value": kiosk_id})
    if ident:
        out["identifier"] = ident
    if dev.get("serial"):
        out["serialNumber"] = str(dev["serial"])
    if dev.get("model"):
        out["deviceName"] = [{"name": str(dev["model"]), "type": "model-name"}]
    cal = scr.get("calibration")
    if isinstance(cal, dict) and cal:
        props = [{"type": {"text": f"calibration.{k}"}, "valueQuantity": [{"value": v}]}
                 for k, v in cal.items() if _number(v) is not None]
        if props:
            out["property"] = props
        out["note"] = [{"text": "calibration: " + json.dumps(cal, sort_keys=True,
                                                              default=str)[:2000]}]
    elif cal:
        out["note"] = [{"text": f"calibration: {cal}"[:2000]}]
    return out


def lead_code(lead: str) -> dict:
    """The MDC coding of one lead (MDC_ECG_ELEC_POTL with the lead as text when not standard).

    >>> lead_code("II")["coding"][0]["code"], lead_code("MLII")["text"]
    ('131330', 'MLII')
    """
    if lead in MDC_LEADS:
        return {"coding": [{"system": MDC, "code": str(MDC_LEADS[lead]),
                            "display": f"MDC_ECG_ELEC_POTL_{lead.upper()}"}], "text": lead}
    return {"coding": [{"system": MDC, "code": MDC_ECG_ELEC_POTL[0],
                        "display": MDC_ECG_ELEC_POTL[1]}], "text": lead}


def sampled_data(values_mv: np.ndarray, fs: float) -> dict:
    """One lead as SampledData: datum = round(mV / `FACTOR_MV`), ``E`` where NaN.

    >>> sampled_data(np.array([0.0, 1.0, np.nan, -0.0004]), 500.0)["data"]
    '0 1000 E 0'
    """
    digits = np.round(np.asarray(values_mv, dtype=np.float64) / FACTOR_MV)
    data = " ".join("E" if not math.isfinite(d) else str(int(d)) for d in digits.tolist())
    return {"origin": {"value": 0, "unit": "mV", "system": UCUM, "code": "mV"},
            "period": round(1000.0 / float(fs), 6), "factor": FACTOR_MV, "dimensions": 1,
            "data": data}


def parse_sampled_data(sd: dict) -> np.ndarray:
    """SampledData back to mV (origin + factor × datum; ``E``/``L``/``U`` → NaN).

    >>> parse_sampled_data(sampled_data(np.array([0.25, np.nan]), 100.0)).tolist()
    [0.25, nan]
    """
    origin = float((sd.get("origin") or {}).get("value") or 0.0)
    factor = float(sd.get("factor") or 1.0)
    return np.array([np.nan if t in ("E", "L", "U") else origin + factor * float(t)
                     for t in str(sd.get("data") or "").split()], dtype=np.float64)


def waveform(uid: str, recording: Any, subject: dict | None, when: str | None) -> dict:
    """The waveform Observation of ``recording`` (a `detak.data.recording.Recording`)."""
    out: dict[str, Any] = {
        "resourceType": "Observation", "id": f"{uid}-ecg", "status": "final",
        "category": _CATEGORY,
        "code": {"coding": [{"system": MDC, "code": MDC_ECG_ELEC_POTL[0],
                             "display": MDC_ECG_ELEC_POTL[1]}], "text": "12-lead ECG"
                 if len(recording.leads) == 12 else "ECG"},
        "device": {"reference": f"Device/{uid}-device"},
        "component": [{"code": lead_code(lead),
                       "valueSampledData": sampled_data(recording.signal[i], recording.fs)}
                      for i, lead in enumerate(recording.leads)]}
    if subject:
        out["subject"] = subject
    if when:
        out["effectiveDateTime"] = when
    return out


def _measure(uid: str, key: str, value: float, subject: dict | None, when: str | None,
             derived: bool) -> dict:
    suffix, loinc, display, unit = MEASURES[key]
    obs: dict[str, Any] = {
        "resourceType": "Observation", "id": f"{uid}-{suffix}", "status": "final",
        "category": _CATEGORY,
        "code": {"coding": [{"system": LOINC, "code": loinc, "display": display}],
                 "text": key},
        "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
        "device": {"reference": f"Device/{uid}-device"}}
    if subject:
        obs["subject"] = subject
    if when:
        obs["effectiveDateTime"] = when
    if derived:
        obs["derivedFrom"] = [{"reference": f"Observation/{uid}-ecg"}]
    return obs


def model_findings(scr: dict) -> list[str]:
    """The model's findings of a screening dict as plain sentences (for the report).

    >>> model_findings({"urgency": {"level": "refer today", "reasons": ["QTc 520 ms"]},
    ...                 "mi": {"probabilities": {"MI": 0.7}, "thresholds": {"MI":
    ...                 {"operating": 0.4}}}})
    ['Urgency: refer today (QTc 520 ms).', 'Model superclasses: MI 0.70 (operating point 0.40).']
    """
    out = []
    urg = scr.get("urgency") if isinstance(scr.get("urgency"), dict) else {}
    if urg.get("level"):
        why = "; ".join(str(r) for r in urg.get("reasons") or [])
        out.append(f"Urgency: {urg['level']}" + (f" ({why})." if why else "."))
    rhythm = scr.get("rhythm") if isinstance(scr.get("rhythm"), dict) else {}
    if rhythm.get("clinical_label"):
        out.append(f"Rule labels: clinical {rhythm['clinical_label']}"
                   + (f", S3 {rhythm['s3_label']}" if rhythm.get("s3_label") else "") + ".")
    found = rhythm_findings_text(rhythm)
    if found:
        out.append("Rhythm findings: " + "; ".join(found) + ".")
    nb = scr.get("nb") if isinstance(scr.get("nb"), dict) else {}
    if nb.get("label"):
        p = _number(nb.get("probability"))
        out.append(f"NB: {nb['label']}" + (f" (p {p:.2f})." if p is not None else "."))
    mi = scr.get("mi") if isinstance(scr.get("mi"), dict) else {}
    probs = mi.get("probabilities") if isinstance(mi.get("probabilities"), dict) else {}
    parts = []
    for cls, p in probs.items():
        if _number(p) is None:
            continue
        op = ((mi.get("thresholds") or {}).get(cls) or {}).get("operating")
        parts.append(f"{cls} {p:.2f}" + (f" (operating point {op:.2f})"
                                         if _number(op) is not None else ""))
    if parts:
        out.append("Model superclasses: " + ", ".join(parts) + ".")
    if scr.get("mi_reason"):
        out.append(str(scr["mi_reason"]))
    label = scr.get("label") or scr.get("rule_label")
    if not out and isinstance(label, str):
        out.append(label)
    return out


def rhythm_findings_text(rhythm: Any) -> list[str]:
    """A screening's rhythm findings (issue 17) as short English phrases: code, name, source,
    the classifier's probability, the rules' urgency and reasons; [] for an old screening.

    >>> rhythm_findings_text({"findings": [
    ...     {"code": "AFIB", "source": "rules", "probability": None, "urgency": "refer_today",
    ...      "reasons": [{"en": "ventricular rate 124 bpm > 110", "id": "..."}]},
    ...     {"code": "AFIB", "source": "classifier", "probability": 0.91, "urgency": "none"}]})
    ... # doctest: +NORMALIZE_WHITESPACE
    ['AFIB Atrial fibrillation (AF) (rules, refer today: ventricular rate 124 bpm > 110)',
     'AFIB Atrial fibrillation (AF) (classifier, p 0.91)']
    """
    from detak.kiosk.rhythm_read import reasons_in, rhythm_findings, urgency_level
    from detak.kiosk.rhythm_text import finding_name

    out = []
    for f in rhythm_findings(rhythm if isinstance(rhythm, dict) else None):
        parts = [str(f.get("source") or "rules")]
        p = _number(f.get("probability"))
        if p is not None:
            parts.append(f"p {p:.2f}")
        level = urgency_level(f)
        if f.get("source") == "rules" and level != "no finding":
            parts.append(level)
        why = "; ".join(reasons_in(f, "en"))
        text = ", ".join(parts) + (f": {why}" if why else "")
        out.append(f"{f['code']} {finding_name(f, 'en')} ({text})")
    return out


# the review's action codes (detak.server.review_models.ACTIONS) in a report's words
ACTION_TEXT = {"none": "no action", "routine": "routine follow-up",
               "cardiology": "refer to cardiology", "urgent": "urgent"}


def verdict_conclusion(verdict: dict) -> tuple[str, list[dict]]:
    """The doctor's conclusion and its codes, from a signed verdict dict (the hook for the
    review issue's verdicts): ``labels`` (list of PTB-XL superclass / rhythm codes),
    ``action``, ``note``, ``signed_by`` (a display name), ``signed_at`` (ISO), ``version``.

    >>> verdict_conclusion({"labels": ["MI", "SR"], "action": "cardiology",
    ...     "note": "old inferior MI", "signed_by": "dr. Ana", "signed_at": "2026-12-07"})[0]
    'Reviewed by dr. Ana on 2026-12-07: MI, SR; action: refer to cardiology. old inferior MI'
    """
    labels = [str(x) for x in verdict.get("labels") or []]
    text = (f"Reviewed by {verdict.get('signed_by') or 'a doctor'} on "
            f"{str(verdict.get('signed_at') or '')[:10]}: {', '.join(labels) or 'no label'}")
    if verdict.get("action"):
        action = str(verdict["action"])
        text += f"; action: {ACTION_TEXT.get(action, action)}"
    text += "."
    if verdict.get("note"):
        text += f" {verdict['note']}"
    codes = [{"coding": [{"system": SYSTEM_LABEL, "code": x}], "text": x} for x in labels]
    return text, codes


def diagnostic_report(uid: str, scr: dict, results: list[str], subject: dict | None,
                      when: str | None, pdf: bool = False, verdict: dict | None = None) -> dict:
    """The DiagnosticReport of screening ``uid`` (``results``: Observation ids)."""
    findings = model_findings(scr)
    report: dict[str, Any] = {
        "resourceType": "DiagnosticReport", "id": uid, "status": "preliminary",
        "identifier": [{"system": SYSTEM_SCREENING, "value": uid}],
        "code": {"coding": [{"system": LOINC, "code": "11524-6", "display": "EKG study"}]},
        "result": [{"reference": f"Observation/{r}"} for r in results]}
    if subject:
        report["subject"] = subject
    if when:
        report["effectiveDateTime"] = when
    conclusion = ""
    if verdict:
        conclusion, codes = verdict_conclusion(verdict)
        report["status"] = "amended" if int(verdict.get("version") or 1) > 1 else "final"
        if codes:
            report["conclusionCode"] = codes
        if findings:
            conclusion += " — "
    if findings:
        conclusion += ("Model findings (detak, " + ("reviewed" if verdict else "not reviewed")
                       + "): " + " ".join(findings))
    if conclusion:
        report["conclusion"] = conclusion[:4000]
    if pdf:
        report["presentedForm"] = [{"contentType": "application/pdf", "url": "report.pdf"}]
    return report


def screening_resources(row: dict[str, Any], recording: Any = None) -> list[dict]:
    """Every resource of one screening ``row`` (keys: uuid, created_at, received_at, facility,
    screening, resident (dict or None), report_pdf, kiosk_id, verdict (signed verdict dict or
    None), waveform (bool: the screening has a recording, so the report and the intervals
    reference ``Observation/<uuid>-ecg`` even when ``recording`` is not given)); the waveform
    resource itself when ``recording`` (a `Recording`) is given. Patient first, the
    DiagnosticReport last."""
    uid = row["uuid"]
    scr = row.get("screening") or {}
    when = fhir_time(row.get("created_at")) or fhir_time(row.get("received_at"))
    out: list[dict] = []
    subject = None
    if row.get("resident"):
        pat = patient(row["resident"], row.get("facility") or "")
        out.append(pat)
        subject = {"reference": f"Patient/{pat['id']}"}
    linked = bool(row.get("waveform")) or recording is not None
    has_device = bool(scr.get("device") or scr.get("calibration") or row.get("kiosk_id")
                      or linked)
    if has_device:
        out.append(device(uid, scr, row.get("kiosk_id")))
    results = []
    if recording is not None:
        out.append(waveform(uid, recording, subject, when))
    if linked:
        results.append(f"{uid}-ecg")
    values = _intervals(scr)
    for key in MEASURES:
        v = _number(values.get(key))
        if v is None:
            continue
        obs = _measure(uid, key, v, subject, when, linked)
        if not has_device:
            del obs["device"]
        out.append(obs)
        results.append(obs["id"])
    out.append(diagnostic_report(uid, scr, results, subject, when, bool(row.get("report_pdf")),
                                 row.get("verdict")))
    return out


def _urn(key: str) -> str:
    return "urn:uuid:" + str(uuid.uuid5(NAMESPACE, key))


def _rewrite(obj: Any, urls: dict[str, str]) -> Any:
    if isinstance(obj, dict):
        return {k: (urls.get(v, v) if k == "reference" and isinstance(v, str)
                    else _rewrite(v, urls)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_rewrite(v, urls) for v in obj]
    return obj


def as_bundle(resources: Iterable[dict], uid: str, timestamp: str | None = None) -> dict:
    """A ``collection`` Bundle of ``resources``: ``urn:uuid:`` full URLs (stable: uuid5 of
    ``Type/id``), references rewritten to them so the Bundle stands alone."""
    resources = list(resources)
    urls = {f"{r['resourceType']}/{r['id']}": _urn(f"{r['resourceType']}/{r['id']}")
            for r in resources}
    out: dict[str, Any] = {"resourceType": "Bundle", "type": "collection",
                           "identifier": {"system": SYSTEM_SCREENING, "value": uid},
                           "entry": [{"fullUrl": urls[f"{r['resourceType']}/{r['id']}"],
                                      "resource": _rewrite(r, urls)} for r in resources]}
    if fhir_time(timestamp):
        out["timestamp"] = fhir_time(timestamp)
    return out
