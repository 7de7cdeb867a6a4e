"""The authorization matrix: every route, called with no credentials, with each role, with
another facility's nurse and kiosk, with a revoked kiosk and an expired enrolment code.
Each answer is checked (401/403/404), and no one sees another facility's data.

A route added to the server without a row here fails `test_every_route_is_in_the_matrix`.
"""

from __future__ import annotations

import httpx
import pytest

from tests.server.harness import ServerProcess
from tests.server.kiosk import Kiosk, make_item, recording_files, sha
from tests.server.staff import login

PASSWORD = "a long enough password"
SHA = "a" * 64
#: every route the server has: (method, path template) → how it is authenticated
ROUTES = {
    ("GET", "/healthz"): "public",
    ("POST", "/api/v1/enroll"): "code",
    ("HEAD", "/api/v1/blobs/{sha256}"): "kiosk",
    ("PATCH", "/api/v1/blobs/{sha256}"): "kiosk",
    ("POST", "/api/v1/sync/batch"): "kiosk",
    ("GET", "/api/v1/bundles/{sha256}"): "kiosk",
    ("GET", "/api/v1/me"): "staff",
    ("GET", "/api/v1/screenings"): "staff",
    ("GET", "/login"): "public",
    ("POST", "/login"): "form",
    ("POST", "/logout"): "staff+csrf",
    ("GET", "/fhir/metadata"): "public",
    ("GET", "/fhir/Patient/{pid}"): "fhir",
    ("GET", "/fhir/Device/{rid}"): "fhir",
    ("GET", "/fhir/Observation/{rid}"): "fhir",
    ("GET", "/fhir/DiagnosticReport/{rid}"): "fhir",
    ("GET", "/fhir/DiagnosticReport"): "fhir",
    ("GET", "/fhir/Bundle/{uid}"): "fhir",
    # the doctors' review (detak/server/review.py): HTML pages, not in the OpenAPI schema ...
    ("GET", "/review"): "doctor",
    ("GET", "/review/screening/{sid}"): "doctor",
    ("GET", "/review/lang/{code}"): "public",
    ("GET", "/review/static/{name}"): "public",
    # ... and their JSON API
    ("GET", "/api/v1/review/screenings/{sid}"): "doctor",
    ("GET", "/api/v1/review/screenings/{sid}/samples"): "doctor",
    ("GET", "/api/v1/review/screenings/{sid}/lrp"): "doctor",
    ("POST", "/api/v1/review/screenings/{sid}/lock"): "doctor+csrf",
    ("POST", "/api/v1/review/screenings/{sid}/unlock"): "doctor+csrf",
    ("POST", "/api/v1/review/screenings/{sid}/verdict"): "doctor+csrf",
}
KIOSK_CALLS = [("HEAD", f"/api/v1/blobs/{SHA}", b""),
               ("PATCH", f"/api/v1/blobs/{SHA}?offset=0&size=1", b"x"),
               ("POST", "/api/v1/sync/batch", b'{"protocol": 1, "items": []}'),
               ("GET", f"/api/v1/bundles/{SHA}", b"")]
STAFF_CALLS = [("GET", "/api/v1/me"), ("GET", "/api/v1/screenings"), ("POST", "/logout")]


@pytest.fixture(scope="module")
def world(detak_server: ServerProcess) -> dict:
    """Two facilities, a kiosk and a nurse in each, a doctor of A, an admin, a revoked kiosk,
    and one screening of facility A."""
    srv = detak_server
    w: dict = {"srv": srv}
    for fac, tag in (("Wisma A", "a"), ("Wisma B", "b")):
        k = Kiosk(srv.url)
        assert k.enroll(srv.enrollment_code(fac)).status_code == 201
        w[f"kiosk_{tag}"] = k
        srv.admin("create-user", "--role", "nurse", "--name", f"nurse-{tag}", "--facility", fac,
                  input=PASSWORD + "\n")
    srv.admin("create-user", "--role", "doctor", "--name", "doc-a", "--facility", "Wisma A",
              input=PASSWORD + "\n")
    srv.admin("create-user", "--role", "doctor", "--name", "doc-none", input=PASSWORD + "\n")
    srv.admin("create-user", "--role", "admin", "--name", "root", input=PASSWORD + "\n")
    revoked = Kiosk(srv.url)
    revoked.enroll(srv.enrollment_code("Wisma A"))
    srv.admin("kiosk", "revoke", revoked.kiosk_id)
    w["revoked"] = revoked
    hea, dat = recording_files(500)
    ka = w["kiosk_a"]
    ka.upload(hea)
    ka.upload(dat)
    w["item_a"] = make_item(hea, dat, resident={"resident_number": "R-9", "name": "Ani Contoh",
                                                "birth_date": None, "sex": None, "room": None})
    res = ka.batch([w["item_a"]]).json()["results"][0]
    assert res["status"] == "created"
    w["server_id_a"] = res["server_id"]
    for name in ("nurse-a", "nurse-b", "doc-a", "doc-none", "root"):
        c, r = login(srv.url, name, PASSWORD)
        assert r.status_code == 200, (name, r.text)
        w[name] = c
    return w


def test_every_route_is_in_the_matrix(detak_server: ServerProcess) -> None:
    spec = httpx.get(detak_server.url + "/openapi.json").json()
    listed = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    hidden = {r for r, kind in ROUTES.items()
              if r[1] in ("/login", "/logout") or r[1].startswith("/review")}
    assert listed | hidden == set(ROUTES), sorted((listed | hidden) ^ set(ROUTES))


