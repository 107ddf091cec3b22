"""The 4-level U-Net body that Restormer and Swintormer share (module names match upstream).

Levels run at ``dim, 2dim, 4dim, 8dim`` channels; down = 3x3 conv ``n -> n/2`` + PixelUnshuffle(2),
up = 3x3 conv ``n -> 2n`` + PixelShuffle(2); decoder levels 3 and 2 reduce the concatenated skip
with a 1x1 conv, level 1 keeps ``2dim`` channels, followed by the refinement blocks.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

__all__ = ["Downsample", "PriorEmbed", "UNetBody", "Upsample"]

#: ``make_block(channels, heads, index_in_stage) -> nn.Module``
BlockFactory = Callable[[int, int, int], nn.Module]


class Downsample(nn.Module):
    """``[B, n, H, W] -> [B, 2n, H/2, W/2]``."""

    def __init__(self, n_feat: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(n_feat, n_feat // 2, kernel_size=3, stride=1, padding=1, bias=False),
            nn.PixelUnshuffle(2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Upsample(nn.Module):
    """``[B, n, H, W] -> [B, n/2, 2H, 2W]``."""

    def __init__(self, n_feat: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(n_feat, n_feat * 2, kernel_size=3, stride=1, padding=1, bias=False),
            nn.PixelShuffle(2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class PriorEmbed(nn.Module):
    """Diffusion prior -> stem features: ``[B, p, H/f, W/f] -> [B, dim, H/s, W/s]``.

    A 3x3 conv to ``dim * r^2`` channels then PixelShuffle(r), ``r = f / s`` (the prior's factor
    over the stem's): the mirror of the image path's pixel-unshuffle + conv, so both meet at the
    stem's resolution and are added. Zero-initialised: a prior model starts out as its
    prior-free twin, so it can be fine-tuned from upstream weights.
    """

    def __init__(self, prior_channels: int, dim: int, upscale: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(prior_channels, dim * upscale * upscale, kernel_size=3, padding=1, bias=False)
        self.shuffle = nn.PixelShuffle(upscale)
        nn.init.zeros_(self.proj.weight)

    def forward(self, prior: torch.Tensor) -> torch.Tensor:
        """``prior`` in ``[0, 1]`` (mapped to ``[-1, 1]`` here)."""
        return self.shuffle(self.proj(prior * 2.0 - 1.0))


def _stage(make_block: BlockFactory, channels: int, heads: int, depth: int) -> nn.Sequential:
    return nn.Sequential(*[make_block(channels, heads, i) for i in range(depth)])


class UNetBody(nn.Module):
    """Encoder, bottleneck, decoder and refinement; the stem and the tail belong to the subclass.

    The models inherit from this class (rather than holding it) so their state-dict keys are the
    upstream ones: ``encoder_level1.0.attn...``, not ``body.encoder_level1...``.
    """

    def __init__(
        self,
        dim: int,
        num_blocks: tuple[int, int, int, int],
        num_refinement_blocks: int,
        heads: tuple[int, int, int, int],
        bias: bool,
        make_block: BlockFactory,
    ) -> None:
        super().__init__()
        self.encoder_level1 = _stage(make_block, dim, heads[0], num_blocks[0])
        self.down1_2 = Downsample(dim)
        self.encoder_level2 = _stage(make_block, dim * 2, heads[1], num_blocks[1])
        self.down2_3 = Downsample(dim * 2)
        self.encoder_level3 = _stage(make_block, dim * 4, heads[2], num_blocks[2])
        self.down3_4 = Downsample(dim * 4)
        self.latent = _stage(make_block, dim * 8, heads[3], num_blocks[3])
        self.up4_3 = Upsample(dim * 8)
        self.reduce_chan_level3 = nn.Conv2d(dim * 8, dim * 4, kernel_size=1, bias=bias)
        self.decoder_level3 = _stage(make_block, dim * 4, heads[2], num_blocks[2])
        self.up3_2 = Upsample(dim * 4)
        self.reduce_chan_level2 = nn.Conv2d(dim * 4, dim * 2, kernel_size=1, bias=bias)
        self.decoder_level2 = _stage(make_block, dim * 2, heads[1], num_blocks[1])
        self.up2_1 = Upsample(dim * 2)
        self.decoder_level1 = _stage(make_block, dim * 2, heads[0], num_blocks[0])
        self.refinement = _stage(make_block, dim * 2, heads[0], num_refinement_blocks)

    def merge_prior(self, stem: torch.Tensor, prior: torch.Tensor | None, padded: tuple[int, int]) -> torch.Tensor:
        """Add the embedded prior to the stem features (a no-op for models without a prior).

        ``prior`` must be ``[B, p, H/f, W/f]`` for the padded input size ``padded = (H, W)``.
        """
        cfg = self.config
        if not cfg.prior_channels:
            if prior is not None:
                raise ValueError("this model has no prior input (prior_channels=0), but a prior was given")
            return stem
        if prior is None:
            raise ValueError(f"this model needs a {cfg.prior_channels}-channel diffusion prior; none was given")
        expected = (cfg.prior_channels, padded[0] // cfg.prior_factor, padded[1] // cfg.prior_factor)
        if tuple(prior.shape[1:]) != expected:
            raise ValueError(f"prior has shape {tuple(prior.shape[1:])}, expected {expected} for a {padded} input")
        return stem + self.prior_embed(prior)

    def unet(self, stem: torch.Tensor) -> torch.Tensor:
        """``[B, dim, h, w] -> [B, 2*dim, h, w]`` (``h, w`` multiples of 8)."""
        enc1 = self.encoder_level1(stem)
        enc2 = self.encoder_level2(self.down1_2(enc1))
        enc3 = self.encoder_level3(self.down2_3(enc2))
        latent = self.latent(self.down3_4(enc3))
        dec3 = self.reduce_chan_level3(torch.cat([self.up4_3(latent), enc3], dim=1))
        dec3 = self.decoder_level3(dec3)
        dec2 = self.reduce_chan_level2(torch.cat([self.up3_2(dec3), enc2], dim=1))
        dec2 = self.decoder_level2(dec2)
        dec1 = self.decoder_level1(torch.cat([self.up2_1(dec2), enc1], dim=1))
        return self.refinement(dec1)
