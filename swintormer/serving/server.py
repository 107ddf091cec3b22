"""Start the ``tritonserver`` that ``nvidia-pytriton`` bundles, on a generated repository.

The bundled server has only the python backend and runs on a CPU-only machine, given the
shared libraries shipped beside it (``nvidia_pytriton.libs``) and the python backend stub built
for the running Python copied into a backend folder (docs/architecture.md, "Reference facts").
The stub finds this environment's packages because this environment's ``bin`` goes first on
``PATH``.

How it is run, for a deployment that has to survive faults and hostile clients:

- its ports are checked before it starts, and readiness is accepted only from the process with
  this launcher's ``--id`` (another server on the port is not mistaken for ours);
- models are loaded explicitly (``--model-control-mode=explicit``), so a model whose python stub
  died can be unloaded (the server then reports not ready, with ``--strict-readiness``) and
  loaded again (:mod:`swintormer.serving.supervisor`);
- the shared-memory, model-repository, logging, trace and statistics APIs are restricted to
  requests carrying the ``admin-key`` header (HTTP and gRPC) with the operator's key;
- the python backend's shared-memory regions carry a prefix naming this process, and are removed
  when the server exits, whether it stopped or crashed; regions left by a launcher that was
  killed are removed the next time one starts.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

from swintormer.errors import SwintormerError

__all__ = ["ADMIN_APIS", "ServerOptions", "TritonServer", "check_free", "check_ports", "free_port", "free_ports", "log_tail"]

log = logging.getLogger(__name__)

#: Seconds Triton waits for in-flight requests on shutdown before unloading anyway.
EXIT_TIMEOUT = 10
#: The APIs only the operator may call (HTTP names; gRPC's are the same).
ADMIN_APIS = ("shared-memory", "model-repository", "logging", "trace", "statistics")
SHM_DIR = Path("/dev/shm")
SHM_DEFAULT_BYTES = 16 * 2**20
_SHM_PREFIX = re.compile(r"^swintormer_py(\d+)_")


@dataclass(frozen=True)
class ServerOptions:
    """Where the server listens and how. ``admin_key`` None: one is generated (``TritonServer.admin_key``)."""

    repository: Path
    address: str = "127.0.0.1"
    http_port: int = 8000
    grpc_port: int = 8001
    metrics_port: int = 8002
    log_verbose: int = 0
    log_file: Path | None = None
    admin_key: str | None = None
    #: another tritonserver binary and its backends folder (NVIDIA's container: /opt/tritonserver/...)
    #: instead of the one nvidia-pytriton bundles
    tritonserver: Path | None = None
    backend_directory: Path | None = None


def free_port(address: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def free_ports(count: int, address: str = "127.0.0.1") -> list[int]:
    """``count`` distinct TCP ports nothing listens on right now."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            s = stack.enter_context(socket.socket())
            s.bind((address, 0))
            ports.append(s.getsockname()[1])
        return ports


def check_ports(options: ServerOptions) -> None:
    """Raise one clear error naming the option if any of the server's ports is taken."""
    check_free(options.address, [("--http-port", options.http_port), ("--grpc-port", options.grpc_port),
                                 ("--metrics-port", options.metrics_port)])


