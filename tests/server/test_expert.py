"""The expert system (S4) on a real server and PostgreSQL: roles, CSRF, create/edit/delete of
features, classes and cases with the library's named errors on the page, audit rows, KNN with
the neighbour table on a typed-in case and on a screening, and `case_from_verdict`."""

from __future__ import annotations

import re

import httpx
import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from detak.server.db import database_url
from detak.server.expert_store import ExpertError, case_from_verdict, verdict_class
from detak.server.expert_tables import ExpertBase, ExpertCase, ExpertClass
from detak.server.models import Screening
from tests.server.harness import ServerProcess
from tests.server.kiosk import Kiosk, make_item, recording_files
from tests.server.staff import login

PASSWORD = "a long enough password"


@pytest.fixture(scope="module")
def world(detak_server: ServerProcess) -> dict:
    """An admin, a doctor of Wisma A, a doctor of no facility, a nurse; two screenings of
    Wisma A (one with intervals, one without)."""
    srv = detak_server
    w: dict = {"srv": srv}
    srv.admin("create-user", "--role", "admin", "--name", "ex-admin", input=PASSWORD + "\n")
    srv.admin("create-user", "--role", "doctor", "--name", "ex-doc", "--facility", "Wisma A",
              input=PASSWORD + "\n")
    srv.admin("create-user", "--role", "doctor", "--name", "ex-doc-b", "--facility", "Wisma B",
              input=PASSWORD + "\n")
    srv.admin("create-user", "--role", "nurse", "--name", "ex-nurse", "--facility", "Wisma A",
              input=PASSWORD + "\n")
    k = Kiosk(srv.url)
    assert k.enroll(srv.enrollment_code("Wisma A")).status_code == 201
    for tag, screening in (("iv", {"intervals": {"hr_bpm": 71.5, "qrs_ms": 92.0, "pr_ms": None,
                                                 "qt_ms": 380.0, "qtc_bazett_ms": 415.0}}),
                           ("none", {"intervals": {}, "quality": {"verdict": "rejected"}})):
        hea, dat = recording_files(900 + len(tag))
        k.upload(hea)
        k.upload(dat)
        res = k.batch([make_item(hea, dat, screening=screening)]).json()["results"][0]
        assert res["status"] == "created", res
        w[f"screening_{tag}"] = res["server_id"]
    for name in ("ex-admin", "ex-doc", "ex-doc-b", "ex-nurse"):
        c, r = login(srv.url, name, PASSWORD)
        assert r.status_code == 200, (name, r.text)
        w[name] = c
        w[f"{name}-csrf"] = r.json()["csrf_token"]
    w["engine"] = create_engine(database_url(srv.database_url))
    yield w
    w["engine"].dispose()


def post(w: dict, who: str, path: str, data: dict, csrf: bool = True) -> httpx.Response:
    body = dict(data)
    if csrf:
        body["csrf_token"] = w[f"{who}-csrf"]
    return w[who].post(path, data=body)


def base_id(w: dict, name: str) -> int:
    with Session(w["engine"]) as s:
        return s.scalar(select(ExpertBase.id).where(ExpertBase.name == name))


def audit_actions(w: dict, prefix: str = "expert.") -> list[str]:
    with w["engine"].connect() as conn:
        return list(conn.execute(text("SELECT action FROM audit_log WHERE action LIKE :p "
                                      "ORDER BY id"), {"p": prefix + "%"}).scalars())


def error_of(r: httpx.Response) -> str:
    m = re.search(r'class="error" role="alert">(.*?)</div>', r.text, re.S)
    return m.group(1) if m else ""


