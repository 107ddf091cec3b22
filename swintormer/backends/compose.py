"""Composing a backend's callables into the tile function the shared tiler runs.

Per batch of tiles: sample the prior of exactly those tiles (when the model has one), then
restore them with it. The PyTorch backend composes its modules, the graph backends (ONNX
Runtime, OpenVINO, TensorRT) their sessions, called with the export specs' tensor names.

Nothing here copies to the host: the tiles go to the backend's ``device`` once a batch, the
conditioning latent, each DDIM step and the prior stay where the backend computed them (a GPU
for TensorRT, CUDA torch and the server's GPU models), and the tiler moves each batch's
restored tiles to the host once, where it merges them into its band.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

from swintormer.diffusion.config import SchedulerConfig
from swintormer.diffusion.prior import DenoiseFn, EncodeFn, PriorSettings, sample_prior
from swintormer.diffusion.schedulers import DDIMScheduler
from swintormer.errors import SwintormerError
from swintormer.tiling import TileFn

__all__ = ["GraphSession", "RestoreFn", "graph_tile_fn", "make_tile_fn", "numpy_feed"]

#: ``restore(tiles [b, C, t, t], prior [b, z, t/f, t/f] or None) -> [b, 3, t, t]``
RestoreFn = Callable[[torch.Tensor, "torch.Tensor | None"], torch.Tensor]
#: ``session(**named_inputs) -> output`` for one exported graph (ONNX Runtime, TensorRT, ...)
GraphSession = Callable[..., "torch.Tensor"]


def numpy_feed(inputs: dict, input_names: Sequence[str], graph: str) -> dict[str, np.ndarray]:
    """A graph session's named inputs as contiguous NumPy arrays, refusing names ``graph`` lacks."""
    feed = {k: np.ascontiguousarray(v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else v) for k, v in inputs.items()}
    unknown = set(feed) - set(input_names)
    if unknown:
        raise SwintormerError(f"{graph} has no inputs {sorted(unknown)}; it takes {list(input_names)}")
    return feed


def make_tile_fn(
    restore: RestoreFn,
    encode: EncodeFn | None = None,
    denoise: DenoiseFn | None = None,
    scheduler: SchedulerConfig | None = None,
    settings: PriorSettings | None = None,
    device: torch.device | str | None = None,
) -> TileFn:
    """Compose backend callables into a tile function; without ``encode``/``denoise`` no prior is used.

    ``device``: where the tiles are moved once per batch before the prior and the restorer see
    them (None: left where the tiler made them, on the host).
    """
    ddim = DDIMScheduler(scheduler or SchedulerConfig(), eta=(settings or PriorSettings()).eta)

    def run(tiles: torch.Tensor, origins: Sequence[tuple[int, int]]) -> torch.Tensor:
        if device is not None:
            tiles = tiles.to(device)
        prior = None
        if encode is not None and denoise is not None:
            prior = sample_prior(tiles, origins, encode, denoise, ddim, settings or PriorSettings())
        return restore(tiles, prior)

    return run


def graph_tile_fn(
    sessions: dict[str, GraphSession],
    settings: PriorSettings | None = None,
    scheduler: SchedulerConfig | None = None,
    device: torch.device | str | None = None,
) -> TileFn:
    """A tile function over exported graphs, called with the export specs' tensor names.

    ``sessions``: ``{"restorer": ..., ["encoder": ..., "denoiser": ...]}``; each returns a tensor,
    on whichever device it computed it (kept there). ``device``: as :func:`make_tile_fn`'s.
    """
    restorer = sessions["restorer"]

    def restore(tiles: torch.Tensor, prior: torch.Tensor | None) -> torch.Tensor:
        feed = {"image": tiles.float()}
        if prior is not None:
            feed["prior"] = prior.float()
        return restorer(**feed).float()

    if "encoder" not in sessions:
        return make_tile_fn(restore, device=device)
    encoder, denoiser = sessions["encoder"], sessions["denoiser"]

    def encode(images: torch.Tensor) -> torch.Tensor:
        return encoder(image=images.float()).float()

    def denoise(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return denoiser(sample=x.float(), timestep=t.long()).float()

    return make_tile_fn(restore, encode, denoise, scheduler, settings, device)
