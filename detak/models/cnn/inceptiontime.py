"""InceptionTime (S1; 507,653 parameters): six inception modules (Fawaz et al. 2020) as in the
PTB-XL benchmark's ``inception1d`` — each a 1×1 bottleneck to 32 channels, parallel convs of 32
filters with kernels 39, 19 and 9, and a maxpool-3 → 1×1 conv branch, concatenated to 128
channels · BN · ReLU; residual shortcuts (1×1 conv · BN) every three modules; the concat-pool
head with one hidden layer of 128 (`ConcatPoolHead`). No downsampling: the last feature map
keeps all 1000 steps.

>>> import torch
>>> m = InceptionTime()
>>> m(torch.zeros(2, 12, 1000)).shape, sum(p.numel() for p in m.parameters())
(torch.Size([2, 5]), 507653)
"""

from __future__ import annotations

import torch
from torch import nn

from detak.models.cnn.heads import ConcatPoolHead


class InceptionModule(nn.Module):
    """Bottleneck → three parallel convs, plus maxpool → 1×1 conv; concatenated · BN · ReLU."""

    def __init__(self, c_in: int, filters: int = 32, bottleneck: int = 32,
                 kernel_sizes: tuple[int, ...] = (39, 19, 9)) -> None:
        super().__init__()
        self.bottleneck = nn.Conv1d(c_in, bottleneck, 1, bias=False)
        self.convs = nn.ModuleList(
            nn.Conv1d(bottleneck, filters, k, padding=(k - 1) // 2, bias=False)
            for k in kernel_sizes)
        self.pool_branch = nn.Sequential(nn.MaxPool1d(3, stride=1, padding=1),
                                         nn.Conv1d(c_in, filters, 1, bias=False))
        self.bn = nn.BatchNorm1d(filters * (len(kernel_sizes) + 1))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self.bottleneck(x)
        y = torch.cat([conv(b) for conv in self.convs] + [self.pool_branch(x)], dim=1)
        return self.relu(self.bn(y))


class InceptionTime(nn.Module):
    """``features`` → (B, 128, L), ``head`` = `ConcatPoolHead`."""

    def __init__(self, in_channels: int = 12, n_classes: int = 5, depth: int = 6,
                 filters: int = 32) -> None:
        super().__init__()
        width = 4 * filters
        self.modules_ = nn.ModuleList(
            InceptionModule(in_channels if d == 0 else width, filters) for d in range(depth))
        self.shortcuts = nn.ModuleDict()
        c_res = in_channels
        for d in range(depth):
            if d % 3 == 2:
                self.shortcuts[str(d)] = nn.Sequential(nn.Conv1d(c_res, width, 1, bias=False),
                                                       nn.BatchNorm1d(width))
                c_res = width
        self.relu = nn.ReLU(inplace=True)
        self.head = ConcatPoolHead(width, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last inception module's output (after its residual addition)."""
        res = x
        for d, module in enumerate(self.modules_):
            x = module(x)
            if str(d) in self.shortcuts:
                x = self.relu(x + self.shortcuts[str(d)](res))
                res = x
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
