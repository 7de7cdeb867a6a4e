"""The kiosk side of benchmarks/sync_load.py: one client process simulating many kiosks.

A process gets a spec (JSON): its kiosks' numbers, their enrolment codes, the server's URL, the
screening templates and the work folder. It

1. fills one real kiosk store per kiosk (`detak.kiosk.store.Store`) with its day's screenings:
   each a template screening (the real pipeline's output on a LUDB 500-Hz 12-lead record, with
   its real PDF report) under a new id, its recording the template's plus a seeded 5-µV dither
   (so every recording, and every PDF, has its own SHA-256: nothing is deduplicated by the
   content store), for invented residents;
2. enrols each kiosk for real (`detak.sync.enroll.enroll`: its Ed25519 key, the one-time code,
   ``POST /api/v1/enroll``);
3. starts one thread per kiosk, each with its store open and a `TimedClient` (the real
   `SyncClient`, timed), prints ``ready`` and waits for ``go`` on stdin;
4. on ``go`` every thread runs one ``sync()`` (blobs, then the batch: docs/sync.md), and the
   process writes what it measured (each HTTP exchange, each screening's upload-to-ack time,
   each kiosk's report, its own CPU time) to the spec's ``out`` file and prints ``done``.

Run by benchmarks/sync_load.py as ``python benchmarks/_load_kiosks.py SPEC.json``.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from detak.data.recording import Recording  # noqa: E402
from detak.kiosk.store import Store  # noqa: E402
from detak.sync.client import SYNCED, SyncClient  # noqa: E402

DITHER_MV = 0.005
RESIDENTS_PER_KIOSK = 20


class TimedClient(SyncClient):
    """`SyncClient` that records every HTTP exchange (kind, seconds, status — ``"deferred"``
    for a ``503 overloaded`` — or error name, bytes sent) and, per screening, the time from the
    start of its first try (its first blob upload) to the answer of the batch request that
    acknowledged it, deferrals and waits included."""

    def __init__(self, store: Store, **kw: Any) -> None:
        super().__init__(store, **kw)
        self.upload_start: dict[str, float] = {}
        self.acked: dict[str, float] = {}
        self.exchanges: list[tuple[str, float, Any, int]] = []
        self._answered = 0.0

    def session(self):  # noqa: ANN201 - detak.sync.http.Session
        import httpx

        s = super().session()
        send = s._send                                        # noqa: SLF001

        def timed(method: str, path: str, body: bytes, headers: dict, signed: bool,
                  stream: bool) -> httpx.Response:
            kind = "batch" if path.split("?")[0].endswith("/sync/batch") else method
            t = time.monotonic()
            try:
                resp = send(method, path, body, headers, signed, stream)
            except httpx.TransportError as err:
                self.exchanges.append((kind, time.monotonic() - t, type(err).__name__,
                                       len(body)))
                raise
            now = time.monotonic()
            status: Any = resp.status_code
            if status == 503 and resp.headers.get("retry-after") is not None:
                try:    # a server shedding load (docs/sync.md §8.1): a deferral, not an error
                    if resp.json()["error"]["code"] == "overloaded":
                        status = "deferred"
                except (ValueError, KeyError, TypeError):
                    pass
            self.exchanges.append((kind, now - t, status, len(body)))
            if kind == "batch":
                self._answered = now
            return resp

        s._send = timed                                       # noqa: SLF001
        return s

    def _upload(self, session, uuid: str, blobs, report) -> bool:  # noqa: ANN001
        self.upload_start.setdefault(uuid, time.monotonic())
        return super()._upload(session, uuid, blobs, report)

    def _post_batch(self, session, items, report):  # noqa: ANN001, ANN202
        answer = super()._post_batch(session, items, report)
        for res in answer.get("results", []):
            if isinstance(res, dict) and res.get("status") in SYNCED:
                self.acked.setdefault(res["uuid"], self._answered)
        return answer


def _templates(folder: Path) -> list[dict[str, Any]]:
    meta = json.loads((folder / "templates.json").read_text())
    out = []
    for i, t in enumerate(meta):
        sig = np.load(folder / f"t{i}.npy")
        out.append({"screening": t["screening"], "fs": t["fs"], "leads": t["leads"],
                    "signal": sig, "pdf": (folder / f"t{i}.pdf").read_bytes()})
    return out


def fill_store(store_dir: Path, kiosk: int, n: int, templates: list[dict[str, Any]]) -> None:
    """A kiosk store holding ``n`` screenings of a day for invented residents."""
    rng = np.random.default_rng(kiosk)
    with Store.open(store_dir) as store:
        residents = [store.add_resident(f"Invented Resident {kiosk:03d}-{j:02d}",
                                        f"K{kiosk:03d}-R{j:02d}", birth_date="1938-05-0"
                                        f"{1 + j % 9}", sex="FM"[j % 2])
                     for j in range(min(RESIDENTS_PER_KIOSK, n))]
        for i in range(n):
            t = templates[(kiosk + i) % len(templates)]
            sid = uuid.UUID(bytes=rng.bytes(16), version=4).hex
            screening = {**t["screening"], "id": sid,
                         "created_at": f"2026-12-07T{7 + i * 10 // 60:02d}:{i * 10 % 60:02d}:00Z"}
            signal = t["signal"] + rng.normal(0.0, DITHER_MV, t["signal"].shape).astype(
                np.float32)
            pdf = t["pdf"] + f"\n% kiosk {kiosk} screening {i}\n".encode()
            store.save_screening(screening, Recording(signal, t["fs"], list(t["leads"])), pdf,
                                 resident_id=residents[i % len(residents)])


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def run(spec: dict[str, Any]) -> dict[str, Any]:
    from concurrent.futures import ThreadPoolExecutor

    from detak.sync.enroll import enroll

    work = Path(spec["work"])
    kiosks = spec["kiosks"]
    templates = _templates(Path(spec["templates"]))
    t = time.monotonic()
    with ThreadPoolExecutor(spec.get("prepare_threads", 4)) as pool:
        list(pool.map(lambda k: fill_store(work / f"kiosk-{k:03d}", k, spec["screenings"],
                                           templates), kiosks))
    prepare_s = time.monotonic() - t
    for k, code in zip(kiosks, spec["codes"], strict=True):
        enroll(work / f"kiosk-{k:03d}", spec["url"], code, name=f"load-kiosk-{k:03d}")
    go = threading.Event()
    results: dict[int, dict[str, Any]] = {}
    ready = [threading.Event() for _ in kiosks]

    def kiosk_thread(idx: int, k: int) -> None:
        res: dict[str, Any] = {"kiosk": k}
        results[k] = res
        try:
            with Store.open(work / f"kiosk-{k:03d}", sweep=False) as store:
                client = TimedClient(store, lock_wait_s=5.0,
                                     **({"batch_size": spec["batch_size"]}
                                        if spec.get("batch_size") else {}))
                ready[idx].set()
                go.wait()
                res["start"] = time.time()
                try:
                    report = client.sync()
                    res.update(synced=report.synced, pending=report.pending,
                               failed=report.failed, error=report.error,
                               failures=report.failures, retried=report.requests_retried,
                               deferrals=report.deferrals, deferred_s=report.deferred_s)
                except Exception as err:  # noqa: BLE001 - counted as an error of this kiosk
                    res["exception"] = f"{type(err).__name__}: {err}"
                res["end"] = time.time()
                res["exchanges"] = client.exchanges
                res["latencies"] = [client.acked[u] - s for u, s in client.upload_start.items()
                                    if u in client.acked]
        except Exception as err:  # noqa: BLE001
            res["exception"] = f"{type(err).__name__}: {err}"
        finally:
            ready[idx].set()

    threads = [threading.Thread(target=kiosk_thread, args=(i, k), daemon=True)
               for i, k in enumerate(kiosks)]
    for th in threads:
        th.start()
    for ev in ready:
        ev.wait()
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        raise SystemExit("expected 'go' on stdin")
    cpu0, go_wall = _cpu(), time.time()
    go.set()
    deadline = time.monotonic() + spec["max_seconds"]
    for th in threads:
        th.join(max(0.0, deadline - time.monotonic()))
    unfinished = [k for k in kiosks if "end" not in results.get(k, {})]
    return {"go": go_wall, "cpu_s": _cpu() - cpu0, "prepare_s": prepare_s, "pid": os.getpid(),
            "threads": len(kiosks), "unfinished": unfinished,
            "kiosks": [results.get(k, {"kiosk": k}) for k in kiosks]}


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text())
    out = run(spec)
    Path(spec["out"]).write_text(json.dumps(out))
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
