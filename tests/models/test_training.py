"""detak.models.training: a tiny run on real PTB-XL records learns, writes its files and card,
and resuming from a checkpoint gives the same weights as an uninterrupted run."""

import json

import pytest
import torch

from detak.models import training
from detak.models.training import TrainingError, train_cnn

TINY = {"max_records": 96, "batch_size": 16, "recipe": "s1", "lr": 3e-3, "threads": 1,
        "progress": False, "n_boot": 20, "seed": 3}


def _weights(folder, name="edge"):
    return torch.load(folder / f"{name}.pt", weights_only=True)


def test_bad_settings_are_named_errors(tmp_path):
    with pytest.raises(TrainingError, match="unknown recipe 'fast'"):
        train_cnn("edge", out_dir=tmp_path, recipe="fast")
    with pytest.raises(TrainingError, match="no checkpoint"):
        train_cnn("edge", out_dir=tmp_path, resume=True)
    with pytest.raises(TrainingError, match="unknown compute precision 'fp8'"):
        train_cnn("edge", out_dir=tmp_path, compute="fp8")


def test_tiny_run_reduces_the_loss_and_writes_model_files(tmp_path):
    card = train_cnn("edge", out_dir=tmp_path, epochs=4, **TINY)
    hist = card["training"]["history"]
    assert [h["epoch"] for h in hist] == [1, 2, 3, 4]
    assert hist[-1]["train_loss"] < 0.85 * hist[0]["train_loss"]
    assert min(h["val_loss"] for h in hist) < hist[0]["val_loss"]
    on_disk = json.loads((tmp_path / "card.json").read_text())
    assert on_disk["architecture"]["parameters"] == card["architecture"]["parameters"] < 150_000
    assert on_disk["training"]["best_epoch"] == min(hist, key=lambda h: h["val_loss"])["epoch"]
    assert on_disk["data"]["records"] == {"train": 96, "validation": 32}
    assert on_disk["data"]["split"]["train_folds"] == [1]  # the first 96 labelled records
    assert "--max-records 96" in on_disk["command"] and "--seed 3" in on_disk["command"]
    assert {"fold9", "train"} <= set(on_disk["metrics"])
    assert (tmp_path / "standardizer.json").is_file() and (tmp_path / "checkpoint.pt").is_file()
    assert _weights(tmp_path)["head.weight"].dtype == torch.float32  # small model: fp32


def test_resume_continues_exactly(tmp_path, monkeypatch):
    straight = train_cnn("edge", out_dir=tmp_path / "a", epochs=2, eval_train=False, **TINY)

    real_save = training._atomic_torch_save

    def crash_after_first_checkpoint(obj, path):
        real_save(obj, path)
        if path.name == training.CHECKPOINT_FILE:
            raise KeyboardInterrupt  # the session ends after epoch 1

    monkeypatch.setattr(training, "_atomic_torch_save", crash_after_first_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        train_cnn("edge", out_dir=tmp_path / "b", epochs=2, eval_train=False, **TINY)
    monkeypatch.setattr(training, "_atomic_torch_save", real_save)
    ckpt = torch.load(tmp_path / "b" / training.CHECKPOINT_FILE, weights_only=False)
    assert ckpt["state"]["epoch"] == 1 and ckpt["optimizer"]["state"]  # Adam moments saved

    with pytest.raises(TrainingError, match="seed"):
        train_cnn("edge", out_dir=tmp_path / "b", epochs=2, resume=True,
                  **{**TINY, "seed": 4})
    resumed = train_cnn("edge", out_dir=tmp_path / "b", epochs=2, resume=True,
                        eval_train=False, **TINY)
    assert [h["epoch"] for h in resumed["training"]["history"]] == [1, 2]
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert resumed["training"]["history"][1]["val_loss"] == pytest.approx(
        straight["training"]["history"][1]["val_loss"], abs=1e-7)


def test_bf16_compute_learns_keeps_fp32_weights_and_is_part_of_the_resume_check(tmp_path):
    card = train_cnn("edge", out_dir=tmp_path, epochs=3, eval_train=False, compute="bf16", **TINY)
    hist = card["training"]["history"]
    assert hist[-1]["train_loss"] < 0.9 * hist[0]["train_loss"]
    assert card["training"]["compute"] == "bf16" and "--compute bf16" in card["command"]
    assert all(v.dtype == torch.float32 for v in _weights(tmp_path).values()
               if v.is_floating_point())                       # master weights stay fp32
    with pytest.raises(TrainingError, match="written with compute='bf16', not None"):
        train_cnn("edge", out_dir=tmp_path, epochs=3, resume=True, **TINY)   # an fp32 resume
