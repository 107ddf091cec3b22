"""Tiled inference: the one path from a whole image to model-sized tiles and back.

Tiles of ``tile x tile`` at ``stride`` (defaults 256/220 as the reference code; 512/220 is the
paper's best), last row and column clamped to the image border, images smaller than a tile
reflect-padded, tiles run in batches, overlaps merged by uniform averaging (the paper) or a
feathered blend. The merge streams over rows of tiles: only one band of ``tile`` rows is
accumulated (in float64, so averaging identical values is exact) and finished rows are written
straight into the output array, whose dtype can stay ``uint8``/``uint16``. Memory is one batch
of tiles plus that band, not a multiple of the image.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from swintormer.errors import SwintormerError
from swintormer.imageio import float_to_dtype, from_uint
from swintormer.padding import reflect_pad_to
from swintormer.progress import Progress

__all__ = [
    "Blend",
    "TileFn",
    "TileMerger",
    "TilePlan",
    "TilingConfig",
    "as_blend",
    "blend_weights",
    "check_tile",
    "extract_tiles",
    "gray_tile_fn",
    "gray_tiles",
    "pad_to_plan",
    "plan_tiles",
    "tile_starts",
    "tiled_apply",
]

#: ``fn(tiles [b, C, t, t] float32, origins [(y, x)] * b) -> [b, C_out, t, t]``
TileFn = Callable[[torch.Tensor, Sequence[tuple[int, int]]], torch.Tensor]


class Blend(str, enum.Enum):
    """How overlapping tile outputs are merged: plain averaging (the paper) or a ramp over the overlap."""

    UNIFORM = "uniform"
    FEATHER = "feather"


def as_blend(value: Blend | str) -> Blend:
    """``value`` as a :class:`Blend`, or a clear error naming the choices."""
    try:
        return Blend(value)
    except ValueError:
        raise SwintormerError(f"unknown blend {value!r}: use {' or '.join(b.value for b in Blend)}") from None


def check_tile(tile: int, multiple: int) -> None:
    """Raise unless ``tile`` (0 = whole image) is a multiple of what the model's architecture needs."""
    if tile and tile % multiple:
        raise SwintormerError(
            f"tile {tile} is not a multiple of {multiple}, which this model needs "
            f"(use --tile {max(multiple, tile // multiple * multiple)} or 0 for the whole image)"
        )


@dataclass(frozen=True)
class TilingConfig:
    """How an image is cut and merged: the one owner of these settings and their defaults.

    ``tile`` x ``tile`` tiles (0: the whole image at once) every ``stride`` pixels, merged by
    ``blend``, ``batch`` tiles per call of the tile function (the reference's 256/220; the
    paper's best is 512/220). The command line, the server's limits, the exporter and the
    benchmarks all take one of these.
    """

    tile: int = 256
    stride: int = 220
    blend: Blend = Blend.UNIFORM
    batch: int = 8

    def __post_init__(self) -> None:
        object.__setattr__(self, "blend", as_blend(self.blend))
        if self.tile < 0 or (self.tile and not 0 < self.stride <= self.tile):
            raise SwintormerError(f"need --tile >= 0 and 0 < --stride <= --tile, got tile {self.tile}, stride {self.stride}")
        if self.batch < 1:
            raise SwintormerError(f"--batch must be >= 1, got {self.batch}")

    def validate(self, size_multiple: int) -> "TilingConfig":
        """``self``, after checking the tile fits a model whose sides must be multiples of ``size_multiple``."""
        check_tile(self.tile, size_multiple)
        return self

    def as_dict(self) -> dict[str, object]:
        return {"tile": self.tile, "stride": self.stride, "blend": self.blend.value, "batch": self.batch}


DEFAULT_TILE = TilingConfig.tile
DEFAULT_STRIDE = TilingConfig.stride


def tile_starts(length: int, tile: int, stride: int) -> list[int]:
    """Start offsets along one axis: ``0, stride, 2*stride, ...`` below ``length - tile``, then ``length - tile``."""
    if length <= tile:
        return [0]
    return list(range(0, length - tile, stride)) + [length - tile]


