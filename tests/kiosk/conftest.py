"""Fixtures for the kiosk store tests: a recording, a screening dict, an open store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from detak.data.recording import Recording
from detak.data.samples import load_sample
from detak.kiosk.store import Store


@pytest.fixture(scope="session")
def sample_recording() -> Recording:
    return load_sample("ptbxl-00286")


def make_screening(sid: str = "scr-1", **extra: object) -> dict:
    return {"id": sid, "created_at": "2026-12-07T08:00:00+00:00",
            "intervals": {"hr_bpm": 71.5, "qtc_bazett_ms": 431.0}, **extra}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "store") as s:
        yield s
