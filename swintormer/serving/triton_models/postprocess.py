"""Triton python model `postprocess`: merge the restored tiles, crop, convert back.

The output is the client's dtype and layout; the work is `swintormer.serving.steps.postprocess`,
which checks a geometry and tiles sent by any client against the repository's limits first.
"""

import triton_python_backend_utils as pb_utils

from swintormer.serving.glue import model_parameters, respond
from swintormer.serving.steps import ServingLimits, postprocess


class TritonPythonModel:
    def initialize(self, args):
        self.limits = ServingLimits.from_json(model_parameters(args)["limits"])

    def execute(self, requests):
        return [respond(pb_utils, lambda r=r: self._run(r)) for r in requests]

    def _run(self, request):
        restored = pb_utils.get_input_tensor_by_name(request, "RESTORED").as_numpy()
        geometry = pb_utils.get_input_tensor_by_name(request, "GEOMETRY").as_numpy()
        dtype_name, image = postprocess(restored, geometry, self.limits)
        return [pb_utils.Tensor(f"OUTPUT_{dtype_name}", image)]
