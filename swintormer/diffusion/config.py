"""Frozen configs of the diffusion-prior networks and of the noise schedule."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from swintormer.errors import SwintormerError

__all__ = ["DenoiserConfig", "FirstStageConfig", "SchedulerConfig"]


def _from_dict(cls: type, data: dict[str, Any]) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise SwintormerError(f"unknown {cls.__name__} keys {unknown}; known: {sorted(fields)}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


@dataclass(frozen=True)
class FirstStageConfig:
    """LDM first-stage autoencoder (``ch``, ``ch_mult``, ``num_res_blocks``; f = 2^(len(ch_mult)-1)).

    ``part`` picks the encoder (image -> latent in ``[-1, 1]``) or the decoder (latent -> image).
    """

    part: Literal["encoder", "decoder"] = "encoder"
    image_channels: int = 3
    ch: int = 128
    ch_mult: tuple[int, ...] = (1, 2, 4)
    num_res_blocks: int = 2
    z_channels: int = 3
    mid_attention: bool = True
    norm_groups: int = 32

    def __post_init__(self) -> None:
        if any((self.ch * m) % self.norm_groups for m in self.ch_mult):
            raise SwintormerError(f"every level's channels must be a multiple of norm_groups={self.norm_groups}")

    @property
    def factor(self) -> int:
        """Spatial downsampling factor of the latent."""
        return 2 ** (len(self.ch_mult) - 1)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FirstStageConfig":
        return _from_dict(cls, data)


@dataclass(frozen=True)
class DenoiserConfig:
    """Time-conditioned UNet (openaimodel layout); ``attention_resolutions`` are downsample rates."""

    in_channels: int = 6
    out_channels: int = 3
    model_channels: int = 160
    channel_mult: tuple[int, ...] = (1, 2, 2, 4)
    num_res_blocks: int = 2
    attention_resolutions: tuple[int, ...] = (8,)
    num_head_channels: int = 32
    dropout: float = 0.0

    def __post_init__(self) -> None:
        for mult in self.channel_mult:
            if (self.model_channels * mult) % 32:
                raise SwintormerError(f"channels {self.model_channels * mult} are not a multiple of 32 (GroupNorm groups)")

    @property
    def size_multiple(self) -> int:
        """Latent height/width must be multiples of this."""
        return 2 ** (len(self.channel_mult) - 1)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DenoiserConfig":
        return _from_dict(cls, data)


@dataclass(frozen=True)
class SchedulerConfig:
    """The forward-noising schedule shared by training (DDPM) and sampling (DDIM).

    ``beta_schedule="scaled_linear"`` is linear in sqrt(beta) (the reference / LDM "linear"),
    ``"linear"`` is linear in beta (DDPM).
    """

    num_train_timesteps: int = 1000
    beta_start: float = 0.0015
    beta_end: float = 0.0155
    beta_schedule: Literal["scaled_linear", "linear"] = "scaled_linear"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SchedulerConfig":
        return _from_dict(cls, data)
