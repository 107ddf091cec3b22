"""HAProxy in front of server replicas: HTTP and gRPC, active health checks, retries elsewhere.

The load balancer is Debian's ``haproxy`` (``apt-get install haproxy``), run as a child process
on a configuration generated here from :class:`BalancerOptions` and the replicas' addresses:

- one HTTP frontend (HTTP/1.1) and one gRPC frontend (HTTP/2 cleartext, ``proto h2`` on both
  sides), each balancing ``leastconn`` over every replica: requests are long, so the replica with
  the fewest in flight gets the next one;
- an active health check of every replica every ``check_interval_ms``: ``GET /v2/health/ready``
  on its HTTP port, which turns false as soon as the replica's supervisor finds a broken model in
  its deep check (an unloaded model fails Triton's strict readiness) and while it restarts; after
  ``fall`` failures the replica is taken out, after ``rise`` successes put back;
- a failed connection is retried ``retries`` times, the last ones on another replica
  (``option redispatch``); a request the replica dropped mid-way comes back as 502 (gRPC
  UNAVAILABLE), which :class:`~swintormer.serving.client.DeblurClient` retries;
- shared memory and model control, which act on one server, are refused (403) with a message;
- a stats page (``/stats``, ``/stats;csv``) and HAProxy's Prometheus exporter (``/metrics``) on
  ``stats_port``, loopback only.
"""

from __future__ import annotations

import csv
import io
import logging
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from swintormer.errors import SwintormerError
from swintormer.serving.server import Listening, check_free, log_tail

__all__ = ["BalancerOptions", "HAProxy", "Replica", "find_haproxy", "haproxy_binary", "haproxy_config"]

log = logging.getLogger(__name__)

HTTP_BACKEND, GRPC_BACKEND = "replicas_http", "replicas_grpc"
#: APIs that act on one server: through the balancer they would reach a random replica
PER_REPLICA = {"http": ("/v2/systemsharedmemory", "/v2/cudasharedmemory", "/v2/repository"),
               "grpc": tuple(f"/inference.GRPCInferenceService/{m}" for m in ("SystemSharedMemory", "CudaSharedMemory", "Repository"))}
PER_REPLICA_MESSAGE = ("shared memory and model control act on one server, not through the load balancer: "
                       "send the image in the request, or call a replica's own port (see the serve log)")


@dataclass(frozen=True)
class Replica:
    """One server behind the balancer (always on loopback here)."""

    name: str
    http_port: int
    grpc_port: int
    address: str = "127.0.0.1"


@dataclass(frozen=True)
class BalancerOptions:
    """Where the balancer listens and how it judges replicas."""

    address: str = "127.0.0.1"
    http_port: int = 8000
    grpc_port: int = 8001
    stats_port: int = 8404
    check_interval_ms: int = 1000
    fall: int = 2
    rise: int = 2
    retries: int = 3
    connect_timeout_s: float = 2.0
    #: a request may take this long (a 16 MP image on two CPU cores takes about a minute)
    request_timeout_s: float = 600.0
    max_connections: int = 1024

    def __post_init__(self) -> None:
        if self.check_interval_ms < 100:
            raise SwintormerError(f"check interval must be at least 100 ms, got {self.check_interval_ms}")
        if self.fall < 1 or self.rise < 1 or self.retries < 0:
            raise SwintormerError("fall and rise must be >= 1 and retries >= 0")


def haproxy_config(options: BalancerOptions, replicas: list[Replica]) -> str:
    """The complete ``haproxy.cfg`` for ``replicas`` behind ``options``' frontends."""
    if not replicas:
        raise SwintormerError("a load balancer needs at least one replica")
    o = options
    check = f"check inter {o.check_interval_ms}ms fall {o.fall} rise {o.rise}"
    lines = [
        "global",
        f"    maxconn {o.max_connections}",
        "    log stderr format short local0 notice",
        "",
        "defaults",
        "    mode http",
        "    log global",
        "    option dontlognull",
        f"    timeout connect {int(o.connect_timeout_s * 1000)}ms",
        f"    timeout client {int(o.request_timeout_s)}s",
        f"    timeout server {int(o.request_timeout_s)}s",
        f"    timeout check {int(o.connect_timeout_s * 1000)}ms",
        f"    retries {o.retries}",
        "    option redispatch 1",
        # L7 retries for what never reached a replica's model; bodies above one buffer are not
        # replayed by HAProxy (large images), the client retries those on the 502 it gets
        "    retry-on conn-failure empty-response 503",
        "    option httpchk",
        "    http-check send meth GET uri /v2/health/ready",
        "    http-check expect status 200",
        "",
        "frontend http_in",
        f"    bind {o.address}:{o.http_port}",
        f"    http-request return status 403 content-type text/plain string \"{PER_REPLICA_MESSAGE}\" "
        f"if {{ path_beg {' '.join(PER_REPLICA['http'])} }}",
        f"    default_backend {HTTP_BACKEND}",
        "",
        "frontend grpc_in",
        f"    bind {o.address}:{o.grpc_port} proto h2",
        f"    http-request return status 403 content-type text/plain string \"{PER_REPLICA_MESSAGE}\" "
        f"if {{ path_beg {' '.join(PER_REPLICA['grpc'])} }}",
        f"    default_backend {GRPC_BACKEND}",
        "",
        f"backend {HTTP_BACKEND}",
        "    balance leastconn",
        *(f"    server {r.name} {r.address}:{r.http_port} {check}" for r in replicas),
        "",
        f"backend {GRPC_BACKEND}",
        "    balance leastconn",
        # the check goes to the replica's HTTP port over HTTP/1.1, the traffic over h2
        *(f"    server {r.name} {r.address}:{r.grpc_port} proto h2 {check} port {r.http_port} check-proto h1" for r in replicas),
        "",
        "frontend stats",
        f"    bind 127.0.0.1:{o.stats_port}",
        "    http-request use-service prometheus-exporter if { path /metrics }",
        "    stats enable",
        "    stats uri /stats",
        "    stats refresh 5s",
        "",
    ]
    return "\n".join(lines)


