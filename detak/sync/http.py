"""`Session`: the kiosk's HTTP requests to the clinic server (docs/sync.md §2, §4, §8): each
request signed afresh (new nonce, the kiosk clock plus its offset), retried with backoff and
full jitter on connection errors, timeouts, 5xx, 408 and 429, the clock offset corrected once on
``timestamp_out_of_window``; JSON bodies gzip-compressed. ``503 overloaded`` (a server shedding
load, §8.1) is a deferral: the request waits the server's ``Retry-After`` (jittered) and is sent
again without spending one of its attempts, within the run's ``defer_s``; ``notify`` hears
"server busy, retrying in N s".

>>> import httpx
>>> def server(request):
...     return httpx.Response(200, json={"ok": True}, headers={"X-Detak-Server-Time": "0"})
>>> s = Session("http://127.0.0.1:9", transport=httpx.MockTransport(server))
>>> s.request("GET", "/api/v1/healthz", signed=False).json()
{'ok': True}
"""

from __future__ import annotations

import gzip
import json
import logging
import math
import random
import time
from collections.abc import Callable
from typing import Any

import httpx

from detak.sync.errors import ApiError, KioskRevokedError, ServerBusyError, ServerUnreachableError
from detak.sync.retry import OVERLOADED, RetryPolicy, deferral_s, retry_after_s, retryable_status
from detak.sync.wire import HEADER_SERVER_TIME, canonical_json, signed_headers

log = logging.getLogger(__name__)

API = "/api/v1"
#: JSON bodies at least this long are sent gzip-compressed
GZIP_MIN_BYTES = 512
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
#: a 401 from a server whose clock is further than this from ours is taken as
#: ``timestamp_out_of_window`` (the server's window is 300 s; §4)
SKEW_WINDOW_S = 240.0


def error_of(resp: httpx.Response) -> tuple[str, str]:
    """``(code, message)`` of an error answer (§2), or a code made of the status."""
    try:
        err = resp.json().get("error") or {}
        return str(err.get("code") or f"http_{resp.status_code}"), str(err.get("message") or "")
    except (ValueError, AttributeError):
        return f"http_{resp.status_code}", ""


def json_body(obj: Any, compress: bool = True) -> tuple[bytes, dict[str, str]]:
    """The bytes and headers of a JSON request body (gzip when long enough)."""
    raw = canonical_json(obj)
    headers = {"Content-Type": "application/json"}
    if compress and len(raw) >= GZIP_MIN_BYTES:
        raw = gzip.compress(raw, compresslevel=6, mtime=0)
        headers["Content-Encoding"] = "gzip"
    return raw, headers


