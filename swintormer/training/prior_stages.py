"""Training stages of the diffusion prior, for the generic trainer (``swintormer train --stage ...``).

The networks and the sampler live in :mod:`swintormer.diffusion`; these stages put them to work
with the trainer, beside the restorer stage (:mod:`swintormer.training.restorer`).


- ``autoencoder``: the first stage, encoder + decoder, L1 reconstruction of sharp and blurry images.
- ``denoiser``: eps-prediction on the sharp image's latent, conditioned on the blurry image's
  latent, the encoder (from ``--init``, an autoencoder checkpoint) frozen.
- ``prior-restorer``: a prior restorer trained with priors sampled by the frozen encoder and
  denoiser (``--init``, a denoiser checkpoint) in ``prior_steps`` DDIM steps; ``restorer=PATH``
  starts it from a trained prior-free restorer (its prior embedding is zero-initialised, so it
  starts out computing exactly what that restorer did).
"""

from __future__ import annotations

import logging
from typing import Mapping

import torch
from torch import nn

from swintormer.checkpoint import load_checkpoint
from swintormer.diffusion.config import SchedulerConfig
from swintormer.diffusion.losses import denoiser_loss, first_stage_loss
from swintormer.diffusion.prior import PriorSettings, conditioning_image, sample_prior
from swintormer.diffusion.schedulers import DDIMScheduler, DDPMScheduler
from swintormer.errors import SwintormerError
from swintormer.model import DeblurModel
from swintormer.registry import build_model
from swintormer.training.restorer import restoration_loss
from swintormer.training.tasks import Batch, StageOptions, TrainTask

__all__ = ["autoencoder_task", "denoiser_task", "prior_restorer_task"]

log = logging.getLogger(__name__)


def _components(options: StageOptions, needed: tuple[str, ...]) -> dict[str, nn.Module]:
    """The named components of ``options.init`` (an error naming the stage that makes them if absent).

    A stage checkpoint of the prior (encoder + decoder, or encoder + denoiser) is a set of
    components, not a deblurring model, so it is read with the format reader itself.
    """
    if options.init is None:
        return {}
    ckpt = load_checkpoint(options.init)
    missing = [n for n in needed if n not in ckpt.components]
    if missing:
        raise SwintormerError(f"{options.init} lacks {missing} (it has {sorted(ckpt.components)}); train the earlier stage first")
    return dict(ckpt.components)


def _reject_extra(options: StageOptions, allowed: tuple[str, ...] = ()) -> None:
    unknown = sorted(set(options.extra) - set(allowed))
    if unknown:
        raise SwintormerError(f"unknown stage options {unknown}; this stage takes {list(allowed) or 'none'}")


def autoencoder_task(options: StageOptions) -> TrainTask:
    """Encoder + decoder (fresh ``--model``, e.g. ``ae-f4-tiny``, or from ``--init``)."""
    _reject_extra(options)
    parts = _components(options, ("encoder", "decoder")) if options.init else {}
    if not parts:
        if not options.model:
            raise SwintormerError("the autoencoder stage needs --model (e.g. ae-f4-tiny) or --init")
        parts = {"encoder": build_model(options.model), "decoder": build_model(options.model, part="decoder")}

    def loss_fn(modules: Mapping[str, nn.Module], batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        images = torch.cat([batch["target"], conditioning_image(batch["input"])])
        loss = first_stage_loss(modules["encoder"], modules["decoder"], images)
        return loss, {"l1": float(loss.detach())}

    name = options.model or "autoencoder"
    return TrainTask(modules={k: parts[k].train() for k in ("encoder", "decoder")}, trainable=("encoder", "decoder"),
                     loss_fn=loss_fn, metadata={"model": name, "stage": "autoencoder"}, in_channels=3,
                     size_multiple=parts["encoder"].config.factor)


def denoiser_task(options: StageOptions) -> TrainTask:
    """Frozen encoder from ``--init``; the denoiser from ``--init`` too, or fresh ``--model``."""
    _reject_extra(options)
    if options.init is None:
        raise SwintormerError("the denoiser stage needs --init: an autoencoder (or denoiser) checkpoint with the encoder")
    parts = _components(options, ("encoder",))
    denoiser = build_model(options.model) if options.model else parts.get("denoiser")
    if denoiser is None:
        raise SwintormerError(f"{options.init} has no denoiser to continue; name one to start with --model (e.g. denoiser-tiny)")
    scheduler = DDPMScheduler(SchedulerConfig())

    def loss_fn(modules: Mapping[str, nn.Module], batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        loss = denoiser_loss(modules["denoiser"], modules["encoder"], scheduler, batch["input"], batch["target"])
        return loss, {"eps_mse": float(loss.detach())}

    multiple = parts["encoder"].config.factor * denoiser.config.size_multiple
    return TrainTask(modules={"encoder": parts["encoder"], "denoiser": denoiser.train()}, trainable=("denoiser",),
                     loss_fn=loss_fn, metadata={"model": options.model or "denoiser", "stage": "denoiser"},
                     in_channels=3, size_multiple=multiple)


def _prior_restorer(options: StageOptions) -> nn.Module:
    if not options.model:
        raise SwintormerError("the prior-restorer stage needs --model, a prior variant (e.g. swintormer-tiny-prior)")
    restorer = build_model(options.model)
    if not restorer.config.prior_channels:
        raise SwintormerError(f"{options.model} has no prior input; pick a '-prior' variant")
    if "restorer" in options.extra:
        source = DeblurModel.load(options.extra["restorer"]).restorer  # ours or an upstream file
        missing, unexpected = restorer.load_state_dict(source.state_dict(), strict=False)
        if unexpected or any(not k.startswith("prior_embed.") for k in missing):
            raise SwintormerError(f"{options.extra['restorer']} does not match {options.model} apart from the prior embedding")
        how = "prior embedding zero: same output until it learns to use the prior" if missing else "prior embedding included"
        log.info("restorer starts from %s (%s)", options.extra["restorer"], how)
    return restorer


def prior_restorer_task(options: StageOptions) -> TrainTask:
    """A prior restorer trained on priors sampled by the frozen encoder and denoiser of ``--init``."""
    _reject_extra(options, ("restorer", "prior_steps"))
    if options.init is None:
        raise SwintormerError("the prior-restorer stage needs --init: a denoiser checkpoint (encoder and denoiser)")
    restorer = _prior_restorer(options)
    parts = _components(options, ("encoder", "denoiser"))
    steps = int(options.extra.get("prior_steps", 5))
    ddim = DDIMScheduler(SchedulerConfig(), eta=1.0)
    settings = PriorSettings(steps=steps)

    def loss_fn(modules: Mapping[str, nn.Module], batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        x = batch["input"]
        seed = int(torch.randint(0, 2**31 - 1, (1,)))
        origins = [(seed, i) for i in range(x.shape[0])]
        with torch.no_grad():
            prior = sample_prior(x, origins, modules["encoder"], modules["denoiser"], ddim, settings)
        return restoration_loss(modules["restorer"](x, prior), batch, modules)

    model = DeblurModel(restorer=restorer, encoder=parts["encoder"], denoiser=parts["denoiser"], prior=PriorSettings(steps=steps * 2),
                        name=options.model)
    return TrainTask(modules={"restorer": restorer.train(), "encoder": parts["encoder"], "denoiser": parts["denoiser"]},
                     trainable=("restorer",), loss_fn=loss_fn, metadata={**model.metadata(), "stage": "prior-restorer"},
                     in_channels=restorer.config.in_channels, size_multiple=model.size_multiple)
