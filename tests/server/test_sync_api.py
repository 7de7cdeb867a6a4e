"""The sync API end to end against a real ``detak server`` and PostgreSQL (docs/sync.md)."""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.server.harness import ServerProcess
from tests.server.kiosk import Kiosk, make_item, recording_files, sha

RESIDENT = {"resident_number": "R-017", "name": "Tini Contoh", "birth_date": "1940-02-03",
            "sex": "F", "room": "12"}


@pytest.fixture(scope="module")
def kiosk(detak_server: ServerProcess) -> Kiosk:
    k = Kiosk(detak_server.url)
    r = k.enroll(detak_server.enrollment_code("Wisma A"))
    assert r.status_code == 201, r.text
    return k


def _send(k: Kiosk, seed: int, **kw) -> tuple[dict, dict]:  # noqa: ANN003
    hea, dat = recording_files(seed)
    k.upload(hea)
    k.upload(dat, chunk=1000)
    item = make_item(hea, dat, **kw)
    r = k.batch([item])
    assert r.status_code == 200, r.text
    return item, r.json()


def test_healthz_and_server_time(detak_server: ServerProcess) -> None:
    import httpx

    r = httpx.get(detak_server.url + "/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    assert abs(int(r.headers["X-Detak-Server-Time"]) - __import__("time").time()) < 5
    r = httpx.get(detak_server.url + "/nosuch")
    assert r.status_code == 404 and "X-Detak-Server-Time" in r.headers
    assert r.json()["error"]["code"] == "not_found"


def test_enrol_answers_the_contract(detak_server: ServerProcess) -> None:
    k = Kiosk(detak_server.url)
    body = k.enroll(detak_server.enrollment_code("Wisma B")).json()
    assert set(body) == {"kiosk_id", "facility", "bundle_public_key", "server_time"}
    assert body["facility"]["name"] == "Wisma B" and len(body["kiosk_id"]) == 32


def test_code_is_single_use(detak_server: ServerProcess) -> None:
    code = detak_server.enrollment_code("Wisma A")
    first = Kiosk(detak_server.url)
    assert first.enroll(code).status_code == 201
    kiosk_id = first.kiosk_id
    # the same kiosk (same key) retrying after a lost answer: the same kiosk id
    assert first.enroll(code).status_code == 201 and first.kiosk_id == kiosk_id
    r = Kiosk(detak_server.url).enroll(code)  # another key: refused
    assert r.status_code == 403 and r.json()["error"]["code"] == "enrolment_code_invalid"
    r = Kiosk(detak_server.url).enroll("not-a-code")
    assert r.status_code == 403 and r.json()["error"]["code"] == "enrolment_code_invalid"


def test_created_then_duplicate_then_conflict(detak_server: ServerProcess, kiosk: Kiosk) -> None:
    item, ans = _send(kiosk, 1, resident=RESIDENT)
    first = ans["results"][0]
    assert first["status"] == "created" and isinstance(first["server_id"], int)
    assert ans["verdicts"] == [] and "verdicts_cursor" in ans and ans["bundle_offer"] is None
    again = kiosk.batch([item]).json()["results"][0]  # the same batch delivered twice
    assert again == {**first, "status": "duplicate"}
    changed = dict(item, screening={"label": "changed"})
    changed.pop("content_sha256")
    changed["content_sha256"] = sha(json.dumps(changed, sort_keys=True, separators=(",", ":"),
                                               ensure_ascii=False).encode())
    res = kiosk.batch([changed]).json()["results"][0]
    assert res["status"] == "conflict" and res["server_id"] is None
    out = detak_server.admin("conflicts").stdout
    assert item["uuid"] in out


def test_missing_blob_and_bad_hash_are_per_item(kiosk: Kiosk) -> None:
    hea, dat = recording_files(2)
    kiosk.upload(hea)  # the .dat is never uploaded
    missing = make_item(hea, dat)
    bad = make_item(*recording_files(3))
    bad["content_sha256"] = "0" * 64
    good_hea, good_dat = recording_files(4)
    kiosk.upload(good_hea)
    kiosk.upload(good_dat)
    good = make_item(good_hea, good_dat)
    res = kiosk.batch([missing, bad, good]).json()["results"]
    assert [r["status"] for r in res] == ["missing_blob", "invalid", "created"]
    assert res[1]["error"]["code"] == "content_hash_mismatch"
    kiosk.upload(dat)  # upload it, retry: created
    assert kiosk.batch([missing]).json()["results"][0]["status"] == "created"


def test_resident_on_two_kiosks_is_one_person(detak_server: ServerProcess,
                                              kiosk: Kiosk) -> None:
    other = Kiosk(detak_server.url)
    other.enroll(detak_server.enrollment_code("Wisma A"))
    r1 = dict(RESIDENT, resident_number="R-100")
    _, a = _send(kiosk, 10, resident=r1)
    _, b = _send(other, 11, resident=dict(r1, name="Tini C."))  # typed differently
    assert a["results"][0]["status"] == b["results"][0]["status"] == "created"
    import psycopg

    url = detak_server.database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn:
        n = conn.execute("SELECT count(*) FROM residents WHERE resident_number = 'R-100'"
                         ).fetchone()[0]
        mism = conn.execute("SELECT count(*) FROM resident_mismatches m JOIN residents r "
                            "ON r.id = m.resident_id WHERE r.resident_number = 'R-100'"
                            ).fetchone()[0]
        name = conn.execute("SELECT name FROM residents WHERE resident_number = 'R-100'"
                            ).fetchone()[0]
    assert (n, mism, name) == (1, 1, "Tini Contoh")
    # another facility's kiosk with the same number: a different person
    third = Kiosk(detak_server.url)
    third.enroll(detak_server.enrollment_code("Wisma B"))
    _send(third, 12, resident=r1)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM residents WHERE resident_number = 'R-100'"
                            ).fetchone()[0] == 2


