"""Schemathesis (bounded) against the OpenAPI of the JSON API: zero 5xx answers.

Kiosk routes are called twice per generated case: unsigned (must be 401) and signed by an
enrolled kiosk over the exact bytes schemathesis generated, so the generated bodies, paths
and query strings reach the handlers behind the signature check.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.server.harness import ServerProcess
from tests.server.kiosk import Kiosk

MAX_EXAMPLES = 40
STATS: list[tuple[str, int]] = []  # (operation path, status) of every answer


@pytest.fixture(scope="module")
def signer(detak_server: ServerProcess) -> Kiosk:
    k = Kiosk(detak_server.url)
    assert k.enroll(detak_server.enrollment_code("Wisma A")).status_code == 201
    return k


@pytest.fixture(scope="module")
def fhir_token(detak_server: ServerProcess) -> str:
    """An integration token of Wisma A: the FHIR reads are fuzzed behind the bearer check."""
    out = detak_server.admin("create-token", "--facility", "Wisma A").stdout
    return out.strip().splitlines()[-1].split()[-1]


def _body(kw: dict) -> bytes:
    if kw.get("json") is not None:
        return json.dumps(kw["json"]).encode()
    data = kw.get("data") if kw.get("data") is not None else kw.get("content")
    if data is None:
        return b""
    if isinstance(data, str):
        return data.encode()
    if isinstance(data, bytes | bytearray):
        return bytes(data)
    return json.dumps(data).encode()


def test_no_5xx(detak_server: ServerProcess, signer: Kiosk, fhir_token: str) -> None:
    """Every operation of the OpenAPI, MAX_EXAMPLES generated cases each (schemathesis'
    pytest plugin does not load under this pytest: the operations are driven directly)."""
    schema = schemathesis.openapi.from_url(detak_server.url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 6
    for op in operations:
        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(op.as_strategy())
        def run(case) -> None:  # noqa: ANN001
            _check(case, detak_server, signer, fhir_token)

        run()
    # the signed calls reached the handlers behind the signature check
    assert ("/api/v1/sync/batch", 200) in STATS and ("/api/v1/blobs/{sha256}", 200) in STATS
    assert ("/fhir/DiagnosticReport", 200) in STATS  # and the bearer token reached the reads


def _check(case, detak_server: ServerProcess, signer: Kiosk,  # noqa: ANN001
           fhir_token: str) -> None:
    kw = case.as_transport_kwargs(base_url=detak_server.url)
    body = _body(kw)
    method = kw["method"].upper()
    url = httpx.URL(kw["url"])
    params = kw.get("params") or {}
    query = urlencode(params, doseq=True)
    path = url.raw_path.decode() + (("&" if url.query else "?") + query if query else "")
    headers = {k: str(v) for k, v in (kw.get("headers") or {}).items()
               if k.lower() not in ("content-length", "host")}
    with httpx.Client(base_url=detak_server.url, timeout=30) as http:
        answers = [http.request(method, path, content=body, headers=headers)]
        if case.operation.path.startswith(("/api/v1/blobs", "/api/v1/sync", "/api/v1/bundles")):
            assert answers[0].status_code in (400, 401, 404, 413, 415, 422), answers[0].text
            signed = {**headers, **signer.headers(method, path, body)}
            answers.append(http.request(method, path, content=body, headers=signed))
        if case.operation.path.startswith("/fhir/") and case.operation.path != "/fhir/metadata":
            assert answers[0].status_code == 401, answers[0].text
            token = {**headers, "Authorization": f"Bearer {fhir_token}"}
            answers.append(http.request(method, path, content=body, headers=token))
    STATS.extend((case.operation.path, r.status_code) for r in answers)
    for r in answers:
        assert r.status_code < 500, (method, path, r.status_code, r.text[:300])
        assert "X-Detak-Server-Time" in r.headers
        if r.status_code >= 400 and method != "HEAD":
            if case.operation.path.startswith("/fhir/"):  # FHIR answers an OperationOutcome
                assert r.json()["resourceType"] == "OperationOutcome", r.text[:300]
            else:
                assert set(r.json()) == {"error"}, r.text[:300]
