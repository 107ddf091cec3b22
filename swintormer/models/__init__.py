"""Restorer architectures and their configuration."""

from torch import nn

from swintormer.errors import SwintormerError
from swintormer.layers.backend import check_backend
from swintormer.models.config import RestorerConfig
from swintormer.models.restormer import MDTA, Restormer
from swintormer.models.swintormer import SwinChannelAttention, Swintormer

__all__ = ["Restormer", "RestorerConfig", "Swintormer", "build_restorer", "set_attention_backend"]


def build_restorer(cfg: RestorerConfig):
    """The ``nn.Module`` for ``cfg`` (``Swintormer`` or ``Restormer``), freshly initialised."""
    return Swintormer(cfg) if cfg.arch == "swintormer" else Restormer(cfg)


def set_attention_backend(model: nn.Module, backend: str) -> nn.Module:
    """Run every attention module of ``model`` on ``backend`` (``"auto"``, ``"torch"``, ``"triton"``).

    The choice is a plain attribute: the state dict does not change, and exporting always uses
    the torch reference. Raises :class:`SwintormerError` if ``backend`` cannot run here (see
    :func:`swintormer.layers.backend.check_backend`) or ``model`` has no such attention.
    Returns ``model``.
    """
    check_backend(backend)
    modules = [m for m in model.modules() if isinstance(m, (SwinChannelAttention, MDTA))]
    if not modules:
        raise SwintormerError(f"{type(model).__name__} has no Swintormer/Restormer attention to set a backend on")
    for module in modules:
        module.attention_backend = backend
    return model
