"""The little that every python-backend model of the repository shares.

Parameters from the model config, tensors in and out (NumPy on the CPU flavour, DLPack on the
GPU flavour), BLS calls to the network models, and the rule that a request never crashes the
server: a :class:`SwintormerError` (a bad request) becomes an ``INVALID_ARG`` error response with
its message, which clients see as HTTP 400 / gRPC INVALID_ARGUMENT; a :class:`ServerFault` (a
composing model failed) and anything else (a bug, logged with its traceback) become ``INTERNAL``
(HTTP 500), so clients and load balancers can tell a bad request from a broken server.
"""

from __future__ import annotations

import json
import traceback
from typing import Any, Callable

import numpy as np
import torch

from swintormer.errors import SwintormerError

__all__ = ["ServerFault", "bls_infer", "model_parameters", "respond", "tensor_out"]


class ServerFault(SwintormerError):
    """A composing model failed while serving a valid request: the server's fault, not the client's."""


def model_parameters(args: dict[str, Any]) -> dict[str, str]:
    """``{key: string_value}`` of the model config's ``parameters``."""
    params = json.loads(args["model_config"]).get("parameters", {})
    return {k: v["string_value"] for k, v in params.items()}


def respond(pb_utils, work: Callable[[], list]) -> Any:
    """Run ``work() -> [pb_utils.Tensor]`` and wrap it in an ``InferenceResponse`` (or an error one)."""
    try:
        return pb_utils.InferenceResponse(output_tensors=work())
    except ServerFault as exc:
        pb_utils.Logger.log_error(str(exc))
        return pb_utils.InferenceResponse(error=pb_utils.TritonError(str(exc), pb_utils.TritonError.INTERNAL))
    except SwintormerError as exc:
        return pb_utils.InferenceResponse(error=pb_utils.TritonError(str(exc), pb_utils.TritonError.INVALID_ARG))
    except Exception as exc:  # a bug: report it to the client and the log, keep serving
        pb_utils.Logger.log_error(traceback.format_exc())
        message = f"internal error ({type(exc).__name__}: {exc})"
        return pb_utils.InferenceResponse(error=pb_utils.TritonError(message, pb_utils.TritonError.INTERNAL))


def tensor_out(pb_utils, name: str, x: torch.Tensor | np.ndarray):
    """A ``pb_utils.Tensor`` from a NumPy array or a (CPU or CUDA) torch tensor."""
    if isinstance(x, np.ndarray):
        return pb_utils.Tensor(name, x)
    if x.is_cuda:
        return pb_utils.Tensor.from_dlpack(name, torch.utils.dlpack.to_dlpack(x.contiguous()))
    return pb_utils.Tensor(name, x.contiguous().numpy())


def bls_infer(pb_utils, model: str, inputs: dict[str, torch.Tensor], output: str, device: str = "cpu") -> torch.Tensor:
    """Call ``model`` from inside the server (BLS) and return ``output`` as a torch tensor."""
    kwargs = {}
    if device != "cpu":
        kwargs["preferred_memory"] = pb_utils.PreferredMemory(pb_utils.TRITONSERVER_MEMORY_GPU, 0)
    request = pb_utils.InferenceRequest(
        model_name=model,
        inputs=[tensor_out(pb_utils, k, v) for k, v in inputs.items()],
        requested_output_names=[output],
        **kwargs,
    )
    response = request.exec()
    if response.has_error():
        error = response.error()
        bad_input = error.code() == pb_utils.TritonError.INVALID_ARG
        raise (SwintormerError if bad_input else ServerFault)(f"{model}: {error.message()}")
    t = pb_utils.get_output_tensor_by_name(response, output)
    if t.is_cpu():
        return torch.from_numpy(np.ascontiguousarray(t.as_numpy())).to(device)
    return torch.utils.dlpack.from_dlpack(t.to_dlpack()).to(device)
