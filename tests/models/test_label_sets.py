"""detak.models.label_sets and the ``--labels`` / ``--lead`` training options (issue 17 item
3, the CNN rhythm classifier): statements map to the right vector, unknown sets and leads are
named errors before any data is read, and a tiny rhythm run on real PTB-XL records trains."""

import json

import numpy as np
import pytest
import torch

from detak.models.cnn_data import keep_leads, split_arrays
from detak.models.label_sets import UnknownLabelSetError, label_set
from detak.models.training import TrainingError, train_cnn

RHYTHM = ("SR", "AFIB", "AFLT", "STACH", "SBRAD", "SARRH", "SVTAC", "BIGU", "PACE", "1AVB")


def _vec(*codes):
    return [int(c in codes) for c in RHYTHM]


def test_statements_map_to_the_rhythm_vector():
    ls = label_set("rhythm")
    assert ls.classes == RHYTHM and ls.focus == "AFIB"
    # AFIB at likelihood 0 ("stated, unquantified") counts; form statements do not
    assert ls.vector({"AFIB": 0.0, "PVC": 100.0, "IMI": 50.0}).tolist() == _vec("AFIB")
    assert ls.vector({"PSVT": 100.0}).tolist() == _vec("SVTAC")        # grouped with SVTAC
    assert ls.vector({"SR": 0.0, "1AVB": 100.0}).tolist() == _vec("SR", "1AVB")
    assert ls.vector({"NORM": 100.0, "TRIGU": 0.0}).tolist() == _vec()  # left to the rules


def test_ptbxl_records_get_their_statements():
    from detak.data.sources import _ptbxl

    ptb = _ptbxl()
    # 17: AFLT + AFIB; 2051: PSVT; 144: PACE; 151: NORM, no rhythm statement
    y = label_set("rhythm").labels(ptb, [17, 2051, 144, 151])
    assert y.tolist() == [_vec("AFLT", "AFIB"), _vec("SVTAC"), _vec("PACE"), _vec()]
    assert label_set("superclass").labels(ptb, [151]).tolist() == [[1, 0, 0, 0, 0]]


def test_unknown_label_set_is_a_named_error_before_data_is_read(tmp_path):
    with pytest.raises(UnknownLabelSetError, match="unknown label set 'beat'.*rhythm"):
        label_set("beat")
    with pytest.raises(UnknownLabelSetError, match="'beat'"):
        split_arrays([9], max_records=4, labels="beat")
    with pytest.raises(TrainingError, match="unknown label set 'beat'"):
        train_cnn("edge", out_dir=tmp_path, labels="beat")
    with pytest.raises(TrainingError, match="unknown lead.*V7"):
        train_cnn("edge", out_dir=tmp_path, labels="rhythm", leads=["V7"])
    assert not list(tmp_path.iterdir())                    # nothing written


def test_keep_leads_zeroes_the_others_in_place():
    x = np.arange(2 * 12 * 3, dtype=np.float32).reshape(2, 12, 3) + 1
    before = x.copy()
    assert keep_leads(x, None) is x and np.array_equal(x, before)
    keep_leads(x, ["I", "II"])
    assert np.array_equal(x[:, :2], before[:, :2]) and not x[:, 2:].any()
    with pytest.raises(ValueError, match="unknown lead"):
        keep_leads(x, [])


def test_rhythm_split_labels_records_with_a_rhythm_statement():
    s = split_arrays([9], max_records=40, labels="rhythm")
    assert s.y.shape == (40, 10) and bool(s.labelled.all())
    assert (s.y.sum(axis=1) > 0).all()


def test_tiny_rhythm_run_on_lead_ii_trains_and_records_its_settings(tmp_path):
    card = train_cnn("edge", out_dir=tmp_path, epochs=1, max_records=64, batch_size=16,
                     threads=1, progress=False, n_boot=10, eval_train=False, labels="rhythm",
                     leads=["II"])
    assert card["architecture"]["outputs"] == list(RHYTHM)
    assert card["architecture"]["input_leads"] == ["II"]
    assert card["architecture"]["label_set"] == "rhythm"
    assert card["data"]["label_groups"]["SVTAC"] == ["SVTAC", "PSVT"]
    assert "--labels rhythm --lead II" in card["command"]
    hist = card["training"]["history"]
    assert len(hist) == 1 and np.isfinite(hist[0]["train_loss"]) and "val_afib_auc" in hist[0]
    w = torch.load(tmp_path / "edge.pt", weights_only=True)
    assert tuple(w["head.weight"].shape) == (10, 96)
    on_disk = json.loads((tmp_path / "card.json").read_text())
    assert on_disk["data"]["label_counts"]["train"]["SR"] > 0
    # the saved model loads back with 10 outputs through the prediction path
    from detak.models.trained import load_torch_module, torch_predictor

    probs = torch_predictor(load_torch_module(tmp_path, on_disk))(
        np.zeros((3, 12, 1000), np.float32))
    assert probs.shape == (3, 10)
    # a resume with another label set is refused (the checkpoint records it)
    with pytest.raises(TrainingError, match="labels"):
        train_cnn("edge", out_dir=tmp_path, epochs=1, max_records=64, batch_size=16,
                  threads=1, progress=False, resume=True, leads=["II"])


def test_cli_passes_labels_and_leads():
    import argparse

    from detak.models.cnn_cli import add_cnn_commands

    p = argparse.ArgumentParser()
    add_cnn_commands(p.add_subparsers(dest="command"))
    a = p.parse_args(["train", "--model", "edge", "--labels", "rhythm", "--lead", "II"])
    assert (a.labels, a.lead) == ("rhythm", "II")
