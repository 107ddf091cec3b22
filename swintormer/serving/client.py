"""Talking to the deblurring ensemble with tritonclient, over HTTP or gRPC.

``DeblurClient.deblur(image)`` sends an ``[H, W, C]`` (or ``[C, H, W]``) uint8/uint16/float32
array to the ensemble for its dtype (``deblur_uint8`` ...) and returns the restored image in the
same dtype and layout. Binary tensors are used throughout; ``shared_memory=True`` passes input
and output through POSIX shared memory instead of the socket (for large images on the same
host; the server's shared-memory API needs the operator's ``admin_key``).

Failures are :class:`SwintormerError` with one readable line: a malformed URL or a request the
server rejects as bad (HTTP 400 / INVALID_ARGUMENT) is the caller's to fix, and is never
retried; a refused or dropped connection, a timeout, an unavailable (503) or not-ready server is
:class:`ServerUnavailable`. Connection failures, 503s and a load balancer's 502 (a replica that
died under the request) are retried a few times with backoff.
"""

from __future__ import annotations

import http.client
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Callable, TypeVar

import numpy as np

from swintormer.errors import SwintormerError
from swintormer.serving.dtypes import ensemble_name, image_dtype_name

__all__ = ["ADMIN_HEADER", "DeblurClient", "RetryPolicy", "ServerUnavailable", "parse_url"]

log = logging.getLogger(__name__)

#: The header the server's restricted APIs (shared memory, model control, logging...) check over
#: HTTP; over gRPC Triton expects it with the prefix ``triton-grpc-protocol-``.
ADMIN_HEADER = "admin-key"
GRPC_HEADER_PREFIX = "triton-grpc-protocol-"
T = TypeVar("T")


class ServerUnavailable(SwintormerError):
    """The server could not be reached or could not serve: not the request's fault (exit status 1)."""

    exit_status = 1


@dataclass(frozen=True)
class RetryPolicy:
    """Connection failures, 502/503 and UNAVAILABLE are retried ``attempts - 1`` times, waiting
    ``backoff * 2**i`` seconds (at most ``max_wait``) in between; bad requests never are."""

    attempts: int = 4
    backoff: float = 0.5
    max_wait: float = 4.0


def parse_url(url: str, protocol: str) -> tuple[str, bool]:
    """``"host:port"`` (with an optional ``http://``, ``https://`` or ``grpc://``) -> ``(host:port, ssl)``."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    if scheme not in ("", "http", "https", "grpc"):
        raise SwintormerError(f"--url {url!r}: unknown scheme {scheme!r}; give host:port (e.g. 127.0.0.1:8000)")
    rest = rest.rstrip("/")
    host, colon, port = rest.rpartition(":")
    if not colon or not host or "/" in rest:
        raise SwintormerError(f"--url {url!r} is not host:port (e.g. 127.0.0.1:8000 for http, 127.0.0.1:8001 for grpc)")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise SwintormerError(f"--url {url!r}: the port must be a number from 1 to 65535, got {port!r}")
    return f"{host}:{int(port)}", scheme == "https"


def _status(exc: Exception) -> str:
    status = getattr(exc, "status", None)
    return str(status() if callable(status) else status or "")


def _bad_request(exc: Exception) -> bool:
    """The request's fault (never retried): invalid, forbidden (a restricted API without the key), unknown."""
    restricted = "is restricted, expecting header" in str(exc)
    return restricted or _status(exc) in ("400", "StatusCode.INVALID_ARGUMENT", "403", "StatusCode.PERMISSION_DENIED", "404", "StatusCode.NOT_FOUND")


def _transient(exc: Exception) -> bool:
    """Worth another try: no connection, a dropped connection, or an unavailable server."""
    if isinstance(exc, (ConnectionError, TimeoutError, OSError)) and not isinstance(exc, FileNotFoundError):
        return True
    text = f"{type(exc).__name__} {exc}"
    # 502: a load balancer's replica dropped the request mid-way (inference is idempotent, so
    # another replica may take it); 503: unavailable or no replica up
    return _status(exc) in ("502", "503", "StatusCode.UNAVAILABLE") or any(
        s in text for s in ("Connection refused", "ConnectionClosed", "Connection reset", "failed to connect", "Socket closed")
    )


