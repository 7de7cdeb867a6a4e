"""Helpers for the CNN explanation tests (detak.explain.gradcam, lrp, faithfulness, ...): a few
real fold-9 PTB-XL records (filtered, standardised like the models' input) and seeded random
models. Not a conftest, so the tabular explanation tests beside them do not import torch."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from detak.models.cnn.registry import build_model
from detak.models.cnn_data import split_arrays
from detak.signal.filters import Standardizer

STD = Standardizer([0.0], [0.15], False)


def fold9_small(n: int = 6):
    """The first ``n`` labelled fold-9 records and their standardised input (needs DETAK_DATA:
    fails, not skips, without it)."""
    fa = split_arrays([9], max_records=n)
    return fa, STD.transform(fa.x)


def random_model(name: str, seed: int = 0, bias: bool = True, head_gain: float = 8.0
                 ) -> nn.Module:
    """A seeded model with random batch-norm statistics (so canonizers have work to do) and a
    scaled-up head (so logits are not ~0); ``bias=False`` zeroes every bias and BN shift."""
    torch.manual_seed(seed)
    m = build_model(name)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm1d):
                n = mod.num_features
                mod.weight.copy_(0.5 + torch.rand(n, generator=g))
                mod.running_var.copy_(0.5 + torch.rand(n, generator=g))
                if bias:
                    mod.bias.copy_(0.1 * torch.randn(n, generator=g))
                    mod.running_mean.copy_(0.1 * torch.randn(n, generator=g))
                else:
                    mod.bias.zero_()
                    mod.running_mean.zero_()
            elif isinstance(mod, (nn.Conv1d, nn.Linear)) and mod.bias is not None and not bias:
                mod.bias.zero_()
        last = [mod for mod in m.modules() if isinstance(mod, nn.Linear)][-1]
        last.weight.mul_(head_gain)
    return m.eval()


def as_np(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)