def test_roles_sessions_and_csrf(world: dict) -> None:
    w = world
    assert httpx.get(w["srv"].url + "/expert").status_code == 401
    for path in ("/expert", "/expert/classify", "/expert/bases/1"):
        assert w["ex-nurse"].get(path).status_code == 403, path
    assert post(w, "ex-nurse", "/expert/bases", {"name": "n"}).status_code == 403
    r = w["ex-doc"].get("/expert")
    assert r.status_code == 200 and "ecg_verdicts" in r.text and "s4_echo" in r.text
    assert 'action="/expert/bases"' not in r.text          # no admin forms for a doctor
    sid = base_id(w, "s4_echo")
    r = w["ex-doc"].get(f"/expert/bases/{sid}")
    assert r.status_code == 200 and "ATRIUM K" in r.text and "/features" not in r.text
    assert post(w, "ex-doc", f"/expert/bases/{sid}/features", {"key": "x"}).status_code == 403
    assert post(w, "ex-doc", f"/expert/bases/{sid}/delete", {}).status_code == 403
    # admin without the CSRF token: refused, nothing made
    before = len(audit_actions(w))
    assert post(w, "ex-admin", f"/expert/bases/{sid}/classes", {"name": "z"},
                csrf=False).status_code == 403
    assert post(w, "ex-admin", f"/expert/bases/{sid}/classes",
                {"name": "z", "csrf_token": "guess"}, csrf=False).status_code == 403
    assert len(audit_actions(w)) == before
    assert w["ex-admin"].get("/expert/bases/99999").status_code == 404


