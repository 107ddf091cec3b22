"""The training stages by name: what ``swintormer train --stage NAME`` builds.

``restorer`` (:mod:`swintormer.training.restorer`), and the diffusion prior's ``autoencoder``,
``denoiser`` and ``prior-restorer`` (:mod:`swintormer.training.prior_stages`).
"""

from __future__ import annotations

from typing import Callable

from swintormer.errors import SwintormerError
from swintormer.training.prior_stages import autoencoder_task, denoiser_task, prior_restorer_task
from swintormer.training.restorer import restorer_task
from swintormer.training.tasks import StageOptions, TrainTask

__all__ = ["STAGES", "build_task"]

#: stage name -> the function that builds its :class:`TrainTask`
STAGES: dict[str, Callable[[StageOptions], TrainTask]] = {
    "restorer": restorer_task,
    "autoencoder": autoencoder_task,
    "denoiser": denoiser_task,
    "prior-restorer": prior_restorer_task,
}


def build_task(stage: str, options: StageOptions) -> TrainTask:
    """The task of ``stage`` built from ``options``."""
    if stage not in STAGES:
        raise SwintormerError(f"unknown training stage {stage!r}; available: {', '.join(sorted(STAGES))}")
    return STAGES[stage](options)
