"""A deblurring model as deployed: the restorer and, for prior models, its encoder and denoiser.

``DeblurModel`` is what a checkpoint holds; :func:`make_tile_fn` turns any backend's callables
(PyTorch modules here, ONNX Runtime sessions or Triton requests elsewhere) into the
:data:`~swintormer.tiling.TileFn` the shared tiler runs: per batch of tiles, sample the prior of
exactly those tiles, then restore them with it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from torch import nn

from swintormer.diffusion.config import SchedulerConfig
from swintormer.diffusion.prior import DenoiseFn, EncodeFn, PriorSettings, sample_prior
from swintormer.diffusion.schedulers import DDIMScheduler
from swintormer.errors import SwintormerError
from swintormer.tiling import TileFn

__all__ = ["DeblurModel", "RestoreFn", "build_deblur_model", "graph_tile_fn", "make_tile_fn", "torch_tile_fn"]

#: ``restore(tiles [b, C, t, t], prior [b, z, t/f, t/f] or None) -> [b, 3, t, t]``
RestoreFn = Callable[[torch.Tensor, "torch.Tensor | None"], torch.Tensor]


@dataclass
class DeblurModel:
    """The modules of one deblurring model plus how its prior is sampled by default."""

    restorer: nn.Module
    encoder: nn.Module | None = None
    denoiser: nn.Module | None = None
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    prior: PriorSettings = field(default_factory=PriorSettings)
    name: str = ""

    def __post_init__(self) -> None:
        needs = bool(self.restorer.config.prior_channels)
        has = self.encoder is not None and self.denoiser is not None
        if needs and not has:
            raise SwintormerError(f"model {self.name or ''} takes a diffusion prior but has no encoder/denoiser")
        if has and not needs:
            raise SwintormerError("an encoder/denoiser was given for a restorer without a prior input")

    @property
    def has_prior(self) -> bool:
        return self.encoder is not None

    @property
    def in_channels(self) -> int:
        return self.restorer.config.in_channels

    @property
    def size_multiple(self) -> int:
        """Tile sides must be multiples of this (restorer, and encoder factor x denoiser UNet depth)."""
        multiple = self.restorer.config.size_multiple
        if self.has_prior:
            multiple = math.lcm(multiple, self.encoder.config.factor * self.denoiser.config.size_multiple)
        return multiple

    def settings(self, steps: int | None = None, seed: int | None = None) -> PriorSettings:
        """The default prior settings with ``steps``/``seed`` overridden; checks they make sense."""
        if steps is not None and steps > 0 and not self.has_prior:
            raise SwintormerError(f"model {self.name or 'this model'} has no diffusion prior; --prior-steps does not apply")
        if steps is not None and steps < 0:
            raise SwintormerError(f"prior steps must be >= 0, got {steps}")
        s = self.prior
        return PriorSettings(steps=s.steps if steps is None else steps, eta=s.eta, seed=s.seed if seed is None else seed)

    def components(self) -> dict[str, nn.Module]:
        parts = {"restorer": self.restorer}
        if self.has_prior:
            parts.update(encoder=self.encoder, denoiser=self.denoiser)
        return parts

    def metadata(self) -> dict[str, str]:
        """Header entries that :meth:`from_checkpoint` reads back."""
        meta = {"model": self.name}
        if self.has_prior:
            meta["prior"] = json.dumps({"steps": self.prior.steps, "eta": self.prior.eta, "seed": self.prior.seed})
            meta["scheduler"] = json.dumps(self.scheduler.__dict__)
        return meta

    @classmethod
    def from_components(cls, parts: dict[str, nn.Module], meta: dict[str, str]) -> "DeblurModel":
        prior = PriorSettings(**json.loads(meta["prior"])) if "prior" in meta else PriorSettings()
        sched = SchedulerConfig.from_dict(json.loads(meta["scheduler"])) if "scheduler" in meta else SchedulerConfig()
        return cls(
            restorer=parts["restorer"], encoder=parts.get("encoder"), denoiser=parts.get("denoiser"),
            scheduler=sched, prior=prior, name=meta.get("model", ""),
        )


def build_deblur_model(name: str) -> DeblurModel:
    """A freshly initialised registered restorer variant, with its encoder and denoiser if it has a prior."""
    from swintormer.registry import build_model, prior_components

    restorer = build_model(name)
    parts = prior_components(name)
    if parts is None:
        return DeblurModel(restorer=restorer, name=name)
    encoder = build_model(parts[0])
    denoiser = build_model(parts[1])
    if encoder.config.z_channels != restorer.config.prior_channels:
        raise SwintormerError(f"{name}: encoder latent channels do not match the restorer's prior_channels")
    return DeblurModel(restorer=restorer, encoder=encoder, denoiser=denoiser, name=name)


def make_tile_fn(
    restore: RestoreFn,
    encode: EncodeFn | None = None,
    denoise: DenoiseFn | None = None,
    scheduler: SchedulerConfig | None = None,
    settings: PriorSettings | None = None,
) -> TileFn:
    """Compose backend callables into a tile function; without ``encode``/``denoise`` no prior is used."""
    ddim = DDIMScheduler(scheduler or SchedulerConfig(), eta=(settings or PriorSettings()).eta)

    def run(tiles: torch.Tensor, origins: Sequence[tuple[int, int]]) -> torch.Tensor:
        prior = None
        if encode is not None and denoise is not None:
            prior = sample_prior(tiles, origins, encode, denoise, ddim, settings or PriorSettings())
        return restore(tiles, prior)

    return run


def torch_tile_fn(model: DeblurModel | nn.Module, device: torch.device, settings: PriorSettings | None = None) -> TileFn:
    """The PyTorch backend: every module in eval mode, no gradients, on ``device``.

    ``model`` may also be a bare restorer module (no prior).
    """
    if not isinstance(model, DeblurModel):
        model = DeblurModel(restorer=model)
    for module in model.components().values():
        module.to(device).eval()

    def restore(tiles: torch.Tensor, prior: torch.Tensor | None) -> torch.Tensor:
        with torch.inference_mode():
            p = None if prior is None else prior.to(device)
            return model.restorer(tiles.to(device), p).float().cpu()

    if not model.has_prior:
        return make_tile_fn(restore)

    def encode(images: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return model.encoder(images.to(device)).float().cpu()

    def denoise(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return model.denoiser(x.to(device), t.to(device)).float().cpu()

    return make_tile_fn(restore, encode, denoise, model.scheduler, settings or model.prior)


#: ``session(**named_inputs) -> output`` for one exported graph (ONNX Runtime, TensorRT, ...)
GraphSession = Callable[..., "torch.Tensor"]


def graph_tile_fn(
    sessions: dict[str, GraphSession], settings: PriorSettings | None = None, scheduler: SchedulerConfig | None = None
) -> TileFn:
    """A tile function over exported graphs, called with the export specs' tensor names.

    ``sessions``: ``{"restorer": ..., ["encoder": ..., "denoiser": ...]}``; each returns a tensor.
    """
    restorer = sessions["restorer"]

    def restore(tiles: torch.Tensor, prior: torch.Tensor | None) -> torch.Tensor:
        feed = {"image": tiles.float()}
        if prior is not None:
            feed["prior"] = prior.float()
        return restorer(**feed).float().cpu()

    if "encoder" not in sessions:
        return make_tile_fn(restore)
    encoder, denoiser = sessions["encoder"], sessions["denoiser"]

    def encode(images: torch.Tensor) -> torch.Tensor:
        return encoder(image=images.float()).float().cpu()

    def denoise(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return denoiser(sample=x.float(), timestep=t.long()).float().cpu()

    return make_tile_fn(restore, encode, denoise, scheduler, settings)
