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
from swintormer.tiling import TilePlan, TilingConfig, gray_tiles, merge_tiles, plan_tiles, split_image

__all__ = [
    "LAYOUTS", "Geometry", "ServingLimits", "check_origins", "check_tiles", "decode_layout", "postprocess", "preprocess",
    "validate_image",
]

LAYOUTS = ("HWC", "CHW")


@dataclass(frozen=True)
class ServingLimits:
    """What the server accepts (channel count, largest image) and how it tiles (``tiling``)."""

    channels: int = 3
    max_pixels: int = 4096 * 4096
    tiling: TilingConfig = field(default_factory=TilingConfig)

    @property
    def max_plan_pixels(self) -> int:
        """Largest padded image (the tiles' union) accepted: an image thinner than a tile pads up to one."""
        return max(self.max_pixels, self.tiling.tile**2)

    @property
    def max_tiles(self) -> int:
        """More tiles than any accepted image has (so no step allocates for more than this many).

        A plan of area ``P`` with sides ``H, W >= t`` has at most ``(H/s + 1)(W/s + 1) <= P/s^2 +
        (H + W)/s + 1`` tiles, and ``H + W <= P/t + t``.
        """
        t, s, p = self.tiling.tile or 1, self.tiling.stride or 1, self.max_plan_pixels
        return int(p / s**2 + (p / t + t) / s + 1) + 1

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

    def validate(self, limits: ServingLimits) -> "Geometry":
        """``self``, after checking every field is what ``preprocess`` makes for an image the limits allow.

        Nothing a client sends to ``postprocess`` directly can make it allocate beyond the limits.
        """
        problems = []
        if not (0 <= self.dtype_index < len(IMAGE_DTYPES) and 0 <= self.layout_index < len(LAYOUTS)):
            problems.append(f"dtype index {self.dtype_index} / layout index {self.layout_index} out of range")
        if self.channels not in ({1, 3} if limits.channels == 3 else {limits.channels}):
            problems.append(f"{self.channels} channels")
        if (self.tile, self.stride) != (limits.tiling.tile, limits.tiling.stride):
            problems.append(f"tile {self.tile} / stride {self.stride}, not this server's {limits.tiling.tile} / {limits.tiling.stride}")
        if min(self.height, self.width) < MIN_IMAGE_SIDE or self.height * self.width > limits.max_pixels:
            problems.append(f"an image of {self.width}x{self.height}")
        elif not problems:
            plan = plan_tiles(self.height, self.width, self.tile, self.stride)
            if (plan.height, plan.width) != (self.plan_height, self.plan_width) or plan.height * plan.width > limits.max_plan_pixels:
                problems.append(f"a {self.plan_width}x{self.plan_height} tile plan for a {self.width}x{self.height} image")
        if problems:
            raise SwintormerError(f"GEOMETRY is not one preprocess makes within this server's limits: {'; '.join(problems)}")
        return self


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
    plan = plan_tiles(h, w, limits.tiling.tile, limits.tiling.stride)
    if plan.height * plan.width > limits.max_plan_pixels:
        raise SwintormerError(f"IMAGE is {w}x{h}: padded to whole {limits.tiling.tile}-pixel tiles it covers "
                              f"{plan.height * plan.width} pixels, above this server's limit of {limits.max_plan_pixels}")
    if hwc.dtype == np.float32:
        if not np.isfinite(hwc).all():
            raise SwintormerError("IMAGE contains NaN or infinite values")
    elif hwc.dtype not in (np.uint8, np.uint16):
        raise SwintormerError(f"IMAGE dtype {hwc.dtype} is not one of uint8, uint16, float32")
    return hwc


