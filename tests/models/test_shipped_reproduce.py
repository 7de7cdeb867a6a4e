"""Issue 4's acceptance: `detak predict ptbxl://fold9 --model NAME --runtime torch` reproduces,
for every shipped CNN, the fold-9 macro AUC its card reports (written by `detak train` from the
saved file) to ±0.002 — through the command itself, its CSV and PTB-XL's own labels. And each
card's training command runs as written (a short run: 2 epochs on 64 records), with the same
recipe and, for the distilled edge model (issue 18), the same teachers (by weights SHA-256),
alpha, temperature and augmentation."""

import json
import shlex
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from detak.cli import main
from detak.models.cnn_data import CLASSES, fold_arrays
from detak.models.cnn_metrics import macro_auc
from detak.models.shipped import CARD_FILE, weights_dir

SHIPPED = sorted(p.name for p in weights_dir().iterdir() if (p / CARD_FILE).is_file())
REPO = Path(__file__).resolve().parents[2]
SHORT = {"--epochs": "2", "--threads": "1", "--max-records": "64"}


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


def short_run_argv(command: str, out: Path) -> list[str]:
    """The card's ``command`` as `detak.cli.main` arguments, shortened (`SHORT`) and written to
    ``out``; a leading ``VAR=value`` (the teacher cache) is dropped: the test sets its own.

    >>> " ".join(short_run_argv("X=1 detak train --model edge --epochs 30 --out OUT", Path("o")))
    'train --model edge --epochs 2 --out o --threads 1 --max-records 64'
    """
    words = shlex.split(command)
    while "=" in words[0]:
        words.pop(0)
    assert words[:2] == ["detak", "train"], command
    argv, rest = ["train"], words[2:]
    for flag, value in zip(rest[0::2], rest[1::2], strict=True):
        argv += [flag, str(out) if flag == "--out" else SHORT.get(flag, value)]
    return argv + [w for f, v in SHORT.items() if f not in argv for w in (f, v)]


def test_the_edge_card_names_its_distillation_and_the_model_it_replaced():
    card = json.loads((weights_dir() / "edge" / CARD_FILE).read_text())
    d = card["training"]["distillation"]
    assert d["alpha"] == 0.5 and d["temperature"] == 2.0 and d["augment"] == "field"
    assert [t["name"] for t in d["teachers"]] == ["resnet1d", "inceptiontime", "edge"]
    assert "--teacher resnet1d,inceptiontime,training_state/edge-v1" in card["command"]
    from detak.models.model_card import sha256_file

    prev = card["previous_model"]
    # the edge teacher is the previous shipped model, kept outside the package
    assert sha256_file(REPO / prev["folder"] / "edge.pt") == prev["weights_sha256"] == \
        d["teachers"][2]["weights_sha256"]
    for name in ("resnet1d", "inceptiontime"):
        want = next(t["weights_sha256"] for t in d["teachers"] if t["name"] == name)
        assert sha256_file(REPO / "weights" / name / f"{name}.pt") == want, name
    c = prev["comparison"]
    assert c["delta_macro_auc"]["ci95"][0] > 0 and c["delta_mi_auc"]["ci95"][0] > 0


@pytest.mark.slow
@pytest.mark.parametrize("name", SHIPPED)
def test_the_cards_training_command_runs_as_written(name, tmp_path, monkeypatch):
    card = json.loads((weights_dir() / name / CARD_FILE).read_text())
    monkeypatch.chdir(REPO)                   # the command names teacher folders from the root
    monkeypatch.setenv("DETAK_TEACHER_CACHE", str(tmp_path / "teachers"))
    out = tmp_path / "run"
    assert main(short_run_argv(card["command"], out)) == 0
    short = json.loads((out / CARD_FILE).read_text())
    # cards written before label sets (issue 17) were trained on the superclasses
    assert short["architecture"] == {"label_set": "superclass", **card["architecture"]}
    assert short["standardizer"]["file"] == card["standardizer"]["file"]
    got, want = short["training"], card["training"]
    assert {**got["recipe"], "epochs": None} == {**want["recipe"], "epochs": None}
    assert (got["loss"], got.get("compute"), got["seed"]) == \
        (want["loss"], want.get("compute", "fp32"), want["seed"])   # older cards: fp32
    kd_got, kd_want = got.get("distillation"), want.get("distillation")
    assert (kd_got is None) == (kd_want is None)
    if kd_want:
        assert [t["weights_sha256"] for t in kd_got["teachers"]] == \
            [t["weights_sha256"] for t in kd_want["teachers"]]
        for key in ("alpha", "temperature", "augment", "loss"):
            assert kd_got[key] == kd_want[key], key
        assert sorted((tmp_path / "teachers").glob("teacher_*.npz"))   # the teachers ran
