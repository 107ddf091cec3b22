"""N supervised server replicas on loopback behind one HAProxy: ``swintormer serve --replicas N``.

Each replica is a :class:`~swintormer.serving.server.TritonServer` on ports of its own (free ports
on 127.0.0.1, never exposed) with its own :class:`~swintormer.serving.supervisor.Supervisor`;
the balancer (:mod:`swintormer.serving.balancer`) listens on the ports the user asked for and
sends each request to a healthy replica. All replicas share the operator's admin key. This is
the local picture of what ``deploy/kubernetes/`` does with pods and a Service.
"""

from __future__ import annotations

import logging
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from swintormer.errors import SwintormerError
from swintormer.serving.balancer import BalancerOptions, HAProxy, Replica
from swintormer.serving.server import ServerOptions, TritonServer, free_ports
from swintormer.serving.supervisor import Supervisor

__all__ = ["MAX_REPLICAS", "ReplicaSet"]

log = logging.getLogger(__name__)

#: more replicas than this on one machine is a mistake (each holds its own models in memory)
MAX_REPLICAS = 16


class ReplicaSet:
    """``count`` replicas of ``server`` (its repository, key, binary; ports are chosen here) behind HAProxy."""

    def __init__(self, server: ServerOptions, count: int, balancer: BalancerOptions, check_interval: float = 5.0) -> None:
        if not 1 <= count <= MAX_REPLICAS:
            raise SwintormerError(f"--replicas must be between 1 and {MAX_REPLICAS}, got {count}")
        self.admin_key = server.admin_key or secrets.token_urlsafe(24)
        self.servers: list[TritonServer] = []
        ports = free_ports(3 * count)
        for i in range(count):
            http, grpc, metrics = ports[3 * i:3 * i + 3]
            log_file = server.log_file.with_name(f"{server.log_file.stem}.r{i}{server.log_file.suffix}") if server.log_file else None
            options = replace(server, address="127.0.0.1", http_port=http, grpc_port=grpc, metrics_port=metrics,
                              admin_key=self.admin_key, log_file=log_file)
            self.servers.append(TritonServer(options))
        self.names = [f"r{i}" for i in range(count)]
        self.balancer = HAProxy(balancer, [Replica(n, s.options.http_port, s.options.grpc_port) for n, s in zip(self.names, self.servers)])
        self.check_interval = check_interval
        self.supervisors: list[Supervisor] = []

    @property
    def http_url(self) -> str:
        return self.balancer.http_url

    @property
    def grpc_url(self) -> str:
        return self.balancer.grpc_url

    def start(self, timeout: float = 300.0) -> "ReplicaSet":
        """Start every replica (loading in parallel), their supervisors, then the balancer.

        Call from the thread that will stop the set: the servers end with the thread that started them.
        """
        try:
            # launched from this thread (a server dies with the thread that launched it), loading in parallel
            for server in self.servers:
                server.launch()
            for server in self.servers:
                server.wait_ready(timeout)
            if self.check_interval:
                self.supervisors = [Supervisor(s, self.check_interval) for s in self.servers]
                for supervisor in self.supervisors:
                    supervisor.start()
            self.balancer.start()
        except BaseException:
            self.stop()
            raise
        for name, s in zip(self.names, self.servers):
            log.info("replica %s: HTTP %s, gRPC %s, metrics %s (log: %s)", name, s.http_url, s.grpc_url, s.metrics_url, s.log_path)
        return self

    def gave_up(self) -> bool:
        """True when no replica is left that its supervisor could keep alive."""
        if self.supervisors:
            return all(s.gave_up.is_set() for s in self.supervisors)
        return not any(s.alive() for s in self.servers)

    def stop(self) -> None:
        """Balancer first (it finishes the requests in flight), then supervisors and servers."""
        self.balancer.stop()
        for supervisor in self.supervisors:
            supervisor.stop()
        for supervisor in self.supervisors:
            supervisor.join(timeout=60)
        with ThreadPoolExecutor(len(self.servers)) as pool:
            list(pool.map(lambda s: s.stop(), self.servers))

    def __enter__(self) -> "ReplicaSet":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
