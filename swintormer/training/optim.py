"""Optimiser, learning-rate schedule and weight averaging for the trainer.

The schedule is a pure function of the step (linear warm-up, then cosine annealing to
``min_lr``), so resuming needs only the step; the EMA keeps its own copy of the weights.
"""

from __future__ import annotations

import copy
import math
from typing import Iterable

import torch
from torch import nn

__all__ = ["EMA", "build_optimizer", "warmup_cosine_lr"]


def warmup_cosine_lr(step: int, total: int, lr: float, warmup: int, min_lr: float) -> float:
    """Learning rate for 0-based ``step``: ``lr * (step+1)/warmup`` during warm-up, then cosine to ``min_lr``."""
    if warmup > 0 and step < warmup:
        return lr * (step + 1) / warmup
    span = max(total - warmup, 1)
    progress = min(max(step - warmup, 0) / span, 1.0)
    return min_lr + (lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_optimizer(params: Iterable[nn.Parameter], lr: float, weight_decay: float, betas: tuple[float, float]) -> torch.optim.AdamW:
    """AdamW (the reference: lr 3e-4, weight decay 1e-4, betas (0.9, 0.99))."""
    return torch.optim.AdamW(list(params), lr=lr, weight_decay=weight_decay, betas=betas)


class EMA:
    """Exponential moving average of a module's floating-point state (parameters and buffers).

    The effective decay ramps up as ``min(decay, (1 + n) / (10 + n))`` over the first updates, so
    the average is not dominated by the random initialisation in short runs.
    """

    def __init__(self, module: nn.Module, decay: float) -> None:
        self.module = copy.deepcopy(module).eval().requires_grad_(False)
        self.decay = decay
        self.updates = 0

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        """Move the average towards ``module``'s current state."""
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        current = module.state_dict()
        for key, avg in self.module.state_dict().items():
            if avg.dtype.is_floating_point:
                avg.lerp_(current[key].to(avg.dtype), 1.0 - d)
            else:
                avg.copy_(current[key])
