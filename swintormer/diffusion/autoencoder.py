"""First-stage autoencoder of the latent diffusion prior (LDM's ``Encoder``/``Decoder`` layout).

Residual blocks with GroupNorm(32) and SiLU, strided-conv downsampling, nearest upsampling,
self-attention in the middle block only. The encoder ends in ``tanh`` so latents live in
``[-1, 1]``, the range the sampler clamps to (our choice; LDM's VQ latents are unbounded and
quantised in the decoder instead).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from swintormer.diffusion.config import FirstStageConfig
from swintormer.layers.norms import GroupNorm32
from swintormer.layers.precision import fp32
from swintormer.layers.resample import NearestUpsample

__all__ = ["Decoder", "Encoder", "SpatialSelfAttention", "build_first_stage"]


def group_norm(channels: int, groups: int = 32) -> nn.GroupNorm:
    """GroupNorm (eps 1e-6, computed in float32); LDM uses 32 groups."""
    return GroupNorm32(num_groups=groups, num_channels=channels, eps=1e-6, affine=True)


class ResnetBlock(nn.Module):
    """``[B, cin, H, W] -> [B, cout, H, W]``: two GN-SiLU-conv3x3 layers plus a (1x1) shortcut."""

    def __init__(self, cin: int, cout: int, groups: int) -> None:
        super().__init__()
        self.norm1 = group_norm(cin, groups)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2 = group_norm(cout, groups)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.nin_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return self.nin_shortcut(x) + h


class SpatialSelfAttention(nn.Module):
    """Single-head self-attention over all pixels: ``[B, C, H, W] -> [B, C, H, W]``."""

    def __init__(self, channels: int, groups: int) -> None:
        super().__init__()
        self.norm = group_norm(channels, groups)
        self.q = nn.Conv2d(channels, channels, 1)
        self.k = nn.Conv2d(channels, channels, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        n = self.norm(x)
        q = self.q(n).reshape(b, c, h * w).transpose(1, 2)
        k = self.k(n).reshape(b, c, h * w)
        v = self.v(n).reshape(b, c, h * w)
        attn = torch.softmax(fp32(q @ k) * c**-0.5, dim=-1).to(v.dtype)  # [B, HW, HW]
        out = (v @ attn.transpose(1, 2)).reshape(b, c, h, w)
        return x + self.proj_out(out)


class _Down(nn.Module):
    """Strided 3x3 conv with LDM's asymmetric (0, 1, 0, 1) padding: ``H -> H/2``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))


def _mid(channels: int, cfg: FirstStageConfig) -> nn.Sequential:
    g = cfg.norm_groups
    return nn.Sequential(
        ResnetBlock(channels, channels, g),
        SpatialSelfAttention(channels, g) if cfg.mid_attention else nn.Identity(),
        ResnetBlock(channels, channels, g),
    )


class Encoder(nn.Module):
    """Image ``[B, 3, H, W]`` in ``[0, 1]`` -> latent ``[B, z, H/f, W/f]`` in ``[-1, 1]``."""

    def __init__(self, cfg: FirstStageConfig) -> None:
        super().__init__()
        self.config = cfg
        self.conv_in = nn.Conv2d(cfg.image_channels, cfg.ch, 3, padding=1)
        blocks: list[nn.Module] = []
        cin = cfg.ch
        for level, mult in enumerate(cfg.ch_mult):
            for _ in range(cfg.num_res_blocks):
                blocks.append(ResnetBlock(cin, cfg.ch * mult, cfg.norm_groups))
                cin = cfg.ch * mult
            if level != len(cfg.ch_mult) - 1:
                blocks.append(_Down(cin))
        self.down = nn.Sequential(*blocks)
        self.mid = _mid(cin, cfg)
        self.norm_out = group_norm(cin, cfg.norm_groups)
        self.conv_out = nn.Conv2d(cin, cfg.z_channels, 3, padding=1)
        self.quant_conv = nn.Conv2d(cfg.z_channels, cfg.z_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.down(self.conv_in(x * 2.0 - 1.0)))
        return torch.tanh(self.quant_conv(self.conv_out(F.silu(self.norm_out(h)))))


class Decoder(nn.Module):
    """Latent ``[B, z, h, w]`` -> image ``[B, 3, h*f, w*f]`` (nominally ``[0, 1]``)."""

    def __init__(self, cfg: FirstStageConfig) -> None:
        super().__init__()
        self.config = cfg
        cin = cfg.ch * cfg.ch_mult[-1]
        self.post_quant_conv = nn.Conv2d(cfg.z_channels, cfg.z_channels, 1)
        self.conv_in = nn.Conv2d(cfg.z_channels, cin, 3, padding=1)
        self.mid = _mid(cin, cfg)
        blocks: list[nn.Module] = []
        for level in reversed(range(len(cfg.ch_mult))):
            for _ in range(cfg.num_res_blocks + 1):
                blocks.append(ResnetBlock(cin, cfg.ch * cfg.ch_mult[level], cfg.norm_groups))
                cin = cfg.ch * cfg.ch_mult[level]
            if level != 0:
                blocks.append(NearestUpsample(cin))
        self.up = nn.Sequential(*blocks)
        self.norm_out = group_norm(cin, cfg.norm_groups)
        self.conv_out = nn.Conv2d(cin, cfg.image_channels, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.up(self.mid(self.conv_in(self.post_quant_conv(z))))
        return (self.conv_out(F.silu(self.norm_out(h))) + 1.0) / 2.0


def build_first_stage(cfg: FirstStageConfig) -> nn.Module:
    """The encoder or the decoder, as ``cfg.part`` says."""
    return Encoder(cfg) if cfg.part == "encoder" else Decoder(cfg)
