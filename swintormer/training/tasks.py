"""What the trainer trains: a :class:`TrainTask` (modules + a batch -> loss function), built per stage.

The trainer knows nothing about restorers or denoisers. A *stage* is a function
``StageOptions -> TrainTask``; :mod:`swintormer.training.stages` registers them by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch import nn

from swintormer.errors import SwintormerError

__all__ = ["Batch", "LossFn", "StageOptions", "TrainTask"]

#: ``{"input": [B, C_in, h, w], "target": [B, 3, h, w]}`` float32 in ``[0, 1]`` (see ``swintormer.data.pairs``)
Batch = dict[str, torch.Tensor]
#: ``(modules by name, batch) -> (scalar loss to minimise, {metric: value} for the log)``
LossFn = Callable[[Mapping[str, nn.Module], Batch], tuple[torch.Tensor, dict[str, float]]]


@dataclass
class TrainTask:
    """Everything stage-specific the trainer needs.

    ``modules``: the components written to checkpoints, each with a dataclass ``.config`` (as
    :func:`swintormer.save_checkpoint` needs); ``trainable``: the names among them the optimiser
    updates and the EMA tracks (the others stay frozen, e.g. a latent encoder); ``helpers``:
    modules the loss uses that are never saved (a perceptual network); ``loss_fn``: called with
    ``{**modules, **helpers}`` (EMA copies of the trainable ones during validation) and a batch;
    ``metadata``: written into every checkpoint header (``{"model": "swintormer-tiny"}``);
    ``in_channels``: what ``batch["input"]`` must hold (3 single-image, 6 dual-pixel);
    ``size_multiple``: training crops must be multiples of this.
    """

    modules: dict[str, nn.Module]
    trainable: tuple[str, ...]
    loss_fn: LossFn
    helpers: dict[str, nn.Module] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    in_channels: int = 3
    size_multiple: int = 1

    def __post_init__(self) -> None:
        missing = [name for name in self.trainable if name not in self.modules]
        if missing or not self.trainable:
            raise SwintormerError(f"trainable components {missing or '(none)'} are not among {sorted(self.modules)}")
        for name in self.modules:
            if not hasattr(self.modules[name], "config"):
                raise SwintormerError(f"component {name!r} has no .config; checkpoints cannot rebuild it")


@dataclass(frozen=True)
class StageOptions:
    """What a stage is built from: a variant to start fresh, or a checkpoint of ours to continue from.

    ``perceptual_weights``: a local VGG16 state dict (torchvision layout) enabling the perceptual
    loss at ``perceptual_weight``; ``extra``: stage-specific ``key=value`` options.
    """

    model: str | None = None
    init: Path | None = None
    perceptual_weights: Path | None = None
    perceptual_weight: float = 0.01
    extra: dict[str, str] = field(default_factory=dict)
