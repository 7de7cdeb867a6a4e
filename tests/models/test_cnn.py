"""detak.models.cnn: S1's architectures at S1's sizes, the edge model within its limits."""

import pytest
import torch
from torch import nn

from detak.models.cnn import MODEL_NAMES, build_model, count_macs, count_parameters
from detak.models.cnn.registry import EDGE_LIMITS, S1_PARAMETERS, UnknownModelError


def test_unknown_model_is_a_named_error():
    with pytest.raises(UnknownModelError, match="'lenet'.*alexnet1d"):
        build_model("lenet")


@pytest.mark.parametrize("name", sorted(S1_PARAMETERS))
def test_s1_parameter_counts_within_10_percent(name):
    n = count_parameters(build_model(name))
    assert abs(n - S1_PARAMETERS[name]) <= 0.10 * S1_PARAMETERS[name], n


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_shapes_and_features_head_split(name):
    torch.manual_seed(0)
    m = build_model(name).eval()
    x = torch.randn(3, 12, 1000)
    with torch.no_grad():
        y = m(x)
        feats = m.features(x)
        # GAP-head models (edge): head is the Linear after global average pooling
        again = m.head(feats.mean(-1)) if isinstance(m.head, nn.Linear) else m.head(feats)
    assert y.shape == (3, 5)
    assert feats.ndim == 3 and feats.shape[0] == 3  # (B, C, T): a map Grad-CAM can use
    assert torch.allclose(y, again, atol=1e-5)
    # records are independent in eval mode: one record alone gives the same logits
    with torch.no_grad():
        assert torch.allclose(m(x[:1]), y[:1], atol=1e-4)


def test_edge_limits():
    m = build_model("edge")
    assert count_parameters(m) <= EDGE_LIMITS["parameters"] == 150_000
    assert count_macs(m) <= EDGE_LIMITS["macs"] == 30_000_000


def test_edge_head_is_gap_then_linear_so_cam_is_exact():
    torch.manual_seed(1)
    m = build_model("edge").eval()
    assert isinstance(m.head, nn.Linear)
    x = torch.randn(2, 12, 1000)
    with torch.no_grad():
        a = m.features(x)                                  # (B, C, T)
        cam = torch.einsum("kc,bct->bkt", m.head.weight, a)  # class activation maps
        logits = m(x)
    # the logit is the time-average of the CAM plus the bias: nothing after GAP + Linear
    assert torch.allclose(cam.mean(-1) + m.head.bias, logits, atol=1e-5)


def test_edge_uses_only_int8_friendly_operators():
    allowed = (nn.Conv1d, nn.BatchNorm1d, nn.ReLU, nn.MaxPool1d, nn.AvgPool1d,
               nn.AdaptiveAvgPool1d, nn.Linear, nn.Identity, nn.Sequential)
    m = build_model("edge")
    leaves = [mod for mod in m.modules() if not list(mod.children())]
    assert leaves and all(isinstance(mod, allowed) for mod in leaves), \
        {type(mod).__name__ for mod in leaves}


def test_count_macs_by_hand():
    # conv: 8 out channels × 50 steps × 3 in × k5 = 6000; linear 8→2 per record = 16
    m = nn.Sequential(nn.Conv1d(3, 8, 5, stride=2, padding=2), nn.AdaptiveAvgPool1d(1),
                      nn.Flatten(), nn.Linear(8, 2))
    assert count_macs(m, (4, 3, 100)) == 8 * 50 * 3 * 5 + 16
    assert count_parameters(m) == 3 * 8 * 5 + 8 + 8 * 2 + 2