def decode_layout(raw: np.ndarray | None) -> str:
    """The optional ``LAYOUT`` input (a one-element bytes tensor) as ``"HWC"`` or ``"CHW"``."""
    if raw is None:
        return "HWC"
    values = np.asarray(raw, dtype=object).reshape(-1)
    if values.size != 1:
        raise SwintormerError(f"LAYOUT must hold one value, HWC or CHW; got {values.size}")
    value = values[0]
    try:
        text = value.decode("ascii") if isinstance(value, bytes) else str(value)
    except UnicodeDecodeError:
        raise SwintormerError("LAYOUT must be the ASCII text HWC or CHW") from None
    if text.upper() not in LAYOUTS:
        raise SwintormerError(f"LAYOUT must be one of {', '.join(LAYOUTS)}, got {text[:16]!r}")
    return text.upper()


def check_origins(origins: np.ndarray, count: int, limits: ServingLimits) -> list[tuple[int, int]]:
    """``[N, 2]`` tile origins (the prior's noise seeds) checked against the tile count and the limits."""
    origins = np.asarray(origins)
    if origins.shape != (count, 2):
        raise SwintormerError(f"ORIGINS must be [{count}, 2] for {count} tiles, got {list(origins.shape)}")
    if origins.size and (origins.min() < 0 or origins.max() > limits.max_plan_pixels):
        raise SwintormerError("ORIGINS lie outside any image this server accepts")
    return [(int(y), int(x)) for y, x in origins]


def preprocess(image: np.ndarray, layout: str, limits: ServingLimits) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Client image -> ``(tiles [N, C, t, t] float32, origins [N, 2] int32, geometry [9] int64)``."""
    hwc = validate_image(image, layout, limits)
    channels = hwc.shape[2]  # checked: plan, tiles and copies below stay within the limits
    if channels == 1 and limits.channels == 3:
        hwc = np.repeat(hwc, 3, axis=2)
    plan, tiles, origins = split_image(hwc, limits.tiling.tile, limits.tiling.stride)
    dtype_index = list(IMAGE_DTYPES.values()).index(hwc.dtype)
    geometry = Geometry(hwc.shape[0], hwc.shape[1], plan.height, plan.width, plan.tile_h, plan.stride, dtype_index,
                        LAYOUTS.index(layout), channels)
    return tiles.numpy(), np.asarray(origins, dtype=np.int32).reshape(-1, 2), geometry.to_array()


def check_tiles(tiles: np.ndarray | torch.Tensor, limits: ServingLimits, name: str = "TILES", channels: int | None = None) -> int:
    """The tile count of ``[N, C, t, t]`` tiles, after checking them against the limits."""
    t = limits.tiling.tile
    shape = tuple(tiles.shape)
    c = limits.channels if channels is None else channels
    if len(shape) != 4 or shape[1:] != (c, t, t):
        raise SwintormerError(f"{name} must be [N, {c}, {t}, {t}], got {list(shape)}")
    if not 0 < shape[0] <= limits.max_tiles:
        raise SwintormerError(f"{name} holds {shape[0]} tiles; an image within this server's limits has 1 to {limits.max_tiles}")
    return shape[0]


def postprocess(restored: np.ndarray, geometry: np.ndarray, limits: ServingLimits) -> tuple[str, np.ndarray]:
    """Restored tiles -> ``(Triton dtype name, image in the client's dtype, layout and channel count)``.

    The geometry and the tiles are checked against ``limits`` before anything is allocated.
    """
    g = Geometry.from_array(geometry).validate(limits)
    count = check_tiles(restored, limits, "RESTORED", channels=3)
    if count != len(g.plan.origins):
        raise SwintormerError(f"RESTORED holds {count} tiles; GEOMETRY's image has {len(g.plan.origins)}")
    tiles = torch.from_numpy(np.ascontiguousarray(restored, dtype=np.float32))
    if g.channels == 1:
        tiles = gray_tiles(tiles)
    out = merge_tiles(tiles, g.plan, (g.height, g.width), limits.tiling.blend, IMAGE_DTYPES[g.dtype_name])
    if LAYOUTS[g.layout_index] == "CHW":
        out = np.ascontiguousarray(np.transpose(out, (2, 0, 1)))
    return g.dtype_name, out
