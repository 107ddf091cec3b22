"""Resampling blocks shared by the diffusion networks (the restorers' own live in ``models/unet.py``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["NearestUpsample"]


class NearestUpsample(nn.Module):
    """Nearest 2x upsampling then a 3x3 conv, as LDM's autoencoder and UNet both do: ``[B, C, H, W] -> [B, C, 2H, 2W]``.

    The convolution is called ``conv`` (the checkpoints' key, ``...upsample.conv.weight``).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))
