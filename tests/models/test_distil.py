"""detak.models.distil and ``detak train --teacher/--augment field``: the distillation loss, the
teacher-logit cache, the field augmentation and resuming a distillation run."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from detak.models import distil, training
from detak.models.distil import (
    Teacher,
    cached_teacher_logits,
    field_augment,
    kd_loss,
    soft_targets,
)
from detak.models.training import TrainingError, train_cnn

TINY = {"max_records": 64, "batch_size": 16, "lr": 3e-3, "threads": 1, "progress": False,
        "n_boot": 20, "seed": 3, "eval_train": False}


def test_kd_loss_is_the_label_bce_at_alpha_zero():
    g = torch.Generator().manual_seed(0)
    s = torch.randn(8, 5, generator=g)
    y = (torch.rand(8, 5, generator=g) > 0.5).float()
    q = torch.rand(8, 5, generator=g)
    got = kd_loss(s, y, q, alpha=0.0, temperature=3.0)
    assert float(got) == pytest.approx(float(F.binary_cross_entropy_with_logits(s, y)))
    assert float(kd_loss(s, y, q, alpha=0.5, temperature=3.0)) != pytest.approx(float(got))


def test_soft_term_gradient_pushes_the_student_towards_the_teacher():
    T = 2.5
    s = torch.tensor([[0.0, 1.0, -1.0]], requires_grad=True)
    q = torch.tensor([[0.9, 0.1, 0.5]])
    kd_loss(s, torch.zeros_like(q), q, alpha=1.0, temperature=T).backward()
    expected = T * (torch.sigmoid(s.detach() / T) - q) / q.numel()   # T^2 * (1/T) * (p_T - q)
    assert torch.allclose(s.grad, expected, atol=1e-6)
    step = s.detach() - 0.5 * s.grad                                 # one descent step
    before = (torch.sigmoid(s.detach() / T) - q).abs()
    after = (torch.sigmoid(step / T) - q).abs()
    assert bool((after < before).all())


def test_soft_targets_average_tempered_sigmoids():
    z = torch.tensor([[[4.0, -2.0]], [[0.0, 2.0]]])                   # 2 teachers, 1 record
    assert torch.allclose(soft_targets(z, 1.0), torch.sigmoid(z).mean(0))
    assert torch.allclose(soft_targets(z, 2.0), torch.sigmoid(z / 2.0).mean(0))
    assert bool((soft_targets(z, 1e6) - 0.5).abs().max() < 1e-5)     # T → ∞: 0.5
    with pytest.raises(distil.DistilError):
        soft_targets(z, 0.0)
    with pytest.raises(distil.DistilError):
        kd_loss(z[0], z[0], z[0], alpha=1.5, temperature=1.0)


def _fake_teacher(sha, calls):
    def logits(x):
        calls.append(len(x))
        return x.mean(axis=(1, 2))[:, None].repeat(5, axis=1).astype(np.float32)

    return Teacher(name="fake", weights_sha256=sha, logits=logits, standardize=lambda x: x * 2)


def test_teacher_logits_are_cached_by_weights_hash_and_records(tmp_path):
    x = np.random.default_rng(0).normal(size=(10, 12, 100)).astype(np.float32)
    ids = np.arange(10)
    calls = []
    t = _fake_teacher("a" * 64, calls)
    key = distil.records_key(ids, {1: "c"}, "p")
    z1, hit1 = cached_teacher_logits(t, x, ids, key, root=tmp_path, chunk=4)
    assert not hit1 and calls == [4, 4, 2]
    assert np.allclose(z1[:, 0], 2 * x.mean(axis=(1, 2)), atol=1e-6)   # standardised first
    z2, hit2 = cached_teacher_logits(t, x, ids, key, root=tmp_path)
    assert hit2 and calls == [4, 4, 2] and np.array_equal(z1, z2)
    changed = _fake_teacher("b" * 64, calls)                          # other weights: a miss
    _, hit3 = cached_teacher_logits(changed, x, ids, key, root=tmp_path)
    assert not hit3 and len(calls) == 4
    other = distil.records_key(ids[:5], {1: "c"}, "p")                # other records: a miss
    _, hit4 = cached_teacher_logits(t, x[:5], ids[:5], other, root=tmp_path)
    assert not hit4


def test_field_augment_keeps_shape_is_seeded_and_zero_fills_in_millivolts(monkeypatch):
    x = np.random.default_rng(0).normal(size=(6, 12, 1000)).astype(np.float32)
    a = field_augment(x, 100.0, np.random.default_rng(1), mean=0.1, std=0.2)
    b = field_augment(x, 100.0, np.random.default_rng(1), mean=0.1, std=0.2)
    c = field_augment(x, 100.0, np.random.default_rng(2), mean=0.1, std=0.2)
    assert a.shape == x.shape and a.dtype == np.float32
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert not np.shares_memory(a, x)
    only_lead_off = {k: {**v, "p": 0.0} for k, v in distil.FIELD.items()}
    only_lead_off["lead_off"] = {"p": 1.0}
    monkeypatch.setattr(distil, "FIELD", only_lead_off)
    d = field_augment(x, 100.0, np.random.default_rng(1), mean=0.1, std=0.2)
    off = np.isclose(d, -0.1 / 0.2).all(axis=2)                      # 0 mV, standardised
    assert off.sum(axis=1).tolist() == [1] * 6
    assert np.allclose(d[~off], x[~off], atol=1e-5)   # the mV round trip only
    only_wander = {k: {**v, "p": 0.0} for k, v in distil.FIELD.items()}
    only_wander["baseline_wander"] = {**distil.FIELD["baseline_wander"], "p": 1.0}
    monkeypatch.setattr(distil, "FIELD", only_wander)
    w = field_augment(x, 100.0, np.random.default_rng(1))
    assert 0 < np.abs(w - x).max() < 1.0   # added, then partly removed by the baseline filter


def test_bad_distillation_settings_are_named_errors(tmp_path):
    with pytest.raises(TrainingError, match="teacher 'vgg'"):
        train_cnn("edge", out_dir=tmp_path, teachers=["vgg"])
    with pytest.raises(TrainingError, match="unknown augmentation 'rain'"):
        train_cnn("edge", out_dir=tmp_path, augment="rain")
    with pytest.raises(TrainingError, match="distil-alpha"):
        train_cnn("edge", out_dir=tmp_path, teachers=["edge"], distil_alpha=2.0)


def test_distillation_run_resumes_and_keeps_its_settings(tmp_path, monkeypatch):
    monkeypatch.setenv(distil.TEACHER_CACHE_ENV, str(tmp_path / "cache"))
    kd = {"teachers": ["edge"], "distil_alpha": 0.7, "temperature": 2.0, "augment": "field"}
    straight = train_cnn("edge", out_dir=tmp_path / "a", epochs=2, **kd, **TINY)
    assert len(list((tmp_path / "cache").glob("teacher_*.npz"))) == 1
    d = straight["training"]["distillation"]
    assert d["alpha"] == 0.7 and d["augment"] == "field" and d["teachers"][0]["name"] == "edge"
    assert "--teacher edge --distil-alpha 0.7 --temperature 2 --augment field" in \
        straight["command"]

    real_save = training._atomic_torch_save

    def crash_after_first_checkpoint(obj, path):
        real_save(obj, path)
        if path.name == training.CHECKPOINT_FILE:
            raise KeyboardInterrupt

    monkeypatch.setattr(training, "_atomic_torch_save", crash_after_first_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        train_cnn("edge", out_dir=tmp_path / "b", epochs=2, **kd, **TINY)
    monkeypatch.setattr(training, "_atomic_torch_save", real_save)
    with pytest.raises(TrainingError, match="distil"):
        train_cnn("edge", out_dir=tmp_path / "b", epochs=2, resume=True,
                  **{**kd, "distil_alpha": 0.3}, **TINY)
    resumed = train_cnn("edge", out_dir=tmp_path / "b", epochs=2, resume=True, **kd, **TINY)
    assert [h["epoch"] for h in resumed["training"]["history"]] == [1, 2]
    a = torch.load(tmp_path / "a" / "edge.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "edge.pt", weights_only=True)
    for key in a:
        assert torch.equal(a[key], b[key]), key
