"""benchmarks/rhythm_cache.py: fold 10 refused, the subsample rule, resuming after a kill (a
torn last line is cut off), a failing record logged in its line, .done only when complete."""

import json

import pytest
import rhythm_cache as rc


def test_fold_10_is_refused():
    with pytest.raises(ValueError, match="fold 10"):
        rc.parse_folds("8-10")
    assert rc.parse_folds("1-3,9") == [1, 2, 3, 9]


def test_subsample_rule():
    assert rc.subsample_rule({"AFIB": 100.0, "SR": 0.0}) == "rhythm"
    assert rc.subsample_rule({"SR": 0.0, "3AVB": 100.0}) == "rhythm"
    assert rc.subsample_rule({"SR": 0.0, "PVC": 100.0}) == "sr_only"
    assert rc.subsample_rule({"NORM": 100.0}) is None


def test_subsample_is_the_same_whichever_fold_is_asked():
    from detak.data.ptbxl import open_ptbxl

    meta = open_ptbxl().metadata
    a = rc.select_ids(meta, 3, subsample=True)
    assert a == rc.select_ids(meta, 3, subsample=True)
    rules = meta.loc[a, "scp_codes"].map(rc.subsample_rule)
    assert set(rules) == {"rhythm", "sr_only"}
    in_fold = meta[meta["strat_fold"] == 3]["scp_codes"].map(rc.subsample_rule)
    assert (rules == "rhythm").sum() == (in_fold == "rhythm").sum()   # every rhythm record
    assert 0 < (rules == "sr_only").sum() < (in_fold == "sr_only").sum()
    with pytest.raises(ValueError, match="fold 9"):
        rc.select_ids(meta, 9, subsample=True)


def test_a_torn_last_line_is_cut_off(tmp_path):
    path = tmp_path / "fold9.jsonl"
    whole = [json.dumps({"ecg_id": i, "error": None}) for i in (8, 10)]
    path.write_text("\n".join(whole) + "\n" + whole[0][:20])
    assert rc.done_ids(path) == {8, 10}
    assert path.read_text() == "\n".join(whole) + "\n"


def test_a_failing_record_is_logged_not_raised():
    class Broken:
        def record(self, ecg_id, fs=100):
            raise OSError("disk gone")

    row = {"strat_fold": 9, "age": 300, "age_years": float("nan"), "sex": "F",
           "scp_codes": {"AFIB": 100.0}}
    line = rc.cache_line(Broken(), row, 17, "II", 100)
    assert line["error"] == "OSError: disk gone" and line["features"] is None
    assert line["age"] == 90.0 and line["sex"] == "F" and line["statements"] == {"AFIB": 100.0}


def test_resume_and_done_marker(tmp_path):
    out = tmp_path / "12lead-100"
    rc.run_fold(out, 9, "II", 100, subsample=False, limit=3)
    assert len((out / "fold9.jsonl").read_text().splitlines()) == 3
    assert not (out / "fold9.done").exists()          # a limited run is never complete
    rc.run_fold(out, 9, "II", 100, subsample=False, limit=4)   # resumes: one more record
    lines = [json.loads(x) for x in (out / "fold9.jsonl").read_text().splitlines()]
    assert len(lines) == 4 and len({ln["ecg_id"] for ln in lines}) == 4
    assert all(ln["error"] is None and ln["features"]["values"]["n_beats"] for ln in lines)
