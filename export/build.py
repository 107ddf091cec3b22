"""Model -> cached ONNX graphs -> verification -> (TensorRT engines), one step per function.

:func:`swintormer.export.deploy.build_deployment` runs these steps (and writes the Triton
repository); everything that needs graphs or engines goes through it, so every path shares one
artifact cache.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from swintormer.errors import SwintormerError
from swintormer.export.cache import artifact_key, artifact_lock, cache_root, module_digest
from swintormer.export.specs import ExportSpec, Precision
from swintormer.files import atomic_write_text
from swintormer.model import DeblurModel

__all__ = ["Artifact", "build_engines", "export_components", "verify_components"]

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
    name = model.label
    return cache_root() / "onnx" / f"{name}-{component}-{precision.value}-{key}.onnx"


def export_components(
    model: DeblurModel, specs: dict[str, ExportSpec], precision: Precision, force: bool = False
) -> dict[str, Artifact]:
    """Export every component under its spec, reusing cached graphs unless ``force``."""
    from swintormer.export.onnx_export import export_onnx

    if precision.quantized:
        return _quantized_components(model, specs, precision, force)
    def export(component: str, spec: ExportSpec, path: Path) -> None:
        tmp = path.with_suffix(".tmp.onnx")
        export_onnx(spec, model.components()[component], tmp, precision)
        tmp.replace(path)  # only complete graphs ever carry the final name

    return _cached_graphs(model, specs, precision, force, export, "exported")


def _make_unless_cached(path: Path, force: bool, make) -> bool:
    """Whether ``path`` came from the cache; if not, ``make()`` it under its lock. A process that
    waited for the lock and finds ``path`` made meanwhile (also with ``force``) takes it as cached."""
    if path.is_file() and not force:
        return True
    start = time.time()
    with artifact_lock(path):
        try:
            made_meanwhile = path.stat().st_mtime >= start - 1.0 or not force
        except FileNotFoundError:
            made_meanwhile = False
        if not made_meanwhile:
            make()
        return made_meanwhile


def _cached_graphs(model: DeblurModel, specs: dict[str, ExportSpec], precision: Precision, force: bool,
                   make, verb: str) -> dict[str, Artifact]:
    """``make(component, spec, path)`` for every graph not in the cache (all with ``force``), one log line each."""
    done = {}
    for component, spec in specs.items():
        path = _onnx_path(model, component, spec, precision)
        start = time.perf_counter()
        cached = _make_unless_cached(path, force, lambda: make(component, spec, path))
        done[component] = Artifact(component, path, cached, time.perf_counter() - start)
        log.info("  %-9s %s %s (%.1f s)", component, "cached  " if cached else verb, path.name, done[component].seconds)
    return done


def _quantized_components(model: DeblurModel, specs: dict[str, ExportSpec], precision: Precision,
                          force: bool) -> dict[str, Artifact]:
    """INT8/FP8 graphs: the fp32 export (cached), quantized and calibrated (export/quantize.py, cached too)."""
    from swintormer.export.quantize import quantize_restorer

    if set(specs) != {"restorer"}:
        raise SwintormerError(f"--precision {precision.value} quantizes prior-free restorers only; {model.label} also has "
                              f"{', '.join(sorted(set(specs) - {'restorer'}))}: use fp16 for prior models")
    fp32 = export_components(model, specs, Precision.FP32, force)
    return _cached_graphs(model, specs, precision, force,
                          lambda component, spec, path: quantize_restorer(fp32[component].path, path, spec, precision=precision),
                          "quantized")


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
            atomic_write_text(report_path, json.dumps(report, indent=2))  # others may read it at once
        reports[component] = report
        log.info("  %s", report["line"])
        problems = report["tensorrt_problems"]
        log.info("  %-9s TensorRT ONNX parser: %s", component, "all ops supported" if not problems else f"{len(problems)} problems: {problems[:3]}")
    return reports


def build_engines(
    model: DeblurModel, specs: dict[str, ExportSpec], artifacts: dict[str, Artifact], precision: Precision,
    force: bool = False, required: bool = False,
) -> dict[str, Artifact] | None:
    """TensorRT engines for every component, or None (with the reason logged) where TensorRT cannot
    run; with ``required`` that is an error instead."""
    from swintormer.export.trt_engine import EngineOptions, build_engine, engine_name, tensorrt_status

    usable, why = tensorrt_status()
    if not usable:
        if required:
            raise SwintormerError(f"TensorRT engines are needed here, but {why}")
        log.info("  skipped: %s", why)
        return None
    log.info("  %s", why)
    engines = {}
    folder = cache_root() / "engines"
    options = EngineOptions(timing_cache=folder / "timing.cache")
    for component, spec in specs.items():
        name = engine_name(model.label, component, precision)
        path = folder / f"{artifacts[component].path.stem}-{name}"
        start = time.perf_counter()
        cached = _make_unless_cached(path, force, lambda: build_engine(artifacts[component].path, spec, path, options))
        engines[component] = Artifact(component, path, cached, time.perf_counter() - start)
        log.info("  %-9s %s %s", component, "cached  " if cached else "built   ", path.name)
    return engines
