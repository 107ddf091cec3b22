"""Talking to the deblurring ensemble with tritonclient, over HTTP or gRPC.

``DeblurClient.deblur(image)`` sends an ``[H, W, C]`` (or ``[C, H, W]``) uint8/uint16/float32
array to the ensemble for its dtype (``deblur_uint8`` ...) and returns the restored image in the
same dtype and layout. Binary tensors are used throughout; ``shared_memory=True`` passes input
and output through POSIX shared memory instead of the socket (for large images on the same host).
"""

from __future__ import annotations

import logging
import time
import uuid

import numpy as np

from swintormer.errors import SwintormerError
from swintormer.serving.dtypes import image_dtype_name
from swintormer.serving.repository import ensemble_name

__all__ = ["DeblurClient"]

log = logging.getLogger(__name__)


class DeblurClient:
    """One connection to a Triton server serving the generated repository."""

    def __init__(self, url: str = "127.0.0.1:8000", protocol: str = "http", timeout: float = 600.0, shared_memory: bool = False) -> None:
        if protocol not in ("http", "grpc"):
            raise SwintormerError(f"protocol must be 'http' or 'grpc', got {protocol!r}")
        try:
            if protocol == "http":
                import tritonclient.http as tc

                self.client = tc.InferenceServerClient(url, connection_timeout=timeout, network_timeout=timeout)
            else:
                import tritonclient.grpc as tc

                self.client = tc.InferenceServerClient(url)
        except ImportError:
            raise SwintormerError("tritonclient is not installed: pip install 'swintormer[serve]'") from None
        self.tc, self.url, self.protocol, self.timeout = tc, url, protocol, timeout
        self.shared_memory = shared_memory
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

    def check_ready(self, model: str = "deblur_uint8") -> None:
        """Raise a clear error unless the server is reachable and ``model`` is ready."""
        try:
            live = self.client.is_server_live()
        except Exception as exc:  # connection refused, DNS, timeouts: tritonclient raises several types
            raise SwintormerError(f"no Triton server answers at {self.url} ({self.protocol}): {exc}; start one with `swintormer serve`") from None
        if not live:
            raise SwintormerError(f"the Triton server at {self.url} is not live")
        if not self.client.is_model_ready(model):
            raise SwintormerError(f"model {model!r} is not ready on {self.url}; was the repository built with export/build_engines.py?")

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
        from tritonclient.utils import InferenceServerException

        try:
            return self.client.infer(model, inputs, outputs=outputs)
        except InferenceServerException as exc:
            raise SwintormerError(f"server rejected the request: {exc.message()}") from None

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
            self.client.register_system_shared_memory(name, f"/{name}", size)
        except Exception:
            shm.destroy_shared_memory_region(handle)
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
                    self.client.unregister_system_shared_memory(name)
                    break
                except InferenceServerException as exc:
                    if "in use" not in str(exc) or attempt == 49:
                        log.warning("could not unregister shared memory region %s: %s", name, exc)
                        break
                    time.sleep(0.1)
        finally:
            shm.destroy_shared_memory_region(handle)