def test_admin_builds_a_base_with_named_errors_and_audit(world: dict) -> None:
    w = world
    r = post(w, "ex-admin", "/expert/bases", {"name": "echo lite", "target": "dx"})
    assert r.status_code == 303, r.text
    b = int(r.headers["location"].rsplit("/", 1)[1])
    url = f"/expert/bases/{b}"
    # duplicate base name
    r = post(w, "ex-admin", "/expert/bases", {"name": "echo lite"})
    assert r.status_code == 422 and "BaseNameError" in error_of(r)
    # features: a bad key, then two good ones, then a duplicate key and a duplicate label
    r = post(w, "ex-admin", f"{url}/features", {"key": "EF %"})
    assert r.status_code == 422 and "SchemaError" in error_of(r) and "lower-case" in r.text
    for key, col, unit in (("ef_pct", "EF", "%"), ("atrium_k_mm", "ATRIUM K", "mm")):
        assert post(w, "ex-admin", f"{url}/features",
                    {"key": key, "column": col, "unit": unit}).status_code == 303
    r = post(w, "ex-admin", f"{url}/features", {"key": "ef_pct"})
    assert r.status_code == 422 and "duplicate feature key" in error_of(r)
    r = post(w, "ex-admin", f"{url}/features", {"key": "ef2", "column": "ef"})
    assert r.status_code == 422 and "duplicate feature column" in error_of(r)
    for name in ("mitral stenosis", "normal"):
        assert post(w, "ex-admin", f"{url}/classes", {"name": name}).status_code == 303
    r = post(w, "ex-admin", f"{url}/classes", {"name": "  Normal "})
    assert r.status_code == 422 and "duplicate class" in error_of(r)
    # cases: the library's named errors, the bad field marked, the typed text kept
    r = post(w, "ex-admin", f"{url}/cases", {"f_ef_pct": "62..5", "f_atrium_k_mm": "35",
                                             "label": "normal"})
    assert r.status_code == 422
    assert "NonNumericValueError" in error_of(r) and "62..5" in error_of(r)
    assert 'value="62..5"' in r.text and re.search(r'class="bad">EF', r.text)
    r = post(w, "ex-admin", f"{url}/cases", {"f_ef_pct": "60", "f_atrium_k_mm": "",
                                             "label": "flu"})
    assert r.status_code == 422 and "UnknownClassError" in error_of(r)
    r = post(w, "ex-admin", f"{url}/cases", {"f_ef_pct": "", "f_atrium_k_mm": "",
                                             "label": "normal"})
    assert r.status_code == 422 and "no measurement" in error_of(r)
    # an Indonesian decimal comma ("62,5") is a number on the form (not in a CSV import)
    for ef, la, cls in (("62,5", "35", "normal"), ("55", "", "Mitral Stenosis")):
        assert post(w, "ex-admin", f"{url}/cases",
                    {"f_ef_pct": ef, "f_atrium_k_mm": la, "label": cls}).status_code == 303
    with Session(w["engine"]) as s:
        cases = list(s.scalars(select(ExpertCase).where(ExpertCase.base_id == b)
                               .order_by(ExpertCase.id)))
        assert [c.values for c in cases] == [{"ef_pct": 62.5, "atrium_k_mm": 35.0},
                                             {"ef_pct": 55.0, "atrium_k_mm": None}]
        ms = s.scalar(select(ExpertClass).where(ExpertClass.base_id == b,
                                                ExpertClass.name == "mitral stenosis"))
    first, second = cases[0].id, cases[1].id
    # edit a case (its form is pre-filled), then a bad edit keeps the old values
    r = w["ex-admin"].get(f"{url}/cases/{second}")
    assert r.status_code == 200 and 'value="55"' in r.text
    assert post(w, "ex-admin", f"{url}/cases/{second}",
                {"f_ef_pct": "40", "f_atrium_k_mm": "52", "label": "mitral stenosis",
                 "note": "edited"}).status_code == 303
    assert post(w, "ex-admin", f"{url}/cases/{second}",
                {"f_ef_pct": "x", "f_atrium_k_mm": "52",
                 "label": "mitral stenosis"}).status_code == 422
    # a class with cases cannot go; rename is fine
    r = post(w, "ex-admin", f"{url}/classes/{ms.id}/delete", {})
    assert r.status_code == 422 and "ClassInUseError" in error_of(r)
    assert post(w, "ex-admin", f"{url}/classes/{ms.id}",
                {"name": "mitral stenosis (MS)"}).status_code == 303
    # delete a feature: its values leave every case
    with Session(w["engine"]) as s:
        fid = s.execute(text("SELECT id FROM expert_features WHERE base_id = :b AND key = "
                             "'atrium_k_mm'"), {"b": b}).scalar()
    assert post(w, "ex-admin", f"{url}/features/{fid}/delete", {}).status_code == 303
    assert post(w, "ex-admin", f"{url}/cases/{first}/delete", {}).status_code == 303
    with Session(w["engine"]) as s:
        left = list(s.scalars(select(ExpertCase).where(ExpertCase.base_id == b)))
        assert [(c.id, c.values, c.note) for c in left] == [(second, {"ef_pct": 40.0},
                                                             "edited")]
    page = w["ex-admin"].get(url).text
    assert "mitral stenosis (MS)" in page and "ATRIUM K" not in page
    actions = audit_actions(w)
    for a in ("expert.base.create", "expert.feature.add", "expert.class.add",
              "expert.case.add", "expert.case.edit", "expert.class.edit",
              "expert.feature.delete", "expert.case.delete"):
        assert a in actions, a
    with w["engine"].connect() as conn:
        actors = set(conn.execute(text("SELECT actor FROM audit_log WHERE action LIKE "
                                       "'expert.case.%'")).scalars())
        assert actors == {f"user:{_user_id(conn, 'ex-admin')}"}
    assert post(w, "ex-admin", f"{url}/delete", {}).status_code == 303
    assert "expert.base.delete" in audit_actions(w)


def _user_id(conn, name: str) -> int:  # noqa: ANN001
    return conn.execute(text("SELECT id FROM users WHERE name = :n"), {"n": name}).scalar()


