"""``swintormer serve``: run the bundled Triton server on a generated repository, and keep it healthy."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)

EPILOG = """examples:
  swintormer serve --repository model_repository
  SWINTORMER_ADMIN_KEY=... swintormer serve --address 0.0.0.0 --http-port 8010
  swintormer serve --replicas 3          # three servers behind HAProxy on 8000/8001

While it runs, a deep health check (a tiny real inference through each ensemble, every
--check-interval seconds and right after any failed request) watches the server. A broken model
is unloaded, so the server's own /v2/health/ready turns false and load balancers stop sending
traffic, then loaded again; if that fails tritonserver is restarted. `swintormer health --url
ADDRESS` runs the same check once (exit 0/1), for exec probes.

With --replicas N, N such servers (each supervised, on loopback ports of their own) run behind
HAProxy (`apt-get install haproxy`), which listens on --http-port/--grpc-port, checks every
replica's /v2/health/ready each second, stops routing to one that fails it and retries refused
connections on another; its statistics are on --stats-port (/stats, /metrics for Prometheus).

The shared-memory, model-repository, logging, trace and statistics APIs need the header
`admin-key: KEY`; the key is --admin-key, else $SWINTORMER_ADMIN_KEY, else generated and printed.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve",
        help="serve a generated model repository with the bundled Triton server",
        description="Start the tritonserver bundled in nvidia-pytriton (python backend, CPU) on a repository written by "
        "`python export/build_engines.py`, wait until it is ready, supervise it, and stop it cleanly on Ctrl-C or "
        "SIGTERM. For GPU deployment of a --flavour gpu repository use the NGC container (see the README).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--repository", default="model_repository", help="model repository (default model_repository/)")
    p.add_argument("--address", default="127.0.0.1", help="address to listen on (default 127.0.0.1, loopback only)")
    p.add_argument("--http-port", type=int, default=8000, help="HTTP port (default 8000)")
    p.add_argument("--grpc-port", type=int, default=8001, help="gRPC port (default 8001)")
    p.add_argument("--metrics-port", type=int, default=8002, help="Prometheus metrics port (default 8002)")
    p.add_argument("--admin-key", default=os.environ.get("SWINTORMER_ADMIN_KEY"),
                   help="key of the restricted APIs (default $SWINTORMER_ADMIN_KEY, else a generated one)")
    p.add_argument("--replicas", type=int, default=1,
                   help="run N servers behind HAProxy on the ports above (default 1: one server, no balancer)")
    p.add_argument("--stats-port", type=int, default=8404,
                   help="with --replicas: HAProxy's statistics (/stats) and Prometheus (/metrics) port, loopback (default 8404)")
    p.add_argument("--check-interval", type=float, default=5.0, help="seconds between deep health checks (default 5; 0 = off)")
    p.add_argument("--tritonserver", default=None, metavar="PATH",
                   help="run this tritonserver binary (e.g. NVIDIA's container: /opt/tritonserver/bin/tritonserver) "
                   "instead of the one nvidia-pytriton bundles")
    p.add_argument("--backend-directory", default=None, metavar="DIR",
                   help="its backends folder (default: ../backends beside the binary)")
    p.add_argument("--log-verbose", type=int, default=0, help="tritonserver verbose log level (default 0)")
    p.add_argument("--log-file", default=None, help="where the server log goes (default: under the cache folder)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from swintormer.errors import SwintormerError
    from swintormer.serving.server import ServerOptions, TritonServer
    from swintormer.serving.supervisor import Supervisor

    if args.check_interval < 0:
        raise SwintormerError("--check-interval must be >= 0 seconds")
    options = ServerOptions(
        Path(args.repository), args.address, args.http_port, args.grpc_port, args.metrics_port, args.log_verbose,
        Path(args.log_file) if args.log_file else None, args.admin_key,
        Path(args.tritonserver) if args.tritonserver else None, Path(args.backend_directory) if args.backend_directory else None,
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    if args.replicas != 1:
        return _run_replicas(args, options, stop)
    server = TritonServer(options)
    log.info("starting tritonserver on %s (log: %s)", args.repository, server.log_path)
    server.start()
    if not args.admin_key:
        log.info("admin key (restricted APIs: shared memory, model control, logs): %s  "
                 "(set SWINTORMER_ADMIN_KEY to choose it)", server.admin_key)
    log.info("ready: HTTP %s, gRPC %s, metrics %s", server.http_url, server.grpc_url, server.metrics_url)
    supervisor = Supervisor(server, args.check_interval) if args.check_interval else None
    if supervisor:
        supervisor.start()
        log.info("deep health check every %g s; press Ctrl-C to stop", args.check_interval)

    def failure() -> str | None:
        if supervisor is not None and supervisor.gave_up.is_set():
            return "the server could not be recovered; stopping"
        if supervisor is None and not server.alive():
            return f"tritonserver exited unexpectedly:\n{server.log_tail()}"
        return None

    code = _watch(stop, failure)
    if supervisor is not None:
        supervisor.stop()
        supervisor.join(timeout=60)
    log.info("stopping tritonserver")
    status = server.stop()
    log.info("stopped (exit status %s)", status)
    return code


def _run_replicas(args: argparse.Namespace, options, stop: threading.Event) -> int:
    from swintormer.serving.balancer import BalancerOptions
    from swintormer.serving.replicas import ReplicaSet

    balancer = BalancerOptions(args.address, args.http_port, args.grpc_port, args.stats_port)
    replicas = ReplicaSet(options, args.replicas, balancer, args.check_interval)
    log.info("starting %d tritonserver replicas on %s behind HAProxy", args.replicas, args.repository)
    replicas.start()
    if not args.admin_key:
        log.info("admin key (restricted APIs, every replica): %s  (set SWINTORMER_ADMIN_KEY to choose it)", replicas.admin_key)
    log.info("ready: HTTP %s, gRPC %s through HAProxy (statistics: %s, config: %s)", replicas.http_url, replicas.grpc_url,
             replicas.balancer.stats_url, replicas.balancer.config_path)

    def failure() -> str | None:
        if replicas.gave_up():
            return "no replica could be kept alive; stopping"
        if not replicas.balancer.alive():
            return f"haproxy exited unexpectedly:\n{replicas.balancer.log_tail()}"
        return None

    code = _watch(stop, failure)
    log.info("stopping the balancer and %d replicas", args.replicas)
    replicas.stop()
    return code


def _watch(stop: threading.Event, failure: Callable[[], str | None]) -> int:
    """Wait for a stop signal (0) or, checked every second, a ``failure()`` message (logged; 1)."""
    while not stop.wait(1.0):
        message = failure()
        if message:
            log.error("%s", message)
            return 1
    return 0
