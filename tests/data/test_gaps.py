"""Tests for detak.data.gaps: flagged gaps, gap-free windows, fills, beats near gaps."""

from __future__ import annotations

import numpy as np
import pytest

from detak.data.gaps import (
    GapError,
    GapReport,
    beat_keep_mask,
    fill_array,
    fill_gaps,
    gap_spans,
    longest_clean_window,
    model_window,
    parse_gaps,
    rr_keep_mask,
)
from detak.data.recording import Recording
from detak.data.validation import RecordingError

FS = 100.0


def _rec(gaps, n: int = 1000, leads: int = 2, nan: bool = True) -> Recording:
    x = np.sin(np.arange(n) / 7.0)[None, :].repeat(leads, 0).astype(np.float32)
    meta = {"gaps": gaps}
    if nan:
        for a, b in parse_gaps(gaps, FS, n):
            x[:, a:b] = np.nan
    return Recording(x, FS, ["I", "II", "V1"][:leads], name="rec-7", meta=meta)


# --- bad inputs first --------------------------------------------------------------------------


@pytest.mark.parametrize("gaps", ["2-3", 5, [[3.0, 2.0]], [["a", "b"]], [{"start": 2}],
                                  [[1.0, float("nan")]], [[1, 2, 3]], [[1.5, 2.5, "lost"]],
                                  [[1.0]], [[True, 3, "lost"]]])
def test_malformed_meta_gaps_is_bad_gaps(gaps) -> None:
    rec = Recording(np.zeros((1, 500)), FS, ["II"], name="r", meta={"gaps": gaps})
    with pytest.raises(RecordingError) as err:
        gap_spans(rec)
    assert err.value.problem == "bad_gaps" and 'meta["gaps"]' in str(err.value)


def test_nan_outside_flagged_spans_is_an_error_naming_lead_and_time() -> None:
    rec = _rec([[100, 120, "lost"]])
    rec.signal[1, 500] = np.nan
    with pytest.raises(RecordingError) as err:
        gap_spans(rec)
    assert err.value.problem == "nonfinite_samples"
    assert "II (first at 5.000 s, sample 500)" in str(err.value) and "rec-7" in str(err.value)
    assert "I (" not in str(err.value).replace("II (", "")


def test_all_nan_lead_is_an_error_unless_flagged() -> None:
    rec = _rec([[100, 120, "lost"]])
    rec.signal[0, :] = np.nan
    with pytest.raises(RecordingError, match=r"lead I \(first at 0.000 s"):
        gap_spans(rec)


def test_inf_inside_a_flagged_span_is_still_an_error() -> None:
    rec = _rec([[100, 120, "lost"]])
    rec.signal[0, 110] = np.inf
    with pytest.raises(RecordingError, match="sample 110"):
        gap_spans(rec)


def test_unflagged_nans_with_no_meta_are_an_error() -> None:
    x = np.ones((1, 500), np.float32)
    x[0, 10:20] = np.nan
    with pytest.raises(RecordingError, match="outside the flagged gaps"):
        gap_spans(Recording(x, FS, ["II"]))


# --- spans ---------------------------------------------------------------------------------------


def test_recorder_format_seconds_and_dicts_agree() -> None:
    a = parse_gaps([[220, 240, "lost"]], FS, 1000)
    b = parse_gaps([[2.2, 2.4]], FS, 1000)
    c = parse_gaps([{"start_s": 2.2, "end_s": 2.4}], FS, 1000)
    assert a == b == c == [(220, 240)]


def test_overlapping_spans_merge_and_clip() -> None:
    spans = parse_gaps([[500, 600, "lost"], [550, 650, "link"], [990, 1200, "lost"],
                        [2000, 2100, "lost"]], FS, 1000)
    assert spans == [(500, 650), (990, 1000)]


def test_gap_at_start_and_end() -> None:
    rec = _rec([[0, 50, "lost"], [950, 1000, "lost"]])
    report = GapReport.of(rec)
    assert report.count == 2 and report.total_s == 1.0
    assert report.spans_s == [(0.0, 0.5), (9.5, 10.0)]
    assert report.longest_clean_s == 9.0
    filled = fill_gaps(rec, "linear").signal
    assert np.isfinite(filled).all()
    assert filled[0, 0] == rec.signal[0, 50] and filled[0, -1] == rec.signal[0, 949]


