"""Building a model repository and starting a real tritonserver for the serving tests."""

from __future__ import annotations

from pathlib import Path

import torch

from swintormer.checkpoint import save_checkpoint
from swintormer.diffusion.prior import PriorSettings
from swintormer.export.deploy import DeploymentOptions, build_deployment
from swintormer.model import DeblurModel
from swintormer.serving.server import ServerOptions, TritonServer, free_port
from swintormer.tiling import TilingConfig

#: a small limit so the "too large" request is cheap to send
MAX_PIXELS = 1_000_000
#: the served tiling: the defaults, in smaller batches (the graphs' largest batch too)
TILING = TilingConfig(batch=4)


def prior_checkpoint(folder: Path) -> Path:
    """A tiny prior model with every part switched on (random weights, fixed seed)."""
    torch.manual_seed(5)
    model = DeblurModel.build("swintormer-tiny-prior")
    torch.nn.init.normal_(model.restorer.prior_embed.proj.weight, std=0.05)
    for p in model.denoiser.out.parameters():
        torch.nn.init.normal_(p, std=0.05)
    model.prior = PriorSettings(steps=2, eta=1.0, seed=11)
    return save_checkpoint(folder / "prior.safetensors", model.components(), model.metadata())


def other_checkpoint(folder: Path) -> Path:
    """A tiny model of the pipeline shape the bundled default does not have (prior or prior-free)."""
    if not DeblurModel.load().has_prior:
        return prior_checkpoint(folder)
    torch.manual_seed(6)
    model = DeblurModel.build("swintormer-tiny")
    return save_checkpoint(folder / "plain.safetensors", model.components(), model.metadata())


def build_repository(checkpoint: Path | None, out: Path, flavour: str = "cpu", **options) -> DeblurModel:
    """The repository of ``checkpoint`` (None: the bundled default); ``options``: more DeploymentOptions."""
    model = DeblurModel.load(checkpoint)
    build_deployment(model, out, DeploymentOptions(tiling=TILING, flavour=flavour, max_pixels=MAX_PIXELS, verify=False, **options))
    return model


def start_server(repository: Path) -> TritonServer:
    options = ServerOptions(repository, http_port=free_port(), grpc_port=free_port(), metrics_port=free_port())
    return TritonServer(options).start(timeout=300)
