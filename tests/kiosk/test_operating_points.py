"""The edge card's operating thresholds (tools/mi_operating_point.py): the rule on toy data, and
(slow) the card's figures re-derived from fold 9 with the int8 model."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
# by path: benchmarks/mi_operating_point.py has the same module name (tests/benchmarks puts
# benchmarks/ on sys.path)
_spec = importlib.util.spec_from_file_location("tools_mi_operating_point",
                                               ROOT / "tools" / "mi_operating_point.py")
mop = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mop)


def test_screening_youden_and_specificity_points_on_toy_scores():
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(900), np.ones(100)].astype(int)
    p = np.clip(np.r_[rng.normal(0.2, 0.1, 900), rng.normal(0.6, 0.1, 100)], 0, 1)
    pts = mop.operating_points(p[:, None], y[:, None], ["MI"])["MI"]
    assert 0.3 < pts["youden"]["threshold"] < 0.5
    assert pts["refer"]["specificity"] >= 0.95
    op = pts["operating"]                          # the screening point: sensitivity >= 0.90
    assert op["sensitivity"] >= 0.90 and op["tp"] == 90
    assert op["tp"] + op["fn"] == 100 and op["tn"] + op["fp"] == 900
    # the highest such threshold as stored (4 decimals): one step up falls below 0.90
    assert mop._rates(p, y, op["threshold"])["sensitivity"] >= 0.90
    assert mop._rates(p, y, op["threshold"] + 1e-4)["sensitivity"] < 0.90
    assert mop._rates(p, y, pts["refer"]["threshold"])["specificity"] >= 0.95


def test_the_card_says_how_its_thresholds_were_made():
    card = json.loads((ROOT / "detak/models/weights/edge/card.json").read_text())
    op = card["operating_points"]
    assert op["fold"] == 9 and op["file"] == "edge.int8.onnx"
    from detak.models.model_card import sha256_file

    assert op["file_sha256"] == sha256_file(ROOT / "detak/models/weights/edge/edge.int8.onnx")
    mi = op["classes"]["MI"]
    assert mi["refer"]["threshold"] > mi["operating"]["threshold"]
    assert mi["refer"]["specificity"] >= 0.95
    assert mi["operating"]["sensitivity"] >= 0.90
    sc = mi["operating"]["screening"]
    lo, hi = sc["ci95"]["sensitivity"]
    assert lo <= mi["operating"]["sensitivity"] <= hi
    assert set(sc["prevalences"]) == {"ptbxl", "nursing_home"}
    assert sc["predictive_values"]["nursing_home"]["ppv"] < sc["predictive_values"]["ptbxl"]["ppv"]


@pytest.mark.slow
def test_the_card_thresholds_are_reproduced_from_fold_9():
    proc = subprocess.run([sys.executable, str(ROOT / "tools/mi_operating_point.py"),
                           "--dry-run"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)["classes"]
    card = json.loads((ROOT / "detak/models/weights/edge/card.json").read_text())
    assert got == card["operating_points"]["classes"]


def _shipped_card() -> dict:
    return json.loads((ROOT / "detak/models/weights/edge/card.json").read_text())


def test_the_kiosk_urgency_rule_fires_at_the_shipped_cards_thresholds():
    from detak.kiosk.screening import _thresholds
    from detak.kiosk.urgency import NO_FINDING, REFER_TODAY, ROUTINE_REVIEW, assess_urgency

    card = _shipped_card()
    th = _thresholds(card)
    mi = card["operating_points"]["classes"]["MI"]
    assert th["MI"]["operating"] == mi["operating"]["threshold"]
    assert th["MI"]["refer"] == mi["refer"]["threshold"]
    quiet = {"NORM": 0.9, "MI": 0.0, "STTC": 0.0, "CD": 0.0, "HYP": 0.0}

    def level(p: float) -> tuple[str, list[str]]:
        u = assess_urgency(quality="ok", intervals={"hr_bpm": 70.0}, lang="en",
                           mi={"thresholds": th, "probabilities": {**quiet, "MI": p}})
        return u.level, u.rules

    op, refer = th["MI"]["operating"], th["MI"]["refer"]
    assert level(op - 1e-4) == (NO_FINDING, [])
    assert level(op) == (ROUTINE_REVIEW, ["mi_review"])
    assert level(refer - 1e-4) == (ROUTINE_REVIEW, ["mi_review"])
    assert level(refer) == (REFER_TODAY, ["mi_refer"])


def test_the_rule_texts_and_the_kiosk_docs_quote_the_shipped_thresholds():
    from detak.kiosk.urgency import RULES

    th = {k: v["threshold"] for k, v in
          _shipped_card()["operating_points"]["classes"]["MI"].items()}
    text = {r.code: r.threshold for r in RULES}
    assert f"MI.refer ({th['refer']:.2f}: " in text["mi_refer"]
    assert f"MI.operating ({th['operating']:.2f}: " in text["mi_review"]
    doc = (ROOT / "docs/kiosk.md").read_text()
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `(mi_\w+)` .*$", doc, flags=re.M)}
    assert f"≥ {th['refer']:.4f}" in rows["mi_refer"]
    assert f"≥ {th['operating']:.4f}" in rows["mi_review"]
