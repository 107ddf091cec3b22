"""ONNX graph -> serialized TensorRT engine, on the documented TensorRT 10 and 11 APIs.

Precision lives in the graph (fp16 graphs from :mod:`swintormer.export.onnx_export`), so the
network is strongly typed on both versions: TensorRT 11 networks always are, and on 10 we ask
for ``STRONGLY_TYPED`` instead of the weak-typing ``BuilderFlag.FP16`` that 11 removed. The
optimisation profile comes from the export spec; workspace limit, timing cache and builder
optimisation level are options. This module is deliberately thin: it only runs where TensorRT
and a GPU exist, which CI does not have.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from swintormer.errors import SwintormerError
from swintormer.export.specs import ExportSpec, Precision

__all__ = ["EngineOptions", "build_engine", "engine_name", "tensorrt_status"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineOptions:
    workspace_gib: float = 4.0
    optimization_level: int = 3
    timing_cache: Path | None = None


def tensorrt_status() -> tuple[bool, str]:
    """``(usable, why)``: TensorRT importable and a CUDA GPU present, else the reason it is not."""
    try:
        import tensorrt as trt
    except ImportError:
        trt = None
    if trt is None or not hasattr(trt, "Builder"):
        return False, "TensorRT is not installed (pip install 'swintormer[trt]', or use the NGC TensorRT container)"
    import torch

    if not torch.cuda.is_available():
        return False, f"TensorRT {trt.__version__} is installed but no CUDA GPU is visible"
    return True, f"TensorRT {trt.__version__} on {torch.cuda.get_device_name(0)}"


def engine_name(variant: str, component: str, precision: Precision) -> str:
    """``<variant>-<component>-<precision>-sm<cc>-trt<version>.plan`` for the GPU in use."""
    import tensorrt as trt
    import torch

    major, minor = torch.cuda.get_device_capability(0)
    return f"{variant}-{component}-{precision.value}-sm{major}{minor}-trt{trt.__version__}.plan"


def _network_flags(trt) -> int:
    if int(trt.__version__.split(".")[0]) >= 11:
        return 0  # strongly typed is the only mode
    return 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)


def _parse(trt, builder, logger, onnx_path: Path):
    network = builder.create_network(_network_flags(trt))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise SwintormerError(f"TensorRT could not parse {onnx_path.name}: {errors}")
    return network, parser


def _config(trt, builder, spec: ExportSpec, options: EngineOptions):
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(options.workspace_gib * 2**30))
    config.builder_optimization_level = options.optimization_level
    profile = builder.create_optimization_profile()
    for name, (lo, opt, hi) in spec.profile().items():
        profile.set_shape(name, lo, opt, hi)
    config.add_optimization_profile(profile)
    cache_bytes = options.timing_cache.read_bytes() if options.timing_cache and options.timing_cache.is_file() else b""
    config.set_timing_cache(config.create_timing_cache(cache_bytes), ignore_mismatch=False)
    return config


def build_engine(onnx_path: Path, spec: ExportSpec, out_path: Path, options: EngineOptions = EngineOptions()) -> Path:
    """Build and serialize an engine for ``onnx_path`` with ``spec``'s profile; returns ``out_path``.

    The int64 ``timestep`` input of the denoiser is kept (TensorRT 10+ supports int64 I/O).
    """
    usable, why = tensorrt_status()
    if not usable:
        raise SwintormerError(why)
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network, _parser = _parse(trt, builder, logger, Path(onnx_path))
    config = _config(trt, builder, spec, options)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise SwintormerError(f"TensorRT failed to build an engine from {onnx_path} (see the TensorRT log above)")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_bytes(bytes(serialized))
    if options.timing_cache is not None:
        options.timing_cache.parent.mkdir(parents=True, exist_ok=True)
        options.timing_cache.write_bytes(bytes(config.get_timing_cache().serialize()))
    log.info("built %s (%.1f MB)", out_path.name, out_path.stat().st_size / 2**20)
    return out_path
