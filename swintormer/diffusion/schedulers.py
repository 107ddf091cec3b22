"""Noise schedulers, separate from the networks (diffusers style).

``DDPMScheduler`` noises training samples (``add_noise``); ``DDIMScheduler`` samples in N steps:
``set_timesteps(n)``, then for each ``t`` in ``.timesteps``: ``sample = step(eps, t, sample)``.
Timesteps follow LDM's uniform DDIM spacing (``range(0, T, T // n) + 1``: 1, 51, ..., 951 for 20
of 1000) and the previous-alpha rule of LDM's ``make_ddim_sampling_parameters``. With
``eta = 1`` each step adds fresh noise drawn from the caller's generators, so sampling is
deterministic given them.
"""

from __future__ import annotations

from typing import Sequence

import torch

from swintormer.diffusion.config import SchedulerConfig
from swintormer.errors import SwintormerError

__all__ = ["DDIMScheduler", "DDPMScheduler", "make_betas"]


def make_betas(cfg: SchedulerConfig) -> torch.Tensor:
    """``[T]`` float64 betas of the configured schedule."""
    t = cfg.num_train_timesteps
    if cfg.beta_schedule == "scaled_linear":
        return torch.linspace(cfg.beta_start**0.5, cfg.beta_end**0.5, t, dtype=torch.float64) ** 2
    if cfg.beta_schedule == "linear":
        return torch.linspace(cfg.beta_start, cfg.beta_end, t, dtype=torch.float64)
    raise SwintormerError(f"unknown beta_schedule {cfg.beta_schedule!r}: use 'scaled_linear' or 'linear'")


class DDPMScheduler:
    """The forward process ``q(x_t | x_0)``: ``x_t = sqrt(a_t) x_0 + sqrt(1 - a_t) eps``."""

    def __init__(self, cfg: SchedulerConfig = SchedulerConfig()) -> None:
        self.config = cfg
        self.betas = make_betas(cfg)
        self.alphas_cumprod = torch.cumprod(1.0 - self.betas, dim=0)

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``x0, noise [B, ...]``, ``t [B]`` int -> ``x_t [B, ...]``."""
        a = self.alphas_cumprod.to(x0.device)[t].to(x0.dtype).reshape(-1, *([1] * (x0.dim() - 1)))
        return a.sqrt() * x0 + (1.0 - a).sqrt() * noise

    def sample_timesteps(self, batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``[batch]`` uniform random training timesteps in ``[0, T)``."""
        return torch.randint(0, self.config.num_train_timesteps, (batch,), generator=generator)


def _normal_like(sample: torch.Tensor, generators: Sequence[torch.Generator] | None) -> torch.Tensor:
    """Standard normal noise shaped like ``sample``, one generator per batch row (CPU draws)."""
    if generators is None:
        return torch.randn_like(sample)
    if len(generators) != sample.shape[0]:
        raise ValueError(f"{len(generators)} generators for a batch of {sample.shape[0]}")
    rows = [torch.randn(sample.shape[1:], generator=g, dtype=torch.float32) for g in generators]
    return torch.stack(rows).to(sample.device, sample.dtype)


class DDIMScheduler(DDPMScheduler):
    """DDIM sampling (Song et al.) in ``n`` steps with stochasticity ``eta``."""

    def __init__(self, cfg: SchedulerConfig = SchedulerConfig(), eta: float = 1.0) -> None:
        super().__init__(cfg)
        self.eta = eta
        self.timesteps = torch.zeros(0, dtype=torch.long)
        self._prev: dict[int, int] = {}

    def set_timesteps(self, n: int) -> None:
        """Choose ``n`` steps; ``.timesteps`` then runs from high to low noise."""
        total = self.config.num_train_timesteps
        if not 1 <= n <= total:
            raise SwintormerError(f"prior steps must be between 1 and {total}, got {n}")
        ascending = torch.arange(0, total, total // n)[:n] + 1
        ascending = ascending.clamp(max=total - 1)
        self.timesteps = ascending.flip(0)
        self._prev = {int(t): int(p) for t, p in zip(ascending[1:], ascending[:-1])}
        self._prev[int(ascending[0])] = -1  # the last step goes to alphas_cumprod[0]

    def _alpha(self, t: int) -> float:
        return float(self.alphas_cumprod[max(t, 0)])

    def step(
        self,
        eps: torch.Tensor,
        t: int,
        sample: torch.Tensor,
        generators: Sequence[torch.Generator] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One DDIM update ``x_t -> x_prev``; returns ``(x_prev, predicted x_0)``, both ``[B, ...]``."""
        t = int(t)
        if t not in self._prev:
            raise SwintormerError(f"timestep {t} is not in this schedule; call set_timesteps first")
        a_t, a_prev = self._alpha(t), self._alpha(self._prev[t])
        sigma = self.eta * ((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)) ** 0.5
        x0 = (sample - (1 - a_t) ** 0.5 * eps) / a_t**0.5
        direction = max(1 - a_prev - sigma**2, 0.0) ** 0.5 * eps
        prev = a_prev**0.5 * x0 + direction
        if sigma > 0:
            prev = prev + sigma * _normal_like(sample, generators)
        return prev, x0
