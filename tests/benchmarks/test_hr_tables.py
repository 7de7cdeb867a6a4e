"""The README tables `benchmarks/hr_robustness.py` writes (blocks hr_ludb and hr_twolead) are
computed from the per-record results, not copied: synthetic results, known figures."""

from __future__ import annotations

import hr_robustness as hr


def _ludb(record: int, ref: float, detak: float | None, naive: float | None) -> dict:
    return {"record": record, "ref_rr": ref, "groups": [], "errors": [],
            "res": {k: {"detak": detak, "naive": naive} for k in hr.CONDITIONS}}


def test_ludb_table_rows_follow_the_results():
    res = [_ludb(1, 1000.0, 1002.0, None), _ludb(2, 600.0, 1200.0, 604.0)]
    rows = hr.readme_table(res).splitlines()
    assert rows[0] == hr.HEADER.splitlines()[0]
    assert len(rows) == 2 + 2 * len(hr.README_CONDITIONS)
    # record 2 is 600 ms off for detak (> 500 ms, HR 50 bpm off); neurokit2 misses record 1
    assert rows[2] == ("| 12 leads, 500 Hz | detak measure_intervals | 2/2 | 301.0 | 50.0 % | "
                       "50.0 % | 50.0 % | 50.0 % |")
    assert rows[3] == ("| 12 leads, 500 Hz | neurokit2 defaults, lead II | 1/2 | 4.0 | 0.0 % | "
                       "0.0 % | 0.0 % | 50.0 % |")


def test_two_lead_table_percentiles_and_missing_reference():
    def rec(src: str, n: int, ref: float | None, detak: float | None) -> dict:
        one = {"detak": detak, "quality": ref, "naive": None}
        return {"source": src, "record": n, "ref_rr": ref, "errors": [],
                "res": {"low": dict(one), "noisy": dict(one)}}

    res = [rec("ludb", 1, 800.0, 805.0), rec("ludb", 2, 1000.0, 500.0), rec("pace", 3, None, 700)]
    rows = hr.two_lead_readme_table(res).splitlines()
    assert len(rows) == 2 + 2 * 2          # LUDB and PACE, two second leads each
    assert rows[2].startswith("| LUDB (all rhythms) | V1 at 0.17 mV with noise | 2 (0) | ")
    cells = [c.strip() for c in rows[2].strip("|").split("|")]
    assert cells[3] == "252.5/475/490 (50.0 %)"  # |errors| 5 and 500 ms, interpolated
    assert cells[4] == "0.0/0/0 (0.0 %)"
    assert cells[5] == "10000.0/10000/10000 (100.0 %)"  # no value counts as 10,000 ms
    assert rows[4].startswith("| PTB-XL paced (PACE) | V1 at 0.17 mV with noise | 0 (1) | "
                              "–/–/– (–)")