def test_import_and_knn_classification_with_the_neighbour_table(world: dict) -> None:
    w = world
    b = base_id(w, "ecg_verdicts")
    url = f"/expert/bases/{b}"
    header = "rr_ms,pr_ms,qrs_ms,qt_ms,qtc_bazett_ms,st_ms,rs_ratio,hr_bpm,verdict"
    bad = header + "\n800,160,90,380,425,100,0.5,75,NORM\n600,1;2,140,420,480,90,1.2,100,CD\n"
    r = post(w, "ex-admin", f"{url}/import", {"csv": bad})
    assert r.status_code == 422 and "NonNumericValueError" in error_of(r)
    assert "row 2" in error_of(r) and "pr_ms" in error_of(r)
    rows = ["850,160,90,380,412,100,0.5,71,NORM", "900,150,88,390,411,110,0.4,67,NORM",
            "800,170,94,370,414,105,0.6,75,NORM", "820,165,150,430,475,80,1.5,73,CD",
            "780,180,140,420,475,85,1.4,77,CD", "760,175,145,425,487,90,1.6,79,CD"]
    r = post(w, "ex-admin", f"{url}/import", {"csv": header + "\n" + "\n".join(rows) + "\n"})
    assert r.status_code == 303, error_of(r)
    assert "expert.case.import" in audit_actions(w)
    # a typed-in case, k = 3: the three NORM cases, nearest first
    r = w["ex-doc"].get("/expert/classify", params={"base": b, "k": 3, "f_qrs_ms": "91",
                                                    "f_hr_bpm": "70", "f_qt_ms": "385"})
    assert r.status_code == 200, r.text
    assert re.search(r'id="knn-class">NORM<', r.text)
    ranks = re.findall(r'data-rank="(\d+)" data-case="(\d+)" data-class="(\w+)"', r.text)
    assert [x[0] for x in ranks] == ["1", "2", "3"] and {x[2] for x in ranks} == {"NORM"}
    dists = [float(d.replace(",", ".")) for d in
             re.findall(r'data-rank="\d+".*?<td class="num">\d+</td><td class="num">([\d,.]+)'
                        r'</td>', r.text, re.S)]
    assert dists == sorted(dists) and len(dists) == 3
    assert "NORM: 3 / 3" in r.text
    assert "leave-one-out" in r.text and "6/6" in r.text      # separable: every case right
    assert "Naive Bayes" in r.text and ("Pohon keputusan" in r.text or "Decision tree" in r.text)
    # a screening of the doctor's facility, by its intervals; its read is audited
    r = w["ex-doc"].get("/expert/classify", params={"base": b, "k": 3,
                                                    "screening": w["screening_iv"]})
    assert r.status_code == 200 and re.search(r'id="knn-class">NORM<', r.text)
    assert 'value="71.5"' in r.text and 'value="415"' in r.text
    with w["engine"].connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM audit_log WHERE action = 'screening.read' "
                              "AND object_id = :i"), {"i": str(w["screening_iv"])}).scalar()
    assert n == 1
    # another facility's doctor: 404, as for a screening that does not exist
    assert w["ex-doc-b"].get("/expert/classify", params={
        "base": b, "screening": w["screening_iv"]}).status_code == 404
    assert w["ex-doc"].get("/expert/classify", params={"screening": 10 ** 9}).status_code == 404
    # k out of range and a base too small: the page says why, no crash
    r = w["ex-doc"].get("/expert/classify", params={"base": b, "k": 50, "f_hr_bpm": "70"})
    assert r.status_code == 200 and "ClassifyError" in r.text and "between 1" in r.text
    r = w["ex-doc"].get("/expert/classify", params={"base": base_id(w, "s4_echo"),
                                                    "f_hr_bpm": "70"})
    assert "ClassifyError" in r.text and "at least 2 cases" in r.text
    # English
    w["ex-doc"].get("/expert/lang/en")
    w["ex-doc"].cookies.clear()
    r = w["ex-doc"].get("/expert/classify", params={"base": b, "f_hr_bpm": "70"},
                        headers={"Cookie": w["ex-doc"].headers["Cookie"] + "; detak_lang=en"})
    assert "Nearest cases" in r.text and "Kasus terdekat" not in r.text


