"""AlexNet-1D (S1; 3,414,661 parameters): AlexNet's five convolutions in 1-D with batch-norm,
adaptive average pooling to 6 steps, and the 3-layer fully connected classifier.

Layers: conv 12→64 k11 s4 · BN · ReLU · maxpool 3/2 → conv 64→192 k5 · BN · ReLU · maxpool →
conv 192→384 k3 → conv 384→256 k3 → conv 256→256 k3 (each BN · ReLU) · maxpool → avgpool(6) →
dropout · Linear(1536, 1024) · ReLU · dropout · Linear(1024, 1024) · ReLU · Linear(1024, 5).
The last conv feature map has 61 steps for a 1000-sample input (0.16 s each), so Grad-CAM
on it is coarse (S1).

>>> import torch
>>> m = AlexNet1d()
>>> m(torch.zeros(2, 12, 1000)).shape, sum(p.numel() for p in m.parameters())
(torch.Size([2, 5]), 3414661)
"""

from __future__ import annotations

import torch
from torch import nn


def _conv_bn(c_in: int, c_out: int, k: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv1d(c_in, c_out, k, stride=stride, padding=k // 2),
            nn.BatchNorm1d(c_out), nn.ReLU(inplace=True)]


class AlexNet1d(nn.Module):
    """AlexNet in 1-D for (B, 12, L) inputs; ``features`` → (B, 256, 61) for L = 1000, ``head`` →
    logits (its first op is the last maxpool)."""

    def __init__(self, in_channels: int = 12, n_classes: int = 5, dropout: float = 0.5) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *_conv_bn(in_channels, 64, 11, stride=4), nn.MaxPool1d(3, 2),
            *_conv_bn(64, 192, 5), nn.MaxPool1d(3, 2),
            *_conv_bn(192, 384, 3),
            *_conv_bn(384, 256, 3),
            *_conv_bn(256, 256, 3),
        )
        self.head = nn.Sequential(
            nn.MaxPool1d(3, 2),
            nn.AdaptiveAvgPool1d(6),
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(256 * 6, 1024),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(1024, 1024),
            nn.ReLU(inplace=True),
            nn.Linear(1024, n_classes),
        )

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last convolutional feature map (after conv5 · BN · ReLU)."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
