"""Export specs: one per component, naming every input and output and their dynamic axes.

The batch axis is dynamic (tiles are batched); the restorer's height and width are fixed to the
tile size (what training used, and what TensorRT engines and CUDA graphs like best) unless
``dynamic_hw`` asks for whole-image engines. Graph inputs and outputs are float32 at every
precision: fp16 graphs cast inside (so clients, Triton configs and ONNX Runtime see one contract).
"""

from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import asdict, dataclass

import numpy as np

from swintormer.errors import SwintormerError
from swintormer.model import DeblurModel
from swintormer.tiling import check_tile

__all__ = ["ExportSpec", "Precision", "TensorSpec", "component_specs"]

BATCH = "batch"


class Precision(str, enum.Enum):
    """Numerical precision of an exported graph (I/O stays float32)."""

    FP32 = "fp32"
    FP16 = "fp16"
    #: QDQ graph of the fp32 export (export/quantize.py): int8 Conv/MatMul, fp32 I/O
    INT8 = "int8"
    #: the same with float8 e4m3 (opset 19): what TensorRT runs on FP8 GPUs (Hopper and later)
    FP8 = "fp8"

    @property
    def quantized(self) -> bool:
        """A QDQ graph made from the fp32 export by calibration rather than exported as such."""
        return self in (Precision.INT8, Precision.FP8)


@dataclass(frozen=True)
class TensorSpec:
    """One named tensor: ``dtype`` is a NumPy dtype name; ``shape`` uses names for dynamic axes."""

    name: str
    dtype: str
    shape: tuple[int | str, ...]

    def concrete(self, sizes: dict[str, int]) -> tuple[int, ...]:
        return tuple(sizes[d] if isinstance(d, str) else d for d in self.shape)


@dataclass(frozen=True)
class ExportSpec:
    """A component's graph contract and its TensorRT optimisation profile.

    ``dims`` maps each dynamic axis name to ``(min, opt, max)``.
    """

    component: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    dims: tuple[tuple[str, tuple[int, int, int]], ...]

    @property
    def dim_ranges(self) -> dict[str, tuple[int, int, int]]:
        return dict(self.dims)

    @property
    def max_batch(self) -> int:
        return self.dim_ranges[BATCH][2]

    def profile(self) -> dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]:
        """TensorRT profile ``{input: (min shape, opt shape, max shape)}``."""
        ranges = self.dim_ranges
        pick = lambda i: {k: v[i] for k, v in ranges.items()}  # noqa: E731
        return {t.name: (t.concrete(pick(0)), t.concrete(pick(1)), t.concrete(pick(2))) for t in self.inputs}

    def sample_inputs(self, batch: int | None = None, seed: int = 0) -> dict[str, np.ndarray]:
        """Random inputs of the spec's shapes (``batch`` or the profile's opt batch)."""
        rng = np.random.default_rng(seed)
        sizes = {k: v[1] for k, v in self.dim_ranges.items()}
        if batch is not None:
            sizes[BATCH] = batch
        out = {}
        for t in self.inputs:
            shape = t.concrete(sizes)
            if t.dtype == "int64":
                out[t.name] = rng.integers(1, 1000, shape).astype(np.int64)
            else:
                out[t.name] = rng.random(shape, dtype=np.float32).astype(t.dtype)
        return out

    def fingerprint(self) -> str:
        """Stable hash of the contract (part of every artifact's cache key)."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


def _batch_dims(max_batch: int) -> tuple[str, tuple[int, int, int]]:
    if max_batch < 1:
        raise SwintormerError(f"max batch must be >= 1, got {max_batch}")
    return BATCH, (1, max(1, max_batch // 2), max_batch)


def component_specs(model: DeblurModel, tile: int, max_batch: int = 8, dynamic_hw: bool = False) -> dict[str, ExportSpec]:
    """``{"restorer": ..., "encoder": ..., "denoiser": ...}`` (the last two only for prior models).

    ``tile`` is the restorer's input side; with ``dynamic_hw`` the restorer takes any multiple of
    its size multiple from ``tile`` up to ``4 * tile``.
    """
    if tile <= 0:
        raise SwintormerError("exported graphs need a fixed tile size (--tile > 0)")
    check_tile(tile, model.size_multiple)
    r = model.restorer.config
    batch = _batch_dims(max_batch)
    h, w = ("height", "width") if dynamic_hw else (tile, tile)
    side = (tile, 2 * tile, 4 * tile)
    dims = [batch] + ([("height", side), ("width", side)] if dynamic_hw else [])
    inputs = [TensorSpec("image", "float32", (BATCH, r.in_channels, h, w))]
    specs: dict[str, ExportSpec] = {}
    if model.has_prior:
        f = model.encoder.config.factor
        if dynamic_hw:
            raise SwintormerError("dynamic height/width is not supported for prior models (the prior is per tile)")
        z = model.encoder.config.z_channels
        side = tile // f
        inputs.append(TensorSpec("prior", "float32", (BATCH, r.prior_channels, side, side)))
        specs["encoder"] = ExportSpec(
            "encoder", (TensorSpec("image", "float32", (BATCH, 3, tile, tile)),),
            (TensorSpec("latent", "float32", (BATCH, z, side, side)),), (batch,),
        )
        specs["denoiser"] = ExportSpec(
            "denoiser",
            (TensorSpec("sample", "float32", (BATCH, model.denoiser.config.in_channels, side, side)), TensorSpec("timestep", "int64", (BATCH,))),
            (TensorSpec("eps", "float32", (BATCH, model.denoiser.config.out_channels, side, side)),), (batch,),
        )
    specs["restorer"] = ExportSpec(
        "restorer", tuple(inputs), (TensorSpec("restored", "float32", (BATCH, r.out_channels, h, w)),), tuple(dims)
    )
    return specs
