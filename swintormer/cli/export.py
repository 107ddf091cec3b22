"""``swintormer export`` (and ``python export/build_engines.py``): everything a deployment needs.

Exports each component (restorer; encoder and denoiser for prior models) to ONNX, verifies every
graph against PyTorch with ONNX Runtime and against TensorRT's ONNX operator support, builds
TensorRT engines when TensorRT and a GPU are present (and says why not otherwise), and writes the
Triton model repository: :func:`swintormer.export.deploy.build_deployment`. Artifacts are cached
by what produced them, so a second run with the same inputs is cache hits.
"""

from __future__ import annotations

import argparse
import logging
import time

from swintormer.cli.options import add_model_options, add_prior_options, add_threads_option, add_tile_options, apply_threads, load_model, tiling_config

log = logging.getLogger(__name__)

EPILOG = """examples:
  {prog}
  {prog} --checkpoint net_g.pth --tile 512 --batch 4        # an upstream file: architecture read from it
  {prog} --precision fp16 --flavour gpu --out /models/swintormer
  {prog} --check                                             # + Polygraphy: ORT vs PyTorch per graph, lint

then:
  swintormer serve --repository model_repository
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from swintormer.serving.steps import ServingLimits

    add_model_options(p)
    add_tile_options(p, batch_help="largest tile batch of the graphs and engines, and the server's chunk size")
    add_prior_options(p)
    g = p.add_argument_group("deployment")
    g.add_argument("--precision", choices=("fp32", "fp16", "int8", "fp8", "bf16"), default="fp32",
                   help="graph precision: fp16 keeps norms/softmax in fp32; int8 is a QDQ graph (int8 Conv/MatMul, calibrated "
                   "on training photographs; prior-free models; made for TensorRT: ONNX Runtime's CPU kernels run the "
                   "default model slower in int8 than in fp32, BENCHMARKS.md); fp8 the same in float8 e4m3 (TensorRT on Hopper and "
                   "later; ONNX Runtime runs it on CPU for parity checks, not speed); bf16: fp32 graphs that OpenVINO runs in bf16 "
                   "(--runtime openvino, CPUs with bf16 units); default fp32")
    g.add_argument("--runtime", choices=("onnxruntime", "openvino"), default="onnxruntime",
                   help="what runs the graphs inside the cpu flavour's python models (default onnxruntime)")
    g.add_argument("--dynamic-hw", action="store_true", help="restorer graph/engine takes any size from --tile to 4x --tile (models without a prior)")
    g.add_argument("--max-pixels", type=int, default=ServingLimits.max_pixels,
                   help=f"largest image the server accepts, in pixels (default {ServingLimits.max_pixels:,})")
    g.add_argument("--flavour", choices=("cpu", "gpu"), default="cpu",
                   help="cpu: ONNX Runtime or OpenVINO (--runtime) inside python models; gpu: tensorrt_plan models (default cpu)")
    g.add_argument("--instances", type=int, default=1, help="instances of each network model in the server (default 1)")
    g.add_argument("--pipelines", type=int, default=2,
                   help="instances of the pipeline model: requests the server deblurs at once, their tiles batched "
                   "together; each holds its image, one batch of tiles and one band (default 2)")
    g.add_argument("--out", default="model_repository", help="Triton model repository to write (default model_repository/)")
    g.add_argument("--force", action="store_true", help="re-export and rebuild even when cached")
    g.add_argument("--check", action="store_true",
                   help="also compare every graph with its PyTorch module through Polygraphy's comparator and lint it "
                   "(polygraphy check lint); exit 1 on a mismatch or a lint error")
    add_threads_option(g)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export", help="export, verify, build engines and write the Triton model repository",
        description=__doc__.split("\n\n")[1].replace("\n", " "),
        epilog=EPILOG.format(prog="swintormer export"), formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from swintormer.export.deploy import DeploymentOptions, build_deployment

    start = time.perf_counter()
    apply_threads(args)
    tiling = tiling_config(args)
    model = load_model(args)
    settings = model.settings(args.prior_steps, args.seed)
    parts = ", ".join(f"{k} {sum(p.numel() for p in m.parameters()) / 1e6:.2f}M" for k, m in model.components().items())
    log.info("model: %s (%s), tile %d, stride %d, batch <= %d%s", model.label, parts, tiling.tile, tiling.stride, tiling.batch,
             f", prior {settings.steps} DDIM steps" if model.has_prior else "")
    options = DeploymentOptions(
        tiling=tiling, precision=args.precision, flavour=args.flavour, dynamic_hw=args.dynamic_hw,
        max_pixels=args.max_pixels, prior=settings, force=args.force, instances=args.instances, pipelines=args.pipelines,
        runtime=args.runtime, threads=args.threads,
    )
    deployment = build_deployment(model, Path(args.out), options)
    if args.check and not _check(model, deployment, options.precision):
        return 1
    log.info("done in %.1f s; serve it with: swintormer serve --repository %s", time.perf_counter() - start, args.out)
    return 0


def _check(model, deployment, precision) -> bool:
    """Polygraphy's comparison and lint of every graph; True when all pass (each a log line)."""
    from swintormer.export.build import export_components
    from swintormer.export.polygraphy_check import check_graph, first_divergence
    from swintormer.export.specs import Precision

    log.info("polygraphy check")
    ok = True
    for component, spec in deployment.specs.items():
        path = deployment.onnx[component].path
        engine = deployment.engines[component].path if deployment.engines and component in deployment.engines else None
        report = check_graph(spec, model.components()[component], path, precision, engine=engine)
        (log.info if report.ok else log.error)("  %s", report.line())
        ok = ok and report.ok
        if not report.passed and precision != Precision.FP32:  # which layer leaves the tolerances first
            reference = export_components(model, {component: spec}, Precision.FP32)[component].path
            found = first_divergence(reference, path, spec.sample_inputs(batch=1), precision)
            log.error("    %s", found.line() if found else "layer by layer against the fp32 graph: every shared tensor "
                      "within the tolerances (the difference builds up over many layers)")
    return ok
