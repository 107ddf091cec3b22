"""Triton python model `prior` (BLS): the diffusion prior of every tile.

Chunks of at most `max_batch` tiles go through `encoder` once and `denoiser` once per DDIM step,
both called inside the server; the loop is `swintormer.diffusion.prior.sample_prior`, the same
function the CLI runs with PyTorch modules.
"""

import json

import torch
import triton_python_backend_utils as pb_utils

from swintormer.diffusion.config import SchedulerConfig
from swintormer.diffusion.prior import PriorSettings, sample_prior
from swintormer.diffusion.schedulers import DDIMScheduler
from swintormer.serving.glue import bls_infer, model_parameters, respond, tensor_in, tensor_out
from swintormer.serving.steps import ServingLimits, check_origins, check_tiles


class TritonPythonModel:
    def initialize(self, args):
        params = model_parameters(args)
        self.device = params.get("device", "cpu")
        self.max_batch = int(params["max_batch"])
        self.limits = ServingLimits.from_json(params["limits"])
        self.settings = PriorSettings(**json.loads(params["prior"]))
        self.scheduler = DDIMScheduler(SchedulerConfig.from_dict(json.loads(params["scheduler"])), eta=self.settings.eta)

    def execute(self, requests):
        return [respond(pb_utils, lambda r=r: self._run(r)) for r in requests]

    def _encode(self, images):
        return bls_infer(pb_utils, "encoder", {"image": images}, "latent", self.device)

    def _denoise(self, sample, timestep):
        return bls_infer(pb_utils, "denoiser", {"sample": sample, "timestep": timestep.reshape(-1, 1)}, "eps", self.device)

    def _run(self, request):
        tiles = tensor_in(pb_utils, request, "TILES", self.device)
        origins = check_origins(tensor_in(pb_utils, request, "ORIGINS").numpy(), check_tiles(tiles, self.limits), self.limits)
        priors = []
        for start in range(0, tiles.shape[0], self.max_batch):
            chunk = slice(start, start + self.max_batch)
            priors.append(sample_prior(tiles[chunk], origins[chunk], self._encode, self._denoise, self.scheduler, self.settings))
        return [tensor_out(pb_utils, "PRIOR", torch.cat(priors))]
