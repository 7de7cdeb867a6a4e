"""The kiosk store (detak/kiosk/store.py): bad inputs first, then the API other parts use."""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from detak.data.recording import Recording
from detak.data.validation import RecordingError
from detak.kiosk import store_files as files
from detak.kiosk.store import DB_NAME, LOCKOUT, MAX_FAILED_PINS, Store
from detak.kiosk.store_errors import (
    CorruptStoreError,
    DuplicateError,
    InvalidScreeningError,
    NotFoundError,
    NurseLockedError,
    StoreError,
    StoreLocationError,
)
from tests.kiosk.conftest import make_screening

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40
REPO = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------- bad inputs
def test_store_folder_that_is_a_file_is_a_named_error(tmp_path: Path) -> None:
    path = tmp_path / "store"
    path.write_text("not a folder")
    with pytest.raises(StoreLocationError, match="is a file"):
        Store.open(path)


def test_corrupt_database_is_a_named_error(tmp_path: Path) -> None:
    Store.open(tmp_path / "s").close()
    (tmp_path / "s" / DB_NAME).write_bytes(b"this is not SQLite at all " * 200)
    with pytest.raises(CorruptStoreError, match="not a database"):
        Store.open(tmp_path / "s")


def test_missing_store_is_not_created_when_checking(tmp_path: Path) -> None:
    with pytest.raises(StoreLocationError, match="no store"):
        Store.open(tmp_path / "none", create=False)
    assert not (tmp_path / "none").exists()


def test_screening_without_id_writes_nothing(store: Store, sample_recording: Recording) -> None:
    bad = make_screening()
    del bad["id"]
    with pytest.raises(InvalidScreeningError, match='no "id"'):
        store.save_screening(bad, sample_recording, report_pdf=PDF)
    with pytest.raises(InvalidScreeningError, match="created_at"):
        store.save_screening({"id": "x"}, sample_recording)
    with pytest.raises(InvalidScreeningError, match="slashes"):
        store.save_screening(make_screening("../etc"), sample_recording)
    assert store.screening_count() == 0 and store.outbox_count() == 0
    assert not any((store.root / files.RECORDINGS).iterdir())
    assert not any((store.root / files.REPORTS).iterdir())


def test_recording_with_nan_in_flagged_gaps_round_trips(store: Store) -> None:
    x = np.random.default_rng(0).normal(0, 0.3, (3, 2000)).astype(np.float32)
    x[:, 500:560] = np.nan
    rec = Recording(x, 250.0, ["I", "II", "V2"], name="gappy", device_id="emu-1",
                    meta={"gaps": [[500, 560, "lost"]]})
    sid = store.save_screening(make_screening(), rec)
    back = store.load_recording(sid)
    assert back.meta["gaps"] == [[500, 560, "lost"]]
    assert np.isnan(back.signal[:, 500:560]).all()
    assert np.isfinite(np.delete(back.signal, np.s_[500:560], axis=1)).all()
    np.testing.assert_allclose(back.signal[:, :500], x[:, :500], atol=5e-4)
    assert (back.leads, back.fs, back.device_id, back.name) == (("I", "II", "V2"), 250.0,
                                                                "emu-1", "gappy")


def test_recording_with_inf_is_refused_before_any_row(store: Store) -> None:
    x = np.zeros((1, 500), np.float32)
    x[0, 7] = np.inf
    with pytest.raises(RecordingError, match="inf"):
        store.save_screening(make_screening(), Recording(x, 250.0, ["II"]))
    assert store.screening_count() == 0 and store.check() == []


def test_duplicate_id_and_unknown_resident(store: Store, sample_recording: Recording) -> None:
    store.save_screening(make_screening("a"), sample_recording)
    with pytest.raises(DuplicateError, match="already saved"):
        store.save_screening(make_screening("a", note="other"), sample_recording)
    with pytest.raises(NotFoundError, match="no resident"):
        store.save_screening(make_screening("b", resident_id=999), sample_recording)
    assert store.screening_count() == 1 and store.outbox_count() == 1
    assert store.get_screening("a") == make_screening("a")
    assert store.check() == []