def test_report_to_dict_names_count_total_where() -> None:
    d = GapReport.of(_rec([[22, 24, "lost"], [300, 302, "lost"]])).to_dict()
    assert d == {"code": "gaps", "count": 2, "total_s": 0.04,
                 "spans_s": [[0.22, 0.24], [3.0, 3.02]], "longest_gap_free_s": 6.98,
                 "reject": None}


def test_reject_rule() -> None:
    assert "30 %" in GapReport.of(_rec([[0, 300, "lost"]])).rejects()
    many = [[k, k + 5, "lost"] for k in range(150, 1000, 150)]        # 1.45-s stretches
    assert "longest gap-free stretch" in GapReport.of(_rec(many)).rejects()
    assert GapReport.of(_rec([[500, 510, "lost"]])).rejects() is None


# --- windows and fills ---------------------------------------------------------------------------


def test_longest_clean_window_never_spans_a_gap() -> None:
    rec = _rec([[300, 310, "lost"], [700, 705, "lost"]], n=2000)
    a, b = longest_clean_window(rec, 10.0)
    assert (a, b) == (705, 1705) and np.isfinite(rec.signal[:, a:b]).all()
    assert longest_clean_window(rec, 13.0) is None


@pytest.mark.parametrize("method", ["linear", "baseline", "zero"])
def test_fill_touches_only_the_gap(method: str) -> None:
    rec = _rec([[100, 150, "lost"]])
    out = fill_gaps(rec, method)
    assert np.isfinite(out.signal).all()
    keep = np.ones(1000, bool)
    keep[100:150] = False
    assert np.array_equal(out.signal[:, keep], rec.signal[:, keep])
    assert out.meta["gaps_filled"] == method


def test_fill_rejects_unknown_method_and_fills_all_gap_lead_with_zero() -> None:
    with pytest.raises(ValueError, match="unknown gap fill"):
        fill_array(np.zeros((1, 4)), [(0, 1)], "cubic")
    assert fill_array(np.full((1, 4), np.nan), [(0, 4)]).tolist() == [[0.0] * 4]


def test_model_window_prefers_gap_free_then_fills_then_refuses() -> None:
    long = _rec([[300, 310, "lost"]], n=1500)                       # 11.9 s gap-free
    out, note = model_window(long, 10.0)
    assert np.isfinite(out.signal).all() and out.n_samples == 1190
    assert "gap-free 11.9 s from 3.1 s" in note
    short = _rec([[300, 310, "lost"]], n=1000)                      # 10 s, no clean 10 s
    out, note = model_window(short, 10.0)
    assert out.n_samples == 1000 and out.meta["gaps_filled"] == "linear"
    assert "0.1 s filled" in note and np.isfinite(out.signal).all()
    big = _rec([[300, 400, "lost"]], n=1000)
    with pytest.raises(GapError, match="1 s filled, more than the 0.5 s") as err:
        model_window(big, 10.0)
    assert err.value.problem == "gaps" and "rec-7" in str(err.value)
    clean = _rec([], n=1000)
    assert model_window(clean, 10.0) == (clean, None)


def test_model_window_picks_the_window_with_least_gap() -> None:
    rec = _rec([[50, 100, "lost"], [900, 902, "lost"], [1150, 1200, "lost"]], n=1300)
    out, note = model_window(rec, 10.0)
    assert out.meta["window_s"] == [1.0, 11.0] and "0.02 s filled" in note


# --- beats ---------------------------------------------------------------------------------------


def test_beats_whose_window_touches_a_gap_are_excluded() -> None:
    beats = np.array([50, 130, 230, 320, 430, 530])
    keep = beat_keep_mask(beats, [(280, 290)], FS)        # window -0.35 s .. +0.6 s
    assert keep.tolist() == [True, True, False, False, True, True]
    assert beat_keep_mask(beats, [(280, 290)], FS, (0.0, 0.0)).all()


def test_rr_across_a_gap_is_not_an_rr() -> None:
    assert rr_keep_mask(np.array([100, 200, 400, 500]), [(250, 260)]).tolist() == [
        True, False, True]
    assert rr_keep_mask(np.array([100]), [(0, 5)]).size == 0
