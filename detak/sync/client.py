"""`SyncClient`: drain the kiosk store's outbox to the clinic server once (docs/sync.md).

One run: for each group of at most 10 pending screenings (``batch_size``; the protocol allows
50), upload the blobs each references
(chunked, resumable), send the batch, and mark each acknowledged item synced in its own SQLite
transaction with the server's id; ``missing_blob`` items are uploaded again and resent (twice at
most in one run); ``conflict`` and ``invalid`` items are marked failed and not retried. Every
answer's verdicts are stored with their cursor; the last answer's bundle offer is downloaded,
verified with the pinned key and installed. A run that cannot reach the server (retries spent)
stops; what it did not send stays pending with its error, and the next run starts over.

A run holds the store's sync lock (``.sync-lock``): the kiosk app's background sync and a
``detak sync`` started by hand do not send the same items at once.

>>> import tempfile
>>> from detak.kiosk.store import Store
>>> with Store.open(tempfile.mkdtemp() + "/s") as store:
...     SyncClient(store).sync()  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
detak.sync.errors.NotEnrolledError: this kiosk is not enrolled...
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import logging
import os
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from detak.kiosk import store_files as files
from detak.kiosk.store import Store
from detak.kiosk.store_errors import NotFoundError
from detak.sync.blobs import MAX_CHUNK, upload_blob
from detak.sync.bundles import download_and_install, installed_version
from detak.sync.errors import (
    ApiError,
    KioskRevokedError,
    NotEnrolledError,
    ServerBusyError,
    ServerUnreachableError,
    SyncError,
)
from detak.sync.http import API, Session
from detak.sync.items import Blob, LocalFilesError, build_item
from detak.sync.retry import RetryPolicy
from detak.sync.url import check_server_url
from detak.sync.wire import canonical_json, load_private_key

log = logging.getLogger(__name__)

PROTOCOL = 1
MAX_BATCH = 50
#: items per batch request: a batch's answer stays far below the 30-s read timeout on a busy
#: server, and a run's acknowledged part grows in steps of 10 (benchmarks/sync_load.py: at 200
#: kiosks at once, 40-item batches were answered in 13 s median, 25 s p99)
DEFAULT_BATCH = 10
#: a batch's JSON stays below this (the server takes 8 MiB after decompression)
MAX_BATCH_JSON = 6 << 20
#: rounds of (upload the missing blobs, resend) per group in one run
MISSING_BLOB_ROUNDS = 2
LOCK_FILE = ".sync-lock"
#: overrides the chunk size (bytes, ≤ 1 MiB): tests and benchmarks cut small blobs in chunks
CHUNK_ENV = "DETAK_SYNC_CHUNK_BYTES"
SYNCED = ("created", "duplicate")
REFUSED = ("conflict", "invalid")


@dataclasses.dataclass
class SyncReport:
    """What one run did: ``synced`` (this run), ``pending`` and ``failed`` (the outbox after
    it), the server's id of each screening synced in this run, the failures of this run,
    verdicts stored, the bundle installed, and ``error`` (why the run stopped early; ``busy``
    when it stopped because the server kept shedding load, docs/sync.md §8.1);
    ``deferrals``: the ``503 overloaded`` answers waited out, ``deferred_s`` the wait."""

    synced: int = 0
    pending: int = 0
    failed: int = 0
    server_ids: dict[str, int | None] = dataclasses.field(default_factory=dict)
    failures: list[dict[str, str]] = dataclasses.field(default_factory=list)
    verdicts: int = 0
    bundle: dict[str, Any] | None = None
    error: str | None = None
    requests_retried: int = 0
    deferrals: int = 0
    deferred_s: float = 0.0
    busy: bool = False

    @property
    def line(self) -> str:
        """``synced N, pending M, failed K`` (the last line `detak sync` prints)."""
        return f"synced {self.synced}, pending {self.pending}, failed {self.failed}"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@contextlib.contextmanager
def sync_lock(root: Path, wait_s: float | None) -> Iterator[bool]:
    """Hold the store's sync lock; yields False if another run kept it for ``wait_s``."""
    fd = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT, files.FILE_MODE)
    try:
        deadline = None if wait_s is None else time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if deadline is not None and time.monotonic() >= deadline:
                    yield False
                    return
                time.sleep(0.05)
        yield True
    finally:
        os.close(fd)


