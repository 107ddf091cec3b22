"""Classical baselines as tile functions: the blurry input itself, and a tuned unsharp mask.

Both are :data:`~swintormer.tiling.TileFn` s, so they run through the same evaluation as any
model backend. The unsharp mask ``x + amount * (x - G_sigma * x)`` is tuned (``sigma``,
``amount``) by grid search for the best mean PSNR on the *training* photographs defocused at the
test blur levels: the test photographs are never looked at.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from swintormer.metrics import psnr
from swintormer.progress import Progress
from swintormer.tiling import TileFn

__all__ = ["UNSHARP_AMOUNTS", "UNSHARP_SIGMAS", "UnsharpParams", "identity_tile_fn", "tune_unsharp", "unsharp_tile_fn"]

log = logging.getLogger(__name__)

UNSHARP_SIGMAS = (0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0)
UNSHARP_AMOUNTS = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)


@dataclass(frozen=True)
class UnsharpParams:
    """Gaussian ``sigma`` (pixels) and ``amount`` of an unsharp mask, and the mean PSNR they were tuned to."""

    sigma: float
    amount: float
    tuned_psnr: float | None = None


def identity_tile_fn(tiles: torch.Tensor, origins) -> torch.Tensor:
    """The blurry input (its first view) unchanged: ``[b, C, t, t] -> [b, 3, t, t]``."""
    return tiles[:, :3]


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``[b, C, h, w]`` with reflected borders (radius ``ceil(3 sigma)``)."""
    radius = max(1, int(np.ceil(3 * sigma)))
    taps = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
    kernel = kernel / kernel.sum()
    c = x.shape[1]
    pad_h, pad_w = min(radius, x.shape[2] - 1), min(radius, x.shape[3] - 1)
    x = F.pad(x, (pad_w, pad_w, pad_h, pad_h), mode="reflect" if min(pad_h, pad_w) > 0 else "replicate")
    kh = kernel[radius - pad_h : radius + pad_h + 1].view(1, 1, -1, 1).repeat(c, 1, 1, 1)
    kw = kernel[radius - pad_w : radius + pad_w + 1].view(1, 1, 1, -1).repeat(c, 1, 1, 1)
    return F.conv2d(F.conv2d(x, kh, groups=c), kw, groups=c)


def unsharp_tile_fn(params: UnsharpParams) -> TileFn:
    """A tile function applying the unsharp mask to the first view: ``[b, C, t, t] -> [b, 3, t, t]``."""

    def run(tiles: torch.Tensor, origins) -> torch.Tensor:
        x = tiles[:, :3].float()
        return x + params.amount * (x - _gaussian_blur(x, params.sigma))

    return run


def tune_unsharp(
    pairs: Sequence[tuple[np.ndarray, np.ndarray]],
    sigmas: Sequence[float] = UNSHARP_SIGMAS,
    amounts: Sequence[float] = UNSHARP_AMOUNTS,
    progress: bool | None = None,
) -> UnsharpParams:
    """The grid point with the best mean PSNR (output clipped to ``[0, 1]``) over ``(blurry, sharp)`` float pairs."""
    tensors = [(torch.from_numpy(b[:, :, :3]).permute(2, 0, 1)[None].float(), s) for b, s in pairs]
    best = UnsharpParams(0.0, 0.0, float("-inf"))
    with Progress(len(sigmas), "tuning unsharp mask", "sigmas", progress) as bar:
        for sigma in sigmas:
            blurred = [(x, _gaussian_blur(x, sigma), s) for x, s in tensors]
            for amount in amounts:
                scores = [psnr((x + amount * (x - g))[0].permute(1, 2, 0).clamp(0, 1).numpy(), s) for x, g, s in blurred]
                score = float(np.mean(scores))
                if score > best.tuned_psnr:
                    best = UnsharpParams(sigma, amount, score)
            bar.update()
    log.info("unsharp mask tuned on %d training images: sigma %g, amount %g (mean PSNR %.2f dB)", len(pairs), best.sigma, best.amount, best.tuned_psnr)
    return best


def training_tuning_pairs(levels: Sequence[float], seed: int = 0, max_side: int = 512) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(blurry, sharp)`` float pairs: every training photograph defocused once at each of ``levels``."""
    from swintormer.data.photos import load_photo, split_photos
    from swintormer.data.synthetic import level_recipe, synthesize_defocus

    pairs = []
    for p, (photo, level) in enumerate(itertools.product(split_photos("train"), levels)):
        sample = synthesize_defocus(load_photo(photo, max_side), level_recipe(level), np.random.default_rng([seed, p]))
        pairs.append((sample.center, sample.target))
    return pairs
