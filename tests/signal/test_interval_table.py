import math

import pytest

from detak.signal import intervals_cli
from detak.signal.interval_table import ptbxl_interval_table


@pytest.fixture
def counted(monkeypatch, tmp_path):
    monkeypatch.setenv("DETAK_CACHE", str(tmp_path))
    calls = []
    real = intervals_cli.measure_many

    def spy(items, **kw):
        calls.append(len(items))
        return real(items, **kw)

    monkeypatch.setattr(intervals_cli, "measure_many", spy)
    return calls


def test_table_is_measured_once_then_read_from_the_cache(counted):
    first = ptbxl_interval_table(folds=[9], limit=3, jobs=1)
    second = ptbxl_interval_table(folds=[9], limit=3, jobs=1)
    assert counted == [3]  # the second call measured nothing
    assert first.equals(second)
    again = ptbxl_interval_table(folds=[9], limit=3, jobs=1, refresh=True)
    assert counted == [3, 3] and again.equals(first)


def test_rows_match_detak_intervals_for_the_same_record(counted):
    from detak.data.sources import expand_source

    table = ptbxl_interval_table(folds=[9], limit=2, jobs=1)
    ecg_id = int(table.index[0])
    direct = intervals_cli.measure_source_record(expand_source(f"ptbxl://{ecg_id}")[0])
    for key in ("rr_ms", "qrs_ms", "qt_ms", "hr_bpm"):
        want = direct[key]
        got = table.loc[ecg_id, key]
        assert (want is None and math.isnan(got)) or got == pytest.approx(want)
    assert table.loc[ecg_id, "strat_fold"] == 9
    assert table.loc[ecg_id, "quality"] == direct["quality"]["verdict"]
