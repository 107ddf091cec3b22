"""What the server's ``pipeline`` model computes, as plain functions the tests call directly.

:func:`restore_image` validates a client's image against the repository's limits, runs it
through the shared tiler (:func:`swintormer.tiling.tiled_apply`, the one ``swintormer deblur``
runs) with the tile function it is given, and returns it in the client's dtype, layout and
channel count. The image stays in its 8/16-bit form and the tiles stream, one batch at a time,
into a band merged in place: a request costs its image, one batch of tiles and one band,
whatever its size. A grayscale image (one channel) is restored as RGB and returned grayscale.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from swintormer.errors import SwintormerError
from swintormer.imageio import MIN_IMAGE_SIDE
from swintormer.serving.dtypes import image_dtype_name
from swintormer.tiling import TileFn, TilingConfig, gray_tile_fn, plan_tiles, tiled_apply

__all__ = ["LAYOUTS", "ServingLimits", "decode_layout", "restore_image", "validate_image"]

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

    def to_json(self) -> str:
        return json.dumps({"channels": self.channels, "max_pixels": self.max_pixels, "tiling": self.tiling.as_dict()})

    @classmethod
    def from_json(cls, text: str) -> "ServingLimits":
        data = json.loads(text)
        return cls(data["channels"], data["max_pixels"], TilingConfig(**data["tiling"]))


def validate_image(image: np.ndarray, layout: str, limits: ServingLimits) -> np.ndarray:
    """Check a client's image and return it as ``[H, W, C]`` (a view, no copy)."""
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


def restore_image(image: np.ndarray, layout: str, limits: ServingLimits, tile_fn: TileFn) -> tuple[str, np.ndarray]:
    """A client's image -> ``(Triton dtype name, restored image in its dtype, layout and channel count)``.

    Everything is checked before anything is allocated for the request; then the tiles stream.
    """
    hwc = validate_image(image, layout, limits)
    dtype_name = image_dtype_name(hwc.dtype)
    gray = hwc.shape[2] == 1 and limits.channels == 3
    if gray:
        hwc = np.repeat(hwc, 3, axis=2)  # the model takes RGB; within the limits (an RGB image's bytes)
    fn = gray_tile_fn(tile_fn) if gray else tile_fn
    out = tiled_apply(fn, hwc, 1 if gray else 3, limits.tiling, out_dtype=hwc.dtype, progress=False)
    if layout == "CHW":
        out = np.ascontiguousarray(np.transpose(out, (2, 0, 1)))
    return dtype_name, out


def warm_up(limits: ServingLimits) -> None:
    """Run the request path once at load, on a random image two tiles wide, with a local stand-in
    for the networks (they may still be loading): the tiler, the merge, every conversion and the
    first-call costs of torch and NumPy are paid before the first request, not by it."""
    rng = np.random.default_rng(0)
    t, stride = limits.tiling.tile or 64, limits.tiling.stride or limits.tiling.tile or 64
    width = t + stride if t * (t + stride) <= limits.max_pixels else t
    image = rng.integers(0, 256, (t, width, limits.channels), dtype=np.uint8)
    restore_image(image, "HWC", limits, lambda tiles, origins: tiles[:, :3].clone())