def _concurrent_writer(store_dir: Path, prefix: str, n: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    return subprocess.Popen([sys.executable, "-m", "detak.kiosk.store_soak", str(store_dir),
                             str(n), "--prefix", prefix], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def test_two_processes_write_concurrently(tmp_path: Path, sample_recording: Recording) -> None:
    store_dir = tmp_path / "s"
    procs = [_concurrent_writer(store_dir, p, 12) for p in ("p1", "p2")]
    # and this process writes too, while they run
    with Store.open(store_dir) as store:
        for i in range(6):
            store.save_screening(make_screening(f"main-{i}"), sample_recording, report_pdf=PDF)
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    with Store.open(store_dir) as store:
        ids = {r["id"] for r in store.list_screenings(limit=1000)}
        assert ids == ({f"p1-{i:06d}" for i in range(12)} | {f"p2-{i:06d}" for i in range(12)}
                       | {f"main-{i}" for i in range(6)})
        assert outs[0][0].split() == [f"p1-{i:06d}" for i in range(12)]
        assert store.outbox_count() == 30
        assert store.check() == []


# ---------------------------------------------------------------- files and permissions
def test_folder_0700_files_0600(store: Store, sample_recording: Recording) -> None:
    sid = store.save_screening(make_screening(), sample_recording, report_pdf=PDF)
    assert store.root.stat().st_mode & 0o777 == 0o700
    for sub in (files.RECORDINGS, files.REPORTS, files.TMP):
        assert (store.root / sub).stat().st_mode & 0o777 == 0o700
    stored = [*store.root.glob(DB_NAME + "*"), *(store.root / files.RECORDINGS).iterdir(),
              store.report_path(sid)]
    assert len(stored) >= 4
    assert {oct(p.stat().st_mode & 0o777) for p in stored} == {"0o600"}


def test_content_addressed_written_once(store: Store, sample_recording: Recording) -> None:
    store.save_screening(make_screening("a"), sample_recording, report_pdf=PDF)
    store.save_screening(make_screening("b"), sample_recording, report_pdf=PDF)
    recs = sorted((store.root / files.RECORDINGS).iterdir())
    assert [p.suffix for p in recs] == [".dat", ".hea"]
    assert recs[0].stem == recs[1].stem
    assert store.report_path("a") == store.report_path("b")
    assert store.report_path("a").name == hashlib.sha256(PDF).hexdigest() + ".pdf"
    other = sample_recording.replace(meta={**sample_recording.meta, "x": 1})
    store.save_screening(make_screening("c"), other)
    assert len(list((store.root / files.RECORDINGS).iterdir())) == 4
    assert store.report_path("c") is None


def test_resident_names_never_reach_the_log(store: Store, sample_recording: Recording,
                                            caplog: pytest.LogCaptureFixture) -> None:
    name, number = "Wayan Kusumawardhani", "RN-7731"
    with caplog.at_level(logging.DEBUG):
        rid = store.add_resident(name, number, birth_date="1938-05-17", sex="F", room="12B")
        sid = store.save_screening(make_screening(resident_id=rid), sample_recording,
                                   report_pdf=PDF)
        store.attach_report(sid, PDF + b"v2")
        store.find_residents("Wayan")
    assert caplog.records, "the store logs saves (ids only)"
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for secret in (name, "Wayan", number, "1938-05-17"):
        assert secret not in logged


# ---------------------------------------------------------------- residents, nurses
def test_residents(store: Store) -> None:
    a = store.add_resident("Siti Aminah", "R-001", birth_date="1941-03-02", sex="f", room="3")
    b = store.add_resident("Made Suartini", "R-002")
    assert store.get_resident(a)["sex"] == "F"
    assert [r["id"] for r in store.find_residents("siti")] == [a]
    assert [r["id"] for r in store.find_residents("R-00")] == [b, a]   # by name
    assert store.find_residents("100%") == []
    with pytest.raises(DuplicateError):
        store.add_resident("Other", "R-001")
    with pytest.raises(NotFoundError):
        store.get_resident(99)
    for bad in ({"birth_date": "02/03/1941"}, {"birth_date": "2999-01-01"}, {"sex": "X"}):
        with pytest.raises(StoreError, match="birth|sex"):
            store.add_resident("Z", "R-9", **bad)


def test_nurse_pin_argon2id_and_lockout(store: Store) -> None:
    clock = [datetime(2026, 12, 7, 8, 0, tzinfo=UTC)]
    store.now = lambda: clock[0]
    nid = store.add_nurse("Ns. Dewi", "4821")
    stored = store._query("SELECT pin_hash FROM nurses")[0]["pin_hash"]
    assert stored.startswith("$argon2id$") and "4821" not in stored
    assert store.verify_nurse("Ns. Dewi", "4821") == nid
    assert store.verify_nurse("nobody", "4821") is None
    for _ in range(MAX_FAILED_PINS - 1):
        assert store.verify_nurse("Ns. Dewi", "0000") is None
    with pytest.raises(NurseLockedError) as err:
        store.verify_nurse("Ns. Dewi", "0000")
    assert err.value.until == clock[0] + LOCKOUT
    with pytest.raises(NurseLockedError):          # locked even with the right PIN
        store.verify_nurse("Ns. Dewi", "4821")
    clock[0] += LOCKOUT + timedelta(seconds=1)
    assert store.verify_nurse("Ns. Dewi", "4821") == nid
    for pin in ("12", "abcd", ""):
        with pytest.raises(StoreError, match="PIN"):
            store.add_nurse("Ns. Ani", pin)
    with pytest.raises(DuplicateError):
        store.add_nurse("Ns. Dewi", "1111")


# ---------------------------------------------------------------- screenings, outbox
def test_outbox_drain(store: Store, sample_recording: Recording) -> None:
    for i in range(3):
        store.save_screening(make_screening(f"s{i}"), sample_recording)
    assert [e["screening_id"] for e in store.pending_outbox()] == ["s0", "s1", "s2"]
    store.mark_failed("s0", "server unreachable:\n timeout")
    entry = store.pending_outbox(limit=1)[0]
    assert (entry["attempts"], entry["last_error"]) == (1, "server unreachable: timeout")
    store.mark_sent("s0")
    assert store.outbox_count() == 2
    assert [r["status"] for r in store.list_screenings() if r["id"] == "s0"] == ["sent"]
    with pytest.raises(NotFoundError):
        store.mark_failed("s0", "again")
    with pytest.raises(NotFoundError):
        store.mark_sent("nope")
    store.attach_report("s0", PDF)                 # a new report: send it again
    assert store.outbox_count() == 3 and store.report_path("s0").is_file()
    assert store.check() == []


def test_list_screenings_by_resident(store: Store, sample_recording: Recording) -> None:
    rid = store.add_resident("A", "1")
    store.save_screening(make_screening("old", resident_id=rid,
                                        created_at="2026-01-01T00:00:00Z"), sample_recording)
    store.save_screening(make_screening("new", resident_id=rid), sample_recording)
    store.save_screening(make_screening("other"), sample_recording)
    store.save_screening(make_screening("wita", resident_id=rid,   # 07:00 UTC, before "new"
                                        created_at="2026-12-07T15:00:00+08:00"), sample_recording)
    rows = store.list_screenings(resident_id=rid)
    assert [r["id"] for r in rows] == ["new", "wita", "old"]
    assert rows[1]["screening"]["created_at"] == "2026-12-07T15:00:00+08:00"   # as given
    assert rows[0]["screening"]["intervals"]["hr_bpm"] == 71.5
    assert len(store.list_screenings(limit=2)) == 2


# ---------------------------------------------------------------- check and sweep
def test_check_names_each_problem(store: Store, sample_recording: Recording) -> None:
    store.save_screening(make_screening("a"), sample_recording, report_pdf=PDF)
    other = sample_recording.replace(meta={"b": 1})
    store.save_screening(make_screening("b"), other)
    assert store.check() == []
    rec_sha = store._row("a")["recording_sha256"]
    dat = store.root / files.RECORDINGS / f"{rec_sha}.dat"
    dat.write_bytes(dat.read_bytes()[:-10])                     # partial file
    store.report_path("a").unlink()                              # missing file
    (store.root / files.RECORDINGS / ".x.hea.1.ab.tmp").write_bytes(b"half")
    (store.root / files.REPORTS / ("0" * 64 + ".pdf")).write_bytes(b"orphan")
    store._conn.execute("DELETE FROM outbox WHERE screening_id = 'b'")
    problems = "\n".join(store.check())
    assert "screening a: recording" in problems and "does not match" in problems
    assert "screening a: report" in problems and "missing" in problems
    assert "half-written" in problems and "no screening points at" in problems
    assert "screening b is unsent and has no outbox entry" in problems


def test_sweep_spares_files_of_a_writer_in_flight(store: Store) -> None:
    orphan = store.root / files.REPORTS / ("1" * 64 + ".pdf")
    orphan.write_bytes(b"x")
    temp = store.root / files.RECORDINGS / ".a.dat.9.ff.tmp"
    temp.write_bytes(b"x")
    with files.store_lock(store.root, exclusive=False):          # a writer in flight
        counts = store.sweep(wait_s=0.1)
        assert counts == {"temporary": 0, "orphans": 0, "locked": 0}
        old = datetime.now().timestamp() - files.IN_FLIGHT_S - 10
        os.utime(temp, (old, old))
        assert store.sweep(wait_s=0.1)["temporary"] == 1          # old temp file: gone
        assert orphan.exists()                                    # maybe the writer's: kept
    assert store.sweep()["orphans"] == 1 and not orphan.exists()


def test_wal_mode_and_durability(store: Store) -> None:
    conn = sqlite3.connect(store.root / DB_NAME)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2   # FULL


def test_check_while_another_thread_saves(store: Store, sample_recording: Recording) -> None:
    """One Store shared by the app's threads: a check during saves neither deadlocks nor
    sees a half-saved screening."""
    import threading
    import time

    errors: list[BaseException] = []

    def saver() -> None:
        try:
            for i in range(15):
                store.save_screening(make_screening(f"t{i}"), sample_recording.replace(
                    meta={"i": i}), report_pdf=PDF + bytes([i]))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    thread = threading.Thread(target=saver)
    t0 = time.monotonic()
    thread.start()
    results = []
    while thread.is_alive():
        results.append(store.check())
    thread.join()
    elapsed = time.monotonic() - t0
    assert errors == [] and elapsed < 20, (errors, elapsed)
    assert [r for r in results if r] == [] and results, results[:3]
    assert store.screening_count() == 15
