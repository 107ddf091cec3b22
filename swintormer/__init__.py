"""Swintormer-RT: defocus deblurring (Swintormer, Restormer) built for deployment.

Public entry points: :class:`DeblurModel` (``DeblurModel.load(path)`` reads our checkpoints,
BasicSR files and plain state dicts, detecting an upstream file's architecture;
``DeblurModel.build(name)`` a fresh registered variant), :func:`build_model` (named networks),
:func:`save_checkpoint` (our format), :func:`swintormer.tiling.tiled_apply` (the one tiler) and
:func:`swintormer.inference.tile_function` (a backend's tile function).
``docs/architecture.md`` maps the modules and their layers.
"""

from swintormer.checkpoint import load_checkpoint, save_checkpoint
from swintormer.errors import SwintormerError
from swintormer.model import DeblurModel, load_upstream
from swintormer.registry import build_model, get_config, list_models

__all__ = [
    "DeblurModel",
    "SwintormerError",
    "build_model",
    "get_config",
    "list_models",
    "load_checkpoint",
    "load_upstream",
    "save_checkpoint",
]
__version__ = "0.1.0"
