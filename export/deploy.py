"""One function builds a deployment: export, verify, engines, repository.

``build_deployment(model, out, options)`` exports every component of a
:class:`~swintormer.model.DeblurModel` to ONNX (cached), verifies each graph against PyTorch
with ONNX Runtime and against TensorRT's parser support, builds TensorRT engines where TensorRT
and a GPU are present, and writes the Triton model repository to ``out`` (``None``: graphs
only, what the in-process ONNX Runtime and TensorRT backends need). ``python
export/build_engines.py``, ``swintormer export``, ``swintormer demo``, the runtime's graph
backends, the test helpers and the benchmark fixtures all call it, so the sequence and its
numbers (tile, stride, batch: one :class:`~swintormer.tiling.TilingConfig`) live here once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from swintormer.diffusion.prior import PriorSettings
from swintormer.errors import SwintormerError
from swintormer.export.build import Artifact, build_engines, export_components, verify_components
from swintormer.export.specs import ExportSpec, Precision, component_specs
from swintormer.model import DeblurModel
from swintormer.serving.repository import RepositoryPlan, check_served_tiling, write_repository
from swintormer.serving.steps import ServingLimits
from swintormer.tiling import TilingConfig

__all__ = ["Deployment", "DeploymentOptions", "build_deployment"]

log = logging.getLogger(__name__)

Flavour = Literal["cpu", "gpu"]


@dataclass(frozen=True)
class DeploymentOptions:
    """What to build. ``tiling`` is the served tiling (its tile is fixed in the graphs);
    ``max_batch``: the graphs' largest tile batch (None: ``tiling.batch``); ``engines``: build
    TensorRT engines where possible (None), always (True: an error where TensorRT cannot run) or
    never (False); ``prior``: the served prior settings (None: the model's own)."""

    tiling: TilingConfig = field(default_factory=TilingConfig)
    max_batch: int | None = None
    precision: Precision = Precision.FP32
    flavour: Flavour = "cpu"
    dynamic_hw: bool = False
    max_pixels: int = ServingLimits.max_pixels
    prior: PriorSettings | None = None
    verify: bool = True
    engines: bool | None = None
    force: bool = False
    instances: int = 1
    #: instances of the server's pipeline model: requests deblurred at once, their tiles batched together
    pipelines: int = 2
    #: what runs the graphs inside the cpu flavour's python models: onnxruntime or openvino
    runtime: str = "onnxruntime"
    #: inference precision of the runtime when it differs from the graphs' (openvino: "bf16" on fp32 graphs)
    inference_precision: str = ""
    #: CPU threads of each network model instance (0: the runtime's choice)
    threads: int = 0

    def __post_init__(self) -> None:
        if self.flavour not in ("cpu", "gpu"):
            raise SwintormerError(f"flavour must be cpu or gpu, got {self.flavour!r}")
        if self.max_pixels < 1:
            raise SwintormerError(f"--max-pixels must be >= 1, got {self.max_pixels}")
        if self.instances < 1 or self.pipelines < 1:
            raise SwintormerError(f"--instances and --pipelines must be >= 1, got {self.instances} and {self.pipelines}")
        if self.precision == "bf16":  # bf16 is OpenVINO's inference precision over the fp32 graphs
            object.__setattr__(self, "precision", Precision.FP32)
            object.__setattr__(self, "inference_precision", "bf16")
        object.__setattr__(self, "precision", Precision(self.precision))
        if self.runtime not in ("onnxruntime", "openvino"):
            raise SwintormerError(f"--runtime must be onnxruntime or openvino, got {self.runtime!r}")
        if self.inference_precision and (self.runtime != "openvino" or self.flavour != "cpu"):
            raise SwintormerError("--precision bf16 runs on OpenVINO in the cpu flavour: add --runtime openvino --flavour cpu")
        if self.runtime == "openvino":
            from swintormer.backends.openvino import check_precision

            check_precision(self.inference_precision or self.precision.value)
        if self.threads < 0:
            raise SwintormerError(f"--threads must be >= 0, got {self.threads}")

    @property
    def batch(self) -> int:
        return self.max_batch or self.tiling.batch


@dataclass
class Deployment:
    """What :func:`build_deployment` built: specs, graphs, their verification, engines, repository."""

    specs: dict[str, ExportSpec]
    onnx: dict[str, Artifact]
    reports: dict[str, dict] = field(default_factory=dict)
    engines: dict[str, Artifact] | None = None
    repository: Path | None = None
    models: list[str] = field(default_factory=list)

    def graph_paths(self, kind: Literal["onnx", "engines"] = "onnx") -> dict[str, Path]:
        """``{component: path}`` of the ONNX graphs or of the TensorRT engines."""
        artifacts = self.onnx if kind == "onnx" else self.engines
        if artifacts is None:
            raise SwintormerError("no TensorRT engines were built (TensorRT and a GPU are needed)")
        return {k: a.path for k, a in artifacts.items()}


def _check_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise SwintormerError(f"cannot write the model repository to {folder}: {exc.strerror or exc}") from None


def _check_before_long_work(model: DeblurModel, out: Path | None, options: DeploymentOptions) -> dict[str, ExportSpec]:
    """Everything that can be wrong with the request, before minutes of export."""
    options.tiling.validate(model.size_multiple)
    specs = component_specs(model, options.tiling.tile, options.batch, options.dynamic_hw)
    if out is not None:
        check_served_tiling(specs["restorer"], options.tiling)
        _check_writable(out)
    if options.flavour == "gpu" or options.engines:
        from swintormer.export.trt_engine import tensorrt_status

        usable, why = tensorrt_status()
        if not usable:
            need = "the gpu flavour needs TensorRT engines" if options.flavour == "gpu" else "TensorRT engines were asked for"
            raise SwintormerError(f"{need}, but {why}; build on a GPU machine with TensorRT, or use the cpu flavour / onnxruntime")
    return specs


def build_deployment(model: DeblurModel, out: str | Path | None, options: DeploymentOptions = DeploymentOptions()) -> Deployment:
    """Export, verify, build engines and (when ``out`` is given) write the Triton repository to ``out``."""
    out = Path(out) if out is not None else None
    specs = _check_before_long_work(model, out, options)
    steps = ["ONNX export"] + ["verification"] * options.verify + ["TensorRT engines"] * (options.engines is not False)
    steps += ["Triton model repository"] * (out is not None)
    say = lambda name, detail="": log.info("[%d/%d] %s%s", steps.index(name) + 1, len(steps), name, detail)  # noqa: E731
    say("ONNX export", f" ({options.precision.value})")
    onnx = export_components(model, specs, options.precision, options.force)
    deployment = Deployment(specs, onnx)
    if options.verify:
        say("verification")
        deployment.reports = verify_components(model, specs, onnx, options.precision)
    if options.engines is not False:
        say("TensorRT engines")
        required = bool(options.engines) or options.flavour == "gpu"
        deployment.engines = build_engines(model, specs, onnx, options.precision, options.force, required)
    if out is not None:
        say("Triton model repository", f" ({options.flavour} flavour)")
        artifacts = deployment.engines if options.flavour == "gpu" else onnx
        plan = RepositoryPlan(
            flavour=options.flavour, specs=specs, artifacts={k: a.path for k, a in artifacts.items()},
            limits=ServingLimits(model.in_channels, options.max_pixels, options.tiling),
            prior=(options.prior or model.prior) if model.has_prior else None,
            scheduler=model.scheduler if model.has_prior else None, model_name=model.name, instances=options.instances,
            pipelines=options.pipelines, runtime=options.runtime,
            run_precision=options.inference_precision or options.precision.value, threads=options.threads,
        )
        deployment.models = write_repository(out, plan)
        deployment.repository = out
        log.info("  %d models in %s: %s", len(deployment.models), out, ", ".join(deployment.models))
    return deployment