class DeblurClient:
    """One connection to a Triton server serving the generated repository."""

    def __init__(
        self, url: str = "127.0.0.1:8000", protocol: str = "http", timeout: float = 600.0, shared_memory: bool = False,
        admin_key: str | None = None, retry: RetryPolicy = RetryPolicy(),
    ) -> None:
        if protocol not in ("http", "grpc"):
            raise SwintormerError(f"protocol must be 'http' or 'grpc', got {protocol!r}")
        if timeout <= 0:
            raise SwintormerError(f"--timeout must be a positive number of seconds, got {timeout}")
        address, ssl = parse_url(url, protocol)
        try:
            if protocol == "http":
                import tritonclient.http as tc

                self.client = tc.InferenceServerClient(address, connection_timeout=timeout, network_timeout=timeout, ssl=ssl)
            else:
                import tritonclient.grpc as tc

                self.client = tc.InferenceServerClient(address, ssl=ssl)
        except ImportError:
            raise SwintormerError("tritonclient is not installed: pip install 'swintormer[serve]'") from None
        except Exception as exc:  # tritonclient validates the address itself in several ways
            raise SwintormerError(f"--url {url!r}: {exc}") from None
        self.tc, self.url, self.protocol, self.timeout, self.retry = tc, address, protocol, timeout, retry
        self.shared_memory = shared_memory
        header = ADMIN_HEADER if protocol == "http" else GRPC_HEADER_PREFIX + ADMIN_HEADER
        self.headers = {header: admin_key} if admin_key else None
        self._regions: dict[str, tuple[str, object, int]] = {}  # role -> (name, handle, bytes)

    def close(self) -> None:
        """Release this client's shared-memory regions and close the connection."""
        try:
            for role in list(self._regions):
                self._release(role)
        finally:
            self.client.close()

    def __enter__(self) -> "DeblurClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """``fn()`` with the retry policy; every failure becomes one clear error."""
        for attempt in range(self.retry.attempts):
            try:
                return fn()
            except Exception as exc:  # tritonclient, geventhttpclient, grpc and socket errors
                if _bad_request(exc):
                    message = exc.message() if hasattr(exc, "message") else str(exc)
                    raise SwintormerError(f"the server rejected the request: {message}") from None
                last = exc
                if not _transient(exc) or attempt == self.retry.attempts - 1:
                    break
                wait = min(self.retry.max_wait, self.retry.backoff * 2**attempt)
                log.debug("%s failed (%s); retrying in %.1f s", what, exc, wait)
                time.sleep(wait)
        detail = last.message() if hasattr(last, "message") and callable(last.message) else str(last) or type(last).__name__
        if "while decoding the response" in detail and _status(last).isdigit():  # a proxy's HTML error page
            code = int(_status(last))
            detail = f"HTTP {code} ({http.client.responses.get(code, 'error')}) from the server or a proxy in front of it"
        if "timed out" in detail.lower() or isinstance(last, TimeoutError) or "Deadline" in detail:
            raise ServerUnavailable(f"{what} on {self.url} timed out after {self.timeout:g} s (--timeout)") from None
        raise ServerUnavailable(f"{what} on {self.url} ({self.protocol}) failed: {detail.splitlines()[0][:300]}") from None

    def check_ready(self, model: str = "deblur_uint8") -> None:
        """Raise a clear error unless the server is reachable and ``model`` is ready."""
        try:
            live = self._call("reaching the server", self.client.is_server_live)
        except ServerUnavailable as exc:
            raise ServerUnavailable(f"no Triton server answers at {self.url} ({self.protocol}): {exc}; start one with `swintormer serve`") from None
        if not live:
            raise ServerUnavailable(f"the Triton server at {self.url} is not live")
        if not self._call("asking for the model's readiness", lambda: self.client.is_model_ready(model)):
            raise ServerUnavailable(f"model {model!r} is not ready on {self.url} (it is loading or recovering; "
                                    "check `swintormer health`, or build the repository with export/build_engines.py)")

    def deblur(self, image: np.ndarray, layout: str = "HWC") -> np.ndarray:
        """Restore one image; returns an array of the same dtype, layout and size.

        A grayscale image (one channel) comes back grayscale; 3- and 6-channel images come back RGB.
        """
        dtype = image_dtype_name(image.dtype)
        image = np.ascontiguousarray(image)
        model = ensemble_name(dtype)
        inp = self.tc.InferInput("IMAGE", list(image.shape), dtype)
        lay = self.tc.InferInput("LAYOUT", [1], "BYTES")
        lay.set_data_from_numpy(np.array([layout.encode()], dtype=object))
        if image.ndim != 3:
            raise SwintormerError(f"images must be rank 3 ({layout}), got shape {list(image.shape)}")
        channels = 1 if (image.shape[2] if layout == "HWC" else image.shape[0]) == 1 else 3
        out_shape = (*image.shape[:2], channels) if layout == "HWC" else (channels, *image.shape[1:])
        if self.shared_memory:
            return self._infer_shm(model, image, inp, lay, out_shape)
        inp.set_data_from_numpy(image, binary_data=True) if self.protocol == "http" else inp.set_data_from_numpy(image)
        out = self.tc.InferRequestedOutput("OUTPUT", binary_data=True) if self.protocol == "http" else self.tc.InferRequestedOutput("OUTPUT")
        return self._infer(model, [inp, lay], [out]).as_numpy("OUTPUT")

    def _infer(self, model: str, inputs: list, outputs: list):
        extra = {"client_timeout": self.timeout} if self.protocol == "grpc" else {}
        return self._call(f"inference through {model}", lambda: self.client.infer(model, inputs, outputs=outputs, **extra))

    def _infer_shm(self, model: str, image: np.ndarray, inp, lay, out_shape: tuple[int, ...]) -> np.ndarray:
        import tritonclient.utils.shared_memory as shm

        out_bytes = int(np.prod(out_shape)) * image.dtype.itemsize
        in_name, in_handle = self._region("in", image.nbytes)
        out_name, out_handle = self._region("out", out_bytes)
        shm.set_shared_memory_region(in_handle, [image])
        inp.set_shared_memory(in_name, image.nbytes)
        out = self.tc.InferRequestedOutput("OUTPUT")
        out.set_shared_memory(out_name, out_bytes)
        self._infer(model, [inp, lay], [out])
        return shm.get_contents_as_numpy(out_handle, image.dtype, list(out_shape)).copy()

    def _region(self, role: str, size: int) -> tuple[str, object]:
        """This client's registered shared-memory region for ``role`` ("in"/"out"), at least ``size`` bytes.

        Regions live as long as the client and are reused by every request (registering per request
        races the server, which releases a region a moment after it answers); a larger request
        replaces the region with a bigger one.
        """
        import tritonclient.utils.shared_memory as shm

        current = self._regions.get(role)
        if current is not None and current[2] >= size:
            return current[0], current[1]
        if current is not None:
            self._release(role)
        name = f"swintormer-{role}-{uuid.uuid4().hex[:12]}"
        handle = shm.create_shared_memory_region(name, f"/{name}", size)
        try:
            self._call("registering shared memory", lambda: self.client.register_system_shared_memory(name, f"/{name}", size, headers=self.headers))
        except SwintormerError as exc:
            shm.destroy_shared_memory_region(handle)
            if "restricted" in str(exc).lower() or "admin" in str(exc).lower() or "forbidden" in str(exc).lower():
                raise SwintormerError(f"{exc}; the server restricts shared memory to its operator: pass --admin-key "
                                      "(or set SWINTORMER_ADMIN_KEY)") from None
            raise
        self._regions[role] = (name, handle, size)
        return name, handle

    def _release(self, role: str) -> None:
        """Unregister and remove one region, waiting (up to 5 s) while the server still holds it."""
        import tritonclient.utils.shared_memory as shm
        from tritonclient.utils import InferenceServerException

        name, handle, _ = self._regions.pop(role)
        try:
            for attempt in range(50):
                try:
                    self.client.unregister_system_shared_memory(name, headers=self.headers)
                    break
                except InferenceServerException as exc:
                    if "in use" not in str(exc) or attempt == 49:
                        log.warning("could not unregister shared memory region %s: %s", name, exc)
                        break
                    time.sleep(0.1)
                except Exception as exc:  # the server is gone: nothing to unregister
                    log.debug("could not unregister shared memory region %s: %s", name, exc)
                    break
        finally:
            shm.destroy_shared_memory_region(handle)
