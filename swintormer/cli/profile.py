"""``swintormer profile``: what a model costs: MACs under both counting conventions, and with
``--runtime onnxruntime|openvino`` where its exported graphs spend their time, op by op."""

from __future__ import annotations

import argparse
import json

from swintormer.backends.op_profile import RUNTIMES
from swintormer.cli.options import add_threads_option, apply_threads

CONVENTIONS = {
    "thop_macs": "conv + linear + LayerNorm/GroupNorm (4 per element), as thop.profile counts; attention matmuls not counted",
    "fvcore_macs": "conv + linear + attention matmuls + LayerNorm/GroupNorm (5 per element), as fvcore counts",
    "conv_linear_macs": "conv + linear layers only",
    "attention_matmul_macs": "the attention maps' matmuls (q@k^T and attn@v) only",
}

EPILOG = """examples:
  {prog}                                    # the default model's parameters and MACs, 256x256
  {prog} --model swintormer-dpdd --size 512 --json
  {prog} --runtime onnxruntime --batch 8    # ONNX Runtime's kernel time by op type
  {prog} --runtime onnxruntime --precision int8 --top 20
  {prog} --runtime openvino --precision bf16 --batch 8   # + the kernel OpenVINO ran each op with

With --runtime, a variant without bundled weights is timed with seeded random weights (kernel
times do not depend on them). "convolutions and matmuls" is the share of the time that int8 or
bf16 arithmetic can shorten; "at most N x" is the speed-up if that share took no time at all.
OpenVINO runs a batch as parallel streams (one per core), so its times are summed over them.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    from swintormer.model import DEFAULT_VARIANT

    p = subparsers.add_parser(
        "profile",
        help="count parameters and MACs of a model variant, or time its exported graphs op by op",
        description="Count parameters and multiply-accumulates (MACs) for one input tile, "
        "under the thop and fvcore conventions (papers mix the two). Prior models also report their "
        "encoder and one denoiser step (multiply by --prior-steps for the sampling cost). With --runtime, "
        "export the model's graphs and report where that runtime's kernels spend their time, from its own profiler.",
        epilog=EPILOG.format(prog="swintormer profile"), formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", default=DEFAULT_VARIANT, metavar="NAME",
                   help=f"registered variant (see `swintormer models`; default {DEFAULT_VARIANT})")
    p.add_argument("--size", type=int, default=256, help="square image tile size in pixels (default 256); the denoiser runs at size/4")
    p.add_argument("--batch", type=int, default=1, help="batch size (default 1)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    g = p.add_argument_group("op times (--runtime)")
    g.add_argument("--runtime", choices=RUNTIMES, help="time the exported graphs' kernels in this runtime's profiler")
    g.add_argument("--precision", choices=("fp32", "fp16", "int8", "fp8", "bf16"), default="fp32",
                   help="onnxruntime: the graph's precision, as `swintormer export` makes it; openvino: fp32 or bf16, "
                   "the precision it runs the fp32 graph in (default fp32)")
    g.add_argument("--calls", type=int, default=3, help="timed calls after one warm-up (default 3)")
    g.add_argument("--top", type=int, default=12, help="op types and nodes listed (default 12)")
    add_threads_option(g)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from swintormer.errors import SwintormerError

    if args.size < 32 or args.size % 32 or args.batch < 1:
        raise SwintormerError("--size must be a positive multiple of 32 and --batch >= 1")
    if args.runtime:
        if args.calls < 1 or args.top < 1:
            raise SwintormerError("--calls and --top must be >= 1")
        return _op_times(args)
    if args.precision != "fp32":
        raise SwintormerError(f"--precision {args.precision} times graphs: add --runtime onnxruntime or openvino "
                              "(parameters and MACs do not depend on the precision)")
    from swintormer.profiling import profile_variant

    reports = profile_variant(args.model, args.size, args.batch)
    main = reports.pop("model")
    result = {"model": args.model, **main.as_dict(), "conventions": CONVENTIONS}
    if reports:
        result["components"] = {role: r.as_dict() for role, r in reports.items()}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for role, report in {args.model: main, **reports}.items():
        print(f"{role} at input {report.input_shape}")
        print(f"  parameters            {report.params:>16,}")
        d = report.as_dict()
        for key in CONVENTIONS:
            print(f"  {key:<22}{d[key] / 1e9:>12.3f} G   {CONVENTIONS[key]}")
    return 0


def _model(name: str):
    """The bundled weights of ``name``, or seeded random ones; and which it is."""
    import torch

    from swintormer.model import BUNDLED, DeblurModel

    if name in BUNDLED:
        return DeblurModel.load(expect=name), "bundled weights"
    torch.manual_seed(0)
    return DeblurModel.build(name), "seeded random weights"


def _op_times(args: argparse.Namespace) -> int:
    from swintormer.backends.op_profile import profile_graph
    from swintormer.errors import SwintormerError
    from swintormer.export.build import export_components
    from swintormer.export.specs import Precision, component_specs

    openvino = args.runtime == "openvino"
    if openvino:
        from swintormer.backends.openvino import check_precision

        check_precision(args.precision)
    elif args.precision == "bf16":
        raise SwintormerError("--precision bf16 is OpenVINO's run precision for fp32 graphs; add --runtime openvino")
    threads = apply_threads(args)
    model, weights = _model(args.model)
    specs = component_specs(model, args.size, args.batch)
    graphs = export_components(model, specs, Precision("fp32" if openvino else args.precision))
    profiles = {c: profile_graph(graphs[c].path, spec.sample_inputs(args.batch), args.calls, threads, args.runtime,
                                 args.precision) for c, spec in specs.items()}
    version = _version(args.runtime)
    if args.json:
        print(json.dumps({"model": args.model, "weights": weights, "precision": args.precision, "runtime": args.runtime,
                          "version": version, "size": args.size, "threads": threads,
                          "components": {c: p.as_dict(args.top) for c, p in profiles.items()}}, indent=2))
        return 0
    for component, prof in profiles.items():
        side = specs[component].inputs[0].shape[-1]
        summed = f", summed over {prof.streams} streams running at once" if prof.streams > 1 else ""
        print(f"{args.model} {component} ({weights}), {args.precision}, {args.runtime} {version} CPU, batch {prof.batch} "
              f"of {side}x{side}: {prof.total_ms:.1f} ms of kernels a call ({prof.total_ms / prof.batch:.1f} ms an item"
              f"{summed}), mean of {prof.calls} call{'s' if prof.calls != 1 else ''}")
        kernel = "  kernel" if openvino else ""
        print(f"  {'op type':<24}{'ms/call':>10}{'share':>8}{'kernels':>9}{kernel}")
        for t in prof.by_type[: args.top]:
            print(f"  {t.name:<24}{t.ms:>10.1f}{100 * t.share:>7.1f}%{t.kernels:>9.0f}" + (f"  {t.exec_type}" if openvino else ""))
        print(f"  convolutions and matmuls: {100 * prof.share_of():.0f}% of the time "
              f"(at most {prof.ceiling():.2f}x faster if they took none)")
        print("  slowest nodes:")
        for t in prof.by_node[: args.top]:
            print(f"    {t.ms:>8.2f} ms {100 * t.share:>5.1f}%  {t.op_type:<20} {t.name}" + (f"  [{t.exec_type}]" if openvino else ""))
    return 0


def _version(runtime: str) -> str:
    if runtime == "openvino":
        from swintormer.backends.openvino import _ov

        return _ov().__version__
    import onnxruntime

    return onnxruntime.__version__
