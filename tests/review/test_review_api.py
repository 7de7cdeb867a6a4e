"""The review pages and API against a real server and PostgreSQL: who may see what (403 / 404),
the queue's order and filters, locks, signing (password, immutability, corrections), the
audit trail, and the verdicts' way back to the kiosk (``detak sync``) and into its PDF."""

from __future__ import annotations

import subprocess

import psycopg
import pytest

from tests.review.clinic import PASSWORD
from tests.server.staff import login


def _client(clinic, name):
    c, r = login(clinic.server.url, name, PASSWORD)
    assert r.status_code == 200, r.text
    c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    c.headers["Cookie"] += "; detak_lang=en"
    return c


def _ids(clinic, name="Ana"):
    c = _client(clinic, name)
    r = c.get("/review?status=all")
    assert r.status_code == 200
    import re

    return c, [int(x) for x in re.findall(r'data-id="(\d+)"', r.text)]


def _sql(clinic, q, *args):
    url = clinic.server.database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(q, args or None).fetchall()


def test_queue_lists_the_doctors_facility_refer_today_first(clinic):
    c, ids = _ids(clinic)
    assert len(ids) == 3
    r = c.get("/review")
    assert "Wisma A" in r.text and 'data-facility="' in r.text
    rows = _sql(clinic, "SELECT id, screening->'urgency'->>'level', created_at FROM screenings")
    order = sorted(rows, key=lambda x: (x[1] != "refer today", x[2], x[0]))
    assert ids == [x[0] for x in order]
    assert rows[ids[0] - 1][1] == "refer today" and ids[0] == 3   # the last one made, first
    only = c.get("/review?urgency=no+finding").text
    assert all(f'data-id="{x[0]}"' in only for x in rows if x[1] == "no finding")
    assert all(f'data-id="{x[0]}"' not in only for x in rows if x[1] != "no finding")


