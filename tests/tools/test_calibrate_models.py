"""tools/calibrate_models.py: one command reproduces the calibration in the shipped cards (slow:
fold-9 logits of each model), and the method choice follows the held-out ECE."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import calibrate_models as cm  # noqa: E402


def test_the_method_with_the_lower_held_out_ece_is_chosen():
    assert cm.choose({"uncalibrated": 0.05, "temperature": 0.03, "isotonic": 0.02}) == "isotonic"
    assert cm.choose({"uncalibrated": 0.01, "temperature": 0.03, "isotonic": 0.04}) \
        == "temperature"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["edge"])
def test_the_card_calibration_is_reproduced_by_the_tool(name):
    _loaded, block = cm.calibrate(name)
    card = json.loads((ROOT / "detak/models/weights" / name / "card.json").read_text())
    want = card["calibration"]
    for key in ("classes", "held_out_ece", "label", "model_file_sha256", "fitted_on"):
        assert json.loads(json.dumps(block[key])) == want[key], key
