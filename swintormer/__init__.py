"""Swintormer-RT: defocus deblurring (Swintormer, Restormer) built for deployment.

Public entry points: :class:`DeblurModel` (``DeblurModel.load(path)`` reads our checkpoints,
BasicSR files and plain state dicts, detecting an upstream file's architecture;
``DeblurModel.build(name)`` a fresh registered variant), :func:`build_model` (named networks),
:func:`save_checkpoint` (our format), :func:`swintormer.tiling.tiled_apply` (the one tiler) and
:func:`swintormer.inference.tile_function` (a backend's tile function).
``docs/architecture.md`` maps the modules and their layers.
"""

import importlib

from swintormer.errors import SwintormerError

#: public name -> the module that defines it, imported on first use (``import swintormer`` and
#: light commands such as ``swintormer health`` never import torch)
_LAZY = {
    "DeblurModel": "swintormer.model", "load_upstream": "swintormer.model", "load_checkpoint": "swintormer.checkpoint",
    "save_checkpoint": "swintormer.checkpoint", "build_model": "swintormer.registry", "get_config": "swintormer.registry",
    "list_models": "swintormer.registry",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'swintormer' has no attribute {name!r}")

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
