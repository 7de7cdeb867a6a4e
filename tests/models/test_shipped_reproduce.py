"""Issue 4's acceptance: `detak predict ptbxl://fold9 --model NAME --runtime torch` reproduces,
for every shipped CNN, the fold-9 macro AUC its card reports (written by `detak train` from the
saved file) to ±0.002 — through the command itself, its CSV and PTB-XL's own labels."""

import json

import numpy as np
import pandas as pd
import pytest

from detak.cli import main
from detak.models.cnn_data import CLASSES, fold_arrays
from detak.models.cnn_metrics import macro_auc
from detak.models.shipped import CARD_FILE, weights_dir

SHIPPED = sorted(p.name for p in weights_dir().iterdir() if (p / CARD_FILE).is_file())


def test_the_four_models_of_issue_4_are_the_ones_looked_for():
    assert set(SHIPPED) == {"alexnet1d", "resnet1d", "inceptiontime", "edge"}


@pytest.mark.slow
@pytest.mark.parametrize("name", SHIPPED)
def test_predict_fold9_reproduces_the_card_auc(name, tmp_path):
    card = json.loads((weights_dir() / name / CARD_FILE).read_text())
    want = card["metrics"]["fold9"]["macro_auc"]
    out = tmp_path / "f9.csv"
    # the card's figure is the torch fp32 model's (the default, auto, may run the int8 export)
    assert main(["predict", "ptbxl://fold9", "--model", name, "--runtime", "torch",
                 "--out", str(out)]) == 0
    table = pd.read_csv(out, dtype={"record": str})
    assert list(table.columns) == ["record", *CLASSES]
    fa = fold_arrays(9)
    assert list(table["record"]) == [str(int(i)) for i in fa.ids]
    labelled = fa.y.sum(axis=1) > 0        # training validates on records with a superclass
    assert card["data"]["records"]["validation"] == int(labelled.sum())
    got = macro_auc(fa.y[labelled], table[list(CLASSES)].to_numpy(np.float32)[labelled])
    assert got == pytest.approx(want, abs=0.002), (name, got, want)
