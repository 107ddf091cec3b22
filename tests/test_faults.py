"""Faults and hostile clients against a real `swintormer serve` (the bundled tritonserver, loopback only).

Each python stub is killed in turn (idle, and with a request in flight) and then the server
process itself: Triton's own /v2/health/ready, what load balancers and Kubernetes read, must turn
false within 10 s and true again within 60 s, and the output afterwards must equal the one
before, bit for bit. Composing models called directly with forged inputs answer 400 within a
second without the server's memory growing; admin APIs need the key.
"""

from __future__ import annotations

import os
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

from swintormer.serving.client import DeblurClient
from swintormer.serving.server import free_port

from serving_helpers import build_repository

pytestmark = [pytest.mark.server, pytest.mark.slow]

KEY = "test-admin-key-1234"


class Served:
    """`swintormer serve` in a subprocess: its ports, its log, and the processes behind it."""

    def __init__(self, repo: Path, log: Path) -> None:
        self.repo, self.log = repo, log
        self.http, self.grpc, self.metrics = free_port(), free_port(), free_port()
        env = {**os.environ, "SWINTORMER_ADMIN_KEY": KEY, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "swintormer", "serve", "--repository", str(repo), "--http-port", str(self.http),
             "--grpc-port", str(self.grpc), "--metrics-port", str(self.metrics), "--check-interval", "5"],
            stdout=open(log, "wb"), stderr=subprocess.STDOUT, env=env,
        )
        self.url = f"127.0.0.1:{self.http}"
        deadline = time.monotonic() + 240
        # ready, warmed up and supervised (the supervisor starts after the warm-up requests)
        while not self.ready() or "deep health check every" not in log.read_text(errors="replace"):
            assert self.process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.url}/v2/health/ready", timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def pids(self, marker: str) -> list[int]:
        """Processes whose command line holds ``marker`` and this repository."""
        found = []
        for proc in Path("/proc").iterdir():
            try:
                args = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                state = (proc / "stat").read_text().rsplit(")", 1)[-1].split()[0]
            except OSError:
                continue
            if proc.name.isdigit() and marker in args and str(self.repo) in args and state != "Z":
                found.append(int(proc.name))
        return found

    def rss_mb(self) -> float:
        """Summed resident memory of tritonserver and its stubs."""
        total = 0
        for pid in self.pids("bin/tritonserver") + self.pids("triton_python_backend_stub"):
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            total += int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS")))
        return total / 1024

    def recoveries(self) -> int:
        """How many recoveries the supervisor has logged."""
        return self.log.read_text(errors="replace").count("recovered in")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faults")
    build_repository(None, folder / "repo")
    server = Served(folder / "repo", folder / "serve.log")
    yield server
    server.stop()
    print(f"\n--- swintormer serve log ---\n{(folder / 'serve.log').read_text()[-4000:]}")


IMAGE = (np.random.default_rng(0).random((300, 420, 3)) * 255).astype(np.uint8)


def _deblur(server: Served, image: np.ndarray = IMAGE) -> np.ndarray:
    with DeblurClient(server.url, timeout=120) as client:
        return client.deblur(image)


def _watch_readiness(server: Served, since: float, recoveries: int) -> tuple[float | None, float | None]:
    """Seconds after ``since`` at which readiness went false, and then true again (None: never);
    then waits for the supervisor to log this recovery (``recoveries`` were logged before)."""
    went_false = back = None
    while time.monotonic() - since < 75:
        ready = server.ready()
        if not ready and went_false is None:
            went_false = time.monotonic() - since
        if ready and went_false is not None:
            back = time.monotonic() - since
            break
        time.sleep(0.2)
    while server.recoveries() <= recoveries and time.monotonic() - since < 90:
        time.sleep(0.2)
    return went_false, back


@pytest.fixture(scope="module")
def reference(served):
    return _deblur(served)


@pytest.mark.parametrize("stub", ["pipeline_0_0", "pipeline_0_1", "restorer_0_0"])
def test_killed_stub_turns_readiness_false_then_recovers(served, reference, stub):
    (pid,) = served.pids(f" {stub} ")
    recoveries = served.recoveries()
    os.kill(pid, signal.SIGKILL)
    went_false, back = _watch_readiness(served, time.monotonic(), recoveries)
    assert went_false is not None and went_false <= 10, (stub, went_false)
    assert back is not None and back <= 60, (stub, back)
    assert np.array_equal(_deblur(served), reference)
    assert served.pids(f" {stub} ") and served.pids(f" {stub} ") != [pid]
    assert len(served.pids("triton_python_backend_stub")) == 3, "a stub the reload left behind would hold its memory"


