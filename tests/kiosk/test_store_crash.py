"""kill -9 at any moment leaves a consistent store (issue 14, item 3): a few seeded kills of a
real writer process (`python -m detak.kiosk.store_soak`, which saves through
`Store.save_screening` like `detak screen`); benchmarks/store_soak.py runs 50 or more."""

from __future__ import annotations

import random
from pathlib import Path

from detak.kiosk import store_files as files
from detak.kiosk.store import Store
from detak.kiosk.store_soak import kill_and_check


def test_sigkill_at_random_moments_leaves_a_consistent_store(tmp_path: Path) -> None:
    rng = random.Random(14)
    store_dir = tmp_path / "store"
    results = [kill_and_check(store_dir, rng, f"k{i}", early_share=0.25) for i in range(5)]
    problems = [p for r in results for p in r.problems]
    assert problems == []
    printed = sum(len(r.printed) for r in results)
    assert printed > 0, "no kill landed after a save returned: the test proves nothing"
    with Store.open(store_dir) as store:
        assert store.screening_count() >= printed
        used_recs, used_reps = store.referenced_files()
        recs, reps, temps, odd = files.stored_files(store.root)
        assert (set(recs), set(reps), temps, odd) == (used_recs, used_reps, [], [])


def test_the_checker_would_see_a_row_committed_before_its_file(tmp_path: Path) -> None:
    """The crash test can fail: a row whose file never arrived is found."""
    from detak.data.samples import load_sample
    from tests.kiosk.conftest import make_screening

    with Store.open(tmp_path / "s") as store:
        store.save_screening(make_screening(), load_sample("ludb-1"))
        for p in (store.root / files.RECORDINGS).glob("*.hea"):
            p.unlink()                       # as if the row had committed first
        assert any("missing" in p for p in store.check())


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
