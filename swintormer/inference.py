"""Loading a restorer for inference and running it over an image through the shared tiler.

This is the library behind ``swintormer deblur`` and the demo; the exporter, the Triton models
and the benchmarks reuse :func:`resolve_restorer`, :func:`check_tile` and :func:`deblur_array`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from swintormer.errors import SwintormerError
from swintormer.tiling import DEFAULT_STRIDE, DEFAULT_TILE, Blend, TileFn, tiled_apply

__all__ = [
    "DEFAULT_CHECKPOINT",
    "TileOptions",
    "check_tile",
    "deblur_array",
    "resolve_device",
    "resolve_restorer",
    "torch_tile_fn",
]

log = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parent / "assets"
#: The bundled default model (see ``swintormer/assets/README.md`` for how it was made).
DEFAULT_CHECKPOINT = ASSETS / "swintormer-tiny.safetensors"


@dataclass(frozen=True)
class TileOptions:
    """How an image is cut and merged (see :func:`swintormer.tiling.tiled_apply`)."""

    tile: int = DEFAULT_TILE
    stride: int = DEFAULT_STRIDE
    batch: int = 8
    blend: Blend = "uniform"


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


def resolve_restorer(model: str | None = None, checkpoint: str | Path | None = None) -> nn.Module:
    """The restorer a user asked for, in eval mode on the CPU.

    - ``checkpoint`` of ours (``.safetensors`` with config): its model; ``model``, if given, must match.
    - ``checkpoint`` from upstream (``.pth``/``.pt``/plain ``.safetensors``): weights for variant ``model``.
    - neither: the bundled default checkpoint; a ``model`` other than its variant needs weights.
    """
    from swintormer.checkpoint import load_checkpoint, load_state_dict_into, read_state_dict
    from swintormer.registry import build_from_config, get_config

    wanted = get_config(model) if model else None
    if checkpoint is None:
        ckpt = load_checkpoint(DEFAULT_CHECKPOINT)
        if wanted is not None and ckpt.restorer.config != wanted:
            raise SwintormerError(
                f"no bundled weights for {model!r} (the bundled default is {ckpt.metadata.get('model', '?')!r}); "
                "pass --checkpoint with weights for it"
            )
        return ckpt.restorer
    path = Path(checkpoint)
    if not path.is_file():
        raise SwintormerError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors" and _is_ours(path):
        ckpt = load_checkpoint(path)
        if wanted is not None and ckpt.restorer.config != wanted:
            raise SwintormerError(
                f"{path} holds a different model than {model!r} "
                f"(checkpoint: {ckpt.metadata.get('model') or ckpt.restorer.config}); drop --model or pick the matching one"
            )
        return ckpt.restorer
    if wanted is None:
        raise SwintormerError(f"{path} has no config inside; say which variant it is with --model (see `swintormer models`)")
    module = build_from_config(wanted)
    return load_state_dict_into(module, read_state_dict(path), str(path)).eval()


def _is_ours(path: Path) -> bool:
    from safetensors import safe_open

    from swintormer.checkpoint import FORMAT

    try:
        with safe_open(str(path), framework="pt") as f:
            return (f.metadata() or {}).get("format") == FORMAT
    except Exception:
        return False  # unreadable: let the upstream reader raise its clear error


def check_tile(model: nn.Module, tile: int) -> None:
    """Raise unless ``tile`` (0 = whole image) is a multiple of what the model's architecture needs."""
    multiple = model.config.size_multiple
    if tile and tile % multiple:
        raise SwintormerError(
            f"tile {tile} is not a multiple of {multiple}, which this {model.config.arch} model needs "
            f"(use --tile {max(multiple, tile // multiple * multiple)} or 0 for the whole image)"
        )


def torch_tile_fn(model: nn.Module, device: torch.device) -> TileFn:
    """A :data:`TileFn` running ``model`` in eval mode without gradients on ``device``."""
    model = model.to(device).eval()

    def run(tiles: torch.Tensor, origins) -> torch.Tensor:
        with torch.inference_mode():
            return model(tiles.to(device)).float().cpu()

    return run


def deblur_array(
    image: np.ndarray,
    tile_fn: TileFn,
    options: TileOptions = TileOptions(),
    out_channels: int = 3,
    out_dtype: np.dtype | type = np.float32,
    progress: bool | None = None,
) -> np.ndarray:
    """``[H, W, C]`` image (uint8/uint16/float) -> ``[H, W, out_channels]`` restored image of ``out_dtype``."""
    return tiled_apply(
        tile_fn,
        image,
        out_channels,
        tile=options.tile,
        stride=options.stride,
        batch=options.batch,
        blend=options.blend,
        out_dtype=out_dtype,
        progress=progress,
    )