def test_killed_stub_with_a_request_in_flight(served, reference):
    big = (np.random.default_rng(1).random((1000, 1000, 3)) * 255).astype(np.uint8)  # 25 tiles: seconds of work
    outcome = {}
    worker = threading.Thread(target=lambda: outcome.update(result=_try(lambda: _deblur(served, big))))
    worker.start()
    time.sleep(1.5)
    (pid,) = served.pids(" restorer_0_0 ")
    recoveries = served.recoveries()
    os.kill(pid, signal.SIGKILL)
    went_false, back = _watch_readiness(served, time.monotonic(), recoveries)
    worker.join(120)
    assert went_false is not None and went_false <= 10 and back is not None and back <= 60, (went_false, back)
    assert "result" in outcome  # the request in flight ended (an error response, or its image): it did not hang
    assert np.array_equal(_deblur(served), reference)


def _try(fn):
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - the test records whatever ended the request
        return exc


def test_killed_server_process_is_restarted(served, reference):
    (pid,) = served.pids("bin/tritonserver")
    recoveries = served.recoveries()
    os.kill(pid, signal.SIGKILL)
    went_false, back = _watch_readiness(served, time.monotonic(), recoveries)
    assert went_false is not None and went_false <= 10 and back is not None and back <= 60, (went_false, back)
    assert np.array_equal(_deblur(served), reference)
    log = served.log.read_text()
    assert "recovered in" in log and "restarting tritonserver" in log


