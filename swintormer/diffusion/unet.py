"""Conditional UNet denoiser (the LDM/openaimodel layout) predicting the noise ``eps``.

Input ``[B, 6, h, w]`` = concat(noisy latent, conditioning latent of the blurry image), timestep
``[B]``; output ``[B, 3, h, w]``. Sinusoidal time embedding + MLP, residual blocks with
GroupNorm(32) whose conv sees the time embedding as a per-channel bias, multi-head
self-attention (``num_head_channels`` per head) at the configured downsample rates and in the
middle block. Shapes come from tensors only, so the batch axis exports dynamically.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from swintormer.diffusion.config import DenoiserConfig
from swintormer.layers.norms import GroupNorm32
from swintormer.layers.precision import fp32
from swintormer.layers.resample import NearestUpsample

__all__ = ["DenoiserUNet", "timestep_embedding"]


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """``[B]`` timesteps -> ``[B, dim]`` sinusoidal embedding (cos first, as openaimodel)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def _norm(channels: int) -> nn.GroupNorm:
    return GroupNorm32(32, channels)


def _zero(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class ResBlock(nn.Module):
    """``[B, cin, H, W], [B, E] -> [B, cout, H, W]``."""

    def __init__(self, cin: int, cout: int, emb_dim: int, dropout: float) -> None:
        super().__init__()
        self.in_layers = nn.Sequential(_norm(cin), nn.SiLU(), nn.Conv2d(cin, cout, 3, padding=1))
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_dim, cout))
        self.out_layers = nn.Sequential(
            _norm(cout), nn.SiLU(), nn.Dropout(dropout), _zero(nn.Conv2d(cout, cout, 3, padding=1))
        )
        self.skip_connection = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.in_layers(x) + self.emb_layers(emb)[:, :, None, None]
        return self.skip_connection(x) + self.out_layers(h)


class AttentionBlock(nn.Module):
    """Multi-head self-attention over pixels, ``num_head_channels`` per head: ``[B, C, H, W]``."""

    def __init__(self, channels: int, num_head_channels: int) -> None:
        super().__init__()
        self.num_heads = max(1, channels // num_head_channels)
        self.norm = _norm(channels)
        self.qkv = nn.Conv1d(channels, channels * 3, 1)
        self.proj_out = _zero(nn.Conv1d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        qkv = self.qkv(self.norm(x).reshape(b, c, h * w))
        q, k, v = qkv.reshape(b * self.num_heads, 3 * c // self.num_heads, h * w).chunk(3, dim=1)
        scale = (c // self.num_heads) ** -0.25
        logits = (q * scale).transpose(1, 2) @ (k * scale)  # [B*h, HW, HW]
        weight = torch.softmax(fp32(logits), dim=-1).to(v.dtype)
        out = (v @ weight.transpose(1, 2)).reshape(b, c, h * w)
        return x + self.proj_out(out).reshape(b, c, h, w)


class _Step(nn.Module):
    """A list of layers applied in order; ResBlocks also get the time embedding."""

    def __init__(self, *layers: nn.Module) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, emb) if isinstance(layer, ResBlock) else layer(x)
        return x


class DenoiserUNet(nn.Module):
    """``eps = UNet(concat(x_t, cond), t)``; latent sides must be multiples of ``config.size_multiple``."""

    def __init__(self, cfg: DenoiserConfig) -> None:
        super().__init__()
        self.config = cfg
        mc, emb_dim = cfg.model_channels, cfg.model_channels * 4
        self.time_embed = nn.Sequential(nn.Linear(mc, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.input_blocks = nn.ModuleList([_Step(nn.Conv2d(cfg.in_channels, mc, 3, padding=1))])
        skips, ch, ds = [mc], mc, 1
        for level, mult in enumerate(cfg.channel_mult):
            for _ in range(cfg.num_res_blocks):
                layers: list[nn.Module] = [ResBlock(ch, mc * mult, emb_dim, cfg.dropout)]
                ch = mc * mult
                if ds in cfg.attention_resolutions:
                    layers.append(AttentionBlock(ch, cfg.num_head_channels))
                self.input_blocks.append(_Step(*layers))
                skips.append(ch)
            if level != len(cfg.channel_mult) - 1:
                self.input_blocks.append(_Step(nn.Conv2d(ch, ch, 3, stride=2, padding=1)))
                skips.append(ch)
                ds *= 2
        self.middle_block = _Step(
            ResBlock(ch, ch, emb_dim, cfg.dropout), AttentionBlock(ch, cfg.num_head_channels), ResBlock(ch, ch, emb_dim, cfg.dropout)
        )
        self.output_blocks = nn.ModuleList()
        for level, mult in reversed(list(enumerate(cfg.channel_mult))):
            for i in range(cfg.num_res_blocks + 1):
                layers = [ResBlock(ch + skips.pop(), mc * mult, emb_dim, cfg.dropout)]
                ch = mc * mult
                if ds in cfg.attention_resolutions:
                    layers.append(AttentionBlock(ch, cfg.num_head_channels))
                if level and i == cfg.num_res_blocks:
                    layers.append(NearestUpsample(ch))
                    ds //= 2
                self.output_blocks.append(_Step(*layers))
        self.out = nn.Sequential(_norm(ch), nn.SiLU(), _zero(nn.Conv2d(mc, cfg.out_channels, 3, padding=1)))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``x [B, in, h, w]``, ``t [B]`` (int or float) -> ``eps [B, out, h, w]``."""
        emb = self.time_embed(timestep_embedding(t, self.config.model_channels).to(x.dtype))
        hs = []
        h = x
        for block in self.input_blocks:
            h = block(h, emb)
            hs.append(h)
        h = self.middle_block(h, emb)
        for block in self.output_blocks:
            h = block(torch.cat([h, hs.pop()], dim=1), emb)
        return self.out(h)
