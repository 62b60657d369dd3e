"""Attention blocks the architecture knobs switch on: ECA, CBAM and a stand-alone spatial gate."""

from __future__ import annotations

import math

import torch
from torch import nn


class ECA(nn.Module):
    """Efficient Channel Attention: a 1-D conv across pooled channel descriptors (no bottleneck MLP)."""

    def __init__(self, channels: int, gamma: int = 2, b: int = 1) -> None:
        super().__init__()
        k = int(abs((math.log2(channels) + b) / gamma))
        k = max(3, k if k % 2 else k + 1)
        self.conv = nn.Conv1d(1, 1, kernel_size=k, padding=k // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.conv(x.mean(dim=(2, 3)).unsqueeze(1)).squeeze(1)
        return x * torch.sigmoid(w)[:, :, None, None]


class ChannelAttention(nn.Module):
    """CBAM channel gate: shared MLP over average- and max-pooled descriptors."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.mlp = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.mlp(x.mean(dim=(2, 3))) + self.mlp(x.amax(dim=(2, 3)))
        return x * torch.sigmoid(w)[:, :, None, None]


class SpatialAttention(nn.Module):
    """Spatial gate: a ``kernel_size`` conv over channel-mean and channel-max maps."""

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError("spatial attention kernel_size must be a positive odd integer")
        self.conv = nn.Conv2d(2, 1, kernel_size=kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.conv(pooled))


class CBAM(nn.Module):
    """Convolutional Block Attention Module: channel gate followed by spatial gate."""

    def __init__(self, channels: int, spatial_kernel: int = 7) -> None:
        super().__init__()
        self.channel = ChannelAttention(channels)
        self.spatial = SpatialAttention(spatial_kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatial(self.channel(x))
