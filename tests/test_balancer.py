"""The generated HAProxy configuration: accepted by the real haproxy, and saying what the deployment relies on."""

from __future__ import annotations

import subprocess

import pytest

from swintormer.errors import SwintormerError
from swintormer.serving.balancer import BalancerOptions, Replica, haproxy_binary, haproxy_config
from swintormer.serving.replicas import MAX_REPLICAS, ReplicaSet
from swintormer.serving.server import ServerOptions, check_free, free_ports, log_tail

REPLICAS = [Replica("r0", 9100, 9101), Replica("r1", 9110, 9111)]


def _haproxy() -> str:
    try:
        return haproxy_binary()
    except SwintormerError as exc:
        pytest.skip(str(exc))


def test_haproxy_accepts_the_generated_configuration(tmp_path):
    path = tmp_path / "haproxy.cfg"
    path.write_text(haproxy_config(BalancerOptions(http_port=9000, grpc_port=9001, stats_port=9404), REPLICAS))
    res = subprocess.run([_haproxy(), "-c", "-f", str(path)], capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr


def test_every_replica_is_checked_on_its_readiness_and_grpc_goes_over_h2():
    cfg = haproxy_config(BalancerOptions(check_interval_ms=700, fall=3, rise=2), REPLICAS)
    assert "http-check send meth GET uri /v2/health/ready" in cfg
    assert "server r0 127.0.0.1:9100 check inter 700ms fall 3 rise 2" in cfg
    assert "server r1 127.0.0.1:9111 proto h2 check inter 700ms fall 3 rise 2 port 9110 check-proto h1" in cfg
    assert "bind 127.0.0.1:8001 proto h2" in cfg and "option redispatch 1" in cfg and "balance leastconn" in cfg
    assert "path_beg /v2/systemsharedmemory" in cfg and "/inference.GRPCInferenceService/SystemSharedMemory" in cfg


@pytest.mark.parametrize("kwargs", [{"check_interval_ms": 10}, {"fall": 0}, {"retries": -1}])
def test_bad_balancer_options_are_refused(kwargs):
    with pytest.raises(SwintormerError):
        BalancerOptions(**kwargs)


def test_a_balancer_needs_replicas():
    with pytest.raises(SwintormerError, match="at least one replica"):
        haproxy_config(BalancerOptions(), [])


@pytest.mark.parametrize("count", [0, MAX_REPLICAS + 1])
def test_replica_count_is_bounded(count, tmp_path):
    with pytest.raises(SwintormerError, match="--replicas must be between"):
        ReplicaSet(ServerOptions(tmp_path), count, BalancerOptions())


def test_replicas_get_distinct_ports_and_share_the_admin_key(tmp_path):
    replicas = ReplicaSet(ServerOptions(tmp_path, admin_key="k"), 4, BalancerOptions())
    ports = [p for s in replicas.servers for p in (s.options.http_port, s.options.grpc_port, s.options.metrics_port)]
    assert len(set(ports)) == 12 and {s.admin_key for s in replicas.servers} == {"k"}
    assert all(s.options.address == "127.0.0.1" for s in replicas.servers)


def test_a_taken_balancer_port_names_its_option():
    import socket

    (port,) = free_ports(1)
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        s.listen(1)
        with pytest.raises(SwintormerError, match=f"port {port} \\(--grpc-port\\).*in use"):
            check_free("127.0.0.1", [("--grpc-port", port)])


def test_log_tails_read_only_the_end_of_a_long_log(tmp_path):
    path = tmp_path / "server.log"
    path.write_text("".join(f"line {i}\n" for i in range(200_000)))  # ~2.3 MB
    assert log_tail(path, 3) == "line 199997\nline 199998\nline 199999"
    assert log_tail(path, 10**6).count("\n") < 10_000  # from the last window, not the whole file
    assert log_tail(tmp_path / "missing.log") == "(no log)"