def test_other_facility_is_404_nurse_403_anonymous_to_login(clinic):
    _, ids = _ids(clinic)
    other = _client(clinic, "Citra")
    assert other.get(f"/review/screening/{ids[0]}").status_code == 404
    assert other.get(f"/api/v1/review/screenings/{ids[0]}/samples").status_code == 404
    for sid in (10**9, 10**30, 0, -1):                          # never a database error
        assert other.get(f"/api/v1/review/screenings/{sid}").status_code == 404
    assert 'data-id="' not in other.get("/review").text
    nurse = _client(clinic, "nurse-a")
    assert nurse.get("/review").status_code == 403
    assert nurse.get(f"/review/screening/{ids[0]}").status_code == 403
    assert nurse.get(f"/api/v1/review/screenings/{ids[0]}").status_code == 403
    import httpx

    for bad in ("//evil.example", "/\\evil.example", "https://evil.example"):
        r = httpx.get(clinic.server.url + "/review/lang/en", params={"next": bad},
                      follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/review", bad
    r = httpx.get(clinic.server.url + "/review", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=/review")
    refused = _sql(clinic, "SELECT count(*) FROM audit_log WHERE action LIKE '%_refused' "
                           "AND object_kind = 'screening'")[0][0]
    assert refused >= 2


def test_samples_are_the_recording_in_mv_with_cam_relevance(clinic):
    c, ids = _ids(clinic)
    r = c.get(f"/api/v1/review/screenings/{ids[0]}/samples")
    assert r.status_code == 200
    d = r.json()
    assert d["units"] == "mV" and len(d["leads"]) == 12 and len(d["signal"]) == 12
    assert len(d["signal"][0]) == int(d["fs"] * 10)
    rel = d["relevance"]
    assert rel["source"] == "cam" and abs(sum(rel["leads"].values()) - 1) < 0.02
    n = _sql(clinic, "SELECT count(*) FROM audit_log WHERE action = 'screening.samples' AND "
                     "object_id = %s", str(ids[0]))[0][0]
    assert n >= 1


def test_lrp_on_request_names_its_source(clinic):
    from detak.server.review_data import lrp_available

    if not lrp_available():
        pytest.skip("no host extra: the route answers 501 lrp_unavailable")
    c, ids = _ids(clinic)
    r = c.get(f"/api/v1/review/screenings/{ids[0]}/lrp")
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["source"] == "lrp:epsilon_alpha2_beta1" and d["class"] == "MI"
    assert len(d["leads"]) == 12 and abs(sum(d["leads"].values()) - 1) < 0.02
    cam = c.get(f"/api/v1/review/screenings/{ids[0]}/samples").json()["relevance"]
    assert cam["source"] == "cam" and cam["leads"] != d["leads"]
    # a per-lead map, not the same share everywhere (a flat input rule would give 1/12 each)
    assert max(d["leads"].values()) - min(d["leads"].values()) > 0.02


def test_lock_second_doctor_sees_who_and_cannot_sign(clinic):
    _, ids = _ids(clinic)
    sid = ids[1]
    ana, budi = _client(clinic, "Ana"), _client(clinic, "Budi")
    assert 'id="verdict-form"' in ana.get(f"/review/screening/{sid}").text
    page = budi.get(f"/review/screening/{sid}").text
    assert "Opened by Ana" in page and 'id="verdict-form"' not in page
    assert "open by Ana" in budi.get("/review").text
    r = budi.post(f"/api/v1/review/screenings/{sid}/verdict",
                  json={"labels": ["NORM"], "action": "none", "password": PASSWORD,
                        "previous_version": 0})
    assert r.status_code == 409 and r.json()["error"]["code"] == "locked"
    # an expired lock is free again
    url = clinic.server.database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE review_locks SET expires_at = now() - interval '1 minute' "
                     "WHERE screening_id = %s", (sid,))
    assert 'id="verdict-form"' in budi.get(f"/review/screening/{sid}").text
    assert budi.post(f"/api/v1/review/screenings/{sid}/unlock").status_code == 200


def test_sign_needs_password_csrf_and_known_labels(clinic):
    _, ids = _ids(clinic)
    sid = ids[2]
    ana = _client(clinic, "Ana")
    ana.get(f"/review/screening/{sid}")
    url = f"/api/v1/review/screenings/{sid}/verdict"
    good = {"labels": ["NORM", "SR"], "action": "none", "note": "", "password": PASSWORD,
            "previous_version": 0}
    assert ana.post(url, json={**good, "password": "wrong password!"}).status_code == 401
    assert ana.post(url, json={**good, "labels": ["XYZ"]}).json()["error"]["code"] == \
        "bad_labels"
    assert ana.post(url, json={**good, "action": "later"}).status_code == 422
    no_csrf = ana.post(url, json=good, headers={"X-CSRF-Token": "x"})
    assert no_csrf.status_code == 403
    r = ana.post(url, json=good)
    assert r.status_code == 201 and r.json()["version"] == 1
    assert ana.post(url, json=good).json()["error"]["code"] == "stale"
    # a correction: a note, the next version; the old one stays
    assert ana.post(url, json={**good, "previous_version": 1}).json()["error"]["code"] == \
        "note_required"
    ana.post(f"/api/v1/review/screenings/{sid}/lock")
    r = ana.post(url, json={**good, "labels": ["NORM", "SBRAD"], "previous_version": 1,
                            "note": "rate 58 on re-measure"})
    assert r.status_code == 201 and r.json()["version"] == 2
    v = ana.get(f"/api/v1/review/screenings/{sid}").json()["verdicts"]
    assert [x["version"] for x in v] == [2, 1] and v[1]["labels"] == ["NORM", "SR"]
    assert f'data-id="{sid}"' not in ana.get("/review").text       # reviewed: off the queue
    with pytest.raises(psycopg.errors.RaiseException, match="immutable"):
        _sql(clinic, "UPDATE review_verdicts SET note = 'x' WHERE screening_id = %s", sid)
    with pytest.raises(psycopg.errors.RaiseException, match="immutable"):
        _sql(clinic, "DELETE FROM review_verdicts WHERE screening_id = %s", sid)
    acts = {a for (a,) in _sql(clinic, "SELECT action FROM audit_log WHERE actor LIKE 'user:%'")}
    assert {"verdict.sign", "verdict.sign_refused", "review.queue", "screening.read"} <= acts
    # the signed verdict became one case of S4's verdict base, moved on by the correction
    cases = _sql(clinic, "SELECT c.verdict_ref, k.name FROM expert_cases c JOIN expert_classes k "
                         "ON k.id = c.class_id WHERE c.screening_id = %s", sid)
    assert len(cases) == 1 and cases[0][0].endswith("/v2") and cases[0][1] == "NORM", cases


def test_verdicts_reach_the_kiosk_and_its_pdf(clinic, tmp_path):
    from detak.kiosk.store import Store

    _, ids = _ids(clinic)
    sid = ids[2]
    uuid = _sql(clinic, "SELECT uuid FROM screenings WHERE id = %s", sid)[0][0]
    obj = clinic.sync()
    assert obj["verdicts"] >= 2
    with Store.open(clinic.store, sweep=False) as st:
        got = st.verdicts_for(uuid)
        cursor = st.verdicts_cursor()
    assert [g["version"] for g in got] == [2, 1] and got[0]["doctor"] == "Ana"
    assert got[0]["labels"] == ["NORM", "SBRAD"] and cursor.startswith("v")
    assert clinic.sync()["verdicts"] == 0                      # the cursor moved on
    out = tmp_path / "r.pdf"
    from tests.server.harness import DETAK, REPO

    done = subprocess.run(DETAK + ["report", uuid, "--store", str(clinic.store), "--lang", "en",
                                   "--out", str(out)], env=clinic.env, capture_output=True,
                          text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    text = " ".join(subprocess.run(["pdftotext", str(out), "-"], capture_output=True,
                                   text=True, check=True).stdout.split())
    assert "Reviewed by dr. Ana on" in text


def test_verdicts_go_to_their_facilitys_kiosks_only_and_after_the_cursor(clinic):
    import json

    from tests.server.kiosk import Kiosk

    def batch(kiosk, since):
        body = json.dumps({"protocol": 1, "verdicts_since": since, "items": []}).encode()
        r = kiosk.request("POST", "/api/v1/sync/batch", body,
                          {"Content-Type": "application/json"})
        assert r.status_code == 200, r.text
        return r.json()

    a, b = Kiosk(clinic.server.url), Kiosk(clinic.server.url)
    assert a.enroll(clinic.server.enrollment_code("Wisma A")).status_code == 201
    assert b.enroll(clinic.server.enrollment_code("Wisma B")).status_code == 201
    assert batch(b, None)["verdicts"] == []
    first = batch(a, None)
    assert [v["version"] for v in first["verdicts"]] == [1, 2]     # oldest first
    assert set(first["verdicts"][0]) >= {"uuid", "server_id", "version", "label", "labels",
                                         "action", "note", "doctor", "reviewed_at"}
    assert batch(a, first["verdicts_cursor"])["verdicts"] == []
    again = batch(a, "v" + str(int(first["verdicts_cursor"][1:]) - 1))
    assert [v["version"] for v in again["verdicts"]] == [2]


def test_wrong_signing_passwords_are_rate_limited_with_sign_in(clinic):
    _, ids = _ids(clinic)
    budi = _client(clinic, "Budi")
    budi.get(f"/review/screening/{ids[0]}")
    url = f"/api/v1/review/screenings/{ids[0]}/verdict"
    body = {"labels": ["MI"], "action": "urgent", "password": "guess", "previous_version": 0}
    codes = [budi.post(url, json=body).status_code for _ in range(5)]
    assert codes == [401] * 5
    r = budi.post(url, json={**body, "password": PASSWORD})
    assert r.status_code == 429 and "Retry-After" in r.headers
    from tests.server.staff import login

    assert login(clinic.server.url, "Budi", PASSWORD)[1].status_code == 429   # the same count


def test_an_empty_mi_map_is_said_not_drawn_silently(clinic):
    """A screening whose MI map is zero everywhere says so beside the CAM toggle; one with a
    map does not (the overlay draws it)."""
    import html
    import json
    import re

    c, ids = _ids(clinic)
    seen = {True: 0, False: 0}
    for sid in ids:
        page = c.get(f"/review/screening/{sid}").text
        cam = json.loads(html.unescape(re.search(r"data-cam='([^']*)'", page).group(1)))
        empty = bool(cam and cam.get("mi")) and max(max(r) for r in cam["mi"]) <= 0
        assert ('id="cam-empty"' in page) == empty, sid
        seen[empty] += 1
    assert seen[False] >= 1                       # the refer-today MI screening has a map
