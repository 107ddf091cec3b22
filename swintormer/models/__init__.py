"""Restorer architectures and their configuration."""

from swintormer.models.config import RestorerConfig
from swintormer.models.restormer import Restormer
from swintormer.models.swintormer import Swintormer

__all__ = ["Restormer", "RestorerConfig", "Swintormer", "build_restorer"]


def build_restorer(cfg: RestorerConfig):
    """The ``nn.Module`` for ``cfg`` (``Swintormer`` or ``Restormer``), freshly initialised."""
    return Swintormer(cfg) if cfg.arch == "swintormer" else Restormer(cfg)
