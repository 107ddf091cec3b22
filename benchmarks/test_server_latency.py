"""First request after the server starts, against steady state (issue 17: within 1.5x).

A fresh tritonserver on the benchmark repository (the bundled default, cpu flavour) is timed
from start to ready, then one request of each size right after ready, then ``REPEATS`` more of
the same: the network models carry ``model_warmup`` (every batch size the pipeline sends), so the
first request should not pay for sessions, arenas or first-call compilation.
"""

from __future__ import annotations

import statistics
import time

from swintormer.serving.client import DeblurClient
from swintormer.serving.server import ServerOptions, TritonServer, free_ports

from conftest import photo

BAR = 1.5


def _measure(repository, warm: bool, repeats: int) -> tuple[float, dict]:
    http, grpc, metrics = free_ports(3)
    server = TritonServer(ServerOptions(repository, http_port=http, grpc_port=grpc, metrics_port=metrics))
    start = time.perf_counter()
    server.start(timeout=300, warm=warm)
    start_s = time.perf_counter() - start
    images = {"sample (chelsea, 451x300)": photo("chelsea"), "astronaut 512x512": photo("astronaut")}
    rows = {}
    try:
        with DeblurClient(server.http_url) as client:
            for name, image in images.items():
                t0 = time.perf_counter()
                client.deblur(image)
                first = time.perf_counter() - t0
                times = []
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    client.deblur(image)
                    times.append(time.perf_counter() - t0)
                steady = statistics.median(times)
                rows[name] = {"first_s": first, "steady_median_s": steady, "steady_min_s": min(times), "ratio": first / steady}
    finally:
        server.stop()
    return start_s, rows


def test_first_request_is_close_to_steady_state(served, record, quick):
    repeats = 3 if quick else 7
    cold_start, cold = _measure(served.options.repository, False, repeats)  # model_warmup only, no warm-up requests
    start_s, rows = _measure(served.options.repository, True, repeats)
    record("server_latency", {"start_s": start_s, "requests": rows, "repeats": repeats,
                              "without_warm_up_requests": {"start_s": cold_start, "requests": cold},
                              "notes": ["a fresh server on the benchmark repository; HTTP, one client; first request right after start",
                                        "start includes one warm-up request per pipeline instance (TritonServer.start(warm=True), "
                                        "what swintormer serve does); 'without' is the same server with the networks' model_warmup only"]})
    print("\n" + "; ".join(f"{k}: first {v['first_s']:.2f} s, steady {v['steady_median_s']:.2f} s ({v['ratio']:.2f}x; "
                           f"without warm-up requests {cold[k]['ratio']:.2f}x)" for k, v in rows.items())
          + f"; start {start_s:.1f} s ({cold_start:.1f} s without)")
    for name, row in rows.items():
        assert row["ratio"] <= BAR, (name, row)
