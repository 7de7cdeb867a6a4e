"""Wave-segment bookkeeping on synthetic beats with known boundaries, and on real records."""

from __future__ import annotations

import numpy as np
import pytest

from detak.explain.segments import (
    SEGMENT_NAMES,
    aggregate_segments,
    delineate,
    segment_attribution,
    segment_labels,
    window_masks,
)

FS = 100.0
# two beats at 1.0 s and 2.0 s; boundaries in ms from each fiducial
BEAT = {"p_on": -200.0, "p_off": -120.0, "qrs_on": -40.0, "qrs_off": 60.0, "t_on": 150.0,
        "t_off": 350.0}


def _bounds(n=2):
    return {"II": {k: [v] * n for k, v in BEAT.items()}}


def test_segments_of_a_synthetic_beat_have_the_known_lengths():
    lab = segment_labels([1.0, 2.0], _bounds(), ["II"], 300, FS)[0]
    counts = {name: int((lab == k).sum()) for k, name in enumerate(SEGMENT_NAMES)}
    # per beat: P 8, PQ 8, QRS 10, ST 9, T 20 samples; TP from 1.35 s to the next P at 1.80 s
    assert counts == {"P": 16, "PQ": 16, "QRS": 20, "ST": 18, "T": 40, "TP": 45,
                      "unassigned": 300 - 155}
    assert (lab[:80] == 6).all() and (lab[235:] == 6).all()   # before beat 1, after beat 2
    assert (lab[135:180] == SEGMENT_NAMES.index("TP")).all()


def test_attribution_sums_per_segment_are_exact():
    lab = segment_labels([1.0, 2.0], _bounds(), ["II"], 300, FS)
    attr = np.zeros((1, 300))
    value = {"P": 1.0, "PQ": -2.0, "QRS": 4.0, "ST": -8.0, "T": 16.0, "TP": 0.5,
             "unassigned": 100.0}
    for k, name in enumerate(SEGMENT_NAMES):
        attr[lab == k] = value[name]
    d = segment_attribution(attr, lab, window_masks([1.0, 2.0], _bounds(), ["II"], 300, FS))
    assert d["P"] == {"pos": 16.0, "neg": 0.0, "n": 16}
    assert d["PQ"] == {"pos": 0.0, "neg": -32.0, "n": 16}
    assert d["ST"]["neg"] == -8.0 * 18 and d["T"]["pos"] == 16.0 * 40
    total = sum(d[n]["pos"] + d[n]["neg"] for n in SEGMENT_NAMES)
    assert total == pytest.approx(attr.sum())                # the partition loses nothing
    # QRS onset window: the first 40 ms of each QRS (4 samples), all inside the QRS
    assert d["QRS_onset"] == {"pos": 4.0 * 8, "neg": 0.0, "n": 8}
    # J point ± 40 ms: 4 samples of QRS then 4 of ST per beat
    assert d["J_point"]["n"] == 16 and d["J_point"]["pos"] == 4.0 * 8


def test_missing_boundaries_leave_samples_unassigned_not_mislabelled():
    b = _bounds()
    b["II"]["p_on"] = [None, None]       # no P at all (AF): TP runs to the QRS
    b["II"]["p_off"] = [None, None]
    b["II"]["t_on"] = [150.0, None]      # beat 2: ST and T not separable
    lab = segment_labels([1.0, 2.0], b, ["II"], 300, FS)[0]
    names = [SEGMENT_NAMES[v] for v in lab]
    assert "P" not in names and "PQ" not in names
    assert names[185] == "TP"                                  # 1.85 s: just before QRS 2
    assert set(names[206:235]) == {"unassigned"}               # beat 2: QRS end to T end
    assert names[110] == "ST" and names[120] == "T" and names[170] == "TP"


def test_leads_without_boundaries_are_unassigned():
    lab = segment_labels([1.0], _bounds(1), ["II", "V1"], 200, FS)
    assert (lab[1] == 6).all() and (lab[0] != 6).any()


def test_shape_mismatch_is_named():
    with pytest.raises(ValueError, match=r"attribution shape \(1, 5\) != label shape"):
        segment_attribution(np.zeros((1, 5)), np.zeros((1, 6), np.int8))


def test_aggregate_top_segment_uses_density_not_raw_share():
    # TP is long: more total attribution than QRS but less per sample
    rec = {"QRS": {"pos": 2.0, "neg": 0.0, "n": 10}, "TP": {"pos": 3.0, "neg": 0.0, "n": 90}}
    agg = aggregate_segments([rec, rec])
    assert agg["TP"]["pos_share"] > agg["QRS"]["pos_share"]
    assert agg["QRS"]["top"] == 1.0 and agg["TP"]["top"] == 0.0


def test_real_record_qrs_segments_hold_the_r_peaks():
    from detak.data.leads import STANDARD_LEADS
    from tests.explain.cnn_helpers import fold9_small

    fa, _ = fold9_small(2)
    x = np.asarray(fa.x[0])
    d = delineate(x, FS, list(STANDARD_LEADS), name=str(fa.ids[0]))
    assert len(d["beat_times_s"]) >= 5
    lab = segment_labels(d["beat_times_s"], d["beat_boundaries"], list(STANDARD_LEADS),
                         1000, FS)
    ii = list(STANDARD_LEADS).index("II")
    qrs = SEGMENT_NAMES.index("QRS")
    inner = d["beat_times_s"][1:-1]
    hits = 0
    for t in inner:   # the largest |deflection| within ±150 ms of each beat is in its QRS
        c = int(round(t * FS))
        k = c - 15 + int(np.argmax(np.abs(x[ii, c - 15:c + 15])))
        hits += lab[ii, k] == qrs
    assert hits >= len(inner) - 1
    assert (lab != 6).mean() > 0.7   # most of the record is in some segment
