"""benchmarks/kiosk.py: the stage timing covers every stage of the one pipeline."""

from __future__ import annotations

import kiosk

from detak.kiosk.screening import STAGES


def test_stage_timing_one_run() -> None:
    t = kiosk.time_stages("ptbxl-00286", repeats=1)
    assert list(t) == [*STAGES, "screening", "pdf"]
    assert STAGES == ("validation", "quality", "intervals", "rules_nb", "rhythm", "cnn_cam",
                      "record")
    assert all(len(v) == 1 and v[0] > 0 for v in t.values())
    assert abs(t["screening"][0] - sum(t[k][0] for k in STAGES)) < 1e-9


def test_timings_do_not_change_the_screening() -> None:
    from detak.data.samples import load_sample
    from detak.kiosk.screening import screen

    rec = load_sample("ptbxl-00286")
    timed: dict[str, float] = {}
    a = screen(rec, lang="en", timings=timed).to_dict()
    b = screen(rec, lang="en").to_dict()
    for k in ("id", "created", "created_at", "timestamp"):
        a.pop(k, None)
        b.pop(k, None)
    assert a == b and set(timed) == set(STAGES)