def _pack(items: list[tuple[dict[str, Any], list[Blob]]],
          limit: int) -> Iterator[list[tuple[dict[str, Any], list[Blob]]]]:
    """Items in groups whose JSON stays under ``limit`` bytes (one item may be alone)."""
    group: list[tuple[dict[str, Any], list[Blob]]] = []
    size = 0
    for entry in items:
        n = len(canonical_json(entry[0])) + 1
        if group and size + n > limit:
            yield group
            group, size = [], 0
        group.append(entry)
        size += n
    if group:
        yield group


class SyncClient:
    """The kiosk's sync client over an open `Store` (enrolled with `detak.sync.enroll`).

    ``insecure`` allows plain http:// to a non-loopback server; ``chunk_size`` (≤ 1 MiB;
    default ``$DETAK_SYNC_CHUNK_BYTES`` or 1 MiB) and ``batch_size`` (default 10, ≤ 50)
    bound each request; ``policy`` the retries; ``bundles_root`` where bundles install
    (default: `detak.export.bundle.bundles_root`); ``models`` the bundle names the kiosk
    reports; ``notify(message)`` hears the waits on a busy server ("server busy, retrying in
    N s"); ``transport``/``sleep``/``rng`` are for tests.
    """

    def __init__(self, store: Store, *, insecure: bool = False, chunk_size: int | None = None,
                 batch_size: int = DEFAULT_BATCH, policy: RetryPolicy | None = None,
                 timeout: httpx.Timeout | float | None = None,
                 bundles_root: str | Path | None = None, models: tuple[str, ...] = ("edge",),
                 transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 rng: random.Random | None = None, lock_wait_s: float | None = 300.0,
                 notify: Callable[[str], None] | None = None) -> None:
        if chunk_size is None:
            chunk_size = int(os.environ.get(CHUNK_ENV) or MAX_CHUNK)
        if not 0 < chunk_size <= MAX_CHUNK:
            raise ValueError(f"chunk_size must be 1..{MAX_CHUNK}")
        if not 0 < batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be 1..{MAX_BATCH}")
        self.store, self.insecure = store, insecure
        self.chunk_size, self.batch_size = chunk_size, batch_size
        self.policy = policy or RetryPolicy.from_env()
        self.timeout, self.transport = timeout, transport
        self.bundles_root, self.models = bundles_root, tuple(models)
        self.sleep, self.rng, self.lock_wait_s = sleep, rng or random.Random(), lock_wait_s
        self.notify = notify
        self._tried: set[str] = set()      # items whose blobs this run began to upload
        self._probe: set[str] = set()      # items to resume (HEAD first), not start afresh

    # ------------------------------------------------------------------ the run
    def session(self) -> Session:
        """A signed session for the enrolled server (`NotEnrolledError`, `KioskRevokedError`,
        `InsecureURLError` when there is none to make)."""
        enr = self.store.enrolment()
        if enr is None:
            raise NotEnrolledError("this kiosk is not enrolled: run `detak sync enroll "
                                   "SERVER_URL CODE --store DIR` with a code from the "
                                   "clinic's admin")
        if enr["revoked_at"]:
            raise KioskRevokedError("the server revoked this kiosk on "
                                    f"{enr['revoked_at'][:10]}: enrol it again to sync")
        url = check_server_url(enr["server_url"], self.insecure)
        return Session(url, kiosk_id=enr["kiosk_id"], key=load_private_key(enr["key_file"]),
                       clock_offset_s=enr["clock_offset_s"], on_offset=self.store.set_clock_offset,
                       policy=self.policy, timeout=self.timeout, transport=self.transport,
                       sleep=self.sleep, rng=self.rng, notify=self.notify)

    def sync(self) -> SyncReport:
        """Drain the outbox once (see the module docstring); never raises for the server's
        absence (the report's ``error`` says it), only for a kiosk that cannot sync at all
        (not enrolled, revoked, an insecure URL) or another run holding the lock too long."""
        report = SyncReport()
        with sync_lock(self.store.root, self.lock_wait_s) as got:
            if not got:
                raise SyncError("another sync of this store is running (the kiosk app's, or "
                                "another `detak sync`); try again when it ends")
            with self.session() as session:
                self._tried.clear()
                try:
                    self._run(session, report)
                    self.store.record_sync_attempt()
                except (ServerUnreachableError, ApiError) as err:
                    report.error = str(err)
                    report.busy = isinstance(err, ServerBusyError)
                    for uuid in self._tried:     # what it was sending stays pending, with why
                        self._note(uuid, str(err))
                    self.store.record_sync_attempt(str(err))
                except KioskRevokedError as err:
                    self.store.set_revoked()
                    self.store.record_sync_attempt(str(err))
                    raise
                finally:
                    report.requests_retried = session.retries
                    report.deferrals = session.deferrals
                    report.deferred_s = round(session.deferred_s, 3)
                    status = self.store.sync_status()
                    report.pending, report.failed = status["pending"], status["failed"]
        return report

    def _run(self, session: Session, report: SyncReport) -> None:
        rows = self.store.pending_sync_items()
        prepared: list[tuple[dict[str, Any], list[Blob]]] = []
        self._probe = {row["id"] for row in rows if row["attempts"]}
        for row in rows:
            try:
                prepared.append(build_item(self.store.root, row))
            except LocalFilesError as err:
                self._refuse(report, row["id"], "local_files_damaged", str(err))
        answer: dict[str, Any] | None = None
        for group in _pack(prepared, MAX_BATCH_JSON):
            for start in range(0, len(group), self.batch_size):
                answer = self._send_group(session, group[start:start + self.batch_size],
                                          report) or answer
        if answer is None:                  # nothing to send: ask for verdicts and bundles
            answer = self._post_batch(session, [], report)
        self._bundle(session, answer.get("bundle_offer"), report)

    # ------------------------------------------------------------------ one group
    def _send_group(self, session: Session, group: list[tuple[dict[str, Any], list[Blob]]],
                    report: SyncReport) -> dict[str, Any] | None:
        todo = group
        answer = None
        for _round in range(MISSING_BLOB_ROUNDS + 1):
            ready = []
            for item, blobs in todo:
                if self._upload(session, item["uuid"], blobs, report):
                    ready.append((item, blobs))
            if not ready:
                return answer
            answer = self._post_safely(session, [item for item, _ in ready], report) or answer
            if answer is None:
                return None
            missing = {r["uuid"] for r in answer.get("results", [])
                       if isinstance(r, dict) and r.get("status") == "missing_blob"}
            todo = [(item, blobs) for item, blobs in ready if item["uuid"] in missing]
            self._probe.update(missing)
            if not todo:
                return answer
        for item, _ in todo:
            self._note(item["uuid"], "missing_blob: the server still lacks a blob")
        return answer

    def _upload(self, session: Session, uuid: str, blobs: list[Blob],
                report: SyncReport) -> bool:
        """Upload an item's blobs; False when the server refuses one (the item is then
        marked failed or keeps its error, and is left out of the batch)."""
        self._tried.add(uuid)
        for blob in blobs:
            try:
                upload_blob(session, blob.sha256, blob.read(), self.chunk_size,
                            probe=uuid in self._probe)
            except LocalFilesError as err:
                self._refuse(report, uuid, "local_files_damaged", str(err))
                return False
            except ApiError as err:
                if err.status == 413:
                    self._refuse(report, uuid, "blob_too_large", str(err))
                else:
                    self._note(uuid, str(err))
                return False
        return True

    def _post_batch(self, session: Session, items: list[dict[str, Any]],
                    report: SyncReport) -> dict[str, Any]:
        body = {"protocol": PROTOCOL, "verdicts_since": self.store.verdicts_cursor(),
                "bundle": {"name": self.models[0],
                           "version": installed_version(self.models[0], self.bundles_root)},
                "items": items}
        _, answer = session.json("POST", f"{API}/sync/batch", body)
        if not isinstance(answer, dict) or not isinstance(answer.get("results"), list):
            raise ApiError(200, "bad_answer", "the batch answer has no results list")
        sent = {item["uuid"] for item in items}
        answered = set()
        for res in answer["results"]:
            if not isinstance(res, dict) or res.get("uuid") not in sent:
                continue
            uuid, status = res["uuid"], res.get("status")
            answered.add(uuid)
            error = res.get("error") or {}
            if status in SYNCED:
                self.store.mark_synced(uuid, res.get("server_id"))
                report.synced += 1
                report.server_ids[uuid] = res.get("server_id")
            elif status in REFUSED:
                self._refuse(report, uuid, f"{status}: {error.get('code') or status}",
                             str(error.get("message") or ""))
            elif status != "missing_blob":
                self._note(uuid, f"unknown status {status!r} in the server's answer")
        for uuid in sent - answered:
            self._note(uuid, "the server's answer did not name this item")
        verdicts = answer.get("verdicts") or []
        if verdicts or answer.get("verdicts_cursor") is not None:
            report.verdicts += self.store.save_verdicts(
                [v for v in verdicts if isinstance(v, dict) and v.get("uuid")],
                answer.get("verdicts_cursor"))
        return answer

    def _post_safely(self, session: Session, items: list[dict[str, Any]],
                     report: SyncReport) -> dict[str, Any] | None:
        """`_post_batch`; when the server refuses the whole batch as malformed (400, 413,
        422), halve it until the item it refuses is alone, and mark that one failed (one bad
        item never blocks the others). None when every item was refused so."""
        try:
            return self._post_batch(session, items, report)
        except ApiError as err:
            if err.status not in (400, 413, 422) or err.code == "protocol_unsupported" \
                    or not items:
                raise
            if len(items) == 1:
                self._refuse(report, items[0]["uuid"], f"invalid: {err.code}", err.detail)
                return None
        mid = len(items) // 2
        halves = [self._post_safely(session, part, report) for part in (items[:mid],
                                                                         items[mid:])]
        answers = [a for a in halves if a is not None]
        if not answers:
            return None
        return {**answers[-1], "results": [r for a in answers for r in a["results"]]}

    def _refuse(self, report: SyncReport, uuid: str, code: str, message: str) -> None:
        with contextlib.suppress(NotFoundError):   # synced meanwhile by another run
            self.store.mark_sync_failed(uuid, code, message)
            report.failures.append({"uuid": uuid, "code": code, "message": message})
            log.info("screening %s not synced: %s", uuid, code)

    def _note(self, uuid: str, error: str) -> None:
        with contextlib.suppress(NotFoundError):
            self.store.mark_failed(uuid, error)

    # ------------------------------------------------------------------ bundles
    def _bundle(self, session: Session, offer: Any, report: SyncReport) -> None:
        from detak.export.bundle import BundleError

        if not offer:
            return
        name = offer.get("name") if isinstance(offer, dict) else None
        if name not in self.models or offer.get("version") == installed_version(
                name, self.bundles_root):
            return
        status = self.store.sync_status()
        if offer.get("sha256") == status["bundle_rejected_sha256"]:
            return                                   # refused once: not downloaded again
        enr = self.store.enrolment() or {}
        if not enr.get("bundle_public_key"):
            report.bundle = {"installed": False, "version": offer.get("version"),
                             "error": "no bundle key was pinned at enrolment (the server had "
                             "none then): enrol the kiosk again to receive bundles"}
            return
        try:
            folder = download_and_install(session, offer, enr["bundle_public_key"],
                                          self.store.root / files.TMP, self.bundles_root)
        except BundleError as err:      # the signature or content is wrong: never again
            self.store.set_bundle_rejected(str(offer.get("sha256")))
            report.bundle = {"installed": False, "version": offer.get("version"),
                             "error": str(err)}
            log.warning("bundle %s refused: %s", offer.get("version"), err)
            return
        except (ApiError, httpx.TransportError) as err:   # next run tries again
            report.bundle = {"installed": False, "version": offer.get("version"),
                             "error": str(err)}
            return
        report.bundle = {"installed": True, "name": name, "version": offer.get("version"),
                         "folder": str(folder)}
