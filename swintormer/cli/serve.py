"""``swintormer serve``: run the bundled Triton server on a generated model repository."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve",
        help="serve a generated model repository with the bundled Triton server",
        description="Start the tritonserver bundled in nvidia-pytriton (python backend, CPU) on a repository written by "
        "`python export/build_engines.py`, wait until it is ready, and stop it cleanly on Ctrl-C or SIGTERM. "
        "For GPU deployment of a --flavour gpu repository use the NGC container (see the README).",
    )
    p.add_argument("--repository", default="model_repository", help="model repository (default model_repository/)")
    p.add_argument("--address", default="127.0.0.1", help="address to listen on (default 127.0.0.1, loopback only)")
    p.add_argument("--http-port", type=int, default=8000, help="HTTP port (default 8000)")
    p.add_argument("--grpc-port", type=int, default=8001, help="gRPC port (default 8001)")
    p.add_argument("--metrics-port", type=int, default=8002, help="Prometheus metrics port (default 8002)")
    p.add_argument("--log-verbose", type=int, default=0, help="tritonserver verbose log level (default 0)")
    p.add_argument("--log-file", default=None, help="where the server log goes (default: under the cache folder)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from swintormer.serving.server import ServerOptions, TritonServer

    options = ServerOptions(
        Path(args.repository), args.address, args.http_port, args.grpc_port, args.metrics_port, args.log_verbose,
        Path(args.log_file) if args.log_file else None,
    )
    server = TritonServer(options)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    log.info("starting tritonserver on %s (log: %s)", args.repository, server.log_path)
    server.start()
    log.info("ready: HTTP %s, gRPC %s, metrics http://%s:%d/metrics", server.http_url, server.grpc_url, args.address, args.metrics_port)
    log.info("press Ctrl-C to stop")
    while not stop.wait(1.0):
        if not server.alive():
            log.error("tritonserver exited unexpectedly:\n%s", server.log_tail())
            return 1
    log.info("stopping tritonserver")
    code = server.stop()
    log.info("stopped (exit status %s)", code)
    return 0
