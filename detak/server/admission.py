"""Admission control for the kiosk API (docs/sync.md §8.1): a bounded number of requests in
progress per worker process, a short wait for a slot, and ``503 overloaded`` with
``Retry-After`` for the rest — at once, before the body is read or the database is touched.

A server that takes every request when its CPU is saturated only makes every request wait
longer (with N kiosks each holding one request open, Little's law puts every request N ÷
throughput behind). Shedding keeps the requests it accepts fast and tells the others when to
come back; the kiosk waits at home (its outbox is durable) instead of holding a connection
toward its 30-s timeout.

What is limited: the kiosks' API (``/api/v1/enroll``, ``/api/v1/blobs/...``,
``/api/v1/sync/...``, ``/api/v1/bundles/...``) other than ``HEAD``: its client retries by
protocol. Never shed: ``GET /healthz`` (a load balancer must see a busy server as alive); the
staff's pages, the review and expert pages, the staff's JSON under ``/api/v1`` (``me``,
``screenings``, ``review/...``) and ``/fhir`` (few requests, made by people or the hospital's
system, served from the database pool's overflow); and ``HEAD`` of a blob (a cheap probe made
only when resuming, whose answer has no body to carry the error code).

A kiosk the worker sent home goes first when it comes back (`Gate`): without that, the
requests shed are chosen at random and an unlucky one is sent home again and again, which is
what lengthens the per-screening tail.

``Retry-After`` is the worker's own estimate of when a slot is likely to be free for this
kiosk: the kiosks it recently sent home and the requests it holds, divided by the requests it
completes per second, in whole seconds within [1, 30].

>>> gate = Gate(limit=1, waiting=0, wait_s=0.0)
>>> import asyncio
>>> async def demo():
...     first = await gate.acquire()
...     second = await gate.acquire()      # full, nobody may wait: shed
...     gate.release()
...     third = await gate.acquire()
...     gate.release()
...     return first, second, third
>>> asyncio.run(demo())
(True, False, True)
>>> gate = Gate(limit=1, waiting=1, wait_s=5.0)
>>> async def returning_kiosk_goes_first():
...     await gate.acquire()                           # the one slot, held
...     newcomer = asyncio.ensure_future(gate.acquire())
...     await asyncio.sleep(0)                         # the newcomer waits in line
...     back = asyncio.ensure_future(gate.acquire(priority=True))
...     await asyncio.sleep(0)                         # line full: the newcomer is shed
...     gate.release()                                 # the slot goes to the returning kiosk
...     return await newcomer, await back
>>> asyncio.run(returning_kiosk_goes_first())
(False, True)
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import math
import os
import time
from typing import Any

#: environment variables `detak server` hands to its uvicorn workers
ACTIVE_ENV = "DETAK_SERVER_MAX_ACTIVE"
WAITING_ENV = "DETAK_SERVER_MAX_WAITING"
WAIT_ENV = "DETAK_SERVER_MAX_WAIT"
#: defaults per worker process: 4 requests in progress (the database pool holds 5), 16 more may
#: wait at most 0.75 s for a slot (benchmarks/sync_load.py, docs/server.md "Scaling")
DEFAULT_ACTIVE, DEFAULT_WAITING, DEFAULT_WAIT_S = 4, 16, 0.75
RETRY_AFTER_MIN, RETRY_AFTER_MAX = 1, 30
#: completions within this many seconds make the worker's throughput estimate
RATE_WINDOW_S = 10.0
#: a kiosk sent home is counted as waiting for this long (or until it is admitted)
DEFERRED_TTL_S = 60.0
_MAX_DEFERRED = 10_000
#: the kiosk API's paths (docs/sync.md): what admission control limits
KIOSK_PATHS = ("/api/v1/enroll", "/api/v1/blobs/", "/api/v1/sync/", "/api/v1/bundles/")


class Gate:
    """At most ``limit`` holders; up to ``waiting`` more wait at most ``wait_s`` seconds for a
    slot, first come, first served — except that a *priority* waiter (a kiosk coming back after
    it was sent home) goes before the others, and when the waiting line is full takes the place
    of the newest ordinary waiter, who is shed instead: a request is seldom sent home twice in a
    row (it still is when the line is full of returning kiosks, or its wait runs out).
    ``limit`` 0: no limit. One per worker process (its event loop); not thread-safe, not meant
    to be."""

    def __init__(self, limit: int, waiting: int, wait_s: float) -> None:
        if limit < 0 or waiting < 0 or wait_s < 0:
            raise ValueError("limit, waiting and wait_s must be >= 0")
        self.limit, self.waiting, self.wait_s = limit, waiting, wait_s
        self.active = 0
        self._first: collections.deque[asyncio.Future] = collections.deque()   # priority
        self._line: collections.deque[asyncio.Future] = collections.deque()

    @property
    def queued(self) -> int:
        return sum(1 for q in (self._first, self._line) for f in q if not f.done())

    def _displace(self) -> bool:
        """Shed the newest ordinary waiter (its `acquire` returns False); False if none."""
        for fut in reversed(self._line):
            if not fut.done():
                fut.set_result(False)
                return True
        return False

    async def acquire(self, priority: bool = False) -> bool:
        """True with a slot held (call `release`), False when shed."""
        if not self.limit or (self.active < self.limit and not self.queued):
            self.active += 1
            return True
        if self.wait_s <= 0 or (self.queued >= self.waiting
                                and not (priority and self._displace())):
            return False
        fut = asyncio.get_running_loop().create_future()
        line = self._first if priority else self._line
        line.append(fut)
        try:
            return bool(await asyncio.wait_for(fut, self.wait_s))  # `release` hands a slot
        except TimeoutError:
            return False
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled() and fut.result():   # handed, then cancelled
                self.release()
            raise
        finally:
            with contextlib.suppress(ValueError):
                line.remove(fut)

    def release(self) -> None:
        """Give the slot to the first priority waiter, else the longest waiter, or free it."""
        for line in (self._first, self._line):
            while line:
                fut = line.popleft()
                if not fut.done():
                    fut.set_result(True)
                    return
        self.active = max(0, self.active - 1)


class Admission:
    """The ASGI middleware (see the module docstring); ``limit`` 0 turns it off. Counts and
    the current state are in `snapshot` (shown by ``GET /healthz``)."""

    def __init__(self, app: Any, limit: int = DEFAULT_ACTIVE, waiting: int = DEFAULT_WAITING,
                 wait_s: float = DEFAULT_WAIT_S, clock: Any = time.monotonic) -> None:
        self.app, self.clock = app, clock
        self.gate = Gate(limit, waiting, wait_s)
        self.shed_total = self.admitted_total = 0
        self._done: collections.deque[float] = collections.deque()
        self._deferred: dict[str, float] = {}

    @classmethod
    def from_env(cls, app: Any, environ: dict[str, str] | None = None) -> Admission:
        """Limits from ``$DETAK_SERVER_MAX_ACTIVE``, ``..._MAX_WAITING``, ``..._MAX_WAIT``."""
        env = os.environ if environ is None else environ
        return cls(app, int(env.get(ACTIVE_ENV) or DEFAULT_ACTIVE),
                   int(env.get(WAITING_ENV) or DEFAULT_WAITING),
                   float(env.get(WAIT_ENV) or DEFAULT_WAIT_S))

    @staticmethod
    def limited(scope: dict) -> bool:
        """Is this request one that admission control may shed?"""
        if scope["type"] != "http" or scope.get("method") == "HEAD":
            return False
        path = scope.get("path", "")
        root = scope.get("root_path") or ""
        if root and path.startswith(root + "/"):
            path = path[len(root):]
        return path.startswith(KIOSK_PATHS)

    def rate(self, now: float) -> float:
        """Requests this worker completed per second over the last `RATE_WINDOW_S`."""
        while self._done and self._done[0] < now - RATE_WINDOW_S:
            self._done.popleft()
        if not self._done:
            return 0.0
        span = max(now - self._done[0], 1.0)
        return len(self._done) / span

    def retry_after(self, now: float) -> int:
        """Whole seconds until a slot is likely free for a kiosk sent home now."""
        for kid, t in list(self._deferred.items()):
            if t < now - DEFERRED_TTL_S:
                del self._deferred[kid]
        backlog = len(self._deferred) + self.gate.active + self.gate.queued
        rate = self.rate(now)
        estimate = backlog / rate if rate > 0 else float(RETRY_AFTER_MIN)
        return int(min(RETRY_AFTER_MAX, max(RETRY_AFTER_MIN, math.ceil(estimate))))

    def snapshot(self) -> dict[str, Any]:
        now = self.clock()
        return {"limit": self.gate.limit, "max_waiting": self.gate.waiting,
                "max_wait_s": self.gate.wait_s, "active": self.gate.active,
                "waiting": self.gate.queued, "admitted_total": self.admitted_total,
                "shed_total": self.shed_total, "deferred_kiosks": len(self._deferred),
                "completed_per_s": round(self.rate(now), 2), "pid": os.getpid()}

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope.setdefault("state", {})["admission"] = self
        if not self.limited(scope):
            await self.app(scope, receive, send)
            return
        kiosk = _header(scope, b"x-detak-kiosk")
        back = kiosk is not None and kiosk in self._deferred   # sent home before: goes first
        if not await self.gate.acquire(priority=back):
            await self._shed(scope, send, kiosk)
            return
        self.admitted_total += 1
        if kiosk:
            self._deferred.pop(kiosk, None)
        try:
            await self.app(scope, receive, send)
        finally:
            self.gate.release()
            self._done.append(self.clock())

    async def _shed(self, scope: dict, send: Any, kiosk: str | None) -> None:
        now = self.clock()
        self.shed_total += 1
        if kiosk and (kiosk in self._deferred or len(self._deferred) < _MAX_DEFERRED):
            self._deferred[kiosk] = now
        after = self.retry_after(now)
        body = json.dumps({"error": {"code": "overloaded", "message": "the server is busy: "
                                     f"retry in {after} s"}}).encode()
        await send({"type": "http.response.start", "status": 503, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(after).encode())]})
        await send({"type": "http.response.body", "body": body})


def _header(scope: dict, name: bytes) -> str | None:
    for k, v in scope.get("headers", ()):
        if k == name:
            return v.decode("latin-1")[:64]
    return None