def test_gzip_batch_and_limits(kiosk: Kiosk) -> None:
    hea, dat = recording_files(20)
    kiosk.upload(hea)
    kiosk.upload(dat)
    r = kiosk.batch([make_item(hea, dat)], gzip_body=True)
    assert r.status_code == 200 and r.json()["results"][0]["status"] == "created"
    r = kiosk.request("POST", "/api/v1/sync/batch", b"{}", {"Content-Encoding": "br"})
    assert r.status_code == 415
    r = kiosk.batch([make_item(hea, dat) for _ in range(51)])
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_many_items"
    r = kiosk.batch([], protocol=2)
    assert r.status_code == 400 and r.json()["error"]["code"] == "protocol_unsupported"
    import gzip

    bomb = gzip.compress(b" " * (20 << 20))  # 20 MiB of blanks in ~20 kB
    r = kiosk.request("POST", "/api/v1/sync/batch", bomb, {"Content-Encoding": "gzip"})
    assert r.status_code == 413


def test_export_is_fhir_and_byte_identical(detak_server: ServerProcess, kiosk: Kiosk,
                                           tmp_path) -> None:  # noqa: ANN001
    pdf = b"%PDF-1.4 test report\n%%EOF\n"
    hea, dat = recording_files(30)
    for blob in (hea, dat, pdf):
        kiosk.upload(blob)
    item = make_item(hea, dat, pdf=pdf, resident=dict(RESIDENT, resident_number="R-300"))
    assert kiosk.batch([item]).json()["results"][0]["status"] == "created"
    out = tmp_path / "export"
    detak_server.admin("export", "--out", str(out), "--since", "2000-01-01")
    folder = out / item["uuid"]
    rec = item["files"]["recording"]
    assert hashlib.sha256((folder / f"{rec}.hea").read_bytes()).hexdigest() == sha(hea)
    assert hashlib.sha256((folder / f"{rec}.dat").read_bytes()).hexdigest() == sha(dat)
    assert (folder / "report.pdf").read_bytes() == pdf
    bundle = json.loads((folder / "bundle.json").read_text())
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds[0] == "Patient" and kinds[-1] == "DiagnosticReport" and "Observation" in kinds
    refs = {e["fullUrl"] for e in bundle["entry"]}
    report = bundle["entry"][-1]["resource"]
    assert all(r["reference"] in refs for r in report["result"])
    assert report["subject"]["reference"] in refs
    later = tmp_path / "later"
    detak_server.admin("export", "--out", str(later), "--since", "2999-01-01")
    assert not any(later.iterdir())


def test_audit_log_is_append_only(detak_server: ServerProcess) -> None:
    import psycopg

    url = detak_server.database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn:
        actions = {r[0] for r in conn.execute("SELECT DISTINCT action FROM audit_log")}
        assert {"kiosk.enrol", "screening.create"} <= actions
        for sql in ("UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log",
                    "TRUNCATE audit_log"):
            with pytest.raises(psycopg.errors.RaiseException):
                conn.execute(sql)
            conn.rollback()


def test_revoked_kiosk_is_refused_at_its_next_request(detak_server: ServerProcess) -> None:
    k = Kiosk(detak_server.url)
    k.enroll(detak_server.enrollment_code("Wisma A"))
    assert k.batch([]).status_code == 200
    listing = detak_server.admin("kiosk", "list").stdout
    assert k.kiosk_id in listing
    detak_server.admin("kiosk", "revoke", k.kiosk_id)
    r = k.batch([])
    assert r.status_code == 401 and r.json()["error"]["code"] == "kiosk_revoked"


def test_password_never_from_argv(detak_server: ServerProcess) -> None:
    done = detak_server.admin("create-user", "--role", "doctor", "--name", "dr-x",
                              input="long enough password\n")
    assert "created doctor" in done.stdout
    r = detak_server.admin("create-user", "--role", "doctor", "--name", "dr-y",
                           "--password", "x" * 12, check=False)
    assert r.returncode == 2


def test_the_server_process_never_loaded_torch(detak_server: ServerProcess) -> None:
    """After every route above ran in it, no torch library is mapped into the server."""
    maps = (__import__("pathlib").Path(f"/proc/{detak_server.proc.pid}/maps")).read_text()
    assert "python" in maps  # the check reads the right thing
    assert "torch" not in maps
