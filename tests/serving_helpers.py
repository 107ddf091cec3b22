"""Building a model repository and starting a real tritonserver for the serving tests."""

from __future__ import annotations

from pathlib import Path

import torch

from swintormer.checkpoint import save_checkpoint
from swintormer.diffusion.prior import PriorSettings
from swintormer.export.build import export_components, specs_for, write_model_repository
from swintormer.export.specs import Precision
from swintormer.inference import resolve_model
from swintormer.pipeline import DeblurModel, build_deblur_model
from swintormer.serving.server import ServerOptions, TritonServer, free_port
from swintormer.serving.steps import ServingLimits

#: a small limit so the "too large" request is cheap to send
MAX_PIXELS = 1_000_000


def prior_checkpoint(folder: Path) -> Path:
    """A tiny prior model with every part switched on (random weights, fixed seed)."""
    torch.manual_seed(5)
    model = build_deblur_model("swintormer-tiny-prior")
    torch.nn.init.normal_(model.restorer.prior_embed.proj.weight, std=0.05)
    for p in model.denoiser.out.parameters():
        torch.nn.init.normal_(p, std=0.05)
    model.prior = PriorSettings(steps=2, eta=1.0, seed=11)
    return save_checkpoint(folder / "prior.safetensors", model.components(), model.metadata())


def other_checkpoint(folder: Path) -> Path:
    """A tiny model of the pipeline shape the bundled default does not have (prior or prior-free)."""
    if not resolve_model().has_prior:
        return prior_checkpoint(folder)
    torch.manual_seed(6)
    model = build_deblur_model("swintormer-tiny")
    return save_checkpoint(folder / "plain.safetensors", model.components(), model.metadata())


def build_repository(checkpoint: Path | None, out: Path, flavour: str = "cpu") -> DeblurModel:
    model = resolve_model(None, checkpoint)
    specs = specs_for(model, 256, 4)
    onnx_files = export_components(model, specs, Precision.FP32)
    limits = ServingLimits(model.in_channels, MAX_PIXELS, 256, 220, "uniform")
    write_model_repository(out, model, specs, onnx_files, flavour, limits, model.prior)
    return model


def start_server(repository: Path) -> TritonServer:
    options = ServerOptions(repository, http_port=free_port(), grpc_port=free_port(), metrics_port=free_port())
    return TritonServer(options).start(timeout=300)
