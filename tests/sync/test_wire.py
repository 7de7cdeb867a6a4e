"""The protocol's bytes (docs/sync.md §4, §6.1), the retry bounds (§8) and the http:// refusal
(§2), checked against the spec's own text where it gives one."""

from __future__ import annotations

import base64
import hashlib
import random
import re
from pathlib import Path

import pytest

from detak.sync.errors import InsecureURLError
from detak.sync.retry import RetryPolicy, retryable_status
from detak.sync.url import check_server_url, is_loopback
from detak.sync.wire import (
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    canonical_json,
    content_sha256,
    new_private_key,
    public_key_b64,
    signed_headers,
    string_to_sign,
    verify_signature,
)

SPEC = Path(__file__).resolve().parents[2] / "docs" / "sync.md"


def test_canonical_json_is_the_python_line_the_spec_gives() -> None:
    # the spec's §6.1 names the exact json.dumps call; find it and run it
    text = SPEC.read_text(encoding="utf-8")
    call = re.search(r"json\.dumps\(obj, sort_keys=True,\s*separators=\(\",\", \":\"\), "
                     r"ensure_ascii=False\)\.encode\(\)", text)
    assert call, "docs/sync.md no longer names the canonical json.dumps call"
    import json

    obj = {"z": [1, 2.5, None], "a": {"ö": "Siti", "b": True}, "m": -0.0, "n": 1e-7}
    spec_bytes = json.dumps(obj, sort_keys=True, separators=(",", ":"),
                            ensure_ascii=False).encode()
    assert canonical_json(obj) == spec_bytes
    assert canonical_json(obj) == '{"a":{"b":true,"ö":"Siti"},"m":-0.0,"n":1e-07,' \
        '"z":[1,2.5,null]}'.encode()


def test_canonical_json_refuses_nan() -> None:
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})


def test_content_hash_excludes_itself_and_sees_every_other_field() -> None:
    item = {"uuid": "a" * 32, "created_at": "2026-12-07T08:00:00Z", "resident": None,
            "screening": {"id": "a" * 32, "x": 1}, "files": {"recording": "b" * 64}}
    want = hashlib.sha256(canonical_json(item)).hexdigest()
    assert content_sha256(item) == want
    assert content_sha256({**item, "content_sha256": "whatever"}) == want
    assert content_sha256({**item, "screening": {"id": "a" * 32, "x": 2}}) != want
    # key order does not matter, white space in values does
    assert content_sha256(dict(reversed(list(item.items())))) == want


def test_string_to_sign_follows_the_spec_table() -> None:
    body = b'{"protocol":1}'
    s = string_to_sign("patch", "/api/v1/blobs/ab?offset=0&size=3", 1765094400,
                       "0123456789abcdef0123456789abcdef", body)
    lines = s.decode().split("\n")
    assert lines == ["PATCH", "/api/v1/blobs/ab?offset=0&size=3", "1765094400",
                     "0123456789abcdef0123456789abcdef", hashlib.sha256(body).hexdigest()]
    assert not s.endswith(b"\n")
    # the five fields are the ones the spec's table lists, in its order
    spec = SPEC.read_text(encoding="utf-8")
    block = spec.split("The string to sign", 1)[1].split("```")[1]
    assert [ln.split()[0] for ln in block.strip().splitlines()] == [
        "METHOD", "PATH", "TIMESTAMP", "NONCE", "BODY_SHA256"]


def test_signed_headers_verify_and_bind_method_path_body() -> None:
    key = new_private_key()
    pub = public_key_b64(key)
    assert len(base64.b64decode(pub)) == 32
    h = signed_headers(key, "kiosk-1", "POST", "/api/v1/sync/batch", b"body", 1765094400)
    assert re.fullmatch(r"[0-9a-f]{32}", h[HEADER_NONCE]) and h[HEADER_TIMESTAMP] == "1765094400"
    assert verify_signature(pub, h, "POST", "/api/v1/sync/batch", b"body")
    assert not verify_signature(pub, h, "POST", "/api/v1/sync/batch", b"bodY")
    assert not verify_signature(pub, h, "PUT", "/api/v1/sync/batch", b"body")
    assert not verify_signature(pub, h, "POST", "/api/v1/sync/batch?x=1", b"body")
    other = public_key_b64(new_private_key())
    assert not verify_signature(other, h, "POST", "/api/v1/sync/batch", b"body")
    assert base64.b64decode(h[HEADER_SIGNATURE])
    h2 = signed_headers(key, "kiosk-1", "POST", "/api/v1/sync/batch", b"body", 1765094400)
    assert h2[HEADER_NONCE] != h[HEADER_NONCE]


def test_backoff_full_jitter_within_bounds() -> None:
    policy = RetryPolicy()
    assert (policy.base, policy.cap, policy.attempts) == (0.5, 30.0, 6)   # §8's numbers
    rng = random.Random(7)
    for attempt in range(1, 12):
        ceiling = min(30.0, 0.5 * 2 ** attempt)
        draws = [policy.delay(attempt, rng) for _ in range(400)]
        assert all(0.0 <= d <= ceiling for d in draws)
        # full jitter: the draws spread over the whole range, not bunched at the top
        assert min(draws) < 0.1 * ceiling and max(draws) > 0.9 * ceiling
    assert policy.ceiling(20) == 30.0
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)


def test_which_statuses_are_retried() -> None:
    assert [s for s in (400, 401, 403, 404, 408, 409, 413, 415, 422, 429, 500, 502, 503)
            if retryable_status(s)] == [408, 429, 500, 502, 503]


@pytest.mark.parametrize("url", ["http://10.0.0.5:8000", "http://clinic.example.org",
                                 "http://127.example.org", "http://[2001:db8::1]:80"])
def test_plain_http_refused_unless_loopback_or_insecure(url: str) -> None:
    with pytest.raises(InsecureURLError, match="refusing plain http"):
        check_server_url(url)
    assert check_server_url(url, insecure=True) == url


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000", "http://127.8.9.10",
                                 "http://[::1]:8000", "http://localhost:1/", "https://x.org"])
def test_loopback_and_https_allowed(url: str) -> None:
    assert check_server_url(url) == url.rstrip("/")


@pytest.mark.parametrize("url", ["ftp://x.org", "127.0.0.1:8000", "https://u:p@x.org",
                                 "https://x.org/?a=1", "https://"])
def test_odd_urls_refused(url: str) -> None:
    with pytest.raises(InsecureURLError):
        check_server_url(url, insecure=True)


def test_is_loopback() -> None:
    assert is_loopback("localhost") and is_loopback("127.0.0.1") and is_loopback("[::1]")
    assert not is_loopback("localhost.example.org") and not is_loopback("10.0.0.1")
