"""Training objectives of the prior (library functions the trainer calls).

- First stage: reconstruction (L1) of images through encoder and decoder.
- Denoiser: eps-prediction MSE on the sharp image's latent, conditioned by concatenation on the
  blurry image's latent, with the encoder frozen.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from swintormer.diffusion.prior import conditioning_image
from swintormer.diffusion.schedulers import DDPMScheduler

__all__ = ["denoiser_loss", "first_stage_loss"]


def first_stage_loss(encoder: nn.Module, decoder: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Mean absolute reconstruction error of ``images [B, 3, H, W]`` in ``[0, 1]``."""
    return F.l1_loss(decoder(encoder(images)), images)


def denoiser_loss(
    denoiser: nn.Module,
    encoder: nn.Module,
    scheduler: DDPMScheduler,
    blurry: torch.Tensor,
    sharp: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``|| eps - D(concat(noisy z_sharp, z_blurry), t) ||^2`` for random ``t`` and ``eps``.

    ``blurry [B, 3|6, H, W]``, ``sharp [B, 3, H, W]`` in ``[0, 1]``; the encoder runs without
    gradients (frozen).
    """
    with torch.no_grad():
        cond = encoder(conditioning_image(blurry))
        z0 = encoder(sharp)
    t = scheduler.sample_timesteps(z0.shape[0], generator).to(z0.device)
    noise = torch.randn(z0.shape, generator=generator).to(z0.device)
    eps = denoiser(torch.cat([scheduler.add_noise(z0, noise, t), cond], dim=1), t)
    return F.mse_loss(eps, noise)