@dataclass(frozen=True)
class TilePlan:
    """Where the tiles of one image go. ``height, width`` are the (padded) image size."""

    height: int
    width: int
    tile_h: int
    tile_w: int
    stride: int

    @property
    def origins(self) -> list[tuple[int, int]]:
        """Top-left corners, row-major (the order tiles are run and merged in)."""
        ys = tile_starts(self.height, self.tile_h, self.stride)
        xs = tile_starts(self.width, self.tile_w, self.stride)
        return [(y, x) for y in ys for x in xs]


def plan_tiles(height: int, width: int, tile: int = DEFAULT_TILE, stride: int = DEFAULT_STRIDE) -> TilePlan:
    """Plan tiles for an ``height x width`` image; ``tile=0`` means one tile of the whole image.

    The image is padded up to the tile size where it is smaller, so the plan's size may exceed
    the image's.
    """
    TilingConfig(tile, stride)  # one place checks tile and stride
    if tile == 0:
        return TilePlan(height, width, height, width, max(height, width))
    return TilePlan(max(height, tile), max(width, tile), tile, tile, stride)


def blend_weights(plan: TilePlan, blend: Blend | str) -> torch.Tensor:
    """``[t_h, t_w]`` float64 weights: ones (uniform) or a ramp over the overlap width (feather).

    Feather: the distance to the nearest tile edge (1 at the edge pixel) over the overlap
    ``tile - stride``, capped at 1.
    """
    th, tw = plan.tile_h, plan.tile_w
    if as_blend(blend) == Blend.UNIFORM:
        return torch.ones(th, tw, dtype=torch.float64)
    ramp = max(min(th, tw) - plan.stride, 1)
    ys = torch.arange(th, dtype=torch.float64)
    xs = torch.arange(tw, dtype=torch.float64)
    dy = torch.minimum(ys + 1, th - ys)[:, None]
    dx = torch.minimum(xs + 1, tw - xs)[None, :]
    return torch.clamp(torch.minimum(dy, dx) / ramp, max=1.0)


#: columns converted at once when a band's rows are finished
FLUSH_COLUMNS = 512


def _batches(origins: list[tuple[int, int]], batch: int) -> Iterator[list[tuple[int, int]]]:
    for i in range(0, len(origins), batch):
        yield origins[i : i + batch]


def _as_float_chw(array: np.ndarray) -> torch.Tensor:
    """``[h, w, C]`` uint8/uint16/float -> ``[C, h, w]`` float32 in ``[0, 1]``."""
    return torch.from_numpy(from_uint(np.ascontiguousarray(array))[0]).permute(2, 0, 1)


class TileMerger:
    """Accumulates tile outputs over one band of rows and flushes finished rows to the output.

    Tiles must arrive in the plan's row-major order (any batching). ``out`` is
    ``[H, W, C]`` of the image's (unpadded) size.
    """

    def __init__(self, plan: TilePlan, out: np.ndarray, blend: Blend | str = Blend.UNIFORM) -> None:
        self.plan, self.out = plan, out
        self.weights = blend_weights(plan, blend)
        self.top = 0
        self.sum = torch.zeros(out.shape[2], plan.tile_h, plan.width, dtype=torch.float64)
        self.count = torch.zeros(plan.tile_h, plan.width, dtype=torch.float64)

    def _flush(self, rows: int) -> None:
        """Write the band's first ``rows`` rows (clipped to the output) and shift the band up.

        Finished rows are converted a slab of columns at a time and the band is shifted in place,
        so a flush costs a few MB whatever the image's width (the server's memory per request).
        """
        keep = min(rows, self.out.shape[0] - self.top)
        width = self.out.shape[1]
        for x in range(0, width if keep > 0 else 0, FLUSH_COLUMNS):
            x1 = min(width, x + FLUSH_COLUMNS)
            done = (self.sum[:, :keep, x:x1] / self.count[:keep, x:x1]).to(torch.float32)
            self.out[self.top : self.top + keep, x:x1] = float_to_dtype(done.permute(1, 2, 0).numpy(), self.out.dtype)
        rest = self.plan.tile_h - rows
        if rest > 0:
            self.sum[:, :rest] = self.sum[:, rows:].clone()
            self.count[:rest] = self.count[rows:].clone()
        self.sum[:, max(rest, 0):] = 0
        self.count[max(rest, 0):] = 0
        self.top += rows

    def add(self, results: torch.Tensor, origins: Sequence[tuple[int, int]]) -> None:
        """Add ``[b, C, t_h, t_w]`` tile outputs at their ``origins``."""
        expected = (len(origins), self.out.shape[2], self.plan.tile_h, self.plan.tile_w)
        if tuple(results.shape) != expected:
            raise SwintormerError(f"tile outputs have shape {tuple(results.shape)}, expected {expected}")
        for (y, x), tile in zip(origins, results.detach().cpu()):
            if y > self.top:
                self._flush(y - self.top)
            self.sum[:, :, x : x + self.plan.tile_w] += tile.to(torch.float64) * self.weights
            self.count[:, x : x + self.plan.tile_w] += self.weights

    def finish(self) -> np.ndarray:
        self._flush(self.plan.tile_h)
        return self.out


