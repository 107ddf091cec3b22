"""The deep health check: a tiny real inference through every ensemble, not just "the port answers".

Triton's own readiness says a model is loaded; it stays true when a python stub behind it has
died. :func:`deep_check` sends an 8x8 image (one tile) of each served dtype through its ensemble
and checks the answer's shape and dtype, so it fails exactly when clients would. ``swintormer
health --url ...`` runs it (exit 0 healthy, 1 not), usable as a Kubernetes exec probe; the
supervisor of ``swintormer serve`` runs it every few seconds.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import numpy as np

from swintormer.errors import SwintormerError
from swintormer.imageio import MIN_IMAGE_SIDE
from swintormer.serving.client import DeblurClient, RetryPolicy
from swintormer.serving.dtypes import IMAGE_DTYPES, ensemble_name

__all__ = ["HealthReport", "deep_check", "probe_image", "served_channels", "warm_up"]


@dataclass(frozen=True)
class HealthReport:
    healthy: bool
    detail: str
    seconds: float


def _pipeline_config(client: DeblurClient) -> dict:
    config = client.client.get_model_config("pipeline")
    return config if isinstance(config, dict) else json.loads(_grpc_json(config))


def _limits(config: dict) -> dict:
    """The ``limits`` parameter (ServingLimits as JSON) of the pipeline model's config."""
    return json.loads(config.get("parameters", {})["limits"]["string_value"])


def served_channels(client: DeblurClient) -> int:
    """The channel count the repository's images have (from the ``pipeline`` model's limits)."""
    return int(_limits(_pipeline_config(client))["channels"])


def warm_up(url: str, timeout: float = 120.0) -> float:
    """Send one real request per ``pipeline`` instance at once, each a random image of a full batch
    of tiles plus a remainder, so every instance's first calls into the networks happen before
    the first client's; returns the seconds it took. Failures are the caller's to report.
    """
    from concurrent.futures import ThreadPoolExecutor

    start = time.perf_counter()
    with DeblurClient(url, timeout=timeout, retry=RetryPolicy(attempts=1)) as client:
        config = _pipeline_config(client)
    limits = _limits(config)
    groups = config.get("instance_group", [{}])
    instances = sum(int(g.get("count", 1)) for g in groups) or 1
    tiling = limits["tiling"]
    tile, stride, batch = int(tiling["tile"]) or 256, int(tiling["stride"]) or 256, int(tiling["batch"])
    shape = (tile, tile + batch * stride, int(limits["channels"]))  # one row of batch + 1 tiles: a full batch and a remainder
    while shape[0] * shape[1] > int(limits["max_pixels"]) and shape[1] > tile:
        shape = (shape[0], shape[1] - stride, shape[2])
    image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)

    def one(_) -> None:
        with DeblurClient(url, timeout=timeout, retry=RetryPolicy(attempts=1)) as client:
            client.deblur(image)

    with ThreadPoolExecutor(instances) as pool:
        list(pool.map(one, range(instances)))
    return time.perf_counter() - start


def _grpc_json(config) -> str:
    from google.protobuf import json_format

    return json_format.MessageToJson(config.config, preserving_proto_field_name=True)


def probe_image(dtype_name: str, channels: int) -> np.ndarray:
    """The smallest image the ensembles take, ``[8, 8, channels]``, with some structure in it."""
    ramp = np.linspace(0.2, 0.8, MIN_IMAGE_SIDE * MIN_IMAGE_SIDE * channels, dtype=np.float32)
    pixels = ramp.reshape(MIN_IMAGE_SIDE, MIN_IMAGE_SIDE, channels)
    dtype = IMAGE_DTYPES[dtype_name]
    if dtype == np.float32:
        return pixels
    return np.rint(pixels * np.iinfo(dtype).max).astype(dtype)


def deep_check(url: str, protocol: str = "http", timeout: float = 30.0, dtypes: tuple[str, ...] | None = None) -> HealthReport:
    """One real inference through the ensemble of each of ``dtypes`` (default: all); never raises."""
    start = time.perf_counter()
    try:
        with DeblurClient(url, protocol, timeout, retry=RetryPolicy(attempts=1)) as client:
            if not client.client.is_server_ready():
                return HealthReport(False, f"the server at {url} reports not ready", time.perf_counter() - start)
            channels = served_channels(client)
            for name in dtypes or tuple(IMAGE_DTYPES):
                image = probe_image(name, channels)
                out = client.deblur(image)
                if out.shape != (*image.shape[:2], 3) or out.dtype != image.dtype or (out.dtype == np.float32 and not np.isfinite(out).all()):
                    return HealthReport(False, f"{ensemble_name(name)} answered {out.dtype} {list(out.shape)}", time.perf_counter() - start)
    except SwintormerError as exc:
        return HealthReport(False, str(exc), time.perf_counter() - start)
    except Exception as exc:  # tritonclient and socket errors of every kind: unhealthy, with the reason
        return HealthReport(False, f"{type(exc).__name__}: {exc}", time.perf_counter() - start)
    names = ", ".join(ensemble_name(n) for n in dtypes or IMAGE_DTYPES)
    return HealthReport(True, f"{names} answered", time.perf_counter() - start)