def test_deep_health_command(served):
    res = subprocess.run([sys.executable, "-m", "swintormer", "health", "--url", served.url], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "healthy: deblur_uint8, deblur_uint16, deblur_fp32 answered" in res.stderr, res.stderr
    res = subprocess.run([sys.executable, "-m", "swintormer", "health", "--url", f"127.0.0.1:{free_port()}"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 1 and res.stderr.count("error:") == 1 and "unhealthy" in res.stderr, res.stderr


def _raw(server: Served, model: str, tensors: dict[str, np.ndarray]):
    import tritonclient.http as h

    client = h.InferenceServerClient(server.url)
    try:
        inputs = []
        for name, array in tensors.items():
            kind = "BYTES" if array.dtype == object else {"uint8": "UINT8", "float32": "FP32", "int64": "INT64", "int32": "INT32"}[array.dtype.name]
            inp = h.InferInput(name, list(array.shape), kind)
            inp.set_data_from_numpy(array, binary_data=True)
            inputs.append(inp)
        return client.infer(model, inputs)
    finally:
        client.close()


def test_models_called_directly_refuse_forged_inputs_fast_and_without_memory(served):
    """The pipeline (what the ensembles call) and the network models, sent what no client of the
    ensembles would send: 400s within a second, and the server does not grow."""
    from tritonclient.utils import InferenceServerException

    cases = [
        ("pipeline", {"IMAGE_UINT8": IMAGE, "LAYOUT": np.array([b"\xff\xfe"], dtype=object)}, "ASCII"),
        ("pipeline", {"IMAGE_UINT8": np.zeros((8, 120000, 3), np.uint8)}, "padded to whole"),
        ("pipeline", {"IMAGE_FP32": np.full((16, 16, 3), np.inf, np.float32)}, "infinite"),
        ("pipeline", {"LAYOUT": np.array([b"HWC"], dtype=object)}, "no IMAGE"),
        ("restorer", {"image": np.zeros((9, 3, 256, 256), np.float32)}, "batch"),
        ("restorer", {"image": np.zeros((1, 3, 128, 128), np.float32)}, "unexpected shape"),
    ]
    before = served.rss_mb()
    for model, tensors, needle in cases:
        start = time.perf_counter()
        with pytest.raises(InferenceServerException) as err:
            _raw(served, model, tensors)
        elapsed = time.perf_counter() - start
        assert needle in err.value.message() and err.value.status() == "400", (model, err.value.status(), err.value.message())
        assert elapsed < 1.0, (model, elapsed)
    growth = served.rss_mb() - before
    assert growth < 100, f"the server grew by {growth:.0f} MB answering forged requests"
    assert served.ready() and np.array_equal(_deblur(served), _deblur(served))


def test_admin_apis_need_the_key(served):
    import tritonclient.http as h
    from tritonclient.utils import InferenceServerException

    from swintormer.errors import SwintormerError

    client = h.InferenceServerClient(served.url)
    try:
        for call in (lambda: client.register_system_shared_memory("x", "/triton_python_backend_shm_region_x", 64),
                     lambda: client.update_log_settings({"log_verbose_level": 1}),
                     lambda: client.unload_model("restorer"), lambda: client.get_inference_statistics()):
            with pytest.raises(InferenceServerException) as err:
                call()
            assert err.value.status() == "403" and "admin-key" in err.value.message()
    finally:
        client.close()
    with DeblurClient(served.url, shared_memory=True) as anonymous:
        with pytest.raises(SwintormerError, match="--admin-key"):
            anonymous.deblur(IMAGE)
    with DeblurClient(served.url, shared_memory=True, admin_key=KEY) as operator:
        assert np.array_equal(operator.deblur(IMAGE), _deblur(served))


def test_serve_on_a_port_in_use_is_one_error_line(served, tmp_path):
    res = subprocess.run([sys.executable, "-m", "swintormer", "serve", "--repository", str(served.repo),
                          "--http-port", str(served.http), "--grpc-port", str(free_port()), "--metrics-port", str(free_port())],
                         capture_output=True, text=True, timeout=60)
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert res.returncode == 2 and len(errors) == 1, res.stderr
    assert f"port {served.http} (--http-port)" in errors[0] and "already in use" in errors[0]
    assert served.ready()  # and ours is untouched


def test_shared_memory_regions_are_removed_on_exit(tmp_path):
    """A server that crashes leaves nothing in /dev/shm; a killed `serve` takes its server with it,
    and the next launcher removes what they left."""
    from swintormer.serving.server import ServerOptions, TritonServer, remove_stale_regions

    repo = tmp_path / "repo"
    build_repository(None, repo)
    server = TritonServer(ServerOptions(repo, http_port=free_port(), grpc_port=free_port(), metrics_port=free_port())).start(timeout=240)
    assert list(Path("/dev/shm").glob(f"{server.shm_prefix}*"))
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait()
    server.stop()
    assert not list(Path("/dev/shm").glob(f"{server.shm_prefix}*"))
    serve = Served(repo, tmp_path / "serve.log")
    regions = list(Path("/dev/shm").glob(f"swintormer_py{serve.process.pid}_*"))
    assert regions
    serve.process.kill()
    serve.process.wait()
    deadline = time.monotonic() + 10
    while serve.pids("bin/tritonserver") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not serve.pids("bin/tritonserver")  # it died with its launcher
    removed = remove_stale_regions()
    assert {r.name for r in regions} <= set(removed) and not any(r.exists() for r in regions)


def _client(served: Served, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "swintormer", "client", *args, "--url", served.url], capture_output=True,
                          text=True, timeout=300)


def test_every_message_arrives_from_concurrent_client_workers(served, tmp_path, rocket):
    """A folder with one damaged image at --concurrency 4, five times: each run says everything."""
    from swintormer.imageio import write_image

    src = tmp_path / "in"
    for i in range(5):
        write_image(src / f"p{i}.png", rocket[i * 20 : i * 20 + 90, i * 30 : i * 30 + 120])
    (src / "p9.png").write_bytes((src / "p0.png").read_bytes()[:300])  # truncated
    for run in range(5):
        res = _client(served, str(src), "-o", str(tmp_path / "out"), "--concurrency", "4", "--overwrite")
        errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
        wrote = [line for line in res.stderr.splitlines() if line.startswith("wrote ")]
        assert res.returncode == 2 and len(errors) == 1 and "p9.png is a truncated PNG" in errors[0], (run, res.stderr)
        assert len(wrote) == 5 and "5 of 6 images written; 1 failed" in res.stderr, (run, res.stderr)
    (src / "p9.png").unlink()
    res = _client(served, str(src), "-o", str(tmp_path / "out2"), "--concurrency", "3")
    assert res.returncode == 0 and res.stderr.count("wrote ") == 5, res.stderr


def test_client_exit_statuses_against_the_real_server(served, tmp_path, rocket):
    from swintormer.imageio import write_image

    path = write_image(tmp_path / "small.png", rocket[:9, :9])
    res = _client(served, str(path), "-o", str(tmp_path / "o.png"))
    assert res.returncode == 0, res.stderr
    tiny = write_image(tmp_path / "tiny.png", rocket[:8, :7].repeat(1, axis=0))
    res = _client(served, str(tiny), "-o", str(tmp_path / "t.png"))
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert res.returncode == 2 and len(errors) == 1, res.stderr  # a bad image is the caller's: 2, not 1


def test_the_server_stopping_mid_request_is_one_error_line(served, tmp_path):
    """Last in this module: it stops the server."""
    from swintormer.imageio import write_image

    big = write_image(tmp_path / "big.png", (np.random.default_rng(2).random((1000, 1000, 3)) * 255).astype(np.uint8))
    client = subprocess.Popen([sys.executable, "-m", "swintormer", "client", str(big), "-o", str(tmp_path / "b.png"), "--url", served.url],
                              stderr=subprocess.PIPE, text=True)
    time.sleep(2.5)  # the request is in the restorer by now (25 tiles take several seconds)
    for pid in served.pids("bin/tritonserver"):
        os.kill(pid, signal.SIGKILL)
    served.stop()
    _, err = client.communicate(timeout=120)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert client.returncode == 1 and len(errors) == 1 and "Traceback" not in err, err
    assert not (tmp_path / "b.png").exists()