def pad_to_plan(image: np.ndarray, plan: TilePlan) -> np.ndarray:
    """Reflect-pad ``[H, W, C]`` up to the plan's size (images smaller than a tile); else unchanged."""
    if image.shape[:2] == (plan.height, plan.width):
        return image
    padded = reflect_pad_to(_as_float_chw(image)[None], plan.height, plan.width)[0]
    return padded.permute(1, 2, 0).numpy()


def extract_tiles(image: np.ndarray, plan: TilePlan, origins: Sequence[tuple[int, int]]) -> torch.Tensor:
    """``[b, C, t_h, t_w]`` float32 tiles in ``[0, 1]`` of a plan-sized image at ``origins``."""
    return torch.stack([_as_float_chw(image[y : y + plan.tile_h, x : x + plan.tile_w]) for y, x in origins])


def _check_image(image: np.ndarray) -> None:
    if image.ndim != 3:
        raise SwintormerError(f"expected an [H, W, C] image, got shape {image.shape}")


def tiled_apply(
    fn: TileFn,
    image: np.ndarray,
    out_channels: int = 3,
    tiling: TilingConfig = TilingConfig(),
    out_dtype: np.dtype | type = np.float32,
    progress: bool | None = None,
) -> np.ndarray:
    """Run ``fn`` over the tiles of ``image`` and merge the results, one batch of tiles at a time.

    Args:
        fn: maps a batch of float32 tiles ``[b, C, t, t]`` in ``[0, 1]`` (and their origins in the
            padded image) to ``[b, out_channels, t, t]``.
        image: ``[H, W, C]``, ``uint8``/``uint16`` (scaled to ``[0, 1]``) or float.
        tiling: tile size, stride, blend and batch (``tile=0`` runs the whole image as one tile).
        out_dtype: ``np.float32`` (unclipped) or ``np.uint8``/``np.uint16`` (rounded, clipped).
        progress: show progress (None: a bar on a terminal, periodic log lines elsewhere).

    Returns:
        ``[H, W, out_channels]`` of ``out_dtype``.
    """
    _check_image(image)
    plan = plan_tiles(image.shape[0], image.shape[1], tiling.tile, tiling.stride)
    padded = pad_to_plan(image, plan)
    merger = TileMerger(plan, np.empty((*image.shape[:2], out_channels), dtype=out_dtype), tiling.blend)
    origins = plan.origins
    with Progress(len(origins), "deblurring", "tiles", progress) as bar:
        for group in _batches(origins, tiling.batch):
            merger.add(fn(extract_tiles(padded, plan, group), group), group)
            bar.update(len(group))
    return merger.finish()


def gray_tiles(tiles: torch.Tensor) -> torch.Tensor:
    """``[b, 3, t, t] -> [b, 1, t, t]``: the channel mean, how a grayscale input gets its output back.

    Merging is a weighted average, so taking the mean per tile before the merge gives the merged
    image's mean; the CLI and the server both do it here.
    """
    return tiles.float().mean(dim=1, keepdim=True)


def gray_tile_fn(fn: TileFn) -> TileFn:
    """``fn`` with its output reduced to one channel (:func:`gray_tiles`), for grayscale images."""
    return lambda tiles, origins: gray_tiles(fn(tiles, origins))
