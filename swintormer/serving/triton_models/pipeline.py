"""Triton python model `pipeline` (BLS): one image in, the deblurred image out, streamed.

The image stays in the client's 8/16-bit form; the shared tiler (`swintormer.tiling.tiled_apply`,
what `swintormer deblur` runs) cuts one batch of tiles at a time, sends it through `encoder` and
`denoiser` (the prior, prior models only) and `restorer` inside the server, and merges the result
into one band of rows in place. A request costs its image, one batch of tiles and one band,
whatever its size; the network models batch the tiles of concurrent requests dynamically. The
work is `swintormer.serving.steps.restore_image`, which validates the request first.
"""

import json

import triton_python_backend_utils as pb_utils

from swintormer.backends.compose import graph_tile_fn
from swintormer.diffusion.config import SchedulerConfig
from swintormer.diffusion.prior import PriorSettings
from swintormer.errors import SwintormerError
from swintormer.serving.dtypes import IMAGE_DTYPES
from swintormer.serving.glue import bls_infer, model_parameters, respond, tensor_out
from swintormer.serving.steps import ServingLimits, decode_layout, restore_image, warm_up


class TritonPythonModel:
    def initialize(self, args):
        params = model_parameters(args)
        self.limits = ServingLimits.from_json(params["limits"])
        device = params.get("device", "cpu")
        sessions = {"restorer": lambda **feed: bls_infer(pb_utils, "restorer", feed, "restored", device)}
        settings = scheduler = None
        if "prior" in params:
            settings = PriorSettings(**json.loads(params["prior"]))
            scheduler = SchedulerConfig.from_dict(json.loads(params["scheduler"]))
            sessions["encoder"] = lambda **feed: bls_infer(pb_utils, "encoder", feed, "latent", device)
            sessions["denoiser"] = lambda sample, timestep: bls_infer(
                pb_utils, "denoiser", {"sample": sample, "timestep": timestep.reshape(-1, 1)}, "eps", device)
        # gpu flavour: tiles go to the GPU once a batch and travel to the models by DLPack, as the prior does
        self.tile_fn = graph_tile_fn(sessions, settings, scheduler, device=None if device == "cpu" else device)
        warm_up(self.limits)

    def execute(self, requests):
        return [respond(pb_utils, lambda r=r: self._run(r)) for r in requests]

    def _run(self, request):
        images = [pb_utils.get_input_tensor_by_name(request, f"IMAGE_{d}") for d in IMAGE_DTYPES]
        image = next((t.as_numpy() for t in images if t is not None), None)
        if image is None:
            raise SwintormerError("no IMAGE input")
        layout_t = pb_utils.get_input_tensor_by_name(request, "LAYOUT")
        layout = decode_layout(None if layout_t is None else layout_t.as_numpy())
        dtype_name, out = restore_image(image, layout, self.limits, self.tile_fn)
        return [tensor_out(pb_utils, f"OUTPUT_{dtype_name}", out)]
