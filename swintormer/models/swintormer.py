"""Swintormer: the restorer of "Efficient Image Deblurring Networks based on Diffusion Models".

Built to match the public Swintormer reference code key for key and output for output
(docs/architecture.md, "Reference facts"): a pixel-unshuffle stem, a 4-level U-Net whose blocks mix shifted-window cosine
attention (Swin-V2 style, continuous position bias) with windowed channel attention, both using
``softmax_one``, and a pixel-shuffle tail with the global residual of the first input view.
"""

from __future__ import annotations

import torch
from torch import nn

from swintormer.layers.attention import (
    continuous_position_bias,
    relative_coords_table,
    relative_position_index,
    shift_window_mask,
    swin_channel_attention,
    unwindow,
    window_partition,
)
from swintormer.layers.backend import exporting, fused_swin_attention, use_kernels
from swintormer.layers.norms import ChannelLayerNorm
from swintormer.layers.projection import chunked_conv
from swintormer.models.config import RestorerConfig
from swintormer.models.unet import PriorEmbed, UNetBody
from swintormer.padding import crop_to, pad_to_multiple

__all__ = ["Swintormer", "SwinChannelAttention", "SwintormerBlock"]


class SwinChannelAttention(nn.Module):
    """Shifted-window attention (half the channels) + windowed channel attention (the other half).

    Per window (the qkv convs see each window as its own image, so the 3x3 depthwise conv
    zero-pads at window borders): ``1x1 conv C->3C``, ``3x3 dwconv``, split into a window half and
    a channel half (each ``q, k, v`` of ``C/2``), attend, concatenate, ``1x1 project_out``.

    ``attention_backend`` (``"auto"``, ``"torch"`` or ``"triton"``, see
    :mod:`swintormer.layers.backend`) picks the reference or the fused Triton kernels.
    """

    attention_backend: str = "auto"

    def __init__(self, dim: int, num_heads: int, bias: bool, window_size: int, shift_size: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.window_size = window_size
        self.shift_size = shift_size
        self.logit_scale = nn.Parameter(torch.log(10 * torch.ones(num_heads, 1, 1)))
        self.cpb_mlp = nn.Sequential(
            nn.Linear(2, 512, bias=True), nn.ReLU(inplace=True), nn.Linear(512, num_heads, bias=False)
        )
        self.qkv = nn.Conv2d(dim, dim * 3, kernel_size=1, bias=bias)
        self.qkv_dwconv = nn.Conv2d(dim * 3, dim * 3, kernel_size=3, padding=1, groups=dim * 3, bias=bias)
        self.project_out = nn.Conv2d(dim, dim, kernel_size=1, bias=bias)
        self.register_buffer("relative_coords_table", relative_coords_table(window_size), persistent=False)
        self.register_buffer("relative_position_index", relative_position_index(window_size), persistent=False)

    def _cpb_logits(self) -> torch.Tensor:
        """``[(2M-1)^2, h]``: the CPB MLP over the coordinate table (in the MLP's dtype)."""
        return self.cpb_mlp(self.relative_coords_table.to(self.cpb_mlp[0].weight.dtype))

    def position_bias_table(self) -> torch.Tensor:
        """``[(2M-1)^2, h]``: ``16*sigmoid`` of the CPB MLP per relative offset, before the gather."""
        return 16.0 * torch.sigmoid(self._cpb_logits())

    def position_bias(self) -> torch.Tensor:
        """``[h, N, N]``: the CPB MLP over the coordinate table, gathered per token pair."""
        return continuous_position_bias(self._cpb_logits(), self.relative_position_index)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, H, W] -> [B, C, H, W]``; ``H, W`` multiples of the window size."""
        _, _, height, width = x.shape
        m, s, h = self.window_size, self.shift_size, self.num_heads
        if s:
            x = torch.roll(x, shifts=(-s, -s), dims=(2, 3))
        windows = window_partition(x, m)  # [Bw, C, M, M]
        if exporting():  # a graph: the six q/k/v chunks as six convolutions, no Split copies
            qkv = chunked_conv(windows, self.qkv, 6, self.qkv_dwconv)
        else:
            qkv = self.qkv_dwconv(self.qkv(windows))
        if not exporting() and use_kernels(self.attention_backend, qkv, self.logit_scale, *self.cpb_mlp.parameters()):
            fused = fused_swin_attention(qkv, self.logit_scale, self.position_bias_table(), h, s, (height, width))
            return self.project_out(fused)  # 1x1: commutes with window_reverse and the roll back
        mask = shift_window_mask(height, width, m, s, x.device) if s else None
        out = self.project_out(swin_channel_attention(qkv, h, self.logit_scale, self.position_bias(), mask))
        return unwindow(out, height, width, s)


class GatedFFN(nn.Module):
    """``1x1 C -> 2*hidden``, split, product, ``1x1 hidden -> C`` (no depthwise conv, no GELU)."""

    def __init__(self, dim: int, ffn_expansion_factor: float, bias: bool) -> None:
        super().__init__()
        hidden = int(dim * ffn_expansion_factor)
        self.project_in = nn.Conv2d(dim, hidden * 2, kernel_size=1, bias=bias)
        self.project_out = nn.Conv2d(hidden, dim, kernel_size=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, H, W] -> [B, C, H, W]``."""
        x1, x2 = chunked_conv(x, self.project_in, 2) if exporting() else self.project_in(x).chunk(2, dim=1)
        return self.project_out(x1 * x2)


