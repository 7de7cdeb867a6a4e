"""``GET /fhir/...`` on a real server and PostgreSQL: a doctor (session) and an integration
token read one screening's resources; every answer validates with the ``fhir.resources`` R4B
models, the waveform round-trips, facilities are kept apart (404), other roles are refused
(401/403), reads are audited, a revoked token stops working, and a signed verdict (the
``verdicts`` table as `detak.server.verdict_read` expects it) makes the report final."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import httpx
import numpy as np
import pytest
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle

from detak.server.fhir_build import parse_sampled_data
from tests.server.harness import ServerProcess
from tests.server.kiosk import Kiosk, make_item
from tests.server.staff import login
from tests.server.verdicts import sign, sql

PASSWORD = "a long enough password"
SCREENING = {"intervals": {"hr_bpm": 54.2, "pr_ms": 150.0, "qrs_ms": 150.0, "qt_ms": 437.3,
                           "qtc_bazett_ms": 415.7, "rr_ms": None},
             "device": {"id": "emu-7", "model": "detak-emu", "serial": "SN-0042"},
             "calibration": "emu-default",
             "urgency": {"level": "routine review", "reasons": ["wide QRS"]},
             "rhythm": {"clinical_label": "abnormal"},
             "mi": {"probabilities": {"NORM": 0.01, "MI": 0.05, "CD": 0.99},
                    "thresholds": {"MI": {"operating": 0.395}}}}


def wfdb_pair() -> tuple[bytes, bytes, object]:
    from detak.data.samples import load_sample
    from detak.data.wfdb_io import read_wfdb, write_wfdb

    with tempfile.TemporaryDirectory() as d:
        write_wfdb(load_sample("ptbxl-00286"), Path(d) / "rec")
        hea, dat = (Path(d) / "rec.hea").read_bytes(), (Path(d) / "rec.dat").read_bytes()
        return hea, dat, read_wfdb(Path(d) / "rec.hea")


def token(srv: ServerProcess, facility: str) -> tuple[int, str]:
    out = srv.admin("create-token", "--facility", facility, "--name", "HIS").stdout
    first, last = out.strip().splitlines()[0], out.strip().splitlines()[-1]
    return int(first.split()[1]), last.split()[-1]


@pytest.fixture(scope="module")
def world(detak_server: ServerProcess) -> dict:
    srv = detak_server
    w: dict = {"srv": srv}
    hea, dat, rec = wfdb_pair()
    w["recording"] = rec
    for fac, tag in (("Wisma A", "a"), ("Wisma B", "b")):
        k = Kiosk(srv.url)
        assert k.enroll(srv.enrollment_code(fac)).status_code == 201
        k.upload(hea)
        k.upload(dat)
        item = make_item(hea, dat, screening=SCREENING,
                         resident={"resident_number": f"R-{tag}", "name": "Ani Contoh",
                                   "birth_date": "1941-05-06", "sex": "F", "room": None})
        assert k.batch([item]).json()["results"][0]["status"] == "created"
        w[f"uuid_{tag}"] = item["uuid"]
        srv.admin("create-user", "--role", "doctor", "--name", f"doc-{tag}", "--facility",
                  fac, input=PASSWORD + "\n")
        w[f"token_{tag}"] = token(srv, fac)
    srv.admin("create-user", "--role", "nurse", "--name", "nurse-a", "--facility", "Wisma A",
              input=PASSWORD + "\n")
    srv.admin("create-user", "--role", "admin", "--name", "root", input=PASSWORD + "\n")
    for name in ("doc-a", "doc-b", "nurse-a", "root"):
        c, r = login(srv.url, name, PASSWORD)
        assert r.status_code == 200
        w[name] = c
    w["res_a"] = sql(srv, "SELECT id FROM residents WHERE resident_number = 'R-a'")[0][0]
    return w


def bearer(w: dict, tag: str) -> httpx.Client:
    return httpx.Client(base_url=w["srv"].url, timeout=30,
                        headers={"Authorization": f"Bearer {w[f'token_{tag}'][1]}"})


def validate(resource: dict) -> object:
    return get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def test_token_reads_the_bundle_and_the_waveform_round_trips(world: dict) -> None:
    r = bearer(world, "a").get(f"/fhir/Bundle/{world['uuid_a']}")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/fhir+json")
    bundle = Bundle.model_validate_json(r.text)
    kinds = [e.resource.get_resource_type() for e in bundle.entry]
    assert kinds[:3] == ["Patient", "Device", "Observation"] and kinds[-1] == "DiagnosticReport"
    assert kinds.count("Observation") == 6  # waveform + HR, PR, QRS, QT, QTc (RR is null)
    raw = r.json()["entry"]
    ecg = next(e["resource"] for e in raw if e["resource"].get("component"))
    rec = world["recording"]
    assert [c["code"]["text"] for c in ecg["component"]] == list(rec.leads)
    for i, comp in enumerate(ecg["component"]):
        back = parse_sampled_data(comp["valueSampledData"])
        err = np.max(np.abs(back - rec.signal[i]))
        assert err <= comp["valueSampledData"]["factor"] / 2 + 1e-6
    assert raw[1]["resource"]["serialNumber"] == "SN-0042"


def test_doctor_reads_every_resource_by_its_relative_reference(world: dict) -> None:
    doc = world["doc-a"]
    report = doc.get(f"/fhir/DiagnosticReport/{world['uuid_a']}")
    assert report.status_code == 200, report.text
    body = report.json()
    validate(body)
    assert body["status"] == "preliminary" and "MI 0.05 (operating point 0.40)" in \
        body["conclusion"]
    refs = [x["reference"] for x in body["result"]] + [body["subject"]["reference"]]
    assert len(refs) == 7
    for ref in refs:
        r = doc.get(f"/fhir/{ref}")
        assert r.status_code == 200, (ref, r.text)
        res = r.json()
        assert f"{res['resourceType']}/{res['id']}" == ref
        validate(res)
    dev = doc.get(f"/fhir/Device/{world['uuid_a']}-device").json()
    assert dev["note"][0]["text"] == "calibration: emu-default"


def test_facilities_roles_and_bad_ids(world: dict) -> None:
    a, res = world["uuid_a"], world["res_a"]
    paths = [f"/fhir/Bundle/{a}", f"/fhir/DiagnosticReport/{a}", f"/fhir/Observation/{a}-hr",
             f"/fhir/Device/{a}-device", f"/fhir/Patient/res-{res}"]
    for path in paths:
        for who in (world["doc-b"], bearer(world, "b")):  # another facility: as if absent
            r = who.get(path)
            assert r.status_code == 404, (path, r.text)
            assert r.json()["resourceType"] == "OperationOutcome"
        for who in ("nurse-a", "root"):
            assert world[who].get(path).status_code == 403, (who, path)
        anon = httpx.get(world["srv"].url + path)
        assert anon.status_code == 401 and anon.json()["resourceType"] == "OperationOutcome"
        wrong = httpx.get(world["srv"].url + path, headers={"Authorization": "Bearer dtk_nope"})
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
    doc = world["doc-a"]
    for bad in (f"/fhir/Observation/{a}-xyz", f"/fhir/DiagnosticReport/{a}-hr",
                f"/fhir/Observation/{a}", "/fhir/Patient/1", "/fhir/Patient/res-999999",
                f"/fhir/Bundle/{a}-ecg", "/fhir/Observation/..%2F..%2Fetc"):
        assert doc.get(bad).status_code == 404, bad
    meta = httpx.get(world["srv"].url + "/fhir/metadata")
    assert meta.status_code == 200 and validate(meta.json())


def test_search_by_patient(world: dict) -> None:
    r = bearer(world, "a").get("/fhir/DiagnosticReport", params={"patient":
                                                                 f"Patient/res-{world['res_a']}"})
    assert r.status_code == 200
    bundle = Bundle.model_validate_json(r.text)
    assert bundle.type == "searchset" and bundle.total == 1
    assert bundle.entry[0].resource.id == world["uuid_a"]
    other = bearer(world, "b").get("/fhir/DiagnosticReport",
                                   params={"patient": f"res-{world['res_a']}"}).json()
    assert other["total"] == 0


def test_reads_are_audited_and_a_revoked_token_stops(world: dict) -> None:
    srv = world["srv"]
    tid, tok = token(srv, "Wisma A")
    c = httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {tok}"})
    assert c.get(f"/fhir/DiagnosticReport/{world['uuid_a']}").status_code == 200
    rows = sql(srv, "SELECT action, object_kind, detail FROM audit_log WHERE actor = %s",
               f"token:{tid}")
    assert rows and rows[-1][0] == "fhir.read" and rows[-1][1] == "screening"
    stored = sql(srv, "SELECT token_hash, last_used_at FROM integration_tokens WHERE id = %s",
                 tid)[0]
    assert tok not in stored[0] and len(stored[0]) == 64 and stored[1] is not None
    assert "Ani" not in json.dumps([r[2] for r in rows])
    srv.admin("revoke-token", str(tid))
    assert c.get(f"/fhir/DiagnosticReport/{world['uuid_a']}").status_code == 401
    assert str(tid) in srv.admin("tokens").stdout


def test_a_signed_verdict_makes_the_report_final(world: dict) -> None:
    srv = world["srv"]
    for version, labels in ((1, ["NORM", "SR"]), (2, ["CD", "CRBBB", "SBRAD"])):
        sign(srv, world["uuid_a"], labels, "doc-a", version, "routine", "RBBB")
    report = world["doc-a"].get(f"/fhir/DiagnosticReport/{world['uuid_a']}").json()
    validate(report)
    assert report["status"] == "amended"  # version 2: a correction
    assert report["conclusion"].startswith("Reviewed by doc-a on ")
    assert [c["text"] for c in report["conclusionCode"]] == ["CD", "CRBBB", "SBRAD"]


def test_cli_export_writes_the_same_bundle_as_the_api(world: dict, tmp_path: Path) -> None:
    srv = world["srv"]
    done = srv.admin("export", "--out", str(tmp_path))
    assert "exported 2 screenings" in done.stdout
    exported = json.loads((tmp_path / world["uuid_a"] / "bundle.json").read_text())
    Bundle.model_validate(exported)
    api = bearer(world, "a").get(f"/fhir/Bundle/{world['uuid_a']}").json()
    assert exported == api  # one builder: the same resources, ids and references
    ecg = next(e["resource"] for e in exported["entry"] if e["resource"].get("component"))
    assert len(ecg["component"]) == 12
