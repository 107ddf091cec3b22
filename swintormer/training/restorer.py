"""The ``restorer`` training stage: L1 (or PSNR) to the sharp target, plus an optional perceptual term."""

from __future__ import annotations

import logging
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from swintormer.errors import SwintormerError
from swintormer.model import DeblurModel
from swintormer.registry import build_model
from swintormer.training.tasks import Batch, StageOptions, TrainTask

__all__ = ["PIXEL_LOSSES", "restoration_loss", "restorer_loss", "restorer_task", "start_from_identity"]

log = logging.getLogger(__name__)

#: the pixel losses ``--stage-option loss=NAME`` chooses from (``l1``, the reference's, is the default)
PIXEL_LOSSES = ("l1", "psnr")


def _image_psnr(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``[b]``: each ``[3, h, w]`` image's PSNR in dB (differentiable; output not clamped)."""
    mse = (output.float() - target.float()).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(1.0 / mse.clamp_min(1e-10))


def _batch_psnr(output: torch.Tensor, target: torch.Tensor) -> float:
    """Mean over the batch of each ``[3, h, w]`` image's PSNR (output clamped to ``[0, 1]``), dB."""
    return float(_image_psnr(output.detach().float().clamp(0, 1), target).mean())


def restorer_loss(
    modules: Mapping[str, nn.Module], batch: Batch, perceptual_weight: float = 0.0, pixel_loss: str = "l1"
) -> tuple[torch.Tensor, dict[str, float]]:
    """``L1(restorer(input), target)`` (or minus the PSNR) [+ ``perceptual_weight`` x VGG16 distance]."""
    return restoration_loss(modules["restorer"](batch["input"]), batch, modules, perceptual_weight, pixel_loss)


def _check_pixel_loss(name: str) -> None:
    if name not in PIXEL_LOSSES:
        raise SwintormerError(f"unknown pixel loss {name!r} (--stage-option loss=NAME): choose from {', '.join(PIXEL_LOSSES)}")


def restoration_loss(
    output: torch.Tensor, batch: Batch, modules: Mapping[str, nn.Module], perceptual_weight: float = 0.0,
    pixel_loss: str = "l1",
) -> tuple[torch.Tensor, dict[str, float]]:
    """``L1(output, target)`` [+ ``perceptual_weight`` x VGG16 distance, when ``modules`` has one].

    ``pixel_loss="psnr"`` minimises minus the batch's mean per-image PSNR divided by 10 (dB/10,
    so it is of the order of 1-5) instead: the evaluation's own average, which weighs each crop's
    error by the inverse of its size, so nearly sharp crops count as much as badly blurred ones.
    Logged: ``l1``, ``psnr`` of the output and ``psnr_input`` of the (first view of the) input.
    """
    _check_pixel_loss(pixel_loss)
    target = batch["target"]
    l1 = F.l1_loss(output.float(), target)
    metrics = {"l1": float(l1.detach()), "psnr": _batch_psnr(output, target), "psnr_input": _batch_psnr(batch["input"][:, :3], target)}
    loss = l1 if pixel_loss == "l1" else -_image_psnr(output, target).mean() / 10
    if "perceptual" in modules and perceptual_weight > 0:
        term = modules["perceptual"](output.float(), target)
        loss = loss + perceptual_weight * term
        metrics["perceptual"] = float(term.detach())
    return loss, metrics


def start_from_identity(model: nn.Module) -> bool:
    """Zero the last convolution of a restorer with a global residual, so it starts as the identity.

    A fresh restorer's random output convolution adds noise to the residual (about 12 dB below
    the input's PSNR for ``swintormer-tiny``), which the first hundreds of steps only undo. With
    it zeroed the output is the input, and the gradient still reaches that convolution (and,
    after one step, the whole network). Returns False (and changes nothing) for Restormer's
    dual-pixel variant, which has no global residual.
    """
    cfg = model.config
    if cfg.arch == "restormer" and cfg.dual_pixel:
        return False
    conv = model.output[0] if isinstance(model.output, nn.Sequential) else model.output
    with torch.no_grad():
        conv.weight.zero_()
        if conv.bias is not None:
            conv.bias.zero_()
    return True


def _initial_restorer(options: StageOptions) -> tuple[nn.Module, str]:
    if options.init is not None:
        model = DeblurModel.load(options.init, expect=options.model)  # ours, or an upstream file to fine-tune
        log.info("starting from the weights in %s", options.init)
        return model.restorer, model.name or (options.model or "")
    if not options.model:
        raise SwintormerError("say which model to train with --model (see `swintormer models`) or start from --init CHECKPOINT")
    model = build_model(options.model)
    if start_from_identity(model):
        log.info("fresh %s: output convolution zeroed, training starts from the identity", options.model)
    return model, options.model


def restorer_task(options: StageOptions) -> TrainTask:
    """A restorer (fresh ``options.model`` or the one in ``options.init``) trained with L1 [+ perceptual]."""
    model, name = _initial_restorer(options)
    helpers: dict[str, nn.Module] = {}
    weight = 0.0
    if options.perceptual_weights is not None:
        from swintormer.training.perceptual import PerceptualLoss, load_vgg16_features

        helpers["perceptual"] = PerceptualLoss(load_vgg16_features(options.perceptual_weights))
        weight = options.perceptual_weight
        log.info("perceptual loss on (VGG16 from %s, weight %g)", options.perceptual_weights, weight)
    extra = dict(options.extra)
    pixel_loss = str(extra.pop("loss", "l1"))
    if extra:
        raise SwintormerError(f"the restorer stage takes only the stage option loss={'|'.join(PIXEL_LOSSES)}, got {sorted(extra)}")
    _check_pixel_loss(pixel_loss)
    if pixel_loss != "l1":
        log.info("pixel loss: %s", pixel_loss)
    return TrainTask(
        modules={"restorer": model.train()},
        trainable=("restorer",),
        loss_fn=lambda modules, batch: restorer_loss(modules, batch, weight, pixel_loss),
        helpers=helpers,
        metadata={"model": name, "stage": "restorer"},
        in_channels=model.config.in_channels,
        size_multiple=model.config.size_multiple,
    )
