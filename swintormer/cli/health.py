"""``swintormer health``: the deep health check once, for probes (exit 0 healthy, 1 not)."""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)

EPILOG = """examples:
  swintormer health --url 127.0.0.1:8000
  swintormer -q health --url 127.0.0.1:8001 --protocol grpc --dtype UINT8      # as a Kubernetes exec probe

exit status: 0 healthy, 1 unhealthy (the reason is printed), 2 a usage error.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    from swintormer.serving.dtypes import IMAGE_DTYPES

    p = subparsers.add_parser(
        "health", help="deep health check of a running server: a tiny real inference through each ensemble",
        description="Send an 8x8 image of each served dtype through its ensemble and check the answer. Unlike "
        "/v2/health/ready, this fails when a model's python stub has died.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--url", default=None, help="server address host:port (default 127.0.0.1:8000 for http, :8001 for grpc)")
    p.add_argument("--protocol", choices=("http", "grpc"), default="http", help="default http")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds for each inference (default 30)")
    p.add_argument("--dtype", choices=list(IMAGE_DTYPES), action="append", help="check only these ensembles (repeatable; default all)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from swintormer.serving.client import ServerUnavailable, parse_url
    from swintormer.serving.health import deep_check

    url = args.url or ("127.0.0.1:8000" if args.protocol == "http" else "127.0.0.1:8001")
    parse_url(url, args.protocol)  # a malformed --url is a usage error (2), not an unhealthy server
    report = deep_check(url, args.protocol, args.timeout, tuple(args.dtype) if args.dtype else None)
    if not report.healthy:
        raise ServerUnavailable(f"unhealthy: {report.detail}")
    log.info("healthy: %s in %.2f s", report.detail, report.seconds)
    return 0
