"""``swintormer demo``: the README's main job, end to end on the bundled model and sample photo.

Export the bundled model (cached), write the Triton repository, start the bundled Triton
server on free loopback ports, send the sample photograph through the ensemble with the client,
write the result and a blurry/deblurred/sharp comparison, print PSNR and timing, stop the server.
``--local`` skips the server and runs the PyTorch pipeline in-process instead.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

from swintormer.cli.options import add_threads_option, apply_threads

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="the main job: export, serve, deblur the bundled sample through Triton, compare",
        description="Export the bundled default model, serve it with the bundled Triton server, deblur the bundled "
        "sample photograph through the ensemble, and write out/demo/deblurred.png and out/demo/compare.png "
        "(blurry | deblurred | sharp) with PSNR and timing.",
    )
    p.add_argument("-o", "--output", default="out/demo", metavar="DIR", help="output folder (default out/demo)")
    p.add_argument("--local", action="store_true", help="run the PyTorch pipeline in-process, without a server")
    p.add_argument("--device", default="auto", help="with --local: auto, cpu, cuda, cuda:N (default auto)")
    add_threads_option(p)
    p.set_defaults(func=run)


def _through_server(blurry: np.ndarray, out: Path) -> tuple[np.ndarray, dict[str, float]]:
    from swintormer.export.deploy import build_deployment
    from swintormer.model import DeblurModel
    from swintormer.serving.client import DeblurClient
    from swintormer.serving.server import ServerOptions, TritonServer, free_port

    times = {}
    start = time.perf_counter()
    model = DeblurModel.load()
    log.info("demo step 1 of 4: exporting %s to ONNX and writing the Triton repository (cached after the first run)", model.label)
    repo = out / "model_repository"
    build_deployment(model, repo)
    times["export_s"] = time.perf_counter() - start
    log.info("demo step 2 of 4: starting the bundled Triton server on %s", repo)
    start = time.perf_counter()
    options = ServerOptions(repo, http_port=free_port(), grpc_port=free_port(), metrics_port=free_port())
    with TritonServer(options) as server:
        times["server_start_s"] = time.perf_counter() - start
        log.info("demo step 3 of 4: sending the sample through the ensemble at %s", server.http_url)
        with DeblurClient(server.http_url) as client:
            client.check_ready()
            start = time.perf_counter()
            restored = client.deblur(blurry)
            times["request_s"] = time.perf_counter() - start
        log.info("demo step 4 of 4: stopping the server")
    return restored, times


def _local(blurry: np.ndarray, device_name: str) -> tuple[np.ndarray, dict[str, float]]:
    from swintormer.backends import BackendRequest
    from swintormer.inference import tile_function
    from swintormer.model import DeblurModel
    from swintormer.tiling import tiled_apply

    model = DeblurModel.load()
    start = time.perf_counter()
    fn = tile_function(model, "torch", request=BackendRequest(device=device_name))
    restored = tiled_apply(fn, blurry, out_dtype=np.uint8)
    return restored, {"local_s": time.perf_counter() - start}


def run(args: argparse.Namespace) -> int:
    from swintormer.imageio import read_image, write_image
    from swintormer.metrics import psnr
    from swintormer.model import ASSETS
    from swintormer.visualize import side_by_side

    apply_threads(args)
    out = Path(args.output)
    blurry = read_image(ASSETS / "sample_blurry.png")
    sharp = read_image(ASSETS / "sample_sharp.png")
    restored, times = _local(blurry.array, args.device) if args.local else _through_server(blurry.array, out)
    write_image(out / "deblurred.png", restored)
    compare = side_by_side([blurry.array, restored, sharp.array], ["blurry input", "deblurred", "sharp reference"])
    write_image(out / "compare.png", compare)
    before = psnr(blurry.pixels, sharp.pixels)
    after = psnr(restored.astype(np.float32) / 255.0, sharp.pixels)
    h, w = restored.shape[:2]
    log.info("deblurred %s (%dx%d): %s", blurry.path.name, w, h, ", ".join(f"{k} {v:.2f}" for k, v in times.items()))
    log.info("PSNR vs the sharp reference: blurry %.2f dB -> deblurred %.2f dB (%+.2f dB)", before, after, after - before)
    log.info("wrote %s and %s", out / "deblurred.png", out / "compare.png")
    return 0
