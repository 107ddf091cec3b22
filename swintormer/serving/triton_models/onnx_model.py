"""Triton python model for one exported network (`restorer`, `encoder`, `denoiser`) on a CPU runtime.

The CPU flavour's stand-in for a `tensorrt_plan` model: same name, tensors and batching; the
graph is `model.onnx` beside this file, run by `swintormer.backends.onnxruntime.OrtSession` or
`swintormer.backends.openvino.OvSession` (config parameters `runtime`, `precision`, `threads`).
"""

import json
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils

from swintormer.serving.glue import model_parameters, respond


def open_session(path: Path, params: dict, batch: int = 0):
    """The graph at ``path`` in the runtime the config names (onnxruntime when it names none);
    ``batch``: the model's max_batch_size (openvino compiles static shapes for it)."""
    threads = int(params.get("threads", "0") or 0)
    if params.get("runtime", "onnxruntime") == "openvino":
        from swintormer.backends.openvino import OvSession

        return OvSession(path, params.get("precision", "fp32"), threads, batch)
    from swintormer.backends.onnxruntime import OrtSession

    return OrtSession(path, threads=threads)


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        folder = Path(args["model_repository"]) / args["model_version"]
        params = model_parameters(args)
        self.session = open_session(folder / params.get("artifact", "model.onnx"), params, int(config.get("max_batch_size", 0)))
        self.inputs = [i["name"] for i in config["input"]]
        self.output = config["output"][0]["name"]

    def execute(self, requests):
        """The dynamic batcher hands over several requests: run them as one batch, split the result."""
        feeds = [{n: pb_utils.get_input_tensor_by_name(r, n).as_numpy() for n in self.inputs} for r in requests]
        if len(requests) > 1:
            try:
                joined = {n: np.concatenate([f[n] for f in feeds]) for n in self.inputs}
                out = self.session(**joined)
            except Exception:  # mismatched requests: fall back to one at a time, each with its own error
                out = None
            if out is not None:
                sizes = np.cumsum([f[self.inputs[0]].shape[0] for f in feeds])[:-1]
                return [pb_utils.InferenceResponse([pb_utils.Tensor(self.output, part)]) for part in np.split(out, sizes)]
        return [respond(pb_utils, lambda f=f: [pb_utils.Tensor(self.output, self.session(**f))]) for f in feeds]
