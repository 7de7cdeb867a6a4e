"""benchmarks/cnn_ptbxl.py: the previous edge model is a labelled row, loaded from
training_state/edge-v1, never confused with the shipped (distilled) edge."""

from pathlib import Path

import cnn_ptbxl as cp


def _row(model: str, macro: float) -> dict:
    fold = {"macro_auc": macro, "macro_auc_ci": [macro - 0.01, macro + 0.01], "mi_auc": 0.93,
            "fmax": 0.8, "table6": {"f1": 0.77, "accuracy": 0.88}}
    return {"model": model, "parameters": 131909, "macs": 23706592, "seconds_per_epoch": 70.5,
            "epochs_run": 30, "folds": {9: fold}, "inference": {}}


def test_edge_v1_is_a_default_row_loaded_from_training_state() -> None:
    assert cp.PREVIOUS_EDGE in cp.DEFAULT_MODELS and "edge" in cp.DEFAULT_MODELS
    folder = Path(cp.MODEL_SPECS[cp.PREVIOUS_EDGE])
    assert folder.parts[-2:] == ("training_state", "edge-v1")
    assert (folder / "card.json").is_file()


def test_table_labels_edge_v1_and_explains_it() -> None:
    lines = cp.table_lines([_row("edge", 0.9376), _row(cp.PREVIOUS_EDGE, 0.9328)], [9])
    rows = [ln for ln in lines if ln.startswith("edge")]
    assert rows[0].split()[0] == "edge" and "0.9376" in rows[0]
    assert rows[1].split()[0] == "edge-v1" and "0.9328" in rows[1]
    assert "target >= resnet1d_wang" in rows[0] and "target" not in rows[1]
    assert any(ln.startswith("edge-v1: the edge model shipped before") for ln in lines)


def test_without_edge_v1_no_note() -> None:
    lines = cp.table_lines([_row("edge", 0.9376)], [9])
    assert not any(ln.startswith("edge-v1:") for ln in lines)
