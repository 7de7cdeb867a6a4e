"""Fixtures for the sync client's tests: a kiosk store with screenings, a fake server
(tests/sync/fake_server.py), an enrolled client that never sleeps."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from detak.data.recording import Recording
from detak.kiosk.store import Store
from detak.sync.client import SyncClient
from detak.sync.enroll import enroll
from detak.sync.retry import RetryPolicy
from tests.sync.fake_server import FakeServer

LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]


def make_recording(seed: int, seconds: float = 2.0, fs: float = 250.0) -> Recording:
    rng = np.random.default_rng(seed)
    return Recording(rng.normal(0, 0.3, (12, int(seconds * fs))).astype(np.float32), fs,
                     list(LEADS))


def add_screenings(store: Store, n: int, *, seed: int = 0, resident: bool = True,
                   report: bool = True, seconds: float = 2.0) -> list[str]:
    """``n`` screenings (uuid4 hex ids), each with its own recording and a PDF-ish report."""
    rid = None
    if resident:
        number = f"R-{seed}"
        row = store.resident_by_number(number)
        rid = row["id"] if row else store.add_resident("Invented Resident", number,
                                                       birth_date="1940-01-02", sex="F")
    ids = []
    for i in range(n):
        sid = uuid.UUID(int=random.Random(seed * 1000 + i).getrandbits(128), version=4).hex
        store.save_screening({"id": sid, "created_at": f"2026-12-07T08:{i % 60:02d}:00Z",
                              "intervals": {"hr_bpm": 60.0 + i, "qtc_bazett_ms": 420.5},
                              "note": "ü"}, make_recording(seed * 1000 + i, seconds),
                             report_pdf=(b"%PDF-1.4 invented " + sid.encode()) if report
                             else None, resident_id=rid)
        ids.append(sid)
    return ids


@pytest.fixture
def bundle_keys(tmp_path: Path) -> tuple[Path, Path]:
    from detak.export.bundle import generate_keypair

    return generate_keypair(tmp_path / "bundle.pem", tmp_path / "bundle.pub")


@pytest.fixture
def server(bundle_keys: tuple[Path, Path]) -> FakeServer:
    return FakeServer(bundle_public_key=bundle_keys[1].read_text())


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "store") as s:
        yield s


@pytest.fixture
def enrolled(store: Store, server: FakeServer) -> Store:
    enroll(store.root, "http://127.0.0.1:9", "good-code", transport=server.transport())
    return store


def make_client(store: Store, server: FakeServer, **kw: object) -> SyncClient:
    sleeps: list[float] = []
    opts = {"transport": server.transport(), "sleep": sleeps.append,
            "rng": random.Random(1), "policy": RetryPolicy(base=0.5, cap=30.0, attempts=6)}
    opts.update(kw)
    client = SyncClient(store, **opts)  # type: ignore[arg-type]
    client.sleeps = sleeps  # type: ignore[attr-defined]
    return client