def find_haproxy() -> str | None:
    """The ``haproxy`` executable on PATH or where Debian puts it (sbin, often off a user's PATH)."""
    return shutil.which("haproxy") or next((p for p in ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy") if Path(p).is_file()), None)


def haproxy_binary() -> str:
    """The ``haproxy`` executable, or one clear error saying how to install it."""
    path = find_haproxy()
    if path is None:
        raise SwintormerError("haproxy is not installed: `apt-get install haproxy` (Debian/Ubuntu) or `make tools`")
    return path


class HAProxy(Listening):
    """A running ``haproxy`` on a generated configuration (a context manager)."""

    def __init__(self, options: BalancerOptions, replicas: list[Replica]) -> None:
        self.options, self.replicas = options, list(replicas)
        self.process: subprocess.Popen | None = None
        self._dir = Path(tempfile.mkdtemp(prefix="swintormer-haproxy-"))
        self.config_path = self._dir / "haproxy.cfg"
        self.log_path = self._dir / "haproxy.log"

    @property
    def stats_url(self) -> str:
        return f"http://127.0.0.1:{self.options.stats_port}/stats"

    def start(self, timeout: float = 15.0) -> "HAProxy":
        binary = haproxy_binary()
        o = self.options
        check_free(o.address, [("--http-port", o.http_port), ("--grpc-port", o.grpc_port)])
        check_free("127.0.0.1", [("--stats-port", o.stats_port)])
        self.config_path.write_text(haproxy_config(self.options, self.replicas))
        checked = subprocess.run([binary, "-c", "-q", "-f", str(self.config_path)], capture_output=True, text=True, timeout=30)
        if checked.returncode != 0:
            raise SwintormerError(f"haproxy rejected the generated configuration {self.config_path}:\n{checked.stderr.strip()}")
        # -db: stay in the foreground, this process supervises it
        self.process = subprocess.Popen([binary, "-db", "-f", str(self.config_path)], stdout=self.log_path.open("ab"),
                                        stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SwintormerError(f"haproxy exited with status {self.process.returncode}:\n{self.log_tail()}")
            try:
                self.stats()
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise SwintormerError(f"haproxy did not answer on its stats port within {timeout:g} s:\n{self.log_tail()}")

    def stats(self) -> list[dict[str, str]]:
        """HAProxy's CSV statistics: one row per frontend, backend and server."""
        with urllib.request.urlopen(self.stats_url + ";csv", timeout=5) as resp:
            text = resp.read().decode()
        return list(csv.DictReader(io.StringIO(text.lstrip("# "))))

    def server_status(self, backend: str = HTTP_BACKEND) -> dict[str, dict[str, str]]:
        """``{replica name: its stats row}`` in ``backend``; ``row["status"]`` is UP, DOWN, ..."""
        return {row["svname"]: row for row in self.stats() if row["pxname"] == backend and row["svname"] not in ("FRONTEND", "BACKEND")}

    def log_tail(self, lines: int = 30) -> str:
        return log_tail(self.log_path, lines)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> int | None:
        """Stop haproxy (SIGUSR1: finish the requests in flight, then exit; killed after 15 s)."""
        if self.process is None:
            shutil.rmtree(self._dir, ignore_errors=True)
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGUSR1)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.returncode == 0:  # a failed balancer keeps its config and log for the operator
            shutil.rmtree(self._dir, ignore_errors=True)
        return self.process.returncode

    def __enter__(self) -> "HAProxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
