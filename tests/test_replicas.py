"""Horizontal scale on loopback: `swintormer serve --replicas 3` behind a real HAProxy.

16 clients (half HTTP, half gRPC) keep requests in flight through the balancer while one
replica's tritonserver is killed: no request may fail (HAProxy retries refused connections on
another replica, the client retries the 502 of a request the replica dropped), every output
equals the one before the kill bit for bit, HAProxy marks the replica DOWN and sends it nothing
while it is down, and puts it back UP once its supervisor has restarted it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from swintormer.export.deploy import DeploymentOptions, build_deployment
from swintormer.model import DeblurModel
from swintormer.serving.balancer import GRPC_BACKEND, HTTP_BACKEND, BalancerOptions, HAProxy, Replica, find_haproxy
from swintormer.serving.client import DeblurClient, RetryPolicy
from swintormer.serving.server import free_ports

from serving_helpers import TILING

pytestmark = [pytest.mark.server, pytest.mark.slow,
              pytest.mark.skipif(find_haproxy() is None, reason="haproxy is not installed (make tools installs it)")]

KEY = "replica-admin-key-5678"
REPLICAS, CLIENTS = 3, 16
IMAGE = (np.random.default_rng(3).random((240, 300, 3)) * 255).astype(np.uint8)


class Balanced:
    """`swintormer serve --replicas N` in a subprocess, its balancer's statistics and its replicas' processes."""

    def __init__(self, repo: Path, log: Path, replicas: int) -> None:
        self.log = log
        self.http, self.grpc, self.metrics, self.stats_port = free_ports(4)
        env = {**os.environ, "SWINTORMER_ADMIN_KEY": KEY, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "swintormer", "serve", "--repository", str(repo), "--replicas", str(replicas),
             "--http-port", str(self.http), "--grpc-port", str(self.grpc), "--metrics-port", str(self.metrics),
             "--stats-port", str(self.stats_port), "--check-interval", "5"],
            stdout=open(log, "wb"), stderr=subprocess.STDOUT, env=env,
        )
        # the statistics reader only: the served balancer is the CLI's
        self.stats = HAProxy(BalancerOptions(stats_port=self.stats_port), [Replica("x", 1, 1)])
        deadline = time.monotonic() + 420
        while "ready: HTTP" not in log.read_text(errors="replace"):
            assert self.process.poll() is None and time.monotonic() < deadline, log.read_text()[-4000:]
            time.sleep(0.5)
        self.replica_ports = {m[0]: int(m[1]) for m in re.findall(r"replica (r\d+): HTTP 127\.0\.0\.1:(\d+)", log.read_text())}
        assert len(self.replica_ports) == replicas, log.read_text()[-3000:]

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.http}"

    def server_pid(self, replica: str) -> int:
        """The tritonserver process of ``replica``."""
        flag = f"--http-port={self.replica_ports[replica]}".encode()
        for proc in Path("/proc").iterdir():
            try:
                args = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if proc.name.isdigit() and args and args[0].endswith(b"bin/tritonserver") and flag in args:
                return int(proc.name)
        raise AssertionError(f"no tritonserver for {replica}")

    def status(self, replica: str) -> dict[str, tuple[str, int]]:
        """``{backend: (status, sessions so far)}`` of ``replica``."""
        out = {}
        for backend in (HTTP_BACKEND, GRPC_BACKEND):
            row = self.stats.server_status(backend)[replica]
            out[backend] = (row["status"], int(row["stot"]))
        return out

    def in_flight(self, replica: str) -> dict[str, int]:
        """``{backend: requests the balancer has in flight on replica}``."""
        return {b: int(self.stats.server_status(b)[replica]["scur"]) for b in (HTTP_BACKEND, GRPC_BACKEND)}

    def stop(self) -> int:
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(90)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return -9


@pytest.fixture(scope="module")
def balanced(tmp_path_factory):
    folder = tmp_path_factory.mktemp("replicas")
    # one pipeline instance per replica: three replicas of the default fit the CI machine's memory
    build_deployment(DeblurModel.load(), folder / "repo", DeploymentOptions(tiling=TILING, pipelines=1, verify=False))
    served = Balanced(folder / "repo", folder / "serve.log", REPLICAS)
    yield served
    status = served.stop()
    print(f"\n--- swintormer serve --replicas log ---\n{(folder / 'serve.log').read_text()[-5000:]}")
    assert status == 0


def _client(url: str, protocol: str) -> DeblurClient:
    port = int(url.rsplit(":", 1)[1])
    return DeblurClient(url if protocol == "http" else f"127.0.0.1:{port}", protocol=protocol, timeout=120,
                        retry=RetryPolicy(attempts=6, backoff=0.25, max_wait=2.0))


def test_every_replica_serves_the_same_output_and_the_balancer_spreads_requests(balanced):
    with DeblurClient(balanced.url, timeout=120) as client:
        reference = client.deblur(IMAGE)
    for replica, port in balanced.replica_ports.items():
        with DeblurClient(f"127.0.0.1:{port}", timeout=120) as client:
            assert np.array_equal(client.deblur(IMAGE), reference), replica
    before = {r: balanced.status(r)[HTTP_BACKEND][1] for r in balanced.replica_ports}
    with DeblurClient(balanced.url, timeout=120) as client:
        for _ in range(2 * REPLICAS):
            assert np.array_equal(client.deblur(IMAGE), reference)
    after = {r: balanced.status(r)[HTTP_BACKEND][1] for r in balanced.replica_ports}
    assert all(after[r] > before[r] for r in after), (before, after)  # leastconn with one client: every replica in turn


def test_requests_the_balancer_cannot_route_are_refused_with_a_reason(balanced):
    req = urllib.request.Request(f"http://{balanced.url}/v2/systemsharedmemory/status", headers={"admin-key": KEY})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    assert err.value.code == 403 and b"not through the load balancer" in err.value.read()
    with DeblurClient(f"127.0.0.1:{balanced.grpc}", protocol="grpc", shared_memory=True, admin_key=KEY) as client:
        with pytest.raises(Exception, match="not through the load balancer|rejected"):
            client.deblur(IMAGE)


def test_killing_a_replica_under_load_fails_no_request(balanced):
    with DeblurClient(balanced.url, timeout=120) as client:
        reference = client.deblur(IMAGE)
    for replica in balanced.replica_ports:
        assert all(s.startswith("UP") for s, _ in balanced.status(replica).values()), balanced.status(replica)
    stop, lock = threading.Event(), threading.Lock()
    done, failures, mismatches = [], [], []

    def worker(i: int) -> None:
        protocol = "http" if i % 2 == 0 else "grpc"
        url = balanced.url if protocol == "http" else f"127.0.0.1:{balanced.grpc}"
        with _client(url, protocol) as client:
            while not stop.is_set():
                try:
                    out = client.deblur(IMAGE)
                except Exception as exc:  # the assertion below shows every one
                    with lock:
                        failures.append(f"client {i} ({protocol}): {exc}")
                    continue
                with lock:
                    done.append((time.monotonic(), protocol))
                    if not np.array_equal(out, reference):
                        mismatches.append(i)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    victim = "r1"
    try:
        deadline = time.monotonic() + 120
        while len(done) < CLIENTS and time.monotonic() < deadline:  # everyone busy: requests in flight on every replica
            time.sleep(0.2)
        assert len(done) >= CLIENTS, (len(done), failures[:3])
        while time.monotonic() < deadline and not all(balanced.in_flight(victim).values()):
            time.sleep(0.01)
        in_flight = balanced.in_flight(victim)
        os.kill(balanced.server_pid(victim), signal.SIGKILL)  # with HTTP and gRPC requests in flight on it
        killed, samples = time.monotonic(), []
        while time.monotonic() - killed < 150:
            samples.append((time.monotonic() - killed, balanced.status(victim)))
            if any(s.startswith("DOWN") for s, _ in samples[-1][1].values()) and len([d for d in done if d[0] > killed]) >= 2 * CLIENTS:
                break
            time.sleep(0.2)
        # back in service once its supervisor restarted it
        back = None
        while time.monotonic() - killed < 240:
            status = balanced.status(victim)
            samples.append((time.monotonic() - killed, status))
            if all(s.startswith("UP") for s, _ in status.values()):
                back = time.monotonic() - killed
                break
            time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=180)
    after = [d for d in done if d[0] > killed]
    assert all(in_flight.values()), in_flight
    print(f"\n{len(done)} requests, {len(after)} after the kill, {in_flight} in flight on {victim} when it was killed ({sum(p == 'grpc' for _, p in after)} over gRPC); "
          f"{victim} back UP after {back} s")
    assert not failures, failures[:5]
    assert not mismatches
    assert len(after) >= 2 * CLIENTS and {p for _, p in after} == {"http", "grpc"}
    down = [(t, s) for t, s in samples if all(v.startswith("DOWN") for v, _ in s.values())]
    assert down and down[0][0] < 10, samples[:20]  # marked down within seconds (2 checks 1 s apart)
    # while it is down, the balancer sends it nothing
    for backend in (HTTP_BACKEND, GRPC_BACKEND):
        sessions = {s[backend][1] for _, s in down}
        assert len(sessions) == 1, (backend, sorted(sessions))
    assert back is not None, samples[-5:]
