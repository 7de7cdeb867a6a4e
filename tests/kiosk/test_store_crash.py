"""kill -9 at any moment leaves a consistent store (issue 14, item 3): real ``detak screen``
processes killed with SIGKILL at seeded points (during the PDF, the file writes, the commit, or
a random time), then the checks of `detak.kiosk.crash_check`; ``benchmarks/store_soak.py`` runs
50 or more. The checker is shown to fail on a broken writer, a partial file, a lost screening,
an orphan the sweep does not clean and a damaged database."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest

from detak.kiosk import store_files as files
from detak.kiosk.crash_check import check_after_kill
from detak.kiosk.screen_cli import run_screen_command
from detak.kiosk.screen_soak import (
    FINISHED,
    detak_command,
    emulator_source,
    kill_screen_and_check,
    parse_line,
    source_pool,
)
from detak.kiosk.store import Store

#: (aim, k-th mark, observed): a kill in the second PDF (the first screening's line printed),
#: in the first commit, in the recording files, and a plain `detak` killed at a random time
KILLS = (("pdf", 2, True), ("commit", 1, True), ("recording files", 2, True),
         ("random", None, False))


def test_kill9_of_detak_screen_leaves_a_consistent_store(tmp_path: Path) -> None:
    rng = random.Random(14)
    pool = source_pool(ludb=40)
    store_dir = tmp_path / "store"
    owed: dict[str, str | None] = {}
    kills = []
    for i, (aim, nth, observe) in enumerate(KILLS):
        sources = rng.sample(pool, 3)
        if i == 2:
            sources[0] = emulator_source("ludb-2")          # a device URL: records first
        kills.append(kill_screen_and_check(store_dir, sources, rng, aim=aim, nth=nth,
                                           observe=observe, random_span_s=3.0,
                                           printed_so_far=owed))
    assert [p for k in kills for p in k.problems] == []
    assert all(k.phase != FINISHED for k in kills[:3]), [k.phase for k in kills]
    assert kills[0].printed, "the kill in the second PDF came before the first line"
    assert len(owed) >= 2
    with Store.open(store_dir) as store:
        assert store.check() == []
        for sid in owed:
            store.load_recording(sid)


def _screen(store_dir: Path, source: str = "sample://ludb-1") -> dict[str, str | None]:
    buf = io.StringIO()
    run_screen_command([source], store_dir, lang="en", json_out=True, out=buf)
    return dict(filter(None, map(parse_line, buf.getvalue().splitlines())))


def test_the_checker_catches_a_writer_that_commits_before_its_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A deliberately broken writer: the recording's files go elsewhere, the row commits."""
    scratch = tmp_path / "elsewhere"
    scratch.mkdir()
    files.make_layout(scratch)
    real = files.write_recording_files
    monkeypatch.setattr(files, "write_recording_files", lambda root, rec: real(scratch, rec))
    printed = _screen(tmp_path / "s")
    monkeypatch.undo()
    found = check_after_kill(tmp_path / "s", printed, store_check=detak_command())
    assert any("points at a missing or partial file" in p and "missing" in p
               for p in found.problems), found.problems
    assert any("`detak store check` exited 1" in p for p in found.problems)


def test_the_checker_catches_a_partial_report_and_a_lost_screening(tmp_path: Path) -> None:
    printed = _screen(tmp_path / "s")
    (report,) = printed.values()
    data = Path(report).read_bytes()
    Path(report).write_bytes(data[: len(data) // 2])          # a half-written PDF
    found = check_after_kill(tmp_path / "s", {**printed, "lost-one": None}, store_check=None)
    assert any("partial" in p for p in found.problems), found.problems
    assert any("lost-one" in p and "no row" in p for p in found.problems)


def test_the_checker_catches_an_orphan_the_sweep_does_not_clean(tmp_path: Path) -> None:
    printed = _screen(tmp_path / "s")
    (tmp_path / "s" / files.RECORDINGS / "notes.txt").write_text("x")
    found = check_after_kill(tmp_path / "s", printed, store_check=detak_command())
    assert any("left after the startup sweep" in p and "notes.txt" in p
               for p in found.problems), found.problems
    assert found.problems[0].startswith("`detak store check` exited 1")


def test_the_checker_catches_a_damaged_database(tmp_path: Path) -> None:
    printed = _screen(tmp_path / "s")
    db = tmp_path / "s" / "detak.sqlite3"
    Store.open(tmp_path / "s").close()                           # checkpoint the WAL
    raw = bytearray(db.read_bytes())
    raw[4096:8192] = b"\xff" * 4096                            # a page overwritten
    db.write_bytes(bytes(raw))
    found = check_after_kill(tmp_path / "s", printed, store_check=None)
    assert found.problems, "a damaged database passed"


def test_the_checker_accepts_a_store_that_a_kill_left_orphans_in(tmp_path: Path) -> None:
    """What a kill between the file writes and the commit leaves (an unreferenced recording
    and a temporary file) is the sweep's to clean, not a failure."""
    printed = _screen(tmp_path / "s")
    with Store.open(tmp_path / "s") as store:
        files.write_report_file(store.root, b"%PDF-1.4 never committed")
    (tmp_path / "s" / files.TMP / ".wfdb-x.tmp").mkdir()
    found = check_after_kill(tmp_path / "s", printed, store_check=detak_command())
    assert found.problems == [] and found.left_for_sweep == 2 and found.rows == 1


def test_sweeps_during_a_live_writer_never_take_its_files(tmp_path: Path) -> None:
    """The kiosk restarts (open → sweep) while another process is saving: the sweep must not
    remove the files a save has written but not yet committed. Sweeps run in a loop against a
    live writer, which is then killed; every save it returned is whole."""
    import os
    import signal
    import subprocess
    import sys
    import threading
    import time

    from detak.kiosk.store_soak import _collect

    store_dir = tmp_path / "store"
    Store.open(store_dir).close()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).resolve().parents[2]), *filter(None, [os.environ.get("PYTHONPATH")])])}
    proc = subprocess.Popen([sys.executable, "-m", "detak.kiosk.store_soak", str(store_dir),
                             "1000000", "--prefix", "live"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=env)
    printed: list[str] = []
    reader = threading.Thread(target=_collect, args=(proc.stdout, printed), daemon=True)
    reader.start()
    sweeps = []
    try:
        with Store.open(store_dir) as store:
            deadline = time.monotonic() + 60
            while len(printed) < 15 and time.monotonic() < deadline and proc.poll() is None:
                sweeps.append(store.sweep(wait_s=0.05))
        crashed = proc.poll()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        reader.join(timeout=10)
    assert crashed is None, "the writer died while the sweeps ran (its files were taken?)"
    assert len(printed) >= 15
    assert any(s["locked"] for s in sweeps), "no sweep ran between the saves"
    with Store.open(store_dir) as store:
        assert store.check() == []
        for sid in printed:
            store.load_recording(sid)
            assert store.report_path(sid).is_file()
