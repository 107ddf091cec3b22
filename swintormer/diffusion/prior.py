"""Sampling the diffusion prior for a batch of image tiles.

``blurry tiles -> encoder (condition) -> N-step DDIM over the denoiser -> prior latent``. The
encoder and the denoiser are plain callables, so a PyTorch module, an ONNX Runtime session or a
TensorRT engine can each be dropped in without touching the loop. Every tile gets its own random
generator seeded from ``(seed, tile origin)``, so a tile's prior does not depend on which other
tiles share its batch, and every backend draws the same noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from swintormer.diffusion.schedulers import DDIMScheduler, _normal_like

__all__ = ["DenoiseFn", "EncodeFn", "PriorSettings", "conditioning_image", "sample_prior", "tile_generators"]

#: ``encode(image [b, 3, H, W] in [0, 1]) -> latent [b, z, H/f, W/f] in [-1, 1]``
EncodeFn = Callable[[torch.Tensor], torch.Tensor]
#: ``denoise(concat(x_t, cond) [b, 2z, h, w], t [b] int64) -> eps [b, z, h, w]``
DenoiseFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class PriorSettings:
    """How the prior is sampled: DDIM ``steps`` (0 = use the conditioning latent itself), ``eta``, ``seed``."""

    steps: int = 20
    eta: float = 1.0
    seed: int = 42


def tile_generators(seed: int, origins: Sequence[tuple[int, int]]) -> list[torch.Generator]:
    """One CPU generator per tile, seeded from ``(seed, y, x)`` through NumPy's SeedSequence."""
    gens = []
    for y, x in origins:
        state = np.random.SeedSequence([seed, int(y), int(x)]).generate_state(2, dtype=np.uint32)
        gens.append(torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1])))
    return gens


def conditioning_image(tiles: torch.Tensor) -> torch.Tensor:
    """The RGB image the encoder sees: ``[b, 3|6, H, W] -> [b, 3, H, W]``.

    Dual-pixel tiles (right, left) are averaged, which approximates the combined (centre) view.
    """
    if tiles.shape[1] == 3:
        return tiles
    return 0.5 * (tiles[:, :3] + tiles[:, 3:6])


def sample_prior(
    tiles: torch.Tensor,
    origins: Sequence[tuple[int, int]],
    encode: EncodeFn,
    denoise: DenoiseFn,
    scheduler: DDIMScheduler,
    settings: PriorSettings,
) -> torch.Tensor:
    """The prior for ``tiles [b, C, H, W]`` in ``[0, 1]``: ``[b, z, H/f, W/f]`` in ``[0, 1]``.

    The DDIM sample ``z_0`` is clamped to ``[-1, 1]`` and mapped to ``[0, 1]``, as the reference.
    """
    cond = encode(conditioning_image(tiles)).float()
    if settings.steps == 0:
        return (cond.clamp(-1.0, 1.0) + 1.0) / 2.0
    gens = tile_generators(settings.seed, origins)
    x = _normal_like(cond, gens)
    scheduler.eta = settings.eta
    scheduler.set_timesteps(settings.steps)
    for t in scheduler.timesteps.tolist():
        eps = denoise(torch.cat([x, cond], dim=1), torch.full((x.shape[0],), t, dtype=torch.int64))
        x, _ = scheduler.step(eps.float(), t, x, gens)
    return (x.clamp(-1.0, 1.0) + 1.0) / 2.0
