"""``swintormer client``: deblur image files through a running Triton server."""

from __future__ import annotations

import argparse
import logging
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from swintormer.cli.options import image_jobs
from swintormer.errors import SwintormerError

log = logging.getLogger(__name__)

EPILOG = """examples:
  swintormer client photo.jpg -o sharp.png
  swintormer client shots/ -o restored/ --concurrency 4 --protocol grpc --url 127.0.0.1:8001
  swintormer client big.tif -o big_sharp.tif --shared-memory
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "client", help="deblur images through a running Triton server", epilog=EPILOG,
        description="Send images (files or folders) to the deblurring ensemble and write the results.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="image files or folders of images")
    p.add_argument("--left", metavar="PATH", help="left dual-pixel view (with --right)")
    p.add_argument("--right", metavar="PATH", help="right dual-pixel view (with --left)")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output file (one input) or folder")
    p.add_argument("--url", default=None, help="server address (default 127.0.0.1:8000 for http, :8001 for grpc)")
    p.add_argument("--protocol", choices=("http", "grpc"), default="http", help="default http")
    p.add_argument("--concurrency", type=int, default=1, help="requests in flight at once (default 1)")
    p.add_argument("--shared-memory", action="store_true", help="pass tensors through system shared memory (same host only)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for one image (default 600)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from swintormer.imageio import dual_pixel_stack, read_image, write_image
    from swintormer.serving.client import DeblurClient

    jobs = image_jobs(args)
    url = args.url or ("127.0.0.1:8000" if args.protocol == "http" else "127.0.0.1:8001")
    if args.concurrency < 1:
        raise SwintormerError("--concurrency must be >= 1")
    with DeblurClient(url, args.protocol, args.timeout, args.shared_memory) as probe:
        probe.check_ready()

    def one(job: tuple[list[Path], Path]) -> float:
        images = [read_image(p) for p in job[0]]
        array = dual_pixel_stack(*images) if len(images) == 2 else images[0].array
        if len(images) == 1 and images[0].mode == "gray":
            array = np.ascontiguousarray(array[:, :, :1])  # the server restores it as RGB, answers gray
        start = time.perf_counter()
        with DeblurClient(url, args.protocol, args.timeout, args.shared_memory) as client:
            restored = client.deblur(array)
        elapsed = time.perf_counter() - start
        write_image(job[1], restored)
        log.info("wrote %s (%dx%d, %.2f s)", job[1], restored.shape[1], restored.shape[0], elapsed)
        return elapsed

    with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
        latencies = list(pool.map(one, jobs))
    if len(latencies) > 1:
        p50, p95 = np.percentile(latencies, [50, 95])
        log.info("%d images: latency p50 %.2f s, p95 %.2f s", len(latencies), p50, p95)
    return 0
