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