class Session:
    """Requests to one server as one kiosk (``kiosk_id`` and ``key`` None: unsigned, for
    enrolment). ``clock_offset_s``: server time − kiosk time; ``on_offset(s)`` is called when
    it changes. ``notify(message)`` hears the waits on a busy server (one line, e.g. "server
    busy, retrying in 4 s"). ``sleep`` and ``rng`` are injectable for tests."""

    def __init__(self, server_url: str, *, kiosk_id: str | None = None, key: Any = None,
                 clock_offset_s: float = 0.0,
                 on_offset: Callable[[float], None] | None = None,
                 policy: RetryPolicy | None = None, timeout: httpx.Timeout | float | None = None,
                 transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 rng: random.Random | None = None,
                 clock: Callable[[], float] = time.time,
                 notify: Callable[[str], None] | None = None) -> None:
        import detak

        self.server_url = server_url.rstrip("/")
        self.kiosk_id, self.key = kiosk_id, key
        self.clock_offset_s = float(clock_offset_s)
        self.on_offset = on_offset
        self.policy = policy or RetryPolicy()
        self.sleep, self.rng, self.clock = sleep, rng or random.Random(), clock
        self.retries = 0       # how many requests were retried (for reports and benchmarks)
        self.deferrals = 0     # how many `503 overloaded` answers were waited out
        self.deferred_s = 0.0  # and the seconds waited on them
        self.notify = notify
        self.client = httpx.Client(timeout=timeout or DEFAULT_TIMEOUT, transport=transport,
                                   headers={"User-Agent": f"detak-sync/{detak.__version__}"},
                                   follow_redirects=False)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _server_time(self, resp: httpx.Response) -> float | None:
        try:
            return float(resp.headers[HEADER_SERVER_TIME])
        except (KeyError, ValueError):
            return None

    def _set_offset(self, server_time: float) -> None:
        self.clock_offset_s = server_time - self.clock()
        log.info("kiosk clock differs from the server's by %.0f s: using the server's time "
                    "for signatures", self.clock_offset_s)
        if self.on_offset is not None:
            self.on_offset(self.clock_offset_s)

    def _send(self, method: str, path: str, body: bytes, headers: dict[str, str],
              signed: bool, stream: bool) -> httpx.Response:
        req = self.client.build_request(method, self.server_url + path, content=body,
                                        headers=headers)
        if signed:
            if self.key is None or not self.kiosk_id:
                raise ValueError("a signed request needs the kiosk id and key")
            sent_path = req.url.raw_path.decode("ascii")   # path and query exactly as sent
            req.headers.update(signed_headers(self.key, self.kiosk_id, method, sent_path, body,
                                              int(self.clock() + self.clock_offset_s)))
        return self.client.send(req, stream=stream)

    def request(self, method: str, path: str, *, body: bytes = b"",
                headers: dict[str, str] | None = None, json_obj: Any = None,
                signed: bool = True, stream: bool = False,
                ok_statuses: tuple[int, ...] = ()) -> httpx.Response:
        """Send ``method path`` (``path`` from the server root, with its query), retrying as
        §8 says; returns a 2xx answer or one whose status is in ``ok_statuses``. Raises
        `ServerUnreachableError` when the retries are spent, `KioskRevokedError` on
        ``kiosk_revoked``, `ApiError` for any other final error answer."""
        headers = dict(headers or {})
        if json_obj is not None:
            body, extra = json_body(json_obj)
            headers.update(extra)
        skew_fixed = replay_fixed = False
        attempt, last = 0, "no answer"
        while True:
            attempt += 1
            try:
                resp = self._send(method, path, body, headers, signed, stream)
            except httpx.TransportError as exc:   # connect/read/write errors and timeouts
                last = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                resp = None
            if resp is not None:
                status = resp.status_code
                if 200 <= status < 300 or status in ok_statuses:
                    return resp
                if stream:
                    resp.read()
                code, message = error_of(resp)
                if status == 401 and code == "kiosk_revoked":
                    raise KioskRevokedError("the server revoked this kiosk: it no longer syncs "
                                            "(ask the clinic's admin to enrol it again)")
                server_time = self._server_time(resp)
                # a HEAD's 401 has no body to name the code: the server's clock says it
                skewed = code == "timestamp_out_of_window" or (
                    server_time is not None and abs(server_time - self.clock()
                                                    - self.clock_offset_s) > SKEW_WINDOW_S)
                if status == 401 and skewed and not skew_fixed and signed \
                        and server_time is not None:
                    skew_fixed = True
                    self._set_offset(server_time)
                    attempt -= 1               # the retry that §4 allows does not count
                    continue
                if status == 503 and code == OVERLOADED:
                    self._defer(method, path, resp)
                    attempt -= 1               # a deferral is not a failed attempt (§8.1)
                    continue
                if status == 401 and code == "nonce_replayed" and not replay_fixed:
                    replay_fixed = True        # a proxy replayed our request: a new nonce
                    attempt -= 1
                    continue
                if not retryable_status(status):
                    raise ApiError(status, code, message)
                last = f"{status} {code}"
            if attempt >= self.policy.attempts:
                raise ServerUnreachableError(
                    f"{method} {path.split('?')[0]}: no answer after {attempt} attempt(s) "
                    f"(last: {last})")
            wait = self.policy.delay(attempt, self.rng)
            if resp is not None:
                after = retry_after_s(resp.headers.get("Retry-After"), self.policy.cap)
                wait = max(wait, after or 0.0)
            self.retries += 1
            log.info("%s %s: %s; retry %d in %.2f s", method, path.split("?")[0], last,
                     attempt, wait)
            self.sleep(wait)

    def _defer(self, method: str, path: str, resp: httpx.Response) -> None:
        """Wait out one ``503 overloaded`` (jittered ``Retry-After``), or raise
        `ServerBusyError` when the run's ``defer_s`` would be spent."""
        wait = deferral_s(resp.headers.get("Retry-After"), self.rng)
        if self.deferred_s + wait > self.policy.defer_s:
            raise ServerBusyError(
                f"{method} {path.split('?')[0]}: the server is busy (answered 503 overloaded "
                f"{self.deferrals + 1} time(s) in this run, {self.deferred_s:.0f} s waited); "
                "the next run goes on")
        self.deferrals += 1
        self.deferred_s += wait
        log.info("%s %s: server busy, retrying in %.1f s", method, path.split("?")[0], wait)
        if self.notify is not None:
            self.notify(f"server busy, retrying in {math.ceil(wait)} s")
        self.sleep(wait)

    def json(self, method: str, path: str, obj: Any = None, *, signed: bool = True,
             ok_statuses: tuple[int, ...] = ()) -> tuple[int, Any]:
        """A JSON request; returns ``(status, decoded answer)``."""
        resp = self.request(method, path, json_obj=obj, signed=signed, ok_statuses=ok_statuses)
        try:
            return resp.status_code, resp.json()
        except json.JSONDecodeError as exc:
            raise ApiError(resp.status_code, "bad_answer",
                           f"{method} {path}: the answer is not JSON") from exc
