"""ResNet-1D (S1; 473,349 parameters): the PTB-XL benchmark's ``resnet1d_wang`` (Strodthoff et
al. 2021) — a stem conv 12→128 k7, three basic residual blocks of 128 channels (convs k5 and k3,
strides 1, 2, 2, 1×1 projection shortcuts where the stride changes), and the concat-pool head
with one hidden layer of 128 (`ConcatPoolHead`).

>>> import torch
>>> m = ResNet1d()
>>> m(torch.zeros(2, 12, 1000)).shape, sum(p.numel() for p in m.parameters())
(torch.Size([2, 5]), 473349)
"""

from __future__ import annotations

import torch
from torch import nn

from detak.models.cnn.heads import ConcatPoolHead


class BasicBlock1d(nn.Module):
    """conv k1 (stride s) · BN · ReLU · conv k2 · BN, plus the shortcut, then ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1,
                 kernel_sizes: tuple[int, int] = (5, 3)) -> None:
        super().__init__()
        k1, k2 = kernel_sizes
        self.conv1 = nn.Conv1d(c_in, c_out, k1, stride=stride, padding=(k1 - 1) // 2, bias=False)
        self.bn1 = nn.BatchNorm1d(c_out)
        self.conv2 = nn.Conv1d(c_out, c_out, k2, padding=(k2 - 1) // 2, bias=False)
        self.bn2 = nn.BatchNorm1d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv1d(c_in, c_out, 1, stride=stride, bias=False),
                                          nn.BatchNorm1d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + self.shortcut(x))


class ResNet1d(nn.Module):
    """``resnet1d_wang``: ``features`` → (B, 128, L/4), ``head`` = `ConcatPoolHead`."""

    def __init__(self, in_channels: int = 12, n_classes: int = 5, planes: int = 128) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv1d(in_channels, planes, 7, padding=3, bias=False),
            nn.BatchNorm1d(planes), nn.ReLU(inplace=True))
        self.blocks = nn.Sequential(
            BasicBlock1d(planes, planes, 1),
            BasicBlock1d(planes, planes, 2),
            BasicBlock1d(planes, planes, 2),
        )
        self.head = ConcatPoolHead(planes, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last residual block's output."""
        return self.blocks(self.stem(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
