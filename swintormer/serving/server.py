"""Start the ``tritonserver`` that ``nvidia-pytriton`` bundles, on a generated repository.

The bundled server has only the python backend and runs on a CPU-only machine, given the
shared libraries shipped beside it (``nvidia_pytriton.libs``) and the python backend stub built
for the running Python copied into a backend folder (docs/architecture.md, "Reference facts"). The stub finds this
environment's packages because this environment's ``bin`` goes first on ``PATH``.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from swintormer.errors import SwintormerError

__all__ = ["ServerOptions", "TritonServer", "free_port"]

log = logging.getLogger(__name__)

#: Seconds Triton waits for in-flight requests on shutdown before unloading anyway.
EXIT_TIMEOUT = 10


@dataclass(frozen=True)
class ServerOptions:
    repository: Path
    address: str = "127.0.0.1"
    http_port: int = 8000
    grpc_port: int = 8001
    metrics_port: int = 8002
    log_verbose: int = 0
    log_file: Path | None = None


def free_port(address: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


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


class TritonServer:
    """A running ``tritonserver``; use as a context manager, or ``start()``/``stop()``."""

    def __init__(self, options: ServerOptions) -> None:
        self.options = options
        self.process: subprocess.Popen | None = None
        from swintormer.export.cache import cache_root

        self.log_path = options.log_file or cache_root() / "logs" / f"tritonserver-{options.http_port}.log"

    @property
    def http_url(self) -> str:
        return f"{self.options.address}:{self.options.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"{self.options.address}:{self.options.grpc_port}"

    def command(self) -> tuple[list[str], dict[str, str]]:
        server, libs = _pytriton_dirs()
        o = self.options
        cmd = [
            str(server / "bin" / "tritonserver"), f"--model-repository={Path(o.repository).resolve()}",
            f"--backend-directory={_backend_dir(server)}", f"--http-address={o.address}", f"--http-port={o.http_port}",
            f"--grpc-address={o.address}", f"--grpc-port={o.grpc_port}", f"--metrics-address={o.address}",
            f"--metrics-port={o.metrics_port}", f"--log-verbose={o.log_verbose}", "--strict-readiness=true",
            "--exit-on-error=true", f"--exit-timeout-secs={EXIT_TIMEOUT}",
        ]
        env = dict(os.environ)
        env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [str(libs), env.get("LD_LIBRARY_PATH", "")]))
        env["PATH"] = os.pathsep.join([str(Path(sys.exec_prefix) / "bin"), env.get("PATH", "")])
        return cmd, env

    def start(self, timeout: float = 180.0) -> "TritonServer":
        repo = Path(self.options.repository)
        if not (repo / "deblur_uint8" / "config.pbtxt").is_file():
            raise SwintormerError(f"{repo} is not a generated model repository; run: python export/build_engines.py --out {repo}")
        cmd, env = self.command()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SwintormerError(f"tritonserver exited with status {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"http://{self.http_url}/v2/health/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        self.stop()
        raise SwintormerError(f"tritonserver was not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, grace: float = EXIT_TIMEOUT + 10) -> int | None:
        """SIGINT (Triton's graceful shutdown), then SIGKILL after ``grace`` seconds."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self._log.close()
        return self.process.returncode

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def __enter__(self) -> "TritonServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