def log_tail(path: Path, lines: int = 40, window: int = 64 * 1024) -> str:
    """The last ``lines`` lines of a log file (read from its last ``window`` bytes only: a server
    log grows for weeks), or ``"(no log)"`` when it cannot be read."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - window))
            text = f.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def check_free(address: str, ports: list[tuple[str, int]]) -> None:
    """Raise one clear error naming the option if any ``(option, port)`` on ``address`` is taken."""
    for option, port in ports:
        with socket.socket() as s:
            # SO_REUSEADDR as the server itself binds: connections of a server that just died (in
            # TIME_WAIT) do not count, a process listening on the port does
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((address, port))
                s.listen(1)
            except OSError as exc:
                what = "is already in use" if exc.errno == errno.EADDRINUSE else f"cannot be used ({exc.strerror})"
                raise SwintormerError(f"port {port} ({option}) on {address} {what}; stop what holds it or choose "
                                      f"another with {option}") from None


def _pytriton_dirs() -> tuple[Path, Path]:
    """``(tritonserver folder, bundled shared libraries)`` inside the installed nvidia-pytriton."""
    try:
        import pytriton
    except ImportError:
        raise SwintormerError("the bundled Triton server needs nvidia-pytriton: pip install 'swintormer[serve]'") from None
    root = Path(pytriton.__file__).resolve().parent
    server = root / "tritonserver"
    libs = root.parent / "nvidia_pytriton.libs"
    if not (server / "bin" / "tritonserver").is_file():
        raise SwintormerError(f"no tritonserver binary under {server}")
    return server, libs


def _backend_dir(server: Path) -> Path:
    """A backends folder whose python backend has the stub for this Python (built once, cached)."""
    from swintormer.export.cache import cache_root

    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = server / "python_backend_stubs" / version / "triton_python_backend_stub"
    if not stub.is_file():
        raise SwintormerError(f"nvidia-pytriton ships no python backend stub for Python {version}")
    target = cache_root() / "tritonserver" / f"backends-py{version}" / "python"
    target.mkdir(parents=True, exist_ok=True)
    for src in [*(server / "backends" / "python").iterdir(), stub]:
        dst = target / src.name
        if src.is_file() and (not dst.exists() or dst.stat().st_size != src.stat().st_size):
            shutil.copy2(src, dst)
    return target.parent


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_regions() -> list[str]:
    """Remove the python-backend shared-memory regions of launchers that are no longer running."""
    removed = []
    for entry in SHM_DIR.glob("swintormer_py*"):
        m = _SHM_PREFIX.match(entry.name)
        if m and not _pid_alive(int(m.group(1))):
            entry.unlink(missing_ok=True)
            removed.append(entry.name)
    return removed


def _die_with_parent() -> None:
    """In the child: get SIGKILL when the launcher dies, so a killed launcher leaves no server behind.

    (Linux ties this to the thread that started the child: servers are started from the thread
    that lives as long as the launcher, or from the supervisor's, which lives as long as they do.)
    """
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    os.setsid()


class Listening:
    """``http_url`` and ``grpc_url`` (host:port) of something whose ``options`` say where it listens."""

    options: ServerOptions

    @property
    def http_url(self) -> str:
        return f"{self.options.address}:{self.options.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"{self.options.address}:{self.options.grpc_port}"


class TritonServer(Listening):
    """A running ``tritonserver``; use as a context manager, or ``start()``/``stop()``/``restart()``."""

    def __init__(self, options: ServerOptions) -> None:
        from swintormer.export.cache import cache_root

        self.options = options
        self.process: subprocess.Popen | None = None
        self.admin_key = options.admin_key or secrets.token_urlsafe(18)
        self.server_id = f"swintormer-{uuid.uuid4().hex[:12]}"
        self.shm_prefix = f"swintormer_py{os.getpid()}_{uuid.uuid4().hex[:8]}_"
        self.log_path = options.log_file or cache_root() / "logs" / f"tritonserver-{options.http_port}.log"
        self._log = None

    @property
    def metrics_url(self) -> str:
        return f"http://{self.options.address}:{self.options.metrics_port}/metrics"

    def _binaries(self) -> tuple[Path, Path, Path | None]:
        """``(tritonserver, backend directory, extra library folder)``."""
        o = self.options
        if o.tritonserver is not None:
            if not Path(o.tritonserver).is_file():
                raise SwintormerError(f"--tritonserver {o.tritonserver} does not exist")
            backends = Path(o.backend_directory) if o.backend_directory else Path(o.tritonserver).parent.parent / "backends"
            return Path(o.tritonserver), backends, None
        server, libs = _pytriton_dirs()
        return server / "bin" / "tritonserver", _backend_dir(server), libs

    def command(self) -> tuple[list[str], dict[str, str]]:
        binary, backends, libs = self._binaries()
        o = self.options
        restricted = ",".join(ADMIN_APIS) + f":admin-key={self.admin_key}"
        cmd = [
            str(binary), f"--model-repository={Path(o.repository).resolve()}",
            f"--backend-directory={backends}", f"--http-address={o.address}", f"--http-port={o.http_port}",
            f"--grpc-address={o.address}", f"--grpc-port={o.grpc_port}", f"--metrics-address={o.address}",
            f"--metrics-port={o.metrics_port}", f"--log-verbose={o.log_verbose}", "--strict-readiness=true",
            "--exit-on-error=true", f"--exit-timeout-secs={EXIT_TIMEOUT}", f"--id={self.server_id}",
            "--model-control-mode=explicit", "--load-model=*",
            f"--http-restricted-api={restricted}", f"--grpc-restricted-protocol={restricted}",
            f"--backend-config=python,shm-region-prefix-name={self.shm_prefix}",
            # each stub's region starts large enough for a batch of tiles (8 x 256^2 x 3 fp32 = 6 MB,
            # in and out) instead of growing a megabyte at a time under the first request
            f"--backend-config=python,shm-default-byte-size={SHM_DEFAULT_BYTES}",
            f"--backend-config=python,shm-growth-byte-size={SHM_DEFAULT_BYTES}",
        ]
        env = dict(os.environ)
        if libs is not None:
            env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [str(libs), env.get("LD_LIBRARY_PATH", "")]))
        env["PATH"] = os.pathsep.join([str(Path(sys.exec_prefix) / "bin"), env.get("PATH", "")])
        # the stubs' compute threads sleep when idle (unless the caller chose): instances and replicas
        # share the cores, and spinning ones starve each other (3 replicas on 2 cores, 12 requests:
        # 2.22 images/s spinning, 3.79 passive; one replica 3.80 / 3.30)
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        return cmd, env

    def start(self, timeout: float = 180.0, warm: bool = True) -> "TritonServer":
        """Launch the server, wait until it is ready (raises with its log if it is not) and, with
        ``warm``, send each pipeline instance one real request (:func:`health.warm_up`), so the
        first client's request costs what every later one does."""
        self.launch()
        self.wait_ready(timeout, warm)
        return self

    def launch(self) -> "TritonServer":
        """Start the process without waiting (then :meth:`wait_ready`).

        The server is killed when the thread that launched it ends (``PR_SET_PDEATHSIG`` follows
        the launching thread): launch from a thread that lives as long as the server.
        """
        repo = Path(self.options.repository)
        if not (repo / "deblur_uint8" / "config.pbtxt").is_file():
            raise SwintormerError(f"{repo} is not a generated model repository; run: python export/build_engines.py --out {repo}")
        check_ports(self.options)
        stale = remove_stale_regions()
        if stale:
            log.info("removed %d shared-memory regions left by servers that are gone", len(stale))
        cmd, env = self.command()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        return self

    def wait_ready(self, timeout: float = 180.0, warm: bool = True) -> "TritonServer":
        self._wait_ready(timeout)
        if warm:
            from swintormer.serving.health import warm_up

            try:
                log.info("warmed up in %.1f s", warm_up(self.http_url))
            except Exception as exc:  # a server that cannot serve is the supervisor's to find, with its log
                log.warning("warm-up request failed: %s", str(exc).splitlines()[0][:300])
        return self

    def _get(self, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://{self.http_url}{path}", timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except OSError:
            return 0, b""

    def is_ours(self) -> bool:
        """Whether the server answering on our HTTP port is the one this launcher started."""
        status, body = self._get("/v2")
        try:
            return status == 200 and json.loads(body).get("name") == self.server_id
        except ValueError:
            return False

    def ready(self) -> bool:
        """Triton's own readiness (what load balancers and Kubernetes probes read)."""
        return self._get("/v2/health/ready")[0] == 200

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._cleanup()
                raise SwintormerError(f"tritonserver exited with status {self.process.returncode}:\n{self.log_tail()}")
            if self.ready() and self.is_ours():
                return
            time.sleep(0.5)
        self.stop()
        raise SwintormerError(f"tritonserver was not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def model_control(self, action: str, model: str, timeout: float = 120.0) -> None:
        """``load`` or ``unload`` one model through the (restricted) model-repository API."""
        request = urllib.request.Request(
            f"http://{self.http_url}/v2/repository/models/{model}/{action}", data=b"{}", method="POST",
            headers={"admin-key": self.admin_key, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout):
                return
        except urllib.error.HTTPError as exc:
            raise SwintormerError(f"{action} of {model} failed: {exc.read().decode(errors='replace')[:300]}") from None
        except OSError as exc:
            raise SwintormerError(f"{action} of {model} failed: {exc}") from None

    def python_models(self) -> list[str]:
        """The repository's python-backend models (the ones with a stub process each)."""
        repo = Path(self.options.repository)
        return sorted(p.parent.name for p in repo.glob("*/config.pbtxt") if 'backend: "python"' in p.read_text())

    def expected_stub_instances(self) -> set[str]:
        """Instance names the repository's python models should have running (``pipeline_0_0`` ...),
        from their configs' instance groups (Triton names them ``<group name>_<index>``)."""
        from swintormer.serving.config import parse_config

        names = set()
        for model in self.python_models():
            cfg = parse_config(Path(self.options.repository) / model / "config.pbtxt")
            for g, group in enumerate(cfg.instance_group or [None]):
                count = group.count if group is not None and group.count else 1
                name = group.name if group is not None and group.name else f"{model}_{g}"
                names.update(f"{name}_{i}" for i in range(count))
        return names

    def stub_instances(self) -> set[str]:
        """Instance names (``pipeline_0_0``) of this server's python stubs that are alive."""
        return set(self.stub_processes().values())

    def stub_processes(self) -> dict[int, str]:
        """``{pid: instance name}`` of this server's python stubs that are alive."""
        if self.process is None:
            return {}
        alive = {}
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                stat = (proc / "stat").read_text()
                args = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[-1].split()
            if fields[0] == "Z" or int(fields[1]) != self.process.pid or not args or b"triton_python_backend_stub" not in args[0]:
                continue
            if len(args) > 8:
                alive[int(proc.name)] = args[8].decode(errors="replace")
        return alive

    def log_tail(self, lines: int = 40) -> str:
        return log_tail(self.log_path, lines)

    def _cleanup(self) -> None:
        """Remove this server's shared-memory regions (Triton leaves them, even on a clean exit)."""
        for entry in SHM_DIR.glob(f"{self.shm_prefix}*"):
            entry.unlink(missing_ok=True)
        if self._log is not None:
            self._log.close()
            self._log = None

    def stop(self, grace: float = EXIT_TIMEOUT + 10) -> int | None:
        """SIGINT (Triton's graceful shutdown), then SIGKILL after ``grace`` seconds; regions removed."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._kill_stubs()
        self._cleanup()
        return self.process.returncode

    def _kill_stubs(self) -> None:
        """Stubs of a server that died are orphans; they go with it."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def restart(self, timeout: float = 180.0) -> "TritonServer":
        """Kill the server (a broken one need not shut down gracefully) and start it again on the same ports."""
        if self.process is not None:
            self._kill_stubs()
            self.process.wait()
        self._cleanup()
        deadline = time.monotonic() + 15
        while True:  # the dying processes may hold the ports for a moment
            try:
                check_ports(self.options)
                break
            except SwintormerError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        return self.start(timeout)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def __enter__(self) -> "TritonServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
