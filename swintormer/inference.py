"""The runtime: a loaded model and a backend name -> the tile function the shared tiler runs.

:func:`tile_function` reads the backend table (:data:`swintormer.backends.BACKENDS`), checks the
tiling against the model, has the graphs a backend needs built through the one deployment
builder (:func:`swintormer.export.deploy.build_deployment`, cached, so only the first call
exports), and calls the backend's factory. The command line, evaluation and the benchmarks use
it; images then go through :func:`swintormer.tiling.tiled_apply`.
"""

from __future__ import annotations

import dataclasses
import logging

from swintormer.backends import BackendRequest, get_backend, resolve_backend
from swintormer.backends.torch import resolve_device
from swintormer.export.deploy import DeploymentOptions, build_deployment
from swintormer.export.specs import Precision
from swintormer.model import DeblurModel
from swintormer.tiling import TileFn, TilingConfig

__all__ = ["describe", "tile_function"]

log = logging.getLogger(__name__)


def tile_function(
    model: DeblurModel, backend: str = "torch", tiling: TilingConfig = TilingConfig(), request: BackendRequest = BackendRequest()
) -> TileFn:
    """The tile function of ``backend`` (a row of the backend table, or ``"auto"``) for ``model``,
    checked against ``tiling``.

    Graph backends get their graphs exported (and, for TensorRT, built) for ``tiling.tile`` and
    batches up to ``tiling.batch`` on first use; later calls are cache hits.
    """
    chosen = resolve_backend(backend, request)
    if chosen != backend:
        log.info("backend auto: %s (the fastest installed here for %s)", chosen, request.precision)
    entry = get_backend(chosen)
    entry.check(request)
    tiling.validate(model.size_multiple)
    graphs = None
    if entry.graphs:
        options = DeploymentOptions(
            tiling=tiling, max_batch=tiling.batch, precision=Precision(entry.graph_precision(request.precision)), verify=False,
            engines=entry.graphs == "engines", prior=request.settings,
        )
        log.info("%s backend: %s graphs (exported once into the artifact cache)", backend, entry.graph_precision(request.precision))
        deployment = build_deployment(model, None, options)
        graphs = deployment.graph_paths(entry.graphs)
    if not request.batch:
        request = dataclasses.replace(request, batch=tiling.batch)
    return entry.factory()(model, request, graphs)


def describe(backend: str, request: BackendRequest) -> str:
    """Where the work runs, in words for log lines: ``cpu``, ``cuda:0``, ``onnxruntime/cpu``, ``tensorrt``."""
    if backend == "torch":
        return str(resolve_device(request.device))
    if backend == "onnxruntime":
        return f"onnxruntime/{request.provider}"
    if backend == "openvino":
        return f"openvino/cpu-{request.precision}"
    return backend
