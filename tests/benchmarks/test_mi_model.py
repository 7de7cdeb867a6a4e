"""benchmarks/mi_model.py: the ROC points integrate to the AUC, the robustness table says
"not run" where a model was not measured, and the subgroup headline keeps all/age/sex and every
weaker row."""

from __future__ import annotations

import numpy as np
import pytest

mi_model = pytest.importorskip("mi_model")


def test_roc_points_integrate_to_the_auc_with_ties():
    from detak.models.cnn_metrics import roc_auc

    rng = np.random.default_rng(0)
    y = (rng.random(300) < 0.3).astype(int)
    p = np.round(rng.random(300) * 0.5 + 0.4 * y, 2)             # rounded: many ties
    fpr, tpr = mi_model.roc_points(y, p)
    assert fpr[0] == tpr[0] == 0 and fpr[-1] == tpr[-1] == 1
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    area = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    assert area == pytest.approx(roc_auc(y, p), abs=1e-12)


def _res():
    d = np.zeros((10, 2)) + 0.01                                   # perturbed − clean
    return {"base": {"edge-v1": (0.93, 0.93), "edge": (0.94, 0.94), "resnet1d": (0.93, 0.93)},
            "results": {
                "noise bursts, mild": {m: ((0.92, 0.91), -d, "noise") for m in
                                       ("edge-v1", "edge", "resnet1d")},
                "lead I missing (0 mV)": {m: ((0.90, 0.90), -d, "lead") for m in
                                          ("edge-v1", "edge")},
                "lead V1 missing (0 mV)": {m: ((0.80, 0.85), -d, "lead") for m in
                                           ("edge-v1", "edge")}}}


def test_robustness_rows_fold_leads_and_mark_what_was_not_run():
    rows = mi_model.robustness_rows(_res(), ["edge-v1", "edge", "resnet1d"])
    table = [r for r in rows if r.startswith("| ")]
    assert table[0].count("macro drop") == 3 and table[0].count("MI drop") == 3
    noise = next(r for r in table if r.startswith("| noise bursts, mild"))
    assert "+0.010 [+0.010, +0.010]" in noise and "not run" not in noise
    lead = next(r for r in table if r.startswith("| one lead"))
    cells = [c.strip() for c in lead.strip("|").split("|")]
    assert cells[1].startswith("V1 +0.130") and cells[2].startswith("V1 +0.140")
    assert cells[3] == "not run" and cells[6] == "not run"           # resnet1d: no lead rows
    assert not any(r.startswith("| lead ") for r in table)


def test_subgroup_headline_keeps_all_age_sex_and_weaker_rows():
    head = ["| subgroup | ... |", "|---|"]
    rows = ["| all of fold 9 | 1 | — | — |", "| < 65 | 1 | no |", "| women | 1 | no |",
            "| site 2 | 1 | macro, MI |", "| site 1 | 1 | no |",
            "| device X | 3 | — | 1 | too few | too few | — | — |"]
    out = mi_model.subgroup_rows({"rows": head + rows, "verdict": "Weaker: site 2.",
                                  "pace_note": "Pacemaker: ..."})
    assert out[:2] == head
    assert [r.split(" | ")[0] for r in out[2:6]] == ["| all of fold 9", "| < 65", "| women",
                                                      "| site 2"]
    assert "| site 1 | 1 | no |" not in out and not any("too few" in r for r in out)
    assert out[-3:] == ["Weaker: site 2.", "", "Pacemaker: ..."]
