"""Triton python model `restore` (BLS): run every tile (and its prior) through `restorer`.

Chunks of at most `max_batch` tiles; the `restorer` model batches chunks of concurrent requests.
"""

import torch
import triton_python_backend_utils as pb_utils

from swintormer.errors import SwintormerError
from swintormer.serving.glue import bls_infer, model_parameters, respond, tensor_in, tensor_out
from swintormer.serving.steps import ServingLimits, check_tiles


class TritonPythonModel:
    def initialize(self, args):
        params = model_parameters(args)
        self.device = params.get("device", "cpu")
        self.max_batch = int(params["max_batch"])
        self.limits = ServingLimits.from_json(params["limits"])

    def execute(self, requests):
        return [respond(pb_utils, lambda r=r: self._run(r)) for r in requests]

    def _run(self, request):
        tiles = tensor_in(pb_utils, request, "TILES", self.device)
        count = check_tiles(tiles, self.limits)  # a client calling this step directly gets no more than the limits
        prior = tensor_in(pb_utils, request, "PRIOR", self.device)
        if prior is not None and prior.shape[0] != count:
            raise SwintormerError(f"PRIOR holds {prior.shape[0]} tiles' priors for {count} tiles")
        outputs = []
        for start in range(0, tiles.shape[0], self.max_batch):
            chunk = slice(start, start + self.max_batch)
            inputs = {"image": tiles[chunk]}
            if prior is not None:
                inputs["prior"] = prior[chunk]
            outputs.append(bls_infer(pb_utils, "restorer", inputs, "restored", self.device))
        return [tensor_out(pb_utils, "RESTORED", torch.cat(outputs))]
