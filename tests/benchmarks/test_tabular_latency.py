"""benchmarks/tabular_latency.py: the interval-table option names bad paths, ratios are
against an interleaved baseline, the RF grid's figures are the library's own CV."""

import pytest
import tabular_latency as tl

from detak.data.heart_failure import load_heart_failure, split_xy
from detak.models.evaluation import cross_validate


def test_interval_table_choices(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.pkl"):
        tl.interval_data(str(tmp_path / "nothing.pkl"))
    assert tl.interval_data("none") is None
    path = tl.interval_table_path()
    assert path is None or path.name.startswith("ptbxl_intervals_")


def test_baseline_ratio_is_the_ratio_of_interleaved_medians():
    base = tl.Baseline()
    calls = []
    r = base.ratio(lambda: calls.append(1), 30)
    assert len(calls) == 31  # one warm-up call
    assert r["x_base"] == pytest.approx(r["ms"] / r["base_ms"])
    assert r["p90_ms"] >= r["ms"] > 0 and r["base_ms"] > 0


def test_latency_rows_and_rf_grid_on_the_heart_failure_records():
    X, y = split_xy(load_heart_failure(), with_time=False)
    base = tl.Baseline()
    rows = tl.latency_rows(X, y, "heart-failure", 20, base, ("nb", "rf"), n_estimators=4)
    assert [r["model"] for r in rows] == ["nb", "rf"]
    for r in rows:
        assert r["file_kb"] > 0 and r["rows"] == 299
        assert r["within_budget"] == (r["load_classify_ms"] <= tl.BUDGET_MS)
        assert r["load_classify_ms"] > r["classify_ms"] * 0.5
    grid = tl.rf_grid(20, base, None, trees=(4,), leaves=(3,), seeds=(0, 1))
    assert len(grid) == 1 and "ivl_fold9_accuracy" not in grid[0]
    g = grid[0]
    want = cross_validate("rf", X, y, cv=5, seed=0, n_estimators=4, min_samples_leaf=3)
    assert g["hf_roc_auc_seed0"] == want["roc_auc_mean"]
    want1 = cross_validate("rf", X, y, cv=5, seed=1, n_estimators=4, min_samples_leaf=3)
    both = [*want["per_fold"]["accuracy"], *want1["per_fold"]["accuracy"]]
    assert g["hf_accuracy_repeated"] == pytest.approx(sum(both) / len(both))
    md = tl.grid_markdown(grid)
    assert md[2].startswith("| 4 | 3 | ") and "PTB-XL" not in md[0]


def _row(n, leaf, auc, acc, kb, ivl=None):
    r = {"n_estimators": n, "min_samples_leaf": leaf, "hf_file_kb": kb,
         "hf_roc_auc_repeated": auc, "hf_accuracy_repeated": acc,
         "hf_time_roc_auc_repeated": auc + 0.1, "hf_time_accuracy_repeated": acc + 0.1}
    if ivl is not None:
        r["ivl_fold9_accuracy"] = ivl
    return r


def test_the_rf_rule_picks_the_fewest_trees_not_worse_than_the_reference():
    ref = _row(100, 1, 0.78, 0.73, 900, 0.998)
    grid = [ref, _row(50, 5, 0.79, 0.74, 200, 0.998), _row(30, 5, 0.785, 0.735, 120, 0.9975),
            _row(30, 10, 0.80, 0.75, 70, 0.990),   # PTB-XL accuracy drops: out
            _row(20, 5, 0.779, 0.76, 80, 0.998),   # AUC below the reference: out
            _row(30, 3, 0.78, 0.73, 150, 0.998)]   # ties count as not below
    assert (tl.choose_rf(grid)["n_estimators"], tl.choose_rf(grid)["min_samples_leaf"]) == (30, 5)
    grid[2]["hf_time_accuracy_repeated"] = 0.1  # with time worse: the 30/3 tie is next
    assert tl.choose_rf(grid)["min_samples_leaf"] == 3
    assert tl.choose_rf(grid[1:]) is None  # no reference, no choice
    assert tl.choose_rf([ref])["n_estimators"] == 100


def test_before_after_times_the_old_layout_and_stops_its_busy_process(monkeypatch):
    X, y = split_xy(load_heart_failure(), with_time=False)
    procs = []
    real_enter = tl.BusyCore.__enter__

    def spy(self):
        out = real_enter(self)
        procs.append(self.proc)
        assert self.proc.poll() is None  # running while the KNN rows are timed
        return out

    monkeypatch.setattr(tl.BusyCore, "__enter__", spy)
    rows = tl.before_after(X, y, "heart-failure", 20, tl.Baseline())
    assert [r["file_format"] for r in rows] == ["detak-tabular/1", "detak-tabular/2",
                                               "detak-tabular/2", None, None]
    assert rows[0]["file_kb"] > rows[2]["file_kb"]  # 100 full trees vs the defaults
    assert len(procs) == 1 and procs[0].poll() is not None  # killed afterwards
    assert all(r["mean_ms"] > 0 and r["x_base"] > 0 for r in rows)
    assert "| heart-failure | rf 100 trees, leaf 1 (before) |" in \
        "\n".join(tl.before_after_markdown(rows))
