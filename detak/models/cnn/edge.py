"""The kiosk's edge model: a compact residual 1-D CNN for int8 on a Raspberry Pi.

Design (≤ 150 k parameters, ≤ 30 M multiply-accumulates per 10-s record at 100 Hz):

* stem: conv 12→32 k7 · BN · ReLU at full rate (1000 steps);
* four residual stages, each a basic block whose first conv has stride 2 (1000 → 500 → 250 →
  125 → 63 steps): 32→32 (k7, k7), 32→48 (k5, k5), 48→64 (k5, k5), 64→96 (k3, k3); a 1×1
  conv · BN projection on the shortcut where the shape changes;
* head: global average pooling over time, then one Linear(96, 5) — the last two operations, so
  a class activation map is ``head.weight[c] @ features(x)`` (CAM = Grad-CAM for this head),
  which the export issue fuses into the int8 graph.

Only conv, batch-norm (folded at export), ReLU, pooling and add: operators that quantize well.
Receptive field of the last map ≈ 2.6 s, i.e. two to three beats.

>>> import torch
>>> m = EdgeNet()
>>> m(torch.zeros(2, 12, 1000)).shape, sum(p.numel() for p in m.parameters()) <= 150_000
(torch.Size([2, 5]), True)
>>> m.features(torch.zeros(1, 12, 1000)).shape
torch.Size([1, 96, 63])
"""

from __future__ import annotations

import torch
from torch import nn

from detak.models.cnn.resnet1d import BasicBlock1d

# (out channels, kernel sizes) of the four stride-2 stages
EDGE_STAGES: tuple[tuple[int, tuple[int, int]], ...] = (
    (32, (7, 7)), (48, (5, 5)), (64, (5, 5)), (96, (3, 3)))


class EdgeNet(nn.Module):
    """Residual 1-D CNN with a GAP + Linear head; ``features`` → (B, 96, 63) for 1000 steps."""

    def __init__(self, in_channels: int = 12, n_classes: int = 5, stem: int = 32,
                 stages: tuple[tuple[int, tuple[int, int]], ...] = EDGE_STAGES) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv1d(in_channels, stem, 7, padding=3, bias=False),
                                  nn.BatchNorm1d(stem), nn.ReLU(inplace=True))
        blocks, c = [], stem
        for width, kernels in stages:
            blocks.append(BasicBlock1d(c, width, stride=2, kernel_sizes=kernels))
            c = width
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.head = nn.Linear(c, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last convolutional feature map (B, C, T) that the GAP + Linear head reads."""
        return self.blocks(self.stem(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.pool(self.features(x)), 1))
