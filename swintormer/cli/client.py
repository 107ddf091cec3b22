"""``swintormer client``: deblur image files through a running Triton server."""

from __future__ import annotations

import argparse
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from swintormer.cli.options import add_output_options, image_jobs
from swintormer.errors import SwintormerError

log = logging.getLogger(__name__)

EPILOG = """examples:
  swintormer client photo.jpg -o sharp.png
  swintormer client shots/ -o restored/ --concurrency 4 --protocol grpc --url 127.0.0.1:8001
  swintormer client big.tif -o big_sharp.tif --shared-memory --admin-key "$SWINTORMER_ADMIN_KEY"

exit status: 0 every image written (or skipped because it exists), 2 a usage or input error
(a damaged image, a bad --url, a request the server rejects), 1 the server failed (refused or
dropped connections, timeouts, not ready). Connection failures and 503s are retried with backoff.
"""


def add_server_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("server")
    g.add_argument("--url", default=None, help="server address host:port (default 127.0.0.1:8000 for http, :8001 for grpc)")
    g.add_argument("--protocol", choices=("http", "grpc"), default="http", help="default http")
    g.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for one request (default 600)")
    g.add_argument("--admin-key", default=os.environ.get("SWINTORMER_ADMIN_KEY"),
                   help="the server's admin key, for its restricted APIs such as shared memory (default $SWINTORMER_ADMIN_KEY)")


def server_url(args: argparse.Namespace) -> str:
    return args.url or ("127.0.0.1:8000" if args.protocol == "http" else "127.0.0.1:8001")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "client", help="deblur images through a running Triton server", epilog=EPILOG,
        description="Send images (files or folders) to the deblurring ensemble and write the results.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="image files or folders of images")
    p.add_argument("--left", metavar="PATH", help="left dual-pixel view (with --right)")
    p.add_argument("--right", metavar="PATH", help="right dual-pixel view (with --left)")
    add_output_options(p)
    add_server_options(p)
    p.add_argument("--concurrency", type=int, default=1, help="requests in flight at once (default 1)")
    p.add_argument("--shared-memory", action="store_true", help="pass tensors through system shared memory (same host only; needs --admin-key)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from swintormer.imageio import dual_pixel_stack, read_image, write_image
    from swintormer.serving.client import DeblurClient

    if args.concurrency < 1:
        raise SwintormerError("--concurrency must be >= 1")
    jobs = image_jobs(args)
    url = server_url(args)
    connect = lambda: DeblurClient(url, args.protocol, args.timeout, args.shared_memory, args.admin_key)  # noqa: E731
    with connect() as probe:
        probe.check_ready()

    def one(job: tuple[list[Path], Path]) -> float | SwintormerError:
        try:
            images = [read_image(p) for p in job[0]]
            array = dual_pixel_stack(*images) if len(images) == 2 else images[0].array
            if len(images) == 1 and images[0].mode == "gray":
                array = np.ascontiguousarray(array[:, :, :1])  # the server restores it as RGB, answers gray
            start = time.perf_counter()
            with connect() as client:
                restored = client.deblur(array)
            elapsed = time.perf_counter() - start
            write_image(job[1], restored, alpha=images[0].alpha if len(images) == 1 else None,
                        icc_profile=images[0].icc_profile)
        except SwintormerError as exc:
            log.error("%s", exc)  # one line per image; the others go on
            return exc
        log.info("wrote %s (%dx%d, %.2f s)", job[1], restored.shape[1], restored.shape[0], elapsed)
        return elapsed

    with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
        results = list(pool.map(one, jobs))
    latencies = [r for r in results if isinstance(r, float)]
    failures = [r for r in results if isinstance(r, SwintormerError)]
    if len(latencies) > 1:
        p50, p95 = np.percentile(latencies, [50, 95])
        log.info("%d images: latency p50 %.2f s, p95 %.2f s", len(latencies), p50, p95)
    if failures:
        log.info("%d of %d images written; %d failed", len(latencies), len(jobs), len(failures))
        return 2 if any(f.exit_status == 2 for f in failures) else 1
    return 0
