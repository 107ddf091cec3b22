"""Restormer (Zamir et al., CVPR 2022), the widely deployed defocus baseline, checkpoint-exact.

MDTA (global transposed attention with a learned temperature and ordinary softmax) and GDFN
(gated depthwise FFN with GELU) at full resolution; single-image (``output(x) + input``) and
dual-pixel (``skip_conv`` added after refinement, no global residual) variants (docs/architecture.md, "Reference facts").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from swintormer.layers.attention import mdta
from swintormer.layers.backend import fused_transposed_attention, use_kernels
from swintormer.layers.norms import RestormerLayerNorm
from swintormer.models.config import RestorerConfig
from swintormer.models.unet import PriorEmbed, UNetBody
from swintormer.padding import crop_to, pad_to_multiple

__all__ = ["MDTA", "Restormer", "RestormerBlock"]


class MDTA(nn.Module):
    """Multi-Dconv head transposed attention over the whole image: ``[B, C, H, W] -> [B, C, H, W]``.

    ``attention_backend`` (``"auto"``, ``"torch"`` or ``"triton"``, see
    :mod:`swintormer.layers.backend`) picks the reference or the Triton kernels.
    """

    attention_backend: str = "auto"

    def __init__(self, dim: int, num_heads: int, bias: bool) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.qkv = nn.Conv2d(dim, dim * 3, kernel_size=1, bias=bias)
        self.qkv_dwconv = nn.Conv2d(dim * 3, dim * 3, kernel_size=3, padding=1, groups=dim * 3, bias=bias)
        self.project_out = nn.Conv2d(dim, dim, kernel_size=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, H, W] -> [B, C, H, W]``."""
        qkv = self.qkv_dwconv(self.qkv(x))
        if use_kernels(self.attention_backend, qkv, self.temperature):
            return self.project_out(fused_transposed_attention(qkv, self.temperature, self.num_heads))
        return self.project_out(mdta(qkv, self.temperature, self.num_heads))


class GDFN(nn.Module):
    """Gated-Dconv FFN: ``1x1 -> 2*hidden``, 3x3 depthwise, ``GELU(x1) * x2``, ``1x1 -> C``."""

    def __init__(self, dim: int, ffn_expansion_factor: float, bias: bool) -> None:
        super().__init__()
        hidden = int(dim * ffn_expansion_factor)
        self.project_in = nn.Conv2d(dim, hidden * 2, kernel_size=1, bias=bias)
        self.dwconv = nn.Conv2d(hidden * 2, hidden * 2, kernel_size=3, padding=1, groups=hidden * 2, bias=bias)
        self.project_out = nn.Conv2d(hidden, dim, kernel_size=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(F.gelu(x1) * x2)


class RestormerBlock(nn.Module):
    """``x + MDTA(LN(x))``, then ``x + GDFN(LN(x))``."""

    def __init__(self, dim: int, num_heads: int, cfg: RestorerConfig) -> None:
        super().__init__()
        self.norm1 = RestormerLayerNorm(dim, cfg.layernorm_type)
        self.attn = MDTA(dim, num_heads, cfg.bias)
        self.norm2 = RestormerLayerNorm(dim, cfg.layernorm_type)
        self.ffn = GDFN(dim, cfg.ffn_expansion_factor, cfg.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class OverlapPatchEmbed(nn.Module):
    """Stem: 3x3 conv ``in -> dim`` at full resolution; no bias in the published code (``stem_bias``)."""

    def __init__(self, in_channels: int, dim: int, bias: bool = False) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=3, stride=1, padding=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class Restormer(UNetBody):
    """Restormer. Input ``[B, in, H, W]`` in ``[0, 1]``, output ``[B, out, H, W]``; any ``H, W`` (padded to 8)."""

    def __init__(self, cfg: RestorerConfig) -> None:
        if cfg.arch != "restormer":
            raise ValueError(f"Restormer needs arch='restormer', got {cfg.arch!r}")

        def make_block(channels: int, heads: int, index: int) -> nn.Module:
            return RestormerBlock(channels, heads, cfg)

        super().__init__(cfg.dim, cfg.num_blocks, cfg.num_refinement_blocks, cfg.heads, cfg.bias, make_block)
        self.config = cfg
        if cfg.prior_channels:
            self.prior_embed = PriorEmbed(cfg.prior_channels, cfg.dim, cfg.prior_factor // cfg.stem_factor)
        self.patch_embed = OverlapPatchEmbed(cfg.in_channels, cfg.dim, cfg.stem_bias)
        if cfg.dual_pixel:
            self.skip_conv = nn.Conv2d(cfg.dim, cfg.dim * 2, kernel_size=1, bias=cfg.bias)
        self.output = nn.Conv2d(cfg.dim * 2, cfg.out_channels, kernel_size=3, stride=1, padding=1, bias=cfg.bias)

    def forward(self, x: torch.Tensor, prior: torch.Tensor | None = None) -> torch.Tensor:
        """``[B, in, H, W] -> [B, out, H, W]``; ``prior`` as in :meth:`Swintormer.forward`."""
        x, size = pad_to_multiple(x, self.config.size_multiple)
        stem = self.merge_prior(self.patch_embed(x), prior, (x.shape[-2], x.shape[-1]))
        feat = self.unet(stem)
        if self.config.dual_pixel:
            y = self.output(feat + self.skip_conv(stem))
        else:
            y = self.output(feat) + x[:, : self.config.out_channels]
        return crop_to(y, size)