def test_case_from_verdict(world: dict) -> None:
    w = world
    assert verdict_class(["sr", "hyp", "norm"]) == "HYP"
    with Session(w["engine"]) as s:
        screening = s.get(Screening, w["screening_iv"])
        v1 = {"id": 41, "version": 1, "labels": ["STTC", "MI", "SR"], "signed_by": 1,
              "signed_at": "2026-12-07T12:00:00Z"}
        case = case_from_verdict(s, v1, screening)
        s.commit()
        assert case is not None and case.source == "verdict"
        assert case.screening_id == w["screening_iv"] and case.verdict_ref == "41/v1"
        assert s.get(ExpertClass, case.class_id).name == "MI"
        assert case.values["hr_bpm"] == 71.5 and case.values["pr_ms"] is None
        assert case.values["qtc_bazett_ms"] == 415.0
        # a corrected verdict (new version) updates the same case: one screening, one case
        again = case_from_verdict(s, {**v1, "version": 2, "labels": ["NORM"]},
                                  {"id": screening.id, "screening": screening.screening,
                                   "facility_id": screening.facility_id})
        s.commit()
        assert again.id == case.id and s.get(ExpertClass, again.class_id).name == "NORM"
        assert again.verdict_ref == "41/v2"
        # rhythm only, no intervals, no such base: nothing stored; unsigned: refused
        assert case_from_verdict(s, {**v1, "labels": ["SR", "AFIB"]}, screening) is None
        none = s.get(Screening, w["screening_none"])
        assert case_from_verdict(s, v1, none) is None
        assert case_from_verdict(s, v1, screening, base_name="no such base") is None
        with pytest.raises(ExpertError, match="signed"):
            case_from_verdict(s, {**v1, "signed_at": None}, screening)
        n = s.scalar(select(text("count(*)")).select_from(ExpertCase).where(
            ExpertCase.screening_id == screening.id))
        assert n == 1
    actions = audit_actions(w)
    assert "expert.case.from_verdict" in actions
    assert "expert.case.from_verdict_update" in actions
    # the case base page links the case back to its screening
    r = w["ex-admin"].get(f"/expert/bases/{base_id(w, 'ecg_verdicts')}")
    assert f"screening {w['screening_iv']}" in r.text or f"skrining {w['screening_iv']}" in r.text


def test_every_expert_route_refuses_outsiders(world: dict) -> None:
    """Every /expert route (taken from the router, so a new one cannot be missed): no session
    401, a nurse 403, a doctor 403 on every change; the language switch is the one public
    route (it only sets a cookie)."""
    from detak.server.expert import router

    w = world
    anon = httpx.Client(base_url=w["srv"].url)
    routes = [(m, r.path) for r in router.routes for m in r.methods]
    assert len(routes) >= 15
    for method, path in routes:
        url = re.sub(r"\{\w+\}", "1", path)
        if path.startswith("/expert/lang/"):
            assert anon.get(url.replace("/1", "/en")).status_code == 303
            continue
        data = {"csrf_token": "x"} if method == "POST" else None
        assert anon.request(method, url, data=data).status_code == 401, (method, path)
        body = {"csrf_token": w["ex-nurse-csrf"]} if method == "POST" else None
        assert w["ex-nurse"].request(method, url, data=body).status_code == 403, (method, path)
        if method == "POST":
            r = w["ex-doc"].request(method, url, data={"csrf_token": w["ex-doc-csrf"]})
            assert r.status_code == 403, (method, path)


def test_text_is_escaped_on_the_pages(world: dict) -> None:
    w = world
    b = base_id(w, "s4_echo")
    r = post(w, "ex-admin", f"/expert/bases/{b}/cases",
             {"f_hr_bpm": "70", "label": "mitral stenosis", "note": "<script>x()</script>"}
             | {f"f_{k}": "" for k in ("aorta_mm", "atrium_k_mm", "ef_pct", "edd_mm", "esd_mm",
                                       "ivs_d_mm", "ivs_s_mm", "pw_d_mm", "pw_s_mm", "pr_ms",
                                       "qrs_ms", "qt_ms", "qtc_ms", "p_ms")})
    assert r.status_code == 303, error_of(r)
    page = w["ex-doc"].get(f"/expert/bases/{b}").text
    assert "&lt;script&gt;x()&lt;/script&gt;" in page and "<script>x()" not in page
