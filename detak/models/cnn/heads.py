"""The classifier head S1's ResNet-1D and InceptionTime share (the PTB-XL benchmark's
``create_head1d`` with ``lin_ftrs_head=[128]``): concat pooling (max ‖ mean over time), then
BN → dropout 0.25 → Linear(2C, 128) → ReLU → BN → dropout 0.5 → Linear(128, n_classes).

>>> import torch
>>> head = ConcatPoolHead(128, 5)
>>> head(torch.zeros(2, 128, 50)).shape
torch.Size([2, 5])
"""

from __future__ import annotations

import torch
from torch import nn


class ConcatPoolHead(nn.Module):
    """Adaptive max and average pooling over time, concatenated, then a 2-layer MLP."""

    def __init__(self, channels: int, n_classes: int, hidden: int = 128,
                 dropout: float = 0.5) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.BatchNorm1d(2 * channels),
            nn.Dropout(dropout / 2),
            nn.Linear(2 * channels, hidden),
            nn.ReLU(inplace=True),
            nn.BatchNorm1d(hidden),
            nn.Dropout(dropout),
            nn.Linear(hidden, n_classes),
        )

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([feats.amax(dim=-1), feats.mean(dim=-1)], dim=1)
        return self.mlp(pooled)