class SwintormerBlock(nn.Module):
    """Pre-norm transformer block: ``x + attn(LN(x))``, then ``x + ffn(LN(x))``."""

    def __init__(self, dim: int, num_heads: int, cfg: RestorerConfig, shift_size: int) -> None:
        super().__init__()
        self.norm1 = ChannelLayerNorm(dim)
        self.attn = SwinChannelAttention(dim, num_heads, cfg.bias, cfg.window_size, shift_size)
        self.norm2 = ChannelLayerNorm(dim)
        self.ffn = GatedFFN(dim, cfg.ffn_expansion_factor, cfg.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class PatchEmbed(nn.Module):
    """Stem: PixelUnshuffle(2) then 3x3 conv ``4*in -> dim``: ``[B, in, H, W] -> [B, dim, H/2, W/2]``.

    The reference code gives this convolution no bias whatever its ``bias`` flag (``bias`` here
    is the config's ``stem_bias``).
    """

    def __init__(self, in_channels: int, dim: int, bias: bool = False) -> None:
        super().__init__()
        self.proj1 = nn.PixelUnshuffle(2)
        self.proj2 = nn.Conv2d(in_channels * 4, dim, kernel_size=3, stride=1, padding=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj2(self.proj1(x))


class Swintormer(UNetBody):
    """The Swintormer restorer. Input ``[B, in, H, W]`` in ``[0, 1]``, output ``[B, 3, H, W]``.

    Any ``H, W`` is accepted: the input is reflect-padded to a multiple of ``16 * window_size``
    and the output cropped back.
    """

    def __init__(self, cfg: RestorerConfig) -> None:
        if cfg.arch != "swintormer":
            raise ValueError(f"Swintormer needs arch='swintormer', got {cfg.arch!r}")
        shift = cfg.window_size // 2

        def make_block(channels: int, heads: int, index: int) -> nn.Module:
            return SwintormerBlock(channels, heads, cfg, shift_size=0 if index % 2 == 0 else shift)

        super().__init__(cfg.dim, cfg.num_blocks, cfg.num_refinement_blocks, cfg.heads, cfg.bias, make_block)
        self.config = cfg
        if cfg.prior_channels:
            self.prior_embed = PriorEmbed(cfg.prior_channels, cfg.dim, cfg.prior_factor // cfg.stem_factor)
        self.patch_embed = PatchEmbed(cfg.in_channels, cfg.dim, cfg.stem_bias)
        self.skip_conv = nn.Conv2d(cfg.dim, cfg.dim * 2, kernel_size=1, bias=cfg.bias)
        # never a bias here, whatever ``bias`` says: the reference code hard-codes bias=False
        self.output = nn.Sequential(
            nn.Conv2d(cfg.dim * 2, cfg.out_channels * 4, kernel_size=3, stride=1, padding=1, bias=False),
            nn.PixelShuffle(2),
        )

    def forward(self, x: torch.Tensor, prior: torch.Tensor | None = None) -> torch.Tensor:
        """``[B, in, H, W]`` in ``[0, 1]`` -> ``[B, out, H, W]`` (nominally ``[0, 1]``, not clamped).

        ``prior``: ``[B, prior_channels, H'/f, W'/f]`` in ``[0, 1]`` for prior models, where
        ``H', W'`` is the input padded to ``size_multiple``; None otherwise.
        """
        x, size = pad_to_multiple(x, self.config.size_multiple)
        padded = (x.shape[-2], x.shape[-1])
        x = x * 2.0 - 1.0
        stem = self.merge_prior(self.patch_embed(x), prior, padded)
        feat = self.unet(stem) + self.skip_conv(stem)
        y = self.output(feat) + x[:, : self.config.out_channels]
        return crop_to((y + 1.0) / 2.0, size)
