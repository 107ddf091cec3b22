"""PyTorch backend: the model's own modules, in eval mode, without gradients, on a device."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import torch

from swintormer.backends import BackendRequest
from swintormer.backends.compose import make_tile_fn
from swintormer.errors import SwintormerError
from swintormer.model import DeblurModel
from swintormer.tiling import TileFn

__all__ = ["resolve_device", "tile_fn"]


def resolve_device(name: str = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; otherwise the named device, checked."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise SwintormerError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SwintormerError(f"device {name!r} requested but CUDA is not available on this machine")
    return device


def tile_fn(model: DeblurModel, request: BackendRequest = BackendRequest(), graphs: Mapping[str, Path] | None = None) -> TileFn:
    """The model's modules on ``request.device`` (``graphs`` is unused: this backend needs none)."""
    device = resolve_device(request.device)
    if request.threads:
        torch.set_num_threads(request.threads)
    for module in model.components().values():
        module.to(device).eval()

    # Tiles go to the device once a batch; the prior stays there; the tiler takes the output home.
    def restore(tiles: torch.Tensor, prior: torch.Tensor | None) -> torch.Tensor:
        with torch.inference_mode():
            return model.restorer(tiles, prior).float()

    if not model.has_prior:
        return make_tile_fn(restore, device=device)

    def encode(images: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return model.encoder(images).float()

    def denoise(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return model.denoiser(x.to(device), t.to(device)).float()

    return make_tile_fn(restore, encode, denoise, model.scheduler, request.settings or model.prior, device)
