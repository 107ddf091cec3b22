"""Checkpoint -> cached ONNX graphs -> (TensorRT engines) -> Triton repository, as library calls.

``python export/build_engines.py`` is a thin command over :func:`export_components`,
:func:`verify_components`, :func:`build_engines` and :func:`write_model_repository`; the ONNX
Runtime backend calls :func:`export_components` on first use, so every path shares one cache.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from swintormer.errors import SwintormerError
from swintormer.export.cache import artifact_key, cache_root, module_digest
from swintormer.export.specs import ExportSpec, Precision, component_specs
from swintormer.pipeline import DeblurModel

__all__ = ["Artifact", "build_engines", "export_components", "verify_components", "write_model_repository"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Artifact:
    """One exported graph (or engine) and whether it came from the cache."""

    component: str
    path: Path
    cached: bool
    seconds: float


def _onnx_path(model: DeblurModel, component: str, spec: ExportSpec, precision: Precision) -> Path:
    module = model.components()[component]
    key = artifact_key(module_digest(module), spec.fingerprint(), precision.value)
    name = model.name or model.restorer.config.arch
    return cache_root() / "onnx" / f"{name}-{component}-{precision.value}-{key}.onnx"


def export_components(
    model: DeblurModel, specs: dict[str, ExportSpec], precision: Precision, force: bool = False
) -> dict[str, Artifact]:
    """Export every component under its spec, reusing cached graphs unless ``force``."""
    from swintormer.export.onnx_export import export_onnx

    done = {}
    for component, spec in specs.items():
        path = _onnx_path(model, component, spec, precision)
        start = time.perf_counter()
        cached = path.is_file() and not force
        if not cached:
            tmp = path.with_suffix(".tmp.onnx")
            export_onnx(spec, model.components()[component], tmp, precision)
            tmp.replace(path)  # only complete graphs ever carry the final name
        done[component] = Artifact(component, path, cached, time.perf_counter() - start)
        log.info("  %-9s %s %s (%.1f s)", component, "cached  " if cached else "exported", path.name, done[component].seconds)
    return done


def verify_components(
    model: DeblurModel, specs: dict[str, ExportSpec], artifacts: dict[str, Artifact], precision: Precision
) -> dict[str, dict]:
    """ONNX Runtime vs PyTorch and the TensorRT-parser check per component (cached beside each graph)."""
    import onnx

    from swintormer.export.onnx_export import verify_onnx
    from swintormer.export.trt_compat import check_tensorrt_compat

    reports = {}
    for component, spec in specs.items():
        art = artifacts[component]
        report_path = art.path.with_suffix(".verify.json")
        if art.cached and report_path.is_file():
            report = json.loads(report_path.read_text())
        else:
            result = verify_onnx(spec, model.components()[component], art.path, precision)
            report = {**asdict(result), "line": result.line(),
                      "tensorrt_problems": check_tensorrt_compat(onnx.load(str(art.path)), spec)}
            report_path.write_text(json.dumps(report, indent=2))
        reports[component] = report
        log.info("  %s", report["line"])
        problems = report["tensorrt_problems"]
        log.info("  %-9s TensorRT ONNX parser: %s", component, "all ops supported" if not problems else f"{len(problems)} problems: {problems[:3]}")
    return reports


def build_engines(
    model: DeblurModel, specs: dict[str, ExportSpec], artifacts: dict[str, Artifact], precision: Precision, force: bool = False
) -> dict[str, Artifact] | None:
    """TensorRT engines for every component, or None (with the reason logged) where TensorRT cannot run."""
    from swintormer.export.trt_engine import EngineOptions, build_engine, engine_name, tensorrt_status

    usable, why = tensorrt_status()
    if not usable:
        log.info("  skipped: %s", why)
        return None
    log.info("  %s", why)
    engines = {}
    folder = cache_root() / "engines"
    options = EngineOptions(timing_cache=folder / "timing.cache")
    for component, spec in specs.items():
        name = engine_name(model.name or "model", component, precision)
        path = folder / f"{artifacts[component].path.stem}-{name}"
        start = time.perf_counter()
        cached = path.is_file() and not force
        if not cached:
            build_engine(artifacts[component].path, spec, path, options)
        engines[component] = Artifact(component, path, cached, time.perf_counter() - start)
        log.info("  %-9s %s %s", component, "cached  " if cached else "built   ", path.name)
    return engines


def write_model_repository(
    out: Path, model: DeblurModel, specs: dict[str, ExportSpec], artifacts: dict[str, Artifact], flavour: str, limits, settings
) -> list[str]:
    """Write the Triton repository for ``flavour`` (artifacts: ONNX for cpu, engines for gpu)."""
    from swintormer.serving.repository import RepositoryPlan, write_repository

    plan = RepositoryPlan(
        flavour=flavour, specs=specs, artifacts={k: a.path for k, a in artifacts.items()}, limits=limits,
        prior=settings if model.has_prior else None, scheduler=model.scheduler if model.has_prior else None,
        model_name=model.name,
    )
    return write_repository(out, plan)


def specs_for(model: DeblurModel, tile: int, max_batch: int, dynamic_hw: bool = False) -> dict[str, ExportSpec]:
    """The export specs, with a clear error before any long work if the tile does not fit.

    ``dynamic_hw``: the restorer takes any height/width from ``tile`` to ``4 * tile`` (whole-image
    engines); the served pipeline still sends ``tile``-sized tiles.
    """
    if tile <= 0:
        raise SwintormerError("export needs a fixed tile size (--tile > 0)")
    return component_specs(model, tile, max_batch, dynamic_hw)
