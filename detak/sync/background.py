"""`BackgroundSync`: the kiosk app's sync, in a thread, whenever the server answers.

Every ``interval_s`` (30 s) it looks at the outbox; when screenings are pending — or
``idle_s`` (5 min) after the last run, to fetch verdicts and bundle offers — it runs one
`SyncClient.sync` over its own connection to the store, with short retries (3 tries, at most
5 s apart) so that a missing link costs little. After a run that did not reach the server it
waits longer each time (full jitter, doubling up to ``max_backoff_s``), and goes back to
``interval_s`` as soon as one succeeds. `wake` asks for a run now. A store that is not
enrolled (or whose kiosk was revoked) is only re-checked, never synced; the app keeps working
either way. It uses the choice of ``--insecure`` made at enrolment. A busy server (``503
overloaded``, docs/sync.md §8.1) is waited for as it asks, up to 2 minutes a run: meanwhile
`last` is ``{"state": "busy", "retry_at": MONOTONIC, ...}`` (the app shows "server busy,
next try in N s", not an error), and a run that ends busy counts as one that did
not reach the server (the loop backs off).

>>> import tempfile
>>> from detak.kiosk.store import Store
>>> d = tempfile.mkdtemp() + "/s"; Store.open(d).close()
>>> bg = BackgroundSync(d, interval_s=0.01)
>>> bg.run_once()["state"]
'not enrolled'
"""

from __future__ import annotations

import logging
import random
import threading
import time
from pathlib import Path
from typing import Any

from detak.sync.retry import RetryPolicy

log = logging.getLogger(__name__)

#: the retries of one background run: short, the loop itself backs off between runs
BACKGROUND_POLICY = RetryPolicy(base=0.5, cap=5.0, attempts=3, defer_s=120.0)


class BackgroundSync:
    """The loop (see the module docstring) over the store folder ``store_dir``."""

    def __init__(self, store_dir: str | Path, *, interval_s: float = 30.0, idle_s: float = 300.0,
                 max_backoff_s: float = 600.0, policy: RetryPolicy = BACKGROUND_POLICY,
                 client_options: dict[str, Any] | None = None) -> None:
        self.store_dir = Path(store_dir)
        self.interval_s, self.idle_s, self.max_backoff_s = interval_s, idle_s, max_backoff_s
        self.policy = policy
        self.client_options = dict(client_options or {})
        self.failures = 0
        self.last: dict[str, Any] = {"state": "not started"}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._rng = random.Random()
        self._last_run: float | None = None
        self._not_before = 0.0

    def run_once(self) -> dict[str, Any]:
        """One run now (in the caller's thread); returns what `last` then says."""
        from detak.kiosk.store import Store
        from detak.sync.client import SyncClient
        from detak.sync.errors import KioskRevokedError, SyncError

        with Store.open(self.store_dir, create=False, sweep=False) as store:
            enr = store.enrolment()
            if enr is None:
                self.last = {"state": "not enrolled"}
                return self.last
            if enr["revoked_at"]:
                self.last = {"state": "revoked"}
                return self.last
            client = SyncClient(store, insecure=enr["insecure"], policy=self.policy,
                                lock_wait_s=0.0, notify=self._busy, **self.client_options)
            try:
                report = client.sync()
            except KioskRevokedError:
                self.last = {"state": "revoked"}
                return self.last
            except SyncError as err:           # another run holds the lock, an insecure URL
                self.last = {"state": "skipped", "error": str(err)}
                return self.last
        self.failures = 0 if report.error is None else self.failures + 1
        state = "ok" if report.error is None else "busy" if report.busy else "unreachable"
        self.last = {"state": state, "synced": report.synced, "pending": report.pending,
                     "failed": report.failed, "error": report.error}

        if report.synced or report.error:
            log.info("background sync: synced %d, pending %d, failed %d%s", report.synced,
                     report.pending, report.failed, f" ({report.error})" if report.error else "")
        return self.last

    def _busy(self, message: str) -> None:
        """A run waits on a busy server: say so (`last`) until it goes on."""
        import re

        m = re.search(r"(\d+) s", message)
        self.last = {"state": "busy", "message": message,
                     "retry_at": time.monotonic() + (float(m.group(1)) if m else 1.0)}

    def busy_for_s(self, now: float | None = None) -> float | None:
        """Seconds until the busy server is tried again (None when it is not busy).

        >>> bg = BackgroundSync("/nonexistent"); bg.busy_for_s() is None
        True
        """
        if self.last.get("state") != "busy":
            return None
        now = time.monotonic() if now is None else now
        return max(1.0, float(self.last.get("retry_at", now)) - now)

    def backoff_s(self) -> float:
        """After ``failures`` runs in a row that did not reach the server: how long to wait
        before the next (full jitter between ``interval_s`` and the doubling ceiling)."""
        if not self.failures:
            return 0.0
        return self._rng.uniform(self.interval_s, min(
            self.max_backoff_s, self.interval_s * 2.0 ** min(self.failures, 20)))

    def due(self, now: float) -> bool:
        """Is a run due at ``now`` (monotonic seconds)? Not while backing off; yes when
        screenings are pending, or ``idle_s`` after the last run (verdicts, bundles)."""
        if now < self._not_before:
            return False
        if self._last_run is None or now - self._last_run >= self.idle_s:
            return True
        from detak.kiosk.store import Store

        with Store.open(self.store_dir, create=False, sweep=False) as store:
            return store.outbox_count() > 0 and store.enrolment() is not None

    def _loop(self) -> None:
        while not self._stop.is_set():
            woken = self._wake.is_set()
            self._wake.clear()
            now = time.monotonic()
            try:
                if woken or self.due(now):
                    self._last_run = now
                    self.run_once()
                    self._not_before = time.monotonic() + self.backoff_s()
                    if self.last.get("state") == "busy":     # the next run is the next try
                        self.last["retry_at"] = max(self._not_before, time.monotonic()
                                                    + self.interval_s)
            except Exception as err:  # noqa: BLE001 - the app keeps running; said in the log
                self.failures += 1
                self._not_before = time.monotonic() + self.backoff_s()
                self.last = {"state": "error", "error": f"{type(err).__name__}: {err}"}
                log.warning("background sync failed: %s", self.last["error"])
            self._wake.wait(self.interval_s)

    def start(self) -> BackgroundSync:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="detak-sync", daemon=True)
            self._thread.start()
        return self

    def wake(self) -> None:
        """Run as soon as the current wait ends (e.g. a screening was just saved)."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
