"""Tests for detak.device.chunks: the append-only journal and what a crash leaves of it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from detak.device.chunks import PartsError, PartsStore, load_parts
from detak.device.ringbuffer import MISSING


def test_an_existing_journal_is_never_overwritten(tmp_path: Path) -> None:
    PartsStore(tmp_path / "a.parts", {"n_channels": 2}).close()
    with pytest.raises(PartsError, match=r"already holds a recording's parts; recover it"):
        PartsStore(tmp_path / "a.parts", {"n_channels": 2})


def test_loading_something_that_is_not_a_journal_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(PartsError, match="session.json missing"):
        load_parts(tmp_path)
    (tmp_path / "session.json").write_text('{"format": "other/9"}')
    with pytest.raises(PartsError, match="format 'other/9'"):
        load_parts(tmp_path)


def test_a_chunk_with_a_partial_sample_is_reported(tmp_path: Path) -> None:
    store = PartsStore(tmp_path / "p", {"n_channels": 3})
    store.write_chunk(0, np.ones((3, 4), np.int32))
    store.close()
    (tmp_path / "p" / "chunks" / "000000000004.i32").write_bytes(b"\x00" * 8)
    with pytest.raises(PartsError, match="not a whole number of 3-channel samples"):
        load_parts(tmp_path / "p")


def test_chunk_with_the_wrong_channel_count_is_refused(tmp_path: Path) -> None:
    store = PartsStore(None, {"n_channels": 2})
    with pytest.raises(ValueError, match="chunk has 3 channels, session has 2"):
        store.write_chunk(0, np.zeros((3, 1), np.int32))


def test_what_a_crash_leaves_is_read_back(tmp_path: Path) -> None:
    d = tmp_path / "r.parts"
    store = PartsStore(d, {"n_channels": 2, "info": {"x": 1}})
    first = np.array([[1, 2, 3], [4, 5, 6]], np.int32)
    store.write_chunk(0, first)
    store.add_event({"kind": "gap", "start": 3, "stop": 6})
    store.write_chunk(3, np.full((2, 3), MISSING, np.int32))   # inside a gap: no file
    store.write_chunk(6, first * 10)
    store.add_event({"kind": "lead_off", "sample": 7})         # written but never synced
    # the process dies here: no close(); simulate a torn last line as well
    with open(d / "events.jsonl", "a") as fh:
        fh.write('{"kind": "gap", "sta')
    session, events, counts = load_parts(d)
    assert session["info"] == {"x": 1} and session["format"] == "detak-record-parts/1"
    assert events == [{"kind": "gap", "start": 3, "stop": 6}]     # torn line dropped
    assert sorted(p.name for p in (d / "chunks").iterdir()) == ["000000000000.i32",
                                                                 "000000000006.i32"]
    assert counts.tolist() == [[1, 2, 3, MISSING, MISSING, MISSING, 10, 20, 30],
                               [4, 5, 6, MISSING, MISSING, MISSING, 40, 50, 60]]
    json.loads((d / "session.json").read_text())


def test_no_temporary_files_remain_after_chunks_are_written(tmp_path: Path) -> None:
    store = PartsStore(tmp_path / "p", {"n_channels": 1})
    for i in range(5):
        store.write_chunk(i * 2, np.array([[i, i]], np.int32))
    store.close()
    assert not list((tmp_path / "p").rglob("*.tmp"))