def test_no_credentials(world: dict) -> None:
    http = httpx.Client(base_url=world["srv"].url)
    for method, path, body in KIOSK_CALLS:
        r = http.request(method, path, content=body)
        assert r.status_code == 401, (method, path)
        if method != "HEAD":
            assert r.json()["error"]["code"] == "signature_missing"
    for method, path in STAFF_CALLS:
        assert http.request(method, path).status_code == 401, (method, path)
    assert http.get("/healthz").status_code == 200
    assert http.get("/login").status_code == 200
    assert http.post("/login", data={"name": "root", "password": PASSWORD}).status_code == 403


def test_staff_cannot_use_kiosk_routes(world: dict) -> None:
    for who in ("nurse-a", "doc-a", "root"):
        for method, path, body in KIOSK_CALLS:
            r = world[who].request(method, path, content=body)
            assert r.status_code == 401, (who, method, path)


def test_kiosks_cannot_use_staff_routes(world: dict) -> None:
    k = world["kiosk_a"]
    for method, path in STAFF_CALLS:
        assert k.request(method, path).status_code == 401, (method, path)


def test_revoked_kiosk_on_every_kiosk_route(world: dict) -> None:
    for method, path, body in KIOSK_CALLS:
        r = world["revoked"].request(method, path, body)
        assert r.status_code == 401, (method, path)
        if method != "HEAD":
            assert r.json()["error"]["code"] == "kiosk_revoked"


def test_expired_code(world: dict) -> None:
    import psycopg

    srv = world["srv"]
    code = srv.enrollment_code("Wisma B")
    url = srv.database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE enrolment_codes SET expires_at = now() - interval '1 second' "
                     "WHERE used_at IS NULL")
    r = Kiosk(srv.url).enroll(code)
    assert r.status_code == 403 and r.json()["error"]["code"] == "enrolment_code_invalid"


def test_screenings_are_seen_only_by_their_facility(world: dict) -> None:
    uuid = world["item_a"]["uuid"]

    def seen(who: str) -> set[str]:
        r = world[who].get("/api/v1/screenings")
        assert r.status_code == 200, (who, r.text)
        return {s["uuid"] for s in r.json()["screenings"]}

    assert uuid in seen("nurse-a") and uuid in seen("doc-a") and uuid in seen("root")
    assert uuid not in seen("nurse-b") and uuid not in seen("doc-none")
    assert seen("doc-none") == set()
    assert all(s["facility_id"] == world["nurse-b"].get("/api/v1/me").json()["facilities"][0]
               for s in world["nurse-b"].get("/api/v1/screenings").json()["screenings"])


def test_other_facilitys_kiosk_learns_nothing(world: dict) -> None:
    """Facility B's kiosk sending facility A's screening uuid (same content or not): a
    conflict for an admin, never A's server id, never a 'duplicate' of A's row."""
    item = world["item_a"]
    kb = world["kiosk_b"]
    res = kb.batch([item]).json()["results"][0]  # the blobs exist: content-addressed
    assert res["status"] == "conflict" and res["server_id"] is None
    again = kb.batch([item]).json()
    assert [r["server_id"] for r in again["results"]] == [None] and again["verdicts"] == []
    r = kb.request("GET", f"/api/v1/bundles/{sha(b'no bundle')}")
    assert r.status_code == 404


def test_fhir_reads_are_for_the_facilitys_doctors_only(world: dict) -> None:
    uid = world["item_a"]["uuid"]
    paths = [f"/fhir/DiagnosticReport/{uid}", f"/fhir/Device/{uid}-device",
             f"/fhir/Bundle/{uid}", "/fhir/DiagnosticReport"]
    http = httpx.Client(base_url=world["srv"].url)
    for path in paths:
        assert http.get(path).status_code == 401, path
        assert world["kiosk_a"].request("GET", path).status_code == 401, path
        for who in ("nurse-a", "nurse-b", "root"):
            assert world[who].get(path).status_code == 403, (who, path)
        assert world["doc-a"].get(path).status_code == 200, path
    for path in paths[:3]:
        assert world["doc-none"].get(path).status_code == 404, path
    assert world["doc-none"].get(paths[3]).json()["total"] == 0


def test_review_routes_by_role(world: dict) -> None:
    """The review pages and their API: a doctor of the facility only; a nurse or an admin 403,
    a doctor of no facility 404 (as if the screening did not exist), no session 401 (a page:
    303 to the sign-in), a kiosk 401."""
    sid = world["server_id_a"]
    reads = [f"/api/v1/review/screenings/{sid}", f"/api/v1/review/screenings/{sid}/samples",
             f"/api/v1/review/screenings/{sid}/lrp"]
    writes = [f"/api/v1/review/screenings/{sid}/{w}" for w in ("lock", "unlock", "verdict")]
    pages = ["/review", f"/review/screening/{sid}"]
    http = httpx.Client(base_url=world["srv"].url)
    for path in reads:
        assert http.get(path).status_code == 401
        assert world["kiosk_a"].request("GET", path).status_code == 401
    for path in writes:
        assert http.post(path, json={}).status_code == 401
    for path in pages:
        r = http.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    for who in ("nurse-a", "root"):
        for path in reads + pages:
            assert world[who].get(path).status_code == 403, (who, path)
    for path in reads + [pages[1]]:
        assert world["doc-none"].get(path).status_code == 404, path
    doc = world["doc-a"]
    assert doc.get(reads[0]).status_code == 200 and doc.get(pages[1]).status_code == 200
    # this test's recording is random bytes: a named error, not a crash
    for path in reads[1:]:
        r = doc.get(path)
        assert r.status_code == 422 and r.json()["error"]["code"] == "recording_unreadable"
    for path in writes:                         # the session's CSRF token is required
        assert doc.post(path, json={}).status_code == 403, path
