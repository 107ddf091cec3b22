"""Loading a restorer for inference and running it over an image through the shared tiler.

This is the library behind ``swintormer deblur`` and the demo; the exporter, the Triton models
and the benchmarks reuse :func:`resolve_restorer`, :func:`check_tile` and :func:`deblur_array`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from swintormer.errors import SwintormerError
from swintormer.pipeline import DeblurModel, torch_tile_fn
from swintormer.tiling import DEFAULT_STRIDE, DEFAULT_TILE, Blend, TileFn, tiled_apply

__all__ = [
    "BUNDLED",
    "DEFAULT_CHECKPOINT",
    "TileOptions",
    "check_tile",
    "deblur_array",
    "backend_tile_fn",
    "resolve_device",
    "resolve_model",
    "resolve_restorer",
    "torch_tile_fn",
]

log = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parent / "assets"
#: Bundled weights by variant (``swintormer/assets/README.md`` says how each was trained).
BUNDLED = {
    "swintormer-tiny": ASSETS / "swintormer-tiny.safetensors",
    "swintormer-tiny-prior": ASSETS / "swintormer-tiny-prior.safetensors",
}
#: The bundled default model: what every command uses without ``--model``/``--checkpoint``.
DEFAULT_CHECKPOINT = BUNDLED["swintormer-tiny"]


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


def _load_ours(path: Path, wanted: Any, model: str | None) -> DeblurModel:
    from swintormer.checkpoint import load_checkpoint

    ckpt = load_checkpoint(path)
    if "restorer" not in ckpt.components:
        raise SwintormerError(f"{path} holds no restorer (components: {', '.join(ckpt.components)})")
    if wanted is not None and ckpt.restorer.config != wanted:
        raise SwintormerError(
            f"{path} holds a different model than {model!r} "
            f"(checkpoint: {ckpt.metadata.get('model') or ckpt.restorer.config}); drop --model or pick the matching one"
        )
    return DeblurModel.from_components(ckpt.components, ckpt.metadata)


def resolve_model(model: str | None = None, checkpoint: str | Path | None = None) -> DeblurModel:
    """The model a user asked for (modules in eval mode, on the CPU).

    - ``checkpoint`` of ours (``.safetensors`` with config): its model; ``model``, if given, must match.
    - ``checkpoint`` from upstream (``.pth``/``.pt``/plain ``.safetensors``): weights for variant ``model``.
    - neither: the bundled weights of ``model`` (:data:`BUNDLED`), or the default without ``model``.
    """
    from swintormer.checkpoint import load_state_dict_into, read_state_dict
    from swintormer.registry import build_from_config, get_config

    wanted = get_config(model) if model else None
    if checkpoint is None:
        if model is None:
            return _load_ours(DEFAULT_CHECKPOINT, None, None)
        if model not in BUNDLED:
            raise SwintormerError(
                f"no bundled weights for {model!r} (bundled: {', '.join(BUNDLED)}); pass --checkpoint with weights for it"
            )
        return _load_ours(BUNDLED[model], wanted, model)
    path = Path(checkpoint)
    if not path.is_file():
        raise SwintormerError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors" and _is_ours(path):
        return _load_ours(path, wanted, model)
    if wanted is None:
        raise SwintormerError(f"{path} has no config inside; say which variant it is with --model (see `swintormer models`)")
    if getattr(wanted, "prior_channels", 0):
        raise SwintormerError(f"{model!r} needs our checkpoint format (restorer, encoder and denoiser in one file)")
    restorer = load_state_dict_into(build_from_config(wanted), read_state_dict(path), str(path)).eval()
    return DeblurModel(restorer=restorer, name=model or "")


def _is_ours(path: Path) -> bool:
    from safetensors import safe_open

    from swintormer.checkpoint import FORMAT

    try:
        with safe_open(str(path), framework="pt") as f:
            return (f.metadata() or {}).get("format") == FORMAT
    except Exception:
        return False  # unreadable: let the upstream reader raise its clear error


def resolve_restorer(model: str | None = None, checkpoint: str | Path | None = None) -> nn.Module:
    """Only the restorer of :func:`resolve_model` (for restorer-only tools)."""
    return resolve_model(model, checkpoint).restorer


def check_tile(model: DeblurModel | nn.Module, tile: int) -> None:
    """Raise unless ``tile`` (0 = whole image) is a multiple of what the model's architecture needs."""
    multiple = model.size_multiple if isinstance(model, DeblurModel) else model.config.size_multiple
    if tile and tile % multiple:
        raise SwintormerError(
            f"tile {tile} is not a multiple of {multiple}, which this model needs "
            f"(use --tile {max(multiple, tile // multiple * multiple)} or 0 for the whole image)"
        )


BACKENDS = ("torch", "onnxruntime")
#: short names for ONNX Runtime execution providers
PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}


def backend_tile_fn(
    model: DeblurModel,
    backend: str,
    options: TileOptions,
    settings=None,
    device: str = "auto",
    precision: str = "fp32",
    provider: str = "cpu",
) -> TileFn:
    """The tile function of ``backend``: PyTorch on ``device``, or ONNX Runtime over graphs
    exported into the artifact cache on first use (``precision``, execution ``provider``).
    """
    if backend == "torch":
        return torch_tile_fn(model, resolve_device(device), settings)
    if backend != "onnxruntime":
        raise SwintormerError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    from swintormer.backends.onnxruntime import ort_tile_fn
    from swintormer.export.build import export_components, specs_for
    from swintormer.export.specs import Precision

    if provider not in PROVIDERS:
        raise SwintormerError(f"unknown provider {provider!r}; choose one of {', '.join(PROVIDERS)}")
    specs = specs_for(model, options.tile, options.batch)
    log.info("ONNX Runtime backend: %s graphs (exported once into the artifact cache)", precision)
    files = export_components(model, specs, Precision(precision))
    providers = [PROVIDERS[provider]] + (["CPUExecutionProvider"] if provider != "cpu" else [])
    return ort_tile_fn({k: a.path for k, a in files.items()}, settings or model.prior, model.scheduler, providers)


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
