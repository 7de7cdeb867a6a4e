"""detak.explain.shap_cnn: SHAP (expected gradients) for the CNNs adds up to the logit change
from the background, is exact for a linear model, and names a mismatched background."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from detak.explain.shap_cnn import gradient_shap, training_background
from detak.models.cnn.registry import build_model


class _LinearNet(nn.Module):
    """conv → global average pool → linear, no non-linearity: expected gradients are exact."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv1d(12, 4, 7, padding=3)
        self.head = nn.Linear(4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(x).mean(dim=-1))


def test_linear_model_values_are_the_exact_logit_change_from_one_background_record():
    net = _LinearNet().eval()
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 12, 1000)).astype(np.float32)
    bg = rng.standard_normal((1, 12, 1000)).astype(np.float32)
    values = gradient_shap(net, x, "MI", bg, nsamples=4)
    with torch.no_grad():
        want = (net(torch.from_numpy(x))[:, 1] - net(torch.from_numpy(bg))[:, 1]).numpy()
    np.testing.assert_allclose(values.reshape(3, -1).sum(1), want, rtol=1e-4, atol=1e-5)
    # per sample, too: gradient (constant) × (x - x')
    xt = torch.from_numpy(x).requires_grad_(True)
    net(xt)[:, 1].sum().backward()
    np.testing.assert_allclose(values, (xt.grad.numpy() * (x - bg)), rtol=1e-4, atol=1e-6)


def test_trained_edge_values_add_up_to_the_logit_change_on_average():
    from detak.export.predict import load_model

    loaded = load_model("edge", runtime="torch")
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((2, 12, 1000)) * 0.5).astype(np.float32)
    bg = (rng.standard_normal((8, 12, 1000)) * 0.5).astype(np.float32)
    values = gradient_shap(loaded.module, x, "MI", bg, nsamples=256, seed=3)
    with torch.no_grad():
        logit = loaded.module(torch.from_numpy(x))[:, 1].numpy()
        base = loaded.module(torch.from_numpy(bg))[:, 1].numpy().mean()
    sums = values.reshape(2, -1).sum(1)
    # a Monte-Carlo estimate: within 15 % of the logit change, and of the right sign
    np.testing.assert_allclose(sums, logit - base, rtol=0.15, atol=0.05)
    assert np.all(np.sign(sums) == np.sign(logit - base))


def test_bad_background_and_sample_counts_are_named():
    m = build_model("edge")
    with pytest.raises(ValueError, match=r"background records have shape \(12, 900\)"):
        gradient_shap(m, np.zeros((1, 12, 1000)), "MI", np.zeros((2, 12, 900)))
    with pytest.raises(ValueError, match="nsamples >= 1"):
        gradient_shap(m, np.zeros((1, 12, 1000)), "MI", np.zeros((2, 12, 1000)), nsamples=0)
    with pytest.raises(ValueError, match="unknown class"):
        gradient_shap(m, np.zeros((1, 12, 1000)), "AFIB", np.zeros((2, 12, 1000)))


def test_training_background_draws_standardised_labelled_training_records():
    from detak.export.predict import load_model

    std = load_model("edge", runtime="torch").standardizer
    a = training_background(std, n=10, seed=0)
    b = training_background(std, n=10, seed=0)
    assert a.shape == (10, 12, 1000) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, training_background(std, n=10, seed=1))
    assert 0.3 < float(a.std()) < 3.0  # standardised, not millivolts
    with pytest.raises(ValueError, match="at least 1 record"):
        training_background(std, n=0)
