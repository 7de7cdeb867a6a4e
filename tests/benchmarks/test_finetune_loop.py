"""benchmarks/finetune_loop.py: the screenings it makes are a labels folder `load_extra` reads
with the PTB-XL labels, two per resident; the table reports before/after and the verdict."""

import finetune_loop as fl
import numpy as np

from detak.data.ptbxl import open_ptbxl
from detak.models.extra_labels import load_extra, read_labels


def test_screenings_are_the_last_fold9_records_two_per_resident(tmp_path):
    ids = fl.write_screenings(tmp_path, 4)
    ptb = open_ptbxl()
    assert ids == [int(i) for i in ptb.labelled_ids([9])[-4:]]
    extra = load_extra(tmp_path)
    assert np.array_equal(extra.y, ptb.labels(ids))
    assert [r["group"] for r in read_labels(tmp_path)] == ["res-0", "res-0", "res-1", "res-1"]


def test_markdown_states_before_after_and_the_decision():
    m = {"n": 10, "macro_auc": 0.9, "macro_auc_ci": [0.8, 0.95], "mi_auc": 0.91}
    ft = {"ptbxl_train_records": 100, "split": {"train_records": 3, "held_out_records": 2,
                                                "held_out_groups": ["res-1"]},
          "extra_weight": 10, "fold9_before": m, "fold9_after": {**m, "macro_auc": 0.8955},
          "epochs": 1, "lr": 3e-4, "batch_size": 64, "best_epoch": 1, "selection": "x",
          "training_seconds": 3.0, "threads": 1,
          "held_out_before": {"n": 2, "macro_auc": None, "macro_auc_defined_classes": None},
          "held_out_after": {"n": 2, "macro_auc": None, "macro_auc_defined_classes": 0.5},
          "fold9_macro_auc_delta": -0.0045, "max_auc_drop": 0.003, "accepted": False}
    prov = {"command": "c", "date": "d", "git_commit": "g", "versions": {"python": "3"}}
    text = fl.markdown({"provenance": prov, "screenings": 5, "finetune": ft})
    assert "| fold 9 macro AUC (95 % CI) | 0.9000 [0.8000, 0.9500] | 0.8955 [0.8000, 0.9500] |" \
        in text
    assert "| n/a | 0.5000 (classes present only) |" in text
    assert "-0.0045" in text and "**rejected**" in text
