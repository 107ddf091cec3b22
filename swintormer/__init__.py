"""Swintormer-RT: defocus deblurring (Swintormer, Restormer) built for deployment.

Public entry points: :func:`build_model` (named variants), :func:`load_upstream` (public
checkpoints), :func:`load_checkpoint` / :func:`save_checkpoint` (our format), and the tiled
inference path in :mod:`swintormer.inference`.
"""

from swintormer.checkpoint import load_checkpoint, load_upstream, save_checkpoint
from swintormer.errors import SwintormerError
from swintormer.registry import build_model, get_config, list_models

__all__ = [
    "SwintormerError",
    "build_model",
    "get_config",
    "list_models",
    "load_checkpoint",
    "load_upstream",
    "save_checkpoint",
]
__version__ = "0.1.0"
