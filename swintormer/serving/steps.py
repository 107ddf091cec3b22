"""What the ensemble's python steps compute, as plain functions the tests call directly.

``preprocess``: validate the client's image, cut it into tiles (the shared tiler), and describe
the geometry; ``postprocess``: merge the restored tiles (the shared tiler), crop, and convert back
to the client's dtype, layout and channel count. The geometry travels between them as a small
int64 vector. A grayscale image (one channel) is restored as RGB and returned as grayscale.
"""

from __future__ import annotations

import json
from dataclasses import astuple, dataclass, field

import numpy as np
import torch

from swintormer.errors import SwintormerError
from swintormer.imageio import MIN_IMAGE_SIDE
from swintormer.serving.dtypes import IMAGE_DTYPES
from swintormer.tiling import TilePlan, TilingConfig, gray_tiles, merge_tiles, split_image

__all__ = ["LAYOUTS", "Geometry", "ServingLimits", "postprocess", "preprocess", "validate_image"]

LAYOUTS = ("HWC", "CHW")


@dataclass(frozen=True)
class ServingLimits:
    """What the server accepts (channel count, largest image) and how it tiles (``tiling``)."""

    channels: int = 3
    max_pixels: int = 4096 * 4096
    tiling: TilingConfig = field(default_factory=TilingConfig)

    def to_json(self) -> str:
        return json.dumps({"channels": self.channels, "max_pixels": self.max_pixels, "tiling": self.tiling.as_dict()})

    @classmethod
    def from_json(cls, text: str) -> "ServingLimits":
        data = json.loads(text)
        return cls(data["channels"], data["max_pixels"], TilingConfig(**data["tiling"]))


@dataclass(frozen=True)
class Geometry:
    """Everything postprocess needs to rebuild the image: size, tiling plan, dtype and layout."""

    height: int
    width: int
    plan_height: int
    plan_width: int
    tile: int
    stride: int
    dtype_index: int
    layout_index: int
    channels: int  # of the client's image: 3, or 1 for grayscale (restored as RGB, returned gray)

    SIZE = 9

    def to_array(self) -> np.ndarray:
        """``[9]`` int64."""
        return np.asarray(astuple(self), dtype=np.int64)

    @classmethod
    def from_array(cls, a: np.ndarray) -> "Geometry":
        values = [int(v) for v in np.asarray(a).reshape(-1)]
        if len(values) != cls.SIZE:
            raise SwintormerError(f"geometry must have {cls.SIZE} entries, got {len(values)}")
        return cls(*values)

    @property
    def dtype_name(self) -> str:
        return list(IMAGE_DTYPES)[self.dtype_index]

    @property
    def plan(self) -> TilePlan:
        return TilePlan(self.plan_height, self.plan_width, self.tile, self.tile, self.stride)


def validate_image(image: np.ndarray, layout: str, limits: ServingLimits) -> np.ndarray:
    """Check a client's image and return it as ``[H, W, C]`` (a view, no copy for HWC)."""
    if layout not in LAYOUTS:
        raise SwintormerError(f"LAYOUT must be one of {LAYOUTS}, got {layout!r}")
    if image.ndim != 3:
        raise SwintormerError(f"IMAGE must be rank 3 ({layout}), got shape {list(image.shape)}")
    hwc = image if layout == "HWC" else np.transpose(image, (1, 2, 0))
    h, w, c = hwc.shape
    if c != limits.channels and not (c == 1 and limits.channels == 3):
        raise SwintormerError(
            f"IMAGE has {c} channels in {layout} layout; this model takes {limits.channels} "
            f"({'right and left dual-pixel views' if limits.channels == 6 else 'RGB, or 1 for grayscale'})"
        )
    if h == 0 or w == 0:
        raise SwintormerError(f"IMAGE is empty ({h}x{w})")
    if min(h, w) < MIN_IMAGE_SIDE:
        raise SwintormerError(f"IMAGE is {w}x{h}; images need at least {MIN_IMAGE_SIDE} pixels on each side")
    if h * w > limits.max_pixels:
        raise SwintormerError(f"IMAGE is {w}x{h} = {h * w} pixels, above this server's limit of {limits.max_pixels}")
    if hwc.dtype == np.float32:
        if not np.isfinite(hwc).all():
            raise SwintormerError("IMAGE contains NaN or infinite values")
    elif hwc.dtype not in (np.uint8, np.uint16):
        raise SwintormerError(f"IMAGE dtype {hwc.dtype} is not one of uint8, uint16, float32")
    return hwc


def preprocess(image: np.ndarray, layout: str, limits: ServingLimits) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Client image -> ``(tiles [N, C, t, t] float32, origins [N, 2] int32, geometry [9] int64)``."""
    hwc = validate_image(image, layout, limits)
    channels = hwc.shape[2]
    if channels == 1 and limits.channels == 3:
        hwc = np.repeat(hwc, 3, axis=2)
    plan, tiles, origins = split_image(hwc, limits.tiling.tile, limits.tiling.stride)
    dtype_index = list(IMAGE_DTYPES.values()).index(hwc.dtype)
    geometry = Geometry(hwc.shape[0], hwc.shape[1], plan.height, plan.width, plan.tile_h, plan.stride, dtype_index,
                        LAYOUTS.index(layout), channels)
    return tiles.numpy(), np.asarray(origins, dtype=np.int32).reshape(-1, 2), geometry.to_array()


def postprocess(restored: np.ndarray, geometry: np.ndarray, blend: str = "uniform") -> tuple[str, np.ndarray]:
    """Restored tiles -> ``(Triton dtype name, image in the client's dtype, layout and channel count)``."""
    g = Geometry.from_array(geometry)
    tiles = torch.from_numpy(np.ascontiguousarray(restored))
    if g.channels == 1:
        tiles = gray_tiles(tiles)
    out = merge_tiles(tiles, g.plan, (g.height, g.width), blend, IMAGE_DTYPES[g.dtype_name])
    if LAYOUTS[g.layout_index] == "CHW":
        out = np.ascontiguousarray(np.transpose(out, (2, 0, 1)))
    return g.dtype_name, out
