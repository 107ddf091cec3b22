"""Triton python model `preprocess`: validate the client's image and cut it into tiles.

Generated into the model repository by `python export/build_engines.py`; the work is
`swintormer.serving.steps.preprocess`, the same tiler the CLI uses.
"""

import triton_python_backend_utils as pb_utils

from swintormer.errors import SwintormerError
from swintormer.serving.dtypes import IMAGE_DTYPES
from swintormer.serving.glue import model_parameters, respond
from swintormer.serving.steps import ServingLimits, decode_layout, preprocess


class TritonPythonModel:
    def initialize(self, args):
        self.limits = ServingLimits.from_json(model_parameters(args)["limits"])

    def execute(self, requests):
        return [respond(pb_utils, lambda r=r: self._run(r)) for r in requests]

    def _run(self, request):
        images = [pb_utils.get_input_tensor_by_name(request, f"IMAGE_{d}") for d in IMAGE_DTYPES]
        image = next((t.as_numpy() for t in images if t is not None), None)
        if image is None:
            raise SwintormerError("no IMAGE input")
        layout_t = pb_utils.get_input_tensor_by_name(request, "LAYOUT")
        layout = decode_layout(None if layout_t is None else layout_t.as_numpy())
        tiles, origins, geometry = preprocess(image, layout, self.limits)
        return [pb_utils.Tensor("TILES", tiles), pb_utils.Tensor("ORIGINS", origins), pb_utils.Tensor("GEOMETRY", geometry)]
